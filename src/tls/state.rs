//! What the host keeps about its certificates: where files live, the job's configuration, the account, the status.
//!
//! The configuration, the account and the status are documents of the host's one store
//! ([`crate::state::store`]): versioned, written atomically, and a corrupt file is an error naming it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::layout;
use crate::state::store::{self, Document, StoreError};
use crate::transport::Remote;

/// Where the vldeploy binary that runs the renewal job lives on the host.
pub fn host_binary(stack: &str) -> String {
    layout::host_binary(stack)
}

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

impl Document for HostConfig {
    const KIND: &'static str = "certificate renewal configuration";
    const FIX: &'static str = "run `vldeploy up` to write it again";
}

impl Document for StoredAccount {
    const KIND: &'static str = "ACME account";
    const FIX: &'static str = "run `vldeploy certs renew` to register a new account with the CA";
}

impl Document for Status {
    const KIND: &'static str = "certificate renewal status";
    const FIX: &'static str = "run `vldeploy certs renew` to record it again";
}

/// The renewal job's configuration on the host; `None` before `up` wrote one.
pub(super) async fn read_config(
    remote: &Remote,
    stack: &str,
) -> Result<Option<HostConfig>, StoreError> {
    store::read(remote, &config_path(stack)).await
}

pub(super) async fn write_config(
    remote: &Remote,
    stack: &str,
    config: &HostConfig,
) -> Result<(), StoreError> {
    store::write(remote, &config_path(stack), config).await
}

/// The ACME account on the host; `None` before the first issuance.
pub(super) async fn read_account(
    remote: &Remote,
    stack: &str,
) -> Result<Option<StoredAccount>, StoreError> {
    store::read(remote, &account_path(stack)).await
}

pub(super) async fn write_account(
    remote: &Remote,
    stack: &str,
    account: &StoredAccount,
) -> Result<(), StoreError> {
    store::write(remote, &account_path(stack), account).await
}

/// The renewal status on the host; empty before the first check.
pub(super) async fn read_status(remote: &Remote, stack: &str) -> Result<Status, StoreError> {
    Ok(store::read(remote, &status_path(stack))
        .await?
        .unwrap_or_default())
}

