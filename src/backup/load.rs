//! Loading a backup into a database: one transaction, stopping at the first error, with progress.

use std::time::Instant;

use serde::Serialize;

use super::{BackupError, Postgres};

/// How a load went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadStats {
    /// Compressed bytes read from the backup.
    pub bytes: u64,
    pub seconds: f64,
}

/// psql runs the whole dump in one transaction and stops at the first error, so a failed load leaves nothing.
pub(crate) fn load_command(pg: &Postgres<'_>, path: &str, db: &str) -> crate::remote::Command {
    crate::remote::backup::load(&pg.psql(db), path)
}

/// The byte counts in `dd`'s progress output (records end with `\r` or `\n`).
pub(crate) fn progress_bytes(text: &str) -> Option<u64> {
    text.split(['\r', '\n']).rev().find_map(|rec| {
        let (n, rest) = rec.trim().split_once(' ')?;
        rest.starts_with("bytes").then(|| n.parse().ok()).flatten()
    })
}

/// Loads backup `path` (on the host) into the existing, empty database `db`. `progress` gets the compressed bytes
/// read so far and the seconds since the start.
pub async fn load(
    pg: &Postgres<'_>,
    path: &str,
    db: &str,
    progress: &(dyn Fn(u64, f64) + Send + Sync),
) -> Result<LoadStats, BackupError> {
    let started = Instant::now();
    let stream = pg
        .remote
        .exec_stream(&load_command(pg, path, db), None)
        .await?;
    let (mut stdout, end) = stream.split();
    let mut bytes = 0;
    let mut pending = String::new();
    while let Some(chunk) = stdout.recv().await {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(n) = progress_bytes(&pending) {
            bytes = n;
            progress(bytes, started.elapsed().as_secs_f64());
        }
        if let Some(i) = pending.rfind(['\r', '\n']) {
            pending.drain(..=i);
        }
    }
    let status = end.wait().await?;
    if status.status != 0 {
        let tail = crate::transport::Output {
            status: status.status,
            stdout: Vec::new(),
            stderr: status.stderr_tail,
        }
        .stderr_tail(6);
        return Err(BackupError::Step {
            host: pg.remote.name().to_string(),
            step: format!("loading into database `{db}`"),
            detail: format!(
                "psql stopped (exit {}); the transaction was rolled back:\n{tail}",
                status.status
            ),
        });
    }
    Ok(LoadStats {
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transport::Remote;

    #[test]
    fn dd_progress_is_read() {
        let text = "1048576 bytes (1.0 MB, 1.0 MiB) copied, 1.0 s, 1.0 MB/s\r5242880 bytes (5.2 MB, 5.0 MiB) copied, 2.0 s, 2.6 MB/s\r";
        assert_eq!(progress_bytes(text), Some(5_242_880));
        let end = "5+1 records in\n5+1 records out\n5500000 bytes (5.5 MB, 5.2 MiB) copied, 2.1 s, 2.6 MB/s\n";
        assert_eq!(progress_bytes(end), Some(5_500_000));
        assert_eq!(progress_bytes("0+0 records in\n"), None);
    }

    #[test]
    fn the_load_is_one_transaction_that_stops_at_errors() {
        let remote = Remote::local();
        let pg = Postgres {
            remote: &remote,
            container: "vl_postgres".into(),
            user: "postgres".into(),
        };
        let cmd = load_command(
            &pg,
            "/var/backups/s/db_backup_20250101_020000.sql.gz",
            "shop_restore_1",
        )
        .text()
        .to_owned();
        assert!(cmd.contains("set -o pipefail"), "{cmd}");
        assert!(cmd.contains("ON_ERROR_STOP=1"), "{cmd}");
        assert!(cmd.contains("--single-transaction"), "{cmd}");
        assert!(cmd.contains("-d shop_restore_1"), "{cmd}");
        assert!(
            cmd.ends_with(" load /var/backups/s/db_backup_20250101_020000.sql.gz"),
            "{cmd}"
        );
    }
}
