//! The one place that talks to acme2-eab: account, order, HTTP-01 through a webroot, finalize, download.
//!
//! Every call is retried on `badNonce` and on transport errors (the crate retries a bad nonce only three
//! times), and the whole exchange runs under `catch_unwind`: no panic of the crate reaches the caller.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use acme2_eab::{
    Account, AccountBuilder, ChallengeStatus, Csr, Directory, DirectoryBuilder, OrderBuilder,
    OrderStatus,
};
use base64::Engine as _;
use futures_util::FutureExt as _;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;

use super::TlsError;
use super::state::StoredAccount;

/// Attempts per ACME request (bad nonces and dropped connections).
const ATTEMPTS: u32 = 8;
/// How long validation and issuance may take before the order is given up.
const POLL_BUDGET: Duration = Duration::from_mins(3);

/// What to ask the CA for.
pub(super) struct Request<'a> {
    pub(super) directory: &'a str,
    pub(super) email: Option<&'a str>,
    /// `(kid, base64url HMAC key)`.
    pub(super) eab: Option<(&'a str, &'a str)>,
    /// PEM certificates to trust for the directory's HTTPS, besides the system roots.
    pub(super) ca_bundle: Option<&'a [u8]>,
    pub(super) domains: &'a [String],
    /// Where nginx serves `/.well-known/acme-challenge/` from.
    pub(super) webroot: Webroot<'a>,
    /// The account from an earlier run, reused when it belongs to this directory and binding.
    pub(super) account: Option<StoredAccount>,
    /// Fingerprint of the binding (`HostEab::fingerprint`), recorded with a new account.
    pub(super) eab_fingerprint: Option<String>,
    pub(super) now: u64,
}

/// Where the HTTP-01 token is written for nginx to serve.
pub(super) enum Webroot<'a> {
    /// This host's directory.
    Local(&'a Path),
    /// The stack's webroot on each of these hosts (every edge of a swarm: the CA may reach any of them).
    Hosts {
        stack: &'a str,
        hosts: &'a [Arc<crate::transport::Remote>],
    },
}

/// A token written, to remove once the order is decided.
enum Written {
    Local(PathBuf),
    Host(Arc<crate::transport::Remote>, crate::remote::Command),
}

/// A certificate as the CA issued it.
pub(super) struct Issued {
    pub(super) chain_pem: Vec<u8>,
    pub(super) key_pem: Vec<u8>,
    /// The account used, to store (it may be new).
    pub(super) account: StoredAccount,
}

/// Issues a certificate for `req.domains`. Never panics.
pub(super) async fn issue(req: Request<'_>) -> Result<Issued, TlsError> {
    match AssertUnwindSafe(issue_inner(req)).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(TlsError::Acme {
                step: "talking to the CA".into(),
                detail: format!("the ACME client failed internally ({what})"),
                retry_after: None,
            })
        }
    }
}

/// Decodes an EAB HMAC key (base64url, with or without padding). The message never shows the value.
pub fn decode_hmac(text: &str) -> Result<Vec<u8>, TlsError> {
    let trimmed = text.trim().trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|_| {
            TlsError::Config(
                "`eab_hmac` is not base64url: copy the HMAC key exactly as the CA gave it".into(),
            )
        })?;
    if bytes.is_empty() {
        return Err(TlsError::Config("`eab_hmac` is empty".into()));
    }
    Ok(bytes)
}

fn http_client(ca_bundle: Option<&[u8]>) -> Result<reqwest::Client, TlsError> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("vldeploy/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = ca_bundle {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| TlsError::Config(format!("the `ca_bundle` is not PEM: {e}")))?;
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    builder
        .build()
        .map_err(|e| TlsError::Config(format!("cannot make an HTTPS client: {e}")))
}

/// Whether an error of the crate is worth repeating as is.
fn transient(e: &acme2_eab::Error) -> bool {
    match e {
        acme2_eab::Error::Server(s) => {
            s.r#type.as_deref() == Some("urn:ietf:params:acme:error:badNonce")
                || matches!(s.status, Some(500 | 502 | 503 | 504))
        }
        acme2_eab::Error::Transport(_) => true,
        _ => false,
    }
}

