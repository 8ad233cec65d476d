//! Serving with graceful shutdown: on SIGTERM stop accepting, let in-flight requests finish (bounded), close the pool.
use std::{future::Future, io, process::ExitCode, time::Duration};

use axum::serve::Listener as _;
use tokio::{net::TcpListener, sync::watch};

use crate::{
    app,
    config::Config,
    listener::{DrainingListener, PeerAddr},
    state::AppState,
};

/// Time between closing the listening socket and closing idle connections: lets connections accepted just
/// before the close deliver their first request.
const SETTLE: Duration = Duration::from_millis(750);

/// Builds the state, binds, starts the database bootstrap in the background and serves until SIGTERM or Ctrl-C.
pub async fn serve_until_signal(config: Config) -> ExitCode {
    let grace = Duration::from_secs(config.shutdown_grace_s);
    let retry_max = Duration::from_millis(config.db_retry_max_ms);
    tracing::info!(
        listen_addr = %config.listen_addr,
        db_pool_size = config.db_pool_size,
        operator_safe_mode = config.operator_safe_mode,
        payment_fallback_mode = config.payment_fallback_mode,
        version = env!("CARGO_PKG_VERSION"),
        "starting"
    );
    let state = match AppState::new(config) {
        Ok(state) => state,
        Err(error) => {
            tracing::error!(error = %error, "startup_failed");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind(state.config.listen_addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(error = %error, listen_addr = %state.config.listen_addr, "startup_failed");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(bootstrap(state.clone(), retry_max));
    match serve(listener, state, shutdown_signal(), grace).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "server_failed");
            ExitCode::FAILURE
        }
    }
}

/// Connects to the database (retrying), migrates, and loads the search index.
pub async fn bootstrap(state: AppState, retry_max: Duration) {
    state.db.connect_and_migrate(retry_max).await;
    state.reindex().await;
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then drains for at most `grace` and closes the pool.
///
/// On shutdown the listening socket is closed first, after taking the connections the kernel had already
/// accepted; those get a moment to send their requests before idle connections are closed, so no request that
/// reached the socket is dropped.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    let (listener, closed) = DrainingListener::new(listener, shutdown)?;
    let addr = listener.local_addr()?;
    let (stopping_tx, mut stopping_rx) = watch::channel(false);
    let router = app(state.clone());
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<PeerAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = closed.await;
        tracing::info!("shutdown_started");
        let _ = stopping_tx.send(true);
        tokio::time::sleep(SETTLE).await;
    });
    tracing::info!(listen_addr = %addr, "listening");
    let deadline = async move {
        while !*stopping_rx.borrow_and_update() {
            if stopping_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(grace + SETTLE).await;
    };
    let result = tokio::select! {
        result = server.into_future() => result,
        () = deadline => {
            tracing::warn!(grace_s = grace.as_secs(), "shutdown_grace_expired");
            Ok(())
        }
    };
    state.db.close();
    tracing::info!("shutdown_complete");
    result
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
