//! What the host keeps about its certificates: where files live, the job's configuration, the account, the status.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::layout;

/// Where the vldeploy binary that runs the renewal job lives on the host.
pub const HOST_BINARY: &str = layout::HOST_BINARY;

/// The private directory of the certificate state (`0700`): configuration, account, status, job log.
pub fn tls_dir(stack: &str) -> String {
    layout::tls_dir(stack)
}

/// The directory nginx reads its certificate from: `current` and `previous` point into `releases/`.
pub fn certs_dir(stack: &str) -> String {
    layout::certs_dir(stack)
}

/// Where nginx sees `certs_dir`.
pub const NGINX_CERTS: &str = "/etc/nginx/certs";

/// The ACME HTTP-01 webroot, served by nginx under `/.well-known/acme-challenge/`.
pub fn webroot(stack: &str) -> String {
    layout::acme_webroot(stack)
}

/// The cron file of the renewal job.
pub(super) fn cron_file(stack: &str) -> String {
    layout::certs_cron(stack)
}

pub(super) fn config_path(stack: &str) -> String {
    format!("{}/config.json", tls_dir(stack))
}

pub(super) fn account_path(stack: &str) -> String {
    format!("{}/account.json", tls_dir(stack))
}

pub(super) fn status_path(stack: &str) -> String {
    format!("{}/status.json", tls_dir(stack))
}

pub(super) fn ca_bundle_path(stack: &str) -> String {
    format!("{}/ca-bundle.pem", tls_dir(stack))
}

pub(super) fn job_log_path(stack: &str) -> String {
    format!("{}/renew.log", tls_dir(stack))
}

/// The renewal job's configuration, written by `up` (`0600`: it holds the EAB key).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConfig {
    pub stack: String,
    pub environment: String,
    pub domains: Vec<String>,
    pub directory: String,
    pub email: Option<String>,
    pub eab: Option<HostEab>,
    /// A CA bundle file on the host to trust for the directory.
    pub ca_bundle: Option<String>,
    /// Where nginx's HTTPS listener answers on the host, for the handshake check (`127.0.0.1:443`).
    pub probe: String,
    /// nginx's container name.
    pub nginx: String,
}

/// External account binding as the host job needs it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEab {
    pub kid: String,
    /// base64url, as the CA gave it.
    pub hmac: String,
}

impl fmt::Debug for HostEab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostEab")
            .field("kid", &self.kid)
            .field("hmac", &crate::secret::REDACTED)
            .finish()
    }
}

impl fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostConfig")
            .field("stack", &self.stack)
            .field("domains", &self.domains)
            .field("directory", &self.directory)
            .field("eab", &self.eab)
            .finish_non_exhaustive()
    }
}

impl HostEab {
    /// A fingerprint of the credentials (not reversible), to notice when the operator changed them.
    pub fn fingerprint(&self) -> String {
        layout::short_hash(&format!("{}\n{}", self.kid, self.hmac))
    }
}

/// The ACME account, reused across runs (`0600`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAccount {
    pub directory: String,
    pub url: String,
    /// RSA private key, PEM.
    pub key_pem: String,
    /// `HostEab::fingerprint` of the binding it was created with.
    #[serde(default)]
    pub eab: Option<String>,
    pub created: u64,
}

impl fmt::Debug for StoredAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredAccount")
            .field("directory", &self.directory)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The outcome of renewal checks, as `certs status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The last time a check ran (whether or not it asked the CA).
    #[serde(default)]
    pub last_check: Option<u64>,
    /// The last time the CA was asked for a certificate.
    #[serde(default)]
    pub last_attempt: Option<u64>,
    /// The last time a new certificate was installed.
    #[serde(default)]
    pub last_renewal: Option<u64>,
    /// What the last attempt ended with: `ok` or `failed`.
    #[serde(default)]
    pub last_result: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Failed attempts in a row.
    #[serde(default)]
    pub failures: u32,
    /// Not before this time, after a failure.
    #[serde(default)]
    pub next_attempt: Option<u64>,
    /// What the CA asked for (`Retry-After`, or the time in a rate-limit problem).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Serial of the installed certificate.
    #[serde(default)]
    pub serial: Option<String>,
}

impl Status {
    /// Records a successful renewal.
    pub fn succeeded(&mut self, now: u64, serial: &str) {
        self.last_attempt = Some(now);
        self.last_renewal = Some(now);
        self.last_result = Some("ok".into());
        self.last_error = None;
        self.failures = 0;
        self.next_attempt = None;
        self.retry_after = None;
        self.serial = Some(serial.to_string());
    }

    /// Records a failed attempt and when the next one may happen.
    pub fn failed(&mut self, now: u64, error: &str, retry_after: Option<u64>) {
        self.last_attempt = Some(now);
        self.last_result = Some("failed".into());
        self.last_error = Some(error.to_string());
        self.failures = self.failures.saturating_add(1);
        self.retry_after = retry_after;
        self.next_attempt = Some(super::policy::next_attempt(now, self.failures, retry_after));
    }
}

/// What one run of the renewal on the host reports (one JSON line on stdout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewReport {
    /// `renewed`, `not_due`, `backoff`, `busy` or `failed`.
    pub outcome: String,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub certificate: Option<super::cert::CertInfo>,
    pub status: Status,
}
