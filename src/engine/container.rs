//! Containers: created from a `ContainerSpec`, labelled with their configuration, started, health-gated, removed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount as DockerMount,
    MountType, NetworkConnectRequest, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};

use super::{Engine, EngineError, is_not_found, label_filter, removal_in_progress};
use crate::plan::{ContainerSpec, MountSource, ObservedContainer};

pub const STACK_LABEL: &str = "vldeploy.stack";
pub const SERVICE_LABEL: &str = "vldeploy.service";
pub const CONFIG_HASH_LABEL: &str = "vldeploy.config-hash";
const ASPECT_LABEL_PREFIX: &str = "vldeploy.hash.";
const ENV_HASHES_LABEL: &str = "vldeploy.env-hashes";
/// The id of the host key that secret values were hashed with.
const HASH_KEY_LABEL: &str = "vldeploy.hash-key";

impl Engine {
    /// Containers (running or not) labelled with this stack.
    pub async fn stack_containers(
        &self,
        stack: &str,
    ) -> Result<Vec<ObservedContainer>, EngineError> {
        let filters = label_filter(stack);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(self.fail("listing containers"))?;
        let mut out = Vec::new();
        for c in list {
            let name = c
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string());
            let Some(name) = name else { continue };
            let labels: BTreeMap<String, String> =
                c.labels.unwrap_or_default().into_iter().collect();
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            let health = c.status.as_deref().and_then(health_from_status);
            let networks: Vec<String> = c
                .network_settings
                .and_then(|n| n.networks)
                .map(|n| n.into_keys().collect())
                .unwrap_or_default();
            let mut observed = observed_from(
                c.id.unwrap_or_default(),
                name,
                &labels,
                c.image_id.unwrap_or_default(),
                state,
                health,
            );
            observed.networks = networks;
            out.push(observed);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates (not starts) a container for `spec`, joined to all its networks.
    pub async fn create_container(
        &self,
        stack: &str,
        spec: &ContainerSpec,
    ) -> Result<String, EngineError> {
        let networks = network_aliases(spec);
        for (net, _) in &networks {
            self.settle_network(net).await?;
        }
        let mut networks = networks.iter();
        let first = networks.next();
        let opts = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let created = self
            .docker
            .create_container(Some(opts), create_body(stack, spec, first))
            .await
            .map_err(self.fail(format!("creating container `{}`", spec.name)))?;
        for (net, aliases) in networks {
            self.join_network(&created.id, &spec.name, net, aliases)
                .await?;
        }
        Ok(created.id)
    }

    /// Joins a container (created or running) to one more network under `aliases`; Docker's DNS answers for
    /// them at once.
    pub async fn join_network(
        &self,
        id: &str,
        name: &str,
        net: &str,
        aliases: &[String],
    ) -> Result<(), EngineError> {
        let req = NetworkConnectRequest {
            container: id.to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases.to_vec()),
                ..Default::default()
            }),
        };
        self.docker
            .connect_network(net, req)
            .await
            .map_err(self.fail(format!("joining `{name}` to network `{net}`")))
    }

    /// Whether a container exists, whether it runs, and the configuration hash it was created with.
    pub async fn container_state(&self, name: &str) -> Result<Option<ContainerState>, EngineError> {
        match self
            .docker
            .inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Ok(info) => Ok(Some(ContainerState {
                running: info.state.and_then(|s| s.running).unwrap_or(false),
                image: info.image,
                config_hash: info
                    .config
                    .and_then(|c| c.labels)
                    .and_then(|l| l.get(CONFIG_HASH_LABEL).cloned()),
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(format!("inspecting `{name}`"))(e)),
        }
    }

    pub async fn start(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .start_container(
                name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(self.fail(format!("starting `{name}`")))
    }

    /// Stops gracefully (the image's stop signal, then SIGKILL after `grace`), ignoring a missing container.
    pub async fn stop(&self, name: &str, grace: Duration) -> Result<(), EngineError> {
        let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let opts = StopContainerOptionsBuilder::new().t(secs).build();
        match self.docker.stop_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(self.fail(format!("stopping `{name}`"))(e)),
        }
    }

    /// Removes a container (stopping it first if needed); a missing one is not an error.
    pub async fn remove(&self, name: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        self.remove_with(name, opts).await
    }

    /// Removes a container with `opts`: a missing one is not an error, and one that someone else is removing
    /// already (a second `sandbox down`, a `--rm` container's own end) is waited for instead of failed on.
    async fn remove_with(
        &self,
        name: &str,
        opts: bollard::query_parameters::RemoveContainerOptions,
    ) -> Result<(), EngineError> {
        match self.docker.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) if removal_in_progress(&e) => {
                match self.gone_within(name, Duration::from_secs(30)).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(self
                        .fail(format!("removing `{name}` (still being removed after 30s)"))(
                        e
                    )),
                    Err(e) => Err(self.fail(format!("removing `{name}`"))(e)),
                }
            }
            Err(e) => Err(self.fail(format!("removing `{name}`"))(e)),
        }
    }

    /// Whether no container is named `name` within `limit` (its removal already under way elsewhere).
    async fn gone_within(
        &self,
        name: &str,
        limit: Duration,
    ) -> Result<bool, bollard::errors::Error> {
        let started = Instant::now();
        loop {
            match self.docker.inspect_container(name, None).await {
                Err(e) if is_not_found(&e) => return Ok(true),
                Err(e) => return Err(e),
                Ok(_) if started.elapsed() >= limit => return Ok(false),
                Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Renames a container.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), EngineError> {
        let opts = RenameContainerOptionsBuilder::new().name(to).build();
        self.docker
            .rename_container(from, opts)
            .await
            .map_err(self.fail(format!("renaming `{from}` to `{to}`")))
    }

    /// Restarts a container: a graceful stop (SIGKILL after `grace`), then a start.
    pub async fn restart(&self, name: &str, grace: Duration) -> Result<(), EngineError> {
        let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let opts = RestartContainerOptionsBuilder::new().t(secs).build();
        self.docker
            .restart_container(name, Some(opts))
            .await
            .map_err(self.fail(format!("restarting `{name}`")))
    }

    /// Removes a container (stopping it first if needed) with its anonymous volumes; a missing one is fine.
    pub async fn remove_with_volumes(&self, name: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        self.remove_with(name, opts).await
    }

    /// Unpacks a tar archive into a container's filesystem at `path`.
    pub async fn upload_archive(
        &self,
        container: &str,
        path: &str,
        archive: Vec<u8>,
    ) -> Result<(), EngineError> {
        let opts = UploadToContainerOptionsBuilder::new().path(path).build();
        self.docker
            .upload_to_container(container, Some(opts), bollard::body_full(archive.into()))
            .await
            .map_err(self.fail(format!("copying files into `{container}`")))
    }

    /// Waits until the container reports healthy (or, without a health check, is running).
    /// On failure the error carries the check and the container's last log lines.
    pub async fn wait_healthy(
        &self,
        name: &str,
        check: &str,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        self.wait_healthy_probing(name, check, None, timeout).await
    }

    /// Like [`Engine::wait_healthy`]; while Docker still says `starting`, `probe` (the container's own check,
    /// with its time limit) is also run every [`PROBE_EVERY`], so a container that answers is taken as
    /// healthy at once instead of at Docker's next interval. Docker's check stays for steady state.
    async fn wait_healthy_probing(
        &self,
        name: &str,
        check: &str,
        probe: Option<(&[String], Duration)>,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        let start = Instant::now();
        let mut last = String::from("unknown");
        loop {
            let info = self
                .docker
                .inspect_container(
                    name,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await;
            match info {
                Ok(info) => {
                    let state = info.state.unwrap_or_default();
                    let running = state.running.unwrap_or(false);
                    let health = state.health.and_then(|h| h.status).map(|s| s.to_string());
                    match health.as_deref() {
                        Some("healthy") => return Ok(()),
                        None | Some("" | "none") if running => return Ok(()),
                        Some("starting") if running => {
                            last = "starting".to_string();
                            if let Some((argv, limit)) = probe
                                && self.probe_passes(name, argv, limit).await
                            {
                                tracing::debug!(
                                    container = name,
                                    elapsed_ms = u64::try_from(start.elapsed().as_millis())
                                        .unwrap_or(u64::MAX),
                                    "its own check passed before Docker's next interval"
                                );
                                return Ok(());
                            }
                        }
                        Some(h) => last = h.to_string(),
                        None => {}
                    }
                    if !running && !state.restarting.unwrap_or(false) {
                        last = format!("exited with code {}", state.exit_code.unwrap_or(-1));
                        if start.elapsed() > Duration::from_secs(2) {
                            return Err(self.unhealthy(name, &last, check, start).await);
                        }
                    }
                }
                Err(e) if is_not_found(&e) => last = "missing".into(),
                Err(e) => return Err(self.fail(format!("inspecting `{name}`"))(e)),
            }
            if start.elapsed() > timeout {
                return Err(self.unhealthy(name, &last, check, start).await);
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }

    /// Whether the check `argv` exits 0 inside `name` within `limit`.
    async fn probe_passes(&self, name: &str, argv: &[String], limit: Duration) -> bool {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        matches!(
            tokio::time::timeout(limit, self.exec(name, &argv)).await,
            Ok(Ok((0, _)))
        )
    }

    /// Waits for `name` to be healthy within the budget of `spec`'s health check (interval and timeout times
    /// retries, plus a margin), or 30 s of running when it has none.
    pub async fn wait_for_spec(&self, name: &str, spec: &ContainerSpec) -> Result<(), EngineError> {
        let (timeout, check) = match &spec.health {
            Some(h) => (
                Duration::from_millis(
                    (h.interval_ms + h.timeout_ms) * u64::from(h.retries.max(1)) + 10_000,
                ),
                h.test.join(" "),
            ),
            None => (
                Duration::from_secs(30),
                "the container keeps running".to_string(),
            ),
        };
        let probe = spec
            .health
            .as_ref()
            .and_then(|h| probe_argv(&h.test).map(|a| (a, Duration::from_millis(h.timeout_ms))));
        self.wait_healthy_probing(
            name,
            &check,
            probe.as_ref().map(|(a, d)| (a.as_slice(), *d)),
            timeout,
        )
        .await
    }

    async fn unhealthy(
        &self,
        name: &str,
        status: &str,
        check: &str,
        start: Instant,
    ) -> EngineError {
        let tail = self
            .log_tail(name, 20)
            .await
            .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
        let log_tail = tail
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        EngineError::Unhealthy {
            host: self.host.clone(),
            name: name.into(),
            status: status.into(),
            check: check.into(),
            waited_s: start.elapsed().as_secs(),
            log_tail,
        }
    }
}

/// How often a starting container's state is read and its own check run.
const PROBE_EVERY: Duration = Duration::from_millis(200);

/// The command line of a Docker health test: `["CMD", argv…]` runs as is, `["CMD-SHELL", text]` through
/// `/bin/sh -c`; `["NONE"]` (or nothing) has none.
fn probe_argv(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, command)) if kind == "CMD" && !command.is_empty() => Some(command.to_vec()),
        Some((kind, [script])) if kind == "CMD-SHELL" => {
            Some(vec!["/bin/sh".into(), "-c".into(), script.clone()])
        }
        _ => None,
    }
}

/// A container's state as a release needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    pub config_hash: Option<String>,
    /// The ID of the image it runs.
    pub image: Option<String>,
}

