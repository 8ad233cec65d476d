//! The SSH keys of a sandbox: a client key for root and a host key made outside the container and pinned.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};

use super::error::{SandboxError, tail_block};

/// The key files of one sandbox directory.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) client_public: String,
    pub(crate) host_key: Vec<u8>,
    pub(crate) host_public: String,
}

impl Keys {
    /// Loads the keys in `dir`, generating any that are missing (`id_ed25519`, `host/ssh_host_ed25519_key`).
    pub(crate) async fn ensure(dir: &Path) -> Result<Self, SandboxError> {
        make_private_dir(dir)?;
        make_private_dir(&dir.join("host"))?;
        let client_key = dir.join("id_ed25519");
        let host_key = dir.join("host").join("ssh_host_ed25519_key");
        generate_if_missing(&client_key, "vldeploy-sandbox-client").await?;
        generate_if_missing(&host_key, "vldeploy-sandbox-host").await?;
        let client_public = read_public(&client_key)?;
        let host_public = read_public(&host_key)?;
        let host_key_bytes = fs::read(&host_key).map_err(SandboxError::io(&host_key))?;
        Ok(Self {
            client_public,
            host_key: host_key_bytes,
            host_public,
        })
    }

    /// Identifies this pair of public keys; stored as a container label to notice a changed directory.
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.client_public.as_bytes());
        h.update([0]);
        h.update(self.host_public.as_bytes());
        hex::encode(h.finalize())[..16].to_owned()
    }

    /// The `known_hosts` line for the host key served on `127.0.0.1:port`.
    pub(crate) fn known_hosts_line(&self, port: u16) -> String {
        let mut fields = self.host_public.split_whitespace();
        let kind = fields.next().unwrap_or("ssh-ed25519");
        let key = fields.next().unwrap_or_default();
        format!("[127.0.0.1]:{port} {kind} {key}\n")
    }
}

/// Creates `dir` (and parents) and makes it 0700.
pub(crate) fn make_private_dir(dir: &Path) -> Result<(), SandboxError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(SandboxError::io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(SandboxError::io(dir))
}

fn public_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

fn read_public(key: &Path) -> Result<String, SandboxError> {
    let path = public_path(key);
    let text = fs::read_to_string(&path).map_err(SandboxError::io(&path))?;
    Ok(text.trim().to_owned())
}

async fn generate_if_missing(key: &Path, comment: &str) -> Result<(), SandboxError> {
    let public = public_path(key);
    if key.exists() && public.exists() {
        return Ok(());
    }
    for p in [key, public.as_path()] {
        if p.exists() {
            fs::remove_file(p).map_err(SandboxError::io(p))?;
        }
    }
    let output = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(key)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| SandboxError::Spawn {
            program: "ssh-keygen".to_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(SandboxError::Command {
            command: format!("ssh-keygen -t ed25519 -f {}", key.display()),
            status: output.status.to_string(),
            tail: tail_block(&String::from_utf8_lossy(&output.stderr), 10),
        });
    }
    for p in [key, public.as_path()] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o600)).map_err(SandboxError::io(p))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_line_pins_the_port() {
        let keys = Keys {
            client_public: "ssh-ed25519 AAAAclient c".into(),
            host_key: Vec::new(),
            host_public: "ssh-ed25519 AAAAhost vldeploy-sandbox-host".into(),
        };
        assert_eq!(
            keys.known_hosts_line(40022),
            "[127.0.0.1]:40022 ssh-ed25519 AAAAhost\n"
        );
    }
}
