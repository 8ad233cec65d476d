//! The TLS identities of pgBackRest's repository-host mode: a CA of the stack's own, a certificate for the backup
//! host and one for the database host, kept in the operator's `.vldeploy/<env>/pgbackrest/` (keys 0600).
//!
//! Each side's certificate serves its `pgbackrest server` and authenticates it as a client of the other side: its
//! common name (and DNS name) is the address the other side reaches it at, which is what pgBackRest's client
//! checks, and what the other side's `tls-server-auth` admits.

use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509Name, X509NameBuilder};

use crate::secret::Secret;

/// The files of one side: its certificate (PEM) and its private key (PEM, a secret).
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: String,
    pub key: Secret,
    /// The common name: the address the other side reaches this one at.
    pub name: String,
}

/// The CA's certificate and the two sides' identities.
#[derive(Debug, Clone)]
pub struct Material {
    pub ca: String,
    pub repo: Identity,
    pub db: Identity,
}

/// What went wrong making or reading the identities: the file or step, and why (never a key).
#[derive(Debug, thiserror::Error)]
#[error("pgBackRest's TLS identities in `{path}`: {reason}\n  help: {help}")]
pub struct TlsFilesError {
    pub path: String,
    pub reason: String,
    pub help: String,
}

fn ossl(step: &'static str) -> impl Fn(openssl::error::ErrorStack) -> String {
    move |e| format!("{step}: {e}")
}

fn new_key() -> Result<PKey<Private>, String> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ossl("making a key"))?;
    let ec = EcKey::generate(&group).map_err(ossl("making a key"))?;
    PKey::from_ec_key(ec).map_err(ossl("making a key"))
}

fn serial() -> Result<Asn1Integer, String> {
    let mut n = BigNum::new().map_err(ossl("a serial number"))?;
    n.rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(ossl("a serial number"))?;
    n.to_asn1_integer().map_err(ossl("a serial number"))
}

fn name(cn: &str) -> Result<X509Name, String> {
    let mut b = X509NameBuilder::new().map_err(ossl("a name"))?;
    b.append_entry_by_nid(Nid::COMMONNAME, cn)
        .and_then(|()| b.append_entry_by_nid(Nid::ORGANIZATIONNAME, "vldeploy pgBackRest"))
        .map_err(ossl("a name"))?;
    Ok(b.build())
}

/// A new CA for `stack` (ten years): its certificate and key.
pub fn new_ca(stack: &str) -> Result<(X509, PKey<Private>), String> {
    let key = new_key()?;
    let subject = name(&format!("{stack} pgBackRest CA"))?;
    let mut b = X509::builder().map_err(ossl("the CA"))?;
    let start = Asn1Time::days_from_now(0).map_err(ossl("the CA"))?;
    let end = Asn1Time::days_from_now(3650).map_err(ossl("the CA"))?;
    let number = serial()?;
    b.set_version(2)
        .and_then(|()| b.set_serial_number(&number))
        .and_then(|()| b.set_subject_name(&subject))
        .and_then(|()| b.set_issuer_name(&subject))
        .and_then(|()| b.set_pubkey(&key))
        .and_then(|()| b.set_not_before(&start))
        .and_then(|()| b.set_not_after(&end))
        .map_err(ossl("the CA"))?;
    let bc = BasicConstraints::new()
        .critical()
        .ca()
        .build()
        .map_err(ossl("the CA"))?;
    let ku = KeyUsage::new()
        .critical()
        .key_cert_sign()
        .crl_sign()
        .build()
        .map_err(ossl("the CA"))?;
    b.append_extension(bc)
        .and_then(|()| b.append_extension(ku))
        .and_then(|()| b.sign(&key, MessageDigest::sha256()))
        .map_err(ossl("signing the CA"))?;
    Ok((b.build(), key))
}

/// A certificate for `address` signed by the CA (ten years), for a server and a client alike.
pub fn new_leaf(
    ca: &X509,
    ca_key: &PKey<Private>,
    address: &str,
) -> Result<(String, Secret), String> {
    let key = new_key()?;
    let mut b = X509::builder().map_err(ossl("a certificate"))?;
    let start = Asn1Time::days_from_now(0).map_err(ossl("a certificate"))?;
    let end = Asn1Time::days_from_now(3650).map_err(ossl("a certificate"))?;
    let (number, subject) = (serial()?, name(address)?);
    b.set_version(2)
        .and_then(|()| b.set_serial_number(&number))
        .and_then(|()| b.set_subject_name(&subject))
        .and_then(|()| b.set_issuer_name(ca.subject_name()))
        .and_then(|()| b.set_pubkey(&key))
        .and_then(|()| b.set_not_before(&start))
        .and_then(|()| b.set_not_after(&end))
        .map_err(ossl("a certificate"))?;
    let mut san = SubjectAlternativeName::new();
    // pgBackRest compares the host it connects to with the DNS names; an IP is listed both ways.
    san.dns(address);
    if address.parse::<std::net::IpAddr>().is_ok() {
        san.ip(address);
    }
    let san = san
        .build(&b.x509v3_context(Some(ca), None))
        .map_err(ossl("a certificate"))?;
    let bc = BasicConstraints::new()
        .build()
        .map_err(ossl("a certificate"))?;
    let eku = ExtendedKeyUsage::new()
        .server_auth()
        .client_auth()
        .build()
        .map_err(ossl("a certificate"))?;
    b.append_extension(san)
        .and_then(|()| b.append_extension(bc))
        .and_then(|()| b.append_extension(eku))
        .and_then(|()| b.sign(ca_key, MessageDigest::sha256()))
        .map_err(ossl("signing a certificate"))?;
    let cert = b.build().to_pem().map_err(ossl("a certificate"))?;
    let key = key
        .private_key_to_pem_pkcs8()
        .map_err(ossl("writing a key"))?;
    Ok((
        String::from_utf8_lossy(&cert).into_owned(),
        Secret::new(String::from_utf8_lossy(&key).into_owned()),
    ))
}

