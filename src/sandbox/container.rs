//! The sandbox host's container on the local engine: create, inject keys, read ports, exec, logs, remove.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::error::{SandboxError, tail_block};
use super::host_image::Flavor;
use super::keys::Keys;
use crate::engine::{ContainerInfo, Engine, HostContainer};

/// The label every sandbox container and volume carries, with the sandbox name as its value.
pub const SANDBOX_LABEL: &str = "vldeploy.sandbox";

/// The label with the fingerprint of the keys the container was made with.
pub(crate) const KEYS_LABEL: &str = "vldeploy.sandbox.keys";

/// The label with the sandbox's flavor (`full` or `bare`).
pub(crate) const FLAVOR_LABEL: &str = "vldeploy.sandbox.flavor";

/// The flavor a sandbox container was made as (containers from before the label are full hosts).
pub(crate) fn flavor(c: &ContainerInfo) -> Flavor {
    match label(c, FLAVOR_LABEL) {
        Some("bare") => Flavor::Bare,
        _ => Flavor::Full,
    }
}

/// The name of the volume that holds the inner engine's `/var/lib/docker`.
pub(crate) fn volume_name(name: &str) -> String {
    format!("{name}-docker")
}

/// The ports every sandbox publishes besides the extra ones.
pub(crate) const BASE_PORTS: [u16; 3] = [22, 80, 443];

/// The container definition: a host container (the flags a nested engine needs, see TESTING.md) with the
/// sandbox's labels, its ports, and a volume for the inner engine's `/var/lib/docker`.
pub(crate) fn create_body(
    name: &str,
    image: &str,
    keys_fingerprint: &str,
    ports: &[u16],
    flavor: Flavor,
) -> HostContainer {
    let labels = HashMap::from([
        (SANDBOX_LABEL.to_owned(), name.to_owned()),
        (KEYS_LABEL.to_owned(), keys_fingerprint.to_owned()),
        (FLAVOR_LABEL.to_owned(), flavor.label().to_owned()),
    ]);
    // systemd, the bare host's first process, wants its runtime directories on tmpfs.
    let tmpfs = (flavor == Flavor::Bare).then(|| {
        HashMap::from([
            (
                "/run".to_owned(),
                "rw,nosuid,nodev,exec,mode=755".to_owned(),
            ),
            ("/run/lock".to_owned(), "rw,nosuid,nodev,noexec".to_owned()),
        ])
    });
    HostContainer {
        name: name.to_owned(),
        image: image.to_owned(),
        hostname: name.chars().take(63).collect(),
        labels,
        ports: ports.to_vec(),
        binds: vec![format!("{}:/var/lib/docker", volume_name(name))],
        tmpfs,
        stop_timeout_s: 40,
        network: None,
    }
}

/// Creates the container (not started) and copies the host key and root's `authorized_keys` into it.
pub(crate) async fn create(
    docker: &Engine,
    name: &str,
    image: &str,
    keys: &Keys,
    ports: &[u16],
    flavor: Flavor,
    network: Option<&str>,
) -> Result<String, SandboxError> {
    let volume = volume_name(name);
    let labels = HashMap::from([(SANDBOX_LABEL.to_owned(), name.to_owned())]);
    docker.create_labelled_volume(&volume, labels).await?;
    let body = HostContainer {
        network: network.map(str::to_owned),
        ..create_body(name, image, &keys.fingerprint(), ports, flavor)
    };
    let id = docker.create_host_container(&body).await?;
    docker.upload_archive(&id, "/", key_archive(keys)?).await?;
    Ok(id)
}

/// A tar archive with `/etc/ssh/ssh_host_ed25519_key{,.pub}` and `/root/.ssh/authorized_keys`, owned by root.
fn key_archive(keys: &Keys) -> Result<Vec<u8>, SandboxError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o700);
    dir.set_uid(0);
    dir.set_gid(0);
    dir.set_size(0);
    builder
        .append_data(&mut dir, "root/.ssh/", std::io::empty())
        .map_err(SandboxError::io("key archive"))?;
    let authorized = format!("{}\n", keys.client_public);
    let host_public = format!("{}\n", keys.host_public);
    let files: [(&str, &[u8], u32); 3] = [
        ("root/.ssh/authorized_keys", authorized.as_bytes(), 0o600),
        ("etc/ssh/ssh_host_ed25519_key", &keys.host_key, 0o600),
        (
            "etc/ssh/ssh_host_ed25519_key.pub",
            host_public.as_bytes(),
            0o644,
        ),
    ];
    for (path, data, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(data.len() as u64);
        builder
            .append_data(&mut header, path, data)
            .map_err(SandboxError::io("key archive"))?;
    }
    builder
        .into_inner()
        .map_err(SandboxError::io("key archive"))
}

