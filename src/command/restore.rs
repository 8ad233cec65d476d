//! `vldeploy restore`: confirm, (send a local backup,) restore under the lock, report phases and rates.

use std::path::Path;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::backup::{failed, resolve};
use super::context::Connected;
use super::{CommandError, Context};
use crate::backup::archive::{Repository, RestoreTarget};
use crate::backup::{BackupName, Phase, RestoreReport, Setup};
use crate::cli::{Output, RestoreArgs};

pub(crate) async fn restore(ctx: &Context, args: &RestoreArgs) -> Result<i32, CommandError> {
    if let Some(p) = args.from_local.as_ref().filter(|p| !p.is_file()) {
        return Err(CommandError::Usage(format!(
            "`{}` is not a file\n  help: pass a `.sql.gz` backup, e.g. one fetched with `vldeploy backup pull`",
            p.display()
        )));
    }
    let identity = match &args.identity {
        None => None,
        Some(p) => Some(std::fs::read(p).map_err(|e| {
            CommandError::Usage(format!(
                "the age identity `{}` cannot be read: {e}\n  help: pass the file `age-keygen` wrote (`AGE-SECRET-KEY-1…`)",
                p.display()
            ))
        })?),
    };
    let target = match (args.to.as_deref(), args.from_backup_host) {
        (_, true) => Some(from_backup_host_target(ctx, args)?),
        (Some(to), false) => Some(point_in_time_target(ctx, args, to)?),
        (None, false) => None,
    };
    if target.is_some() && !ctx.stack.hosts.is_empty() {
        return Err(CommandError::Usage(format!(
            "environment `{}` runs across {} hosts: a restore from the pgBackRest repository (`--to`, `--from-backup-host`) works on one `host:` so far\n  help: restore a dump (`vldeploy restore FILE`); nothing was changed",
            ctx.stack.environment,
            ctx.stack.hosts.len()
        )));
    }
    let (c, setup, swarm) = if ctx.stack.hosts.is_empty() {
        (
            ctx.connect_quiet().await?,
            Setup::from_stack(&ctx.stack),
            None,
        )
    } else {
        // On a cluster: into the postgres task on the db node, the backend service scaled to 0 meanwhile.
        let cluster = super::db_node::connect(ctx).await?;
        let setup = super::db_node::setup(ctx, &cluster.db).await?;
        let swarm = super::db_node::swarm_backend(ctx, &cluster.nodes).await?;
        (cluster.db, setup, Some(swarm))
    };
    if args.resume || args.abort {
        return finish(ctx, &c, &setup, swarm, args.resume).await;
    }
    if let Some(j) = ctx.interrupted_restore(&c).await {
        return Err(CommandError::Usage(format!(
            "{}
  nothing was changed: a new restore waits until that one is finished or rolled back",
            j.describe(&ctx.stack.environment)
        )));
    }
    if let Some((target, repo)) = target {
        return restore_to_time(ctx, &c, &setup, args, &target, &repo).await;
    }
    restore_dump(ctx, &c, &setup, swarm, args, identity.as_deref()).await
}

/// How the restore stops and starts the backend: its container on one host, its service on a swarm.
fn backend<'a>(
    ctx: &Context,
    c: &'a Connected,
    swarm: Option<crate::backup::SwarmBackend>,
) -> crate::backup::Backend<'a> {
    crate::backup::Backend {
        swarm,
        ..crate::backup::restore_backend(&ctx.stack, &c.engine)
    }
}

