//! Root's steps: every command that needs root calls the root helper, `vldeploy-root`, by one shell function.
//!
//! A builder writes `vldeploy_root VERB ARGS…` and marks the command [`Command::as_root`]; the transport defines
//! the function before running it, as the connection allows ([`prelude`]): for `root`, the helper's text as
//! this binary carries it, run by `sh -c`; for any other user, the installed helper through `sudo -n`, which
//! `vldeploy bootstrap` sets up (the one sudoers rule it writes). One helper, one text: what root runs is the
//! same either way, and the sudoers rule can name one program.

use super::{Command, q};
use crate::layout::HELPER_PATH;

/// The helper, as `bootstrap` installs it and as root connections run it.
pub const HELPER_SCRIPT: &str = include_str!("../../templates/host/vldeploy-root.sh");

/// The shell function root's commands call.
const FUNCTION: &str = "vldeploy_root";

/// How a connection runs root's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// The connection is root's: the helper's text runs as it is.
    Root,
    /// Another user: the installed helper, through `sudo -n`.
    Sudo,
}

impl Privilege {
    /// `Root` for the user `root`, else `Sudo`.
    pub fn of_user(user: &str) -> Self {
        if user == "root" {
            Self::Root
        } else {
            Self::Sudo
        }
    }
}

/// The definition of `vldeploy_root` that precedes a root command's text.
pub fn prelude(privilege: Privilege) -> String {
    match privilege {
        Privilege::Root => format!(
            "{FUNCTION}() {{ sh -c {} vldeploy-root \"$@\"; }}; ",
            q(HELPER_SCRIPT)
        ),
        Privilege::Sudo => format!("{FUNCTION}() {{ sudo -n {HELPER_PATH} \"$@\"; }}; "),
    }
}

/// `vldeploy_root` with `args`, each one shell word.
pub(in crate::remote) fn helper<S: AsRef<str>>(args: &[S]) -> Command {
    Command::argv(std::iter::once(FUNCTION).chain(args.iter().map(AsRef::as_ref))).with_helper()
}

/// The SHA-256 of the helper this binary carries, as `sha256sum` prints it.
pub fn helper_hash() -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(Sha256::digest(HELPER_SCRIPT.as_bytes()))
}

/// What a user that is not root needs, checked once per connection: the helper answers through `sudo -n`
/// (its hash printed after `helper=`), the stack's directory is writable, the engine's socket is usable.
/// Prints `sudo=ok` or `sudo=<sudo's first line of error>`, `helper=<hash>`, `writable=yes|no`,
/// `docker=yes|no`.
pub fn rights(stack_dir: &str, docker_socket: &str) -> Command {
    let d = q(stack_dir);
    let s = q(docker_socket);
    Command::script(format!(
        "if e=$(sudo -n {HELPER_PATH} check 2>&1 </dev/null); then echo sudo=ok; \
         else printf 'sudo=%s\\n' \"$(printf '%s' \"$e\" | head -n 1)\"; fi; \
         printf 'helper=%s\\n' \"$(sha256sum < {HELPER_PATH} 2>/dev/null | cut -d ' ' -f 1)\"; \
         if [ -d {d} ] && [ -w {d} ]; then echo writable=yes; else echo writable=no; fi; \
         if [ -w {s} ]; then echo docker=yes; else echo docker=no; fi"
    ))
}

/// Installs a file staged under the stack's directory (`staged`, relative to it) as
/// `/etc/cron.d/vldeploy-STACK[-NAME]`. Its entries must run as the calling user.
pub fn cron_install(stack: &str, name: Option<&str>, staged: &str) -> Command {
    let mut args = vec!["cron-install", stack];
    args.extend(name);
    args.push(staged);
    helper(&args)
}

/// Installs a staged ruleset as the boot ruleset, with the unit that loads it (under systemd).
pub fn firewall_boot_install(stack: &str, staged: &str) -> Command {
    helper(&["firewall-boot-install", stack, staged])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_runs_the_carried_helper_and_others_the_installed_one_through_sudo() {
        assert_eq!(
            prelude(Privilege::Sudo),
            "vldeploy_root() { sudo -n /usr/local/lib/vldeploy/vldeploy-root \"$@\"; }; "
        );
        let root = prelude(Privilege::Root);
        assert!(
            root.starts_with("vldeploy_root() { sh -c '#!/bin/sh\n"),
            "{root}"
        );
        assert!(root.ends_with("' vldeploy-root \"$@\"; }; "), "{root}");
        assert_eq!(Privilege::of_user("root"), Privilege::Root);
        assert_eq!(Privilege::of_user("deploy"), Privilege::Sudo);
    }

    #[test]
    fn helper_verbs_quote_each_argument() {
        let cron = cron_install("shop", Some("backup"), "staging/cron-backup");
        assert_eq!(
            cron.text(),
            "vldeploy_root cron-install shop backup staging/cron-backup"
        );
        assert!(cron.needs_root() && cron.uses_helper());
        assert_eq!(
            cron_install("shop", None, "a b").text(),
            "vldeploy_root cron-install shop 'a b'"
        );
        assert_eq!(
            firewall_boot_install("shop", "staging/firewall.nft").text(),
            "vldeploy_root firewall-boot-install shop staging/firewall.nft"
        );
    }

    #[test]
    fn rights_are_one_round_trip() {
        assert_eq!(
            rights("/var/lib/vldeploy/shop", "/var/run/docker.sock").text(),
            "if e=$(sudo -n /usr/local/lib/vldeploy/vldeploy-root check 2>&1 </dev/null); then echo sudo=ok; \
             else printf 'sudo=%s\\n' \"$(printf '%s' \"$e\" | head -n 1)\"; fi; \
             printf 'helper=%s\\n' \"$(sha256sum < /usr/local/lib/vldeploy/vldeploy-root 2>/dev/null | cut -d ' ' -f 1)\"; \
             if [ -d /var/lib/vldeploy/shop ] && [ -w /var/lib/vldeploy/shop ]; then echo writable=yes; else echo writable=no; fi; \
             if [ -w /var/run/docker.sock ]; then echo docker=yes; else echo docker=no; fi"
        );
    }

    /// The helper runs the same with the function as without it: `sh -c` of its text, here with a state
    /// directory of a temporary directory's and no `nft` (the timer runs `true`).
    #[test]
    fn the_carried_helper_runs_through_the_function() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{}vldeploy_root check; vldeploy_root nope; echo \"status=$?\"",
                prelude(Privilege::Root)
            ))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.starts_with("vldeploy-root ok "), "{stdout}");
        assert!(stdout.contains("status=2"), "{stdout}");
        assert!(stderr.contains("unknown verb `nope`"), "{stderr}");
        assert_eq!(helper_hash().len(), 64);
    }
}
