//! The certificates' commands: the state directories, the symlink swap of a release, rollback, pruning, renewal.

use super::{Command, q};
use crate::layout;

/// Makes the private state directory, the certificates' directory and the ACME webroot.
pub fn prepare_dirs(stack: &str) -> Command {
    let private = layout::tls_dir(stack);
    Command::combine([
        Command::argv(["mkdir", "-p", "-m", "0700"]).operands(&[&private]),
        Command::argv(["chmod", "0700"]).operands(&[&private]),
        Command::argv(["mkdir", "-p"])
            .operands(&[layout::certs_dir(stack), layout::acme_webroot(stack)]),
    ])
}

/// Points `current` at `release` (a path relative to the certificates' directory) and `previous` at the old
/// target; prints the old target (empty when there was none).
pub fn switch_current(stack: &str, release: &str) -> Command {
    Command::script(format!(
        "cd {d} && old=$(readlink current 2>/dev/null || true) && ln -sfn {r} current.new && mv -T current.new current \
         && if [ -n \"$old\" ]; then ln -sfn \"$old\" previous.new && mv -T previous.new previous; fi; echo \"$old\"",
        d = q(&layout::certs_dir(stack)),
        r = q(release),
    ))
}

/// Points `current` back at `old` (or removes it when there was none) and removes the release that failed.
pub fn rollback(stack: &str, old: Option<&str>) -> Command {
    let d = q(&layout::certs_dir(stack));
    Command::script(match old {
        Some(old) => format!(
            "cd {d} && failed=$(readlink current) && ln -sfn {o} current.new && mv -T current.new current && \
             [ \"$failed\" != {o} ] && rm -rf \"$failed\"; true",
            o = q(old)
        ),
        None => format!(
            "cd {d} && failed=$(readlink current) && rm -f current && rm -rf \"$failed\"; true"
        ),
    })
}

/// Removes releases that are neither `current` nor `previous`.
pub fn prune(stack: &str) -> Command {
    Command::script(format!(
        "cd {d} && c=$(readlink current); p=$(readlink previous); for r in releases/*; do \
         [ \"$r\" = \"$c\" ] || [ \"$r\" = \"$p\" ] || rm -rf \"$r\"; done; true",
        d = q(&layout::certs_dir(stack)),
    ))
}

/// Runs the renewal on the host now, under the lock this run already holds.
pub fn renew_on_host(stack: &str, force: bool) -> Command {
    Command::script(format!(
        "{} renew-on-host --stack {} --lock-held --trigger vldeploy{}",
        q(&layout::host_binary(stack)),
        q(stack),
        if force { " --force" } else { "" }
    ))
}

/// Prints the SHA-256 of the host's vldeploy binary; nothing when there is none.
pub fn binary_hash(stack: &str) -> Command {
    Command::script(format!(
        "sha256sum {} 2>/dev/null",
        q(&layout::host_binary(stack))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_dirs_keeps_the_state_private() {
        assert_eq!(
            prepare_dirs("shop").text(),
            "mkdir -p -m 0700 /var/lib/vldeploy/shop/tls && chmod 0700 /var/lib/vldeploy/shop/tls && mkdir -p /var/lib/vldeploy/shop/certs /var/lib/vldeploy/shop/acme"
        );
    }

    #[test]
    fn switch_keeps_the_previous_target() {
        assert_eq!(
            switch_current("shop", "releases/1700000000-ab12").text(),
            "cd /var/lib/vldeploy/shop/certs && old=$(readlink current 2>/dev/null || true) && ln -sfn releases/1700000000-ab12 current.new && mv -T current.new current \
             && if [ -n \"$old\" ]; then ln -sfn \"$old\" previous.new && mv -T previous.new previous; fi; echo \"$old\""
        );
    }

    #[test]
    fn rollback_and_prune_are_exact() {
        assert_eq!(
            rollback("shop", Some("releases/1-a")).text(),
            "cd /var/lib/vldeploy/shop/certs && failed=$(readlink current) && ln -sfn releases/1-a current.new && mv -T current.new current && \
             [ \"$failed\" != releases/1-a ] && rm -rf \"$failed\"; true"
        );
        assert_eq!(
            rollback("shop", None).text(),
            "cd /var/lib/vldeploy/shop/certs && failed=$(readlink current) && rm -f current && rm -rf \"$failed\"; true"
        );
        assert_eq!(
            prune("shop").text(),
            "cd /var/lib/vldeploy/shop/certs && c=$(readlink current); p=$(readlink previous); for r in releases/*; do \
             [ \"$r\" = \"$c\" ] || [ \"$r\" = \"$p\" ] || rm -rf \"$r\"; done; true"
        );
    }

    #[test]
    fn renewal_runs_the_host_binary() {
        assert_eq!(
            renew_on_host("a b", true).text(),
            "'/var/lib/vldeploy/a b/bin/vldeploy' renew-on-host --stack 'a b' --lock-held --trigger vldeploy --force"
        );
        assert_eq!(
            binary_hash("shop").text(),
            "sha256sum /var/lib/vldeploy/shop/bin/vldeploy 2>/dev/null"
        );
    }
}
