//! What was observed on a host: the planner's second input.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// The host as vldeploy found it, limited to what this stack manages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub networks: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    /// The image IDs (of those the stack wants) that the host's engine already has.
    pub images: BTreeSet<String>,
    /// Containers labelled with this stack.
    pub containers: Vec<ObservedContainer>,
    /// Managed files: path to the content hash recorded in the file.
    pub files: BTreeMap<String, String>,
    /// Per service, the hash of the config files its running process last loaded.
    pub loaded: BTreeMap<String, String>,
    /// vldeploy's nftables table and its boot file (`None`: not read, the stack manages no firewall).
    pub firewall: Option<RulesetFacts>,
    /// The certificate nginx serves from (`None`: none installed).
    pub certificate: Option<ObservedCertificate>,
    /// Per service released blue/green, the id of the last release in the host's history (`None`: the
    /// history was not read).
    pub releases: Option<BTreeMap<String, String>>,
    /// The storefront release `current` names (`None`: none, or the stack names no `site:`).
    pub site: Option<String>,
    /// The time the facts were read (seconds since the epoch), for certificate expiry.
    pub now: u64,
}

/// vldeploy's nftables table as the host has it loaded, and the ruleset it loads at boot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RulesetFacts {
    /// The table is loaded.
    pub loaded: bool,
    /// The hash the loaded table carries in its comment.
    pub live_hash: Option<String>,
    /// The loaded table's listing differs from the one recorded when it was confirmed (changed by hand).
    pub edited: bool,
    /// The hash in the header of the ruleset file loaded at boot.
    pub file_hash: Option<String>,
    /// A systemd boot unit exists but is not enabled.
    pub boot_disabled: bool,
}

/// The certificate `current` points at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservedCertificate {
    pub serial: String,
    /// SHA-256 of the leaf's DER, hex.
    pub fingerprint: String,
    pub sans: Vec<String>,
    pub not_after: u64,
    /// When it becomes due for renewal (a third of its lifetime left; half, below ten days).
    pub renew_at: u64,
    /// The self-signed stand-in installed before the first real certificate.
    pub placeholder: bool,
}

/// A container found on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub service: Option<String>,
    pub config_hash: Option<String>,
    /// Labels `vldeploy.hash.<aspect>` the container was created with.
    pub aspects: BTreeMap<String, String>,
    /// Per-variable hashes of its environment.
    pub env_hashes: BTreeMap<String, String>,
    /// The id of the host key its secrets were hashed with (`None`: made before secrets were keyed).
    pub hash_key: Option<String>,
    pub image_id: String,
    /// Docker's state: `running`, `exited`, `created`, `restarting`, …
    pub state: String,
    /// Docker's health status when it has a health check: `healthy`, `starting`, `unhealthy`.
    pub health: Option<String>,
    /// The networks it is joined to (a release is on the serving network only while it serves).
    pub networks: Vec<String>,
}

impl ObservedContainer {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}
