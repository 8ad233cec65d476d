//! The commands of an sshd hardening: write and check the drop-in, arm the host's own revert, restart sshd, disarm.
//!
//! Like the firewall's revert, each hardening gets a directory `harden-<time>-<pid>` under
//! `/var/lib/vldeploy/sshd` holding the previous drop-in (if any), `timer.pid` and, once decided, `outcome`.
//! The timer and the confirmation race for `mkdir decided`: exactly one of them wins.

use super::Command;
use crate::transport::shell_quote;

/// The drop-in: first in `sshd_config.d` so its settings win (sshd keeps the first value it reads).
pub(crate) const DROPIN_PATH: &str = "/etc/ssh/sshd_config.d/00-vldeploy-hardening.conf";

/// Where each hardening keeps its revert.
pub(crate) const STATE_DIR: &str = "/var/lib/vldeploy/sshd";

/// Restarts sshd, whichever name its unit has (`ssh` on Debian and Ubuntu, `sshd` elsewhere). Not a reload:
/// `systemctl reload` returns when the signal is sent, before sshd has read its settings again, so a new
/// connection right after it may still meet the old ones; `restart` of the `Type=notify` unit returns once
/// the new sshd is ready. Open sessions survive it (`KillMode=process`).
const RELOAD: &str = "{ systemctl restart ssh 2>/dev/null || systemctl restart sshd; }";

/// The drop-in's text; `deny` names users refused a login (empty but in tests).
pub(crate) fn dropin(deny: &[&str]) -> String {
    let mut text = String::from(
        "# Written by `vldeploy bootstrap --harden-ssh`: key-only login, no root login.\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin no\n",
    );
    if !deny.is_empty() {
        text.push_str("DenyUsers ");
        text.push_str(&deny.join(" "));
        text.push('\n');
    }
    text
}

/// The commands of one hardening, for the directory `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hardening {
    pub(crate) dir: String,
}

impl Hardening {
    /// A new directory named after `now` (seconds) and this process.
    pub(crate) fn new(now: u64) -> Self {
        Self {
            dir: format!("{STATE_DIR}/harden-{now:010}-{}", std::process::id()),
        }
    }

    /// Makes the directory (the older ones beyond the newest five are removed) and saves the drop-in in place.
    pub(crate) fn prepare(&self) -> Command {
        let d = shell_quote(&self.dir);
        Command::script(format!(
            "set -e; mkdir -p {d}; chmod 0700 {STATE_DIR} {d}; \
             ls -d {STATE_DIR}/harden-* 2>/dev/null | sort | head -n -5 | while read -r o; do rm -rf \"$o\"; done; \
             if [ -f {DROPIN_PATH} ]; then cp -p {DROPIN_PATH} {d}/previous.conf; fi"
        ))
    }

    /// Starts the timer in its own session (so it outlives the SSH channel) and prints its pid. When it fires
    /// unclaimed it puts the previous drop-in back (or removes ours) and restarts sshd.
    pub(crate) fn arm(&self, seconds: u64) -> Command {
        let d = &self.dir;
        let timer = format!(
            "echo $$ > {d}/timer.pid; sleep {seconds}; \
             if mkdir {d}/decided 2>/dev/null; then \
             if [ -f {d}/previous.conf ]; then cp -p {d}/previous.conf {DROPIN_PATH}; else rm -f {DROPIN_PATH}; fi; \
             {RELOAD}; echo \"reverted $? $(date +%s)\" > {d}/outcome; fi; rm -f {d}/timer.pid"
        );
        Command::script(format!(
            "setsid sh -c {} </dev/null >/dev/null 2>&1 & \
             i=0; while [ ! -s {d}/timer.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
             cat {d}/timer.pid",
            shell_quote(&timer)
        ))
    }

