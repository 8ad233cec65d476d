//! Whether the host's firewall needs the new ruleset, only its installation for boot, or nothing.

use serde::Serialize;

use super::observed::Observed;
use super::ruleset::Ruleset;

/// What bringing the host's firewall in line takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum Change {
    /// The loaded table and the installed file carry the ruleset's hash, and the host loads it at boot.
    Unchanged,
    /// The loaded table is right; the file or the boot unit is missing or stale.
    Install { reason: String },
    /// The ruleset must be applied (safely), then installed.
    Apply { reason: String },
}

impl Change {
    pub fn is_unchanged(&self) -> bool {
        matches!(self, Self::Unchanged)
    }

    /// `firewall ruleset sha256:… (reason)`, for plans and the audit log.
    pub fn summary(&self, ruleset: &Ruleset) -> Option<String> {
        match self {
            Self::Unchanged => None,
            Self::Install { reason } => Some(format!(
                "install firewall ruleset {} for boot ({reason})",
                ruleset.hash
            )),
            Self::Apply { reason } => Some(format!(
                "apply firewall ruleset {} ({reason})",
                ruleset.hash
            )),
        }
    }
}

/// Compares what the host has with `ruleset`, by the planner's own decision (so `plan` and `up` agree).
pub fn decide(observed: &Observed, ruleset: &Ruleset) -> Change {
    match crate::plan::ruleset_change(&ruleset.hash, &observed.facts()) {
        None => Change::Unchanged,
        Some((true, reason)) => Change::Apply { reason },
        Some((false, reason)) => Change::Install { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::boot::Boot;

    fn ruleset() -> Ruleset {
        Ruleset {
            text: String::new(),
            hash: "sha256:aaaaaaaaaaaaaaaa".to_owned(),
        }
    }

    fn observed(table: bool, live: Option<&str>, file: Option<&str>, boot: Boot) -> Observed {
        Observed {
            nft: true,
            root: true,
            ssh_port: Some(22),
            table,
            live_hash: live.map(str::to_owned),
            edited: false,
            file_hash: file.map(str::to_owned),
            boot,
            armed: None,
            last_outcome: None,
            unreadable: None,
        }
    }

    #[test]
    fn decisions() {
        let a = Some("sha256:aaaaaaaaaaaaaaaa");
        let b = Some("sha256:bbbbbbbbbbbbbbbb");
        let on = Boot::Systemd { enabled: true };
        let cases = [
            (
                observed(false, None, None, Boot::None),
                "apply: no vldeploy firewall on the host",
            ),
            (
                observed(true, b, b, on.clone()),
                "apply: loaded sha256:bbbbbbbbbbbbbbbb",
            ),
            (
                observed(true, None, a, on.clone()),
                "apply: the loaded table was changed by hand",
            ),
            (
                observed(true, a, None, on.clone()),
                "install: no ruleset file for boot",
            ),
            (
                observed(true, a, b, Boot::InitScript),
                "install: the file for boot has sha256:bbbbbbbbbbbbbbbb",
            ),
            (
                observed(true, a, a, Boot::Systemd { enabled: false }),
                "install: the boot unit is not enabled",
            ),
            (observed(true, a, a, on), "unchanged"),
            (observed(true, a, a, Boot::InitScript), "unchanged"),
        ];
        let mut edited = observed(true, a, a, Boot::InitScript);
        edited.edited = true;
        let cases = cases
            .into_iter()
            .chain([(edited, "apply: the loaded table was changed by hand")]);
        for (o, want) in cases {
            let got = match decide(&o, &ruleset()) {
                Change::Unchanged => "unchanged".to_owned(),
                Change::Install { reason } => format!("install: {reason}"),
                Change::Apply { reason } => format!("apply: {reason}"),
            };
            assert_eq!(got, want, "{o:?}");
        }
    }
}