/// Inspects the container named `name`; `None` when there is none.
pub(crate) async fn inspect(
    docker: &Engine,
    name: &str,
) -> Result<Option<ContainerInfo>, SandboxError> {
    Ok(docker.inspect(name).await?)
}

pub(crate) fn is_running(c: &ContainerInfo) -> bool {
    c.running
}

pub(crate) fn label<'a>(c: &'a ContainerInfo, key: &str) -> Option<&'a str> {
    c.label(key)
}

/// The inner ports the container publishes (whether or not it runs).
pub(crate) fn published_ports(c: &ContainerInfo) -> Vec<u16> {
    c.published.clone()
}

/// Host ports for every inner port in `ports`.
pub(crate) fn host_ports(
    c: &ContainerInfo,
    name: &str,
    ports: &[u16],
) -> Result<BTreeMap<u16, u16>, SandboxError> {
    ports
        .iter()
        .map(|&p| {
            c.loopback_ports
                .get(&p)
                .map(|&h| (p, h))
                .ok_or_else(|| SandboxError::MissingPort {
                    name: name.to_owned(),
                    port: p,
                })
        })
        .collect()
}

/// Runs `cmd` in the container; returns its exit code and its combined output.
pub(crate) async fn exec(
    docker: &Engine,
    container: &str,
    cmd: &[&str],
) -> Result<(i64, String), SandboxError> {
    Ok(docker.exec(container, cmd).await?)
}

/// The last `lines` lines of the container's log and of the inner `/var/log/dockerd.log`, for error messages.
pub(crate) async fn diagnostics(docker: &Engine, container: &str, lines: usize) -> String {
    let log = docker.log_tail(container, lines).await.unwrap_or_default();
    let tail_cmd = format!("tail -n {lines} /var/log/dockerd.log");
    let dockerd = match tokio::time::timeout(
        Duration::from_secs(10),
        exec(docker, container, &["sh", "-c", &tail_cmd]),
    )
    .await
    {
        Ok(Ok((_, text))) => text,
        Ok(Err(e)) => format!("(cannot read it: {e})"),
        Err(_) => "(cannot read it: timed out)".to_owned(),
    };
    let mut out = String::from("\ncontainer log (last lines):");
    out.push_str(&or_none(tail_block(&log, lines)));
    out.push_str("\n/var/log/dockerd.log (last lines):");
    out.push_str(&or_none(tail_block(&dockerd, lines)));
    out
}

fn or_none(block: String) -> String {
    if block.is_empty() {
        "\n  | (empty)".to_owned()
    } else {
        block
    }
}

/// Stops (gracefully, briefly) and removes the container, then removes its volume; absent ones are fine.
pub(crate) async fn remove(docker: &Engine, name: &str) -> Result<(), SandboxError> {
    if let Some(c) = inspect(docker, name).await? {
        if label(&c, SANDBOX_LABEL) != Some(name) {
            return Err(SandboxError::NotASandbox(name.to_owned()));
        }
        if is_running(&c)
            && let Err(e) = docker.stop(name, Duration::from_secs(20)).await
        {
            tracing::debug!("stop of `{name}` failed, removing it anyway: {e}");
        }
        docker.remove_with_volumes(name).await?;
    }
    let volume = volume_name(name);
    // The engine may need a moment to release the volume of a container it just removed.
    let mut attempts = 0;
    loop {
        match docker.force_remove_volume(&volume).await {
            Ok(()) => return Ok(()),
            Err(e) if attempts < 10 => {
                tracing::debug!("removal of volume `{volume}` failed, retrying: {e}");
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_is_a_host_container_with_its_labels_ports_and_engine_volume() {
        let body = create_body(
            "vldeploy-sandbox-shop",
            "img:1",
            "abc",
            &[22, 80, 443, 5432],
            Flavor::Full,
        );
        assert_eq!(body.ports, vec![22, 80, 443, 5432]);
        assert_eq!(
            body.binds,
            vec!["vldeploy-sandbox-shop-docker:/var/lib/docker".to_owned()]
        );
        assert_eq!(body.tmpfs, None);
        assert_eq!(body.stop_timeout_s, 40);
        assert_eq!(body.labels[SANDBOX_LABEL], "vldeploy-sandbox-shop");
        assert_eq!(body.labels[FLAVOR_LABEL], "full");
        assert_eq!(body.labels[KEYS_LABEL], "abc");
    }

    #[test]
    fn a_bare_host_boots_systemd_on_tmpfs_runtime_dirs() {
        let body = create_body("vldeploy-sandbox-shop", "img:1", "abc", &[22], Flavor::Bare);
        let tmpfs = body.tmpfs.unwrap();
        assert!(
            tmpfs.contains_key("/run") && tmpfs.contains_key("/run/lock"),
            "{tmpfs:?}"
        );
        assert_eq!(body.labels[FLAVOR_LABEL], "bare");
    }
}
