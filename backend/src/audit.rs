//! The audit log: admin actions and failures, one row each in `audit_log`.
use serde::Serialize;
use serde_json::Value;

use crate::{database::Database, error::AppError};

/// Whether the audited action happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Refused,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// One audit row as the admin API lists it.
#[derive(Debug, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: Value,
}

/// Writes an audit row. A failure to write is logged, never hides the action's own answer.
pub async fn record(
    db: &Database,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    detail: Value,
) {
    let result = async {
        let client = db.client().await?;
        client
            .execute(
                "INSERT INTO audit_log (actor, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5)",
                &[&actor, &action, &target, &outcome.as_str(), &detail],
            )
            .await?;
        Ok::<_, AppError>(())
    }
    .await;
    tracing::info!(actor, action, target, outcome = outcome.as_str(), "audit");
    if let Err(error) = result {
        tracing::error!(action, code = error.code(), "audit_write_failed");
    }
}

/// The newest `limit` rows, newest first.
pub async fn recent(db: &Database, limit: i64) -> Result<Vec<AuditEntry>, AppError> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), actor, action, target, \
             outcome, detail FROM audit_log ORDER BY id DESC LIMIT $1",
            &[&limit],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(AuditEntry {
                id: row.try_get(0)?,
                at: row.try_get(1)?,
                actor: row.try_get(2)?,
                action: row.try_get(3)?,
                target: row.try_get(4)?,
                outcome: row.try_get(5)?,
                detail: row.try_get(6)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(AppError::from)
}
