//! One change the planner decided on, with its reason.

use serde::Serialize;

use crate::layout::short_id;

/// A change to the host. The plan lists them in the order they are applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    CreateNetwork {
        name: String,
    },
    CreateVolume {
        name: String,
    },
    /// Stream images the host lacks from where vldeploy runs (one stream, shared layers sent once).
    TransferImages {
        images: Vec<ImageRef>,
    },
    /// Pull an `image:` reference on the host.
    PullImage {
        image: ImageRef,
    },
    WriteFile {
        path: String,
        reason: String,
    },
    /// Put a storefront release on the host (its own directory, named by content hash) and switch nginx's
    /// document root to it with one rename; the previous releases are kept for rollback.
    Site {
        hash: String,
        reason: String,
    },
    CreateContainer {
        service: String,
        name: String,
        reason: String,
    },
    RecreateContainer {
        service: String,
        name: String,
        reason: String,
    },
    StartContainer {
        service: String,
        name: String,
        reason: String,
    },
    /// Release a new configuration blue/green: a candidate beside the live container, health-gated, then
    /// put in the stable name nginx resolves (no reload), then the old one drained and stopped.
    Release {
        service: String,
        name: String,
        reason: String,
    },
    /// Re-read configuration without a restart (nginx: `nginx -t`, then `nginx -s reload`).
    Reload {
        service: String,
        name: String,
        reason: String,
    },
    RemoveContainer {
        name: String,
        reason: String,
    },
    /// Record the release that serves as the newest in the host's history (what `rollback` and `releases` read).
    RecordRelease {
        service: String,
        id: String,
        reason: String,
    },
    /// Issue the certificate from the CA (`tls: acme`: the renewal job on the host runs now) or install the
    /// operator's files (`tls: provided`). Carried out by `up`'s certificate flow, after the containers.
    Certificate {
        domains: Vec<String>,
        provided: bool,
        reason: String,
    },
    /// Bring vldeploy's nftables table in line: applied safely (reverted unless a new connection confirms
    /// it), or, when the loaded table is right, only installed for boot. Carried out by `up`'s firewall flow, last.
    Firewall {
        hash: String,
        /// Whether the loaded table changes (`false`: only the boot file or unit).
        apply: bool,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    pub service: String,
    pub id: String,
    pub reference: String,
}

impl Step {
    /// The sign a diff shows for it: `+` create, `~` change, `-` remove.
    pub fn sign(&self) -> char {
        match self {
            Step::CreateNetwork { .. }
            | Step::CreateVolume { .. }
            | Step::TransferImages { .. }
            | Step::PullImage { .. }
            | Step::CreateContainer { .. } => '+',
            Step::WriteFile { .. }
            | Step::Site { .. }
            | Step::Release { .. }
            | Step::RecreateContainer { .. }
            | Step::StartContainer { .. }
            | Step::Reload { .. }
            | Step::RecordRelease { .. }
            | Step::Certificate { .. }
            | Step::Firewall { .. } => '~',
            Step::RemoveContainer { .. } => '-',
        }
    }

    /// What the step does, in a few words.
    pub fn summary(&self) -> String {
        match self {
            Step::CreateNetwork { name } => format!("create network `{name}`"),
            Step::CreateVolume { name } => format!("create volume `{name}`"),
            Step::TransferImages { images } => {
                let names: Vec<String> = images
                    .iter()
                    .map(|i| format!("{} ({})", i.reference, short_id(&i.id)))
                    .collect();
                format!(
                    "send image{} {}",
                    if images.len() == 1 { "" } else { "s" },
                    names.join(", ")
                )
            }
            Step::PullImage { image } => format!("pull image `{}`", image.reference),
            Step::WriteFile { path, .. } => format!("write `{path}`"),
            Step::Site { hash, .. } => format!("site {hash}"),
            Step::CreateContainer { name, .. } => format!("create container `{name}`"),
            Step::RecreateContainer { name, .. } => format!("recreate container `{name}`"),
            Step::StartContainer { name, .. } => format!("start container `{name}`"),
            Step::Reload { name, .. } => format!("reload `{name}`"),
            Step::Release { name, .. } => format!("release `{name}` (blue/green)"),
            Step::RemoveContainer { name, .. } => format!("remove container `{name}`"),
            Step::RecordRelease { id, .. } => format!("record release `{id}` in the history"),
            Step::Certificate {
                domains,
                provided: false,
                ..
            } => format!("issue certificate for {}", domains.join(", ")),
            Step::Certificate { domains, .. } => {
                format!(
                    "install the provided certificate for {}",
                    domains.join(", ")
                )
            }
            Step::Firewall {
                hash, apply: true, ..
            } => format!("apply firewall ruleset {hash}"),
            Step::Firewall { hash, .. } => format!("install firewall ruleset {hash} for boot"),
        }
    }

    /// Why the step is needed.
    pub fn reason(&self) -> String {
        match self {
            Step::CreateNetwork { .. } | Step::CreateVolume { .. } => "missing on the host".into(),
            Step::TransferImages { .. } => "the host lacks these image IDs".into(),
            Step::PullImage { .. } => "the host lacks this image".into(),
            Step::WriteFile { reason, .. }
            | Step::Site { reason, .. }
            | Step::CreateContainer { reason, .. }
            | Step::RecreateContainer { reason, .. }
            | Step::StartContainer { reason, .. }
            | Step::Release { reason, .. }
            | Step::Reload { reason, .. }
            | Step::RemoveContainer { reason, .. }
            | Step::RecordRelease { reason, .. }
            | Step::Certificate { reason, .. }
            | Step::Firewall { reason, .. } => reason.clone(),
        }
    }

    /// Whether `up` carries the step out with a flow of its own (certificates, the firewall's safe apply)
    /// rather than through `apply`.
    pub fn is_host_flow(&self) -> bool {
        matches!(self, Step::Certificate { .. } | Step::Firewall { .. })
    }

    /// Whether the step only puts something on the host that containers use later (a network, a volume, an
    /// image, a file, a storefront release): such steps need nothing of each other and run at once.
    /// Container steps wait for the preparation steps and for the containers they depend on
    /// ([`super::Plan::prerequisites`]).
    pub fn is_preparation(&self) -> bool {
        matches!(
            self,
            Step::CreateNetwork { .. }
                | Step::CreateVolume { .. }
                | Step::TransferImages { .. }
                | Step::PullImage { .. }
                | Step::WriteFile { .. }
                | Step::Site { .. }
        )
    }
}

impl Step {
    /// The service a container step acts on.
    pub fn service(&self) -> Option<&str> {
        match self {
            Step::CreateContainer { service, .. }
            | Step::RecreateContainer { service, .. }
            | Step::StartContainer { service, .. }
            | Step::Release { service, .. } => Some(service),
            _ => None,
        }
    }
}
