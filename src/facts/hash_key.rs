//! The host's key for hashing secret values into container labels: a 0600 file in the stack's directory.

use super::FactsError;
use crate::layout;
use crate::plan::HashKey;
use crate::transport::Remote;

/// Where the key lives on the host.
pub fn key_path(stack: &str) -> String {
    layout::hash_key(stack)
}

/// The stack's key on the host, or `None` when there is none yet.
pub async fn read(remote: &Remote, stack: &str) -> Result<Option<HashKey>, FactsError> {
    let path = key_path(stack);
    let Some(bytes) = remote.read_file(&path).await? else {
        return Ok(None);
    };
    HashKey::parse_hex(&String::from_utf8_lossy(&bytes))
        .map(Some)
        .ok_or_else(|| FactsError::HashKey {
            host: remote.name().to_string(),
            path,
        })
}

/// The stack's key, made on the first `up`: 32 random bytes, written 0600 next to a run that may be making
/// it at the same moment (the first one linked in wins, both use it).
pub async fn read_or_create(remote: &Remote, stack: &str) -> Result<HashKey, FactsError> {
    if let Some(key) = read(remote, stack).await? {
        return Ok(key);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| FactsError::Random(e.to_string()))?;
    let fresh = HashKey::from_bytes(bytes);
    let path = key_path(stack);
    let staged = format!("{path}.new-{}", std::process::id());
    remote
        .upload(&staged, fresh.to_hex().as_bytes(), 0o600)
        .await?;
    remote
        .exec(&crate::remote::file::link_once(&staged, &path))
        .await?;
    read(remote, stack)
        .await?
        .ok_or_else(|| FactsError::HashKey {
            host: remote.name().to_string(),
            path,
        })
}

/// A key for a run that must not write to the host (`plan` before the first `up`): used once, never stored.
pub fn ephemeral() -> Result<HashKey, FactsError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| FactsError::Random(e.to_string()))?;
    Ok(HashKey::from_bytes(bytes))
}
