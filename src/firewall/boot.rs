//! How the host loads the installed ruleset at boot: a systemd unit, the sandbox's init script, or nothing.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Boot {
    /// systemd runs the host; `enabled` when vldeploy's unit is enabled.
    Systemd { enabled: bool },
    /// The host's init script loads `/etc/vldeploy/firewall.nft` itself (the sandbox host does).
    InitScript,
    /// Nothing would load the ruleset at boot.
    None,
}

impl Boot {
    /// Whether the installed ruleset comes back after a reboot.
    pub fn loads_at_boot(&self) -> bool {
        matches!(self, Self::Systemd { enabled: true } | Self::InitScript)
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::Systemd { enabled: true } => "systemd unit `vldeploy-firewall.service` (enabled)",
            Self::Systemd { enabled: false } => {
                "systemd, unit `vldeploy-firewall.service` not enabled"
            }
            Self::InitScript => "the host's init script",
            Self::None => "nothing (no systemd)",
        }
    }

    /// Reads the `boot=` value of the observation script.
    pub(crate) fn parse(value: &str) -> Self {
        match value {
            "init-script" => Self::InitScript,
            v if v.starts_with("systemd:") => Self::Systemd {
                enabled: v == "systemd:enabled",
            },
            _ => Self::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_values() {
        assert_eq!(
            Boot::parse("systemd:enabled"),
            Boot::Systemd { enabled: true }
        );
        assert_eq!(Boot::parse("systemd:"), Boot::Systemd { enabled: false });
        assert_eq!(
            Boot::parse("systemd:disabled"),
            Boot::Systemd { enabled: false }
        );
        assert_eq!(Boot::parse("init-script"), Boot::InitScript);
        assert_eq!(Boot::parse("none"), Boot::None);
        assert!(Boot::InitScript.loads_at_boot());
        assert!(!Boot::Systemd { enabled: false }.loads_at_boot());
    }
}
