//! A certificate chain and its key as PEM: inspection, the checks before installing, and the placeholder.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use serde::{Deserialize, Serialize};

use super::TlsError;

/// The organisation name that marks a self-signed placeholder.
pub const PLACEHOLDER_ORG: &str = "vldeploy placeholder";

/// What matters about an installed or served certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Hex serial number, uppercase.
    pub serial: String,
    /// SHA-256 of the leaf's DER, hex.
    pub fingerprint: String,
    pub not_before: u64,
    pub not_after: u64,
    pub sans: Vec<String>,
    pub issuer: String,
    /// `ecdsa-p256`, `rsa-2048`, …
    pub key_type: String,
    /// A self-signed stand-in installed before the first real certificate.
    pub placeholder: bool,
}

impl CertInfo {
    pub fn lifetime_s(&self) -> u64 {
        self.not_after.saturating_sub(self.not_before)
    }
}

fn bad(what: impl Into<String>) -> impl FnOnce(openssl::error::ErrorStack) -> TlsError {
    let what = what.into();
    move |e| TlsError::Certificate(format!("{what}: {e}"))
}

/// Seconds since the epoch of an ASN.1 time.
fn epoch(t: &openssl::asn1::Asn1TimeRef) -> Result<u64, TlsError> {
    let zero = Asn1Time::from_unix(0).map_err(bad("reading a date"))?;
    let diff = zero.diff(t).map_err(bad("reading a date"))?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    Ok(u64::try_from(secs).unwrap_or(0))
}

/// Parses every certificate of a PEM chain, leaf first.
pub fn parse_chain(pem: &[u8]) -> Result<Vec<X509>, TlsError> {
    let chain = X509::stack_from_pem(pem).map_err(bad("the chain is not PEM"))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate(
            "the chain holds no certificate".into(),
        ));
    }
    Ok(chain)
}

/// The facts about a leaf certificate.
pub fn info(leaf: &X509) -> Result<CertInfo, TlsError> {
    let serial = leaf
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .map_err(bad("reading the serial"))?;
    let fingerprint = leaf
        .digest(MessageDigest::sha256())
        .map(|d| hex::encode(&*d))
        .map_err(bad("hashing the certificate"))?;
    let sans = leaf
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.dnsname().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let issuer = leaf
        .issuer_name()
        .entries()
        .filter_map(|e| e.data().to_string().ok())
        .collect::<Vec<_>>()
        .join(", ");
    let placeholder = leaf
        .subject_name()
        .entries_by_nid(Nid::ORGANIZATIONNAME)
        .any(|e| e.data().to_string().is_ok_and(|s| s == PLACEHOLDER_ORG));
    let key = leaf.public_key().map_err(bad("reading the public key"))?;
    Ok(CertInfo {
        serial,
        fingerprint,
        not_before: epoch(leaf.not_before())?,
        not_after: epoch(leaf.not_after())?,
        sans,
        issuer,
        key_type: key_type(&key),
        placeholder,
    })
}

fn key_type<T: openssl::pkey::HasPublic>(key: &PKey<T>) -> String {
    match key.id() {
        Id::EC => match key.ec_key().ok().and_then(|k| k.group().curve_name()) {
            Some(Nid::X9_62_PRIME256V1) => "ecdsa-p256".into(),
            Some(Nid::SECP384R1) => "ecdsa-p384".into(),
            _ => "ecdsa".into(),
        },
        Id::RSA => format!("rsa-{}", key.bits()),
        Id::ED25519 => "ed25519".into(),
        _ => "other".into(),
    }
}

/// The checks before a chain and key may replace what nginx serves: every link is signed by the next,
/// the leaf is within its validity, the key belongs to the leaf, and the SANs are exactly `domains`.
pub fn verify(
    chain_pem: &[u8],
    key_pem: &[u8],
    domains: &[String],
    now: u64,
) -> Result<CertInfo, TlsError> {
    let chain = parse_chain(chain_pem)?;
    let key = PKey::private_key_from_pem(key_pem).map_err(bad("the key is not PEM"))?;
    let leaf = &chain[0];
    let leaf_key = leaf.public_key().map_err(bad("reading the public key"))?;
    if !leaf_key.public_eq(&key) {
        return Err(TlsError::Certificate(
            "the private key does not belong to the certificate".into(),
        ));
    }
    for pair in chain.windows(2) {
        let issuer_key = pair[1].public_key().map_err(bad("reading an issuer key"))?;
        let signed = pair[0]
            .verify(&issuer_key)
            .map_err(bad("checking a signature"))?;
        if !signed || pair[1].issued(&pair[0]) != openssl::x509::X509VerifyResult::OK {
            return Err(TlsError::Certificate(format!(
                "the chain does not verify: certificate {} is not issued by the next one",
                info(&pair[0])?.serial
            )));
        }
    }
    let info = info(leaf)?;
    if now < info.not_before || now >= info.not_after {
        return Err(TlsError::Certificate(format!(
            "certificate {} is not valid now (valid from {} to {})",
            info.serial,
            super::policy::date(info.not_before),
            super::policy::date(info.not_after)
        )));
    }
    let mut want: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
    let mut got: Vec<String> = info.sans.iter().map(|d| d.to_ascii_lowercase()).collect();
    want.sort();
    got.sort();
    if want != got {
        return Err(TlsError::Certificate(format!(
            "certificate {} names {} but the stack serves {}",
            info.serial,
            got.join(", "),
            want.join(", ")
        )));
    }
    Ok(info)
}

