//! The evidence `backup verify` leaves for the checklist: which backup was proven by a scratch restore, and when.

use serde::{Deserialize, Serialize};

use crate::layout;
use crate::state::store::{self, Document, StoreError};
use crate::transport::Remote;

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

impl Document for BackupVerified {
    const KIND: &'static str = "backup evidence";
    const FIX: &'static str = "run `vldeploy backup verify` to record it again";
}

fn path(stack: &str) -> String {
    layout::backup_evidence(stack)
}

/// Records a successful verification, unless a newer backup was verified already.
pub async fn record_backup_verified(
    remote: &Remote,
    stack: &str,
    record: &BackupVerified,
) -> Result<(), StoreError> {
    if let Some(existing) = read_backup_verified(remote, stack).await? {
        if existing.taken > record.taken {
            return Ok(());
        }
    }
    store::write(remote, &path(stack), record).await
}

/// The newest verified backup, if any was ever verified; a corrupt file is an error naming it.
pub async fn read_backup_verified(
    remote: &Remote,
    stack: &str,
) -> Result<Option<BackupVerified>, StoreError> {
    store::read(remote, &path(stack)).await
}

/// Records `v` as the checklist's backup evidence when it proved the backup restores.
pub async fn record_verification(
    remote: &Remote,
    stack: &str,
    setup: &crate::backup::Setup,
    v: &crate::backup::Verification,
) -> Result<(), StoreError> {
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
