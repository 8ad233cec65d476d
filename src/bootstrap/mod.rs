//! Making a fresh server ready for vldeploy: facts, a plan, its apply, and the optional sshd hardening.
//!
//! The first connection is the environment's `bootstrap_user` (root, or a user with sudo: then every command
//! runs through `sudo -n`). Bootstrap installs what is missing from the distribution's packages, creates the
//! environment's own user with the operator's public key, in the docker group, installs the root helper and
//! the one sudoers rule that lets that user run it, and makes vldeploy's directories.

// Errors carry the host and the failing step (as in `firewall`).
#![allow(clippy::result_large_err)]

mod apply;
mod facts;
mod harden;
mod plan;

use sha2::{Digest, Sha256};

pub use crate::host::connect_as;
pub use apply::{apply, read_facts};
pub use facts::{HostFacts, Os, Owned, Service};
pub use harden::{Harden, MIN_REVERT_AFTER, REVERT_AFTER_ENV, TEST_DENY_ENV, harden, revert_after};
pub use plan::{ENGINE_PACKAGE, Step, TOOLS, Wanted, plan, render};

use crate::remote::bootstrap::HELPER_PATH;
use crate::stack::{SshAuth, Stack};
use crate::transport::TransportError;

/// The root helper, as installed on every host.
pub const HELPER: &str = crate::remote::root::HELPER_SCRIPT;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(
        "`{host}` runs {os}, which bootstrap does not support: use Debian 12 or 13, or Ubuntu 22.04 or 24.04 (or prepare the host by hand, see README \"Deploying to a real server\")"
    )]
    Unsupported { host: String, os: String },
    #[error("bootstrap of `{host}` failed at `{step}`: {detail}")]
    Step {
        host: String,
        step: String,
        detail: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error(
        "the operator's public key could not be read: {detail}\n  help: put the public key beside the private one as `<key>.pub`, or check `ssh_key` in stack.yaml"
    )]
    Key { detail: String },
    #[error(
        "sshd hardening of `{host}` was not confirmed ({reason}); the host put its previous sshd settings back by itself after {after_s}s and `{bootstrap_user}` can log in again\n  help: check that `{user}` logs in with the key (`ssh {user}@…`), then run `vldeploy bootstrap --harden-ssh` again"
    )]
    Reverted {
        host: String,
        reason: String,
        after_s: u64,
        user: String,
        bootstrap_user: String,
    },
    #[error(
        "sshd hardening of `{host}` was not confirmed ({reason}) and the host could not be reached again within {waited_s}s ({after}); its revert may not have run\n  help: log in on the host's console and remove `{dropin}`, then `systemctl reload ssh`"
    )]
    Unconfirmed {
        host: String,
        reason: String,
        waited_s: u64,
        after: String,
        dropin: &'static str,
    },
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// The sudoers drop-in: `user` may run the root helper as root without a password, and nothing else.
pub fn sudoers(user: &str) -> String {
    format!(
        "# Written by `vldeploy bootstrap`; edits are overwritten. `{user}` may run vldeploy's root helper as\n\
         # root, and nothing else: every root-only step of vldeploy goes through it.\n\
         {user} ALL=(root) NOPASSWD: {HELPER_PATH}\n"
    )
}

/// sha256 of `text`, lowercase hex (what `sha256sum` prints).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What bootstrap makes of the stack's environment.
pub fn wanted(stack: &Stack, keys: Vec<String>, harden: bool) -> Wanted {
    let deny: Vec<&str> = if harden && std::env::var(TEST_DENY_ENV).is_ok_and(|v| v == "1") {
        vec![stack.target.user.as_str()]
    } else {
        Vec::new()
    };
    Wanted {
        stack: stack.name.clone(),
        user: stack.target.user.clone(),
        keys,
        helper_hash: sha256_hex(HELPER),
        sudoers: sudoers(&stack.target.user),
        backup_dir: crate::backup::Setup::from_stack(stack).dir,
        backup_log: crate::backup::LOG.to_owned(),
        sshd_dropin: harden.then(|| crate::remote::sshd::dropin(&deny)),
    }
}