/// Runs one ACME request, repeating it while it fails transiently.
async fn retry<T, F, Fut>(step: &str, mut call: F) -> Result<T, TlsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, acme2_eab::Error>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if transient(&e) && attempt < ATTEMPTS => {
                tracing::debug!(step, attempt, "retrying after: {e}");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            Err(e) => return Err(acme_error(step, &e)),
        }
    }
}

fn acme_error(step: &str, e: &acme2_eab::Error) -> TlsError {
    let (detail, retry_after) = match e {
        acme2_eab::Error::Server(s) => {
            let detail = format!(
                "{} ({})",
                s.detail
                    .as_deref()
                    .or(s.title.as_deref())
                    .unwrap_or("no detail"),
                s.r#type
                    .as_deref()
                    .unwrap_or("no type")
                    .trim_start_matches("urn:ietf:params:acme:error:")
            );
            let mut retry = s
                .detail
                .as_deref()
                .and_then(super::policy::retry_after_in_detail);
            if retry.is_none()
                && s.r#type.as_deref() == Some("urn:ietf:params:acme:error:rateLimited")
            {
                retry = Some(now() + super::policy::RATE_LIMITED_MIN_S);
            }
            (detail, retry)
        }
        other => (describe(other), None),
    };
    TlsError::Acme {
        step: step.to_string(),
        detail,
        retry_after,
    }
}

/// An error with its sources, on one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn now() -> u64 {
    crate::state::now()
}

/// Fetches the directory ourselves first: an unreachable CA, or one that answers 429/503 with
/// `Retry-After`, is reported with the wait it asked for.
async fn preflight(client: &reqwest::Client, directory: &str) -> Result<(), TlsError> {
    let mut last = String::new();
    for attempt in 1..=3u64 {
        match client.get(directory).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| super::policy::parse_retry_after(v, now()));
                if status.as_u16() == 429 || retry_after.is_some() {
                    return Err(TlsError::Acme {
                        step: format!("fetching the directory {directory}"),
                        detail: format!("the CA answered {status}"),
                        retry_after: retry_after
                            .or(Some(now() + super::policy::RATE_LIMITED_MIN_S)),
                    });
                }
                last = format!("the CA answered {status}");
            }
            Err(e) => last = describe(&e),
        }
        tokio::time::sleep(Duration::from_secs(attempt)).await;
    }
    Err(TlsError::Unreachable {
        directory: directory.to_string(),
        detail: last,
    })
}

async fn issue_inner(req: Request<'_>) -> Result<Issued, TlsError> {
    let hmac = req.eab.map(|(_, h)| decode_hmac(h)).transpose()?;
    let client = http_client(req.ca_bundle)?;
    preflight(&client, req.directory).await?;
    let directory = open_directory(&client, req.directory).await?;
    let reuse = req.account.clone().filter(|a| {
        a.directory == req.directory
            && (req.eab_fingerprint.is_none() || a.eab == req.eab_fingerprint)
    });
    let account_key = account_key(reuse.as_ref())?;
    let account = open_account(
        &req,
        &directory,
        &account_key,
        hmac.as_deref(),
        reuse.is_some(),
    )
    .await?;
    let stored = stored_account(&req, &account, &account_key, reuse.as_ref())?;
    let order = create_order(&account, req.domains).await?;
    validate(&order, &req.webroot).await?;
    let (order, key_pem) = finalize(&order).await?;
    let chain_pem = download(&order).await?;
    Ok(Issued {
        chain_pem,
        key_pem,
        account: stored,
    })
}

async fn open_directory(client: &reqwest::Client, url: &str) -> Result<Arc<Directory>, TlsError> {
    retry(&format!("fetching the directory {url}"), || {
        let mut b = DirectoryBuilder::new(url.to_string());
        b.http_client(client.clone());
        async move { b.build().await }
    })
    .await
}

