//! A real TLS handshake with nginx: which certificate does it serve for the domain?

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};

use super::TlsError;
use super::cert::{CertInfo, info};

/// Connects to `addr` (`host:port`), sends `sni`, and returns the leaf certificate served. The chain is not
/// judged here (it was verified before installation); the caller compares what is served with what it installed.
pub async fn served_certificate(addr: &str, sni: &str) -> Result<CertInfo, TlsError> {
    let addr = addr.to_string();
    let sni = sni.to_string();
    tokio::task::spawn_blocking(move || handshake(&addr, &sni))
        .await
        .map_err(|e| TlsError::Install(format!("the handshake task failed: {e}")))?
}

fn handshake(addr: &str, sni: &str) -> Result<CertInfo, TlsError> {
    let fail =
        |what: String| TlsError::Install(format!("TLS handshake with {addr} ({sni}): {what}"));
    let target = addr
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .next()
        .ok_or_else(|| fail("no address".into()))?;
    let tcp = TcpStream::connect_timeout(&target, Duration::from_secs(10))
        .map_err(|e| fail(e.to_string()))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|()| tcp.set_write_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| fail(e.to_string()))?;
    let mut builder =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| fail(e.to_string()))?;
    builder.set_verify(SslVerifyMode::NONE);
    let connector = builder.build();
    let mut config = connector.configure().map_err(|e| fail(e.to_string()))?;
    config.set_verify_hostname(false);
    let stream = config.connect(sni, tcp).map_err(|e| fail(e.to_string()))?;
    let leaf = stream
        .ssl()
        .peer_certificate()
        .ok_or_else(|| fail("no certificate was served".into()))?;
    info(&leaf)
}
