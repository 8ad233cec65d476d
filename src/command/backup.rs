//! `vldeploy backup now|list|verify|pull`: the host's database backups, and the proof that one restores.

use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;

use super::context::Connected;
use super::{CommandError, Context};
use crate::backup::{BackupError, BackupName, Entry, Setup, latest, list, run_backup, verify};
use crate::cli::{BackupAction, Output};

/// A backup failure as a command failure (its text says what happened and what to do).
#[allow(clippy::needless_pass_by_value)] // used as `map_err(failed)`
pub(crate) fn failed(e: BackupError) -> CommandError {
    CommandError::Backup(e)
}

pub(crate) async fn backup(ctx: &Context, action: &BackupAction) -> Result<i32, CommandError> {
    let (c, setup) = if ctx.stack.hosts.is_empty() {
        (ctx.connect().await?, Setup::from_stack(&ctx.stack))
    } else {
        // A cluster's backups are the db node's, of the postgres task running there.
        let c = super::db_node::connect(ctx).await?.db;
        let setup = super::db_node::setup(ctx, &c).await?;
        (c, setup)
    };
    match action {
        BackupAction::Now => now(ctx, &c, &setup).await,
        BackupAction::List => list_backups(ctx, &c, &setup).await,
        BackupAction::Status => status(ctx, &c, &setup).await,
        BackupAction::Verify { archive: true, .. } => verify_repository(ctx, &c, &setup).await,
        BackupAction::Verify { backup, .. } => verify_backup(ctx, &c, &setup, backup).await,
        BackupAction::Pull { backup, to } => pull(ctx, &c, &setup, backup, to.as_deref()).await,
    }
}

/// Resolves `latest` (or checks a given name) against the host's listing.
pub(crate) async fn resolve(
    c: &Connected,
    setup: &Setup,
    file: &str,
) -> Result<String, CommandError> {
    if file != "latest" {
        return BackupName::parse(file).map(|n| n.file).ok_or_else(|| {
            CommandError::Usage(format!(
                "`{file}` is not a backup file name (db_backup_YYYYMMDD_HHMMSS.sql.gz)\n  help: `vldeploy backup list` shows the backups on {}",
                c.remote.name()
            ))
        });
    }
    let entries = list(&c.remote, setup).await.map_err(failed)?;
    latest(&entries)
        .map(|e| e.name.file.clone())
        .ok_or_else(|| {
            CommandError::Usage(format!(
                "there are no backups in `{}` on {}\n  help: `vldeploy backup now` makes one",
                setup.dir,
                c.remote.name()
            ))
        })
}

async fn now(ctx: &Context, c: &Connected, setup: &Setup) -> Result<i32, CommandError> {
    ctx.locked(c, "backup now", || async {
        ctx.out.note(format!(
            "backing up `{}` on {} …",
            setup.database,
            c.remote.name()
        ));
        match run_backup(&c.remote, setup, None, 600).await {
            Ok(o) => {
                let archived = match archive_backup(ctx, c, setup).await {
                    Ok(a) => a,
                    Err(e) => return (Vec::new(), Err(e)),
                };
                let file = o.file.clone().unwrap_or_default();
                match ctx.output {
                    Output::Json => println!("{}", serde_json::to_string(&o).unwrap_or_default()),
                    Output::Human => {
                        println!(
                            "{file}: {} in {:.1}s, sha256 {}",
                            size(o.bytes.unwrap_or(0)),
                            o.seconds,
                            o.sha256.as_deref().map_or("-", |s| &s[..s.len().min(16)])
                        );
                        if !o.pruned.is_empty() {
                            println!("pruned: {}", o.pruned.join(", "));
                        }
                        if o.copy.as_deref() == Some("failed") {
                            println!(
                                "copy to {} failed: {}",
                                setup.copy_to.as_deref().unwrap_or("-"),
                                o.error.as_deref().unwrap_or("")
                            );
                        }
                    }
                }
                if archived {
                    ctx.out
                        .note("pgBackRest: the stanza is ready and a backup is in the repository");
                }
                let code = i32::from(o.copy.as_deref() == Some("failed"));
                (vec![format!("backup `{file}`")], Ok(code))
            }
            Err(e) => (Vec::new(), Err(failed(e))),
        }
    })
    .await
}