/// A dump restore: the named (or sent) backup, decrypted first when it is encrypted, under the lock.
async fn restore_dump(
    ctx: &Context,
    c: &Connected,
    setup: &Setup,
    swarm: Option<crate::backup::SwarmBackend>,
    args: &RestoreArgs,
    identity: Option<&[u8]>,
) -> Result<i32, CommandError> {
    let file = match &args.from_local {
        Some(_) => None,
        None => Some(resolve(c, setup, &args.backup).await?),
    };
    if !args.yes {
        let what = file.clone().unwrap_or_else(|| {
            args.from_local
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        });
        confirm(ctx, setup, &what)?;
    }
    ctx.locked(c, "restore", || async {
        let file = match (&file, &args.from_local) {
            (Some(f), _) => f.clone(),
            (None, Some(local)) => match send(&ctx.out, c, setup, local).await {
                Ok(f) => f,
                Err(e) => return (Vec::new(), Err(e)),
            },
            (None, None) => return (Vec::new(), Err(CommandError::Usage("no backup given".into()))),
        };
        let encrypted = BackupName::parse(&file).is_some_and(|n| n.encrypted);
        let file = if encrypted {
            match decrypt(ctx, c, setup, &file, identity).await {
                Ok(f) => f,
                Err(e) => return (Vec::new(), Err(e)),
            }
        } else {
            file
        };
        let mut changes = vec![format!("restore `{}` from `{file}`", setup.database)];
        let backend = backend(ctx, c, swarm);
        ctx.out.note(format!(
            "restoring `{}` on {} from `{file}` …",
            setup.database,
            c.remote.name()
        ));
        let result = crate::backup::restore(&c.remote, setup, &backend, &file, &ctx.out).await;
        if encrypted {
            // The plaintext copy goes as soon as the restore is over, whichever way it ended.
            let _ = c
                .remote
                .exec(&crate::remote::backup::remove_decrypted(&setup.file_path(&file)))
                .await;
        }
        match result {
            Ok(report) => {
                changes.push(format!("safety backup `{}`", report.safety_backup));
                changes.push(format!(
                    "previous database kept as `{}`",
                    report.previous_database
                ));
                print_report(ctx, &report);
                (changes, Ok(0))
            }
            Err(e) => {
                if ctx.output == Output::Json {
                    println!(
                        "{}",
                        serde_json::json!({"file": file, "database": setup.database, "result": "failed", "error": e.to_string()})
                    );
                }
                (changes, Err(failed(e)))
            }
        }
    })
    .await
}

/// `--resume` (`resume`) or `--abort`: ends the interrupted restore the host's journal records, under the lock.
async fn finish(
    ctx: &Context,
    c: &Connected,
    setup: &Setup,
    swarm: Option<crate::backup::SwarmBackend>,
    resume: bool,
) -> Result<i32, CommandError> {
    let command = if resume {
        "restore --resume"
    } else {
        "restore --abort"
    };
    ctx.locked(c, command, || async {
        let backend = backend(ctx, c, swarm);
        let journal = match crate::backup::Journal::read_from(&c.remote, &setup.stack).await {
            Ok(j) => j,
            Err(e) => return (Vec::new(), Err(failed(e))),
        };
        let Some(journal) = journal else {
            let text = format!(
                "no interrupted restore on {}: nothing to {}; nothing was changed",
                c.remote.name(),
                if resume { "resume" } else { "abort" }
            );
            match ctx.output {
                Output::Human => println!("{text}"),
                Output::Json => println!("{}", serde_json::json!({"result": "nothing", "message": text})),
            }
            return (Vec::new(), Ok(0));
        };
        if let Some(to) = journal.to.clone() {
            return finish_point_in_time(ctx, c, setup, journal, &to, resume).await;
        }
        ctx.out.note(format!(
            "{} the restore of `{}` from `{}` interrupted in phase `{}` on {} …",
            if resume { "resuming" } else { "rolling back" },
            journal.database,
            journal.file,
            journal.phase,
            c.remote.name()
        ));
        if resume {
            let mut changes = vec![format!(
                "resume the restore of `{}` from `{}` (interrupted in `{}`)",
                journal.database, journal.file, journal.phase
            )];
            match crate::backup::resume(&c.remote, setup, &backend, &ctx.out).await {
                Ok(Some(report)) => {
                    changes.push(format!("previous database kept as `{}`", report.previous_database));
                    print_report(ctx, &report);
                    (changes, Ok(0))
                }
                Ok(None) => (Vec::new(), Ok(0)),
                Err(e) => (changes, Err(failed(e))),
            }
        } else {
            let mut changes = vec![format!(
                "abort the restore of `{}` from `{}` (interrupted in `{}`)",
                journal.database, journal.file, journal.phase
            )];
            match crate::backup::abort(&c.remote, setup, &backend, &ctx.out).await {
                Ok(Some(r)) => {
                    if r.swapped_back {
                        changes.push(format!("the previous data is live again as `{}`", r.database));
                    }
                    changes.extend(r.dropped.iter().map(|d| format!("dropped `{d}`")));
                    match ctx.output {
                        Output::Json => {
                            let mut v = serde_json::to_value(&r).unwrap_or_default();
                            v["result"] = "aborted".into();
                            println!("{v}");
                        }
                        Output::Human => {
                            println!(
                                "rolled back the restore of `{}` in {:.1}s: `{}` holds the data from before it{}",
                                r.database,
                                r.seconds,
                                r.database,
                                if r.swapped_back { " (swapped back)" } else { "" }
                            );
                            for d in &r.dropped {
                                println!("  dropped `{d}`");
                            }
                            if let Some(s) = &r.safety_backup {
                                println!("  safety backup: {s}");
                            }
                            println!(
                                "  {}",
                                if r.maintenance_kept {
                                    "the maintenance page stays on: it was on before the restore (`vldeploy maintenance off` lifts it)"
                                } else {
                                    "the backend is healthy and the maintenance page is lifted"
                                }
                            );
                        }
                    }
                    (changes, Ok(0))
                }
                Ok(None) => (Vec::new(), Ok(0)),
                Err(e) => (changes, Err(failed(e))),
            }
        }
    })
    .await
}

