//! Proving a backup restores: load it into a scratch database and compare every table's rows.

use serde::Serialize;

use super::postgres::db_name;
use super::{BackupError, Integrity, LoadStats, Postgres, Setup, check, load};
use crate::transport::Remote;

/// One table's rows: in the dump, after loading it, and in the live database now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRows {
    pub table: String,
    pub backup: Option<u64>,
    pub restored: Option<u64>,
    pub live: Option<u64>,
}

/// The evidence that a backup restores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub file: String,
    pub integrity: Integrity,
    pub load: Option<LoadStats>,
    pub tables: Vec<TableRows>,
    /// Every table the dump holds was restored with exactly its rows, and every live table exists in it.
    pub ok: bool,
    /// Every table's restored rows equal the live database's (false when the shop changed since the backup).
    pub matches_live: bool,
    pub problems: Vec<String>,
}

/// Compares the three row counts; returns the rows and what is wrong.
pub(crate) fn compare(
    integrity: &Integrity,
    restored: &std::collections::BTreeMap<String, u64>,
    live: &std::collections::BTreeMap<String, u64>,
) -> (Vec<TableRows>, Vec<String>, bool) {
    let mut names: Vec<&String> = integrity
        .tables
        .keys()
        .chain(restored.keys())
        .chain(live.keys())
        .collect();
    names.sort();
    names.dedup();
    let mut problems = Vec::new();
    let mut matches_live = true;
    let rows = names
        .into_iter()
        .map(|t| {
            let r = TableRows {
                table: t.clone(),
                backup: integrity.tables.get(t).copied(),
                restored: restored.get(t).copied(),
                live: live.get(t).copied(),
            };
            if r.restored.is_none() && r.live.is_some() {
                problems.push(format!(
                    "table `{t}` of the live database is missing from the backup"
                ));
            } else if r.backup.is_some() && r.backup != r.restored {
                problems.push(format!(
                    "table `{t}`: the dump holds {} rows but {} were restored",
                    r.backup.unwrap_or(0),
                    r.restored.unwrap_or(0)
                ));
            }
            if r.restored != r.live {
                matches_live = false;
            }
            r
        })
        .collect();
    (rows, problems, matches_live)
}

/// Checks `file`, loads it into a scratch database next to the live one, compares row counts, and drops the
/// scratch database again (also on failure). The live database is only read.
pub async fn verify(
    remote: &Remote,
    setup: &Setup,
    file: &str,
    progress: &(dyn Fn(u64, f64) + Send + Sync),
) -> Result<Verification, BackupError> {
    let integrity = check(remote, setup, file).await?;
    let mut v = Verification {
        file: file.to_string(),
        problems: integrity.problems(),
        integrity,
        load: None,
        tables: Vec::new(),
        ok: false,
        matches_live: false,
    };
    if !v.problems.is_empty() {
        return Ok(v);
    }
    let pg = Postgres {
        remote,
        container: setup.container.clone(),
        user: setup.user.clone(),
    };
    let scratch = db_name(&setup.database, &format!("_verify_{}", crate::state::now()));
    pg.create(&scratch).await?;
    let loaded = async {
        let stats = load(&pg, &setup.file_path(file), &scratch, progress).await?;
        let restored = pg.row_counts(&scratch).await?;
        Ok::<_, BackupError>((stats, restored))
    }
    .await;
    let dropped = pg.drop(&scratch).await;
    match loaded {
        Ok((stats, restored)) => {
            let live = pg.row_counts(&setup.database).await?;
            let (tables, problems, matches_live) = compare(&v.integrity, &restored, &live);
            v.load = Some(stats);
            v.tables = tables;
            v.ok = problems.is_empty();
            v.problems = problems;
            v.matches_live = matches_live;
        }
        Err(e) => {
            v.problems.push(format!("it does not load: {e}"));
        }
    }
    dropped?;
    Ok(v)
}

