//! What `up`, `certs renew` and `certs status` do from where vldeploy runs: put a certificate in place before
//! nginx starts, give the host its renewal job (this binary, its configuration, a cron entry), run it, read it.

use serde::Serialize;

use super::TlsError;
use super::cert::{CertInfo, parse_chain, placeholder, verify};
use super::install::{install, read_current};
use super::policy::renew_at;
use super::state::{
    HostConfig, HostEab, RenewReport, Status, ca_bundle_path, cron_file, host_binary, job_log_path,
    read_config, read_status, write_config,
};
use crate::layout::container_name;
use crate::plan::{DesiredCertificate, DesiredFile, ObservedCertificate, content_hash};
use crate::stack::{Stack, Tls};
use crate::transport::Remote;

/// Days a placeholder certificate is valid; it is replaced as soon as the CA answers.
const PLACEHOLDER_DAYS: u32 = 30;

/// Why plain HTTP is refused for this environment, if it is.
pub fn plain_http_refused(stack: &Stack) -> Option<String> {
    (stack.tls == Tls::Off && stack.environment != "sandbox").then(|| {
        format!(
            "environment `{}` has `tls: off`: only `sandbox` may serve plain HTTP\n  help: add `tls: {{acme: {{directory: letsencrypt, email: ...}}}}` (or `provided`) to the environment",
            stack.environment
        )
    })
}

/// The host port nginx publishes its HTTPS listener on, if any.
pub fn https_port(stack: &Stack) -> Option<(String, u16)> {
    let nginx = stack.services.get("nginx")?;
    nginx.ports.iter().find(|p| p.container == 443).map(|p| {
        let ip = p
            .host_ip
            .filter(|ip| !ip.is_unspecified())
            .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string());
        (ip, p.host)
    })
}

/// Before the plan is applied: make sure nginx finds a certificate when it starts. With `acme`, a
/// self-signed placeholder when none is installed; with `provided`, the operator's files when they changed.
/// Returns a summary of what changed.
pub async fn prepare(remote: &Remote, stack: &Stack) -> Result<Option<String>, TlsError> {
    if stack.tls == Tls::Off {
        return Ok(None);
    }
    let name = &stack.name;
    let domains = vec![stack.domain.clone()];
    remote.run(&crate::remote::tls::prepare_dirs(name)).await?;
    let current = read_current(remote, name).await?;
    match &stack.tls {
        Tls::Off => Ok(None),
        Tls::Acme(_) => {
            if current.is_some() {
                return Ok(None);
            }
            let (chain, key) = placeholder(&stack.domain, PLACEHOLDER_DAYS)?;
            let (cert, _) =
                install(remote, name, &chain, &key, &domains, crate::state::now()).await?;
            Ok(Some(format!(
                "placeholder certificate {} for {} (until the CA issues one)",
                cert.serial, stack.domain
            )))
        }
        Tls::Provided(p) => {
            let read = |path: &std::path::Path| {
                std::fs::read(path).map_err(|source| TlsError::Io {
                    path: path.display().to_string(),
                    source,
                })
            };
            let (chain, key) = (read(&p.cert)?, read(&p.key)?);
            let fresh = verify(&chain, &key, &domains, crate::state::now())?;
            if current.is_some_and(|c| c.fingerprint == fresh.fingerprint) {
                return Ok(None);
            }
            let (cert, _) =
                install(remote, name, &chain, &key, &domains, crate::state::now()).await?;
            Ok(Some(format!(
                "provided certificate {} for {}",
                cert.serial, stack.domain
            )))
        }
    }
}

/// What the certificate step of `up` / `certs renew` did.
#[derive(Debug, Clone, Serialize)]
pub struct Converged {
    /// The host's report of its renewal run.
    pub report: RenewReport,
    /// Summaries of what changed (binary, job, certificate), for the audit log.
    pub changes: Vec<String>,
}

