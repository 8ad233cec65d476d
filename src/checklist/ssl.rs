//! The `ssl` item: a real TLS handshake to the domain, judged the way a browser would — chain, name, time left.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslVerifyMode};

use crate::tls::CertInfo;

/// A certificate with fewer days left than this fails the item.
pub const MIN_DAYS_LEFT: u64 = 14;

/// What the handshake showed.
#[derive(Debug, Clone)]
pub struct Served {
    pub cert: CertInfo,
    pub days_left: u64,
}

/// Connects to `addr`, asks for `domain`, and verifies the chain against the system's roots (plus
/// `extra_roots`, a PEM bundle for private CAs) and the name. Returns what is served, or why it fails.
pub async fn check(
    addr: &str,
    domain: &str,
    extra_roots: Option<PathBuf>,
    now: u64,
) -> Result<Served, String> {
    let (addr, domain) = (addr.to_string(), domain.to_string());
    tokio::task::spawn_blocking(move || handshake(&addr, &domain, extra_roots.as_deref(), now))
        .await
        .map_err(|e| format!("the handshake task failed: {e}"))?
}

fn handshake(
    addr: &str,
    domain: &str,
    extra_roots: Option<&Path>,
    now: u64,
) -> Result<Served, String> {
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("`{addr}` does not resolve: {e}"))?
        .next()
        .ok_or_else(|| format!("`{addr}` has no address"))?;
    let tcp = TcpStream::connect_timeout(&target, Duration::from_secs(10))
        .map_err(|e| format!("no HTTPS listener at {addr}: {e}"))?;
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    builder.set_verify(SslVerifyMode::PEER);
    if let Some(bundle) = extra_roots {
        builder
            .set_ca_file(bundle)
            .map_err(|e| format!("the CA bundle `{}` cannot be read: {e}", bundle.display()))?;
    }
    let connector = builder.build();
    let stream = match connector.connect(domain, tcp) {
        Ok(s) => s,
        Err(HandshakeError::Failure(mid)) => {
            let verdict = mid.ssl().verify_result();
            let leaf = mid
                .ssl()
                .peer_certificate()
                .and_then(|c| crate::tls::info(&c).ok());
            let served = leaf.map_or_else(String::new, |c| {
                format!(" (served: {}, issued by {})", c.serial, c.issuer)
            });
            return Err(if verdict == openssl::x509::X509VerifyResult::OK {
                format!("the TLS handshake failed: {}{served}", mid.error())
            } else {
                format!(
                    "the certificate is not trusted: {}{served}",
                    verdict.error_string()
                )
            });
        }
        Err(e) => return Err(format!("the TLS handshake failed: {e}")),
    };
    let leaf = stream
        .ssl()
        .peer_certificate()
        .ok_or("no certificate was served")?;
    let cert = crate::tls::info(&leaf).map_err(|e| e.to_string())?;
    let days_left = cert.not_after.saturating_sub(now) / 86_400;
    if days_left < MIN_DAYS_LEFT {
        return Err(format!(
            "certificate {} expires in {days_left} days ({}); at least {MIN_DAYS_LEFT} are needed",
            cert.serial,
            crate::tls::date(cert.not_after)
        ));
    }
    Ok(Served { cert, days_left })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::ssl::SslAcceptor;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509, X509NameBuilder};

    fn key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    /// A certificate for `cn` valid `days` from now, signed by `issuer` (self-signed when `None`).
    fn cert(
        cn: &str,
        key: &PKey<Private>,
        days: u32,
        issuer: Option<(&X509, &PKey<Private>)>,
        ca: bool,
    ) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
            .unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(days).unwrap())
            .unwrap();
        if ca {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
        } else {
            let san = SubjectAlternativeName::new()
                .dns(cn)
                .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
                .unwrap();
            b.append_extension(san).unwrap();
        }
        b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
            .unwrap();
        b.build()
    }

    /// Serves `chain` with `key` for one connection on a loopback port; returns the address.
    fn serve(chain: Vec<X509>, key: PKey<Private>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acceptor.set_private_key(&key).unwrap();
        acceptor.set_certificate(&chain[0]).unwrap();
        for c in &chain[1..] {
            acceptor.add_extra_chain_cert(c.clone()).unwrap();
        }
        let acceptor = acceptor.build();
        std::thread::spawn(move || {
            if let Ok((tcp, _)) = listener.accept() {
                let _ = acceptor.accept(tcp);
            }
        });
        addr
    }

    struct Ca {
        cert: X509,
        key: PKey<Private>,
        bundle: tempfile::NamedTempFile,
    }

    fn ca() -> Ca {
        let key = key();
        let cert = cert("checklist test root", &key, 3650, None, true);
        let bundle = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(bundle.path(), cert.to_pem().unwrap()).unwrap();
        Ca { cert, key, bundle }
    }

    fn run(addr: &str, domain: &str, roots: Option<&Path>) -> Result<Served, String> {
        tokio::runtime::Runtime::new().unwrap().block_on(check(
            addr,
            domain,
            roots.map(Path::to_path_buf),
            crate::state::now(),
        ))
    }

    #[test]
    fn a_trusted_certificate_for_the_name_with_time_left_passes() {
        let ca = ca();
        let k = key();
        let leaf = cert("shop.test", &k, 90, Some((&ca.cert, &ca.key)), false);
        let addr = serve(vec![leaf, ca.cert.clone()], k);
        let served = run(&addr, "shop.test", Some(ca.bundle.path())).unwrap();
        assert!(served.days_left >= 88, "{}", served.days_left);
        assert_eq!(served.cert.sans, vec!["shop.test".to_string()]);
    }

    #[test]
    fn a_self_signed_certificate_fails_naming_the_reason() {
        let k = key();
        let leaf = cert("shop.test", &k, 90, None, false);
        let addr = serve(vec![leaf], k);
        let err = run(&addr, "shop.test", None).unwrap_err();
        assert!(err.contains("not trusted") && err.contains("self"), "{err}");
    }

    #[test]
    fn a_certificate_expiring_within_14_days_fails() {
        let ca = ca();
        let k = key();
        let leaf = cert("shop.test", &k, 10, Some((&ca.cert, &ca.key)), false);
        let addr = serve(vec![leaf, ca.cert.clone()], k);
        let err = run(&addr, "shop.test", Some(ca.bundle.path())).unwrap_err();
        assert!(
            err.contains("expires in 9 days") || err.contains("expires in 10 days"),
            "{err}"
        );
    }

    #[test]
    fn a_certificate_for_another_name_fails() {
        let ca = ca();
        let k = key();
        let leaf = cert("other.test", &k, 90, Some((&ca.cert, &ca.key)), false);
        let addr = serve(vec![leaf, ca.cert.clone()], k);
        let err = run(&addr, "shop.test", Some(ca.bundle.path())).unwrap_err();
        assert!(
            err.contains("not trusted") && err.contains("hostname"),
            "{err}"
        );
    }

    #[test]
    fn nothing_listening_fails_clearly() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = run(&format!("127.0.0.1:{port}"), "shop.test", None).unwrap_err();
        assert!(err.contains("no HTTPS listener"), "{err}");
    }
}
