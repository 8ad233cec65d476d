//! How a stack's backups are set up on its host: the rendered script, its cron entry, and running it.

use serde::{Deserialize, Serialize};

use super::BackupError;
use crate::layout::{self, container_name};
use crate::plan::{DesiredFile, content_hash};
use crate::render::{self, RenderError};
use crate::stack::{Backup, Retention, Stack};
use crate::transport::Remote;

/// The log every run appends one JSON line to (the operations playbook's path).
pub const LOG: &str = "/var/log/vl_backup.log";

/// The smallest compressed dump accepted as a backup. A failed `pg_dump | gzip` leaves 20 bytes; a dump of the
/// shop's schema alone is over 2 KB.
pub const MIN_BYTES: u64 = 512;

/// Backups with a tag (`pre-restore`, `uploaded`) kept per tag.
pub const KEEP_TAGGED: u32 = 5;

/// Everything the backup of one stack needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setup {
    pub stack: String,
    pub environment: String,
    /// The backup directory on the host.
    pub dir: String,
    pub schedule: String,
    pub retention: Retention,
    pub copy_to: Option<String>,
    pub encrypt: Option<String>,
    /// The postgres container (`vl_postgres`; on a swarm, the running task's container once it is found).
    pub container: String,
    /// On a swarm: the postgres service (`<stack>_postgres`), whose running task on the db node the script finds
    /// by its label each run (Swarm names each task's container anew). `None` on one host.
    pub service: Option<String>,
    /// `POSTGRES_DB` of the postgres service.
    pub database: String,
    /// `POSTGRES_USER` of the postgres service.
    pub user: String,
    /// The host user cron runs the script as: the environment's SSH user.
    pub run_as: String,
    /// `backup.archive.full` and `.diff`: when cron takes pgBackRest's full and differential backups.
    pub archive_full: Option<String>,
    pub archive_diff: Option<String>,
    /// With the repository on a backup host (`backup.archive.repo: ssh://…`): that host's SSH user. pgBackRest's
    /// full and differential backups run there, where the repository is; this host keeps the daily dumps.
    pub backup_host_user: Option<String>,
    /// Where the project's own templates may override the embedded ones.
    #[serde(skip)]
    pub overrides: Option<std::path::PathBuf>,
}

/// What one run of the script reported (its JSON line).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RunOutcome {
    pub time: String,
    pub result: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub copy: Option<String>,
    #[serde(default)]
    pub pruned: Vec<String>,
    /// With `step: disk-full`, the step that could not write (`gzip`, `encrypt`, `checksum`).
    #[serde(default)]
    pub failed: Option<String>,
    /// With `step: disk-full`, the bytes left free on the backup directory's filesystem.
    #[serde(default)]
    pub free_bytes: Option<u64>,
}

impl Setup {
    /// The backup settings of `stack` (its `backup:` section, or the defaults: backups are on for every stack).
    pub fn from_stack(stack: &Stack) -> Self {
        let b = stack.backup.clone().unwrap_or_else(|| Backup {
            schedule: "0 2 * * *".into(),
            dir: format!("/var/backups/{}", stack.name),
            retention: Retention::default(),
            copy_to: None,
            encrypt: None,
            archive: None,
        });
        let env = |key: &str| {
            stack
                .services
                .get("postgres")
                .and_then(|s| s.env.get(key))
                .map(|v| v.expose().to_string())
                .filter(|v| !v.is_empty())
        };
        let (archive_full, archive_diff) = b
            .archive
            .as_ref()
            .map_or((None, None), |a| (Some(a.full.clone()), a.diff.clone()));
        let user = env("POSTGRES_USER").unwrap_or_else(|| "postgres".into());
        let database = env("POSTGRES_DB").unwrap_or_else(|| user.clone());
        Self {
            stack: stack.name.clone(),
            environment: stack.environment.clone(),
            dir: b.dir,
            schedule: b.schedule,
            retention: b.retention,
            copy_to: b.copy_to,
            encrypt: b.encrypt,
            container: container_name("postgres"),
            service: None,
            database,
            user,
            run_as: stack.target.user.clone(),
            archive_full,
            archive_diff,
            backup_host_user: super::backup_host::target(stack).map(|t| t.user),
            overrides: Some(stack.project_dir.join("templates")),
        }
    }

    /// The backup settings of `stack` on its swarm (`hosts:`): run on the db node as its SSH user, against the
    /// running task of the postgres service there. `None` when no host has the db role.
    pub fn for_cluster(stack: &Stack) -> Option<Self> {
        let db = stack.hosts.iter().find(|h| h.has(crate::stack::Role::Db))?;
        Some(Self {
            service: Some(crate::swarm::service_name(&stack.name, "postgres")),
            run_as: db.target.user.clone(),
            ..Self::from_stack(stack)
        })
    }

