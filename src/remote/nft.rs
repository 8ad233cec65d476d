//! The firewall's commands, all of them root's: observe the table, and the safe apply's automatic revert.
//!
//! Each is a verb of the root helper (`templates/host/vldeploy-root.sh`), which keeps every apply in root's own
//! directory `apply-<time>-<pid>`: `candidate.nft` (the new ruleset, copied from the file the connection's user
//! staged under the stack's directory), `revert.nft` (the table as it was, or its absence), `timer.pid` and,
//! once decided, `outcome`. The timer and the confirmation race for `mkdir decided`: exactly one of them wins,
//! so a late confirmation can never leave a reverted host believed confirmed, nor a confirmed host reverted.

use super::Command;
use super::root::helper;
use crate::layout::{FIREWALL_STATE_DIR as STATE_DIR, STAGING, stack_dir};

/// The commands of one apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revert {
    pub stack: String,
    /// `apply-<10 digits>-<pid>`.
    pub id: String,
}

impl Revert {
    /// A new apply of `stack`, named after `now` (seconds) and this process.
    pub fn new(stack: &str, now: u64) -> Self {
        Self {
            stack: stack.to_owned(),
            id: format!("apply-{now:010}-{}", std::process::id()),
        }
    }

    /// Root's directory of this apply on the host.
    pub fn dir(&self) -> String {
        format!("{STATE_DIR}/{}", self.id)
    }

    /// The candidate as staged, relative to the stack's directory.
    pub fn staged(&self) -> String {
        format!("{STAGING}/firewall-{}.nft", self.id)
    }

    /// Where the connection's user uploads the candidate.
    pub fn candidate(&self) -> String {
        format!("{}/{}", stack_dir(&self.stack), self.staged())
    }

    /// Copies the staged candidate into the apply, saves the current table as `revert.nft` and checks both
    /// with `nft -c`. Changes nothing.
    ///
    /// When the loaded table carries the hash of the installed file (`live_hash`), that file is the saved
    /// table; otherwise the table's listing is (after deleting ours, so a missing table is restored as missing).
    /// A hash that is not plain letters, digits and `:` is not passed on.
    pub fn prepare(&self, live_hash: Option<&str>) -> Command {
        let staged = self.staged();
        let mut args = vec!["firewall-prepare", &self.stack, &self.id, &staged];
        if let Some(h) = live_hash
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':'))
        {
            args.push(h);
        }
        helper(&args)
    }

    /// Starts the timer in its own session (so it outlives the SSH channel) and prints its pid.
    pub fn arm(&self, seconds: u64) -> Command {
        helper(&["firewall-arm", &self.id, &seconds.to_string()])
    }

    /// Loads the candidate: one nft transaction.
    pub fn apply(&self) -> Command {
        helper(&["firewall-load", &self.id])
    }

    /// Claims the decision for the confirmation and stops the timer. Prints `confirmed`, or the outcome the
    /// timer wrote when it won.
    pub fn disarm(&self) -> Command {
        helper(&["firewall-disarm", &self.id])
    }

    /// What the timer or the confirmation wrote.
    pub fn outcome(&self) -> Command {
        helper(&["firewall-outcome", &self.id])
    }

    /// Removes all but the newest five applies.
    pub fn prune() -> Command {
        helper(&["firewall-prune"])
    }
}

/// Records the loaded table's listing as the confirmed one.
pub fn record_listing() -> Command {
    helper(&["firewall-record"])
}

/// Observes the host's firewall; each line of output is `key=value`. The SSH port comes from this connection's
/// own environment (sudo does not pass it on), the rest from the helper.
pub fn observe() -> Command {
    Command::combine([
        Command::script("echo \"ssh=${SSH_CONNECTION:-}\""),
        helper(&["firewall-observe"]),
    ])
}

/// The staged boot ruleset, relative to the stack's directory.
pub fn boot_staged() -> String {
    format!("{STAGING}/firewall.nft")
}

