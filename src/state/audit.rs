//! The audit log on the host: one JSON line per command that changed (or tried to change) something.

use serde::{Deserialize, Serialize};

use crate::transport::{Remote, TransportError};

/// One audited command. Holds step summaries and error text only, never a value of the stack's env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: u64,
    pub actor: String,
    pub command: String,
    pub environment: String,
    /// One line per applied (or planned) step.
    #[serde(default)]
    pub changes: Vec<String>,
    /// `ok` or `failed`.
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waived: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Appends an entry (the text is scrubbed of `secrets` first).
pub async fn append(
    remote: &Remote,
    stack: &str,
    entry: &AuditEntry,
    secrets: &[crate::secret::Secret],
) -> Result<(), TransportError> {
    let line = crate::secret::scrub(&serde_json::to_string(entry).unwrap_or_default(), secrets);
    remote
        .exec_stdin(
            &crate::remote::audit::append(stack),
            format!("{line}\n").into_bytes(),
        )
        .await
        .map(|_| ())
}

/// The last `n` entries, oldest first.
pub async fn read(
    remote: &Remote,
    stack: &str,
    n: usize,
) -> Result<Vec<AuditEntry>, TransportError> {
    let out = remote.exec(&crate::remote::audit::tail(stack, n)).await?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