/// After the plan is applied, with `tls: acme`: installs the renewal job on the host (this binary, the job's
/// configuration, the cron entry) and runs it once, now. A failed issuance is an error; the certificate that
/// was served before keeps being served.
pub async fn converge(remote: &Remote, stack: &Stack, force: bool) -> Result<Converged, TlsError> {
    let Tls::Acme(acme) = &stack.tls else {
        return Err(TlsError::Config(format!(
            "environment `{}` does not use `tls: acme`: there is nothing to renew",
            stack.environment
        )));
    };
    let name = &stack.name;
    let mut changes = Vec::new();
    if ship_binary(remote, name).await? {
        changes.push(format!("renewal job binary {}", host_binary(name)));
    }
    let ca_bundle = match &acme.ca_bundle {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| TlsError::Io {
                path: path.display().to_string(),
                source,
            })?;
            parse_chain(&pem)?;
            let target = ca_bundle_path(name);
            if remote.read_file(&target).await?.as_deref() != Some(&pem[..]) {
                remote.upload(&target, &pem, 0o644).await?;
            }
            Some(target)
        }
        None => None,
    };
    let (ip, port) = https_port(stack).unwrap_or_else(|| ("127.0.0.1".into(), 443));
    let config = HostConfig {
        stack: name.clone(),
        environment: stack.environment.clone(),
        domains: vec![stack.domain.clone()],
        directory: acme.directory.clone(),
        email: acme.email.clone(),
        eab: acme.eab.as_ref().map(|e| HostEab {
            kid: e.kid.expose().to_string(),
            hmac: e.hmac.expose().to_string(),
        }),
        ca_bundle,
        probe: format!("{ip}:{port}"),
        nginx: container_name("nginx"),
    };
    if let Some(eab) = &config.eab {
        // Refuse a malformed key here, before the host or the CA sees it.
        super::acme::decode_hmac(&eab.hmac)?;
    }
    if read_config(remote, name).await?.as_ref() != Some(&config) {
        write_config(remote, name, &config).await?;
        changes.push("renewal job configuration".into());
    }
    let cron = render_cron(stack)?;
    if remote.read_file(&cron_file(name)).await?.as_deref() != Some(cron.as_bytes()) {
        crate::host_file::write(remote, name, &cron_file(name), cron.as_bytes(), 0o644).await?;
        changes.push(format!("renewal job {}", cron_file(name)));
    }
    let out = remote
        .exec(&crate::remote::tls::renew_on_host(name, force))
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: RenewReport = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
            TlsError::Config(format!(
                "the renewal job on the host gave no report (exit {}): {}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ))
        })?;
    if report.outcome == "failed" {
        return Err(TlsError::Config(
            report
                .error
                .clone()
                .unwrap_or_else(|| "the renewal failed".into()),
        ));
    }
    if report.outcome == "renewed"
        && let Some(c) = &report.certificate
    {
        changes.push(format!(
            "certificate {} for {} ({}, expires {})",
            c.serial,
            c.sans.join(", "),
            c.key_type,
            super::policy::date(c.not_after)
        ));
    }
    Ok(Converged { report, changes })
}

/// The renewal job's cron entry.
fn render_cron(stack: &Stack) -> Result<String, crate::render::RenderError> {
    crate::render::render(
        "tls/renew.cron",
        &serde_json::json!({
            "stack": stack.name,
            "environment": stack.environment,
            "binary": host_binary(&stack.name),
            "user": stack.target.user,
            "log": job_log_path(&stack.name),
        }),
    )
}

/// With `tls: acme`, the renewal job's cron entry as a file `up` manages (written when missing or edited).
pub fn renewal_files(stack: &Stack) -> Result<Vec<DesiredFile>, crate::render::RenderError> {
    if !matches!(stack.tls, Tls::Acme(_)) {
        return Ok(Vec::new());
    }
    let cron = render_cron(stack)?;
    Ok(vec![DesiredFile {
        path: cron_file(&stack.name),
        hash: content_hash(cron.as_bytes()),
        mode: 0o644,
        content: cron.into_bytes(),
        reloads: None,
        owner: None,
    }])
}

