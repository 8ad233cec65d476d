//! Request extractors whose rejections are `AppError`s, and the client address.
use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts},
    http::{HeaderMap, header, request::Parts},
};

use crate::{error::AppError, listener::PeerAddr, secret::constant_time_eq, state::AppState};

/// `axum::Json` with JSON error answers.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct Json<T>(pub T);

/// `axum::extract::Query` with JSON error answers.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

/// The client's address: nginx's `X-Real-IP` when trusted, else the peer address.
pub fn client_ip(
    trust_proxy_headers: bool,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> String {
    if trust_proxy_headers
        && let Some(ip) = headers.get("x-real-ip").and_then(|v| v.to_str().ok())
        && let Ok(ip) = ip.trim().parse::<std::net::IpAddr>()
    {
        return ip.to_string();
    }
    peer.map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string())
}

/// The peer address when the server records it.
pub fn peer(parts_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    parts_extensions
        .get::<ConnectInfo<PeerAddr>>()
        .map(|ConnectInfo(PeerAddr(addr))| *addr)
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Proof that a request carried the admin token.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The client address, for the audit log.
    pub ip: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let expected = state.config.admin_token.expose();
        let given = bearer(&parts.headers).unwrap_or_default();
        let ip = client_ip(
            state.config.trust_proxy_headers,
            &parts.headers,
            peer(&parts.extensions),
        );
        if expected.is_empty() || !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            tracing::warn!(ip, "admin_auth_failed");
            return Err(AppError::Unauthorized);
        }
        Ok(Self { ip })
    }
}
