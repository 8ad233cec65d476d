//! HTTPS for the stack's domain: ACME issuance (acme2-eab, HTTP-01, EAB), atomic installation into nginx,
//! and renewal by a job on the host that runs this same binary (`vldeploy renew-on-host`).
//!
//! Layout on the host: `tls/` (0700: job configuration, ACME account, status, job log), `certs/` (mounted into
//! nginx: `current` and `previous` point into `releases/`), `acme/` (the HTTP-01 webroot).

mod acme;
mod cert;
mod edges;
mod host;
mod install;
mod policy;
mod probe;
mod setup;
mod state;

pub use acme::decode_hmac;
pub use cert::{CertInfo, PLACEHOLDER_ORG, info, parse_chain, placeholder, verify};
pub use edges::{EdgeCertificate, converge_edges, edge_certificates, edges_status};
pub use host::{HostOptions, renew_on_host};
pub use install::{install, read_current};
pub use policy::{Decision, backoff, date, decide, parse_retry_after, renew_at};
pub use probe::served_certificate;
pub use setup::{
    CertsStatus, Converged, converge, current_chain_path, https_port, observed_certificate,
    plain_http_refused, prepare, renewal_files, status, wanted,
};
pub use state::{
    HostConfig, HostEab, NGINX_CERTS, RenewReport, Status, StoredAccount, certs_dir, host_binary,
    tls_dir, webroot,
};

/// Why a certificate could not be issued, checked or installed. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Config(String),
    #[error("the ACME directory {directory} is unreachable: {detail}")]
    Unreachable { directory: String, detail: String },
    #[error(
        "the CA refused the external account binding: {detail}\n  help: check `eab_kid` and `eab_hmac` (the HMAC key as the CA gave it, base64url) in the secrets file"
    )]
    Eab {
        detail: String,
        retry_after: Option<u64>,
    },
    #[error(
        "validation of `{domain}` failed: the CA fetched {url}: {detail}\n  help: `{domain}` must resolve to this host and its port 80 must reach nginx"
    )]
    Validation {
        domain: String,
        url: String,
        detail: String,
    },
    #[error("ACME {step}: {detail}")]
    Acme {
        step: String,
        detail: String,
        retry_after: Option<u64>,
    },
    #[error("certificate check failed: {0}")]
    Certificate(String),
    #[error("installing the certificate failed: {0}")]
    Install(String),
    #[error("`{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Transport(Box<crate::transport::TransportError>),
    #[error(transparent)]
    Engine(Box<crate::engine::EngineError>),
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    #[error(transparent)]
    Store(Box<crate::state::StoreError>),
}

impl From<crate::state::StoreError> for TlsError {
    fn from(e: crate::state::StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

impl From<crate::transport::TransportError> for TlsError {
    fn from(e: crate::transport::TransportError) -> Self {
        Self::Transport(Box::new(e))
    }
}

impl From<crate::engine::EngineError> for TlsError {
    fn from(e: crate::engine::EngineError) -> Self {
        Self::Engine(Box::new(e))
    }
}

impl TlsError {
    /// When the CA asked not to be asked again before.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Acme { retry_after, .. } | Self::Eab { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
