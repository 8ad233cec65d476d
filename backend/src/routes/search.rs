//! `GET /api/search?q=`: ranked catalog search served from the in-memory index and cache.
use axum::{
    extract::State,
    http::{HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::{error::AppError, extract::Query, search::words, state::AppState};

const MAX_QUERY_CHARS: usize = 200;
const MAX_TERMS: usize = 10;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    limit: Option<usize>,
}

pub async fn search(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> Result<Response, AppError> {
    if query.q.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::bad_request(
            "query_too_long",
            format!("`q` is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let mut terms = words(&query.q);
    terms.truncate(MAX_TERMS);
    if terms.is_empty() {
        return Err(AppError::bad_request(
            "missing_query",
            "`q` needs at least one letter or digit",
        ));
    }
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    let normalized = terms.join(" ");
    let key = format!("{limit}:{normalized}");
    let (body, outcome) = state.search.answer(&key, |index| {
        let (total, results) = index.search(&terms, limit);
        serde_json::to_vec(&json!({ "query": normalized, "total": total, "results": results }))
            .map(Bytes::from)
            .map_err(AppError::internal)
    })?;
    tracing::info!(q = %normalized, cache = outcome.as_str(), "search_cache");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                HeaderName::from_static("x-cache"),
                HeaderValue::from_static(outcome.as_str()),
            ),
        ],
        body,
    )
        .into_response())
}
