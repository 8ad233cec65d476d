//! The renewal on the host (`vldeploy renew-on-host`): decide, issue, install, record, audit.
//!
//! Run by cron every minute (a check that reads one file unless the certificate is due) and by `up` and
//! `certs renew` over SSH. It needs nothing but the host: its configuration is in the stack's `tls/` directory.

use std::path::Path;
use std::sync::Arc;

use super::TlsError;
use super::acme::{Request, Webroot, issue};
use super::install::{install_and_serve, read_current};
use super::policy::{Decision, date, decide};
use super::state::{
    HostConfig, RenewReport, Status, read_account, read_config, read_status, webroot,
    write_account, write_status,
};
use crate::engine::Engine;
use crate::secret::Secret;
use crate::state::{AuditEntry, StateError};
use crate::transport::Remote;

/// How a run was started.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Renew even when the certificate is not due (a CA's `Retry-After` still holds).
    pub force: bool,
    /// The caller (`up`, `certs renew`) already holds the stack's deploy lock.
    pub lock_held: bool,
    /// Who started it, for the audit log: `cron` or the command.
    pub trigger: String,
}

/// One renewal check for `stack` on this host. Always returns a report; `failed` reports carry the error.
pub async fn renew_on_host(stack: &str, opts: HostOptions) -> RenewReport {
    let remote = Arc::new(Remote::local());
    let mut status = match read_status(&remote, stack).await {
        Ok(status) => status,
        // A corrupt status is reported, never taken for an empty one and written over.
        Err(e) => {
            return RenewReport {
                outcome: "failed".into(),
                reason: None,
                error: Some(e.to_string()),
                certificate: None,
                status: Status::default(),
            };
        }
    };
    match run(&remote, stack, opts, &mut status).await {
        Ok(report) => report,
        Err((e, secrets)) => {
            let text = crate::secret::scrub(&e.to_string(), &secrets);
            RenewReport {
                outcome: "failed".into(),
                reason: None,
                error: Some(text),
                certificate: None,
                status,
            }
        }
    }
}

type Failure = (TlsError, Vec<Secret>);

async fn run(
    remote: &Arc<Remote>,
    stack: &str,
    opts: HostOptions,
    status: &mut Status,
) -> Result<RenewReport, Failure> {
    let none = Vec::new;
    let config: HostConfig = read_config(remote, stack)
        .await
        .map_err(|e| (e.into(), none()))?
        .ok_or_else(|| {
            (
                TlsError::Config(format!(
                    "no certificate configuration for `{stack}` on this host: run `vldeploy up` with `tls: acme`"
                )),
                none(),
            )
        })?;
    let secrets: Vec<Secret> = config
        .eab
        .iter()
        .map(|e| Secret::new(e.hmac.clone()))
        .collect();
    let fail = |e: TlsError| (e, secrets.clone());
    let now = crate::state::now();
    let current = read_current(remote, stack).await.ok().flatten();
    status.last_check = Some(now);
    let decision = decide(now, current.as_ref(), &config.domains, status, opts.force);
    let reason = match decision {
        Decision::Renew { reason } => reason,
        Decision::Wait { at } | Decision::Backoff { at } => {
            let backoff = matches!(decision, Decision::Backoff { .. });
            write_status(remote, stack, status)
                .await
                .map_err(|e| fail(e.into()))?;
            return Ok(RenewReport::waiting(backoff, at, current, status.clone()));
        }
    };

    let lock = if opts.lock_held {
        None
    } else {
        match crate::state::acquire(remote.clone(), stack, "certs renew (job)").await {
            Ok(lock) => Some(lock),
            Err(StateError::Locked { info, .. }) => {
                return Ok(RenewReport {
                    outcome: "busy".into(),
                    reason: Some(format!(
                        "{} is running `{}`; the next check retries",
                        info.holder, info.command
                    )),
                    error: None,
                    certificate: current,
                    status: status.clone(),
                });
            }
            Err(e) => return Err(fail(TlsError::Config(e.to_string()))),
        }
    };

    let result = renew(remote, stack, &config, now).await;
    let report = match &result {
        Ok(cert) => {
            status.succeeded(now, &cert.serial);
            RenewReport {
                outcome: "renewed".into(),
                reason: Some(reason.clone()),
                error: None,
                certificate: Some(cert.clone()),
                status: status.clone(),
            }
        }
        Err(e) => {
            let text = crate::secret::scrub(&e.to_string(), &secrets);
            status.failed(now, &text, e.retry_after());
            RenewReport {
                outcome: "failed".into(),
                reason: Some(reason.clone()),
                error: Some(text),
                certificate: current.clone(),
                status: status.clone(),
            }
        }
    };
    let _ = write_status(remote, stack, status).await;
    let entry = AuditEntry {
        time: now,
        actor: format!("{}@{}", opts.trigger, crate::state::machine()),
        command: "certs renew".into(),
        environment: config.environment.clone(),
        changes: match &report.certificate {
            Some(c) if report.outcome == "renewed" => vec![format!(
                "certificate {} for {} ({}, expires {})",
                c.serial,
                c.sans.join(", "),
                c.key_type,
                date(c.not_after)
            )],
            _ => Vec::new(),
        },
        result: if result.is_ok() { "ok" } else { "failed" }.into(),
        error: report.error.clone(),
        waived: Vec::new(),
        note: Some(reason),
    };
    if let Err(e) = crate::state::audit_append(remote, stack, &entry, &secrets).await {
        tracing::warn!("could not write the audit log: {e}");
    }
    if let Some(lock) = lock {
        let _ = lock.release().await;
    }
    Ok(report)
}

async fn renew(
    remote: &Remote,
    stack: &str,
    config: &HostConfig,
    now: u64,
) -> Result<super::CertInfo, TlsError> {
    let account = read_account(remote, stack).await?;
    let ca_bundle = match &config.ca_bundle {
        Some(p) => Some(remote.read_file(p).await?.ok_or_else(|| {
            TlsError::Config(format!("the CA bundle `{p}` is missing on the host"))
        })?),
        None => None,
    };
    let webroot = webroot(stack);
    let issued = issue(Request {
        directory: &config.directory,
        email: config.email.as_deref(),
        eab: config
            .eab
            .as_ref()
            .map(|e| (e.kid.as_str(), e.hmac.as_str())),
        ca_bundle: ca_bundle.as_deref(),
        domains: &config.domains,
        webroot: Webroot::Local(Path::new(&webroot)),
        account,
        eab_fingerprint: config.eab.as_ref().map(super::HostEab::fingerprint),
        now,
    })
    .await?;
    write_account(remote, stack, &issued.account).await?;
    let engine = Engine::local()?;
    install_and_serve(
        remote,
        &engine,
        stack,
        &config.nginx,
        &config.probe,
        &issued.chain_pem,
        &issued.key_pem,
        &config.domains,
        crate::state::now(),
    )
    .await
}
