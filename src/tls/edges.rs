//! Certificates on every edge of a swarm: issued once, from where vldeploy runs, with the HTTP-01 token
//! written on every edge (the CA may reach any of them); the ACME account and the renewal status kept on the
//! first edge; the certificate and its key installed on every edge, each edge's nginx reloaded.
//!
//! There is no renewal job on the nodes of a swarm (one edge cannot reach the others): `up` and
//! `certs renew` renew a certificate that is due, and give an edge that serves another certificate the
//! first edge's.

use std::sync::Arc;

use serde::Serialize;

use super::TlsError;
use super::acme::{Request, Webroot, issue};
use super::cert::CertInfo;
use super::install::{install, read_current, rollback};
use super::policy::{Decision, date, decide};
use super::setup::Converged;
use super::state::{
    HostEab, RenewReport, Status, certs_dir, read_account, read_status, write_account, write_status,
};
use crate::secret::Secret;
use crate::stack::{Stack, Tls};
use crate::transport::Remote;

/// The certificate one edge has installed (what its nginx serves once reloaded).
#[derive(Debug, Clone, Serialize)]
pub struct EdgeCertificate {
    pub host: String,
    pub certificate: Option<CertInfo>,
    /// Its certificate is not the first edge's.
    pub differs: bool,
}

/// Each edge's installed certificate, compared with the first edge's.
pub async fn edge_certificates(
    stack: &Stack,
    edges: &[Arc<Remote>],
) -> Result<Vec<EdgeCertificate>, TlsError> {
    let mut rows: Vec<EdgeCertificate> = Vec::new();
    for remote in edges {
        let certificate = read_current(remote, &stack.name).await?;
        let differs = rows
            .first()
            .is_some_and(|first| differs(first.certificate.as_ref(), certificate.as_ref()));
        rows.push(EdgeCertificate {
            host: remote.name().to_string(),
            certificate,
            differs,
        });
    }
    Ok(rows)
}

/// Whether an edge's certificate is not the first edge's (by fingerprint; none at all differs from one).
fn differs(first: Option<&CertInfo>, this: Option<&CertInfo>) -> bool {
    first.map(|c| &c.fingerprint) != this.map(|c| &c.fingerprint)
}

/// The renewal status kept on the first edge.
pub async fn edges_status(edges: &[Arc<Remote>], stack: &str) -> Result<Status, TlsError> {
    match edges.first() {
        Some(first) => Ok(read_status(first, stack).await?),
        None => Ok(Status::default()),
    }
}

/// With `tls: acme` on a swarm: issues the certificate when the first edge's is due (or `force`), once, and
/// installs it on every edge; otherwise gives any edge whose certificate differs the first edge's. The caller
/// holds the cluster's deploy lock.
pub async fn converge_edges(
    stack: &Stack,
    edges: &[Arc<Remote>],
    force: bool,
) -> Result<Converged, TlsError> {
    let Tls::Acme(acme) = &stack.tls else {
        return Err(TlsError::Config(format!(
            "environment `{}` does not use `tls: acme`: there is nothing to renew",
            stack.environment
        )));
    };
    let Some(first) = edges.first() else {
        return Err(TlsError::Config(format!(
            "environment `{}` has no `edge` host to serve its certificate",
            stack.environment
        )));
    };
    let name = &stack.name;
    let domains = vec![stack.domain.clone()];
    let eab = acme.eab.as_ref().map(|e| HostEab {
        kid: e.kid.expose().to_string(),
        hmac: e.hmac.expose().to_string(),
    });
    let secrets: Vec<Secret> = eab.iter().map(|e| Secret::new(e.hmac.clone())).collect();
    let scrub = |e: TlsError| TlsError::Config(crate::secret::scrub(&e.to_string(), &secrets));
    let now = crate::state::now();
    let mut status = read_status(first, name).await?;
    let current = read_current(first, name).await?;
    status.last_check = Some(now);
    let decision = decide(now, current.as_ref(), &domains, &status, force);
    let reason = match &decision {
        Decision::Renew { reason } => reason.clone(),
        Decision::Wait { at } | Decision::Backoff { at } => {
            let backoff = matches!(decision, Decision::Backoff { .. });
            write_status(first, name, &status).await?;
            return not_due(stack, edges, current, status, *at, backoff).await;
        }
    };
    if let Some(eab) = &eab {
        super::acme::decode_hmac(&eab.hmac)?;
    }
    let ca_bundle = match &acme.ca_bundle {
        Some(path) => Some(std::fs::read(path).map_err(|source| TlsError::Io {
            path: path.display().to_string(),
            source,
        })?),
        None => None,
    };
    let issued = issue(Request {
        directory: &acme.directory,
        email: acme.email.as_deref(),
        eab: eab.as_ref().map(|e| (e.kid.as_str(), e.hmac.as_str())),
        ca_bundle: ca_bundle.as_deref(),
        domains: &domains,
        webroot: Webroot::Hosts {
            stack: name,
            hosts: edges,
        },
        account: read_account(first, name).await?,
        eab_fingerprint: eab.as_ref().map(HostEab::fingerprint),
        now,
    })
    .await;
    let issued = match issued {
        Ok(issued) => issued,
        Err(e) => {
            let e = scrub(e);
            status.failed(now, &e.to_string(), None);
            let _ = write_status(first, name, &status).await;
            return Err(e);
        }
    };
    write_account(first, name, &issued.account).await?;
    let (cert, changes) =
        install_everywhere(stack, edges, &issued.chain_pem, &issued.key_pem).await?;
    status.succeeded(now, &cert.serial);
    write_status(first, name, &status).await?;
    let mut changes = changes;
    changes.insert(
        0,
        format!(
            "certificate {} for {} ({}, expires {}) on {} edges",
            cert.serial,
            cert.sans.join(", "),
            cert.key_type,
            date(cert.not_after),
            edges.len()
        ),
    );
    Ok(Converged {
        report: RenewReport {
            outcome: "renewed".into(),
            reason: Some(reason),
            error: None,
            certificate: Some(cert),
            status,
        },
        changes,
    })
}