/// The operator's public keys: `<key>.pub`, else derived from the private key (`ssh-keygen -y`); with an
/// agent, the agent's keys (`ssh-add -L`).
pub fn operator_keys(stack: &Stack) -> Result<Vec<String>, BootstrapError> {
    let text = match &stack.auth {
        SshAuth::Key(private) => {
            let public = format!("{}.pub", private.display());
            match std::fs::read_to_string(&public) {
                Ok(t) => t,
                Err(_) => run_local("ssh-keygen", &["-y", "-f", &private.display().to_string()])?,
            }
        }
        SshAuth::Agent => run_local("ssh-add", &["-L"])?,
    };
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        return Err(BootstrapError::Key {
            detail: "no key found".to_owned(),
        });
    }
    Ok(keys)
}

fn run_local(program: &str, args: &[&str]) -> Result<String, BootstrapError> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| BootstrapError::Key {
            detail: format!("`{program}` could not run: {e}"),
        })?;
    if !out.status.success() {
        return Err(BootstrapError::Key {
            detail: format!(
                "`{program} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_sudoers_rule_allows_the_helper_and_nothing_else() {
        assert_eq!(
            sudoers("deploy"),
            "# Written by `vldeploy bootstrap`; edits are overwritten. `deploy` may run vldeploy's root helper as\n\
             # root, and nothing else: every root-only step of vldeploy goes through it.\n\
             deploy ALL=(root) NOPASSWD: /usr/local/lib/vldeploy/vldeploy-root\n"
        );
    }

    /// The helper parses with `sh -n`, and its verbs refuse arguments outside their grammar.
    #[test]
    fn the_root_helper_parses_and_checks_its_arguments() {
        use std::process::Command;
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/host/vldeploy-root.sh");
        let ok = Command::new("sh").arg("-n").arg(&path).status().unwrap();
        assert!(ok.success());
        let run = |args: &[&str]| {
            let out = Command::new("sh").arg(&path).args(args).output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        assert_eq!(
            run(&["check"]),
            (Some(0), "vldeploy-root ok 1\n".to_owned())
        );
        for (args, message) in [
            (
                &["cron-install", "Shop;x", "f"][..],
                "invalid stack name `Shop;x`",
            ),
            (
                &[
                    "firewall-prepare",
                    "shop",
                    "apply-0000000001-1",
                    "../../etc/passwd",
                ][..],
                "invalid staged file `../../etc/passwd`",
            ),
            (
                &["firewall-boot-install", "shop", "/etc/passwd"][..],
                "invalid staged file `/etc/passwd`",
            ),
            (
                &["firewall-arm", "apply-1;reboot", "1"][..],
                "invalid apply id `apply-1;reboot`",
            ),
            (
                &["cron-install", "shop", "a/b", "f"][..],
                "invalid cron entry name `a/b`",
            ),
            (&["rm", "-rf", "/"][..], "unknown verb `rm`"),
        ] {
            let (code, text) = run(args);
            assert_eq!(code, Some(2), "{args:?}: {text}");
            assert!(text.contains(message), "{args:?}: {text}");
        }
    }
    /// The helper's confinement check passes the firewall's own rendered rulesets and refuses one that
    /// reaches past the table `inet vldeploy`.
    #[test]
    fn the_helper_loads_vldeploys_table_and_no_other() {
        use std::process::Command;
        let start = HELPER.find("confined_ruleset() {").unwrap();
        let end = start + HELPER[start..].find("\n}\n").unwrap() + 3;
        let script = format!(
            "die() {{ echo \"$*\" >&2; exit 2; }}; TABLE='inet vldeploy'\n{}\nconfined_ruleset \"$1\"",
            &HELPER[start..end]
        );
        let check = |path: &Path| {
            Command::new("sh")
                .args(["-c", &script, "sh"])
                .arg(path)
                .status()
                .unwrap()
                .success()
        };
        let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/render/snapshots");
        for name in ["firewall_default.nft", "firewall_ranges.nft"] {
            assert!(check(&snapshots.join(name)), "{name}");
        }
        let tmp = tempfile::tempdir().unwrap();
        for (name, text) in [
            (
                "other.nft",
                "table inet vldeploy {\n}\ntable ip filter {\n}\n",
            ),
            ("flush.nft", "flush ruleset\n"),
            (
                "include.nft",
                "table inet vldeploy {\n\tinclude \"/etc/shadow\"\n}\n",
            ),
            ("unclosed.nft", "table inet vldeploy {\n"),
        ] {
            let path = tmp.path().join(name);
            std::fs::write(&path, text).unwrap();
            assert!(!check(&path), "{name} is refused");
        }
    }
}