    /// The script on the host.
    pub fn script_path(&self) -> String {
        layout::backup_script(&self.stack)
    }

    /// The cron entry on the host.
    pub fn cron_path(&self) -> String {
        layout::backup_cron(&self.stack)
    }

    /// The path of a backup file on the host.
    pub fn file_path(&self, file: &str) -> String {
        format!("{}/{file}", self.dir.trim_end_matches('/'))
    }

    /// The backup script.
    pub fn render_script(&self) -> Result<String, RenderError> {
        let q = |s: &str| {
            render::escape::sh(s).map_err(|e| RenderError::Template {
                name: "backup/backup.sh".into(),
                detail: format!("sh: {e}"),
            })
        };
        let ctx = serde_json::json!({
            "stack": self.stack,
            "environment": self.environment,
            "service": self.service.is_some(),
            "retention": self.retention,
            "min_bytes": MIN_BYTES,
            "keep_tagged": KEEP_TAGGED,
            "q": {
                "stack": q(&self.stack)?,
                "dir": q(&self.dir)?,
                // On a swarm the script finds the container each run: what was found now stays out of it.
                "container": q(if self.service.is_some() { "" } else { &self.container })?,
                "service": q(self.service.as_deref().unwrap_or(""))?,
                "database": q(&self.database)?,
                "user": q(&self.user)?,
                "log": q(LOG)?,
                "copy_to": q(self.copy_to.as_deref().unwrap_or(""))?,
                "encrypt": q(self.encrypt.as_deref().unwrap_or(""))?,
            },
        });
        render::render_in(self.overrides.as_deref(), "backup/backup.sh", &ctx)
    }

    /// The `/etc/cron.d` entry that runs the script on the schedule.
    pub fn render_cron(&self) -> Result<String, RenderError> {
        let ctx = serde_json::json!({
            "on_backup_host": false,
            "stack": self.stack,
            "environment": self.environment,
            "schedule": self.schedule,
            "user": self.run_as,
            "script": render::escape::cron_cmd(&self.script_path()).map_err(|e| {
                RenderError::Template {
                    name: "backup/cron".into(),
                    detail: format!("cron_cmd: {e}"),
                }
            })?,
            "log": LOG,
            // With a backup host, pgBackRest's backups are that host's entry: this one keeps the dumps.
            "archive_full": self.archive_full.as_ref().filter(|_| self.backup_host_user.is_none()),
            "archive_diff": self.archive_diff,
            "pgbackrest_full": self.archive_backup("full"),
            "pgbackrest_diff": self.archive_backup("diff"),
        });
        render::render_in(self.overrides.as_deref(), "backup/cron", &ctx)
    }

    /// The backup host's cron entry for this stack.
    pub fn backup_host_cron_path(&self) -> String {
        format!("/etc/cron.d/vldeploy-{}-pgbackrest", self.stack)
    }

    /// The log the backup host's scheduled pgBackRest backups append to.
    pub fn backup_host_log(&self) -> String {
        format!("{}/pgbackrest-backup.log", layout::stack_dir(&self.stack))
    }

    /// The lock that keeps two of the backup host's scheduled backups from overlapping.
    fn backup_host_lock(&self) -> String {
        format!("{}/.pgbackrest-backup.lock", layout::stack_dir(&self.stack))
    }

    /// The backup host's `/etc/cron.d` entry: pgBackRest's full and differential backups in the repository's
    /// container there, one at a time, each appending to [`Self::backup_host_log`]. `None` without a backup host.
    pub fn render_backup_host_cron(&self) -> Result<Option<String>, RenderError> {
        let Some(user) = &self.backup_host_user else {
            return Ok(None);
        };
        let bad = |e: render::escape::Unsafe| RenderError::Template {
            name: "backup/cron".into(),
            detail: format!("sh: {e}"),
        };
        let run = |kind: &str| -> Result<String, RenderError> {
            use super::archive::{CONTAINER_CONF, STANZA};
            let kind = format!("--type={kind}");
            let backup = crate::remote::backup::in_postgres(
                &super::backup_host::container_name(&self.stack),
                &crate::remote::backup::pgbackrest(
                    CONTAINER_CONF,
                    STANZA,
                    &["--log-level-console=info", &kind],
                    "backup",
                ),
            );
            Ok(format!(
                "flock -n {} {} >>{} 2>&1",
                render::escape::sh(&self.backup_host_lock()).map_err(bad)?,
                backup.text(),
                render::escape::sh(&self.backup_host_log()).map_err(bad)?
            )
            .replace('%', "\\%"))
        };
        let ctx = serde_json::json!({
            "on_backup_host": true,
            "stack": self.stack,
            "environment": self.environment,
            "user": user,
            "log": self.backup_host_log(),
            "archive_full": self.archive_full,
            "archive_diff": self.archive_diff,
            "pgbackrest_full": run("full")?,
            "pgbackrest_diff": run("diff")?,
        });
        render::render_in(self.overrides.as_deref(), "backup/cron", &ctx).map(Some)
    }

