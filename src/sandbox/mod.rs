//! A disposable local test host: a container running sshd and its own Docker engine.
//!
//! `up` builds (once) a base image and the host image on the local engine, starts a container named after the
//! sandbox with 22, 80, 443 and any extra ports published on 127.0.0.1, and leaves in its directory what a client
//! needs: `id_ed25519` (root's key), `known_hosts` (the pinned host key), `sandbox.env` (ports) and
//! `secrets.env` (generated once). Inside, `sandbox-dockerd start|stop|restart` controls the inner engine.

mod base_image;
mod cluster;
mod container;
mod env_file;
mod error;
mod host_image;
mod image_build;
mod keys;
mod readiness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use base_image::{LOCAL_BASE_REPO, MIRROR_ENV, UPSTREAM_BASE, ensure_base_image};
pub use cluster::{
    CLUSTER_LABEL, Cluster, ClusterNode, ClusterOptions, MAX_NODES, down_cluster, network_name,
    node_name, up_cluster,
};
pub use container::SANDBOX_LABEL;
pub use error::SandboxError;
pub use host_image::{
    BARE_IMAGE_REPO, Flavor, HOST_IMAGE_REPO, ensure_host_image, host_image_name,
};
pub use image_build::{BuildContext, build_image, connect, image_exists};

use container::{BASE_PORTS, KEYS_LABEL};
use keys::Keys;

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOptions {
    /// The container's name, e.g. [`default_name`] of the stack.
    pub name: String,
    /// Where keys, `known_hosts`, `sandbox.env` and `secrets.env` go (e.g. `.vldeploy/sandbox/`).
    pub dir: PathBuf,
    /// Inner ports to publish on 127.0.0.1 besides 22, 80 and 443 (e.g. 5432, 8080).
    pub extra_ports: Vec<u16>,
    /// A full host, or a bare one like a freshly rented server.
    pub flavor: Flavor,
}

/// A running sandbox host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub name: String,
    pub container_id: String,
    pub dir: PathBuf,
    /// `ssh -p ssh_port root@127.0.0.1` with `dir/id_ed25519` and `dir/known_hosts`.
    pub ssh_port: u16,
    pub http_port: u16,
    pub https_port: u16,
    /// Inner port → 127.0.0.1 port, for the extra ports.
    pub extra_ports: BTreeMap<u16, u16>,
    pub flavor: Flavor,
}

impl Sandbox {
    /// Root's private key for SSH.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The `known_hosts` file that pins the host key for `[127.0.0.1]:ssh_port`.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// `sandbox.env`: the published ports.
    pub fn env_path(&self) -> PathBuf {
        self.dir.join("sandbox.env")
    }

    /// `secrets.env`: `POSTGRES_PASSWORD` and `ADMIN_TOKEN`, mode 0600.
    pub fn secrets_path(&self) -> PathBuf {
        self.dir.join("secrets.env")
    }
}

/// The sandbox name for a stack: `vldeploy-sandbox-<stack>`, with characters docker refuses replaced by `-`.
pub fn default_name(stack_name: &str) -> String {
    let stack: String = stack_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("vldeploy-sandbox-{stack}")
}

fn validate_name(name: &str) -> Result<(), SandboxError> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SandboxError::InvalidName(name.to_owned()))
    }
}

/// Starts the sandbox host (building its images the first time) and waits until SSH and the inner engine answer.
/// Idempotent: a running sandbox with the same keys and ports is returned as it is; a stopped one is started.
pub async fn up(opts: &SandboxOptions) -> Result<Sandbox, SandboxError> {
    let docker = connect().await?;
    let (sandbox, keys) = start(&docker, opts, None).await?;
    // Ports exist as soon as the container runs: write the files first so a failed wait can still be debugged.
    write_files(&sandbox, &keys)?;
    readiness::wait(&docker, &sandbox).await?;
    Ok(sandbox)
}

