//! Middleware that gives each request an id and logs `request_completed`.
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The request id: the caller's `x-request-id` when it is short and plain, else a fresh one.
fn request_id(request: &Request) -> String {
    if let Some(given) = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        && !given.is_empty()
        && given.len() <= 64
        && given
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return given.to_owned();
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:08x}-{n:x}", process_tag())
}

fn process_tag() -> u32 {
    static TAG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| {
        let mut bytes = [0u8; 4];
        if getrandom::fill(&mut bytes).is_err() {
            return std::process::id();
        }
        u32::from_le_bytes(bytes)
    })
}

pub async fn log_request(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    tracing::info!(
        method = %method,
        path = %path,
        status,
        duration_ms = (duration_ms * 1000.0).round() / 1000.0,
        request_id = %id,
        "request_completed"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// The id of the current request, for handlers that record it (the audit log).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);
