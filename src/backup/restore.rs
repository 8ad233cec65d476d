//! Restoring the live database from a backup so that a failure at any step leaves the previous data serving.
//!
//! verify the file → safety backup → maintenance page on, backend stopped → load into a fresh database in one
//! transaction → swap it in by renaming → backend started, health-gated → previous database dropped. Any failure
//! after the backend stopped swaps back (when the swap happened), starts the backend and waits for its health.
//! Before each phase begins, the host's restore journal records it, so that a restore killed part-way is
//! finished by [`resume`] or rolled back by [`abort`], each from what the databases show.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::journal::{self, Journal, PHASES};
use super::postgres::db_name;
use super::{BackupError, Postgres, Setup, check, load, run_backup};
use crate::engine::Engine;
use crate::layout::container_name;
use crate::output::{LogTail, Output, Step};
use crate::transport::Remote;

/// One timed phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
    /// Bytes the phase read (the backup, for `verify` and `load`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// What a finished restore did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreReport {
    pub file: String,
    pub database: String,
    /// The backup of the live data taken before anything changed.
    pub safety_backup: String,
    /// The previous database, kept until the next restore.
    pub previous_database: String,
    pub phases: Vec<Phase>,
    pub seconds: f64,
}

/// How the backend is started and checked.
pub struct Backend<'a> {
    pub engine: &'a Engine,
    /// A readable description of its health check, for errors.
    pub check: String,
    pub health_timeout: Duration,
    /// On a swarm: the backend service, scaled to 0 and back instead of a container stopped and started.
    pub swarm: Option<SwarmBackend>,
}

/// The backend as a service of a swarm, scaled through a manager.
pub struct SwarmBackend {
    pub manager: std::sync::Arc<Remote>,
    /// `<stack>_backend`.
    pub service: String,
    /// What it runs outside a restore, and is scaled back to.
    pub replicas: u32,
}

/// How long scaling the backend service may take to converge.
const SCALE_LIMIT_S: u64 = 300;

impl SwarmBackend {
    /// Scales the service to `replicas` and waits until its tasks converged.
    async fn scale(&self, replicas: u32) -> Result<(), String> {
        let cmd = crate::remote::service_task::scale(&self.service, replicas, SCALE_LIMIT_S);
        let out = self.manager.exec(&cmd).await.map_err(|e| e.to_string())?;
        if out.success() {
            return Ok(());
        }
        Err(format!(
            "on `{}`, scaling service `{}` to {replicas} exited with {}: {}\n  help: `docker service ps {} --no-trunc` on a manager says why",
            self.manager.name(),
            self.service,
            out.status,
            out.stderr_tail(5),
            self.service
        ))
    }
}

impl Backend<'_> {
    /// Stops the backend: its container on one host, every task of its service on a swarm.
    async fn stop(&self) -> Result<(), String> {
        match &self.swarm {
            Some(s) => s.scale(0).await,
            None => self
                .engine
                .stop(&container_name("backend"), Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Whether nginx's maintenance flag lives on the host restored (one host; on a swarm nginx runs on the
    /// edges, and the backend's tasks are gone while the restore runs).
    fn has_flag(&self) -> bool {
        self.swarm.is_none()
    }
}

/// The stack's backend as a restore starts and checks it: its health check, with time for its retries.
pub fn restore_backend<'a>(stack: &crate::stack::Stack, engine: &'a Engine) -> Backend<'a> {
    let service = stack.services.get("backend");
    let port = service
        .and_then(|s| s.port)
        .unwrap_or(crate::layout::BACKEND_PORT);
    let (check, timeout) = service.and_then(|s| s.healthcheck.as_ref()).map_or_else(
        || ("the container runs".to_string(), Duration::from_mins(2)),
        |h| {
            let budget = h.interval.saturating_add(h.timeout) * h.retries;
            (
                crate::plan::describe_probe(&h.probe, port),
                budget.max(Duration::from_mins(2)),
            )
        },
    );
    Backend {
        engine,
        check,
        health_timeout: timeout,
        swarm: None,
    }
}

/// How many lines of the backend's log a failed start shows.
const LOG_LINES: usize = 20;