/// Installs the staged boot ruleset (`boot_staged`) as `/etc/vldeploy/firewall.nft` and, under systemd, the unit
/// that loads it at boot, enabled.
pub fn boot_install(stack: &str) -> Command {
    helper(&["firewall-boot-install", stack, &boot_staged()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::root::{HELPER_SCRIPT, Privilege, prelude};

    fn apply_1() -> Revert {
        Revert {
            stack: "shop".into(),
            id: "apply-0000000001-7".into(),
        }
    }

    #[test]
    fn an_apply_is_named_after_the_time_and_this_process() {
        let r = Revert::new("shop", 1_700_000_000);
        let id = format!("apply-1700000000-{}", std::process::id());
        assert_eq!(r.id, id);
        assert_eq!(r.dir(), format!("/var/lib/vldeploy/firewall/{id}"));
        assert_eq!(
            r.candidate(),
            format!("/var/lib/vldeploy/shop/staging/firewall-{id}.nft")
        );
    }

    #[test]
    fn prepare_passes_on_only_a_hash_of_plain_characters() {
        let r = apply_1();
        assert_eq!(
            r.prepare(Some("sha256:0123456789abcdef")).text(),
            "vldeploy_root firewall-prepare shop apply-0000000001-7 staging/firewall-apply-0000000001-7.nft sha256:0123456789abcdef"
        );
        assert_eq!(r.prepare(Some("sha256:x y")).text(), r.prepare(None).text());
        assert_eq!(
            r.prepare(None).text(),
            "vldeploy_root firewall-prepare shop apply-0000000001-7 staging/firewall-apply-0000000001-7.nft"
        );
    }

    #[test]
    fn every_firewall_command_is_a_verb_of_the_helper() {
        let r = apply_1();
        assert_eq!(
            r.arm(30).text(),
            "vldeploy_root firewall-arm apply-0000000001-7 30"
        );
        assert_eq!(
            r.apply().text(),
            "vldeploy_root firewall-load apply-0000000001-7"
        );
        assert_eq!(
            r.disarm().text(),
            "vldeploy_root firewall-disarm apply-0000000001-7"
        );
        assert_eq!(
            r.outcome().text(),
            "vldeploy_root firewall-outcome apply-0000000001-7"
        );
        assert_eq!(Revert::prune().text(), "vldeploy_root firewall-prune");
        assert_eq!(record_listing().text(), "vldeploy_root firewall-record");
        assert_eq!(
            observe().text(),
            "echo \"ssh=${SSH_CONNECTION:-}\" && vldeploy_root firewall-observe"
        );
        assert_eq!(
            boot_install("shop").text(),
            "vldeploy_root firewall-boot-install shop staging/firewall.nft"
        );
        for c in [
            r.apply(),
            r.outcome(),
            r.prepare(None),
            r.arm(1),
            r.disarm(),
            Revert::prune(),
            record_listing(),
            observe(),
            boot_install("shop"),
        ] {
            assert!(c.needs_root() && c.uses_helper(), "{c:?}");
        }
    }

    /// The boot unit the helper writes loads the file it installs, where the host's layout says they live.
    #[test]
    fn the_helpers_boot_unit_loads_the_installed_ruleset() {
        use crate::layout::{FIREWALL_RULESET, FIREWALL_TABLE, FIREWALL_UNIT_PATH};
        assert!(HELPER_SCRIPT.contains(&format!("\nRULESET={FIREWALL_RULESET}\n")));
        assert!(HELPER_SCRIPT.contains(&format!("\nUNIT={FIREWALL_UNIT_PATH}\n")));
        assert!(HELPER_SCRIPT.contains(&format!("\nTABLE='{FIREWALL_TABLE}'\n")));
        assert!(HELPER_SCRIPT.contains("\nExecStart=/usr/sbin/nft -f $RULESET\n"));
        assert!(HELPER_SCRIPT.contains("\nWantedBy=multi-user.target\nEOF\n"));
    }

    /// The helper's text with its state under `dir` and a fake `nft` that records what it was asked.
    fn helper_in(dir: &std::path::Path) -> String {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
        let nft = bin.join("nft");
        std::fs::write(
            &nft,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}/nft.log\n[ \"$1\" = list ] && exit 1\nexit 0\n",
                dir.display()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::process::Command::new("chmod")
            .args(["0755", &nft.display().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("{e}"));
        let d = dir.display();
        HELPER_SCRIPT
            .replace("STATE=/var/lib/vldeploy\n", &format!("STATE={d}/state\n"))
            .replace(
                "APPLIES=/var/lib/vldeploy/firewall\n",
                &format!("APPLIES={d}/applies\n"),
            )
            .replace("\nPATH=", &format!("\nPATH={d}/bin:"))
            .replace(
                "RULESET=/etc/vldeploy/firewall.nft",
                &format!("RULESET={d}/firewall.nft"),
            )
    }

    /// Runs the real helper verbs (with a fake `nft`) in a temporary directory: a staged candidate is copied and
    /// checked, the confirmation wins before the timer fires, and after it fired the confirmation reports the
    /// revert. A candidate that touches another table is refused before nft sees it.
    #[test]
    fn the_helper_decides_once() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let script = helper_in(tmp.path());
        let prelude = prelude(Privilege::Root)
            .replace(&super::super::q(HELPER_SCRIPT), &super::super::q(&script));
        let run = |cmd: &Command| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{prelude}{}", cmd.text()))
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            (
                String::from_utf8_lossy(&out.stdout).trim().to_owned(),
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                out.status.success(),
            )
        };
        let stage = |r: &Revert, text: &str| {
            let path = tmp.path().join("state/shop").join(r.staged());
            std::fs::create_dir_all(path.parent().unwrap_or(tmp.path()))
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        };
        let ours = "table inet vldeploy\ndelete table inet vldeploy\ntable inet vldeploy {\n}\n";

        let early = Revert {
            stack: "shop".into(),
            id: "apply-0000000001-1".into(),
        };
        stage(&early, ours);
        let (_, err, ok) = run(&early.prepare(None));
        assert!(ok, "{err}");
        let applied = tmp.path().join("applies").join(&early.id);
        assert_eq!(
            std::fs::read_to_string(applied.join("candidate.nft")).unwrap_or_default(),
            ours
        );
        assert!(applied.join("revert.nft").exists());
        let (pid, err, ok) = run(&early.arm(30));
        assert!(ok && pid.parse::<u32>().is_ok(), "{pid} {err}");
        assert_eq!(run(&early.disarm()).0, "confirmed");
        assert!(!applied.join("timer.pid").exists());
        assert!(run(&early.outcome()).0.starts_with("confirmed "));

        let late = Revert {
            stack: "shop".into(),
            id: "apply-0000000002-1".into(),
        };
        stage(&late, ours);
        assert!(run(&late.prepare(None)).2);
        run(&late.arm(1));
        let outcome = tmp.path().join("applies").join(&late.id).join("outcome");
        for _ in 0..100 {
            if outcome.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(run(&late.disarm()).0.starts_with("reverted 0 "));
        let log = std::fs::read_to_string(tmp.path().join("nft.log")).unwrap_or_default();
        assert!(
            log.contains(&format!(
                "-f {}/applies/{}/revert.nft",
                tmp.path().display(),
                late.id
            )),
            "{log}"
        );

        let hostile = Revert {
            stack: "shop".into(),
            id: "apply-0000000003-1".into(),
        };
        stage(&hostile, "flush ruleset\n");
        let (_, err, ok) = run(&hostile.prepare(None));
        assert!(!ok && err.contains("touches more than the table"), "{err}");
        let bad_id = Revert {
            stack: "shop".into(),
            id: "../../etc".into(),
        };
        let (_, err, ok) = run(&bad_id.arm(1));
        assert!(!ok && err.contains("invalid apply id"), "{err}");
    }
}
