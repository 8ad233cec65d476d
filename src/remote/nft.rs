//! The firewall's commands, all of them root's: observe the table, and the safe apply's automatic revert.
//!
//! Each apply gets a directory `apply-<time>-<pid>` under the state directory holding `candidate.nft` (the new
//! ruleset), `revert.nft` (the table as it was, or its absence), `timer.pid` and, once decided, `outcome`.
//! The timer and the confirmation race for `mkdir decided`: exactly one of them wins, so a late confirmation
//! can never leave a reverted host believed confirmed, nor a confirmed host reverted.

use super::Command;
use crate::layout::{
    FIREWALL_RULESET as RULESET_PATH, FIREWALL_STATE_DIR as STATE_DIR, FIREWALL_TABLE as TABLE,
    FIREWALL_UNIT,
};

/// The shell commands of one apply, for the directory `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revert {
    pub dir: String,
}

impl Revert {
    /// A new apply directory named after `now` (seconds) and this process.
    pub fn new(now: u64) -> Self {
        Self {
            dir: format!("{STATE_DIR}/apply-{now:010}-{}", std::process::id()),
        }
    }

    pub fn candidate(&self) -> String {
        format!("{}/candidate.nft", self.dir)
    }

    /// Saves the current table as `revert.nft` and checks it and the candidate with `nft -c`. Changes nothing.
    ///
    /// When the loaded table carries the hash of the installed file (`live_hash`), that file is the saved
    /// table; otherwise the table's listing is (after deleting ours, so a missing table is restored as missing).
    pub fn prepare(&self, live_hash: Option<&str>) -> Command {
        let d = &self.dir;
        let listing = format!(
            "{{ echo 'table {TABLE}'; echo 'delete table {TABLE}'; \
             nft list table {TABLE} 2>/dev/null || true; }} > {d}/revert.nft"
        );
        let saved = match live_hash {
            Some(h) if h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':') => format!(
                "if grep -qx '# vldeploy-hash: {h}' {RULESET_PATH} 2>/dev/null; \
                 then cp {RULESET_PATH} {d}/revert.nft; else {listing}; fi"
            ),
            _ => listing,
        };
        root(format!(
            "set -e; {saved}; nft -c -f {d}/candidate.nft; nft -c -f {d}/revert.nft"
        ))
    }

    /// Starts the timer in its own session (so it outlives the SSH channel) and prints its pid.
    pub fn arm(&self, seconds: u64) -> Command {
        let d = &self.dir;
        let timer = format!(
            "echo $$ > {d}/timer.pid; sleep {seconds}; \
             if mkdir {d}/decided 2>/dev/null; then nft -f {d}/revert.nft; \
             echo \"reverted $? $(date +%s)\" > {d}/outcome; fi; rm -f {d}/timer.pid"
        );
        root(format!(
            "setsid sh -c '{timer}' </dev/null >/dev/null 2>&1 & \
             i=0; while [ ! -s {d}/timer.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
             cat {d}/timer.pid"
        ))
    }

    /// Loads the candidate: one nft transaction.
    pub fn apply(&self) -> Command {
        root(format!("nft -f {}", self.candidate()))
    }

    /// Claims the decision for the confirmation and stops the timer. Prints `confirmed`, or the outcome the
    /// timer wrote when it won.
    pub fn disarm(&self) -> Command {
        let d = &self.dir;
        root(format!(
            "if mkdir {d}/decided 2>/dev/null; then echo \"confirmed $(date +%s)\" > {d}/outcome; \
             p=$(cat {d}/timer.pid 2>/dev/null); \
             if [ -n \"$p\" ]; then pkill -P \"$p\" sleep 2>/dev/null; kill \"$p\" 2>/dev/null; fi; \
             rm -f {d}/timer.pid; echo confirmed; \
             else cat {d}/outcome 2>/dev/null || echo undecided; fi"
        ))
    }

    /// What the timer or the confirmation wrote.
    pub fn outcome(&self) -> Command {
        root(format!("cat {}/outcome 2>/dev/null || true", self.dir))
    }

    /// Removes all but the newest five apply directories.
    pub fn prune() -> Command {
        root(format!(
            "ls -d {STATE_DIR}/apply-* 2>/dev/null | sort | head -n -5 | while read -r d; do rm -rf \"$d\"; done; true"
        ))
    }
}