pub(super) struct Timer<'a> {
    pub(super) phases: Vec<Phase>,
    out: &'a Output,
    current: Option<(String, Instant)>,
}

impl Timer<'_> {
    pub(super) fn start(&mut self, name: &str) {
        self.out.step_started(&Step::phase(name));
        self.current = Some((name.to_string(), Instant::now()));
    }

    pub(super) fn done(&mut self, bytes: Option<u64>) {
        if let Some((name, t)) = self.current.take() {
            let took = t.elapsed();
            self.out.step_done(&Step::phase(name.as_str()), took, bytes);
            self.phases.push(Phase {
                name,
                seconds: took.as_secs_f64(),
                bytes,
            });
        }
    }

    /// Ends the running phase as failed, with the log of the container it concerns when there is one.
    pub(super) fn failed(&mut self, error: &str, log: Option<LogTail>) {
        if let Some((name, t)) = self.current.take() {
            self.out
                .step_failed(&Step::phase(name), t.elapsed(), error, log);
        }
    }
}

/// One restore's parts: the host, the backup setup, the backend, the database server, progress and the clock.
pub(super) struct Flow<'a> {
    pub(super) remote: &'a Remote,
    pub(super) setup: &'a Setup,
    pub(super) backend: &'a Backend<'a>,
    pg: Postgres<'a>,
    pub(super) out: &'a Output,
    pub(super) timer: Timer<'a>,
    pub(super) started: Instant,
    /// The restored data is live (the swap happened): a rollback swaps back.
    swapped: bool,
}

