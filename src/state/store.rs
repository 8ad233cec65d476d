//! The one store of the host's records: typed, versioned JSON documents, written atomically.
//!
//! A document is stored as `{"version": N, "data": …}`. A file written before the version field existed
//! holds the bare document and reads as version 1. A file that does not parse, or that a newer vldeploy
//! wrote, is an error naming the host, the file and the fix, never an empty record.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::transport::{Remote, TransportError};

/// A kind of record kept on the host.
pub trait Document: Serialize + DeserializeOwned {
    /// What the file holds, for messages ("attestations").
    const KIND: &'static str;
    /// The format version this vldeploy writes and reads.
    const VERSION: u32 = 1;
    /// What to do about a corrupt file of this kind.
    const FIX: &'static str;
}

/// What can go wrong reading or writing a document.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the {kind} file `{path}` on `{host}` is corrupt ({detail})\nhelp: move it aside (`mv {path} {path}.bad`) and {fix}"
    )]
    Corrupt {
        host: String,
        path: String,
        kind: &'static str,
        detail: String,
        fix: &'static str,
    },
    #[error(
        "the {kind} file `{path}` on `{host}` has version {found}, newer than the {known} this vldeploy reads\nhelp: upgrade vldeploy"
    )]
    Newer {
        host: String,
        path: String,
        kind: &'static str,
        found: u64,
        known: u32,
    },
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// Why a file's bytes are not a document, before the host and path are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecodable {
    Corrupt(String),
    Newer(u64),
}

/// The document in `bytes`: an envelope of a version this vldeploy reads, or a bare document (version 1).
pub fn decode<D: Document>(bytes: &[u8]) -> Result<D, Undecodable> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Undecodable::Corrupt(e.to_string()))?;
    let enveloped = value
        .as_object()
        .is_some_and(|o| o.contains_key("version") && o.contains_key("data") && o.len() == 2);
    let (version, data) = if enveloped {
        let version = value["version"]
            .as_u64()
            .ok_or_else(|| Undecodable::Corrupt("`version` is not a number".to_owned()))?;
        (version, value["data"].clone())
    } else {
        (1, value)
    };
    if version > u64::from(D::VERSION) {
        return Err(Undecodable::Newer(version));
    }
    serde_json::from_value(data).map_err(|e| Undecodable::Corrupt(e.to_string()))
}

/// The file's bytes for `doc`: the envelope with this vldeploy's version.
pub fn encode<D: Document>(doc: &D) -> Vec<u8> {
    let envelope = serde_json::json!({ "version": D::VERSION, "data": doc });
    let mut bytes = serde_json::to_vec_pretty(&envelope).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Reads the document at `path` on the host; `None` when there is no file.
pub async fn read<D: Document>(remote: &Remote, path: &str) -> Result<Option<D>, StoreError> {
    let Some(bytes) = remote.read_file(path).await? else {
        return Ok(None);
    };
    decode(&bytes).map(Some).map_err(|e| match e {
        Undecodable::Corrupt(detail) => StoreError::Corrupt {
            host: remote.name().to_owned(),
            path: path.to_owned(),
            kind: D::KIND,
            detail,
            fix: D::FIX,
        },
        Undecodable::Newer(found) => StoreError::Newer {
            host: remote.name().to_owned(),
            path: path.to_owned(),
            kind: D::KIND,
            found,
            known: D::VERSION,
        },
    })
}

/// Writes `doc` to `path` on the host, mode 0600. Atomic: [`Remote::upload`] writes a temporary file in
/// the same directory and renames it over the old one, so a reader sees the old document or the new one.
pub async fn write<D: Document>(remote: &Remote, path: &str, doc: &D) -> Result<(), StoreError> {
    Ok(remote.upload(path, &encode(doc), 0o600).await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
    struct Notes(BTreeMap<String, u64>);

    impl Document for Notes {
        const KIND: &'static str = "notes";
        const VERSION: u32 = 2;
        const FIX: &'static str = "write the notes again";
    }

    fn notes() -> Notes {
        Notes([("a".to_owned(), 1)].into())
    }

    #[test]
    fn a_written_document_reads_back_with_its_version() {
        let bytes = encode(&notes());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            "{\n  \"data\": {\n    \"a\": 1\n  },\n  \"version\": 2\n}\n"
        );
        assert_eq!(decode::<Notes>(&bytes), Ok(notes()));
    }

    #[test]
    fn a_file_from_before_the_version_field_reads_as_version_1() {
        assert_eq!(decode::<Notes>(br#"{"a": 1}"#), Ok(notes()));
        assert_eq!(
            decode::<Notes>(br#"{"version": 1, "data": {"a": 1}}"#),
            Ok(notes())
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_document() {
        for bad in [
            &b"{\"a\": 1"[..],
            b"",
            b"[1, 2]",
            br#"{"version": "x", "data": {}}"#,
        ] {
            assert!(
                matches!(decode::<Notes>(bad), Err(Undecodable::Corrupt(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_file_from_a_newer_vldeploy_is_refused() {
        assert_eq!(
            decode::<Notes>(br#"{"version": 3, "data": {"a": 1}}"#),
            Err(Undecodable::Newer(3))
        );
    }

    #[test]
    fn errors_name_the_host_the_file_and_the_fix() {
        let corrupt = StoreError::Corrupt {
            host: "root@h:22".into(),
            path: "/var/lib/vldeploy/s/x.json".into(),
            kind: "notes",
            detail: "EOF while parsing".into(),
            fix: Notes::FIX,
        };
        assert_eq!(
            corrupt.to_string(),
            "the notes file `/var/lib/vldeploy/s/x.json` on `root@h:22` is corrupt (EOF while parsing)\nhelp: move it aside (`mv /var/lib/vldeploy/s/x.json /var/lib/vldeploy/s/x.json.bad`) and write the notes again"
        );
        let newer = StoreError::Newer {
            host: "root@h:22".into(),
            path: "/p.json".into(),
            kind: "notes",
            found: 3,
            known: 2,
        };
        assert_eq!(
            newer.to_string(),
            "the notes file `/p.json` on `root@h:22` has version 3, newer than the 2 this vldeploy reads\nhelp: upgrade vldeploy"
        );
    }
}
