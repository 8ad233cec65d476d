//! `GET /api/health`: uptime, version, database status and latency, catalog size.
use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{database::Liveness, state::AppState};

/// How long the database probe may take before the service counts as unhealthy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let liveness = state.db.liveness(PROBE_TIMEOUT).await;
    let (status, database) = match liveness {
        Liveness::Up { latency } => (
            StatusCode::OK,
            json!({ "status": "up", "latency_ms": (latency.as_secs_f64() * 100_000.0).round() / 100.0 }),
        ),
        Liveness::Down => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "down", "latency_ms": null }),
        ),
        Liveness::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "starting", "latency_ms": null }),
        ),
    };
    let mut body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "uptime_s": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "database": database,
        "catalog": { "products": state.search.catalog_size() },
        "safe_mode": state.config.operator_safe_mode,
        "payment_fallback": state.payment_fallback(),
        "timestamp": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
    });
    if status != StatusCode::OK {
        body["error"] =
            json!({ "code": "database_unavailable", "message": "the database is unavailable" });
    }
    (status, Json(body))
}
