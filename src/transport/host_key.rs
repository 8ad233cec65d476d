//! Host key verification against `known_hosts` (plain, `[host]:port` and hashed entries) or a pinned fingerprint.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};
use ssh2::{CheckResult, KnownHostFileKind, Session};

use super::error::TransportError;
use crate::remote::shell_quote;

/// A key that can never match: used to learn which `known_hosts` lines concern a host.
const PROBE_KEY: &[u8] = b"\0vldeploy-probe-key\0";

/// The fingerprint of a public key blob, as `ssh-keygen -l` prints it: `SHA256:<base64 without padding>`.
pub fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// The key type named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, ...).
pub(crate) fn blob_key_type(blob: &[u8]) -> String {
    let len = blob
        .get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    blob.get(4..4 + len)
        .and_then(|name| std::str::from_utf8(name).ok())
        .unwrap_or("unknown")
        .to_owned()
}

/// How `known_hosts` names a host: `host` on port 22, `[host]:port` elsewhere (as OpenSSH writes it).
pub(crate) fn known_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The command that appends the host's keys to `known_hosts`.
fn keyscan_command(host: &str, port: u16, known_hosts: &Path) -> String {
    let port = if port == 22 {
        String::new()
    } else {
        format!("-p {port} ")
    };
    format!(
        "ssh-keyscan {port}{} >> {}",
        shell_quote(host),
        shell_quote(&known_hosts.display().to_string())
    )
}

/// One `known_hosts` line that names the host.
struct Entry {
    number: usize,
    key_type: String,
    blob: Vec<u8>,
    matches: bool,
}

/// The lines of `known_hosts` that name `known_name`, and whether each holds `offered` (raw key blob).
///
/// Each line is checked on its own with libssh2's matcher, which understands plain names, name lists,
/// patterns and hashed (`|1|salt|hash`) names. Comment lines, marker lines (`@cert-authority`,
/// `@revoked`) and lines libssh2 cannot parse are skipped. A missing file has no entries.
fn entries(session: &Session, path: &Path, known_name: &str, offered: &[u8]) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let Ok(mut kh) = session.known_hosts() else {
            continue;
        };
        if kh.read_str(line, KnownHostFileKind::OpenSSH).is_err() {
            continue;
        }
        let matches = match kh.check(known_name, offered) {
            CheckResult::Match => true,
            CheckResult::Mismatch => false,
            CheckResult::NotFound | CheckResult::Failure => continue,
        };
        let mut fields = line.split_whitespace().skip(1);
        let key_type = fields.next().unwrap_or("unknown").to_owned();
        let blob = fields
            .next()
            .and_then(|b| STANDARD.decode(b).ok())
            .unwrap_or_default();
        found.push(Entry {
            number: index + 1,
            key_type,
            blob,
            matches,
        });
    }
    found
}

/// Host key algorithms to prefer so the host offers a key type `known_hosts` already lists for it, as
/// OpenSSH does; `None` when the file lists none (libssh2's defaults then apply).
pub(crate) fn preferred_algorithms(
    session: &Session,
    path: &Path,
    known_name: &str,
) -> Option<String> {
    let listed = entries(session, path, known_name, PROBE_KEY);
    if listed.is_empty() {
        return None;
    }
    let supported = session.supported_algs(ssh2::MethodType::HostKey).ok()?;
    let mut order: Vec<&str> = Vec::new();
    for entry in &listed {
        let algorithms: &[&str] = match entry.key_type.as_str() {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            "ssh-ed25519" => &["ssh-ed25519"],
            "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
            "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
            "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
            _ => &[],
        };
        for alg in algorithms {
            if supported.contains(alg) && !order.contains(alg) {
                order.push(alg);
            }
        }
    }
    if order.is_empty() {
        return None;
    }
    for alg in &supported {
        if !order.contains(alg) {
            order.push(alg);
        }
    }
    Some(order.join(","))
}

/// Checks the key the host offered during the handshake against `known_hosts`.
pub(crate) fn check_known_hosts(
    session: &Session,
    name: &str,
    host: &str,
    port: u16,
    path: &Path,
) -> Result<(), TransportError> {
    let (blob, key_type) = offered(session, name)?;
    let known_name = known_name(host, port);
    let listed = entries(session, path, &known_name, &blob);
    if listed.iter().any(|e| e.matches) {
        return Ok(());
    }
    let shown = path.display().to_string();
    let offered_fp = fingerprint(&blob);
    // Prefer the entry of the same key type: that one is the key that changed.
    let Some(old) = listed
        .iter()
        .find(|e| e.key_type == key_type)
        .or_else(|| listed.first())
    else {
        return Err(TransportError::UnknownHostKey {
            host: name.to_owned(),
            key_type,
            fingerprint: offered_fp,
            known_hosts: shown,
            keyscan: keyscan_command(host, port, path),
            known_name,
        });
    };
    Err(TransportError::HostKeyChanged {
        host: name.to_owned(),
        known_hosts: shown,
        known_name,
        line: old.number,
        expected_type: old.key_type.clone(),
        expected: fingerprint(&old.blob),
        key_type,
        offered: offered_fp,
    })
}

/// Checks the key the host offered during the handshake against a pinned `SHA256:` fingerprint.
pub(crate) fn check_pinned(
    session: &Session,
    name: &str,
    pinned: &str,
) -> Result<(), TransportError> {
    let (blob, key_type) = offered(session, name)?;
    let offered = fingerprint(&blob);
    if normalize(pinned) == normalize(&offered) {
        Ok(())
    } else {
        Err(TransportError::PinnedKeyMismatch {
            host: name.to_owned(),
            pinned: pinned.trim().to_owned(),
            key_type,
            offered,
        })
    }
}

/// A fingerprint without its `SHA256:` prefix and base64 padding, for comparison.
fn normalize(fp: &str) -> &str {
    let fp = fp.trim();
    fp.strip_prefix("SHA256:")
        .unwrap_or(fp)
        .trim_end_matches('=')
}

fn offered(session: &Session, name: &str) -> Result<(Vec<u8>, String), TransportError> {
    let (blob, _) = session.host_key().ok_or_else(|| TransportError::Ssh {
        host: name.to_owned(),
        step: "reading the host key".to_owned(),
        reason: "the server sent no host key".to_owned(),
    })?;
    Ok((blob.to_vec(), blob_key_type(blob)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_ssh_keygen_format() {
        // The SHA-256 of empty input, base64 without its trailing `=`.
        assert_eq!(
            fingerprint(b""),
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn key_type_is_read_from_the_blob() {
        let mut blob = vec![0, 0, 0, 11];
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&[0, 0, 0, 32]);
        assert_eq!(blob_key_type(&blob), "ssh-ed25519");
        assert_eq!(blob_key_type(&[0, 0]), "unknown");
    }

    #[test]
    fn names_follow_openssh() {
        assert_eq!(known_name("10.0.0.5", 22), "10.0.0.5");
        assert_eq!(known_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
    }

    #[test]
    fn keyscan_command_has_port_and_path() {
        assert_eq!(
            keyscan_command("127.0.0.1", 2222, Path::new("/root/.ssh/known_hosts")),
            "ssh-keyscan -p 2222 127.0.0.1 >> /root/.ssh/known_hosts"
        );
        assert_eq!(
            keyscan_command("h", 22, Path::new("/tmp/my hosts")),
            "ssh-keyscan h >> '/tmp/my hosts'"
        );
    }

    #[test]
    fn pins_compare_without_prefix_or_padding() {
        assert_eq!(normalize(" SHA256:abc= "), "abc");
        assert_eq!(normalize("abc"), "abc");
    }
}
