//! The shop API (`vl-backend`): catalog, search, OTP auth, checkout and shipping over `PostgreSQL`.
pub mod audit;
pub mod catalog;
pub mod catalog_csv;
pub mod config;
pub mod database;
pub mod error;
pub mod extract;
pub mod healthcheck;
pub mod listener;
pub mod migration;
pub mod notifier;
pub mod otp;
pub mod payment;
pub mod product;
pub mod rate_limit;
pub mod request_log;
pub mod routes;
pub mod search;
pub mod secret;
pub mod server;
pub mod shiprocket;
pub mod state;
pub mod telemetry;

use std::process::ExitCode;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{delete, get, patch, post, put},
};
use clap::Parser;

pub use crate::{config::Config, error::AppError, state::AppState};
use crate::{
    config::{Cli, Command},
    extract::Admin,
    routes::{
        admin, auth, catalog as catalog_routes, health, orders, search as search_routes, shipping,
    },
};

/// The largest catalog CSV an import accepts.
const IMPORT_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Every route of the API.
pub fn app(state: AppState) -> Router {
    let auth = Router::new()
        .route("/otp/request", post(auth::request_otp))
        .route("/otp/verify", post(auth::verify_otp))
        .route("/session", get(auth::session))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::limit_per_ip,
        ));
    let admin = Router::new()
        .route(
            "/catalog/import",
            post(admin::import).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route("/catalog", delete(admin::wipe))
        .route("/products/bulk-delete", post(admin::bulk_delete))
        .route("/products/{handle}", delete(admin::delete_product))
        .route("/products/{handle}/stock", patch(admin::set_stock))
        .route("/search/cache/flush", post(admin::flush_search_cache))
        .route("/payments/fallback", put(admin::set_payment_fallback))
        .route("/orders/{id}/shipment", post(shipping::create_shipment))
        .route("/audit", get(admin::audit_log))
        .route_layer(middleware::from_extractor_with_state::<Admin, AppState>(
            state.clone(),
        ));
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/products", get(catalog_routes::list))
        .route("/products/{handle}", get(catalog_routes::get))
        .route("/search", get(search_routes::search))
        .route("/orders", post(orders::create))
        .route("/orders/{id}", get(orders::get))
        .route("/payments/verify", post(orders::verify_payment))
        .route("/payments/mode", get(orders::payment_mode))
        .nest("/auth", auth)
        .nest("/admin", admin);
    Router::new()
        .nest("/api", api)
        .fallback(|| async { AppError::NoRoute })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(middleware::from_fn(request_log::log_request))
        .with_state(state)
}

/// The binary's entry point: parses the command line and runs the chosen command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck { url } => runtime.block_on(healthcheck::probe(&url)),
        Command::Serve => {
            telemetry::init();
            runtime.block_on(server::serve_until_signal(cli.config))
        }
    }
}