/// The certificate the stack asks for: its domain, and with `tls: provided` the fingerprint of the
/// operator's files (read and checked here, where vldeploy runs). `None` with `tls: off`.
pub fn wanted(stack: &Stack) -> Result<Option<DesiredCertificate>, TlsError> {
    let domains = vec![stack.domain.clone()];
    let provided = match &stack.tls {
        Tls::Off => return Ok(None),
        Tls::Acme(_) => None,
        Tls::Provided(p) => {
            let read = |path: &std::path::Path| {
                std::fs::read(path).map_err(|source| TlsError::Io {
                    path: path.display().to_string(),
                    source,
                })
            };
            let (chain, key) = (read(&p.cert)?, read(&p.key)?);
            Some(verify(&chain, &key, &domains, crate::state::now())?.fingerprint)
        }
    };
    Ok(Some(DesiredCertificate { domains, provided }))
}

/// Where the certificate nginx serves is read from on the host.
pub fn current_chain_path(stack: &str) -> String {
    format!("{}/current/fullchain.pem", crate::layout::certs_dir(stack))
}

/// The planner's view of an installed chain (PEM, leaf first).
pub fn observed_certificate(pem: &[u8]) -> Result<ObservedCertificate, TlsError> {
    let chain = parse_chain(pem)?;
    let leaf = chain
        .first()
        .ok_or_else(|| TlsError::Certificate("the chain holds no certificate".into()))?;
    let c = super::cert::info(leaf)?;
    Ok(ObservedCertificate {
        renew_at: renew_at(&c),
        serial: c.serial,
        fingerprint: c.fingerprint,
        sans: c.sans,
        not_after: c.not_after,
        placeholder: c.placeholder,
    })
}

/// Sends this binary to the host when the host's copy differs. Returns whether it was sent.
async fn ship_binary(remote: &Remote, stack: &str) -> Result<bool, TlsError> {
    use sha2::{Digest as _, Sha256};
    let exe = std::env::current_exe().map_err(|source| TlsError::Io {
        path: "the running vldeploy binary".into(),
        source,
    })?;
    let bytes = std::fs::read(&exe).map_err(|source| TlsError::Io {
        path: exe.display().to_string(),
        source,
    })?;
    let local = hex::encode(Sha256::digest(&bytes));
    let out = remote.exec(&crate::remote::tls::binary_hash(stack)).await?;
    let remote_hash = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    if remote_hash == local {
        return Ok(false);
    }
    remote.upload(&host_binary(stack), &bytes, 0o755).await?;
    Ok(true)
}

/// What `certs status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct CertsStatus {
    pub domain: String,
    pub mode: String,
    pub certificate: Option<CertInfo>,
    pub renew_at: Option<u64>,
    pub status: Status,
    pub job_installed: bool,
    pub directory: Option<String>,
}

/// Reads the installed certificate and the renewal job's status from the host.
pub async fn status(remote: &Remote, stack: &Stack) -> Result<CertsStatus, TlsError> {
    let name = &stack.name;
    let certificate = read_current(remote, name).await?;
    let status = read_status(remote, name).await?;
    let job_installed = remote.read_file(&cron_file(name)).await?.is_some();
    Ok(CertsStatus {
        domain: stack.domain.clone(),
        mode: match &stack.tls {
            Tls::Off => "off",
            Tls::Acme(_) => "acme",
            Tls::Provided(_) => "provided",
        }
        .into(),
        renew_at: certificate.as_ref().map(renew_at),
        certificate,
        status,
        job_installed,
        directory: match &stack.tls {
            Tls::Acme(a) => Some(a.directory.clone()),
            _ => None,
        },
    })
}
