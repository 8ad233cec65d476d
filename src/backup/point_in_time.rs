//! Point-in-time recovery through the safe path: pgBackRest restores into a new data volume beside the live one.
//!
//! restore beside (the live database keeps serving) → maintenance page on, backend stopped, the last WAL
//! pushed, postgres stopped → the data volumes swapped → postgres started, recovered to the target and
//! promoted, then the backend, health-gated. Any failure after the backend stopped swaps back (when the swap
//! happened) and starts postgres and the backend on the previous data. The previous data stays in the other
//! volume: the safety copy. The host's restore journal records each phase, as for a dump restore.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::archive::Repository;
use super::journal::{self, Journal, PITR_PHASES};
use super::restore::{Backend, Flow, Phase};
use super::{BackupError, Setup};
use crate::layout::container_name;
use crate::output::Output;
use crate::remote::pitr;
use crate::transport::Remote;

/// What a finished point-in-time restore did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointInTimeReport {
    /// `latest`, or the target in pgBackRest's form.
    pub to: String,
    pub database: String,
    /// The live data volume, which holds the restored data now.
    pub volume: String,
    /// The volume that holds the data from before the restore: the safety copy.
    pub safety_volume: String,
    /// The safety copies of earlier point-in-time restores, removed once this one served: one is kept at a time.
    pub removed_safety: Vec<String>,
    pub phases: Vec<Phase>,
    pub seconds: f64,
}

const RESTORE: usize = 0;
const STOP: usize = 1;
const SWAP: usize = 2;
const START: usize = 3;

/// How long postgres may take to replay WAL up to the target and promote.
const RECOVERY: Duration = Duration::from_mins(10);

/// A failed phase: the step it names, and what went wrong.
type Failure = (&'static str, String);

struct Pitr<'a> {
    flow: Flow<'a>,
    repo: Repository,
    /// The restored data is live (the swap happened): a rollback swaps back.
    swapped: bool,
}

impl<'a> Pitr<'a> {
    #[allow(clippy::unused_self)]
    fn postgres(&self) -> String {
        container_name("postgres")
    }

