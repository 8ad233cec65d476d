//! What the host's firewall is now: read in one command over the existing connection.

use serde::Serialize;

use super::boot::Boot;
use super::error::FirewallError;
use super::ruleset::hash_in;
use crate::transport::Remote;

/// The host's firewall as vldeploy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// The host has `nft`.
    pub nft: bool,
    /// vldeploy runs as root there.
    pub root: bool,
    /// The port sshd serves this connection on (from `SSH_CONNECTION`).
    pub ssh_port: Option<u16>,
    /// The table `inet vldeploy` is loaded.
    pub table: bool,
    /// The hash the loaded table carries.
    pub live_hash: Option<String>,
    /// The loaded table's listing differs from the one recorded when it was confirmed (changed by hand).
    pub edited: bool,
    /// The hash of the installed ruleset file.
    pub file_hash: Option<String>,
    pub boot: Boot,
    /// The directory of an apply whose revert timer is still armed.
    pub armed: Option<String>,
    /// How the latest apply ended (`confirmed`, `reverted 0`, …).
    pub last_outcome: Option<String>,
    /// Why the host's tables could not be listed (`nft` failed, or vldeploy is not root), when they could not.
    pub unreadable: Option<String>,
}

impl Observed {
    /// Parses the observation script's output.
    pub(crate) fn parse(text: &str) -> Self {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        Self {
            nft: get("nft") == Some("yes"),
            root: get("root") == Some("yes"),
            ssh_port: get("ssh")
                .and_then(|v| v.split_whitespace().nth(3))
                .and_then(|p| p.parse().ok()),
            table: get("table") == Some("yes"),
            live_hash: get("live").and_then(hash_in),
            edited: matches!((get("listing"), get("recorded")), (Some(l), Some(r)) if l != r),
            file_hash: get("file").and_then(hash_in),
            boot: Boot::parse(get("boot").unwrap_or("none")),
            armed: get("armed").map(str::to_owned),
            last_outcome: get("outcome").map(str::to_owned),
            unreadable: get("unreadable").map(str::to_owned),
        }
    }

    /// What the planner compares with the stack's ruleset.
    pub fn facts(&self) -> crate::plan::RulesetFacts {
        crate::plan::RulesetFacts {
            loaded: self.table,
            live_hash: self.live_hash.clone(),
            edited: self.edited,
            file_hash: self.file_hash.clone(),
            boot_disabled: matches!(self.boot, Boot::Systemd { enabled: false }),
        }
    }

    /// Refuses a host that cannot run the firewall.
    pub fn usable(&self, host: &str) -> Result<(), FirewallError> {
        let fail = |problem: &str, help: &str| FirewallError::Host {
            host: host.to_owned(),
            problem: problem.to_owned(),
            help: help.to_owned(),
        };
        if !self.nft {
            return Err(fail(
                "`nft` is not installed",
                "install nftables on the host (`apt-get install nftables`)",
            ));
        }
        if !self.root {
            return Err(fail(
                "vldeploy does not connect as root, and changing the firewall needs root",
                "connect as root in the environment's `host` (`ssh://root@…`)",
            ));
        }
        if let Some(dir) = &self.armed {
            return Err(fail(
                &format!(
                    "an earlier firewall apply is still waiting to be confirmed or reverted (`{dir}`)"
                ),
                "its automatic revert fires within a minute; run the command again then",
            ));
        }
        Ok(())
    }
}

/// Reads the host's firewall over `remote`.
pub async fn observe(remote: &Remote) -> Result<Observed, FirewallError> {
    let out = remote.run(&crate::remote::nft::observe()).await?;
    Ok(Observed::parse(&out.stdout_str()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_host_prints() {
        let o = Observed::parse(
            "nft=yes\nroot=yes\nssh=172.17.0.1 50522 172.17.0.3 22\ntable=yes\n\
             live=vldeploy sha256:0123456789abcdef\nfile=vldeploy sha256:0123456789abcdef\n\
             boot=init-script\noutcome=confirmed 1700000000\nlisting=ab12\nrecorded=ab12\n",
        );
        assert!(o.nft && o.root && o.table && !o.edited);
        assert_eq!(o.ssh_port, Some(22));
        assert_eq!(o.live_hash.as_deref(), Some("sha256:0123456789abcdef"));
        assert_eq!(o.file_hash, o.live_hash);
        assert_eq!(o.boot, Boot::InitScript);
        assert_eq!(o.armed, None);
        assert_eq!(o.last_outcome.as_deref(), Some("confirmed 1700000000"));
        assert!(o.usable("h").is_ok());
    }

    #[test]
    fn a_listing_unlike_the_confirmed_one_was_edited() {
        assert!(Observed::parse("table=yes\nlisting=ab12\nrecorded=cd34\n").edited);
        assert!(!Observed::parse("table=yes\nlisting=ab12\nrecorded=\n").edited);
    }

    #[test]
    fn a_bare_host_has_nothing() {
        let o = Observed::parse("ssh=\nboot=none\n");
        assert!(!o.nft && !o.table);
        assert_eq!(
            (o.ssh_port, o.live_hash.clone(), o.file_hash.clone()),
            (None, None, None)
        );
        let err = o.usable("root@h:22").unwrap_err().to_string();
        assert!(
            err.starts_with("`root@h:22` cannot run the firewall: `nft` is not installed"),
            "{err}"
        );
    }

    #[test]
    fn an_armed_revert_blocks_a_new_apply() {
        let o = Observed::parse("nft=yes\nroot=yes\narmed=/var/lib/vldeploy/firewall/apply-1\n");
        let err = o.usable("h").unwrap_err().to_string();
        assert!(
            err.contains("still waiting to be confirmed or reverted"),
            "{err}"
        );
    }
}