/// With `backup.archive`: makes sure pgBackRest's stanza exists and takes a backup into its repository
/// (differential; full when there is none yet). `Ok(false)` when archiving is off.
async fn archive_backup(ctx: &Context, c: &Connected, setup: &Setup) -> Result<bool, CommandError> {
    use crate::backup::archive::{CONTAINER_CONF, STANZA};
    use crate::remote::backup::{in_postgres, pgbackrest};
    if ctx
        .stack
        .backup
        .as_ref()
        .and_then(|b| b.archive.as_ref())
        .is_none()
    {
        return Ok(false);
    }
    // With the repository on a backup host, pgBackRest backs up from there (repository-host mode).
    let far = match crate::backup::backup_host::target(&ctx.stack) {
        None => None,
        Some(target) => {
            let name = target.name();
            Some(
                crate::host::connect_to(&ctx.stack, target, std::time::Duration::from_secs(15))
                    .await
                    .map_err(|e| {
                        CommandError::Usage(format!(
                            "the backup host `{name}` (`backup.archive.repo`) cannot be reached: {e}\n  help: start it again or check the network; `vldeploy backup status` shows the archiving lag meanwhile"
                        ))
                    })?,
            )
        }
    };
    let (remote, container) = match &far {
        Some(r) => (
            r,
            crate::backup::backup_host::container_name(&ctx.stack.name),
        ),
        None => (&*c.remote, setup.container.clone()),
    };
    for (options, command) in [(&[][..], "stanza-create"), (&["--type=diff"][..], "backup")] {
        let cmd = in_postgres(
            &container,
            &pgbackrest(CONTAINER_CONF, STANZA, options, command),
        );
        let out = remote.exec(&cmd).await?;
        if !out.success() {
            return Err(failed(crate::backup::BackupError::Step {
                host: remote.name().to_string(),
                step: format!("pgBackRest `{command}`"),
                detail: format!("it exited with {}: {}", out.status, out.stderr_tail(5)),
            }));
        }
    }
    Ok(true)
}

/// What postgres and pgBackRest say about continuous archiving; `None` when `backup.archive` is not set.
pub(crate) async fn archive_status(
    ctx: &Context,
    c: &Connected,
    setup: &Setup,
) -> Result<Option<crate::backup::archive::ArchiveStatus>, CommandError> {
    let Some(archive) = ctx.stack.backup.as_ref().and_then(|b| b.archive.as_ref()) else {
        return Ok(None);
    };
    let backup_host = crate::backup::backup_host::target(&ctx.stack).map(|t| t.name());
    crate::backup::archive_status_via(
        &c.remote,
        setup,
        archive.timeout.as_secs(),
        crate::state::now(),
        backup_host.as_deref(),
    )
    .await
    .map(Some)
    .map_err(failed)
}

/// With the repository on a backup host: when this host's cluster is not the stanza's (a new host after `up`),
/// what to say and do.
pub(crate) async fn foreign_cluster(ctx: &Context, c: &Connected, setup: &Setup) -> Option<String> {
    crate::backup::backup_host::target(&ctx.stack)?;
    match crate::backup::point_in_time::cluster_matches(&c.remote, setup).await {
        Ok(Some(false)) => Some(format!(
            "this database is not the one the repository holds: `vldeploy restore --from-backup-host` (the cluster on {} has another system identifier than the stanza on the backup host; pgBackRest refuses its WAL, and the repository is left as it is)",
            c.remote.name()
        )),
        _ => None,
    }
}

