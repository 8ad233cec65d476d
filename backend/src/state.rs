//! `AppState`: what every handler shares.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    config::Config,
    database::{Database, DatabaseError},
    notifier::{Notifier, NotifyError},
    payment::PaymentGateway,
    rate_limit::RateLimiter,
    search::Search,
    secret::Secret,
    shiprocket::Shiprocket,
};

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Notifier(#[from] NotifyError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("no random source: {0}")]
    Random(String),
}

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Database,
    pub search: Search,
    pub started: Instant,
    pub otp_key: Secret,
    pub payment_fallback: AtomicBool,
    pub ip_limiter: RateLimiter,
    pub destination_limiter: RateLimiter,
    pub notifier: Notifier,
    pub gateway: PaymentGateway,
    pub shiprocket: Shiprocket,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state; connects to nothing yet.
    pub fn new(config: Config) -> Result<Self, StateError> {
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout())
            .user_agent(concat!("vl-backend/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StateError::Http(e.to_string()))?;
        let otp_key = if config.otp_secret.is_empty() {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| StateError::Random(e.to_string()))?;
            Secret::new(hex::encode(bytes))
        } else {
            config.otp_secret.clone()
        };
        let window = Duration::from_secs(config.auth_rate_window_s);
        Ok(Self(Arc::new(Inner {
            db: Database::new(&config)?,
            search: Search::default(),
            started: Instant::now(),
            otp_key,
            payment_fallback: AtomicBool::new(config.payment_fallback_mode),
            ip_limiter: RateLimiter::new(config.auth_rate_limit_per_ip, window),
            destination_limiter: RateLimiter::new(config.auth_rate_limit_per_destination, window),
            notifier: Notifier::new(&config, http.clone())?,
            gateway: PaymentGateway::new(&config, http.clone()),
            shiprocket: Shiprocket::new(&config, http),
            config,
        })))
    }

    pub fn payment_fallback(&self) -> bool {
        self.payment_fallback.load(Ordering::Relaxed)
    }

    pub fn set_payment_fallback(&self, enabled: bool) {
        self.payment_fallback.store(enabled, Ordering::Relaxed);
    }

    /// Reloads the search index from the database; keeps the old one when that fails.
    pub async fn reindex(&self) {
        match crate::catalog::index(&self.db).await {
            Ok(index) => {
                let size = index.len();
                self.search.replace(index);
                tracing::info!(products = size, "search_index_rebuilt");
            }
            Err(error) => tracing::error!(code = error.code(), "search_index_rebuild_failed"),
        }
    }
}