/// The labels a container is created with: its stack, service and the hashes of its configuration (a secret's
/// hashed with the host's key only).
fn labels(stack: &str, spec: &ContainerSpec) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = HashMap::new();
    labels.insert(STACK_LABEL.into(), stack.into());
    labels.insert(SERVICE_LABEL.into(), spec.service.clone());
    labels.insert(CONFIG_HASH_LABEL.into(), spec.config_hash());
    for (aspect, hash) in spec.aspect_hashes() {
        labels.insert(format!("{ASPECT_LABEL_PREFIX}{aspect}"), hash);
    }
    labels.insert(
        ENV_HASHES_LABEL.into(),
        serde_json::to_string(&spec.env_hashes()).unwrap_or_default(),
    );
    if let Some(key) = &spec.hash_key {
        labels.insert(HASH_KEY_LABEL.into(), key.id());
    }
    labels
}

/// The container definition for `spec`, joined at creation to `first` of its networks.
fn create_body(
    stack: &str,
    spec: &ContainerSpec,
    first: Option<(&String, &Vec<String>)>,
) -> ContainerCreateBody {
    let (exposed, bindings) = port_maps(spec);
    let networking_config = first.map(|(net, aliases)| NetworkingConfig {
        endpoints_config: Some(
            [(
                net.clone(),
                EndpointSettings {
                    aliases: Some(aliases.clone()),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
        ),
    });
    ContainerCreateBody {
        image: Some(spec.image_id.clone()),
        env: Some(env_entries(spec)),
        labels: Some(labels(stack, spec)),
        exposed_ports: if exposed.is_empty() {
            None
        } else {
            Some(exposed.keys().cloned().collect())
        },
        healthcheck: health_config(spec),
        host_config: Some(host_config(spec, bindings, first.map(|(n, _)| n.clone()))),
        networking_config,
        ..Default::default()
    }
}

/// `KEY=value` for every variable, secrets included (the engine needs their values).
fn env_entries(spec: &ContainerSpec) -> Vec<String> {
    spec.env
        .iter()
        .map(|(k, v)| format!("{k}={}", v.expose()))
        .collect()
}

type PortBindings = HashMap<String, Option<Vec<PortBinding>>>;

/// The exposed ports and their bindings on the host.
fn port_maps(spec: &ContainerSpec) -> (HashMap<String, HashMap<(), ()>>, PortBindings) {
    let mut exposed: HashMap<String, HashMap<(), ()>> = HashMap::new();
    let mut bindings: PortBindings = HashMap::new();
    for p in &spec.publish {
        let key = format!("{}/tcp", p.container_port);
        exposed.insert(key.clone(), HashMap::new());
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: Some(p.host_port.to_string()),
            });
    }
    (exposed, bindings)
}

/// Volumes and bind mounts.
fn mounts(spec: &ContainerSpec) -> Vec<DockerMount> {
    spec.mounts
        .iter()
        .map(|m| {
            let (typ, source) = match &m.source {
                MountSource::Volume(v) => (MountType::VOLUME, v.clone()),
                MountSource::HostPath(p) => (MountType::BIND, p.clone()),
            };
            DockerMount {
                target: Some(m.target.clone()),
                source: Some(source),
                typ: Some(typ),
                read_only: Some(m.read_only),
                ..Default::default()
            }
        })
        .collect()
}

/// Each network with the container's aliases on it: a release also answers to its own alias, which nginx's
/// upstream names.
fn network_aliases(spec: &ContainerSpec) -> BTreeMap<String, Vec<String>> {
    spec.networks
        .iter()
        .map(|(net, aliases)| {
            let mut all = aliases.clone();
            all.extend(spec.release_alias.iter().cloned());
            (net.clone(), all)
        })
        .collect()
}

fn health_config(spec: &ContainerSpec) -> Option<HealthConfig> {
    spec.health.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: Some(ms_to_ns(h.interval_ms)),
        timeout: Some(ms_to_ns(h.timeout_ms)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(ms_to_ns(h.interval_ms)),
        start_interval: None,
    })
}