    fn remote(&self) -> &'a Remote {
        self.flow.remote
    }

    async fn enter(&mut self, j: &mut Journal, phase: usize) -> Result<(), BackupError> {
        j.phase = PITR_PHASES[phase].to_string();
        j.updated = crate::state::now();
        journal::write(self.remote(), &self.flow.setup.stack, j).await?;
        self.flow.timer.start(PITR_PHASES[phase]);
        Ok(())
    }

    async fn sh(&self, cmd: &crate::remote::Command) -> Result<String, String> {
        let out = self.remote().exec(cmd).await.map_err(|e| e.to_string())?;
        if out.success() {
            Ok(out.stdout_str().trim().to_string())
        } else {
            Err(format!(
                "it exited with {}: {}",
                out.status,
                out.stderr_tail(5)
            ))
        }
    }

    /// `cmd` with `input` on its standard input (a secret: never in the command or its error).
    async fn sh_stdin(
        &self,
        cmd: &crate::remote::Command,
        input: String,
    ) -> Result<String, String> {
        let out = self
            .remote()
            .exec_stdin(cmd, input.into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        if out.success() {
            Ok(out.stdout_str().trim().to_string())
        } else {
            Err(format!(
                "it exited with {}: {}",
                out.status,
                out.stderr_tail(8)
            ))
        }
    }

    /// pgBackRest restores into the new volume `j.next` while the live database keeps serving.
    async fn restore_beside(
        &mut self,
        j: &mut Journal,
        options: &[String],
    ) -> Result<(), BackupError> {
        self.enter(j, RESTORE).await?;
        // On a backup host the passphrase is there: pgBackRest's client there asks it for what it needs.
        let cipher = self
            .repo
            .cipher
            .as_ref()
            .filter(|_| !self.repo.on_backup_host);
        let cmd = pitr::restore_beside(
            &self.postgres(),
            &j.next,
            (!self.repo.on_backup_host).then_some(self.repo.path.as_str()),
            cipher.is_some(),
            options,
        );
        let result = match cipher {
            None => self.sh(&cmd).await,
            Some(c) => {
                self.sh_stdin(&cmd, format!("{}\n", c.passphrase.expose()))
                    .await
            }
        };
        if let Err(e) = result {
            let explained = self.repo.explain(&e);
            self.flow
                .timer
                .failed(explained.as_deref().unwrap_or(&e), None);
            let _ = self.remote().exec(&pitr::remove_volume(&j.next)).await;
            let _ = journal::remove(self.remote(), &self.flow.setup.stack).await;
            if let Some(reason) = explained {
                let (reason, help) = reason
                    .split_once("\n  help: ")
                    .map_or((reason.clone(), String::new()), |(r, h)| {
                        (r.to_owned(), h.to_owned())
                    });
                return Err(BackupError::Refused {
                    host: self.flow.host(),
                    file: format!("point in time {}", j.to.as_deref().unwrap_or("latest")),
                    reason: format!("{reason}; the live database and the backend are as they were"),
                    help,
                });
            }
            return Err(BackupError::Restore {
                host: self.flow.host(),
                step: "pgBackRest restore beside the live data".into(),
                detail: e,
                outcome: "nothing was changed: the live database and the backend are as they were"
                    .into(),
            });
        }
        self.flow.timer.done(None);
        Ok(())
    }

    /// The page up, the backend stopped, the last WAL pushed to the repository, postgres stopped.
    async fn stop(&mut self, j: &mut Journal) -> Result<(), Failure> {
        let step = "stop";
        self.enter(j, STOP)
            .await
            .map_err(|e| (step, e.to_string()))?;
        let engine = self.flow.backend.engine;
        self.remote()
            .run(&crate::remote::maintenance::set(&self.flow.setup.stack))
            .await
            .map_err(|e| (step, e.to_string()))?;
        engine
            .stop(&container_name("backend"), Duration::from_secs(30))
            .await
            .map_err(|e| (step, e.to_string()))?;
        // `check` switches WAL and waits until the segment is in the repository: nothing written is left behind.
        // A cluster that is not the stanza's (a new host's, before `restore --from-backup-host`) has nothing
        // there to push: pgBackRest would refuse its system identifier.
        let theirs = matches!(
            cluster_matches(self.remote(), self.flow.setup).await,
            Ok(Some(false))
        );
        let check = crate::remote::backup::in_postgres(
            &self.postgres(),
            &crate::remote::backup::pgbackrest(
                super::archive::CONTAINER_CONF,
                super::archive::STANZA,
                &[],
                "check",
            ),
        );
        if !theirs {
            self.sh(&check).await.map_err(|e| {
                (
                    step,
                    format!("pushing the last WAL (pgBackRest `check`): {e}"),
                )
            })?;
        }
        engine
            .stop(&self.postgres(), Duration::from_mins(1))
            .await
            .map_err(|e| (step, e.to_string()))?;
        self.flow.timer.done(None);
        Ok(())
    }

    async fn swap(&mut self, j: &mut Journal) -> Result<(), Failure> {
        let step = "swap";
        self.enter(j, SWAP)
            .await
            .map_err(|e| (step, e.to_string()))?;
        self.sh(&pitr::swap(&self.postgres(), &j.next))
            .await
            .map_err(|e| (step, e))?;
        self.swapped = true;
        self.flow.timer.done(None);
        Ok(())
    }

    async fn start(&mut self, j: &mut Journal) -> Result<(), Failure> {
        let step = "start";
        self.enter(j, START)
            .await
            .map_err(|e| (step, e.to_string()))?;
        self.postgres_ready().await.map_err(|e| (step, e))?;
        self.flow.start_healthy().await.map_err(|e| (step, e))?;
        self.flow.timer.done(None);
        Ok(())
    }

    /// postgres started (when it is not running) and out of recovery; a container that exits meanwhile (the
    /// target was not reached, WAL missing) fails at once with its last log lines.
    async fn postgres_ready(&self) -> Result<(), String> {
        let engine = self.flow.backend.engine;
        let name = self.postgres();
        let running = |s: Option<crate::engine::ContainerState>| s.is_some_and(|s| s.running);
        if !running(
            engine
                .container_state(&name)
                .await
                .map_err(|e| e.to_string())?,
        ) {
            engine.start(&name).await.map_err(|e| e.to_string())?;
        }
        let user = self.flow.setup.user.clone();
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if !running(
                engine
                    .container_state(&name)
                    .await
                    .map_err(|e| e.to_string())?,
            ) {
                let log = engine.log_tail(&name, 8).await.unwrap_or_default();
                return Err(format!(
                    "postgres stopped during recovery; the last log lines of `{name}`:\n{log}"
                ));
            }
            if self.sh(&pitr::in_recovery(&name, &user)).await.as_deref() == Ok("f") {
                return Ok(());
            }
            if started.elapsed() > RECOVERY {
                return Err(format!(
                    "postgres did not finish recovery within {}s",
                    RECOVERY.as_secs()
                ));
            }
        }
    }

    /// The phases that change the live data, from `from`.
    async fn replace(&mut self, j: &mut Journal, from: usize) -> Result<(), Failure> {
        if from <= STOP {
            self.stop(j).await?;
        } else {
            self.remote()
                .run(&crate::remote::maintenance::set(&self.flow.setup.stack))
                .await
                .map_err(|e| ("stop", e.to_string()))?;
        }
        if from <= SWAP {
            self.swap(j).await?;
        }
        self.start(j).await
    }

    async fn proceed(
        mut self,
        j: &mut Journal,
        from: usize,
    ) -> Result<PointInTimeReport, BackupError> {
        self.swapped = from >= START;
        match self.replace(j, from).await {
            Ok(()) => {
                self.flow.lift(j).await;
                journal::remove(self.remote(), &self.flow.setup.stack).await?;
                let removed_safety = self.remove_earlier_safety(j).await;
                Ok(PointInTimeReport {
                    to: j.to.clone().unwrap_or_default(),
                    database: self.flow.setup.database.clone(),
                    volume: j.aside.clone(),
                    safety_volume: j.next.clone(),
                    removed_safety,
                    phases: self.flow.timer.phases,
                    seconds: self.flow.started.elapsed().as_secs_f64(),
                })
            }
            Err((step, detail)) => Err(self.roll_back(j, step, detail).await),
        }
    }

    /// Once the restored data serves, the safety volumes of earlier point-in-time restores go (this one's stays,
    /// as a dump restore keeps one database from before it). Their names; a failure to list or remove them is a
    /// warning: the restore is done.
    async fn remove_earlier_safety(&self, j: &Journal) -> Vec<String> {
        match self
            .sh(&pitr::remove_earlier_safety(&j.aside, &j.next))
            .await
        {
            Ok(out) => out.lines().map(str::to_string).collect(),
            Err(e) => {
                self.flow.out.warning(format!(
                    "the safety volumes of earlier restores were not removed ({e}); `docker volume ls --filter label=vldeploy.restore=point-in-time` lists them"
                ));
                Vec::new()
            }
        }
    }

    /// Puts the previous data back, postgres and the backend on it, after `step` failed.
    async fn roll_back(mut self, j: &Journal, step: &str, detail: String) -> BackupError {
        let log = if step == "start" {
            self.flow.backend_log(&detail).await
        } else {
            None
        };
        self.flow.timer.failed(&detail, log);
        let (data, data_whole) = self.previous_data_back(j).await;
        let (serving, serving_whole) = match self.back_up().await {
            Ok(()) => {
                self.flow.lift(j).await;
                (
                    "postgres and the backend are healthy and serving it again".to_string(),
                    true,
                )
            }
            Err(e) => (
                format!(
                    "ATTENTION: the shop did not become healthy again ({e}); nginx still shows the maintenance page (remove `{}` to lift it)",
                    self.flow.flag()
                ),
                false,
            ),
        };
        let mut outcome = vec![data, serving];
        if data_whole && serving_whole {
            let _ = journal::remove(self.remote(), &self.flow.setup.stack).await;
        } else {
            outcome.push(
                "`vldeploy restore --abort` finishes putting the previous data back once the cause is fixed"
                    .into(),
            );
        }
        BackupError::Restore {
            host: self.flow.host(),
            step: step.to_string(),
            detail,
            outcome: outcome.join("; "),
        }
    }

    /// Swaps the volumes back when the swap happened. What happened, and whether it went through.
    async fn previous_data_back(&mut self, j: &Journal) -> (String, bool) {
        let database = &self.flow.setup.database;
        if !self.swapped {
            return (
                format!(
                    "the live data of `{database}` was not changed (the restored data is in volume `{}`)",
                    j.next
                ),
                true,
            );
        }
        let engine = self.flow.backend.engine;
        let _ = engine
            .stop(&container_name("backend"), Duration::from_secs(30))
            .await;
        let _ = engine.stop(&self.postgres(), Duration::from_mins(1)).await;
        match self.sh(&pitr::swap(&self.postgres(), &j.next)).await {
            Ok(_) => {
                self.swapped = false;
                (
                    format!(
                        "the previous data of `{database}` is back in volume `{}` (the restored data is in volume `{}`)",
                        j.aside, j.next
                    ),
                    true,
                )
            }
            Err(e) => (
                format!(
                    "ATTENTION: swapping the volumes back failed ({e}); the previous data is in volume `{}`",
                    j.next
                ),
                false,
            ),
        }
    }

    /// postgres and the backend started and healthy.
    async fn back_up(&self) -> Result<(), String> {
        self.postgres_ready().await?;
        self.flow.start_healthy().await
    }
}