/// A failed phase of a restore: the step it names, and what went wrong.
type Failure = (&'static str, String);

/// Maps an error to a [`Failure`] of `step`.
fn at<E: ToString>(step: &'static str) -> impl Fn(E) -> Failure {
    move |e| (step, e.to_string())
}

/// A restore's phase, as recorded in the journal (the index into [`PHASES`]).
const SAFETY: usize = 0;
const STOP: usize = 1;
const LOAD: usize = 2;
const SWAP: usize = 3;
const START: usize = 4;

impl<'a> Flow<'a> {
    pub(super) fn new(
        remote: &'a Remote,
        setup: &'a Setup,
        backend: &'a Backend<'a>,
        out: &'a Output,
    ) -> Self {
        Flow {
            remote,
            setup,
            backend,
            pg: Postgres {
                remote,
                container: setup.container.clone(),
                user: setup.user.clone(),
            },
            out,
            timer: Timer {
                phases: Vec::new(),
                out,
                current: None,
            },
            started: Instant::now(),
            swapped: false,
        }
    }

    pub(super) fn host(&self) -> String {
        self.remote.name().to_string()
    }

    pub(super) fn flag(&self) -> String {
        crate::layout::maintenance_flag(&self.setup.stack)
    }

    /// Records `phase` in the journal, then starts its clock (and prints it): a kill after the line is seen
    /// always finds the phase recorded.
    async fn enter(&mut self, j: &mut Journal, phase: usize) -> Result<(), BackupError> {
        j.phase = PHASES[phase].to_string();
        j.updated = crate::state::now();
        journal::write(self.remote, &self.setup.stack, j).await?;
        self.timer.start(PHASES[phase]);
        Ok(())
    }

    /// Proves the backup whole; its size in bytes.
    async fn verify(&self, file: &str) -> Result<u64, BackupError> {
        let integrity = check(self.remote, self.setup, file).await?;
        let problems = integrity.problems();
        if !problems.is_empty() {
            return Err(BackupError::Refused {
                host: self.host(),
                file: file.to_string(),
                reason: problems.join("; "),
                help: "choose another backup (`vldeploy backup list`), or bring a good copy with `--from-local PATH`".into(),
            });
        }
        Ok(integrity.bytes)
    }

    pub(super) async fn flag_on(&self) -> bool {
        self.remote
            .exec(&crate::remote::maintenance::is_set(&self.setup.stack))
            .await
            .is_ok_and(|o| o.success())
    }

    /// Lifts the maintenance page unless it was on before the restore (an operator's stays on).
    pub(super) async fn lift(&self, j: &Journal) {
        if !j.maintenance_was_on {
            let _ = self
                .remote
                .run(&crate::remote::maintenance::lift(&self.setup.stack))
                .await;
        }
    }

    /// The live database's leftovers of restores: loads (`_restore_`) and rolled-back data (`_failed_`).
    async fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for suffix in ["_restore_", "_failed_"] {
            if let Ok(dbs) = self
                .pg
                .databases_like(&db_name(&self.setup.database, suffix))
                .await
            {
                out.extend(dbs);
            }
        }
        out
    }

    pub(super) async fn start_healthy(&self) -> Result<(), String> {
        if let Some(s) = &self.backend.swarm {
            return s.scale(s.replicas).await;
        }
        let name = container_name("backend");
        // An interrupted restore may have left it running (killed before, or just after, it stopped or started).
        let running = self
            .backend
            .engine
            .container_state(&name)
            .await
            .map_err(|e| e.to_string())?
            .is_some_and(|s| s.running);
        if !running {
            self.backend
                .engine
                .start(&name)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.backend
            .engine
            .wait_healthy(&name, &self.backend.check, self.backend.health_timeout)
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs the restore of `j` from phase `from` to its end. A failure before the backend stopped changes nothing;
    /// a later one puts the previous data back (swapping back when the swap happened) and the backend on it.
    async fn proceed(
        mut self,
        j: &mut Journal,
        from: usize,
        total: u64,
    ) -> Result<RestoreReport, BackupError> {
        if from == SAFETY {
            self.safety_backup(j).await?;
        }
        self.swapped = from >= START;
        match self.replace(j, from, total).await {
            Ok(()) => self.finish(j).await,
            Err((step, detail)) => Err(self.roll_back(j, step, detail).await),
        }
    }

    /// The phases that change the live data, from `from`: backend stopped, load, swap, backend started.
    async fn replace(&mut self, j: &mut Journal, from: usize, total: u64) -> Result<(), Failure> {
        self.stop_backend(j, from).await?;
        if from <= SWAP {
            self.load_fresh(j, total).await?;
            self.swap_in(j).await?;
        }
        self.start_backend(j).await
    }

    /// Proves `file` whole and the live database there, as the restore's first phase; the backup's size in bytes.
    async fn verify_phase(&mut self, file: &str) -> Result<u64, BackupError> {
        self.timer.start("verify");
        let total = match self.verify(file).await {
            Ok(total) => total,
            Err(e) => {
                self.timer.failed(&e.to_string(), None);
                return Err(e);
            }
        };
        if !self.pg.exists(&self.setup.database).await? {
            return Err(BackupError::Refused {
                host: self.host(),
                file: file.to_string(),
                reason: format!("the live database `{}` does not exist", self.setup.database),
                help: "run `vldeploy up` first: the restore replaces an existing database".into(),
            });
        }
        self.timer.done(Some(total));
        Ok(total)
    }

    /// A backup of what is live now; a failure ends the restore with nothing changed.
    async fn safety_backup(&mut self, j: &mut Journal) -> Result<(), BackupError> {
        self.enter(j, SAFETY).await?;
        let safety = match run_backup(self.remote, self.setup, Some("pre-restore"), 600).await {
            Ok(s) => s,
            Err(e) => {
                self.timer.failed(&e.to_string(), None);
                let _ = journal::remove(self.remote, &self.setup.stack).await;
                return Err(BackupError::Restore {
                    host: self.host(),
                    step: "safety backup".into(),
                    detail: e.to_string(),
                    outcome:
                        "nothing was changed: the live database and the backend are as they were"
                            .into(),
                });
            }
        };
        j.safety_backup.clone_from(&safety.file);
        self.timer.done(safety.bytes);
        Ok(())
    }

    /// The backend stops; nginx answers /api/ with the maintenance page meanwhile. Resumed past this phase, the
    /// page is only put (back) up: it stays until the backend is healthy again.
    async fn stop_backend(&mut self, j: &mut Journal, from: usize) -> Result<(), Failure> {
        let step = "stop backend";
        let set_flag = crate::remote::maintenance::set(&self.setup.stack);
        let flag = self.backend.has_flag();
        if from > STOP {
            if flag {
                self.remote.run(&set_flag).await.map_err(at(step))?;
            }
            return Ok(());
        }
        self.enter(j, STOP).await.map_err(at(step))?;
        if flag {
            self.remote.run(&set_flag).await.map_err(at(step))?;
        }
        self.backend.stop().await.map_err(at(step))?;
        self.timer.done(None);
        Ok(())
    }

    /// Loads the backup into a fresh database (a part-loaded one from an interrupted run is dropped first).
    async fn load_fresh(&mut self, j: &mut Journal, total: u64) -> Result<(), Failure> {
        let step = "load";
        self.enter(j, LOAD).await.map_err(at(step))?;
        let next = &j.next;
        self.pg.drop(next).await.map_err(at(step))?;
        self.pg.create(next).await.map_err(at(step))?;
        let out = self.out;
        let on_bytes = |b: u64, _: f64| out.progress(b, Some(total));
        let stats = match load(&self.pg, &self.setup.file_path(&j.file), next, &on_bytes).await {
            Ok(s) => s,
            Err(e) => {
                let _ = self.pg.drop(next).await;
                return Err((step, e.to_string()));
            }
        };
        self.timer.done(Some(stats.bytes.max(total)));
        Ok(())
    }

    /// Swaps the loaded database in by renaming: the live one goes aside.
    async fn swap_in(&mut self, j: &mut Journal) -> Result<(), Failure> {
        let step = "swap";
        self.enter(j, SWAP).await.map_err(at(step))?;
        if let Err(e) = self.pg.swap(&self.setup.database, &j.next, &j.aside).await {
            let _ = self.pg.drop(&j.next).await;
            return Err((step, e.to_string()));
        }
        self.swapped = true;
        self.timer.done(None);
        Ok(())
    }

    /// The backend on the restored data, health-gated.
    async fn start_backend(&mut self, j: &mut Journal) -> Result<(), Failure> {
        let step = "start backend";
        self.enter(j, START).await.map_err(at(step))?;
        self.start_healthy().await.map_err(at(step))?;
        self.timer.done(None);
        Ok(())
    }

    /// Ends a restore that went through: the page lifted, leftovers dropped, the journal removed. The previous
    /// database stays until the next restore; older ones go now.
    async fn finish(self, j: &Journal) -> Result<RestoreReport, BackupError> {
        self.lift(j).await;
        let database = self.setup.database.clone();
        let prefix = db_name(&database, "_before_");
        let mut old = self.pg.databases_like(&prefix).await.unwrap_or_default();
        old.retain(|d| *d != j.aside);
        old.extend(self.leftovers().await);
        for db in &old {
            let _ = self.pg.drop(db).await;
        }
        journal::remove(self.remote, &self.setup.stack).await?;
        Ok(RestoreReport {
            file: j.file.clone(),
            database,
            safety_backup: j.safety_backup.clone().unwrap_or_default(),
            previous_database: j.aside.clone(),
            phases: self.timer.phases,
            seconds: self.started.elapsed().as_secs_f64(),
        })
    }

    /// Puts the previous data back and the backend on it after `step` failed; the error says what was done.
    async fn roll_back(mut self, j: &Journal, step: &str, detail: String) -> BackupError {
        let log = if step == "start backend" {
            self.backend_log(&detail).await
        } else {
            None
        };
        self.timer.failed(&detail, log);
        let (data, data_whole) = self.previous_data_back(&j.aside).await;
        let (backend, backend_whole) = self.backend_back(j).await;
        let mut outcome = vec![data, backend];
        if data_whole && backend_whole {
            let _ = journal::remove(self.remote, &self.setup.stack).await;
        } else {
            outcome.push(
                "`vldeploy restore --abort` finishes putting the previous data back once the cause is fixed"
                    .into(),
            );
        }
        let safety_file = j.safety_backup.clone().unwrap_or_default();
        outcome.push(format!("the safety backup is `{safety_file}`"));
        BackupError::Restore {
            host: self.host(),
            step: step.to_string(),
            detail,
            outcome: outcome.join("; "),
        }
    }

    /// Rollback, first part: swaps the previous database back when the swap happened. What happened, and
    /// whether it went through.
    async fn previous_data_back(&self, aside: &str) -> (String, bool) {
        let database = &self.setup.database;
        if !self.swapped {
            return (
                format!("the live database `{database}` was not changed"),
                true,
            );
        }
        let _ = self.backend.stop().await;
        match self.swap_back(aside).await {
            Ok(()) => (
                format!("the previous database is back as `{database}`"),
                true,
            ),
            Err(e) => (
                format!(
                    "ATTENTION: swapping back failed ({e}); the previous data is in database `{aside}`"
                ),
                false,
            ),
        }
    }

    /// Rollback, second part: the backend started and health-checked, then the page lifted. What happened, and
    /// whether it went through.
    async fn backend_back(&self, j: &Journal) -> (String, bool) {
        match self.start_healthy().await {
            Ok(()) => {
                self.lift(j).await;
                ("the backend is healthy and serving it again".into(), true)
            }
            Err(e) => (
                format!(
                    "ATTENTION: the backend did not become healthy again ({e}); nginx still shows the maintenance page (remove `{}` to lift it)",
                    self.flag()
                ),
                false,
            ),
        }
    }

    /// The last lines of the backend's log, for a failed start (`detail` may quote them already).
    pub(super) async fn backend_log(&self, detail: &str) -> Option<LogTail> {
        if self.backend.swarm.is_some() {
            // Its tasks' logs are on the app nodes; the error names the service to ask.
            return None;
        }
        let container = container_name("backend");
        let text = self
            .backend
            .engine
            .log_tail(&container, LOG_LINES)
            .await
            .ok()?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let in_error = detail.contains(&format!("last log lines of `{container}`"));
        (!lines.is_empty()).then_some(LogTail {
            container,
            lines,
            in_error,
        })
    }

    /// Renames the live (restored) database to `<db>_failed_<now>` and `aside` back to live, then drops the
    /// restored one.
    async fn swap_back(&self, aside: &str) -> Result<(), BackupError> {
        let database = &self.setup.database;
        let failed = db_name(database, &format!("_failed_{}", crate::state::now()));
        self.pg.swap(database, aside, &failed).await?;
        let _ = self.pg.drop(&failed).await;
        Ok(())
    }
}

/// Restores `file` (in the backup directory) over the live database of `setup`.
pub async fn restore(
    remote: &Remote,
    setup: &Setup,
    backend: &Backend<'_>,
    file: &str,
    out: &Output,
) -> Result<RestoreReport, BackupError> {
    let mut flow = Flow::new(remote, setup, backend, out);
    if let Some(j) = journal::read(remote, &setup.stack).await? {
        return Err(BackupError::Refused {
            host: flow.host(),
            file: file.to_string(),
            reason: j.describe(&setup.environment),
            help: "finish or roll back that restore first (the commands above)".into(),
        });
    }

    // 1. Prove the backup whole before touching anything.
    let total = flow.verify_phase(file).await?;

    // 2. From here on the journal records each phase before it begins.
    let stamp = crate::state::now();
    let next = db_name(&setup.database, &format!("_restore_{stamp}"));
    let aside = db_name(&setup.database, &format!("_before_{stamp}"));
    // An operator's own `maintenance on` stays on after the restore; only a page the restore put up is lifted.
    let was_on = flow.flag_on().await;
    let mut j = Journal::new(file, &setup.database, &next, &aside, was_on);
    flow.proceed(&mut j, SAFETY, total).await
}

/// Finishes the interrupted restore recorded in the host's journal, from what the databases show: when the
/// restored data is already live (the swap happened) the backend is started on it; otherwise the load is
/// done again from the start (a part-loaded database is dropped first). `Ok(None)`: nothing to resume.
pub async fn resume(
    remote: &Remote,
    setup: &Setup,
    backend: &Backend<'_>,
    out: &Output,
) -> Result<Option<RestoreReport>, BackupError> {
    let Some(mut j) = journal::read(remote, &setup.stack).await? else {
        return Ok(None);
    };
    j.adopt();
    let mut flow = Flow::new(remote, setup, backend, out);
    let swapped = flow.pg.exists(&j.aside).await?;
    let from = if swapped {
        START
    } else if j.safety_backup.is_none() {
        SAFETY
    } else {
        j.phase_index().clamp(STOP, LOAD)
    };
    let mut total = 0;
    if from <= LOAD {
        flow.timer.start("verify");
        total = flow.verify(&j.file).await.map_err(|e| match e {
            BackupError::Refused { host, file, reason, .. } => BackupError::Refused {
                host,
                file,
                reason,
                help: "the interrupted restore cannot load it again: `vldeploy restore --abort` puts the previous data back".into(),
            },
            other => other,
        })?;
        flow.timer.done(Some(total));
    }
    out.note(format!("  resuming from `{}` …", PHASES[from]));
    flow.proceed(&mut j, from, total).await.map(Some)
}

/// What `--abort` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbortReport {
    pub database: String,
    /// The phase the interrupted restore was in.
    pub phase: String,
    /// The restored data was live and was swapped back out.
    pub swapped_back: bool,
    /// Databases dropped: part-loaded or rolled-back data.
    pub dropped: Vec<String>,
    /// The maintenance page stays on: it was the operator's before the restore.
    pub maintenance_kept: bool,
    pub safety_backup: Option<String>,
    pub seconds: f64,
}

/// Rolls the interrupted restore recorded in the host's journal back: the previous data is put back as the live
/// database (swapping back when the swap happened), leftovers are dropped, the backend is started and
/// health-checked, and the maintenance page is lifted unless it was the operator's. `Ok(None)`: nothing to abort.
pub async fn abort(
    remote: &Remote,
    setup: &Setup,
    backend: &Backend<'_>,
    out: &Output,
) -> Result<Option<AbortReport>, BackupError> {
    let Some(mut j) = journal::read(remote, &setup.stack).await? else {
        return Ok(None);
    };
    j.adopt();
    journal::write(remote, &setup.stack, &j).await?;
    let flow = Flow::new(remote, setup, backend, out);
    let host = flow.host();
    let database = setup.database.clone();
    let fail = |step: &str, detail: String| {
        BackupError::Restore {
        host: host.clone(),
        step: format!("abort: {step}"),
        detail,
        outcome: "the journal is kept: `vldeploy restore --abort` tries again, `vldeploy restore --resume` finishes the restore instead".into(),
    }
    };
    let swapped = flow.pg.exists(&j.aside).await?;
    // Each part as a phase of its own; a failure ends the command with the error, which names the part.
    let phase = |name: &str| {
        let step = Step::phase(name);
        out.step_started(&step);
        (step, Instant::now())
    };
    let done = |(step, t): (Step, Instant)| out.step_done(&step, t.elapsed(), None);
    if swapped {
        let part = phase("swap back");
        if backend.has_flag() {
            let _ = remote
                .run(&crate::remote::maintenance::set(&flow.setup.stack))
                .await;
        }
        backend
            .stop()
            .await
            .map_err(|e| fail("stopping the backend", e))?;
        flow.swap_back(&j.aside)
            .await
            .map_err(|e| fail("swapping the previous data back", e.to_string()))?;
        done(part);
    }
    let part = phase("drop leftovers");
    let dropped = flow.leftovers().await;
    for db in &dropped {
        flow.pg
            .drop(db)
            .await
            .map_err(|e| fail("dropping leftovers", e.to_string()))?;
    }
    done(part);
    let part = phase("start backend");
    flow.start_healthy()
        .await
        .map_err(|e| fail("starting the backend", e))?;
    done(part);
    flow.lift(&j).await;
    journal::remove(remote, &setup.stack).await?;
    Ok(Some(AbortReport {
        database,
        phase: j.phase.clone(),
        swapped_back: swapped,
        dropped,
        maintenance_kept: j.maintenance_was_on,
        safety_backup: j.safety_backup.clone(),
        seconds: flow.started.elapsed().as_secs_f64(),
    }))
}