/// The common name of a PEM certificate.
pub fn common_name(pem: &str) -> Option<String> {
    let cert = X509::from_pem(pem.as_bytes()).ok()?;
    let entry = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next()?;
    String::from_utf8(entry.data().as_slice().to_vec()).ok()
}

/// The directory of an environment's identities.
pub fn dir(project_dir: &Path, env: &str) -> PathBuf {
    project_dir.join(".vldeploy").join(env).join("pgbackrest")
}

/// The identities in `dir`, made when missing: the CA once; a side's certificate again when its address changed.
/// Keys are written 0600 in a 0700 directory.
pub fn load_or_create(
    dir: &Path,
    stack: &str,
    repo_address: &str,
    db_address: &str,
) -> Result<Material, TlsFilesError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let fail = |path: &Path, reason: String| {
        TlsFilesError {
        path: path.display().to_string(),
        reason,
        help: "check that the directory is writable by you; delete it to make new identities (then run `vldeploy up` again)".into(),
    }
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e.to_string()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| fail(dir, e.to_string()))?;
    let write = |file: &str, text: &str, mode: u32| -> Result<(), TlsFilesError> {
        let path = dir.join(file);
        let tmp = dir.join(format!(".{file}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| fail(&tmp, e.to_string()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| fail(&tmp, e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| fail(&path, e.to_string()))
    };
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let (ca_pem, ca_key_pem) = match (read("ca.crt"), read("ca.key")) {
        (Some(c), Some(k)) => (c, k),
        _ => {
            let (ca, key) = new_ca(stack).map_err(|r| fail(dir, r))?;
            let c = String::from_utf8_lossy(&ca.to_pem().map_err(|e| fail(dir, e.to_string()))?)
                .into_owned();
            let k = String::from_utf8_lossy(
                &key.private_key_to_pem_pkcs8()
                    .map_err(|e| fail(dir, e.to_string()))?,
            )
            .into_owned();
            write("ca.key", &k, 0o600)?;
            write("ca.crt", &c, 0o644)?;
            // Certificates of another CA would not verify: made again below.
            for f in ["repo.crt", "db.crt"] {
                let _ = std::fs::remove_file(dir.join(f));
            }
            (c, k)
        }
    };
    let ca = X509::from_pem(ca_pem.as_bytes())
        .map_err(|_| fail(&dir.join("ca.crt"), "it is not a PEM certificate".into()))?;
    let ca_key = PKey::private_key_from_pem(ca_key_pem.as_bytes())
        .map_err(|_| fail(&dir.join("ca.key"), "it is not a PEM private key".into()))?;
    let side = |which: &str, address: &str| -> Result<Identity, TlsFilesError> {
        let (crt, key) = (format!("{which}.crt"), format!("{which}.key"));
        if let (Some(cert), Some(k)) = (read(&crt), read(&key)) {
            if common_name(&cert).as_deref() == Some(address) {
                return Ok(Identity {
                    cert,
                    key: Secret::new(k),
                    name: address.to_owned(),
                });
            }
        }
        let (cert, k) = new_leaf(&ca, &ca_key, address).map_err(|r| fail(dir, r))?;
        write(&key, k.expose(), 0o600)?;
        write(&crt, &cert, 0o644)?;
        Ok(Identity {
            cert,
            key: k,
            name: address.to_owned(),
        })
    };
    Ok(Material {
        repo: side("repo", repo_address)?,
        db: side("db", db_address)?,
        ca: ca_pem,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn identities_are_made_once_keys_0600_and_a_changed_address_gets_a_new_certificate() {
        let t = tempfile::tempdir().unwrap();
        let d = dir(t.path(), "production");
        let a = load_or_create(&d, "shop", "10.0.0.7", "db.example").unwrap();
        assert_eq!(common_name(&a.repo.cert).as_deref(), Some("10.0.0.7"));
        assert_eq!(common_name(&a.db.cert).as_deref(), Some("db.example"));
        for f in ["ca.key", "repo.key", "db.key"] {
            let mode = std::fs::metadata(d.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let b = load_or_create(&d, "shop", "10.0.0.7", "db.example").unwrap();
        assert_eq!(a.repo.cert, b.repo.cert);
        assert_eq!(a.db.key.expose(), b.db.key.expose());
        let c = load_or_create(&d, "shop", "10.0.0.8", "db.example").unwrap();
        assert_ne!(a.repo.cert, c.repo.cert);
        assert_eq!(a.db.cert, c.db.cert);
        assert_eq!(a.ca, c.ca);
        // Signed by the CA.
        let ca = X509::from_pem(c.ca.as_bytes()).unwrap();
        let leaf = X509::from_pem(c.repo.cert.as_bytes()).unwrap();
        assert!(leaf.verify(&ca.public_key().unwrap()).unwrap());
    }
}
