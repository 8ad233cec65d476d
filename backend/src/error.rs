//! The API's error type: a stable JSON code per failure, never internal detail.
use axum::{
    Json,
    extract::rejection::{BytesRejection, JsonRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// Every way a request can fail, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("`{0}` not found")]
    NotFound(&'static str),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("the catalog file has errors")]
    InvalidCatalog(Value),
    #[error("missing or wrong token")]
    Unauthorized,
    #[error("refused: operator safe mode is on")]
    SafeMode(Value),
    #[error("too many requests; retry after {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    #[error("payment signature does not match")]
    PaymentVerificationFailed,
    #[error("{0}")]
    Conflict(String),
    #[error("`{0}` is not configured")]
    NotConfigured(&'static str),
    #[error("the payment gateway is unavailable; try again later")]
    PaymentGatewayUnavailable,
    #[error("the shipping service refused our credentials")]
    ShippingAuthFailed,
    #[error("the shipping service is unavailable")]
    ShippingUnavailable,
    #[error("the code could not be delivered")]
    NotificationFailed,
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the body is too large")]
    TooLarge,
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// An unexpected failure: logged with its detail, answered without it.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest { .. } | Self::PaymentVerificationFailed => StatusCode::BAD_REQUEST,
            Self::InvalidCatalog(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::SafeMode(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::DatabaseUnavailable | Self::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PaymentGatewayUnavailable
            | Self::ShippingAuthFailed
            | Self::ShippingUnavailable
            | Self::NotificationFailed => StatusCode::BAD_GATEWAY,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::BadRequest { code, .. } => code,
            Self::InvalidCatalog(_) => "invalid_catalog",
            Self::Unauthorized => "unauthorized",
            Self::SafeMode(_) => "safe_mode",
            Self::RateLimited { .. } => "rate_limited",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::PaymentVerificationFailed => "payment_verification_failed",
            Self::Conflict(_) => "conflict",
            Self::NotConfigured(_) => "not_configured",
            Self::PaymentGatewayUnavailable => "payment_gateway_unavailable",
            Self::ShippingAuthFailed => "shipping_auth_failed",
            Self::ShippingUnavailable => "shipping_unavailable",
            Self::NotificationFailed => "notification_failed",
            Self::NoRoute => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge => "body_too_large",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal_error");
        }
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        match &self {
            Self::InvalidCatalog(details) | Self::SafeMode(details) => {
                error["details"] = details.clone();
            }
            _ => {}
        }
        let mut response = (self.status(), Json(json!({ "error": error }))).into_response();
        if let Self::RateLimited { retry_after_s } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::TooLarge;
        }
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::bad_request(
                "unsupported_media_type",
                "expected `content-type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(_) => {
                Self::bad_request("invalid_json", "the body is not valid JSON")
            }
            JsonRejection::JsonDataError(error) => {
                Self::bad_request("invalid_body", error.body_text())
            }
            _ => Self::bad_request("invalid_body", "the body could not be read"),
        }
    }
}

impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::TooLarge
        } else {
            Self::bad_request("invalid_body", "the body could not be read")
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}

impl From<deadpool_postgres::PoolError> for AppError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        tracing::error!(error = %error, "database_connection_failed");
        Self::DatabaseUnavailable
    }
}

impl From<tokio_postgres::Error> for AppError {
    fn from(error: tokio_postgres::Error) -> Self {
        let io_failure = std::error::Error::source(&error)
            .is_some_and(<dyn std::error::Error + 'static>::is::<std::io::Error>);
        if error.as_db_error().is_none() && (error.is_closed() || io_failure) {
            tracing::error!(error = %error, "database_connection_failed");
            Self::DatabaseUnavailable
        } else {
            Self::internal(error)
        }
    }
}