fn start<'a>(
    remote: &'a Remote,
    setup: &'a Setup,
    backend: &'a Backend<'a>,
    repo: &Repository,
    out: &'a Output,
) -> Pitr<'a> {
    Pitr {
        flow: Flow::new(remote, setup, backend, out),
        repo: repo.clone(),
        swapped: false,
    }
}

/// Restores the live database of `setup` to `to` (`latest`, or pgBackRest's form of a time) with pgBackRest's
/// restore `options`, from the repository `repo` (its path in the postgres container, its passphrase).
pub async fn restore_to_time(
    remote: &Remote,
    setup: &Setup,
    backend: &Backend<'_>,
    repo: &Repository,
    to: &str,
    options: &[String],
    out: &Output,
) -> Result<PointInTimeReport, BackupError> {
    let mut p = start(remote, setup, backend, repo, out);
    if let Some(j) = journal::read(remote, &setup.stack).await? {
        return Err(BackupError::Refused {
            host: p.flow.host(),
            file: format!("point in time {to}"),
            reason: j.describe(&setup.environment),
            help: "finish or roll back that restore first (the commands above)".into(),
        });
    }
    let live = p
        .sh(&pitr::data_volume(&p.postgres()))
        .await
        .map_err(|detail| BackupError::Step {
            host: p.flow.host(),
            step: "finding postgres' data volume".into(),
            detail,
        })?;
    if live.is_empty() {
        return Err(BackupError::Step {
            host: p.flow.host(),
            step: "finding postgres' data volume".into(),
            detail: format!(
                "`{}` mounts no volume at its data directory; run `vldeploy up` first",
                p.postgres()
            ),
        });
    }
    let next = format!("{live}_pitr_{}", crate::state::now());
    let was_on = p.flow.flag_on().await;
    let mut j = Journal::point_in_time(to, &setup.database, &next, &live, was_on);
    p.restore_beside(&mut j, options).await?;
    p.proceed(&mut j, STOP).await
}

