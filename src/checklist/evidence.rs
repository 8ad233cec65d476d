//! The evidence `backup verify` leaves for the checklist: which backup was proven by a scratch restore, and when.

use serde::{Deserialize, Serialize};

use crate::layout;
use crate::transport::{Remote, TransportError};

/// A backup that restored into a scratch database with every table's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupVerified {
    pub file: String,
    /// When the backup was taken (the file's modification time).
    pub taken: u64,
    pub verified: u64,
    pub tables: usize,
    pub rows: u64,
}

fn path(stack: &str) -> String {
    layout::backup_evidence(stack)
}

/// Records a successful verification, unless a newer backup was verified already.
pub async fn record_backup_verified(
    remote: &Remote,
    stack: &str,
    record: &BackupVerified,
) -> Result<(), TransportError> {
    if let Some(existing) = read_backup_verified(remote, stack).await? {
        if existing.taken > record.taken {
            return Ok(());
        }
    }
    let text = serde_json::to_vec_pretty(record).unwrap_or_default();
    remote.upload(&path(stack), &text, 0o600).await
}

/// The newest verified backup, if any was ever verified.
pub async fn read_backup_verified(
    remote: &Remote,
    stack: &str,
) -> Result<Option<BackupVerified>, TransportError> {
    Ok(remote
        .read_file(&path(stack))
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Records `v` as the checklist's backup evidence when it proved the backup restores.
pub async fn record_verification(
    remote: &Remote,
    stack: &str,
    setup: &crate::backup::Setup,
    v: &crate::backup::Verification,
) -> Result<(), TransportError> {
    if !v.ok {
        return Ok(());
    }
    let taken = remote
        .exec(&crate::remote::file::mtime(&setup.file_path(&v.file)))
        .await?
        .stdout_str()
        .trim()
        .parse()
        .unwrap_or(0);
    let record = BackupVerified {
        file: v.file.clone(),
        taken,
        verified: crate::state::now(),
        tables: v.tables.len(),
        rows: v.tables.iter().filter_map(|t| t.restored).sum(),
    };
    record_backup_verified(remote, stack, &record).await
}