/// Prints the SHA-256 of the loaded table's listing (needs `$t` to hold it).
const LISTING_SHA: &str = "printf '%s\\n' \"$t\" | sha256sum | cut -d ' ' -f 1";

/// Records the loaded table's listing as the confirmed one.
pub fn record_listing() -> Command {
    root(format!(
        "t=$(nft list table {TABLE}) && mkdir -p {STATE_DIR} && {LISTING_SHA} > {STATE_DIR}/listing.sha256"
    ))
}

/// Observes the host's firewall; each line of output is `key=value`.
pub fn observe() -> Command {
    root(format!(
        "command -v nft >/dev/null 2>&1 && echo nft=yes; \
         [ \"$(id -u)\" = 0 ] && echo root=yes; \
         if command -v nft >/dev/null 2>&1 && ! e=$(nft list tables 2>&1 >/dev/null); then \
           echo \"unreadable=$(printf '%s' \"$e\" | head -n 1)\"; fi; \
         echo \"ssh=${{SSH_CONNECTION:-}}\"; \
         if t=$(nft list table {TABLE} 2>/dev/null); then echo table=yes; \
           printf '%s\\n' \"$t\" | sed -n 's/^[[:space:]]*comment \"\\(vldeploy sha256:[0-9a-f]*\\)\".*/live=\\1/p' | head -n 1; \
           echo \"listing=$({LISTING_SHA})\"; echo \"recorded=$(cat {STATE_DIR}/listing.sha256 2>/dev/null)\"; fi; \
         sed -n 's/^# vldeploy-hash: \\(.*\\)/file=vldeploy \\1/p' {RULESET_PATH} 2>/dev/null | head -n 1; \
         {BOOT_OBSERVE}; \
         for d in {STATE_DIR}/apply-*; do \
           [ -s \"$d/timer.pid\" ] && kill -0 \"$(cat \"$d/timer.pid\")\" 2>/dev/null && echo \"armed=$d\"; \
         done; \
         last=$(ls -d {STATE_DIR}/apply-* 2>/dev/null | sort | tail -n 1); \
         [ -n \"$last\" ] && [ -s \"$last/outcome\" ] && echo \"outcome=$(head -n 1 \"$last/outcome\")\"; \
         true"
    ))
}

/// The shell snippet that prints `boot=…`.
const BOOT_OBSERVE: &str = "if [ -d /run/systemd/system ]; then \
    echo \"boot=systemd:$(systemctl is-enabled vldeploy-firewall.service 2>/dev/null)\"; \
  elif grep -qs /etc/vldeploy/firewall.nft /usr/local/sbin/sandbox-init /etc/rc.local; then \
    echo boot=init-script; \
  else echo boot=none; fi";

/// Makes systemd load the unit that installs the ruleset at boot.
pub fn enable_boot_unit() -> Command {
    root(format!(
        "systemctl daemon-reload && systemctl enable {FIREWALL_UNIT} >/dev/null 2>&1"
    ))
}

