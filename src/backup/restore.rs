//! Restoring the live database from a backup so that a failure at any step leaves the previous data serving.
//!
//! verify the file → safety backup → maintenance page on, backend stopped → load into a fresh database in one
//! transaction → swap it in by renaming → backend started, health-gated → previous database dropped. Any failure
//! after the backend stopped swaps back (when the swap happened), starts the backend and waits for its health.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::postgres::db_name;
use super::{BackupError, Postgres, Setup, check, load, run_backup};
use crate::engine::Engine;
use crate::plan::{container_name, stack_dir};
use crate::transport::{Remote, shell_quote};

/// Receives the restore's progress.
pub trait Progress: Send + Sync {
    fn phase_started(&self, name: &str);
    fn phase_finished(&self, phase: &Phase);
    /// Compressed bytes of the backup loaded so far, of `total`, after `seconds`.
    fn loaded(&self, bytes: u64, total: u64, seconds: f64);
}

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
}

/// The stack's backend as a restore starts and checks it: its health check, with time for its retries.
pub fn restore_backend<'a>(stack: &crate::stack::Stack, engine: &'a Engine) -> Backend<'a> {
    let service = stack.services.get("backend");
    let port = service.and_then(|s| s.port).unwrap_or(8080);
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
    }
}

/// The flag file that makes nginx answer `/api/` with the maintenance page (`/var/www/site/.maintenance`).
pub fn maintenance_flag(stack: &str) -> String {
    format!("{}/www/.maintenance", stack_dir(stack))
}

struct Timer<'a> {
    phases: Vec<Phase>,
    progress: &'a dyn Progress,
    current: Option<(String, Instant)>,
}

impl Timer<'_> {
    fn start(&mut self, name: &str) {
        self.progress.phase_started(name);
        self.current = Some((name.to_string(), Instant::now()));
    }

    fn done(&mut self, bytes: Option<u64>) {
        if let Some((name, t)) = self.current.take() {
            let p = Phase {
                name,
                seconds: t.elapsed().as_secs_f64(),
                bytes,
            };
            self.progress.phase_finished(&p);
            self.phases.push(p);
        }
    }
}

