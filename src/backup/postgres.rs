//! The stack's `PostgreSQL` server, reached with `psql` inside its container: databases, row counts, the swap.

use std::collections::BTreeMap;
use std::time::Duration;

use super::BackupError;
use crate::transport::Remote;

/// Tries of the rename swap, which needs every other session of both databases gone.
const SWAP_TRIES: u32 = 10;

/// Every user table (and partitioned table) with its exact row count, as `schema.table\tcount` lines.
const ROW_COUNTS: &str = "SELECT n.nspname || '.' || c.relname, \
    (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1;";

/// The server inside `container`, as `user` (trusted on the container's local socket: no password).
#[derive(Debug)]
pub struct Postgres<'a> {
    pub remote: &'a Remote,
    pub container: String,
    pub user: String,
}

/// `"name"`, quoted as an SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, quoted as an SQL literal.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SQL that renames `live` to `aside` and `next` to `live` in one transaction, after ending every other
/// session of both.
pub(crate) fn swap_sql(live: &str, next: &str, aside: &str) -> String {
    format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ({l}, {n}) AND pid <> pg_backend_pid();\n\
         BEGIN;\nALTER DATABASE {li} RENAME TO {ai};\nALTER DATABASE {ni} RENAME TO {li};\nCOMMIT;\n",
        l = literal(live),
        n = literal(next),
        li = ident(live),
        ai = ident(aside),
        ni = ident(next),
    )
}

/// Parses `schema.table\tcount` lines.
pub(crate) fn parse_counts(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(t, n)| Some((t.to_string(), n.trim().parse().ok()?)))
        .collect()
}

impl Postgres<'_> {
    /// `docker exec -i <container> psql …` against `db`, statements on stdin, stopping at the first error.
    pub fn psql(&self, db: &str) -> crate::remote::Command {
        crate::remote::backup::psql(&self.container, &self.user, db)
    }

    /// Runs `sql` in `db` and returns what it printed.
    pub async fn sql(&self, db: &str, sql: &str, step: &str) -> Result<String, BackupError> {
        let out = self
            .remote
            .exec_stdin(&self.psql(db), sql.as_bytes().to_vec())
            .await?;
        if out.success() {
            Ok(out.stdout_str())
        } else {
            Err(BackupError::Step {
                host: self.remote.name().to_string(),
                step: step.to_string(),
                detail: format!("psql exited with {}: {}", out.status, out.stderr_tail(5)),
            })
        }
    }

    /// Whether database `db` exists.
    pub async fn exists(&self, db: &str) -> Result<bool, BackupError> {
        let out = self
            .sql(
                "postgres",
                &format!("SELECT 1 FROM pg_database WHERE datname = {};", literal(db)),
                &format!("looking up database `{db}`"),
            )
            .await?;
        Ok(out.trim() == "1")
    }

    /// Database names that start with `prefix`.
    pub async fn databases_like(&self, prefix: &str) -> Result<Vec<String>, BackupError> {
        let out = self
            .sql(
                "postgres",
                &format!(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, {}) ORDER BY 1;",
                    literal(prefix)
                ),
                "listing databases",
            )
            .await?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Creates an empty database from `template0` (what a plain dump expects to load into).
    pub async fn create(&self, db: &str) -> Result<(), BackupError> {
        self.sql(
            "postgres",
            &format!("CREATE DATABASE {} TEMPLATE template0;", ident(db)),
            &format!("creating database `{db}`"),
        )
        .await
        .map(|_| ())
    }

    /// Drops a database if it exists, ending its sessions.
    pub async fn drop(&self, db: &str) -> Result<(), BackupError> {
        self.sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE);", ident(db)),
            &format!("dropping database `{db}`"),
        )
        .await
        .map(|_| ())
    }

    /// Every user table of `db` with its exact row count.
    pub async fn row_counts(&self, db: &str) -> Result<BTreeMap<String, u64>, BackupError> {
        let out = self
            .sql(db, ROW_COUNTS, &format!("counting rows in `{db}`"))
            .await?;
        Ok(parse_counts(&out))
    }

    /// Renames `live` to `aside` and `next` to `live`, atomically; retried while sessions come back.
    pub async fn swap(&self, live: &str, next: &str, aside: &str) -> Result<(), BackupError> {
        let sql = swap_sql(live, next, aside);
        let mut last = None;
        for _ in 0..SWAP_TRIES {
            match self
                .sql(
                    "postgres",
                    &sql,
                    &format!("renaming `{live}` → `{aside}` and `{next}` → `{live}`"),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(last.unwrap_or_else(|| BackupError::Step {
            host: self.remote.name().to_string(),
            step: "the database swap".into(),
            detail: "no attempt was made".into(),
        }))
    }
}

/// `base` + `suffix`, cut so the whole fits `PostgreSQL`'s 63-byte names.
pub(crate) fn db_name(base: &str, suffix: &str) -> String {
    let room = 63usize.saturating_sub(suffix.len());
    let mut cut = base.len().min(room);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &base[..cut])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("vaibava_db"), "\"vaibava_db\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn the_swap_is_one_transaction_after_ending_sessions() {
        assert_eq!(
            swap_sql("shop", "shop_restore_1", "shop_before_1"),
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ('shop', 'shop_restore_1') AND pid <> pg_backend_pid();\n\
             BEGIN;\nALTER DATABASE \"shop\" RENAME TO \"shop_before_1\";\nALTER DATABASE \"shop_restore_1\" RENAME TO \"shop\";\nCOMMIT;\n"
        );
    }

    #[test]
    fn counts_parse_and_junk_is_skipped() {
        let c = parse_counts("public.orders\t12\npublic.products\t0\nnoise\npublic.x\tNaN\n");
        assert_eq!(c.len(), 2);
        assert_eq!(c["public.orders"], 12);
    }

    #[test]
    fn names_fit_in_63_bytes() {
        assert_eq!(db_name("shop", "_restore_1"), "shop_restore_1");
        let long = "x".repeat(80);
        let n = db_name(&long, "_before_20250101_020000");
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("_before_20250101_020000"));
    }
}
