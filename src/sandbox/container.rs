//! The sandbox host's container on the local engine: create, inject keys, read ports, exec, logs, remove.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::error::{SandboxError, is_not_found, tail_block};
use super::host_image::Flavor;
use super::keys::Keys;

/// The label every sandbox container and volume carries, with the sandbox name as its value.
pub const SANDBOX_LABEL: &str = "vldeploy.sandbox";

/// The label with the fingerprint of the keys the container was made with.
pub(crate) const KEYS_LABEL: &str = "vldeploy.sandbox.keys";

/// The label with the sandbox's flavor (`full` or `bare`).
pub(crate) const FLAVOR_LABEL: &str = "vldeploy.sandbox.flavor";

/// The flavor a sandbox container was made as (containers from before the label are full hosts).
pub(crate) fn flavor(c: &ContainerInspectResponse) -> Flavor {
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

/// The container definition: what `docker run` flags the sandbox host needs (see TESTING.md).
pub(crate) fn create_body(
    name: &str,
    image: &str,
    keys_fingerprint: &str,
    ports: &[u16],
    flavor: Flavor,
) -> ContainerCreateBody {
    let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = ports
        .iter()
        .map(|p| {
            (
                format!("{p}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(String::new()),
                }]),
            )
        })
        .collect();
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
    let hostname: String = name.chars().take(63).collect();
    ContainerCreateBody {
        image: Some(image.to_owned()),
        hostname: Some(hostname),
        labels: Some(labels),
        exposed_ports: Some(ports.iter().map(|p| format!("{p}/tcp")).collect()),
        stop_timeout: Some(40),
        host_config: Some(HostConfig {
            port_bindings: Some(port_bindings),
            cap_add: Some(vec!["ALL".to_owned()]),
            cap_drop: Some(vec!["SYS_RESOURCE".to_owned()]),
            security_opt: Some(vec![
                "seccomp=unconfined".to_owned(),
                "apparmor=unconfined".to_owned(),
            ]),
            device_cgroup_rules: Some(vec!["a *:* rwm".to_owned()]),
            binds: Some(vec![
                "/sys/fs/cgroup:/sys/fs/cgroup:rw".to_owned(),
                format!("{}:/var/lib/docker", volume_name(name)),
            ]),
            tmpfs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates the container (not started) and copies the host key and root's `authorized_keys` into it.
pub(crate) async fn create(
    docker: &Docker,
    name: &str,
    image: &str,
    keys: &Keys,
    ports: &[u16],
    flavor: Flavor,
) -> Result<String, SandboxError> {
    let volume = volume_name(name);
    let labels = HashMap::from([(SANDBOX_LABEL.to_owned(), name.to_owned())]);
    docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(volume.clone()),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .map_err(SandboxError::docker(format!("create of volume `{volume}`")))?;
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    let created = docker
        .create_container(
            Some(options),
            create_body(name, image, &keys.fingerprint(), ports, flavor),
        )
        .await
        .map_err(SandboxError::docker(format!(
            "create of container `{name}`"
        )))?;
    let archive = key_archive(keys)?;
    let upload = UploadToContainerOptionsBuilder::default().path("/").build();
    docker
        .upload_to_container(
            &created.id,
            Some(upload),
            bollard::body_full(archive.into()),
        )
        .await
        .map_err(SandboxError::docker(format!("copy of keys into `{name}`")))?;
    Ok(created.id)
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
    docker: &Docker,
    name: &str,
) -> Result<Option<ContainerInspectResponse>, SandboxError> {
    match docker.inspect_container(name, None).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(SandboxError::docker(format!(
            "inspect of container `{name}`"
        ))(e)),
    }
}

pub(crate) fn is_running(c: &ContainerInspectResponse) -> bool {
    c.state.as_ref().and_then(|s| s.running).unwrap_or(false)
}

pub(crate) fn label<'a>(c: &'a ContainerInspectResponse, key: &str) -> Option<&'a str> {
    c.config
        .as_ref()
        .and_then(|cfg| cfg.labels.as_ref())
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// The inner ports the container publishes (whether or not it runs).
pub(crate) fn published_ports(c: &ContainerInspectResponse) -> Vec<u16> {
    let mut ports: Vec<u16> = c
        .host_config
        .as_ref()
        .and_then(|h| h.port_bindings.as_ref())
        .map(|m| {
            m.keys()
                .filter_map(|k| k.strip_suffix("/tcp").and_then(|p| p.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    ports.sort_unstable();
    ports
}

/// The 127.0.0.1 port the running container's inner `port` is reachable on.
pub(crate) fn host_port(c: &ContainerInspectResponse, port: u16) -> Option<u16> {
    c.network_settings
        .as_ref()?
        .ports
        .as_ref()?
        .get(&format!("{port}/tcp"))?
        .as_ref()?
        .iter()
        .filter(|b| b.host_ip.as_deref().is_none_or(|ip| ip == "127.0.0.1"))
        .find_map(|b| b.host_port.as_deref()?.parse().ok())
}

/// Host ports for every inner port in `ports`.
pub(crate) fn host_ports(
    c: &ContainerInspectResponse,
    name: &str,
    ports: &[u16],
) -> Result<BTreeMap<u16, u16>, SandboxError> {
    ports
        .iter()
        .map(|&p| {
            host_port(c, p)
                .map(|h| (p, h))
                .ok_or_else(|| SandboxError::MissingPort {
                    name: name.to_owned(),
                    port: p,
                })
        })
        .collect()
}

/// Runs `cmd` in the container; returns its exit code and its combined output.
pub(crate) async fn exec(
    docker: &Docker,
    container: &str,
    cmd: &[&str],
) -> Result<(i64, String), SandboxError> {
    let action = || format!("exec of `{}` in `{container}`", cmd.join(" "));
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(SandboxError::docker(action()))?;
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, None)
        .await
        .map_err(SandboxError::docker(action()))?
    {
        while let Some(chunk) = output.next().await {
            let chunk = chunk.map_err(SandboxError::docker(action()))?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
    }
    let inspected = docker
        .inspect_exec(&created.id)
        .await
        .map_err(SandboxError::docker(action()))?;
    Ok((inspected.exit_code.unwrap_or(-1), text))
}

/// The last `lines` lines of the container's log and of the inner `/var/log/dockerd.log`, for error messages.
pub(crate) async fn diagnostics(docker: &Docker, container: &str, lines: usize) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut log = String::new();
    let mut stream = docker.logs(container, Some(options));
    while let Some(Ok(chunk)) = stream.next().await {
        log.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
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
pub(crate) async fn remove(docker: &Docker, name: &str) -> Result<(), SandboxError> {
    if let Some(c) = inspect(docker, name).await? {
        if label(&c, SANDBOX_LABEL) != Some(name) {
            return Err(SandboxError::NotASandbox(name.to_owned()));
        }
        if is_running(&c) {
            let stop = StopContainerOptionsBuilder::default().t(20).build();
            match docker.stop_container(name, Some(stop)).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => tracing::debug!("stop of `{name}` failed, removing it anyway: {e}"),
            }
        }
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(name, Some(options)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(SandboxError::docker(format!(
                    "removal of container `{name}`"
                ))(e));
            }
        }
    }
    let volume = volume_name(name);
    // The engine may need a moment to release the volume of a container it just removed.
    let mut attempts = 0;
    loop {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        match docker.remove_volume(&volume, Some(options)).await {
            Ok(()) => return Ok(()),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) if attempts < 10 => {
                tracing::debug!("removal of volume `{volume}` failed, retrying: {e}");
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(SandboxError::docker(format!(
                    "removal of volume `{volume}`"
                ))(e));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn container_gets_the_flags_a_nested_engine_needs() {
        let body = create_body(
            "vldeploy-sandbox-shop",
            "img:1",
            "abc",
            &[22, 80, 443, 5432],
            Flavor::Full,
        );
        let host = body.host_config.unwrap();
        assert_eq!(host.cap_add, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.cap_drop, Some(vec!["SYS_RESOURCE".to_owned()]));
        assert_eq!(host.privileged, None);
        assert_eq!(host.device_cgroup_rules, Some(vec!["a *:* rwm".to_owned()]));
        let binds = host.binds.unwrap();
        assert!(binds.contains(&"vldeploy-sandbox-shop-docker:/var/lib/docker".to_owned()));
        let bindings = host.port_bindings.unwrap();
        assert_eq!(bindings.len(), 4);
        let b = bindings["5432/tcp"].as_ref().unwrap();
        assert_eq!(b[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(host.tmpfs, None);
        let labels = body.labels.unwrap();
        assert_eq!(labels[SANDBOX_LABEL], "vldeploy-sandbox-shop");
        assert_eq!(labels[FLAVOR_LABEL], "full");
    }

    #[test]
    fn a_bare_host_boots_systemd_on_tmpfs_runtime_dirs() {
        let body = create_body("vldeploy-sandbox-shop", "img:1", "abc", &[22], Flavor::Bare);
        let tmpfs = body.host_config.unwrap().tmpfs.unwrap();
        assert!(
            tmpfs.contains_key("/run") && tmpfs.contains_key("/run/lock"),
            "{tmpfs:?}"
        );
        assert_eq!(body.labels.unwrap()[FLAVOR_LABEL], "bare");
    }
}