    /// pgBackRest's backup of type `kind` inside the postgres container, as a cron command (`%` escaped).
    fn archive_backup(&self, kind: &str) -> String {
        use super::archive::{CONTAINER_CONF, STANZA};
        let kind = format!("--type={kind}");
        crate::remote::backup::in_postgres(
            &self.container,
            &crate::remote::backup::pgbackrest(CONTAINER_CONF, STANZA, &[&kind], "backup"),
        )
        .text()
        .replace('%', "\\%")
    }

    /// The script and the cron entry as files `up` manages.
    pub fn files(&self) -> Result<Vec<DesiredFile>, RenderError> {
        let file = |path: String, content: String, mode: u32| DesiredFile {
            path,
            hash: content_hash(content.as_bytes()),
            mode,
            content: content.into_bytes(),
            reloads: None,
        };
        Ok(vec![
            file(self.script_path(), self.render_script()?, 0o700),
            file(self.cron_path(), self.render_cron()?, 0o644),
        ])
    }

    /// The command line that runs the script now, as cron does but with a tag and a lock wait.
    pub fn run_command(&self, tag: Option<&str>, wait_s: u64) -> crate::remote::Command {
        crate::remote::backup::run(&self.script_path(), tag, wait_s)
    }
}

/// Makes sure the host has the current script (uploading it when it differs), runs it and returns its report.
/// A run that made no backup is an error carrying the script's own reason.
pub async fn run_backup(
    remote: &Remote,
    setup: &Setup,
    tag: Option<&str>,
    wait_s: u64,
) -> Result<RunOutcome, BackupError> {
    let script = setup.render_script()?;
    let path = setup.script_path();
    let current = remote.read_file(&path).await?;
    if current.as_deref() != Some(script.as_bytes()) {
        remote.upload(&path, script.as_bytes(), 0o700).await?;
    }
    let out = remote.exec(&setup.run_command(tag, wait_s)).await?;
    let text = out.stdout_str();
    let outcome = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<RunOutcome>(l).ok());
    let step = || {
        format!(
            "the backup script `{}`{}",
            path,
            tag.map(|t| format!(" (--tag {t})")).unwrap_or_default()
        )
    };
    match outcome {
        Some(o) if o.result == "ok" && o.file.is_some() => Ok(o),
        Some(o) => Err(failed_run(
            &remote.name().to_string(),
            step(),
            setup,
            o,
            out.status,
        )),
        None => Err(BackupError::Step {
            host: remote.name().to_string(),
            step: step(),
            detail: format!(
                "it exited with {} without a report: {}",
                out.status,
                out.stderr_tail(5)
            ),
        }),
    }
}

