//! Atomic installation: a new release directory, a symlink swap that keeps the previous one, `nginx -t`,
//! a reload, and a real handshake; any failure puts the previous certificate back.

use std::time::Duration;

use super::TlsError;
use super::cert::{CertInfo, info, parse_chain, verify};
use super::state::certs_dir;
use crate::engine::Engine;
use crate::remote::tls as cmd;
use crate::transport::Remote;

/// The certificate `current` points at, if any.
pub async fn read_current(remote: &Remote, stack: &str) -> Result<Option<CertInfo>, TlsError> {
    let path = format!("{}/current/fullchain.pem", certs_dir(stack));
    match remote.read_file(&path).await? {
        None => Ok(None),
        Some(pem) => {
            let chain = parse_chain(&pem)?;
            Ok(Some(info(&chain[0])?))
        }
    }
}

/// Writes `chain` and `key` as a new release and points `current` at it (`previous` keeps the old target).
/// Checks them first: the chain verifies, the key matches, the SANs are `domains`. Returns the old target.
pub async fn install(
    remote: &Remote,
    stack: &str,
    chain: &[u8],
    key: &[u8],
    domains: &[String],
    now: u64,
) -> Result<(CertInfo, Option<String>), TlsError> {
    let cert = verify(chain, key, domains, now)?;
    let dir = certs_dir(stack);
    let serial: String = cert.serial.chars().take(16).collect();
    let release = format!("releases/{now}-{}", serial.to_ascii_lowercase());
    remote
        .upload(&format!("{dir}/{release}/fullchain.pem"), chain, 0o644)
        .await?;
    remote
        .upload(&format!("{dir}/{release}/privkey.pem"), key, 0o600)
        .await?;
    let out = remote.run(&cmd::switch_current(stack, &release)).await?;
    let old = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((cert, (!old.is_empty()).then_some(old)))
}

/// Points `current` back at `old` and removes the release that failed.
pub(super) async fn rollback(
    remote: &Remote,
    stack: &str,
    old: Option<&str>,
) -> Result<(), TlsError> {
    remote.run(&cmd::rollback(stack, old)).await?;
    Ok(())
}

/// Removes releases that are neither `current` nor `previous`.
pub(super) async fn prune(remote: &Remote, stack: &str) -> Result<(), TlsError> {
    remote.run(&cmd::prune(stack)).await?;
    Ok(())
}

/// Installs, tests nginx's configuration, reloads it, and confirms with a handshake at `probe` that the new
/// certificate is served. Any failure restores the previous certificate (and reloads again).
pub(super) async fn install_and_serve(
    remote: &Remote,
    engine: &Engine,
    stack: &str,
    nginx: &str,
    probe: &str,
    chain: &[u8],
    key: &[u8],
    domains: &[String],
    now: u64,
) -> Result<CertInfo, TlsError> {
    let (cert, old) = install(remote, stack, chain, key, domains, now).await?;
    let served = async {
        let (status, output) = engine.exec(nginx, &["nginx", "-t"]).await?;
        if status != 0 {
            return Err(TlsError::Install(format!(
                "`nginx -t` rejected the new certificate:\n{}",
                output.trim_end()
            )));
        }
        engine
            .exec_checked(nginx, &["nginx", "-s", "reload"])
            .await?;
        let sni = domains.first().map_or("localhost", String::as_str);
        let mut last = String::new();
        for _ in 0..30 {
            match super::probe::served_certificate(probe, sni).await {
                Ok(s) if s.fingerprint == cert.fingerprint => return Ok(()),
                Ok(s) => last = format!("nginx still serves certificate {}", s.serial),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(TlsError::Install(format!(
            "after the reload, the handshake at {probe} did not show certificate {}: {last}",
            cert.serial
        )))
    }
    .await;
    match served {
        Ok(()) => {
            prune(remote, stack).await?;
            Ok(cert)
        }
        Err(e) => {
            rollback(remote, stack, old.as_deref()).await?;
            if old.is_some() {
                let _ = engine.exec(nginx, &["nginx", "-s", "reload"]).await;
            }
            Err(TlsError::Install(format!(
                "{e}\n  the previous certificate was put back and is served"
            )))
        }
    }
}