/// The stored account's key (it must be RSA: the ACME crate needs one), or a new RSA key.
fn account_key(reuse: Option<&StoredAccount>) -> Result<PKey<openssl::pkey::Private>, TlsError> {
    match reuse {
        Some(a) => {
            let key = PKey::private_key_from_pem(a.key_pem.as_bytes()).map_err(|e| {
                TlsError::Config(format!("the stored account key is unreadable: {e}"))
            })?;
            if key.id() != Id::RSA {
                return Err(TlsError::Config(
                    "the stored account key is not RSA; remove the account file to make a new account"
                        .into(),
                ));
            }
            Ok(key)
        }
        None => {
            let rsa = Rsa::generate(2048)
                .map_err(|e| TlsError::Config(format!("cannot make an account key: {e}")))?;
            PKey::from_rsa(rsa)
                .map_err(|e| TlsError::Config(format!("cannot make an account key: {e}")))
        }
    }
}

/// Finds the account of `key`, or creates it (with the external account binding when there is one). A new
/// account refused under a binding is an EAB error.
async fn open_account(
    req: &Request<'_>,
    directory: &Arc<Directory>,
    key: &PKey<openssl::pkey::Private>,
    hmac: Option<&[u8]>,
    reused: bool,
) -> Result<Arc<Account>, TlsError> {
    let step = if reused {
        "finding the ACME account"
    } else {
        "creating the ACME account"
    };
    retry(step, || {
        let mut b = AccountBuilder::new(directory.clone());
        b.private_key(key.clone());
        b.terms_of_service_agreed(true);
        if let Some(email) = req.email {
            b.contact(vec![format!("mailto:{email}")]);
        }
        let hmac_key = hmac.and_then(|h| PKey::hmac(h).ok());
        if let (Some((kid, _)), Some(key)) = (req.eab, hmac_key) {
            b.external_account_binding(kid.to_string(), key);
        }
        async move { b.build().await }
    })
    .await
    .map_err(|e| match e {
        TlsError::Acme {
            detail,
            retry_after,
            ..
        } if req.eab.is_some() && !reused => TlsError::Eab {
            detail,
            retry_after,
        },
        other => other,
    })
}

/// The account as the host stores it.
fn stored_account(
    req: &Request<'_>,
    account: &Account,
    key: &PKey<openssl::pkey::Private>,
    reuse: Option<&StoredAccount>,
) -> Result<StoredAccount, TlsError> {
    Ok(StoredAccount {
        directory: req.directory.to_string(),
        url: account.id.clone(),
        key_pem: String::from_utf8_lossy(
            &key.private_key_to_pem_pkcs8()
                .map_err(|e| TlsError::Config(format!("cannot store the account key: {e}")))?,
        )
        .into_owned(),
        eab: reuse
            .and_then(|a| a.eab.clone())
            .or(req.eab_fingerprint.clone()),
        created: reuse.map_or(req.now, |a| a.created),
    })
}

async fn create_order(
    account: &Arc<Account>,
    domains: &[String],
) -> Result<acme2_eab::Order, TlsError> {
    retry("creating the order", || {
        let mut b = OrderBuilder::new(account.clone());
        for d in domains {
            b.add_dns_identifier(d.clone());
        }
        async move { b.build().await }
    })
    .await
}

/// Answers every pending authorization's http-01 challenge through the webroot; the token files are removed
/// afterwards, whatever happened.
async fn validate(order: &acme2_eab::Order, webroot: &Webroot<'_>) -> Result<(), TlsError> {
    let authorizations = retry("fetching the authorizations", || order.authorizations()).await?;
    let mut written: Vec<Written> = Vec::new();
    let validated = async {
        for auth in &authorizations {
            if auth.status != acme2_eab::AuthorizationStatus::Valid {
                validate_one(auth, webroot, &mut written).await?;
            }
        }
        Ok(())
    }
    .await;
    for w in &written {
        match w {
            Written::Local(path) => {
                let _ = std::fs::remove_file(path);
            }
            Written::Host(remote, rm) => {
                let _ = remote.run(rm).await;
            }
        }
    }
    validated
}

