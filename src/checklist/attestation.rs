//! Attestations: the items no probe can see (a real payment refunded, an OTP received), recorded by an operator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::layout;
use crate::state::store::{self, Document, StoreError};
use crate::transport::Remote;

/// The items that are attested rather than probed.
pub const ATTESTED_ITEMS: &[&str] = &["payment_test", "otp_delivery"];

/// Who attested an item, when, and what they saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub actor: String,
    pub time: u64,
    pub note: String,
}

/// The latest attestation of every item, as stored on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
struct Attestations(BTreeMap<String, Attestation>);

impl Document for Attestations {
    const KIND: &'static str = "attestations";
    const FIX: &'static str =
        "attest the items again with `vldeploy checklist attest ITEM --note \"…\"`";
}

fn path(stack: &str) -> String {
    layout::attestations(stack)
}

/// The latest attestation of every item.
/// A corrupt file is an error naming it, never an empty record.
pub async fn read_attestations(
    remote: &Remote,
    stack: &str,
) -> Result<BTreeMap<String, Attestation>, StoreError> {
    Ok(store::read::<Attestations>(remote, &path(stack))
        .await?
        .unwrap_or_default()
        .0)
}

/// Records `attestation` for `item`, replacing an earlier one (the audit log keeps every one).
pub async fn attest(
    remote: &Remote,
    stack: &str,
    item: &str,
    attestation: Attestation,
) -> Result<(), StoreError> {
    let mut all = read_attestations(remote, stack).await?;
    all.insert(item.to_owned(), attestation);
    store::write(remote, &path(stack), &Attestations(all)).await
}