/// The evidence that the pgBackRest repository restores: its newest backup plus every archived WAL, recovered in a
/// scratch instance whose tables were counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveVerification {
    /// The backup restored (pgBackRest's label), and when it ended (Unix seconds).
    pub backup: String,
    pub taken: u64,
    /// The host the scratch instance ran on.
    pub host: String,
    /// Every table: `restored` from the scratch instance, `live` now (`backup` is not known for a repository).
    pub tables: Vec<TableRows>,
    /// The scratch instance recovered and holds every live table.
    pub ok: bool,
    /// Every table's restored rows equal the live database's (false when the shop wrote since the last archived
    /// WAL).
    pub matches_live: bool,
    pub problems: Vec<String>,
    /// Restoring and recovering, in seconds.
    pub seconds: f64,
}

/// The name of the scratch instance's container and volume: one per stack, so the next run removes what a
/// killed one left.
pub fn scratch_name(stack: &str) -> String {
    format!("vl_{stack}_verify_archive")
}

/// The newest backup in `pgbackrest info --output=json`: its label and the time it ended.
pub(crate) fn newest_backup(info: &str) -> Option<(String, u64)> {
    let v: serde_json::Value = serde_json::from_str(info).ok()?;
    let b = v.get(0)?.get("backup")?.as_array()?.last()?;
    Some((
        b.get("label")?.as_str()?.to_owned(),
        b.get("timestamp")?.get("stop")?.as_u64()?,
    ))
}

/// Compares the scratch instance's tables with the live database's: every live table must be there.
pub(crate) fn compare_restored(
    restored: &std::collections::BTreeMap<String, u64>,
    live: &std::collections::BTreeMap<String, u64>,
) -> (Vec<TableRows>, Vec<String>, bool) {
    let mut problems = Vec::new();
    if restored.is_empty() {
        problems.push("the restored database holds no table".to_owned());
    }
    let mut names: Vec<&String> = restored.keys().chain(live.keys()).collect();
    names.sort();
    names.dedup();
    let mut matches_live = true;
    let rows = names
        .into_iter()
        .map(|t| {
            let r = TableRows {
                table: t.clone(),
                backup: None,
                restored: restored.get(t).copied(),
                live: live.get(t).copied(),
            };
            if r.restored.is_none() && r.live.is_some() {
                problems.push(format!(
                    "table `{t}` of the live database is missing from the restored repository"
                ));
            }
            if r.restored != r.live {
                matches_live = false;
            }
            r
        })
        .collect();
    (rows, problems, matches_live)
}

