//! The `PostgreSQL` pool: connection with retry and backoff, migrations, liveness.
use std::{
    str::FromStr,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::{config::Config, error::AppError, migration};

/// Why the pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("`DATABASE_URL` is not a valid PostgreSQL URL")]
    InvalidUrl,
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
}

/// The pool and whether migrations have run.
pub struct Database {
    pool: Pool,
    ready: AtomicBool,
}

/// What the health check reports about the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Starting,
    Up { latency: Duration },
    Down,
}

impl Database {
    /// Builds the pool; no connection is made yet.
    pub fn new(config: &Config) -> Result<Self, DatabaseError> {
        let mut pg = tokio_postgres::Config::from_str(config.database_url.expose())
            .map_err(|_| DatabaseError::InvalidUrl)?;
        pg.connect_timeout(Duration::from_secs(5));
        pg.application_name("vl-backend");
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = Some(Duration::from_secs(5));
        let pool = Pool::builder(manager)
            .max_size(config.db_pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .map_err(|e| DatabaseError::Pool(e.to_string()))?;
        Ok(Self {
            pool,
            ready: AtomicBool::new(false),
        })
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// A pooled connection, or `database_unavailable` (logged as `database_connection_failed`).
    pub async fn client(&self) -> Result<Object, AppError> {
        if !self.is_ready() {
            return Err(AppError::DatabaseUnavailable);
        }
        Ok(self.pool.get().await?)
    }

    /// Connects (retrying with backoff until it works) and migrates. Returns once the database is ready.
    pub async fn connect_and_migrate(&self, retry_max: Duration) {
        let mut delay = Duration::from_millis(200);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match self.try_migrate().await {
                Ok(applied) => {
                    self.ready.store(true, Ordering::Release);
                    tracing::info!(
                        attempt,
                        migrations_applied = applied,
                        schema_version = migration::latest_version(),
                        "database_ready"
                    );
                    return;
                }
                Err(error) => {
                    tracing::error!(
                        attempt,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %error,
                        "database_connection_failed"
                    );
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(retry_max.max(Duration::from_millis(100)));
        }
    }

    async fn try_migrate(&self) -> Result<usize, String> {
        let mut client = self.pool.get().await.map_err(|e| e.to_string())?;
        migration::run(&mut client).await.map_err(|e| e.to_string())
    }

    /// Round-trips `SELECT 1`, bounded by `timeout`.
    pub async fn liveness(&self, timeout: Duration) -> Liveness {
        if !self.is_ready() {
            return Liveness::Starting;
        }
        let started = Instant::now();
        let probe = async {
            let client = self.pool.get().await.map_err(|e| e.to_string())?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(_)) => Liveness::Up {
                latency: started.elapsed(),
            },
            Ok(Err(error)) => {
                tracing::error!(error = %error, "database_connection_failed");
                Liveness::Down
            }
            Err(_) => {
                tracing::error!(error = "timed out", "database_connection_failed");
                Liveness::Down
            }
        }
    }

    pub fn close(&self) {
        self.pool.close();
    }
}
