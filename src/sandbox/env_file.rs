//! The files `up` leaves for clients: `sandbox.env` (ports), `secrets.env` (0600) and `known_hosts`.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::error::SandboxError;

/// Writes `contents` to `path` through a temporary file and a rename, with `mode`.
pub(crate) fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<(), SandboxError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(SandboxError::io(&tmp))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(SandboxError::io(&tmp))?;
    fs::rename(&tmp, path).map_err(SandboxError::io(path))
}

/// The `sandbox.env` text: `SANDBOX_SSH_PORT`, `SANDBOX_HTTP_PORT`, `SANDBOX_HTTPS_PORT`, `SANDBOX_PORT_<inner>`.
pub(crate) fn ports_env(
    ssh: u16,
    http: u16,
    https: u16,
    extra: &std::collections::BTreeMap<u16, u16>,
) -> String {
    let mut text =
        format!("SANDBOX_SSH_PORT={ssh}\nSANDBOX_HTTP_PORT={http}\nSANDBOX_HTTPS_PORT={https}\n");
    for (inner, outer) in extra {
        let _ = writeln!(text, "SANDBOX_PORT_{inner}={outer}");
    }
    text
}

/// Writes `secrets.env` with a fresh `POSTGRES_PASSWORD` and `ADMIN_TOKEN` unless it exists already.
pub(crate) fn ensure_secrets(path: &Path) -> Result<(), SandboxError> {
    if path.exists() {
        return Ok(());
    }
    let text = format!(
        "POSTGRES_PASSWORD={}\nADMIN_TOKEN={}\n",
        random_token()?,
        random_token()?
    );
    write_atomic(path, &text, 0o600)
}

/// 32 random bytes as 64 lowercase hex digits.
pub(crate) fn random_token() -> Result<String, SandboxError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SandboxError::Io {
        path: "random source".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ports_env_lists_extras_in_order() {
        let extra = BTreeMap::from([(8080, 40003), (5432, 40002)]);
        assert_eq!(
            ports_env(40000, 40001, 40004, &extra),
            "SANDBOX_SSH_PORT=40000\nSANDBOX_HTTP_PORT=40001\nSANDBOX_HTTPS_PORT=40004\n\
             SANDBOX_PORT_5432=40002\nSANDBOX_PORT_8080=40003\n"
        );
    }

    #[test]
    fn secrets_are_random_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.env");
        ensure_secrets(&path).unwrap();
        let first = fs::read_to_string(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let values: Vec<&str> = first
            .lines()
            .map(|l| l.split_once('=').unwrap().1)
            .collect();
        assert_eq!(values.len(), 2);
        assert!(values.iter().all(|v| v.len() >= 32));
        assert_ne!(values[0], values[1]);
        ensure_secrets(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), first);
    }
}