/// One domain's http-01 challenge: the token written where nginx serves it, the CA asked, its answer awaited.
async fn validate_one(
    auth: &acme2_eab::Authorization,
    webroot: &Webroot<'_>,
    written: &mut Vec<Written>,
) -> Result<(), TlsError> {
    let domain = auth.identifier.value.clone();
    let challenge = auth
        .get_challenge("http-01")
        .ok_or_else(|| TlsError::Acme {
            step: format!("validating `{domain}`"),
            detail: "the CA offers no http-01 challenge".into(),
            retry_after: None,
        })?;
    let token = challenge.token.clone().unwrap_or_default();
    if token.is_empty()
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(TlsError::Acme {
            step: format!("validating `{domain}`"),
            detail: "the CA sent an unusable challenge token".into(),
            retry_after: None,
        });
    }
    let key_auth = challenge
        .key_authorization()
        .map_err(|e| acme_error("computing the key authorization", &e))?
        .unwrap_or_default();
    match webroot {
        Webroot::Local(dir) => written.push(Written::Local(write_token(dir, &token, &key_auth)?)),
        Webroot::Hosts { stack, hosts } => {
            let path = crate::remote::edge::token_path(stack, &token);
            for remote in *hosts {
                remote.upload(&path, key_auth.as_bytes(), 0o644).await?;
                written.push(Written::Host(
                    remote.clone(),
                    crate::remote::edge::remove_token(stack, &token),
                ));
            }
        }
    }
    let url = format!("http://{domain}/.well-known/acme-challenge/{token}");
    retry(&format!("asking the CA to validate `{domain}`"), || {
        challenge.validate()
    })
    .await?;
    await_validation(&challenge, domain, url).await
}

