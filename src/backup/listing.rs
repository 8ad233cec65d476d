//! The backups in a stack's backup directory: name, size, age and checksum state.

use serde::Serialize;

use super::{BackupError, BackupName, Checksum, Setup};
use crate::transport::Remote;

/// One backup file on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub name: BackupName,
    pub bytes: u64,
    /// Modification time, seconds since the Unix epoch.
    pub modified: u64,
    pub checksum: Checksum,
}

/// Parses the listing, newest first; lines that are not backups are skipped.
pub(crate) fn parse_listing(text: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = text
        .lines()
        .filter_map(|line| {
            let mut w = line.split(' ');
            let name = BackupName::parse(w.next()?)?;
            let bytes = w.next()?.parse().ok()?;
            let modified = w.next()?.parse().ok()?;
            let checksum = Checksum::parse(w.next()?)?;
            Some(Entry {
                name,
                bytes,
                modified,
                checksum,
            })
        })
        .collect();
    entries.sort_by(|a, b| b.name.cmp(&a.name));
    entries
}

/// The backups of `setup` on the host, newest first. Every checksum is verified (each file is read).
pub async fn list(remote: &Remote, setup: &Setup) -> Result<Vec<Entry>, BackupError> {
    let out = remote.run(&crate::remote::backup::list(&setup.dir)).await?;
    Ok(parse_listing(&out.stdout_str()))
}

/// What `latest` means: the newest backup that is not a safety copy taken before a restore.
pub fn latest(entries: &[Entry]) -> Option<&Entry> {
    entries
        .iter()
        .find(|e| e.name.tag.as_deref() != Some("pre-restore"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn listing_parses_newest_first_and_latest_skips_safety_copies() {
        let text = "db_backup_20250101_020000.sql.gz 2048 1735696800 ok\n\
                    db_backup_20250103_020000_pre-restore.sql.gz 4096 1735869600 ok\n\
                    db_backup_20250102_020000.sql.gz 3000 1735783200 bad\n\
                    something-else 1 1 ok\n";
        let e = parse_listing(text);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name.stamp, "20250103_020000");
        assert_eq!(e[2].checksum, Checksum::Ok);
        assert_eq!(latest(&e).unwrap().name.stamp, "20250102_020000");
        assert!(latest(&[]).is_none());
    }
}
