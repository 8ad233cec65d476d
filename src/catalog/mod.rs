//! The catalog seed: the CSV named by `catalog:` imported through the backend's validated admin import (which
//! keeps safe mode's refusal of price changes), recorded on the host so later `up`s never import it again.

use serde::{Deserialize, Serialize};

use crate::layout;
use crate::remote::catalog as cmd;
use crate::state::store::{self, Document};
use crate::transport::Remote;

/// The host's record of the seed import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeded {
    /// SHA-256 of the CSV imported, hex.
    pub sha256: String,
    /// Rows the backend imported.
    pub imported: u64,
    pub at: u64,
    pub actor: String,
}

impl Document for Seeded {
    const KIND: &'static str = "catalog seed record";
    const FIX: &'static str = "remove it and run `vldeploy seed` to import the catalog again";
}

/// What the backend answered to an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub imported: u64,
    pub created: u64,
    pub updated: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "the backend refused the catalog import: safe mode (`OPERATOR_SAFE_MODE=true`) keeps prices as they are, and the CSV changes {changes} price{s}\n  help: nothing was imported; to change prices on purpose, set `OPERATOR_SAFE_MODE: \"false\"` for one `vldeploy up`, run `vldeploy seed`, and set it back",
        s = if *changes == 1 { "" } else { "s" }
    )]
    SafeMode { changes: usize },
    #[error("the backend refused the catalog CSV ({errors} error{s}), e.g. {first}\n  help: fix the CSV; nothing was imported", s = if *errors == 1 { "" } else { "s" })]
    Invalid { errors: usize, first: String },
    #[error("the catalog import answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the catalog import did not reach the backend (curl exit {code}): {detail}")]
    Unreached { code: i32, detail: String },
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// The record of an earlier seed import, if the host has one.
pub async fn seeded(remote: &Remote, stack: &str) -> Result<Option<Seeded>, CatalogError> {
    Ok(store::read(remote, &layout::catalog_seeded(stack)).await?)
}

/// Posts `csv` to the backend's admin import at `url` (from inside the nginx container), then records it.
pub async fn import(
    remote: &Remote,
    stack: &str,
    url: &str,
    token: &str,
    csv: &[u8],
) -> Result<Imported, CatalogError> {
    import_in(
        remote,
        &layout::container_name("nginx"),
        stack,
        url,
        token,
        csv,
    )
    .await
}

/// [`import`] from inside `container` on `remote` (on a swarm, the nginx task's container on an edge node).
pub async fn import_in(
    remote: &Remote,
    container: &str,
    stack: &str,
    url: &str,
    token: &str,
    csv: &[u8],
) -> Result<Imported, CatalogError> {
    let mut stdin = Vec::with_capacity(csv.len() + token.len() + 1);
    stdin.extend_from_slice(token.as_bytes());
    stdin.push(b'\n');
    stdin.extend_from_slice(csv);
    let out = remote
        .exec_stdin(&cmd::import(container, url), stdin)
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status != 0 {
        return Err(CatalogError::Unreached {
            code: out.status,
            detail: out.stderr_tail(3),
        });
    }
    let imported = answer(&text)?;
    let record = Seeded {
        sha256: crate::plan::content_hash(csv),
        imported: imported.imported,
        at: crate::state::now(),
        actor: crate::state::actor(),
    };
    store::write(remote, &layout::catalog_seeded(stack), &record).await?;
    Ok(imported)
}

/// Reads the backend's answer: the body, then the HTTP status on the last line.
pub fn answer(text: &str) -> Result<Imported, CatalogError> {
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", text));
    let status: u16 = status.trim().parse().unwrap_or(0);
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let count = |k: &str| json[k].as_u64().unwrap_or(0);
    match status {
        200 => Ok(Imported {
            imported: count("imported"),
            created: count("created"),
            updated: count("updated"),
        }),
        403 if json["error"]["code"] == "safe_mode" => Err(CatalogError::SafeMode {
            changes: json["error"]["details"]["price_changes"]
                .as_array()
                .map_or(0, Vec::len),
        }),
        422 => {
            let errors = json["error"]["details"]["errors"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            Err(CatalogError::Invalid {
                errors: errors.len(),
                first: errors.first().map(ToString::to_string).unwrap_or_default(),
            })
        }
        _ => Err(CatalogError::Refused {
            status,
            body: body.chars().take(300).collect(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_answers_are_read() {
        assert_eq!(
            answer("{\"imported\":50,\"created\":50,\"updated\":0}\n200").ok(),
            Some(Imported {
                imported: 50,
                created: 50,
                updated: 0
            })
        );
        let safe = answer(
            "{\"error\":{\"code\":\"safe_mode\",\"message\":\"refused\",\"details\":{\"action\":\"x\",\"price_changes\":[{},{}]}}}\n403",
        )
        .unwrap_err()
        .to_string();
        assert!(
            safe.starts_with("the backend refused the catalog import: safe mode (`OPERATOR_SAFE_MODE=true`) keeps prices as they are, and the CSV changes 2 prices\n"),
            "{safe}"
        );
        let invalid = answer(
            "{\"error\":{\"code\":\"invalid_catalog\",\"details\":{\"errors\":[{\"line\":3,\"message\":\"bad price\"}]}}}\n422",
        )
        .unwrap_err()
        .to_string();
        assert!(
            invalid.starts_with("the backend refused the catalog CSV (1 error), e.g. {\"line\":3,\"message\":\"bad price\"}"),
            "{invalid}"
        );
        assert_eq!(
            answer("{\"error\":{\"code\":\"unauthorized\"}}\n401")
                .unwrap_err()
                .to_string(),
            "the catalog import answered 401: {\"error\":{\"code\":\"unauthorized\"}}"
        );
    }
}