/// `backup status`: what postgres and pgBackRest say about continuous archiving.
#[allow(clippy::too_many_lines)]
async fn status(ctx: &Context, c: &Connected, setup: &Setup) -> Result<i32, CommandError> {
    let Some(s) = archive_status(ctx, c, setup).await? else {
        return Err(CommandError::Usage(
            "continuous archiving is off for this stack\n  help: set `backup.archive` in stack.yaml (see the README's backups section)".into(),
        ));
    };
    let timeout_s = ctx
        .stack
        .backup
        .as_ref()
        .and_then(|b| b.archive.as_ref())
        .map_or(0, |a| a.timeout.as_secs());
    let when = |t: Option<u64>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
                )
                .to_string()
            },
        )
    };
    // The checklist's evidence: the newest backup a scratch restore proved, dump or repository.
    let verified = crate::checklist::read_backup_verified(&c.remote, &ctx.stack.name)
        .await
        .unwrap_or_else(|e| {
            ctx.out
                .warning(format!("the last verification could not be read: {e}"));
            None
        });
    match ctx.output {
        Output::Json => {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["archive_timeout_s"] = timeout_s.into();
            v["last_verification"] = serde_json::to_value(&verified).unwrap_or_default();
            println!("{v}");
        }
        Output::Human => {
            println!(
                "continuous archiving of `{}` (archive_timeout {timeout_s}s): {}",
                setup.database,
                if s.stalled { "STALLED" } else { "ok" }
            );
            println!(
                "  last archived WAL  {} ({})",
                s.last_archived_wal.as_deref().unwrap_or("none yet"),
                s.last_archived_age_s
                    .map_or_else(|| "never".to_owned(), |a| format!("{a}s ago"))
            );
            println!(
                "  failed pushes      {}{}",
                s.failed_count,
                s.last_failed_age_s
                    .map(|a| format!(", the last {a}s ago"))
                    .unwrap_or_default()
            );
            match (&s.backup_host, &s.backup_host_error) {
                (Some(host), None) => println!(
                    "  repository         {} backups, {}, on the backup host {host}",
                    s.backups,
                    size(s.repository_bytes)
                ),
                (Some(host), Some(_)) => {
                    println!("  repository         on the backup host {host}: NOT ANSWERING");
                }
                _ => println!(
                    "  repository         {} backups, {}",
                    s.backups,
                    size(s.repository_bytes)
                ),
            }
            println!(
                "  restore points     {} … {}",
                when(s.oldest_restore_point),
                when(s.newest_restore_point)
            );
            match &verified {
                Some(v) => println!(
                    "  last verification  {}, {} ago ({} tables, {} rows restored)",
                    v.file,
                    age(v.verified),
                    v.tables,
                    v.rows
                ),
                None => println!(
                    "  last verification  never (`vldeploy backup verify --archive` restores the repository into a scratch instance)"
                ),
            }
            if crate::backup::backup_host::target(&ctx.stack).is_some() {
                println!(
                    "  scheduled backups  on the backup host, logged to {}",
                    setup.backup_host_log()
                );
            }
        }
    }
    if s.backup_host_error.is_none() {
        if let Some(why) = foreign_cluster(ctx, c, setup).await {
            ctx.out.warning(why);
            return Ok(1);
        }
    }
    if let (Some(host), Some(why)) = (&s.backup_host, &s.backup_host_error) {
        ctx.out.warning(format!(
            "archiving on {} is stalled: {why}\n  help: start the backup host {host} again (its container `{}`, `docker start` there) or check the network between the hosts; postgres keeps the WAL and archiving catches up when it answers",
            c.remote.name(),
            crate::backup::backup_host::container_name(&ctx.stack.name)
        ));
        return Ok(1);
    }
    if s.stalled {
        ctx.out.warning(format!(
            "archiving on {} is stalled: no WAL archived within twice archive_timeout ({}s), or the last push failed\n  help: `vldeploy logs postgres` shows pgBackRest's error; `vldeploy backup now` makes the stanza if it is missing",
            c.remote.name(),
            2 * timeout_s
        ));
        return Ok(1);
    }
    Ok(0)
}

fn size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    if b >= 1_048_576.0 {
        format!("{:.1} MB", b / 1_048_576.0)
    } else if b >= 1024.0 {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

fn age(modified: u64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let secs = now.saturating_sub(modified);
    let rounded = if secs >= 86_400 {
        secs - secs % 3600
    } else if secs >= 3600 {
        secs - secs % 60
    } else {
        secs
    };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}

async fn list_backups(ctx: &Context, c: &Connected, setup: &Setup) -> Result<i32, CommandError> {
    let entries: Vec<Entry> = list(&c.remote, setup).await.map_err(failed)?;
    match ctx.output {
        Output::Json => {
            let rows: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e).unwrap_or_default();
                    v["path"] = setup.file_path(&e.name.file).into();
                    v
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"stack": ctx.stack.name, "host": c.remote.name(), "dir": setup.dir, "backups": rows})
            );
        }
        Output::Human => {
            if entries.is_empty() {
                println!(
                    "no backups in `{}` on {} (`vldeploy backup now` makes one)",
                    setup.dir,
                    c.remote.name()
                );
                return Ok(0);
            }
            println!("{} on {}: {}", ctx.stack.name, c.remote.name(), setup.dir);
            println!("{:<52} {:>10} {:>14}  CHECKSUM", "FILE", "SIZE", "AGE");
            for e in &entries {
                println!(
                    "{:<52} {:>10} {:>14}  {}",
                    e.name.file,
                    size(e.bytes),
                    age(e.modified),
                    e.checksum.as_str()
                );
            }
        }
    }
    Ok(0)
}