/// The target of `--to` and the repository's path in the postgres container; a usage error names the flag.
#[allow(clippy::result_large_err)]
fn point_in_time_target(
    ctx: &Context,
    args: &RestoreArgs,
    to: &str,
) -> Result<(RestoreTarget, Repository), CommandError> {
    if args.backup != "latest" {
        return Err(CommandError::Usage(format!(
            "`--to {to}` restores from the pgBackRest repository, not from the dump `{}`\n  help: pass either a dump file or `--to`",
            args.backup
        )));
    }
    let target = RestoreTarget::parse(to).map_err(CommandError::Usage)?;
    let repo = archive_repo(ctx)?;
    Ok((target, repo))
}

/// `--from-backup-host`: the end of the WAL archived on the backup host, and that repository; refused (naming
/// `backup.archive.repo`) when the stack's repository is not on a backup host.
#[allow(clippy::result_large_err)]
fn from_backup_host_target(
    ctx: &Context,
    args: &RestoreArgs,
) -> Result<(RestoreTarget, Repository), CommandError> {
    if args.backup != "latest" {
        return Err(CommandError::Usage(format!(
            "`--from-backup-host` restores from the pgBackRest repository on the backup host, not from the dump `{}`\n  help: pass either a dump file or `--from-backup-host`",
            args.backup
        )));
    }
    let on_backup_host = matches!(
        ctx.stack
            .backup
            .as_ref()
            .and_then(|b| b.archive.as_ref())
            .map(|a| &a.repo),
        Some(crate::stack::ArchiveRepo::Ssh { .. })
    );
    if !on_backup_host {
        return Err(CommandError::Usage(format!(
            "`--from-backup-host` restores from a backup host, and `{}` keeps no repository on one (`backup.archive.repo` is {}); nothing was changed\n  help: set `backup.archive.repo: ssh://USER@HOST/PATH` (the backup host that holds the repository), run `vldeploy up`, then this again; with a repository on this host, `vldeploy restore --to latest`",
            ctx.stack.name,
            if ctx
                .stack
                .backup
                .as_ref()
                .and_then(|b| b.archive.as_ref())
                .is_some()
            {
                "a path on the database host"
            } else {
                "not set"
            }
        )));
    }
    Ok((RestoreTarget::Latest, archive_repo(ctx)?))
}

/// The stack's pgBackRest repository (its path, its passphrase, whether it is on a backup host), or a usage
/// error saying how to set one.
#[allow(clippy::result_large_err)]
fn archive_repo(ctx: &Context) -> Result<Repository, CommandError> {
    match ctx.stack.backup.as_ref().and_then(|b| b.archive.as_ref()) {
        None => Err(CommandError::Usage(format!(
            "`--to` needs continuous archiving, and `{}` sets no `backup.archive.repo`; nothing was changed\n  help: set `backup.archive` in stack.yaml, run `vldeploy up` and `vldeploy backup now`; a restore then reaches any moment after that backup",
            ctx.stack.name
        ))),
        Some(a) => {
            let repo = match &a.repo {
                crate::stack::ArchiveRepo::Local(path) => {
                    Repository::new(path, a, &ctx.stack.named_secrets)
                }
                crate::stack::ArchiveRepo::Ssh { path, .. } => {
                    Repository::on_backup_host(path, a, &ctx.stack.named_secrets)
                }
            };
            repo.map_err(|e| {
                CommandError::Usage(match e.split_once("\n  help: ") {
                    Some((reason, help)) => {
                        format!("{reason}; nothing was changed\n  help: {help}")
                    }
                    None => format!("{e}; nothing was changed"),
                })
            })
        }
    }
}

