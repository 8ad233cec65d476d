//! Proving a backup file whole before it is used: checksum, gzip stream, completion marker, rows per table.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{BackupError, Setup};
use crate::transport::Remote;

/// The state of a backup's sha256 sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checksum {
    /// The sidecar matches the file.
    Ok,
    /// The sidecar does not match: the file changed after it was written.
    Bad,
    /// No sidecar.
    Missing,
}

impl Checksum {
    pub fn as_str(self) -> &'static str {
        match self {
            Checksum::Ok => "ok",
            Checksum::Bad => "bad",
            Checksum::Missing => "missing",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Checksum::Ok),
            "bad" => Some(Checksum::Bad),
            "missing" => Some(Checksum::Missing),
            _ => None,
        }
    }
}

/// What reading a backup end to end found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Integrity {
    pub file: String,
    pub exists: bool,
    pub bytes: u64,
    pub checksum: Checksum,
    /// The gzip stream decompresses to its end without error.
    pub gzip: bool,
    /// The dump ends with `pg_dump`'s completion marker.
    pub marker: bool,
    /// Rows of each table's `COPY` block in the dump.
    pub tables: BTreeMap<String, u64>,
}

impl Integrity {
    /// Why the backup must not be used; empty when it is whole.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.exists {
            p.push("the file does not exist".to_string());
            return p;
        }
        match self.checksum {
            Checksum::Ok => {}
            Checksum::Bad => p.push(
                "its sha256 does not match its `.sha256` sidecar: the file changed after the backup was made"
                    .into(),
            ),
            Checksum::Missing => p.push("it has no `.sha256` sidecar to check it against".into()),
        }
        if !self.gzip {
            p.push("its gzip stream is damaged or truncated".into());
        }
        if !self.marker {
            p.push("the dump lacks pg_dump's completion marker: it is incomplete".into());
        }
        p
    }
}

/// Parses the check's report.
pub(crate) fn parse_check(file: &str, text: &str) -> Integrity {
    let mut i = Integrity {
        file: file.to_string(),
        exists: false,
        bytes: 0,
        checksum: Checksum::Missing,
        gzip: false,
        marker: false,
        tables: BTreeMap::new(),
    };
    for line in text.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("exists"), Some(v), None) => i.exists = v == "1",
            (Some("bytes"), Some(v), None) => i.bytes = v.parse().unwrap_or(0),
            (Some("checksum"), Some(v), None) => {
                i.checksum = Checksum::parse(v).unwrap_or(Checksum::Bad);
            }
            (Some("marker"), Some(v), None) => i.marker = v == "1",
            (Some("gzip"), Some(v), None) => i.gzip = v == "0",
            (Some("table"), Some(t), Some(n)) => {
                if let Ok(n) = n.parse() {
                    i.tables.insert(t.replace('"', ""), n);
                }
            }
            _ => {}
        }
    }
    i
}

/// Checks backup `file` of `setup`'s directory, reading it end to end on the host.
pub async fn check(remote: &Remote, setup: &Setup, file: &str) -> Result<Integrity, BackupError> {
    let out = remote
        .run(&crate::remote::backup::check(&setup.file_path(file)))
        .await
        .map_err(BackupError::from)?;
    Ok(parse_check(file, &out.stdout_str()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_backup_reads_as_whole() {
        let i = parse_check(
            "f",
            "exists 1\nbytes 2048\nchecksum ok\ntable public.orders 3\ntable public.\"Odd\" 0\nmarker 1\ngzip 0\n",
        );
        assert!(i.problems().is_empty(), "{:?}", i.problems());
        assert_eq!(i.bytes, 2048);
        assert_eq!(i.tables["public.orders"], 3);
        assert_eq!(i.tables["public.Odd"], 0);
    }

    #[test]
    fn each_defect_is_named() {
        let i = parse_check("f", "exists 1\nbytes 20\nchecksum bad\nmarker 0\ngzip 1\n");
        let p = i.problems().join("; ");
        assert!(p.contains("sha256 does not match"), "{p}");
        assert!(p.contains("gzip stream is damaged"), "{p}");
        assert!(p.contains("completion marker"), "{p}");
        let missing = parse_check("f", "exists 0\n");
        assert_eq!(missing.problems(), vec!["the file does not exist"]);
    }

    /// The check script against real files: a good dump, a truncated one, one with a changed byte.
    #[test]
    fn the_check_script_finds_truncation_and_corruption() {
        use std::io::Write as _;
        let d = tempfile::tempdir().unwrap();
        let dump = "SET x = 1;\nCOPY public.orders (id) FROM stdin;\n1\n2\n\\.\n\nCOPY public.empty (id) FROM stdin;\n\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n";
        let path = d.path().join("db_backup_20250101_020000.sql.gz");
        let mut gz = std::process::Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        gz.stdin.take().unwrap().write_all(dump.as_bytes()).unwrap();
        let bytes = gz.wait_with_output().unwrap().stdout;
        std::fs::write(&path, &bytes).unwrap();
        let sum = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        std::fs::write(
            d.path().join("db_backup_20250101_020000.sql.gz.sha256"),
            format!("{sum}  db_backup_20250101_020000.sql.gz\n"),
        )
        .unwrap();
        let run = |p: &std::path::Path| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(crate::remote::backup::check(p.to_str().unwrap()).text())
                .output()
                .unwrap();
            parse_check("f", &String::from_utf8_lossy(&out.stdout))
        };
        let good = run(&path);
        assert!(good.problems().is_empty(), "{:?}", good.problems());
        assert_eq!(good.tables["public.orders"], 2);
        assert_eq!(good.tables["public.empty"], 0);

        std::fs::write(&path, &bytes[..bytes.len() - 9]).unwrap();
        let cut = run(&path);
        assert_eq!(cut.checksum, Checksum::Bad);
        assert!(!cut.gzip, "a truncated gzip stream is found");

        let mut flipped = bytes.clone();
        flipped[20] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        let bad = run(&path);
        assert_eq!(bad.checksum, Checksum::Bad);
        assert!(!bad.problems().is_empty());
    }
}