async fn verify_backup(
    ctx: &Context,
    c: &Connected,
    setup: &Setup,
    file: &str,
) -> Result<i32, CommandError> {
    let file = resolve(c, setup, file).await?;
    ctx.locked(c, "backup verify", || async {
        ctx.out.note(format!(
            "verifying `{file}` by restoring it into a scratch database …"
        ));
        let total = c
            .remote
            .exec(&crate::remote::backup::size(&setup.file_path(&file)))
            .await
            .ok()
            .and_then(|o| o.stdout_str().trim().parse().ok())
            .unwrap_or(0);
        let out = &ctx.out;
        let progress = |bytes: u64, _: f64| out.progress(bytes, Some(total));
        let v = match verify(&c.remote, setup, &file, &progress).await {
            Ok(v) => v,
            Err(e) => return (vec![format!("verify `{file}`")], Err(failed(e))),
        };
        if let Err(e) =
            crate::checklist::record_verification(&c.remote, &ctx.stack.name, setup, &v).await
        {
            ctx.out.warning(format!(
                "the checklist's backup evidence was not recorded: {e}"
            ));
        }
        match ctx.output {
            Output::Json => println!("{}", serde_json::to_string(&v).unwrap_or_default()),
            Output::Human => {
                println!("{file}: {}", if v.ok { "verified" } else { "NOT verified" });
                if !v.tables.is_empty() {
                    println!(
                        "{:<40} {:>10} {:>10} {:>10}",
                        "TABLE", "BACKUP", "RESTORED", "LIVE"
                    );
                    let n = |x: Option<u64>| x.map_or_else(|| "-".to_string(), |v| v.to_string());
                    for t in &v.tables {
                        println!(
                            "{:<40} {:>10} {:>10} {:>10}",
                            t.table,
                            n(t.backup),
                            n(t.restored),
                            n(t.live)
                        );
                    }
                    if v.ok && !v.matches_live {
                        println!("(the live database changed since this backup was taken)");
                    }
                }
                for p in &v.problems {
                    println!("problem: {p}");
                }
            }
        }
        let result = if v.ok {
            Ok(0)
        } else {
            Err(CommandError::Usage(format!(
                "backup `{file}` on {} did not verify: {}",
                c.remote.name(),
                v.problems.join("; ")
            )))
        };
        (
            vec![format!(
                "verify `{file}`: {}",
                if v.ok { "ok" } else { "failed" }
            )],
            result,
        )
    })
    .await
}