/// The stack's pgBackRest repository without its passphrase (what a rollback needs), if it has one.
fn archive_path(ctx: &Context) -> Option<Repository> {
    let (path, on_backup_host) = match &ctx.stack.backup.as_ref()?.archive.as_ref()?.repo {
        crate::stack::ArchiveRepo::Local(path) => (path.clone(), false),
        crate::stack::ArchiveRepo::Ssh { path, .. } => (path.clone(), true),
    };
    Some(Repository {
        path,
        cipher: None,
        on_backup_host,
    })
}

/// With an encrypted repository on the backup host: the operator's passphrase (the stack secret) must decrypt
/// it there, or the restore is refused before anything changes.
async fn check_passphrase(ctx: &Context, repo: &Repository) -> Result<(), CommandError> {
    let (Some(cipher), true) = (&repo.cipher, repo.on_backup_host) else {
        return Ok(());
    };
    let Some(target) = crate::backup::backup_host::target(&ctx.stack) else {
        return Ok(());
    };
    let name = target.name();
    let far = crate::host::connect_to(&ctx.stack, target, std::time::Duration::from_secs(15))
        .await
        .map_err(|e| {
            CommandError::Usage(format!(
                "the backup host `{name}` (`backup.archive.repo`) cannot be reached: {e}; nothing was changed\n  help: start it again or check the network, then run the restore again"
            ))
        })?;
    let container = crate::backup::backup_host::container_name(&ctx.stack.name);
    let out = far
        .exec_stdin(
            &crate::remote::pitr::repository_info(&container, true),
            format!("{}\n", cipher.passphrase.expose()).into_bytes(),
        )
        .await?;
    let text = format!(
        "{}\n{}",
        out.stdout_str(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout_str()).unwrap_or_default();
    let status = v[0]["status"]["code"].as_u64();
    let message = v[0]["status"]["message"].as_str().unwrap_or_default();
    if out.success() && matches!(status, Some(0 | 2)) {
        return Ok(());
    }
    let reason = repo
        .explain(&format!("{text}\n{message}"))
        .or_else(|| {
            (message.contains("FormatError") || message.contains("CryptoError")).then(|| {
                format!(
                    "the pgBackRest repository does not decrypt with the passphrase in the secret `{}` (`backup.archive.encrypt_passphrase`)\n  help: set `{}` in the secrets file to the passphrase the repository was created with (the value `vldeploy up` applied), then run the restore again",
                    cipher.secret, cipher.secret
                )
            })
        })
        .unwrap_or_else(|| {
            format!(
                "pgBackRest on the backup host cannot read the repository (`{container}`): {}\n  help: `vldeploy backup status` shows its state; `vldeploy up` starts its container again",
                if message.is_empty() { out.stderr_tail(3) } else { message.to_owned() }
            )
        });
    let (reason, help) = reason.split_once("\n  help: ").unwrap_or((&reason, ""));
    Err(CommandError::Usage(format!(
        "on the backup host {name}: {reason}; nothing was changed\n  help: {help}"
    )))
}

/// `restore --to`: the target checked against the repository's restore points, confirmed, then restored
/// beside the live data and swapped in, under the lock.
async fn restore_to_time(
    ctx: &Context,
    c: &Connected,
    setup: &Setup,
    args: &RestoreArgs,
    target: &RestoreTarget,
    repo: &Repository,
) -> Result<i32, CommandError> {
    check_passphrase(ctx, repo).await?;
    let matches = crate::backup::point_in_time::cluster_matches(&c.remote, setup)
        .await
        .map_err(failed)?;
    if matches == Some(false) && !args.from_backup_host {
        return Err(CommandError::Usage(format!(
            "`--to {}` is refused on {}: this database is not the one the repository holds (another system identifier: a new host's); nothing was changed\n  help: `vldeploy restore --from-backup-host` brings the repository's database here",
            args.to.as_deref().unwrap_or_default(),
            c.remote.name()
        )));
    }
    let status = super::backup::archive_status(ctx, c, setup).await?;
    let now = crate::state::now();
    if let Err(reason) = target.reachable(status.and_then(|s| s.oldest_restore_point), now) {
        return Err(CommandError::Usage(format!(
            "`--to {}` is refused on {}: {reason}\n  nothing was changed",
            args.to.as_deref().unwrap_or_default(),
            c.remote.name()
        )));
    }
    let what = match target {
        RestoreTarget::Latest if args.from_backup_host => {
            "the last WAL archived on the backup host".to_string()
        }
        RestoreTarget::Latest => "the end of the archived WAL".to_string(),
        RestoreTarget::Time(t) => format!("its state at {t}"),
    };
    if !args.yes {
        confirm(ctx, setup, &what)?;
    }
    ctx.locked(c, "restore", || async {
        let changes = vec![format!(
            "restore `{}` to {} (pgBackRest)",
            setup.database,
            target.text()
        )];
        let backend = crate::backup::restore_backend(&ctx.stack, &c.engine);
        ctx.out.note(format!(
            "restoring `{}` on {} to {what} beside the live data …",
            setup.database,
            c.remote.name()
        ));
        let result = crate::backup::point_in_time::restore_to_time(
            &c.remote,
            setup,
            &backend,
            repo,
            target.text(),
            &target.options(),
            &ctx.out,
        )
        .await;
        point_in_time_outcome(ctx, setup, changes, result)
    })
    .await
}

/// Prints a point-in-time restore's report or failure, with the changes it made.
fn point_in_time_outcome(
    ctx: &Context,
    setup: &Setup,
    mut changes: Vec<String>,
    result: Result<crate::backup::point_in_time::PointInTimeReport, crate::backup::BackupError>,
) -> (Vec<String>, Result<i32, CommandError>) {
    match result {
        Ok(r) => {
            changes.push(format!(
                "previous data kept in volume `{}`",
                r.safety_volume
            ));
            for v in &r.removed_safety {
                changes.push(format!(
                    "removed volume `{v}` (an earlier restore's safety copy)"
                ));
            }
            match ctx.output {
                Output::Json => {
                    let mut v = serde_json::to_value(&r).unwrap_or_default();
                    v["result"] = "ok".into();
                    println!("{v}");
                }
                Output::Human => {
                    println!("restored `{}` to {} in {:.1}s", r.database, r.to, r.seconds);
                    println!(
                        "  the previous data is kept in volume `{}` (the safety copy, until the next restore to a point in time serves)",
                        r.safety_volume
                    );
                    for v in &r.removed_safety {
                        println!("  removed volume `{v}`: the safety copy of an earlier restore");
                    }
                    for p in &r.phases {
                        println!("  {:<14} {}", p.name, phase_text(p));
                    }
                }
            }
            (changes, Ok(0))
        }
        Err(e) => {
            if ctx.output == Output::Json {
                println!(
                    "{}",
                    serde_json::json!({"database": setup.database, "result": "failed", "error": e.to_string()})
                );
            }
            (changes, Err(failed(e)))
        }
    }
}

/// `--resume`/`--abort` of an interrupted point-in-time restore (inside the lock `finish` holds).
async fn finish_point_in_time(
    ctx: &Context,
    c: &Connected,
    setup: &Setup,
    journal: crate::backup::Journal,
    to: &str,
    resume: bool,
) -> (Vec<String>, Result<i32, CommandError>) {
    let repo = match archive_repo(ctx) {
        Ok(r) => r,
        // Rolling back reads nothing from the repository: it needs no passphrase.
        Err(_) if !resume && archive_path(ctx).is_some() => match archive_path(ctx) {
            Some(r) => r,
            None => return (Vec::new(), Ok(0)),
        },
        Err(e) => return (Vec::new(), Err(e)),
    };
    let backend = crate::backup::restore_backend(&ctx.stack, &c.engine);
    ctx.out.note(format!(
        "{} the restore of `{}` to {to} interrupted in phase `{}` on {} …",
        if resume { "resuming" } else { "rolling back" },
        journal.database,
        journal.phase,
        c.remote.name()
    ));
    let phase = journal.phase.clone();
    if resume {
        let changes = vec![format!(
            "resume the restore of `{}` to {to} (interrupted in `{phase}`)",
            journal.database
        )];
        let result = crate::backup::point_in_time::resume(
            &c.remote, setup, &backend, &repo, journal, &ctx.out,
        )
        .await;
        return point_in_time_outcome(ctx, setup, changes, result);
    }
    let mut changes = vec![format!(
        "abort the restore of `{}` to {to} (interrupted in `{phase}`)",
        journal.database
    )];
    match crate::backup::point_in_time::abort(&c.remote, setup, &backend, &repo, journal, &ctx.out)
        .await
    {
        Ok(r) => {
            changes.extend(r.dropped.iter().map(|d| format!("removed {d}")));
            match ctx.output {
                Output::Json => {
                    let mut v = serde_json::to_value(&r).unwrap_or_default();
                    v["result"] = "aborted".into();
                    println!("{v}");
                }
                Output::Human => println!(
                    "rolled back the restore of `{}` to {to} in {:.1}s: it holds the data from before it{}",
                    r.database,
                    r.seconds,
                    if r.swapped_back {
                        " (swapped back)"
                    } else {
                        ""
                    }
                ),
            }
            (changes, Ok(0))
        }
        Err(e) => (changes, Err(failed(e))),
    }
}

fn print_report(ctx: &Context, r: &RestoreReport) {
    match ctx.output {
        Output::Json => {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["result"] = "ok".into();
            if let Some(phases) = v["phases"].as_array_mut() {
                for p in phases {
                    if let (Some(b), Some(s)) = (p["bytes"].as_u64(), p["seconds"].as_f64()) {
                        #[allow(clippy::cast_precision_loss)]
                        let mb = b as f64 / 1_048_576.0;
                        p["mb"] = mb.into();
                        p["mb_per_s"] = (mb / s.max(0.001)).into();
                    }
                }
            }
            println!("{v}");
        }
        Output::Human => {
            println!(
                "restored `{}` from `{}` in {:.1}s",
                r.database, r.file, r.seconds
            );
            println!("  safety backup: {}", r.safety_backup);
            println!(
                "  previous database kept as `{}` until the next restore",
                r.previous_database
            );
            for p in &r.phases {
                println!("  {:<14} {}", p.name, phase_text(p));
            }
        }
    }
}

fn phase_text(p: &Phase) -> String {
    match p.bytes {
        Some(b) => {
            #[allow(clippy::cast_precision_loss)]
            let mb = b as f64 / 1_048_576.0;
            format!(
                "{:>7.1}s  {mb:.1} MB, {:.1} MB/s",
                p.seconds,
                mb / p.seconds.max(0.001)
            )
        }
        None => format!("{:>7.1}s", p.seconds),
    }
}

/// Asks the operator to type the stack name; without a terminal, refuses and names `--yes`.
fn confirm(ctx: &Context, setup: &Setup, what: &str) -> Result<(), CommandError> {
    super::context::confirm_by_stack_name(
        ctx,
        format!(
            "refusing to restore `{}` of `{}` ({}) without confirmation\n  help: run it on a terminal to confirm, or pass `--yes` in automation",
            setup.database, ctx.stack.name, ctx.stack.environment
        ),
        &format!(
            "This replaces database `{}` on {} with `{what}` (a safety backup is taken first).",
            setup.database,
            ctx.target_name()
        ),
    )
}

/// Decrypts the encrypted backup `file` (`….sql.gz.age`) beside it on the host with the age identity, after
/// checking the encrypted file against its sidecar; returns the decrypted backup's name (`….sql.gz`).
async fn decrypt(
    ctx: &Context,
    c: &Connected,
    setup: &Setup,
    file: &str,
    identity: Option<&[u8]>,
) -> Result<String, CommandError> {
    let Some(identity) = identity else {
        return Err(CommandError::Usage(format!(
            "`{file}` is encrypted with age and no identity was given; nothing was changed\n  help: pass the identity file that matches `backup.encrypt`: `vldeploy restore {file} --identity PATH`"
        )));
    };
    let integrity = crate::backup::check(&c.remote, setup, file)
        .await
        .map_err(failed)?;
    let refused = |reason: String| {
        failed(crate::backup::BackupError::Refused {
            host: c.remote.name().to_string(),
            file: file.to_string(),
            reason,
            help: "choose another backup (`vldeploy backup list`), or bring a good copy with `--from-local PATH`".into(),
        })
    };
    if !integrity.exists {
        return Err(refused("the file does not exist".into()));
    }
    if integrity.checksum != crate::backup::Checksum::Ok {
        return Err(refused(format!(
            "its sha256 sidecar is {} (the encrypted file is checked before it is decrypted)",
            integrity.checksum.as_str()
        )));
    }
    let plain = file.trim_end_matches(".age").to_string();
    ctx.out.note(format!(
        "decrypting `{file}` on {} with the given age identity …",
        c.remote.name()
    ));
    let cmd = crate::remote::backup::decrypt(&setup.file_path(file), &setup.file_path(&plain));
    let out = c.remote.exec_stdin(&cmd, identity.to_vec()).await?;
    if !out.success() {
        return Err(failed(crate::backup::BackupError::Refused {
            host: c.remote.name().to_string(),
            file: file.to_string(),
            reason: format!(
                "it does not decrypt with the given identity: {}",
                out.stderr_tail(3)
            ),
            help: "pass the identity file whose public key is `backup.encrypt` (`age-keygen -y FILE` prints it)"
                .into(),
        }));
    }
    Ok(plain)
}

/// `YYYYMMDD_HHMMSS` in UTC, now.
fn stamp() -> String {
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    t.chars()
        .filter(char::is_ascii_digit)
        .enumerate()
        .flat_map(|(i, ch)| if i == 8 { vec!['_', ch] } else { vec![ch] })
        .collect()
}

/// Sends a local backup to the host's backup directory as `db_backup_<now>_uploaded.sql.gz`, with its sha256
/// computed here, so the host's check proves it arrived whole.
async fn send(
    out: &crate::output::Output,
    c: &Connected,
    setup: &Setup,
    local: &Path,
) -> Result<String, CommandError> {
    let mut name = BackupName::new(&stamp(), Some("uploaded"))
        .map(|n| n.file)
        .ok_or_else(|| CommandError::Io("cannot name the uploaded backup".into()))?;
    if local.extension().is_some_and(|e| e == "age") {
        name.push_str(".age");
    }
    let io = |e: std::io::Error| CommandError::Io(format!("reading `{}`: {e}", local.display()));
    let mut f = tokio::fs::File::open(local).await.map_err(io)?;
    let path = setup.file_path(&name);
    let tmp = setup.file_path(&format!(".{name}.tmp"));
    let cmd = crate::remote::restore::receive(&setup.dir, &tmp);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let stream = c.remote.exec_stream(&cmd, Some(rx)).await?;
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut total = 0u64;
    let started = std::time::Instant::now();
    out.note(format!(
        "sending `{}` to {} …",
        local.display(),
        c.remote.name()
    ));
    loop {
        let mut buf = vec![0u8; 1 << 20];
        let n = f.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        sha2::Digest::update(&mut hasher, &buf);
        total += n as u64;
        if tx.send(Bytes::from(buf)).await.is_err() {
            break;
        }
    }
    drop(tx);
    stream.success().await?;
    let sum = hex::encode(sha2::Digest::finalize(hasher));
    c.remote
        .upload(
            &format!("{path}.sha256"),
            format!("{sum}  {name}\n").as_bytes(),
            0o600,
        )
        .await?;
    c.remote
        .run(&crate::remote::restore::place(&tmp, &path))
        .await?;
    #[allow(clippy::cast_precision_loss)]
    let mb = total as f64 / 1_048_576.0;
    out.note(format!(
        "  sent {mb:.1} MB in {:.1}s as `{name}`",
        started.elapsed().as_secs_f64()
    ));
    Ok(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn stamps_are_backup_stamps() {
        let s = super::stamp();
        assert!(
            crate::backup::BackupName::new(&s, Some("uploaded")).is_some(),
            "{s}"
        );
    }
}
