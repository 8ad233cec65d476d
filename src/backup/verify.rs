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
}