/// Polls a challenge until the CA finds it valid or invalid, within the poll budget.
async fn await_validation(
    challenge: &acme2_eab::Challenge,
    domain: String,
    url: String,
) -> Result<(), TlsError> {
    let deadline = tokio::time::Instant::now() + POLL_BUDGET;
    loop {
        let c = retry(&format!("polling the validation of `{domain}`"), || {
            challenge.poll()
        })
        .await?;
        match c.status {
            ChallengeStatus::Valid => return Ok(()),
            ChallengeStatus::Invalid => {
                let why = c
                    .error
                    .as_ref()
                    .and_then(|e| e.detail.clone())
                    .unwrap_or_else(|| "no detail".into());
                return Err(TlsError::Validation {
                    domain,
                    url,
                    detail: why,
                });
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(TlsError::Validation {
                    domain,
                    url,
                    detail: format!("still pending after {}s", POLL_BUDGET.as_secs()),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(700)).await,
        }
    }
}

/// Once the order is ready, sends the CSR of a new ECDSA key and waits for the order to become valid.
/// Returns the valid order and the key's PEM.
async fn finalize(order: &acme2_eab::Order) -> Result<(acme2_eab::Order, Vec<u8>), TlsError> {
    let mut order = wait_order(
        order,
        &[OrderStatus::Pending],
        "waiting for the order to be ready",
    )
    .await?;
    if order.status != OrderStatus::Ready {
        return Err(order_failed(&order, "the order did not become ready"));
    }
    let (cert_key, key_pem) = super::cert::new_ecdsa_key()?;
    let mut finalize_error = None;
    for attempt in 1..=ATTEMPTS {
        match order.finalize(Csr::Automatic(cert_key.clone())).await {
            Ok(o) => {
                order = o;
                finalize_error = None;
                break;
            }
            Err(e) if transient(&e) => {
                finalize_error = Some(acme_error("finalizing the order", &e));
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                // A finalize that reached the CA before its answer was lost moves the order on.
                if let Ok(o) = order.poll().await
                    && o.status != OrderStatus::Ready
                {
                    order = o;
                    finalize_error = None;
                    break;
                }
            }
            Err(e) => return Err(acme_error("finalizing the order", &e)),
        }
    }
    if let Some(e) = finalize_error {
        return Err(e);
    }
    let order = wait_order(
        &order,
        &[
            OrderStatus::Pending,
            OrderStatus::Ready,
            OrderStatus::Processing,
        ],
        "waiting for the certificate",
    )
    .await?;
    if order.status != OrderStatus::Valid {
        return Err(order_failed(&order, "the order did not become valid"));
    }
    Ok((order, key_pem))
}

/// The valid order's certificate chain, as PEM.
async fn download(order: &acme2_eab::Order) -> Result<Vec<u8>, TlsError> {
    let chain = retry("downloading the certificate", || order.certificate())
        .await?
        .ok_or_else(|| TlsError::Acme {
            step: "downloading the certificate".into(),
            detail: "the valid order names no certificate".into(),
            retry_after: None,
        })?;
    let mut chain_pem = Vec::new();
    for c in chain {
        chain_pem.extend(
            c.to_pem()
                .map_err(|e| TlsError::Certificate(format!("cannot write the chain: {e}")))?,
        );
    }
    Ok(chain_pem)
}

/// Polls the order while its status is one of `waiting`.
async fn wait_order(
    order: &acme2_eab::Order,
    waiting: &[OrderStatus],
    step: &str,
) -> Result<acme2_eab::Order, TlsError> {
    let deadline = tokio::time::Instant::now() + POLL_BUDGET;
    let mut current = retry(step, || order.poll()).await?;
    while waiting.contains(&current.status) {
        if tokio::time::Instant::now() > deadline {
            return Err(TlsError::Acme {
                step: step.to_string(),
                detail: format!("no progress after {}s", POLL_BUDGET.as_secs()),
                retry_after: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        current = retry(step, || current.poll()).await?;
    }
    Ok(current)
}

fn order_failed(order: &acme2_eab::Order, what: &str) -> TlsError {
    let detail = order
        .error
        .as_ref()
        .and_then(|e| e.detail.clone())
        .unwrap_or_else(|| format!("{what} (status {:?})", order.status));
    TlsError::Acme {
        step: "completing the order".into(),
        detail,
        retry_after: None,
    }
}

fn write_token(webroot: &Path, token: &str, key_auth: &str) -> Result<PathBuf, TlsError> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = webroot.join(".well-known/acme-challenge");
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| TlsError::Io { path: p, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    for d in [
        webroot.to_path_buf(),
        webroot.join(".well-known"),
        dir.clone(),
    ] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).map_err(io(&d))?;
    }
    let path = dir.join(token);
    std::fs::write(&path, key_auth).map_err(io(&path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).map_err(io(&path))?;
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hmac_keys_decode_with_or_without_padding_and_errors_hide_the_value() {
        assert_eq!(decode_hmac("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_hmac("aGVsbG8=").unwrap(), b"hello");
        let err = decode_hmac("not base64 !!secretvalue")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`eab_hmac` is not base64url"), "{err}");
        assert!(!err.contains("secretvalue"), "{err}");
        assert!(decode_hmac("").is_err());
    }

    #[test]
    fn bad_nonce_and_transport_errors_are_retried_others_are_not() {
        let nonce = acme2_eab::Error::Server(acme2_eab::ServerError {
            r#type: Some("urn:ietf:params:acme:error:badNonce".into()),
            title: None,
            status: Some(400),
            detail: None,
        });
        assert!(transient(&nonce));
        let unauthorized = acme2_eab::Error::Server(acme2_eab::ServerError {
            r#type: Some("urn:ietf:params:acme:error:unauthorized".into()),
            title: None,
            status: Some(403),
            detail: Some("no".into()),
        });
        assert!(!transient(&unauthorized));
        let e = acme_error("creating the ACME account", &unauthorized).to_string();
        assert!(
            e.contains("creating the ACME account") && e.contains("unauthorized"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let domains = vec!["shop.test".to_string()];
        let err = issue(Request {
            directory: "https://127.0.0.1:9/dir",
            email: None,
            eab: None,
            ca_bundle: None,
            domains: &domains,
            webroot: Webroot::Local(dir.path()),
            account: None,
            eab_fingerprint: None,
            now: 0,
        })
        .await
        .err()
        .unwrap();
        assert!(matches!(err, TlsError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("https://127.0.0.1:9/dir"), "{err}");
    }
}