/// Restores the newest backup of the pgBackRest repository plus its WAL into a scratch instance on `remote`
/// (the live postgres container's image and configuration, so it reads the repository the way postgres archives
/// to it, on this host or on the backup host), waits up to `wait` for recovery, counts every table's rows and
/// compares them with the live database. The scratch container and volume are removed whatever happens.
pub async fn verify_archive(
    remote: &Remote,
    setup: &Setup,
    local_repo: Option<&str>,
    wait: std::time::Duration,
) -> Result<ArchiveVerification, BackupError> {
    use super::archive::{CONTAINER_CONF, STANZA};
    use crate::remote::archive_verify;
    use crate::remote::backup::{in_postgres, pgbackrest};
    let host = remote.name().to_string();
    let step = |step: &str, detail: String| BackupError::Step {
        host: host.clone(),
        step: step.to_owned(),
        detail,
    };
    let info = remote
        .exec(&in_postgres(
            &setup.container,
            &pgbackrest(CONTAINER_CONF, STANZA, &["--output=json"], "info"),
        ))
        .await?;
    if !info.success() {
        return Err(step(
            "reading the pgBackRest repository (`pgbackrest info`)",
            format!("it exited with {}: {}", info.status, info.stderr_tail(5)),
        ));
    }
    let (backup, taken) = newest_backup(&info.stdout_str()).ok_or_else(|| {
        step(
            "finding the newest backup in the pgBackRest repository",
            "the repository holds no backup yet\n  help: `vldeploy backup now` makes one".into(),
        )
    })?;
    let name = scratch_name(&setup.stack);
    let started = std::time::Instant::now();
    let run = async {
        let out = remote
            .exec(&archive_verify::start(&setup.container, &name, local_repo))
            .await?;
        if !out.success() {
            return Err(step(
                "starting the scratch instance",
                format!("it exited with {}: {}", out.status, out.stderr_tail(5)),
            ));
        }
        loop {
            let out = remote.exec(&archive_verify::state(&name, &setup.user)).await?;
            let text = out.stdout_str();
            match text.lines().next().unwrap_or("").trim() {
                "f" => break,
                "exited" => {
                    let tail: Vec<&str> = text.lines().skip(1).collect();
                    return Err(step(
                        "restoring the newest backup and its WAL into the scratch instance",
                        format!(
                            "it stopped: {}\n  help: `vldeploy backup status` shows the repository; `vldeploy backup now` makes a new backup",
                            tail.join("\n  ")
                        ),
                    ));
                }
                _ => {}
            }
            if started.elapsed() > wait {
                return Err(step(
                    "restoring the newest backup and its WAL into the scratch instance",
                    format!("it did not finish recovery within {}s", wait.as_secs()),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        let scratch = Postgres {
            remote,
            container: name.clone(),
            user: setup.user.clone(),
        };
        scratch.row_counts(&setup.database).await
    }
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let removed = remote.exec(&archive_verify::remove(&name)).await;
    let restored = run?;
    removed?;
    let live = Postgres {
        remote,
        container: setup.container.clone(),
        user: setup.user.clone(),
    }
    .row_counts(&setup.database)
    .await?;
    let (tables, problems, matches_live) = compare_restored(&restored, &live);
    Ok(ArchiveVerification {
        backup,
        taken,
        host: remote.name().to_owned(),
        ok: problems.is_empty(),
        tables,
        matches_live,
        problems,
        seconds,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn integrity(tables: &[(&str, u64)]) -> Integrity {
        Integrity {
            file: "f".into(),
            exists: true,
            bytes: 1000,
            checksum: super::super::Checksum::Ok,
            gzip: true,
            marker: true,
            tables: tables.iter().map(|(t, n)| ((*t).to_string(), *n)).collect(),
        }
    }

    fn counts(tables: &[(&str, u64)]) -> BTreeMap<String, u64> {
        tables.iter().map(|(t, n)| ((*t).to_string(), *n)).collect()
    }

    #[test]
    fn equal_counts_verify_and_match_live() {
        let (rows, problems, live) = compare(
            &integrity(&[("public.orders", 3)]),
            &counts(&[("public.orders", 3)]),
            &counts(&[("public.orders", 3)]),
        );
        assert!(problems.is_empty());
        assert!(live);
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn newer_live_rows_are_not_a_failure_but_lost_rows_are() {
        let (_, problems, live) = compare(
            &integrity(&[("public.orders", 3)]),
            &counts(&[("public.orders", 3)]),
            &counts(&[("public.orders", 5)]),
        );
        assert!(problems.is_empty());
        assert!(!live);
        let (_, problems, _) = compare(
            &integrity(&[("public.orders", 3)]),
            &counts(&[("public.orders", 2)]),
            &counts(&[("public.orders", 3), ("public.products", 1)]),
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_repository_verifies_when_every_live_table_was_restored() {
        let (rows, problems, live) = compare_restored(
            &counts(&[("public.orders", 5)]),
            &counts(&[("public.orders", 6)]),
        );
        assert!(problems.is_empty() && !live, "{problems:?}");
        assert_eq!(rows[0].backup, None);
        let (_, problems, _) = compare_restored(
            &counts(&[("public.orders", 5)]),
            &counts(&[("public.orders", 5), ("public.products", 2)]),
        );
        assert_eq!(
            problems,
            [
                "table `public.products` of the live database is missing from the restored repository"
            ]
        );
        let (_, problems, _) = compare_restored(&counts(&[]), &counts(&[]));
        assert_eq!(problems, ["the restored database holds no table"]);
    }

    #[test]
    fn the_newest_backup_is_the_last_of_the_stanza() {
        let info = r#"[{"name":"main","backup":[{"label":"20261203-130000F","timestamp":{"start":1,"stop":2}},{"label":"20261203-130000F_20261203-140000D","timestamp":{"start":3,"stop":4}}]}]"#;
        assert_eq!(
            newest_backup(info),
            Some(("20261203-130000F_20261203-140000D".into(), 4))
        );
        assert_eq!(newest_backup(r#"[{"name":"main","backup":[]}]"#), None);
        assert_eq!(newest_backup("not json"), None);
        assert_eq!(scratch_name("shop"), "vl_shop_verify_archive");
    }
}