/// Creates (or finds, or starts) the container of one sandbox host, joined to `network` when given, and
/// describes it; writes no files and does not wait for it.
pub(crate) async fn start(
    docker: &crate::engine::Engine,
    opts: &SandboxOptions,
    network: Option<&str>,
) -> Result<(Sandbox, Keys), SandboxError> {
    validate_name(&opts.name)?;
    let name = opts.name.as_str();
    let docker = docker.clone();
    let keys = Keys::ensure(&opts.dir).await?;
    let mut ports: Vec<u16> = BASE_PORTS
        .iter()
        .chain(&opts.extra_ports)
        .copied()
        .collect();
    ports.sort_unstable();
    ports.dedup();

    let existing = container::inspect(&docker, name).await?;
    let reusable = match &existing {
        None => false,
        Some(c) => {
            if container::label(c, container::SANDBOX_LABEL) != Some(name) {
                return Err(SandboxError::NotASandbox(name.to_owned()));
            }
            let same_keys = container::label(c, KEYS_LABEL) == Some(keys.fingerprint().as_str());
            let published = container::published_ports(c);
            let has_ports = ports.iter().all(|p| published.contains(p));
            let same_flavor = container::flavor(c) == opts.flavor;
            let on_network = network.is_none_or(|n| c.networks.contains_key(n));
            if !on_network {
                crate::output::Output::global().note(format!(
                    "sandbox {name}: it is not on the cluster's network; recreating it"
                ));
            } else if !same_flavor {
                crate::output::Output::global().note(format!(
                    "sandbox {name}: it is a {} host and a {} one was asked for; recreating it",
                    container::flavor(c).label(),
                    opts.flavor.label()
                ));
            } else if !same_keys {
                crate::output::Output::global().note(format!(
                    "sandbox {name}: its keys changed in {}; recreating it",
                    opts.dir.display()
                ));
            } else if !has_ports {
                crate::output::Output::global().note(format!(
                    "sandbox {name}: it lacks some of the requested ports; recreating it"
                ));
            }
            on_network && same_flavor && same_keys && has_ports
        }
    };
    if existing.is_some() && !reusable {
        container::remove(&docker, name).await?;
    }

    let container_id = if let Some(c) = existing.filter(|_| reusable) {
        let id = if c.id.is_empty() {
            name.to_owned()
        } else {
            c.id.clone()
        };
        if !container::is_running(&c) {
            crate::output::Output::global()
                .note(format!("sandbox {name}: starting the stopped container"));
            docker.start(&id).await?;
        }
        id
    } else {
        let base = Box::pin(ensure_base_image(&docker)).await?;
        let image = Box::pin(ensure_host_image(&docker, &base, opts.flavor)).await?;
        let id =
            container::create(&docker, name, &image, &keys, &ports, opts.flavor, network).await?;
        docker.start(&id).await?;
        id
    };

    let sandbox = describe(&docker, name, &opts.dir).await?;
    Ok((
        Sandbox {
            container_id,
            ..sandbox
        },
        keys,
    ))
}

/// Removes the sandbox container and its volume (the inner engine's data). Fine when there is none.
/// Keeps the keys and `secrets.env` in `dir`; removes `sandbox.env` and `known_hosts`, which described it.
pub async fn down(name: &str, dir: &Path) -> Result<(), SandboxError> {
    validate_name(name)?;
    let docker = connect().await?;
    container::remove(&docker, name).await?;
    for file in ["sandbox.env", "known_hosts"] {
        let path = dir.join(file);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SandboxError::Io { path, source: e }),
        }
    }
    Ok(())
}

/// The running sandbox called `name`, or `None` when there is none or it is stopped.
pub async fn status(name: &str, dir: &Path) -> Result<Option<Sandbox>, SandboxError> {
    validate_name(name)?;
    let docker = connect().await?;
    match container::inspect(&docker, name).await? {
        Some(c) if container::label(&c, container::SANDBOX_LABEL) != Some(name) => {
            Err(SandboxError::NotASandbox(name.to_owned()))
        }
        Some(c) if container::is_running(&c) => describe(&docker, name, dir).await.map(Some),
        _ => Ok(None),
    }
}

/// Reads the running container's id and published ports.
async fn describe(
    docker: &crate::engine::Engine,
    name: &str,
    dir: &Path,
) -> Result<Sandbox, SandboxError> {
    let c = container::inspect(docker, name)
        .await?
        .ok_or_else(|| SandboxError::Exited {
            name: name.to_owned(),
            details: String::new(),
        })?;
    if !container::is_running(&c) {
        let details = container::diagnostics(docker, name, 30).await;
        return Err(SandboxError::Exited {
            name: name.to_owned(),
            details,
        });
    }
    let published = container::published_ports(&c);
    let mut all = container::host_ports(&c, name, &published)?;
    let missing = |port| SandboxError::MissingPort {
        name: name.to_owned(),
        port,
    };
    let ssh_port = all.remove(&22).ok_or_else(|| missing(22))?;
    let http_port = all.remove(&80).ok_or_else(|| missing(80))?;
    let tls_port = all.remove(&443).ok_or_else(|| missing(443))?;
    let flavor = container::flavor(&c);
    Ok(Sandbox {
        name: name.to_owned(),
        container_id: c.id,
        dir: dir.to_path_buf(),
        ssh_port,
        http_port,
        https_port: tls_port,
        extra_ports: all,
        flavor,
    })
}

fn write_files(sandbox: &Sandbox, keys: &Keys) -> Result<(), SandboxError> {
    env_file::write_atomic(
        &sandbox.known_hosts_path(),
        &keys.known_hosts_line(sandbox.ssh_port),
        0o600,
    )?;
    env_file::write_atomic(
        &sandbox.env_path(),
        &env_file::ports_env(
            sandbox.ssh_port,
            sandbox.http_port,
            sandbox.https_port,
            &sandbox.extra_ports,
        ),
        0o600,
    )?;
    env_file::ensure_secrets(&sandbox.secrets_path())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_name_is_a_valid_container_name() {
        assert_eq!(default_name("shop"), "vldeploy-sandbox-shop");
        assert_eq!(default_name("My Shop/2"), "vldeploy-sandbox-my-shop-2");
        assert!(validate_name(&default_name("My Shop/2")).is_ok());
    }

    #[test]
    fn names_docker_would_refuse_are_rejected() {
        for bad in ["", "-x", "a b", "UPPER", &"x".repeat(64)] {
            assert!(
                matches!(validate_name(bad), Err(SandboxError::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(validate_name("vldeploy-sandbox-a.b_c").is_ok());
    }
}
