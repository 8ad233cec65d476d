//! The restore journal on the host: which phase a restore is in, its databases and who runs it, so that an
//! interrupted restore is seen by the next command and finished (`--resume`) or rolled back (`--abort`).

use serde::{Deserialize, Serialize};

use super::BackupError;
use crate::layout;
use crate::transport::Remote;

/// The phases a restore records before it begins each, in order.
pub const PHASES: [&str; 5] = [
    "safety backup",
    "stop backend",
    "load",
    "swap",
    "start backend",
];

/// The phases of a point-in-time restore, in order.
pub const PITR_PHASES: [&str; 4] = ["restore beside", "stop", "swap", "start"];

/// A restore in progress, as recorded on the host (`/var/lib/vldeploy/<stack>/restore.json`, mode 0600).
/// Written atomically before each phase begins; removed once the restore finished or was rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// One of [`PHASES`]: the phase that began last (it may have finished: the next one was not recorded yet).
    pub phase: String,
    /// The backup file being restored (in the backup directory).
    pub file: String,
    /// The live database.
    pub database: String,
    /// Where the backup is loaded (`<db>_restore_<stamp>`).
    pub next: String,
    /// Where the live data goes at the swap (`<db>_before_<stamp>`).
    pub aside: String,
    /// The backup of the live data taken first, once it exists.
    #[serde(default)]
    pub safety_backup: Option<String>,
    /// The maintenance page was already on before the restore (an operator's): it stays on afterwards.
    pub maintenance_was_on: bool,
    /// A point-in-time restore's target (`latest`, or `2026-12-02 13:14:15+00`): its phases are
    /// [`PITR_PHASES`], `next` is the new data volume and `aside` the live one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `user@machine` that runs the restore.
    pub actor: String,
    pub machine: String,
    pub pid: u32,
    /// The command line that runs it.
    pub command: String,
    /// When the restore started and when this phase began (seconds since the epoch).
    pub started: u64,
    pub updated: u64,
}

/// Where the journal of `stack` lives on the host.
pub fn journal_path(stack: &str) -> String {
    layout::restore_journal(stack)
}

impl Journal {
    /// The journal of a restore of `file` into `database` that starts now, by this process.
    pub fn new(
        file: &str,
        database: &str,
        next: &str,
        aside: &str,
        maintenance_was_on: bool,
    ) -> Self {
        let now = crate::state::now();
        let command = std::env::args()
            .enumerate()
            .map(|(i, a)| {
                if i == 0 {
                    std::path::Path::new(&a)
                        .file_name()
                        .map_or(a.clone(), |n| n.to_string_lossy().into_owned())
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            phase: PHASES[0].to_string(),
            file: file.to_string(),
            database: database.to_string(),
            next: next.to_string(),
            aside: aside.to_string(),
            safety_backup: None,
            maintenance_was_on,
            to: None,
            actor: crate::state::actor(),
            machine: crate::state::machine(),
            pid: std::process::id(),
            command,
            started: now,
            updated: now,
        }
    }

    /// The journal the host records for `stack`, if any (running or not).
    pub async fn read_from(remote: &Remote, stack: &str) -> Result<Option<Self>, BackupError> {
        read(remote, stack).await
    }

    /// The journal taken over by this process (a `--resume` or `--abort`).
    pub fn adopt(&mut self) {
        self.actor = crate::state::actor();
        self.machine = crate::state::machine();
        self.pid = std::process::id();
        self.updated = crate::state::now();
    }

    /// The journal of a point-in-time restore to `to` of `database`, from the new volume `next` into the live
    /// one `aside`.
    pub fn point_in_time(
        to: &str,
        database: &str,
        next: &str,
        aside: &str,
        maintenance_was_on: bool,
    ) -> Self {
        let mut j = Self::new(
            &format!("point in time {to}"),
            database,
            next,
            aside,
            maintenance_was_on,
        );
        j.to = Some(to.to_string());
        j.phase = PITR_PHASES[0].to_string();
        j
    }

    /// The position of the recorded phase in [`PHASES`], or in [`PITR_PHASES`] for a point-in-time restore (an
    /// unknown phase counts as the first).
    pub fn phase_index(&self) -> usize {
        let phases: &[&str] = if self.to.is_some() {
            &PITR_PHASES
        } else {
            &PHASES
        };
        phases.iter().position(|p| *p == self.phase).unwrap_or(0)
    }

    /// What an interrupted restore left, in one sentence, and the two ways out.
    pub fn describe(&self, env: &str) -> String {
        let db = &self.database;
        let (source, data) = if self.to.is_some() {
            let data = match self.phase_index() {
                0 | 1 => format!(
                    "`{db}` still holds the data from before the restore (the restored data is in volume `{}`)",
                    self.next
                ),
                _ => format!(
                    "the data volume of `{db}` holds either the data from before the restore or the restored data (the swap may have happened; the other is in volume `{}`)",
                    self.next
                ),
            };
            (format!("to the {}", self.file), data)
        } else {
            let data = match self.phase_index() {
                0..=2 => format!("`{db}` still holds the data from before the restore"),
                3 => format!(
                    "`{db}` holds either the data from before the restore or the restored data (the swap may have happened)"
                ),
                _ => format!("`{db}` holds the restored data"),
            };
            (format!("from `{}`", self.file), data)
        };
        let page = if self.phase_index() == 0 {
            ""
        } else {
            "; the API answers with the maintenance page"
        };
        format!(
            "a restore of `{db}` {source} was interrupted in phase `{phase}` (started {when} by {who}, pid {pid}: `{cmd}`); {data}{page}\n  help: `vldeploy restore --resume -e {env}` finishes it, `vldeploy restore --abort -e {env}` puts the previous data back",
            phase = self.phase,
            when = when(self.started),
            who = self.actor,
            pid = self.pid,
            cmd = self.command,
        )
    }
}

fn when(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch))
        .to_string()
}