/// Ports, mounts, the first network, restart policy, an init process and a bounded json-file log.
fn host_config(
    spec: &ContainerSpec,
    bindings: PortBindings,
    network_mode: Option<String>,
) -> HostConfig {
    let mounts = mounts(spec);
    HostConfig {
        port_bindings: if bindings.is_empty() {
            None
        } else {
            Some(bindings)
        },
        mounts: if mounts.is_empty() {
            None
        } else {
            Some(mounts)
        },
        network_mode,
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        init: Some(true),
        log_config: Some(bollard::models::HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(
                [
                    ("max-size".to_string(), "20m".to_string()),
                    ("max-file".to_string(), "5".to_string()),
                ]
                .into_iter()
                .collect(),
            ),
        }),
        ..Default::default()
    }
}

/// Builds an `ObservedContainer` from what Docker reports.
pub fn observed_from(
    id: String,
    name: String,
    labels: &BTreeMap<String, String>,
    image_id: String,
    state: String,
    health: Option<String>,
) -> ObservedContainer {
    let aspects = labels
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(ASPECT_LABEL_PREFIX)
                .map(|a| (a.to_string(), v.clone()))
        })
        .collect();
    let env_hashes = labels
        .get(ENV_HASHES_LABEL)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    ObservedContainer {
        id,
        name,
        service: labels.get(SERVICE_LABEL).cloned(),
        config_hash: labels.get(CONFIG_HASH_LABEL).cloned(),
        aspects,
        env_hashes,
        hash_key: labels.get(HASH_KEY_LABEL).cloned(),
        image_id,
        state,
        health,
        networks: Vec::new(),
    }
}