pub(super) async fn write_status(
    remote: &Remote,
    stack: &str,
    status: &Status,
) -> Result<(), StoreError> {
    store::write(remote, &status_path(stack), status).await
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

impl RenewReport {
    /// Nothing to do yet: renewal is due at `at`, or (`backoff`) an earlier attempt failed and the next is due then.
    pub fn waiting(
        backoff: bool,
        at: u64,
        certificate: Option<super::cert::CertInfo>,
        status: Status,
    ) -> RenewReport {
        let due = super::policy::date(at);
        RenewReport {
            outcome: if backoff { "backoff" } else { "not_due" }.into(),
            reason: Some(if backoff {
                format!("an earlier attempt failed; the next one is due {due}")
            } else {
                format!("renewal is due {due}")
            }),
            error: None,
            certificate,
            status,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::store::{Undecodable, decode, encode};

    fn config() -> HostConfig {
        HostConfig {
            stack: "shop".into(),
            environment: "production".into(),
            domains: vec!["shop.example".into()],
            directory: "https://acme.example/dir".into(),
            email: Some("ops@shop.example".into()),
            eab: Some(HostEab {
                kid: "kid-1".into(),
                hmac: "aGVsbG8".into(),
            }),
            ca_bundle: None,
            probe: "127.0.0.1:443".into(),
            nginx: "vl-nginx".into(),
        }
    }

    #[test]
    fn a_renewal_not_yet_due_says_when_it_is() {
        let due = RenewReport::waiting(false, 86_400, None, Status::default());
        assert_eq!(due.outcome, "not_due");
        assert_eq!(
            due.reason.as_deref(),
            Some("renewal is due 1970-01-02T00:00:00Z")
        );
        let held = RenewReport::waiting(true, 86_400, None, Status::default());
        assert_eq!(held.outcome, "backoff");
        assert_eq!(
            held.reason.as_deref(),
            Some("an earlier attempt failed; the next one is due 1970-01-02T00:00:00Z")
        );
        assert_eq!(held.error, None);
    }

    #[test]
    fn a_configuration_written_by_up_reads_back_in_the_renewal_job() {
        let bytes = encode(&config());
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(value["data"]["domains"][0], "shop.example");
        assert_eq!(decode::<HostConfig>(&bytes), Ok(config()));
    }

    #[test]
    fn files_from_before_the_store_read_as_version_1() {
        // What `up` and the renewal job wrote before the version field: the bare document.
        let old_config = serde_json::to_vec_pretty(&config()).unwrap();
        assert_eq!(decode::<HostConfig>(&old_config), Ok(config()));

        let old_status = br#"{"last_check": 1796159922, "last_result": "failed", "failures": 2, "next_attempt": 1796163522}"#;
        let status = decode::<Status>(old_status).unwrap();
        assert_eq!(status.last_check, Some(1_796_159_922));
        assert_eq!(status.last_result.as_deref(), Some("failed"));
        assert_eq!(status.failures, 2);
        assert_eq!(status.next_attempt, Some(1_796_163_522));
        assert_eq!(status.serial, None);

        // An account from before the EAB fingerprint was recorded.
        let old_account = br#"{"directory": "https://acme.example/dir", "url": "https://acme.example/acct/7", "key_pem": "-----BEGIN PRIVATE KEY-----", "created": 1796000000}"#;
        let account = decode::<StoredAccount>(old_account).unwrap();
        assert_eq!(account.url, "https://acme.example/acct/7");
        assert_eq!(account.eab, None);
        assert_eq!(account.created, 1_796_000_000);
    }

    #[test]
    fn a_recorded_status_survives_the_round_trip() {
        let mut status = Status::default();
        status.failed(
            1_796_159_922,
            "ACME order: rate limited",
            Some(1_796_170_000),
        );
        status.last_check = Some(1_796_159_922);
        assert_eq!(decode::<Status>(&encode(&status)), Ok(status.clone()));
        status.succeeded(1_796_180_000, "0a1b");
        assert_eq!(decode::<Status>(&encode(&status)), Ok(status));
    }

    #[test]
    fn a_corrupt_certificate_file_is_an_error_not_an_empty_record() {
        for bad in [&b"{\"last_check\": 17"[..], b"", b"null", b"\"ok\""] {
            assert!(
                matches!(decode::<Status>(bad), Err(Undecodable::Corrupt(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A configuration missing a field the job needs is corrupt, not a default.
        assert!(matches!(
            decode::<HostConfig>(br#"{"stack": "shop"}"#),
            Err(Undecodable::Corrupt(_))
        ));
        assert!(matches!(
            decode::<StoredAccount>(br#"{"version": 1, "data": {"url": 3}}"#),
            Err(Undecodable::Corrupt(_))
        ));
        assert_eq!(
            decode::<Status>(br#"{"version": 2, "data": {}}"#),
            Err(Undecodable::Newer(2))
        );
    }

    #[test]
    fn the_error_names_the_certificate_file_and_the_fix() {
        let e = StoreError::Corrupt {
            host: "root@h:22".into(),
            path: status_path("shop"),
            kind: Status::KIND,
            detail: "EOF while parsing".into(),
            fix: Status::FIX,
        };
        assert_eq!(
            e.to_string(),
            "the certificate renewal status file `/var/lib/vldeploy/shop/tls/status.json` on `root@h:22` is corrupt (EOF while parsing)\nhelp: move it aside (`mv /var/lib/vldeploy/shop/tls/status.json /var/lib/vldeploy/shop/tls/status.json.bad`) and run `vldeploy certs renew` to record it again"
        );
    }
}