/// A new ECDSA P-256 private key, as PEM (PKCS#8).
pub(super) fn new_ecdsa_key() -> Result<(PKey<Private>, Vec<u8>), TlsError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(bad("making a key"))?;
    let ec = EcKey::generate(&group).map_err(bad("making a key"))?;
    let key = PKey::from_ec_key(ec).map_err(bad("making a key"))?;
    let pem = key
        .private_key_to_pem_pkcs8()
        .map_err(bad("writing a key"))?;
    Ok((key, pem))
}

/// A self-signed certificate for `domain`, valid `days`, so nginx can start its HTTPS server before the first
/// real certificate exists. Returns `(chain PEM, key PEM)`.
pub fn placeholder(domain: &str, days: u32) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let (key, key_pem) = new_ecdsa_key()?;
    let mut name = X509NameBuilder::new().map_err(bad("naming the placeholder"))?;
    name.append_entry_by_nid(Nid::COMMONNAME, domain)
        .and_then(|()| name.append_entry_by_nid(Nid::ORGANIZATIONNAME, PLACEHOLDER_ORG))
        .map_err(bad("naming the placeholder"))?;
    let name = name.build();
    let mut b = X509::builder().map_err(bad("building the placeholder"))?;
    let mut serial = BigNum::new().map_err(bad("building the placeholder"))?;
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(bad("building the placeholder"))?;
    let serial = serial
        .to_asn1_integer()
        .map_err(bad("building the placeholder"))?;
    let start = Asn1Time::days_from_now(0).map_err(bad("building the placeholder"))?;
    let end = Asn1Time::days_from_now(days).map_err(bad("building the placeholder"))?;
    b.set_version(2)
        .and_then(|()| b.set_serial_number(&serial))
        .and_then(|()| b.set_subject_name(&name))
        .and_then(|()| b.set_issuer_name(&name))
        .and_then(|()| b.set_pubkey(&key))
        .and_then(|()| b.set_not_before(&start))
        .and_then(|()| b.set_not_after(&end))
        .map_err(bad("building the placeholder"))?;
    let san = SubjectAlternativeName::new()
        .dns(domain)
        .build(&b.x509v3_context(None, None))
        .map_err(bad("building the placeholder"))?;
    let ca = BasicConstraints::new()
        .build()
        .map_err(bad("building the placeholder"))?;
    b.append_extension(san)
        .and_then(|()| b.append_extension(ca))
        .and_then(|()| b.sign(&key, MessageDigest::sha256()))
        .map_err(bad("signing the placeholder"))?;
    let pem = b.build().to_pem().map_err(bad("writing the placeholder"))?;
    Ok((pem, key_pem))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_placeholder_verifies_for_its_domain_only_and_says_what_it_is() {
        let (chain, key) = placeholder("shop.test", 30).unwrap();
        let info = verify(&chain, &key, &["shop.test".into()], now()).unwrap();
        assert!(info.placeholder);
        assert_eq!(info.key_type, "ecdsa-p256");
        assert_eq!(info.sans, vec!["shop.test".to_string()]);
        assert!((29 * 86_400..=31 * 86_400).contains(&info.lifetime_s()));
        let err = verify(&chain, &key, &["other.test".into()], now()).unwrap_err();
        assert!(
            err.to_string()
                .contains("names shop.test but the stack serves other.test"),
            "{err}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (chain, _) = placeholder("shop.test", 30).unwrap();
        let (_, other_key) = placeholder("shop.test", 30).unwrap();
        let err = verify(&chain, &other_key, &["shop.test".into()], now()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
    }

    #[test]
    fn an_expired_or_unrelated_chain_is_refused() {
        let (chain, key) = placeholder("shop.test", 1).unwrap();
        let err = verify(&chain, &key, &["shop.test".into()], now() + 3 * 86_400).unwrap_err();
        assert!(err.to_string().contains("is not valid now"), "{err}");
        let (other, _) = placeholder("shop.test", 1).unwrap();
        let mut both = chain.clone();
        both.extend_from_slice(&other);
        let err = verify(&both, &key, &["shop.test".into()], now()).unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        assert!(verify(b"junk", &key, &["shop.test".into()], now()).is_err());
    }
}