/// Whether the restored data of `j` is live: the data volume's marker names the new volume.
async fn swapped(p: &Pitr<'_>, j: &Journal) -> Result<bool, BackupError> {
    let marker = p
        .sh(&pitr::marker(&p.postgres()))
        .await
        .map_err(|detail| BackupError::Step {
            host: p.flow.host(),
            step: "reading the restore marker of postgres' data volume".into(),
            detail,
        })?;
    Ok(marker == j.next)
}

/// Finishes the interrupted point-in-time restore `j`: from the swap when the restored data is not live yet
/// (its restore again when it had not finished), from the start of postgres when it is.
pub async fn resume(
    remote: &Remote,
    setup: &Setup,
    backend: &Backend<'_>,
    repo: &Repository,
    mut j: Journal,
    out: &Output,
) -> Result<PointInTimeReport, BackupError> {
    let mut p = start(remote, setup, backend, repo, out);
    let from = if swapped(&p, &j).await? {
        START
    } else if j.phase_index() == RESTORE {
        RESTORE
    } else {
        STOP
    };
    out.note(format!("  resuming from `{}` …", PITR_PHASES[from]));
    if from == RESTORE {
        let options =
            super::archive::RestoreTarget::from_journal(j.to.as_deref().unwrap_or("latest"))
                .options();
        p.restore_beside(&mut j, &options).await?;
        return p.proceed(&mut j, STOP).await;
    }
    p.proceed(&mut j, from).await
}