/// Restores `file` (in the backup directory) over the live database of `setup`.
#[allow(clippy::too_many_lines)] // one flow, read top to bottom, with its rollback beside it
pub async fn restore(
    remote: &Remote,
    setup: &Setup,
    backend: &Backend<'_>,
    file: &str,
    progress: &dyn Progress,
) -> Result<RestoreReport, BackupError> {
    let started = Instant::now();
    let host = remote.name().to_string();
    let mut t = Timer {
        phases: Vec::new(),
        progress,
        current: None,
    };
    let pg = Postgres {
        remote,
        container: setup.container.clone(),
        user: setup.user.clone(),
    };
    let refuse = |reason: String, help: &str| BackupError::Refused {
        host: host.clone(),
        file: file.to_string(),
        reason,
        help: help.to_string(),
    };

    // 1. Prove the backup whole before touching anything.
    t.start("verify");
    let integrity = check(remote, setup, file).await?;
    let problems = integrity.problems();
    if !problems.is_empty() {
        return Err(refuse(
            problems.join("; "),
            "choose another backup (`vldeploy backup list`), or bring a good copy with `--from-local PATH`",
        ));
    }
    if !pg.exists(&setup.database).await? {
        return Err(refuse(
            format!("the live database `{}` does not exist", setup.database),
            "run `vldeploy up` first: the restore replaces an existing database",
        ));
    }
    t.done(Some(integrity.bytes));

    // 2. A backup of what is live now.
    t.start("safety backup");
    let safety = run_backup(remote, setup, Some("pre-restore"), 600)
        .await
        .map_err(|e| BackupError::Restore {
            host: host.clone(),
            step: "safety backup".into(),
            detail: e.to_string(),
            outcome: "nothing was changed: the live database and the backend are as they were"
                .into(),
        })?;
    let safety_file = safety.file.clone().unwrap_or_default();
    t.done(safety.bytes);

    // 3. The backend stops; nginx answers /api/ with the maintenance page meanwhile.
    let stamp = crate::state::now();
    let next = db_name(&setup.database, &format!("_restore_{stamp}"));
    let aside = db_name(&setup.database, &format!("_before_{stamp}"));
    let backend_name = container_name("backend");
    let flag = maintenance_flag(&setup.stack);
    t.start("stop backend");
    // An operator's own `maintenance on` stays on after the restore; only a page the restore put up is lifted.
    let was_on = remote
        .exec(&format!("test -e {}", shell_quote(&flag)))
        .await
        .is_ok_and(|o| o.success());
    let lift = if was_on {
        "true".to_string()
    } else {
        format!("rm -f {}", shell_quote(&flag))
    };
    remote.run(&format!("touch {}", shell_quote(&flag))).await?;
    let mut swapped = false;
    let result = async {
        backend
            .engine
            .stop(&backend_name, Duration::from_secs(30))
            .await
            .map_err(|e| ("stop backend", e.to_string()))?;
        t.done(None);

        // 4. Load into a fresh database, then swap it in.
        t.start("load");
        pg.create(&next)
            .await
            .map_err(|e| ("load", e.to_string()))?;
        let total = integrity.bytes;
        let on_bytes = |b: u64, s: f64| progress.loaded(b, total, s);
        let stats = match load(&pg, &setup.file_path(file), &next, &on_bytes).await {
            Ok(s) => s,
            Err(e) => {
                let _ = pg.drop(&next).await;
                return Err(("load", e.to_string()));
            }
        };
        t.done(Some(stats.bytes.max(total)));
        t.start("swap");
        if let Err(e) = pg.swap(&setup.database, &next, &aside).await {
            let _ = pg.drop(&next).await;
            return Err(("swap", e.to_string()));
        }
        swapped = true;
        t.done(None);

        // 5. The backend on the restored data, health-gated.
        t.start("start backend");
        backend
            .engine
            .start(&backend_name)
            .await
            .map_err(|e| ("start backend", e.to_string()))?;
        backend
            .engine
            .wait_healthy(&backend_name, &backend.check, backend.health_timeout)
            .await
            .map_err(|e| ("start backend", e.to_string()))?;
        t.done(None);
        Ok(())
    }
    .await;

    match result {
        Ok(()) => {
            let _ = remote.run(&lift).await;
            // The previous database stays until the next restore; older ones go now.
            let prefix = db_name(&setup.database, "_before_");
            if let Ok(old) = pg.databases_like(&prefix).await {
                for db in old.iter().filter(|d| **d != aside) {
                    let _ = pg.drop(db).await;
                }
            }
            Ok(RestoreReport {
                file: file.to_string(),
                database: setup.database.clone(),
                safety_backup: safety_file,
                previous_database: aside,
                phases: t.phases,
                seconds: started.elapsed().as_secs_f64(),
            })
        }
        Err((step, detail)) => {
            // 6. Put the previous data back and the backend on it.
            let mut outcome = Vec::new();
            if swapped {
                let _ = backend
                    .engine
                    .stop(&backend_name, Duration::from_secs(30))
                    .await;
                let failed = db_name(&setup.database, &format!("_failed_{stamp}"));
                match pg.swap(&setup.database, &aside, &failed).await {
                    Ok(()) => {
                        let _ = pg.drop(&failed).await;
                        outcome.push(format!(
                            "the previous database is back as `{}`",
                            setup.database
                        ));
                    }
                    Err(e) => outcome.push(format!(
                        "ATTENTION: swapping back failed ({e}); the previous data is in database `{aside}`"
                    )),
                }
            } else {
                outcome.push(format!(
                    "the live database `{}` was not changed",
                    setup.database
                ));
            }
            let healthy = match backend.engine.start(&backend_name).await {
                Ok(()) => backend
                    .engine
                    .wait_healthy(&backend_name, &backend.check, backend.health_timeout)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match healthy {
                Ok(()) => {
                    let _ = remote.run(&lift).await;
                    outcome.push("the backend is healthy and serving it again".into());
                }
                Err(e) => outcome.push(format!(
                    "ATTENTION: the backend did not become healthy again ({e}); nginx still shows the maintenance page (remove `{flag}` to lift it)"
                )),
            }
            outcome.push(format!("the safety backup is `{safety_file}`"));
            Err(BackupError::Restore {
                host,
                step: step.to_string(),
                detail,
                outcome: outcome.join("; "),
            })
        }
    }
}