/// The error of a run whose report says it made no backup.
fn failed_run(host: &str, step: String, setup: &Setup, o: RunOutcome, status: i32) -> BackupError {
    let reason = o.error.as_deref().unwrap_or("no reason given");
    if o.step.as_deref() == Some("disk-full") {
        return BackupError::DiskFull {
            host: host.to_owned(),
            step,
            dir: setup.dir.clone(),
            free: o.free_bytes.unwrap_or(0),
            detail: format!(
                "{reason} (exit {status}){}",
                o.failed.map(|s| format!(", at `{s}`")).unwrap_or_default()
            ),
            log: LOG.to_owned(),
        };
    }
    BackupError::Step {
        host: host.to_owned(),
        step,
        detail: format!(
            "{reason} (exit {status}){}\n  no new backup was made; the log is {LOG}",
            o.step.map(|s| format!(", at `{s}`")).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::render::snapshot::assert_snapshot;

    pub(crate) fn setup() -> Setup {
        Setup {
            stack: "vaibava".into(),
            environment: "production".into(),
            dir: "/var/backups/vaibava".into(),
            schedule: "0 2 * * *".into(),
            retention: Retention::default(),
            copy_to: Some("backup@vault.example:/srv/vaibava".into()),
            encrypt: None,
            container: "vl_postgres".into(),
            service: None,
            database: "vaibava_db".into(),
            user: "postgres".into(),
            run_as: "root".into(),
            archive_full: None,
            archive_diff: None,
            backup_host_user: None,
            overrides: None,
        }
    }

    #[test]
    fn with_archiving_cron_takes_pgbackrest_full_and_differential_backups() {
        let mut s = setup();
        s.archive_full = Some("0 3 * * 0".into());
        s.archive_diff = Some("0 3 * * 1-6".into());
        assert_snapshot("backup.archive.cron", &s.render_cron().unwrap());
        s.archive_diff = None;
        let text = s.render_cron().unwrap();
        assert!(!text.contains("--type=diff"), "{text}");
        assert!(text.contains("\n0 3 * * 0 root docker exec -u postgres vl_postgres pgbackrest '--config=/etc/pgbackrest/pgbackrest.conf' --stanza=main --type=full backup >/dev/null 2>&1\n"), "{text}");
        s.archive_full = Some("0 3 * *".into());
        assert!(s.render_cron().is_err());
    }

    #[test]
    fn with_a_backup_host_its_cron_takes_pgbackrests_backups_under_a_lock_and_the_db_host_keeps_the_dumps()
     {
        let mut s = setup();
        s.archive_full = Some("0 3 * * 0".into());
        s.archive_diff = Some("0 3 * * 1-6".into());
        assert_eq!(s.render_backup_host_cron().unwrap(), None);
        s.backup_host_user = Some("deploy".into());
        let here = s.render_cron().unwrap();
        assert!(!here.contains("pgbackrest"), "{here}");
        assert!(
            here.contains(
                "\n0 2 * * * root /var/lib/vldeploy/vaibava/backup/backup.sh >/dev/null 2>&1\n"
            ),
            "{here}"
        );
        let there = s.render_backup_host_cron().unwrap().unwrap();
        assert_snapshot("backup.backup-host.cron", &there);
        assert!(there.contains("\n0 3 * * 0 deploy flock -n /var/lib/vldeploy/vaibava/.pgbackrest-backup.lock docker exec -u postgres vl_vaibava_pgbackrest pgbackrest '--config=/etc/pgbackrest/pgbackrest.conf' --stanza=main --log-level-console=info --type=full backup >>/var/lib/vldeploy/vaibava/pgbackrest-backup.log 2>&1\n"), "{there}");
        assert!(there.contains("\n0 3 * * 1-6 deploy flock -n "), "{there}");
        assert!(!there.contains("backup.sh"), "{there}");
        assert_eq!(
            s.backup_host_cron_path(),
            "/etc/cron.d/vldeploy-vaibava-pgbackrest"
        );
        // Each line is one shell command cron can run.
        for line in there.lines().filter(|l| !l.starts_with('#')) {
            let cmd: Vec<&str> = line.splitn(7, ' ').collect();
            let out = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(cmd[6])
                .output()
                .unwrap();
            assert!(out.status.success(), "{line}");
        }
        s.archive_diff = None;
        let there = s.render_backup_host_cron().unwrap().unwrap();
        assert!(!there.contains("--type=diff"), "{there}");
        s.archive_full = Some("0 3 * *".into());
        assert!(s.render_backup_host_cron().is_err());
    }

    #[test]
    fn on_a_swarm_the_script_finds_the_postgres_task_on_its_node_by_label() {
        let mut s = setup();
        s.service = Some("vaibava_postgres".into());
        let text = s.render_script().unwrap();
        assert!(text.contains("\nSERVICE=vaibava_postgres\n"), "{text}");
        let find = text
            .find("CONTAINER=$(docker ps -q --filter \"label=com.docker.swarm.service.name=$SERVICE\" --filter status=running")
            .unwrap();
        let dump = text.find("docker exec \"$CONTAINER\" pg_dump").unwrap();
        assert!(find < dump, "{text}");
        assert!(text.contains("no running task of service"), "{text}");
        // The container found for this command never reaches the script, which stays as `up` wrote it.
        s.container = "0123abcd".into();
        assert_eq!(s.render_script().unwrap(), text);
        // One host's script names its container and has none of it.
        let one = setup().render_script().unwrap();
        assert!(
            !one.contains("SERVICE") && one.contains("CONTAINER=vl_postgres\n"),
            "{one}"
        );
        assert_parses_as_bash(&text);
    }

    /// `bash -n` accepts the script.
    fn assert_parses_as_bash(text: &str) {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("backup.sh");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn script_snapshot() {
        assert_snapshot("backup.sh", &setup().render_script().unwrap());
    }

    #[test]
    fn cron_snapshot() {
        assert_snapshot("backup.cron", &setup().render_cron().unwrap());
    }

    #[test]
    fn the_script_is_bash_with_pipefail_and_a_lock_and_checks_before_renaming() {
        let s = setup().render_script().unwrap();
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains("set -Eeuo pipefail"));
        assert!(s.contains("flock -n 9"));
        let dump = s.find("pg_dump --username").unwrap();
        let marker = s.find("grep -qF -- \"$MARKER\"").unwrap();
        let size = s.find("-ge \"$MIN_BYTES\"").unwrap();
        let rename = s.find("mv -f -- \"$tmp\" \"$DIR/$name\"").unwrap();
        let prune = s.find("# Retention").unwrap();
        assert!(dump < marker && marker < rename && size < rename && rename < prune);
    }

    #[test]
    fn the_script_parses_as_bash() {
        assert_parses_as_bash(&setup().render_script().unwrap());
    }

    #[test]
    fn odd_values_are_quoted_for_the_shell() {
        let mut s = setup();
        s.dir = "/srv/it's here".into();
        s.encrypt = Some("age1abc $(reboot)".into());
        let text = s.render_script().unwrap();
        assert!(text.contains(r"DIR='/srv/it'\''s here'"), "{text}");
        assert!(text.contains("ENCRYPT_TO='age1abc $(reboot)'"), "{text}");
    }

    #[test]
    fn the_cron_line_runs_the_script_as_root_on_the_schedule() {
        let mut s = setup();
        s.schedule = "*/15 * * * 1-5".into();
        let cron = s.render_cron().unwrap();
        let line = cron.lines().find(|l| !l.starts_with('#')).unwrap();
        assert_eq!(
            line,
            "*/15 * * * 1-5 root /var/lib/vldeploy/vaibava/backup/backup.sh >/dev/null 2>&1"
        );
        assert_eq!(s.cron_path(), "/etc/cron.d/vldeploy-vaibava-backup");
    }

    #[test]
    fn run_command_adds_tag_and_wait() {
        assert_eq!(
            setup().run_command(Some("pre-restore"), 600).text(),
            "/var/lib/vldeploy/vaibava/backup/backup.sh --tag pre-restore --wait 600"
        );
        assert_eq!(
            setup().run_command(None, 0).text(),
            "/var/lib/vldeploy/vaibava/backup/backup.sh"
        );
    }

    #[test]
    fn a_full_disk_says_so_with_the_free_bytes_and_gzips_own_message() {
        let o: RunOutcome = serde_json::from_str(r#"{"time":"2025-01-01T02:00:00Z","stack":"s","result":"failed","tag":"","seconds":0.120,"step":"disk-full","failed":"gzip","free_bytes":8192,"error":"gzip exited with 1: gzip: stdout: No space left on device"}"#).unwrap();
        let e = failed_run(
            "root@h:22",
            "the backup script `/b.sh`".into(),
            &setup(),
            o,
            1,
        );
        assert_eq!(
            e.to_string(),
            "on `root@h:22`, the backup script `/b.sh` failed: the filesystem of the backup directory `/var/backups/vaibava` on `root@h:22` is full (8192 bytes free): gzip exited with 1: gzip: stdout: No space left on device (exit 1), at `gzip`
  no new backup was made and no partial file was left; the log is /var/log/vl_backup.log
  help: free space on that filesystem, keep fewer backups (`backup.retention`), or set another `backup.dir` on a larger one"
        );
        let o: RunOutcome = serde_json::from_str(r#"{"time":"t","result":"failed","step":"pg_dump","error":"pg_dump in `vl_postgres` exited with 1: boom"}"#).unwrap();
        assert_eq!(
            failed_run("h", "s".into(), &setup(), o, 1).to_string(),
            "on `h`, s failed: pg_dump in `vl_postgres` exited with 1: boom (exit 1), at `pg_dump`\n  no new backup was made; the log is /var/log/vl_backup.log"
        );
    }

    #[test]
    fn a_report_line_parses() {
        let o: RunOutcome = serde_json::from_str(r#"{"time":"2025-01-01T02:00:00Z","stack":"s","result":"failed","tag":"","seconds":0.120,"step":"pg_dump","error":"x"}"#).unwrap();
        assert_eq!(o.result, "failed");
        assert_eq!(o.step.as_deref(), Some("pg_dump"));
    }
}