fn root(text: String) -> Command {
    Command::script(text).as_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_and_the_confirmation_race_for_one_directory() {
        let r = Revert::new(1_700_000_000);
        let d = format!(
            "/var/lib/vldeploy/firewall/apply-1700000000-{}",
            std::process::id()
        );
        assert_eq!(r.dir, d);
        assert_eq!(
            r.arm(30).text(),
            format!(
                "setsid sh -c 'echo $$ > {d}/timer.pid; sleep 30; if mkdir {d}/decided 2>/dev/null; then nft -f {d}/revert.nft; \
                 echo \"reverted $? $(date +%s)\" > {d}/outcome; fi; rm -f {d}/timer.pid' </dev/null >/dev/null 2>&1 & \
                 i=0; while [ ! -s {d}/timer.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat {d}/timer.pid"
            )
        );
        assert_eq!(
            r.disarm().text(),
            format!(
                "if mkdir {d}/decided 2>/dev/null; then echo \"confirmed $(date +%s)\" > {d}/outcome; \
                 p=$(cat {d}/timer.pid 2>/dev/null); if [ -n \"$p\" ]; then pkill -P \"$p\" sleep 2>/dev/null; kill \"$p\" 2>/dev/null; fi; \
                 rm -f {d}/timer.pid; echo confirmed; else cat {d}/outcome 2>/dev/null || echo undecided; fi"
            )
        );
    }

    #[test]
    fn prepare_saves_the_installed_file_when_its_hash_is_loaded() {
        let r = Revert {
            dir: "/var/lib/vldeploy/firewall/apply-1".into(),
        };
        assert_eq!(
            r.prepare(Some("sha256:0123456789abcdef")).text(),
            "set -e; if grep -qx '# vldeploy-hash: sha256:0123456789abcdef' /etc/vldeploy/firewall.nft 2>/dev/null; then cp /etc/vldeploy/firewall.nft /var/lib/vldeploy/firewall/apply-1/revert.nft; else { echo 'table inet vldeploy'; echo 'delete table inet vldeploy'; nft list table inet vldeploy 2>/dev/null || true; } > /var/lib/vldeploy/firewall/apply-1/revert.nft; fi; nft -c -f /var/lib/vldeploy/firewall/apply-1/candidate.nft; nft -c -f /var/lib/vldeploy/firewall/apply-1/revert.nft"
        );
        // A hash that is not one shell word is never interpolated: the listing is saved instead.
        assert_eq!(r.prepare(Some("sha256:x y")).text(), r.prepare(None).text());
        assert_eq!(
            r.prepare(Some("sha256:x y")).text(),
            "set -e; { echo 'table inet vldeploy'; echo 'delete table inet vldeploy'; nft list table inet vldeploy 2>/dev/null || true; } > /var/lib/vldeploy/firewall/apply-1/revert.nft; nft -c -f /var/lib/vldeploy/firewall/apply-1/candidate.nft; nft -c -f /var/lib/vldeploy/firewall/apply-1/revert.nft"
        );
    }

    /// Runs the real scripts (without nft) in a temporary directory: the confirmation wins before the timer
    /// fires, and after it fired the confirmation reports the revert.
    #[test]
    fn the_scripts_decide_once() {
        use std::process::Command;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let run = |script: &str| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(script)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let fake = |name: &str| {
            let r = Revert {
                dir: tmp.path().join(name).display().to_string(),
            };
            std::fs::create_dir_all(&r.dir).unwrap_or_else(|e| panic!("{e}"));
            r
        };
        let early = fake("early");
        // No nft here: the revert runs `touch` or `true` instead.
        let pid = run(&early.arm(30).text().replace("nft -f", "touch"));
        assert!(pid.parse::<u32>().is_ok(), "{pid}");
        assert_eq!(run(early.disarm().text()), "confirmed");
        assert!(!std::path::Path::new(&early.dir).join("timer.pid").exists());

        let late = fake("late");
        run(&late.arm(1).text().replace("nft -f", "true"));
        for _ in 0..100 {
            if std::path::Path::new(&late.dir).join("outcome").exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(run(late.disarm().text()).starts_with("reverted 0 "));
    }

    #[test]
    fn every_firewall_command_is_roots_and_exact() {
        let r = Revert {
            dir: "/var/lib/vldeploy/firewall/apply-1".into(),
        };
        assert_eq!(
            r.apply().text(),
            "nft -f /var/lib/vldeploy/firewall/apply-1/candidate.nft"
        );
        assert_eq!(
            r.outcome().text(),
            "cat /var/lib/vldeploy/firewall/apply-1/outcome 2>/dev/null || true"
        );
        assert_eq!(
            Revert::prune().text(),
            "ls -d /var/lib/vldeploy/firewall/apply-* 2>/dev/null | sort | head -n -5 | while read -r d; do rm -rf \"$d\"; done; true"
        );
        assert_eq!(
            r.prepare(None).text(),
            "set -e; { echo 'table inet vldeploy'; echo 'delete table inet vldeploy'; nft list table inet vldeploy 2>/dev/null || true; } > /var/lib/vldeploy/firewall/apply-1/revert.nft; nft -c -f /var/lib/vldeploy/firewall/apply-1/candidate.nft; nft -c -f /var/lib/vldeploy/firewall/apply-1/revert.nft"
        );
        assert_eq!(
            r.arm(30).text(),
            "setsid sh -c 'echo $$ > /var/lib/vldeploy/firewall/apply-1/timer.pid; sleep 30; if mkdir /var/lib/vldeploy/firewall/apply-1/decided 2>/dev/null; then nft -f /var/lib/vldeploy/firewall/apply-1/revert.nft; echo \"reverted $? $(date +%s)\" > /var/lib/vldeploy/firewall/apply-1/outcome; fi; rm -f /var/lib/vldeploy/firewall/apply-1/timer.pid' </dev/null >/dev/null 2>&1 & i=0; while [ ! -s /var/lib/vldeploy/firewall/apply-1/timer.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat /var/lib/vldeploy/firewall/apply-1/timer.pid"
        );
        assert_eq!(
            r.disarm().text(),
            "if mkdir /var/lib/vldeploy/firewall/apply-1/decided 2>/dev/null; then echo \"confirmed $(date +%s)\" > /var/lib/vldeploy/firewall/apply-1/outcome; p=$(cat /var/lib/vldeploy/firewall/apply-1/timer.pid 2>/dev/null); if [ -n \"$p\" ]; then pkill -P \"$p\" sleep 2>/dev/null; kill \"$p\" 2>/dev/null; fi; rm -f /var/lib/vldeploy/firewall/apply-1/timer.pid; echo confirmed; else cat /var/lib/vldeploy/firewall/apply-1/outcome 2>/dev/null || echo undecided; fi"
        );
        assert_eq!(
            record_listing().text(),
            "t=$(nft list table inet vldeploy) && mkdir -p /var/lib/vldeploy/firewall && printf '%s\\n' \"$t\" | sha256sum | cut -d ' ' -f 1 > /var/lib/vldeploy/firewall/listing.sha256"
        );
        assert_eq!(
            enable_boot_unit().text(),
            "systemctl daemon-reload && systemctl enable vldeploy-firewall.service >/dev/null 2>&1"
        );
        assert_eq!(
            observe().text(),
            "command -v nft >/dev/null 2>&1 && echo nft=yes; [ \"$(id -u)\" = 0 ] && echo root=yes; if command -v nft >/dev/null 2>&1 && ! e=$(nft list tables 2>&1 >/dev/null); then echo \"unreadable=$(printf '%s' \"$e\" | head -n 1)\"; fi; echo \"ssh=${SSH_CONNECTION:-}\"; if t=$(nft list table inet vldeploy 2>/dev/null); then echo table=yes; printf '%s\\n' \"$t\" | sed -n 's/^[[:space:]]*comment \"\\(vldeploy sha256:[0-9a-f]*\\)\".*/live=\\1/p' | head -n 1; echo \"listing=$(printf '%s\\n' \"$t\" | sha256sum | cut -d ' ' -f 1)\"; echo \"recorded=$(cat /var/lib/vldeploy/firewall/listing.sha256 2>/dev/null)\"; fi; sed -n 's/^# vldeploy-hash: \\(.*\\)/file=vldeploy \\1/p' /etc/vldeploy/firewall.nft 2>/dev/null | head -n 1; if [ -d /run/systemd/system ]; then echo \"boot=systemd:$(systemctl is-enabled vldeploy-firewall.service 2>/dev/null)\"; elif grep -qs /etc/vldeploy/firewall.nft /usr/local/sbin/sandbox-init /etc/rc.local; then echo boot=init-script; else echo boot=none; fi; for d in /var/lib/vldeploy/firewall/apply-*; do [ -s \"$d/timer.pid\" ] && kill -0 \"$(cat \"$d/timer.pid\")\" 2>/dev/null && echo \"armed=$d\"; done; last=$(ls -d /var/lib/vldeploy/firewall/apply-* 2>/dev/null | sort | tail -n 1); [ -n \"$last\" ] && [ -s \"$last/outcome\" ] && echo \"outcome=$(head -n 1 \"$last/outcome\")\"; true"
        );
        for c in [
            r.apply(),
            r.outcome(),
            r.prepare(None),
            r.arm(1),
            r.disarm(),
            Revert::prune(),
            record_listing(),
            enable_boot_unit(),
            observe(),
        ] {
            assert!(c.needs_root(), "{c:?}");
        }
    }
}