    /// Writes standard input as the drop-in (0644) and checks the whole configuration with `sshd -t`, then
    /// that its settings are the ones in effect for a root login by password (`sshd -T`); on either failure the
    /// previous drop-in is put back and the command fails.
    pub(crate) fn write_and_check(&self) -> Command {
        let d = &self.dir;
        Command::script(format!(
            "umask 022; cat > {DROPIN_PATH}.tmp && chmod 0644 {DROPIN_PATH}.tmp && mv -f {DROPIN_PATH}.tmp {DROPIN_PATH} && \
             sshd -t && eff=$(sshd -T -C user=root,host=localhost,addr=127.0.0.1 2>&1) && \
             echo \"$eff\" | grep -qx 'permitrootlogin no' && echo \"$eff\" | grep -qx 'passwordauthentication no' && \
             echo \"$eff\" | grep -qx 'kbdinteractiveauthentication no' \
             || {{ s=$?; if [ -f {d}/previous.conf ]; then cp -p {d}/previous.conf {DROPIN_PATH}; else rm -f {DROPIN_PATH}; fi; \
             echo \"$eff\" | grep -E '^(permitrootlogin|passwordauthentication|kbdinteractiveauthentication) ' >&2; exit $s; }}"
        ))
    }

    /// Restarts sshd: new connections get the new settings; open ones are kept.
    pub(crate) fn restart() -> Command {
        Command::script(RELOAD)
    }

    /// Claims the decision for the confirmation and stops the timer. Prints `confirmed`, or the outcome the
    /// timer wrote when it won.
    pub(crate) fn disarm(&self) -> Command {
        let d = &self.dir;
        Command::script(format!(
            "if mkdir {d}/decided 2>/dev/null; then echo \"confirmed $(date +%s)\" > {d}/outcome; \
             p=$(cat {d}/timer.pid 2>/dev/null); \
             if [ -n \"$p\" ]; then pkill -P \"$p\" sleep 2>/dev/null; kill \"$p\" 2>/dev/null; fi; \
             rm -f {d}/timer.pid; echo confirmed; \
             else cat {d}/outcome 2>/dev/null || echo undecided; fi"
        ))
    }