fn journal_error(remote: &Remote, stack: &str, action: &str, detail: String) -> BackupError {
    BackupError::Step {
        host: remote.name().to_string(),
        step: format!("{action} the restore journal `{}`", journal_path(stack)),
        detail,
    }
}

/// Records `journal` for `stack` (atomically: a reader sees the previous record or this one, never a part).
pub(super) async fn write(
    remote: &Remote,
    stack: &str,
    journal: &Journal,
) -> Result<(), BackupError> {
    let json = serde_json::to_vec_pretty(journal).unwrap_or_default();
    remote
        .upload(&journal_path(stack), &json, 0o600)
        .await
        .map_err(|e| journal_error(remote, stack, "writing", e.to_string()))
}

/// The journal of `stack`, if a restore left one.
pub(super) async fn read(remote: &Remote, stack: &str) -> Result<Option<Journal>, BackupError> {
    let Some(bytes) = remote
        .read_file(&journal_path(stack))
        .await
        .map_err(|e| journal_error(remote, stack, "reading", e.to_string()))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        journal_error(
            remote,
            stack,
            "reading",
            format!(
                "{e}\n  help: the file is not a journal vldeploy wrote; look at it, then remove it on the host once the databases are as they should be"
            ),
        )
    })
}

/// Removes the journal of `stack` (the restore finished or was rolled back).
pub(super) async fn remove(remote: &Remote, stack: &str) -> Result<(), BackupError> {
    remote
        .run(&crate::remote::file::remove(&[journal_path(stack)]))
        .await
        .map(|_| ())
        .map_err(|e| journal_error(remote, stack, "removing", e.to_string()))
}

/// The journal of `stack` when its restore is no longer running: the process that wrote it does not hold the
/// stack's lock any more (the lock is free, stale, held by someone else, or its process is gone).
pub async fn interrupted(remote: &Remote, stack: &str) -> Result<Option<Journal>, BackupError> {
    let Some(journal) = read(remote, stack).await? else {
        return Ok(None);
    };
    let holder = crate::state::lock_inspect(remote, stack)
        .await
        .map_err(|e| journal_error(remote, stack, "checking the lock beside", e.to_string()))?;
    if running(&journal, holder.as_ref()) {
        Ok(None)
    } else {
        Ok(Some(journal))
    }
}