/// No order is due: the first edge's certificate is given to any edge whose certificate differs.
async fn not_due(
    stack: &Stack,
    edges: &[Arc<Remote>],
    current: Option<CertInfo>,
    status: Status,
    at: u64,
    backoff: bool,
) -> Result<Converged, TlsError> {
    let changes = match &current {
        Some(c) if !c.placeholder => copy_to_differing(stack, edges, c).await?,
        _ => Vec::new(),
    };
    Ok(Converged {
        report: RenewReport::waiting(backoff, at, current, status),
        changes,
    })
}

/// Installs `chain` and `key` on every edge and reloads its nginx; an edge that fails keeps (or gets back)
/// its previous certificate, the others keep the new one, and the error names it.
async fn install_everywhere(
    stack: &Stack,
    edges: &[Arc<Remote>],
    chain: &[u8],
    key: &[u8],
) -> Result<(CertInfo, Vec<String>), TlsError> {
    let domains = vec![stack.domain.clone()];
    let mut changes = Vec::new();
    let mut failed = Vec::new();
    let mut cert = None;
    for remote in edges {
        match install_on(remote, &stack.name, chain, key, &domains).await {
            Ok(c) => {
                changes.push(format!(
                    "edge {}: certificate {} installed, nginx reloaded",
                    remote.name(),
                    c.serial
                ));
                cert = Some(c);
            }
            Err(e) => failed.push(format!("edge `{}`: {e}", remote.name())),
        }
    }
    match cert {
        Some(cert) if failed.is_empty() => Ok((cert, changes)),
        _ => Err(TlsError::Install(format!(
            "{}\n  the edges named keep serving their previous certificate; {} edge(s) serve the new one\n  help: `vldeploy certs renew -e {}` installs it again once the edge is back",
            failed.join("\n"),
            changes.len(),
            stack.environment
        ))),
    }
}

async fn install_on(
    remote: &Remote,
    stack: &str,
    chain: &[u8],
    key: &[u8],
    domains: &[String],
) -> Result<CertInfo, TlsError> {
    let (cert, old) = install(remote, stack, chain, key, domains, crate::state::now()).await?;
    let out = remote
        .exec(&crate::remote::edge::reload_nginx(stack))
        .await?;
    if out.success() {
        super::install::prune(remote, stack).await?;
        return Ok(cert);
    }
    rollback(remote, stack, old.as_deref()).await?;
    let _ = remote.exec(&crate::remote::edge::reload_nginx(stack)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(TlsError::Install(format!(
        "nginx did not take the new certificate (exit {}): {}",
        out.status,
        stderr.trim_end()
    )))
}

/// Gives every edge whose certificate is not `first`'s the first edge's certificate and key.
async fn copy_to_differing(
    stack: &Stack,
    edges: &[Arc<Remote>],
    first: &CertInfo,
) -> Result<Vec<String>, TlsError> {
    let rows = edge_certificates(stack, edges).await?;
    if !rows.iter().any(|r| r.differs) {
        return Ok(Vec::new());
    }
    let dir = format!("{}/current", certs_dir(&stack.name));
    let read = |file: &'static str| {
        let path = format!("{dir}/{file}");
        async move {
            edges[0].read_file(&path).await?.ok_or_else(|| {
                TlsError::Install(format!("`{path}` is missing on `{}`", edges[0].name()))
            })
        }
    };
    let (chain, key) = (read("fullchain.pem").await?, read("privkey.pem").await?);
    let domains = vec![stack.domain.clone()];
    let mut changes = Vec::new();
    for (remote, row) in edges.iter().zip(&rows) {
        if row.differs {
            install_on(remote, &stack.name, &chain, &key, &domains)
                .await
                .map_err(|e| TlsError::Install(format!("edge `{}`: {e}", remote.name())))?;
            changes.push(format!(
                "edge {}: certificate {} copied from {}, nginx reloaded",
                remote.name(),
                first.serial,
                edges[0].name()
            ));
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(fingerprint: &str) -> CertInfo {
        CertInfo {
            serial: "01".into(),
            fingerprint: fingerprint.into(),
            not_before: 0,
            not_after: 1,
            sans: vec!["shop.test".into()],
            issuer: "CA".into(),
            key_type: "ecdsa-p256".into(),
            placeholder: false,
        }
    }

    #[test]
    fn an_edge_differs_when_its_fingerprint_is_not_the_first_edges() {
        let (a, b) = (cert("aa"), cert("bb"));
        assert!(!differs(Some(&a), Some(&cert("aa"))));
        assert!(differs(Some(&a), Some(&b)));
        assert!(differs(Some(&a), None));
        assert!(differs(None, Some(&b)));
        assert!(!differs(None, None));
    }
}
