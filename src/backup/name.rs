//! The name of a backup file, `db_backup_YYYYMMDD_HHMMSS[_TAG].sql.gz[.age]`, and what it says.

use serde::Serialize;

/// A backup file name, checked: no path, no surprises.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BackupName {
    /// `20250101_020000`: sorts by time.
    pub stamp: String,
    pub file: String,
    /// `pre-restore`, `uploaded`, … ; `None` for scheduled and manual backups.
    pub tag: Option<String>,
    /// Encrypted with age (`.age`).
    pub encrypted: bool,
}

const PREFIX: &str = "db_backup_";

impl BackupName {
    /// Parses a file name; anything else (a path, a temporary file, a sidecar) is `None`.
    pub fn parse(file: &str) -> Option<Self> {
        let rest = file.strip_prefix(PREFIX)?;
        let (rest, encrypted) = match rest.strip_suffix(".age") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let rest = rest.strip_suffix(".sql.gz")?;
        let (stamp, tag) = if rest.len() > 15 {
            let (stamp, tag) = rest.split_at(15);
            let tag = tag.strip_prefix('_')?;
            let ok = !tag.is_empty()
                && tag.len() <= 32
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return None;
            }
            (stamp, Some(tag.to_string()))
        } else {
            (rest, None)
        };
        let b = stamp.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 15 || !digits(0..8) || b[8] != b'_' || !digits(9..15) {
            return None;
        }
        Some(Self {
            stamp: stamp.to_string(),
            file: file.to_string(),
            tag,
            encrypted,
        })
    }

    /// A name for `stamp` (`YYYYMMDD_HHMMSS`) with `tag`.
    pub fn new(stamp: &str, tag: Option<&str>) -> Option<Self> {
        let file = match tag {
            Some(t) => format!("{PREFIX}{stamp}_{t}.sql.gz"),
            None => format!("{PREFIX}{stamp}.sql.gz"),
        };
        Self::parse(&file)
    }

    /// `2025-01-01 02:00:00` (host time).
    pub fn when(&self) -> String {
        let s = &self.stamp;
        format!(
            "{}-{}-{} {}:{}:{}",
            &s[0..4],
            &s[4..6],
            &s[6..8],
            &s[9..11],
            &s[11..13],
            &s[13..15]
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_tagged_and_encrypted_names_parse() {
        let n = BackupName::parse("db_backup_20250101_020000.sql.gz").unwrap();
        assert_eq!(n.stamp, "20250101_020000");
        assert_eq!(n.tag, None);
        assert!(!n.encrypted);
        assert_eq!(n.when(), "2025-01-01 02:00:00");
        let n = BackupName::parse("db_backup_20250101_020000_pre-restore.sql.gz").unwrap();
        assert_eq!(n.tag.as_deref(), Some("pre-restore"));
        let n = BackupName::parse("db_backup_20250101_020000.sql.gz.age").unwrap();
        assert!(n.encrypted);
        assert_eq!(
            BackupName::new("20250101_020000", Some("uploaded"))
                .unwrap()
                .file,
            "db_backup_20250101_020000_uploaded.sql.gz"
        );
    }

    #[test]
    fn paths_sidecars_and_temporaries_do_not() {
        for bad in [
            "../db_backup_20250101_020000.sql.gz",
            "/etc/passwd",
            "db_backup_20250101_020000.sql.gz.sha256",
            ".db_backup_20250101_020000.sql.gz.tmp",
            "db_backup_2025010_020000.sql.gz",
            "db_backup_20250101_020000_.sql.gz",
            "db_backup_20250101_020000_A b.sql.gz",
            "db_backup_20250101.sql.gz",
            "db_backup_20250101_020000.sql",
            "",
        ] {
            assert_eq!(BackupName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_sort_by_time() {
        let mut v = [
            BackupName::parse("db_backup_20250102_010000.sql.gz").unwrap(),
            BackupName::parse("db_backup_20241231_230000.sql.gz").unwrap(),
        ];
        v.sort();
        assert_eq!(v[0].stamp, "20241231_230000");
    }
}