/// Whether the lock `holder` (with seconds idle) is the live process that wrote `journal`.
pub(crate) fn running(journal: &Journal, holder: Option<&(crate::state::LockInfo, u64)>) -> bool {
    holder.is_some_and(|(info, idle)| {
        info.pid == journal.pid
            && info.machine == journal.machine
            && crate::state::lock_alive(info, *idle)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::LockInfo;

    fn journal(phase: &str) -> Journal {
        Journal {
            phase: phase.into(),
            file: "db_backup_20250101_020000.sql.gz".into(),
            database: "shop".into(),
            next: "shop_restore_1".into(),
            aside: "shop_before_1".into(),
            safety_backup: None,
            maintenance_was_on: false,
            to: None,
            actor: "ana@laptop".into(),
            machine: "laptop".into(),
            pid: 4242,
            command: "vldeploy restore latest --yes".into(),
            started: 1_700_000_000,
            updated: 1_700_000_000,
        }
    }

    #[test]
    fn the_journal_round_trips_as_json() {
        let j = journal("load");
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<Journal>(&text).unwrap(), j);
        assert_eq!(j.phase_index(), 2);
        assert_eq!(journal("bogus").phase_index(), 0);
        assert_eq!(journal_path("shop"), "/var/lib/vldeploy/shop/restore.json");
    }

    #[test]
    fn the_description_names_phase_who_and_both_ways_out() {
        assert_eq!(
            journal("load").describe("production"),
            "a restore of `shop` from `db_backup_20250101_020000.sql.gz` was interrupted in phase `load` (started 2023-11-14T22:13:20Z by ana@laptop, pid 4242: `vldeploy restore latest --yes`); `shop` still holds the data from before the restore; the API answers with the maintenance page\n  help: `vldeploy restore --resume -e production` finishes it, `vldeploy restore --abort -e production` puts the previous data back"
        );
        assert!(
            journal("start backend")
                .describe("p")
                .contains("`shop` holds the restored data")
        );
        assert!(
            journal("swap")
                .describe("p")
                .contains("the swap may have happened")
        );
        assert!(
            !journal("safety backup")
                .describe("p")
                .contains("maintenance page")
        );
    }

    #[test]
    fn a_point_in_time_restore_names_its_target_and_the_new_volume() {
        let mut j = journal("stop");
        j.to = Some("2026-12-02 13:14:15+00".into());
        j.file = "point in time 2026-12-02 13:14:15+00".into();
        j.next = "shop_pgdata_pitr_1".into();
        assert_eq!(j.phase_index(), 1);
        assert_eq!(
            j.describe("production"),
            "a restore of `shop` to the point in time 2026-12-02 13:14:15+00 was interrupted in phase `stop` (started 2023-11-14T22:13:20Z by ana@laptop, pid 4242: `vldeploy restore latest --yes`); `shop` still holds the data from before the restore (the restored data is in volume `shop_pgdata_pitr_1`); the API answers with the maintenance page\n  help: `vldeploy restore --resume -e production` finishes it, `vldeploy restore --abort -e production` puts the previous data back"
        );
        j.phase = "swap".into();
        assert!(j.describe("p").contains("the swap may have happened"));
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<Journal>(&text).unwrap(), j);
        assert!(
            !serde_json::to_string(&journal("load"))
                .unwrap()
                .contains("\"to\"")
        );
    }

    #[test]
    fn a_journal_is_running_only_while_its_writer_holds_a_live_lock() {
        let j = journal("load");
        let other_machine = |pid: u32, idle: u64| {
            (
                LockInfo {
                    holder: "ana@laptop".into(),
                    machine: "laptop".into(),
                    pid,
                    command: "restore".into(),
                    started: 1,
                    token: "t".into(),
                },
                idle,
            )
        };
        assert!(!running(&j, None), "a free lock: interrupted");
        assert!(running(&j, Some(&other_machine(4242, 5))));
        assert!(
            !running(&j, Some(&other_machine(4242, 500))),
            "a stale lock"
        );
        assert!(
            !running(&j, Some(&other_machine(7, 5))),
            "someone else holds the lock"
        );
    }
}