/// `backup verify --archive`: the pgBackRest repository's newest backup plus its WAL, restored into a scratch
/// instance on the database host (whose postgres configuration reads the repository, local or on the backup
/// host), counted, and recorded as the checklist's evidence.
async fn verify_repository(
    ctx: &Context,
    c: &Connected,
    setup: &Setup,
) -> Result<i32, CommandError> {
    let Some(archive) = ctx.stack.backup.as_ref().and_then(|b| b.archive.as_ref()) else {
        return Err(CommandError::Usage(
            "continuous archiving is off for this stack: there is no pgBackRest repository to verify\n  help: set `backup.archive` in stack.yaml, or verify a dump with `vldeploy backup verify`".into(),
        ));
    };
    let local_repo = match &archive.repo {
        crate::stack::ArchiveRepo::Local(path) => Some(path.clone()),
        crate::stack::ArchiveRepo::Ssh { .. } => None,
    };
    ctx.locked(c, "backup verify --archive", || async {
        ctx.out.note(format!(
            "verifying the pgBackRest repository by restoring its newest backup and WAL into a scratch instance on {} …",
            c.remote.name()
        ));
        let v = match crate::backup::verify_archive(
            &c.remote,
            setup,
            local_repo.as_deref(),
            Duration::from_mins(10),
        )
        .await
        {
            Ok(v) => v,
            Err(e) => return (vec!["verify the pgBackRest repository".to_owned()], Err(failed(e))),
        };
        if v.ok {
            let record = crate::checklist::BackupVerified {
                file: format!("pgBackRest backup {}", v.backup),
                taken: v.taken,
                verified: crate::state::now(),
                tables: v.tables.len(),
                rows: v.tables.iter().filter_map(|t| t.restored).sum(),
            };
            if let Err(e) =
                crate::checklist::record_backup_verified(&c.remote, &ctx.stack.name, &record).await
            {
                ctx.out.warning(format!(
                    "the checklist's backup evidence was not recorded: {e}"
                ));
            }
        }
        match ctx.output {
            Output::Json => println!("{}", serde_json::to_string(&v).unwrap_or_default()),
            Output::Human => {
                println!(
                    "pgBackRest backup {} plus WAL: {} (restored and recovered in {:.1}s)",
                    v.backup,
                    if v.ok { "verified" } else { "NOT verified" },
                    v.seconds
                );
                println!("{:<40} {:>10} {:>10}", "TABLE", "RESTORED", "LIVE");
                let n = |x: Option<u64>| x.map_or_else(|| "-".to_string(), |v| v.to_string());
                for t in &v.tables {
                    println!("{:<40} {:>10} {:>10}", t.table, n(t.restored), n(t.live));
                }
                if v.ok && !v.matches_live {
                    println!("(the live database changed since the last archived WAL)");
                }
                for p in &v.problems {
                    println!("problem: {p}");
                }
            }
        }
        let line = format!(
            "verify pgBackRest backup `{}`: {}",
            v.backup,
            if v.ok { "ok" } else { "failed" }
        );
        let result = if v.ok {
            Ok(0)
        } else {
            Err(CommandError::Usage(format!(
                "the pgBackRest repository did not verify on {}: {}",
                c.remote.name(),
                v.problems.join("; ")
            )))
        };
        (vec![line], result)
    })
    .await
}

async fn pull(
    ctx: &Context,
    c: &Connected,
    setup: &Setup,
    file: &str,
    to: Option<&std::path::Path>,
) -> Result<i32, CommandError> {
    let file = resolve(c, setup, file).await?;
    let dest = to.map_or_else(
        || std::path::PathBuf::from(&file),
        std::path::Path::to_path_buf,
    );
    let sidecar = c
        .remote
        .read_file(&format!("{}.sha256", setup.file_path(&file)))
        .await?
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string()
        });
    let tmp = dest.with_extension("part");
    let io = |e: std::io::Error| CommandError::Io(format!("writing `{}`: {e}", tmp.display()));
    let mut out = tokio::fs::File::create(&tmp).await.map_err(io)?;
    let stream = c
        .remote
        .exec_stream(&crate::remote::backup::read(&setup.file_path(&file)), None)
        .await?;
    let (mut rx, end) = stream.split();
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut bytes = 0u64;
    while let Some(chunk) = rx.recv().await {
        sha2::Digest::update(&mut hasher, &chunk);
        bytes += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(io)?;
    }
    end.success().await?;
    out.flush().await.map_err(io)?;
    drop(out);
    let got = hex::encode(sha2::Digest::finalize(hasher));
    if let Some(want) = sidecar.as_ref().filter(|w| **w != got) {
        {
            let _ = std::fs::remove_file(&tmp);
            return Err(CommandError::Io(format!(
                "`{file}` from {} does not match its checksum (sha256 {got}, expected {want}); nothing was written",
                c.remote.name()
            )));
        }
    }
    std::fs::rename(&tmp, &dest).map_err(io)?;
    std::fs::write(
        format!("{}.sha256", dest.display()),
        format!("{got}  {file}\n"),
    )
    .map_err(|e| {
        CommandError::Io(format!(
            "writing the checksum next to `{}`: {e}",
            dest.display()
        ))
    })?;
    let checked = if sidecar.is_some() {
        "checksum ok"
    } else {
        "no checksum on the host"
    };
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"file": file, "path": dest.display().to_string(), "bytes": bytes, "sha256": got, "checksum": sidecar.is_some()})
        ),
        Output::Human => println!("{} ({}, {checked})", dest.display(), size(bytes)),
    }
    Ok(0)
}