/// Docker's list gives health only inside the status text: "Up 3 minutes (healthy)".
fn health_from_status(status: &str) -> Option<String> {
    ["healthy", "unhealthy", "health: starting"]
        .iter()
        .find(|h| status.contains(&format!("({h})")))
        .map(|h| h.trim_start_matches("health: ").to_string())
}

fn ms_to_ns(ms: u64) -> i64 {
    i64::try_from(ms)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_test_is_run_as_docker_runs_it() {
        let v = |xs: &[&str]| xs.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        assert_eq!(
            probe_argv(&v(&["CMD", "vl-backend", "healthcheck"])),
            Some(v(&["vl-backend", "healthcheck"]))
        );
        assert_eq!(
            probe_argv(&v(&[
                "CMD-SHELL",
                "curl -fsS http://127.0.0.1:8080/ || exit 1"
            ])),
            Some(v(&[
                "/bin/sh",
                "-c",
                "curl -fsS http://127.0.0.1:8080/ || exit 1"
            ]))
        );
        assert_eq!(probe_argv(&v(&["NONE"])), None);
        assert_eq!(probe_argv(&v(&["CMD"])), None);
        assert_eq!(probe_argv(&[]), None);
        assert!(
            PROBE_EVERY >= Duration::from_millis(100) && PROBE_EVERY <= Duration::from_millis(250)
        );
    }

    #[test]
    fn health_is_read_from_status_text() {
        assert_eq!(
            health_from_status("Up 3 minutes (healthy)").as_deref(),
            Some("healthy")
        );
        assert_eq!(
            health_from_status("Up 1 second (health: starting)").as_deref(),
            Some("starting")
        );
        assert_eq!(
            health_from_status("Up 9 minutes (unhealthy)").as_deref(),
            Some("unhealthy")
        );
        assert_eq!(health_from_status("Exited (0) 2 hours ago"), None);
    }

    /// Every unkeyed hash a label could carry of `KEY=value`: SHA-256 hex prefixes of 8 to 64 digits.
    fn plain_hashes(text: &str) -> Vec<String> {
        use sha2::{Digest, Sha256};
        let full = hex::encode(Sha256::digest(text.as_bytes()));
        (8..=64).step_by(4).map(|n| full[..n].to_string()).collect()
    }

    #[test]
    fn labels_carry_no_unkeyed_hash_of_a_secret() {
        use crate::plan::{EnvEntry, HashKey};
        use crate::secret::Secret;
        let mut env = BTreeMap::new();
        env.insert("RUST_LOG".to_string(), EnvEntry::Plain("info".into()));
        env.insert(
            "ADMIN_TOKEN".to_string(),
            EnvEntry::Secret(Secret::new("hunter2")),
        );
        let spec = ContainerSpec {
            service: "backend".into(),
            name: "vl_backend".into(),
            image_id: "sha256:x".into(),
            image_ref: "vl/s-backend:x".into(),
            env,
            networks: BTreeMap::new(),
            mounts: vec![],
            publish: vec![],
            health: None,
            depends_on: vec![],
            release_alias: Some("backend-abc".into()),
            hash_key: Some(HashKey::from_bytes([9; 32])),
        };
        let labels = labels("shop", &spec);
        let text = format!("{labels:?}");
        // The plain variable's hash is there (so the test looks where hashes are)...
        assert!(text.contains(&plain_hashes("RUST_LOG=info")[2]), "{text}");
        // ...and nothing derived from the secret without the key.
        for needle in plain_hashes("ADMIN_TOKEN=hunter2")
            .into_iter()
            .chain(plain_hashes("hunter2"))
        {
            assert!(!text.contains(&needle), "`{needle}` in {text}");
        }
        assert!(!text.contains("hunter2"), "{text}");
        // The hashes over every variable are keyed too: the same spec without its secret's key differs.
        let mut other = spec.clone();
        other.hash_key = Some(HashKey::from_bytes([8; 32]));
        assert_ne!(
            labels["vldeploy.hash.env"],
            self::labels("shop", &other)["vldeploy.hash.env"]
        );
        assert_ne!(
            labels[CONFIG_HASH_LABEL],
            self::labels("shop", &other)[CONFIG_HASH_LABEL]
        );
        assert_eq!(labels[HASH_KEY_LABEL], HashKey::from_bytes([9; 32]).id());
    }

    #[test]
    fn labels_round_trip_into_observed() {
        let mut labels = BTreeMap::new();
        labels.insert(SERVICE_LABEL.to_string(), "backend".to_string());
        labels.insert(CONFIG_HASH_LABEL.to_string(), "abc".to_string());
        labels.insert("vldeploy.hash.env".to_string(), "e1".to_string());
        labels.insert(ENV_HASHES_LABEL.to_string(), r#"{"A":"1"}"#.to_string());
        let o = observed_from(
            "id".into(),
            "vl_backend".into(),
            &labels,
            "sha256:x".into(),
            "running".into(),
            None,
        );
        assert_eq!(o.service.as_deref(), Some("backend"));
        assert_eq!(o.config_hash.as_deref(), Some("abc"));
        assert_eq!(o.aspects.get("env").map(String::as_str), Some("e1"));
        assert_eq!(o.env_hashes.get("A").map(String::as_str), Some("1"));
    }
}
