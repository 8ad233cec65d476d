//! Attestations: the items no probe can see (a real payment refunded, an OTP received), recorded by an operator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::layout;
use crate::transport::{Remote, TransportError};

/// The items that are attested rather than probed.
pub const ATTESTED_ITEMS: &[&str] = &["payment_test", "otp_delivery"];

/// Who attested an item, when, and what they saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub actor: String,
    pub time: u64,
    pub note: String,
}

fn path(stack: &str) -> String {
    layout::attestations(stack)
}

/// The latest attestation of every item.
pub async fn read_attestations(
    remote: &Remote,
    stack: &str,
) -> Result<BTreeMap<String, Attestation>, TransportError> {
    Ok(remote
        .read_file(&path(stack))
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

/// Records `attestation` for `item`, replacing an earlier one (the audit log keeps every one).
pub async fn attest(
    remote: &Remote,
    stack: &str,
    item: &str,
    attestation: Attestation,
) -> Result<(), TransportError> {
    let mut all = read_attestations(remote, stack).await?;
    all.insert(item.to_owned(), attestation);
    let text = serde_json::to_vec_pretty(&all).unwrap_or_default();
    remote.upload(&path(stack), &text, 0o600).await
}