    /// What the timer or the confirmation wrote.
    pub(crate) fn outcome(&self) -> Command {
        Command::script(format!("cat {}/outcome 2>/dev/null || true", self.dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dropin_turns_off_passwords_and_root() {
        assert_eq!(
            dropin(&[]),
            "# Written by `vldeploy bootstrap --harden-ssh`: key-only login, no root login.\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n"
        );
        assert_eq!(
            dropin(&["deploy", "ops"]),
            "# Written by `vldeploy bootstrap --harden-ssh`: key-only login, no root login.\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\nDenyUsers deploy ops\n"
        );
    }

    #[test]
    fn the_timer_puts_the_previous_dropin_back_and_restarts_sshd() {
        let h = Hardening {
            dir: "/var/lib/vldeploy/sshd/harden-0000000001-7".into(),
        };
        let d = &h.dir;
        assert_eq!(
            h.arm(30).text(),
            format!(
                "setsid sh -c 'echo $$ > {d}/timer.pid; sleep 30; if mkdir {d}/decided 2>/dev/null; then \
                 if [ -f {d}/previous.conf ]; then cp -p {d}/previous.conf {DROPIN_PATH}; else rm -f {DROPIN_PATH}; fi; \
                 {{ systemctl restart ssh 2>/dev/null || systemctl restart sshd; }}; echo \"reverted $? $(date +%s)\" > {d}/outcome; fi; \
                 rm -f {d}/timer.pid' </dev/null >/dev/null 2>&1 & \
                 i=0; while [ ! -s {d}/timer.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat {d}/timer.pid"
            )
        );
        assert_eq!(
            h.disarm().text(),
            format!(
                "if mkdir {d}/decided 2>/dev/null; then echo \"confirmed $(date +%s)\" > {d}/outcome; \
                 p=$(cat {d}/timer.pid 2>/dev/null); if [ -n \"$p\" ]; then pkill -P \"$p\" sleep 2>/dev/null; kill \"$p\" 2>/dev/null; fi; \
                 rm -f {d}/timer.pid; echo confirmed; else cat {d}/outcome 2>/dev/null || echo undecided; fi"
            )
        );
        assert_eq!(
            Hardening::restart().text(),
            "{ systemctl restart ssh 2>/dev/null || systemctl restart sshd; }"
        );
        assert_eq!(
            h.write_and_check().text(),
            "umask 022; cat > /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf.tmp && chmod 0644 /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf.tmp && mv -f /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf.tmp /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf && sshd -t && eff=$(sshd -T -C user=root,host=localhost,addr=127.0.0.1 2>&1) && echo \"$eff\" | grep -qx 'permitrootlogin no' && echo \"$eff\" | grep -qx 'passwordauthentication no' && echo \"$eff\" | grep -qx 'kbdinteractiveauthentication no' || { s=$?; if [ -f /var/lib/vldeploy/sshd/harden-0000000001-7/previous.conf ]; then cp -p /var/lib/vldeploy/sshd/harden-0000000001-7/previous.conf /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf; else rm -f /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf; fi; echo \"$eff\" | grep -E '^(permitrootlogin|passwordauthentication|kbdinteractiveauthentication) ' >&2; exit $s; }"
        );
        assert_eq!(
            h.outcome().text(),
            "cat /var/lib/vldeploy/sshd/harden-0000000001-7/outcome 2>/dev/null || true"
        );
    }

    #[test]
    fn prepare_saves_the_dropin_in_a_private_directory() {
        let h = Hardening::new(1);
        assert_eq!(
            h.dir,
            format!(
                "/var/lib/vldeploy/sshd/harden-0000000001-{}",
                std::process::id()
            )
        );
        let h = Hardening {
            dir: "/var/lib/vldeploy/sshd/harden-0000000001-7".into(),
        };
        assert_eq!(
            h.prepare().text(),
            "set -e; mkdir -p /var/lib/vldeploy/sshd/harden-0000000001-7; chmod 0700 /var/lib/vldeploy/sshd /var/lib/vldeploy/sshd/harden-0000000001-7; ls -d /var/lib/vldeploy/sshd/harden-* 2>/dev/null | sort | head -n -5 | while read -r o; do rm -rf \"$o\"; done; if [ -f /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf ]; then cp -p /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf /var/lib/vldeploy/sshd/harden-0000000001-7/previous.conf; fi"
        );
        let spaced = Hardening {
            dir: "/tmp/a b".into(),
        };
        assert_eq!(
            spaced.prepare().text(),
            "set -e; mkdir -p '/tmp/a b'; chmod 0700 /var/lib/vldeploy/sshd '/tmp/a b'; \
             ls -d /var/lib/vldeploy/sshd/harden-* 2>/dev/null | sort | head -n -5 | while read -r o; do rm -rf \"$o\"; done; \
             if [ -f /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf ]; then \
             cp -p /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf '/tmp/a b'/previous.conf; fi"
        );
    }

    /// The real scripts (the restart replaced, the drop-in path redirected) decide once: a confirmation before
    /// the timer fires wins; after the timer fired, the previous drop-in is back.
    #[test]
    fn the_scripts_decide_once_and_restore_the_previous_dropin() {
        use std::process::Command as Sh;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dropin = tmp.path().join("dropin.conf");
        let run = |script: &str| {
            let script = script
                .replace(DROPIN_PATH, &dropin.display().to_string())
                .replace(RELOAD, "true");
            let out = Sh::new("sh")
                .arg("-c")
                .arg(script)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let fake = |name: &str| {
            let h = Hardening {
                dir: tmp.path().join(name).display().to_string(),
            };
            std::fs::create_dir_all(&h.dir).unwrap_or_else(|e| panic!("{e}"));
            h
        };
        std::fs::write(&dropin, "old\n").unwrap_or_else(|e| panic!("{e}"));
        let early = fake("early");
        std::fs::copy(
            &dropin,
            std::path::Path::new(&early.dir).join("previous.conf"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(run(early.arm(30).text()).parse::<u32>().is_ok());
        std::fs::write(&dropin, "new\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run(early.disarm().text()), "confirmed");
        assert_eq!(
            std::fs::read_to_string(&dropin).unwrap_or_default(),
            "new\n"
        );

        let late = fake("late");
        std::fs::copy(
            std::path::Path::new(&early.dir).join("previous.conf"),
            std::path::Path::new(&late.dir).join("previous.conf"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        run(late.arm(1).text());
        for _ in 0..100 {
            if std::path::Path::new(&late.dir).join("outcome").exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(run(late.disarm().text()).starts_with("reverted 0 "));
        assert_eq!(
            std::fs::read_to_string(&dropin).unwrap_or_default(),
            "old\n"
        );
    }
}
