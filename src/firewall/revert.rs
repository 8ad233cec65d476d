//! The automatic revert: the host's own timer that puts the previous table back unless an apply is confirmed.
//!
//! Each apply gets a directory `apply-<time>-<pid>` under the state directory holding `candidate.nft` (the new
//! ruleset), `revert.nft` (the table as it was, or its absence), `timer.pid` and, once decided, `outcome`.
//! The timer and the confirmation race for `mkdir decided`: exactly one of them wins, so a late confirmation
//! can never leave a reverted host believed confirmed, nor a confirmed host reverted.

use super::{RULESET_PATH, STATE_DIR, TABLE};

/// The shell commands of one apply, for the directory `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Revert {
    pub(crate) dir: String,
}

impl Revert {
    /// A new apply directory named after `now` (seconds) and this process.
    pub(crate) fn new(now: u64) -> Self {
        Self {
            dir: format!("{STATE_DIR}/apply-{now:010}-{}", std::process::id()),
        }
    }

    pub(crate) fn candidate(&self) -> String {
        format!("{}/candidate.nft", self.dir)
    }

    /// Saves the current table as `revert.nft` and checks it and the candidate with `nft -c`. Changes nothing.
    ///
    /// When the loaded table carries the hash of the installed file (`live_hash`), that file is the saved
    /// table; otherwise the table's listing is (after deleting ours, so a missing table is restored as missing).
    pub(crate) fn prepare(&self, live_hash: Option<&str>) -> String {
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
        format!("set -e; {saved}; nft -c -f {d}/candidate.nft; nft -c -f {d}/revert.nft")
    }

    /// Starts the timer in its own session (so it outlives the SSH channel) and prints its pid.
    pub(crate) fn arm(&self, seconds: u64) -> String {
        let d = &self.dir;
        let timer = format!(
            "echo $$ > {d}/timer.pid; sleep {seconds}; \
             if mkdir {d}/decided 2>/dev/null; then nft -f {d}/revert.nft; \
             echo \"reverted $? $(date +%s)\" > {d}/outcome; fi; rm -f {d}/timer.pid"
        );
        format!(
            "setsid sh -c '{timer}' </dev/null >/dev/null 2>&1 & \
             i=0; while [ ! -s {d}/timer.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
             cat {d}/timer.pid"
        )
    }

    /// Loads the candidate: one nft transaction.
    pub(crate) fn apply(&self) -> String {
        format!("nft -f {}", self.candidate())
    }

    /// Claims the decision for the confirmation and stops the timer. Prints `confirmed`, or the outcome the
    /// timer wrote when it won.
    pub(crate) fn disarm(&self) -> String {
        let d = &self.dir;
        format!(
            "if mkdir {d}/decided 2>/dev/null; then echo \"confirmed $(date +%s)\" > {d}/outcome; \
             p=$(cat {d}/timer.pid 2>/dev/null); \
             if [ -n \"$p\" ]; then pkill -P \"$p\" sleep 2>/dev/null; kill \"$p\" 2>/dev/null; fi; \
             rm -f {d}/timer.pid; echo confirmed; \
             else cat {d}/outcome 2>/dev/null || echo undecided; fi"
        )
    }

    /// What the timer or the confirmation wrote.
    pub(crate) fn outcome(&self) -> String {
        format!("cat {}/outcome 2>/dev/null || true", self.dir)
    }

    /// Removes all but the newest five apply directories.
    pub(crate) fn prune() -> String {
        format!(
            "ls -d {STATE_DIR}/apply-* 2>/dev/null | sort | head -n -5 | while read -r d; do rm -rf \"$d\"; done; true"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_and_the_confirmation_race_for_one_directory() {
        let r = Revert::new(1_700_000_000);
        assert!(
            r.dir
                .starts_with("/var/lib/vldeploy/firewall/apply-1700000000-")
        );
        let arm = r.arm(30);
        assert!(
            arm.starts_with("setsid sh -c 'echo $$ > /var/lib/vldeploy/firewall/apply-"),
            "{arm}"
        );
        assert!(arm.contains("sleep 30; if mkdir "), "{arm}");
        assert!(arm.contains("/decided 2>/dev/null; then nft -f "), "{arm}");
        assert!(
            r.disarm()
                .starts_with(&format!("if mkdir {}/decided", r.dir))
        );
        assert!(r.prepare(None).contains("nft list table inet vldeploy"));
        let known = r.prepare(Some("sha256:0123456789abcdef"));
        assert!(
            known.contains(
                "grep -qx '# vldeploy-hash: sha256:0123456789abcdef' /etc/vldeploy/firewall.nft"
            ),
            "{known}"
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
        let pid = run(&early.arm(30).replace("nft -f", "touch"));
        assert!(pid.parse::<u32>().is_ok(), "{pid}");
        assert_eq!(run(&early.disarm()), "confirmed");
        assert!(!std::path::Path::new(&early.dir).join("timer.pid").exists());

        let late = fake("late");
        run(&late.arm(1).replace("nft -f", "true"));
        for _ in 0..100 {
            if std::path::Path::new(&late.dir).join("outcome").exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(run(&late.disarm()).starts_with("reverted 0 "));
    }
}