/// Rolls the interrupted point-in-time restore `j` back: the volumes swapped back when the swap happened, the
/// new volume removed, postgres and the backend started and healthy, the page lifted unless it was the
/// operator's.
pub async fn abort(
    remote: &Remote,
    setup: &Setup,
    backend: &Backend<'_>,
    repo: &Repository,
    j: Journal,
    out: &Output,
) -> Result<super::AbortReport, BackupError> {
    let mut p = start(remote, setup, backend, repo, out);
    let host = p.flow.host();
    let fail = |step: &str, detail: String| {
        BackupError::Restore {
        host: host.clone(),
        step: format!("abort: {step}"),
        detail,
        outcome: "the journal is kept: `vldeploy restore --abort` tries again, `vldeploy restore --resume` finishes the restore instead".into(),
    }
    };
    let was_swapped = swapped(&p, &j).await?;
    if was_swapped {
        p.flow.timer.start("swap back");
        let _ = remote
            .run(&crate::remote::maintenance::set(&setup.stack))
            .await;
        p.swapped = true;
        let (text, whole) = p.previous_data_back(&j).await;
        if !whole {
            return Err(fail("swapping the volumes back", text));
        }
        p.flow.timer.done(None);
    }
    p.flow.timer.start("drop leftovers");
    p.sh(&pitr::remove_volume(&j.next))
        .await
        .map_err(|e| fail("removing the restored volume", e))?;
    p.flow.timer.done(None);
    p.flow.timer.start("start backend");
    p.back_up()
        .await
        .map_err(|e| fail("starting postgres and the backend", e))?;
    p.flow.timer.done(None);
    p.flow.lift(&j).await;
    journal::remove(remote, &setup.stack).await?;
    Ok(super::AbortReport {
        database: setup.database.clone(),
        phase: j.phase.clone(),
        swapped_back: was_swapped,
        dropped: vec![format!("volume {}", j.next)],
        maintenance_kept: j.maintenance_was_on,
        safety_backup: None,
        seconds: p.flow.started.elapsed().as_secs_f64(),
    })
}

/// The system identifier of the stanza's current database in `pgbackrest info --output=json`.
pub fn stanza_system_id(info: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(info).ok()?;
    v.get(0)?["db"]
        .as_array()?
        .iter()
        .max_by_key(|d| d["id"].as_u64().unwrap_or(0))?["system-id"]
        .as_u64()
}

/// Whether the cluster postgres runs on `remote` is the one the repository's stanza holds (same system
/// identifier): `None` when either cannot be read (no stanza yet, the repository not answering).
pub async fn cluster_matches(remote: &Remote, setup: &Setup) -> Result<Option<bool>, BackupError> {
    let live = remote
        .exec(&pitr::system_identifier(&setup.container, &setup.user))
        .await?;
    let info = remote
        .exec(&pitr::repository_info(&setup.container, false))
        .await?;
    let live = live
        .success()
        .then(|| live.stdout_str().trim().parse::<u64>().ok())
        .flatten();
    let stanza = info
        .success()
        .then(|| stanza_system_id(&info.stdout_str()))
        .flatten();
    Ok(live.zip(stanza).map(|(l, s)| l == s))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn the_stanzas_system_id_is_its_newest_database() {
        let info = r#"[{"db":[{"id":1,"repo-key":1,"system-id":7001,"version":"15"},{"id":2,"repo-key":1,"system-id":7002,"version":"15"}],"name":"main"}]"#;
        assert_eq!(super::stanza_system_id(info), Some(7002));
        assert_eq!(
            super::stanza_system_id(r#"[{"db":[],"name":"main"}]"#),
            None
        );
        assert_eq!(super::stanza_system_id("[]"), None);
        assert_eq!(super::stanza_system_id("not json"), None);
    }
}
