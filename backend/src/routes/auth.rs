//! OTP login: `/api/auth/otp/request`, `/api/auth/otp/verify`, `/api/auth/session`; rate limited.
use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::AppError,
    extract::{Json as Body, bearer, client_ip, peer},
    otp::{self, Destination},
    secret::constant_time_eq,
    state::AppState,
};

/// Middleware on every `/api/auth` route: a request budget per client address.
pub async fn limit_per_ip(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = client_ip(
        state.config.trust_proxy_headers,
        request.headers(),
        peer(request.extensions()),
    );
    if let Err(retry_after_s) = state.ip_limiter.check(&format!("ip:{ip}")) {
        tracing::warn!(
            ip,
            path = request.uri().path(),
            retry_after_s,
            "rate_limited"
        );
        return AppError::RateLimited { retry_after_s }.into_response();
    }
    next.run(request).await
}

/// A request budget per phone number or email address.
fn limit_per_destination(
    state: &AppState,
    destination: &Destination,
    route: &str,
) -> Result<(), AppError> {
    state.destination_limiter.check(&format!("{route}:{}", destination.key())).map_err(|retry_after_s| {
        tracing::warn!(destination = %destination.masked(), route, retry_after_s, "rate_limited");
        AppError::RateLimited { retry_after_s }
    })
}

#[derive(Debug, Deserialize)]
pub struct OtpRequest {
    phone: Option<String>,
    email: Option<String>,
}

/// `POST /api/auth/otp/request` with `{"phone"}` or `{"email"}`: sends a code.
pub async fn request_otp(
    State(state): State<AppState>,
    Body(body): Body<OtpRequest>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let destination = Destination::from_parts(body.phone.as_deref(), body.email.as_deref())?;
    limit_per_destination(&state, &destination, "request")?;
    let code = otp::generate_code()?;
    let hash = otp::hash_code(&state.otp_key, &destination, &code)?;
    let ttl = i64::try_from(state.config.otp_ttl_s).unwrap_or(300);
    let key = destination.key();
    let client = state.db.client().await?;
    client
        .execute(
            "UPDATE otp_codes SET consumed_at = now() WHERE destination = $1 AND consumed_at IS NULL",
            &[&key],
        )
        .await?;
    let row = client
        .query_one(
            "INSERT INTO otp_codes (destination, code_hash, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3::bigint)) RETURNING id",
            &[&key, &hash, &ttl],
        )
        .await?;
    let id: i64 = row.try_get(0)?;
    match state
        .notifier
        .send_code(&destination, &code, state.config.otp_ttl_s)
        .await
    {
        Ok(channel) => {
            tracing::info!(destination = %destination.masked(), channel = channel.as_str(), "otp_sent");
            Ok((
                StatusCode::ACCEPTED,
                Json(
                    json!({ "status": "sent", "channel": channel.as_str(), "expires_in_s": state.config.otp_ttl_s }),
                ),
            ))
        }
        Err(error) => {
            tracing::error!(destination = %destination.masked(), error = %error, "otp_delivery_failed");
            client
                .execute(
                    "UPDATE otp_codes SET consumed_at = now() WHERE id = $1",
                    &[&id],
                )
                .await?;
            Err(AppError::NotificationFailed)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct OtpVerify {
    phone: Option<String>,
    email: Option<String>,
    code: String,
}

/// `POST /api/auth/otp/verify` with the destination and `code`: opens a session.
pub async fn verify_otp(
    State(state): State<AppState>,
    Body(body): Body<OtpVerify>,
) -> Result<Json<Value>, AppError> {
    let destination = Destination::from_parts(body.phone.as_deref(), body.email.as_deref())?;
    limit_per_destination(&state, &destination, "verify")?;
    let key = destination.key();
    let mut client = state.db.client().await?;
    let transaction = client.transaction().await?;
    let row = transaction
        .query_opt(
            "SELECT id, code_hash, attempts, expires_at > now() FROM otp_codes
             WHERE destination = $1 AND consumed_at IS NULL ORDER BY id DESC LIMIT 1 FOR UPDATE",
            &[&key],
        )
        .await?
        .ok_or_else(|| {
            AppError::bad_request("otp_invalid", "the code is wrong or was never sent")
        })?;
    let id: i64 = row.try_get(0)?;
    let stored: String = row.try_get(1)?;
    let attempts: i32 = row.try_get(2)?;
    let fresh: bool = row.try_get(3)?;
    let consume = "UPDATE otp_codes SET consumed_at = now() WHERE id = $1";
    if !fresh {
        transaction.execute(consume, &[&id]).await?;
        transaction.commit().await?;
        return Err(AppError::bad_request(
            "otp_expired",
            "the code has expired; ask for a new one",
        ));
    }
    let given = otp::hash_code(&state.otp_key, &destination, &body.code)?;
    if !constant_time_eq(given.as_bytes(), stored.as_bytes()) {
        let attempts = attempts + 1;
        transaction
            .execute(
                "UPDATE otp_codes SET attempts = $2 WHERE id = $1",
                &[&id, &attempts],
            )
            .await?;
        let exhausted = attempts >= state.config.otp_max_attempts;
        if exhausted {
            transaction.execute(consume, &[&id]).await?;
        }
        transaction.commit().await?;
        tracing::warn!(destination = %destination.masked(), attempts, "otp_verify_failed");
        return Err(if exhausted {
            AppError::bad_request(
                "otp_attempts_exceeded",
                "too many wrong codes; ask for a new one",
            )
        } else {
            AppError::bad_request("otp_invalid", "the code is wrong or was never sent")
        });
    }
    transaction.execute(consume, &[&id]).await?;
    let token = otp::random_token()?;
    let ttl = i64::try_from(state.config.session_ttl_s).unwrap_or(86_400);
    transaction
        .execute(
            "INSERT INTO sessions (token_hash, subject, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3::bigint))",
            &[&otp::hash_token(&token), &key, &ttl],
        )
        .await?;
    transaction.commit().await?;
    tracing::info!(destination = %destination.masked(), "otp_verified");
    Ok(Json(
        json!({ "token": token, "token_type": "Bearer", "expires_in_s": ttl, "subject": key }),
    ))
}

/// `GET /api/auth/session` with `Authorization: Bearer <token>`: who the token belongs to.
pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppError> {
    let token = bearer(&headers).ok_or(AppError::Unauthorized)?;
    let client = state.db.client().await?;
    let row = client
        .query_opt(
            "SELECT subject, extract(epoch FROM expires_at - now())::bigint FROM sessions
             WHERE token_hash = $1 AND expires_at > now()",
            &[&otp::hash_token(token)],
        )
        .await?
        .ok_or(AppError::Unauthorized)?;
    let subject: String = row.try_get(0)?;
    let expires_in_s: i64 = row.try_get(1)?;
    Ok(Json(
        json!({ "subject": subject, "expires_in_s": expires_in_s }),
    ))
}
