//! The commands of `vldeploy bootstrap`: reading a fresh host's facts and making it ready, one builder each.

use super::Command;
use crate::transport::shell_quote;

pub(crate) use crate::layout::{HELPER_DIR, HELPER_PATH};

/// The sudoers drop-in bootstrap writes.
pub(crate) const SUDOERS_PATH: &str = "/etc/sudoers.d/vldeploy";

/// Where every stack keeps its state on the host.
pub(crate) const STATE_ROOT: &str = "/var/lib/vldeploy";

/// The engine packages a host may already have (any of them is kept).
pub(crate) const ENGINES: &[&str] = &["docker.io", "docker-ce", "moby-engine"];

/// The packages every vldeploy host needs besides an engine.
pub const TOOLS: &[&str] = &[
    "nftables",
    "cron",
    "gzip",
    "sudo",
    "ca-certificates",
    "procps",
    "iproute2",
];

/// Runs `command` as root through `sudo -n` when the connection is not root's (stdin passes through).
pub(crate) fn as_root(command: Command, connection_user: &str) -> Command {
    if connection_user == "root" {
        return command.as_root();
    }
    Command::argv(["sudo", "-n", "sh", "-c", command.text()]).as_root()
}

/// One round trip that prints every fact bootstrap decides on, in `--- section` blocks: the OS, the installed
/// packages, the engine, the services, the user with its groups and keys, the sudoers drop-in, the helper's
/// hash, and owner, group and mode of each path bootstrap manages.
pub(crate) fn facts(user: &str, dirs: &[&str], sshd_dropin: &str) -> Command {
    let u = shell_quote(user);
    let packages = ENGINES
        .iter()
        .chain(TOOLS)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let paths = [HELPER_DIR, HELPER_PATH, SUDOERS_PATH, STATE_ROOT]
        .iter()
        .chain(dirs)
        .map(|p| shell_quote(p).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Command::script(format!(
        "echo '--- os-release'; cat /etc/os-release 2>/dev/null; \
         echo '--- packages'; dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {packages} 2>/dev/null; \
         echo '--- engine'; command -v dockerd 2>/dev/null; \
         echo '--- services'; for s in docker cron; do \
         printf '%s %s %s\\n' \"$s\" \"$(systemctl is-enabled \"$s\" 2>/dev/null || true)\" \"$(systemctl is-active \"$s\" 2>/dev/null || true)\"; done; \
         echo '--- init'; [ -d /run/systemd/system ] && echo systemd; \
         echo '--- user'; getent passwd {u}; \
         echo '--- groups'; id -nG {u} 2>/dev/null; \
         h=$(getent passwd {u} | cut -d: -f6); \
         echo '--- authorized_keys'; [ -n \"$h\" ] && cat \"$h/.ssh/authorized_keys\" 2>/dev/null; \
         echo '--- sudoers'; cat {SUDOERS_PATH} 2>/dev/null; \
         echo '--- helper'; [ -f {HELPER_PATH} ] && sha256sum < {HELPER_PATH} | cut -d' ' -f1; \
         echo '--- sshd'; cat {dropin} 2>/dev/null; \
         echo '--- paths'; for p in {paths} ${{h:+\"$h/.ssh\" \"$h/.ssh/authorized_keys\"}}; do \
         stat -c '%U %G %a %n' \"$p\" 2>/dev/null; done; \
         echo '--- end'",
        dropin = shell_quote(sshd_dropin),
    ))
}

/// `apt-get update`, then the missing packages without recommends, non-interactively.
pub(crate) fn install_packages(packages: &[String]) -> Command {
    let mut install = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    install.extend(packages.iter().map(String::as_str));
    Command::script(format!(
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && {}",
        Command::argv(install).text()
    ))
}

/// `systemctl enable --now` of the units.
pub(crate) fn enable_now(units: &[String]) -> Command {
    let mut argv = vec!["systemctl", "enable", "--now", "-q"];
    argv.extend(units.iter().map(String::as_str));
    Command::argv(argv)
}

/// Creates `user` with a home directory and bash as its shell.
pub(crate) fn create_user(user: &str) -> Command {
    Command::argv(["useradd", "-m", "-s", "/bin/bash", user])
}

/// Adds `user` to `group` (the group must exist).
pub(crate) fn add_to_group(user: &str, group: &str) -> Command {
    Command::argv(["usermod", "-aG", group, user])
}

/// Writes standard input as `user`'s `~/.ssh/authorized_keys`: `.ssh` 0700 and the file 0600, owned by the
/// user, replaced atomically.
pub(crate) fn write_authorized_keys(user: &str) -> Command {
    let u = shell_quote(user);
    Command::script(format!(
        "set -e; h=$(getent passwd {u} | cut -d: -f6); [ -n \"$h\" ]; \
         install -d -m 0700 -o {u} -g {u} \"$h/.ssh\"; \
         umask 077; cat > \"$h/.ssh/.authorized_keys.vldeploy\"; \
         chown {u}:{u} \"$h/.ssh/.authorized_keys.vldeploy\"; chmod 0600 \"$h/.ssh/.authorized_keys.vldeploy\"; \
         mv -f \"$h/.ssh/.authorized_keys.vldeploy\" \"$h/.ssh/authorized_keys\""
    ))
}

/// Writes standard input as the root helper: root-owned, 0755, in a root-owned 0755 directory.
pub(crate) fn install_helper() -> Command {
    Command::script(format!(
        "set -e; install -d -m 0755 -o root -g root {HELPER_DIR}; umask 022; \
         cat > {HELPER_PATH}.tmp; sh -n {HELPER_PATH}.tmp; \
         chown root:root {HELPER_PATH}.tmp; chmod 0755 {HELPER_PATH}.tmp; mv -f {HELPER_PATH}.tmp {HELPER_PATH}"
    ))
}

/// Writes standard input as the sudoers drop-in: to a temporary file sudo ignores (its name has a dot),
/// checked with `visudo -c -f`, then moved into place with mode 0440. A file that fails the check is removed
/// and the drop-in in place is left as it was.
pub(crate) fn install_sudoers() -> Command {
    let tmp = format!("{SUDOERS_PATH}.vldeploy-tmp");
    Command::script(format!(
        "umask 077; cat > {tmp} && chown root:root {tmp} && chmod 0440 {tmp} && \
         visudo -c -q -f {tmp} && mv -f {tmp} {SUDOERS_PATH} || {{ rm -f {tmp}; exit 1; }}"
    ))
}

/// Makes `path` a directory owned by `owner` (user and group of that name) with `mode`. `recursive` hands
/// over what is already inside too (a stack directory written by root before the deploy user existed).
pub(crate) fn make_dir(path: &str, owner: &str, mode: &str, recursive: bool) -> Command {
    let p = shell_quote(path);
    let o = shell_quote(owner);
    let m = shell_quote(mode);
    let chown = if recursive { "chown -R" } else { "chown" };
    Command::script(format!(
        "mkdir -p {p} && {chown} {o}:{o} {p} && chmod {m} {p}"
    ))
}

/// Makes `path` a file (kept if it exists) owned by `owner` (user and group of that name) with `mode`.
pub(crate) fn make_file(path: &str, owner: &str, mode: &str) -> Command {
    let p = shell_quote(path);
    let o = shell_quote(owner);
    let m = shell_quote(mode);
    Command::script(format!("touch {p} && chown {o}:{o} {p} && chmod {m} {p}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_wraps_the_whole_script_for_a_user_that_is_not_root() {
        let cmd = create_user("deploy");
        assert_eq!(cmd.text(), "useradd -m -s /bin/bash deploy");
        assert_eq!(
            as_root(cmd.clone(), "root").text(),
            "useradd -m -s /bin/bash deploy"
        );
        let wrapped = as_root(cmd, "ubuntu");
        assert_eq!(
            wrapped.text(),
            "sudo -n sh -c 'useradd -m -s /bin/bash deploy'"
        );
        assert!(wrapped.needs_root());
    }

    #[test]
    fn the_facts_are_one_script_with_every_value_quoted() {
        assert_eq!(
            facts(
                "deploy",
                &["/var/lib/vldeploy/shop"],
                "/etc/ssh/sshd_config.d/00-x.conf",
            )
            .text(),
            "echo '--- os-release'; cat /etc/os-release 2>/dev/null; echo '--- packages'; dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' docker.io docker-ce moby-engine nftables cron gzip sudo ca-certificates procps iproute2 2>/dev/null; echo '--- engine'; command -v dockerd 2>/dev/null; echo '--- services'; for s in docker cron; do printf '%s %s %s\\n' \"$s\" \"$(systemctl is-enabled \"$s\" 2>/dev/null || true)\" \"$(systemctl is-active \"$s\" 2>/dev/null || true)\"; done; echo '--- init'; [ -d /run/systemd/system ] && echo systemd; echo '--- user'; getent passwd deploy; echo '--- groups'; id -nG deploy 2>/dev/null; h=$(getent passwd deploy | cut -d: -f6); echo '--- authorized_keys'; [ -n \"$h\" ] && cat \"$h/.ssh/authorized_keys\" 2>/dev/null; echo '--- sudoers'; cat /etc/sudoers.d/vldeploy 2>/dev/null; echo '--- helper'; [ -f /usr/local/lib/vldeploy/vldeploy-root ] && sha256sum < /usr/local/lib/vldeploy/vldeploy-root | cut -d' ' -f1; echo '--- sshd'; cat /etc/ssh/sshd_config.d/00-x.conf 2>/dev/null; echo '--- paths'; for p in /usr/local/lib/vldeploy /usr/local/lib/vldeploy/vldeploy-root /etc/sudoers.d/vldeploy /var/lib/vldeploy /var/lib/vldeploy/shop ${h:+\"$h/.ssh\" \"$h/.ssh/authorized_keys\"}; do stat -c '%U %G %a %n' \"$p\" 2>/dev/null; done; echo '--- end'"
        );
        let hostile = facts("x';rm -rf /;'", &["/var/lib/vldeploy/shop"], "/x")
            .text()
            .to_owned();
        assert!(
            hostile.contains(r"getent passwd 'x'\'';rm -rf /;'\'''; "),
            "{hostile}"
        );
    }

    #[test]
    fn packages_install_without_recommends_after_an_update() {
        let cmd = install_packages(&["docker.io".into(), "nftables".into()]);
        assert_eq!(
            cmd.text(),
            "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q --no-install-recommends docker.io nftables"
        );
        assert_eq!(
            enable_now(&["docker".into(), "cron".into()]).text(),
            "systemctl enable --now -q docker cron"
        );
    }

    #[test]
    fn users_groups_and_directories() {
        assert_eq!(
            add_to_group("deploy", "docker").text(),
            "usermod -aG docker deploy"
        );
        assert_eq!(
            make_dir("/var/lib/vldeploy/shop", "deploy", "0750", true).text(),
            "mkdir -p /var/lib/vldeploy/shop && chown -R deploy:deploy /var/lib/vldeploy/shop && chmod 0750 /var/lib/vldeploy/shop"
        );
        assert_eq!(
            make_file("/var/log/vl_backup.log", "deploy", "0640").text(),
            "touch /var/log/vl_backup.log && chown deploy:deploy /var/log/vl_backup.log && chmod 0640 /var/log/vl_backup.log"
        );
        assert_eq!(
            make_dir("/var/lib/vldeploy", "root", "0755", false).text(),
            "mkdir -p /var/lib/vldeploy && chown root:root /var/lib/vldeploy && chmod 0755 /var/lib/vldeploy"
        );
        assert_eq!(
            write_authorized_keys("deploy").text(),
            "set -e; h=$(getent passwd deploy | cut -d: -f6); [ -n \"$h\" ]; install -d -m 0700 -o deploy -g deploy \"$h/.ssh\"; \
             umask 077; cat > \"$h/.ssh/.authorized_keys.vldeploy\"; chown deploy:deploy \"$h/.ssh/.authorized_keys.vldeploy\"; \
             chmod 0600 \"$h/.ssh/.authorized_keys.vldeploy\"; mv -f \"$h/.ssh/.authorized_keys.vldeploy\" \"$h/.ssh/authorized_keys\""
        );
    }

    #[test]
    fn the_sudoers_file_is_checked_before_it_is_moved_into_place() {
        assert_eq!(
            install_sudoers().text(),
            "umask 077; cat > /etc/sudoers.d/vldeploy.vldeploy-tmp && chown root:root /etc/sudoers.d/vldeploy.vldeploy-tmp && \
             chmod 0440 /etc/sudoers.d/vldeploy.vldeploy-tmp && visudo -c -q -f /etc/sudoers.d/vldeploy.vldeploy-tmp && \
             mv -f /etc/sudoers.d/vldeploy.vldeploy-tmp /etc/sudoers.d/vldeploy || { rm -f /etc/sudoers.d/vldeploy.vldeploy-tmp; exit 1; }"
        );
        assert_eq!(
            install_helper().text(),
            "set -e; install -d -m 0755 -o root -g root /usr/local/lib/vldeploy; umask 022; \
             cat > /usr/local/lib/vldeploy/vldeploy-root.tmp; sh -n /usr/local/lib/vldeploy/vldeploy-root.tmp; \
             chown root:root /usr/local/lib/vldeploy/vldeploy-root.tmp; chmod 0755 /usr/local/lib/vldeploy/vldeploy-root.tmp; \
             mv -f /usr/local/lib/vldeploy/vldeploy-root.tmp /usr/local/lib/vldeploy/vldeploy-root"
        );
    }
}
