//! Service configuration from flags and environment variables.
use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::secret::Secret;

/// The command line: serve (default) or probe a running instance.
#[derive(Debug, Parser)]
#[command(
    name = "vl-backend",
    version,
    about = "The shop API: catalog, search, OTP auth, checkout, shipping"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Exit 0 when the health endpoint answers 200, 1 otherwise.
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/api/health")]
        url: String,
    },
}

/// Everything the service reads at start. Each field is a flag and an environment variable.
#[derive(Debug, Clone, Args)]
#[allow(clippy::struct_excessive_bools)]
pub struct Config {
    /// `PostgreSQL` connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/vaibava_db"
    )]
    pub database_url: Secret,
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,
    /// Maximum number of database connections.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 10)]
    pub db_pool_size: usize,
    /// Longest wait between two database connection attempts at start, in milliseconds.
    #[arg(long, env = "DB_RETRY_MAX_MS", default_value_t = 5000)]
    pub db_retry_max_ms: u64,
    /// Bearer token for `/api/admin` routes; admin routes are closed when empty.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, default_value = "")]
    pub admin_token: Secret,
    /// Refuse destructive catalog operations.
    #[arg(long, env = "OPERATOR_SAFE_MODE", default_value_t = false, action = clap::ArgAction::Set)]
    pub operator_safe_mode: bool,
    /// Take orders as cash on delivery without contacting the payment gateway.
    #[arg(long, env = "PAYMENT_FALLBACK_MODE", default_value_t = false, action = clap::ArgAction::Set)]
    pub payment_fallback_mode: bool,
    /// Seconds to let in-flight requests finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE_S", default_value_t = 20)]
    pub shutdown_grace_s: u64,
    /// Use `X-Real-IP` (set by nginx) as the client address for rate limits.
    #[arg(long, env = "TRUST_PROXY_HEADERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub trust_proxy_headers: bool,
    /// Requests per client address per window on `/api/auth`.
    #[arg(long, env = "AUTH_RATE_LIMIT_PER_IP", default_value_t = 30)]
    pub auth_rate_limit_per_ip: u32,
    /// Requests per phone number or email address per window on `/api/auth`.
    #[arg(long, env = "AUTH_RATE_LIMIT_PER_DESTINATION", default_value_t = 5)]
    pub auth_rate_limit_per_destination: u32,
    /// Length of the rate limit window in seconds.
    #[arg(long, env = "AUTH_RATE_WINDOW_S", default_value_t = 600)]
    pub auth_rate_window_s: u64,
    /// Key for hashing one-time passwords at rest; a random one per process when empty.
    #[arg(long, env = "OTP_SECRET", hide_env_values = true, default_value = "")]
    pub otp_secret: Secret,
    /// Seconds a one-time password stays valid.
    #[arg(long, env = "OTP_TTL_S", default_value_t = 300)]
    pub otp_ttl_s: u64,
    /// Wrong codes allowed before a one-time password is void.
    #[arg(long, env = "OTP_MAX_ATTEMPTS", default_value_t = 5)]
    pub otp_max_attempts: i32,
    /// Seconds a login session lasts.
    #[arg(long, env = "SESSION_TTL_S", default_value_t = 2_592_000)]
    pub session_ttl_s: u64,
    /// Development only: the log notifier writes the code itself into the log.
    #[arg(long, env = "OTP_LOG_CODES", default_value_t = false, action = clap::ArgAction::Set)]
    pub otp_log_codes: bool,
    /// SMTP server for email OTPs, e.g. `smtps://user:pass@smtp.example.com:465`.
    #[arg(long, env = "SMTP_URL", hide_env_values = true, default_value = "")]
    pub smtp_url: Secret,
    /// Sender address of OTP emails.
    #[arg(
        long,
        env = "SMTP_FROM",
        default_value = "Vaibava <no-reply@vaibava.example>"
    )]
    pub smtp_from: String,
    /// `WhatsApp` Cloud API base URL (with version).
    #[arg(
        long,
        env = "WHATSAPP_API_URL",
        default_value = "https://graph.facebook.com/v21.0"
    )]
    pub whatsapp_api_url: String,
    /// `WhatsApp` sender phone number id; phone OTPs go to the log when empty.
    #[arg(long, env = "WHATSAPP_PHONE_NUMBER_ID", default_value = "")]
    pub whatsapp_phone_number_id: String,
    /// `WhatsApp` Cloud API access token.
    #[arg(
        long,
        env = "WHATSAPP_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    pub whatsapp_token: Secret,
    /// Name of the approved authentication template that carries the code.
    #[arg(long, env = "WHATSAPP_TEMPLATE", default_value = "otp")]
    pub whatsapp_template: String,
    /// Payment gateway (Razorpay API) base URL.
    #[arg(
        long,
        env = "RAZORPAY_BASE_URL",
        default_value = "https://api.razorpay.com"
    )]
    pub razorpay_base_url: String,
    /// Payment gateway key id.
    #[arg(long, env = "RAZORPAY_KEY_ID", default_value = "")]
    pub razorpay_key_id: String,
    /// Payment gateway key secret (signs payment confirmations).
    #[arg(
        long,
        env = "RAZORPAY_KEY_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    pub razorpay_key_secret: Secret,
    /// Shiprocket API base URL.
    #[arg(
        long,
        env = "SHIPROCKET_BASE_URL",
        default_value = "https://apiv2.shiprocket.in"
    )]
    pub shiprocket_base_url: String,
    /// Shiprocket API user email.
    #[arg(long, env = "SHIPROCKET_EMAIL", default_value = "")]
    pub shiprocket_email: String,
    /// Shiprocket API user password.
    #[arg(
        long,
        env = "SHIPROCKET_PASSWORD",
        hide_env_values = true,
        default_value = ""
    )]
    pub shiprocket_password: Secret,
    /// Shiprocket pickup location name.
    #[arg(long, env = "SHIPROCKET_PICKUP_LOCATION", default_value = "Primary")]
    pub shiprocket_pickup_location: String,
    /// Seconds a Shiprocket token is reused (they are valid for 240 hours).
    #[arg(long, env = "SHIPROCKET_TOKEN_TTL_S", default_value_t = 777_600)]
    pub shiprocket_token_ttl_s: u64,
    /// Timeout for calls to outside services, in seconds.
    #[arg(long, env = "HTTP_CLIENT_TIMEOUT_S", default_value_t = 10)]
    pub http_client_timeout_s: u64,
}

impl Config {
    /// The configuration with no flags: environment variables where set, defaults elsewhere.
    pub fn defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        // Parsing an empty command line cannot fail: every field has a default.
        match Only::try_parse_from(["vl-backend"]) {
            Ok(only) => only.config,
            Err(error) => error.exit(),
        }
    }

    pub fn http_timeout(&self) -> Duration {
        Duration::from_secs(self.http_client_timeout_s)
    }
}
