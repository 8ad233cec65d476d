//! Docker through bollard: networks, volumes, containers, image build and transfer, exec, logs.

mod build;
mod container;
mod container_info;
mod context;
mod delivery;
mod exec;
mod host_container;
mod image;
mod image_import;
mod log;
mod service;
mod service_release;
mod swarm;

use std::collections::HashMap;

use bollard::Docker;

use crate::transport::{Link, Remote, TransportError};

pub use build::{BuildFailure, BuildInputs};
pub use container::{CONFIG_HASH_LABEL, ContainerState, SERVICE_LABEL, STACK_LABEL, observed_from};
pub use container_info::ContainerInfo;
pub use context::{BuildContext, build_context};
pub use delivery::{Delivered, Progress, deliver_images};
pub use host_container::HostContainer;
pub use image::{
    BuildRequest, Built, INPUTS_LABEL, StampRecord, build_image, images_built_from, pick_on_host,
};
pub use service::{RunningService, ServiceTask};
pub use swarm::{JoinTokens, SWARM_PORT, SwarmMembership, SwarmNode};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("docker on `{host}`: {action} failed: {source}")]
    Docker {
        host: String,
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "`{name}` on `{host}` did not become healthy within {waited_s}s (last status: {status})\n  check: {check}\n  last log lines of `{name}`:\n{log_tail}"
    )]
    Unhealthy {
        host: String,
        name: String,
        status: String,
        check: String,
        waited_s: u64,
        log_tail: String,
    },
    #[error("building image for `{service}` failed: {detail}")]
    Build { service: String, detail: String },
    #[error("the build context `{path}` cannot be read: {detail}")]
    Context { path: String, detail: String },
    #[error("sending images to `{host}` failed: {detail}")]
    Transfer { host: String, detail: String },
    #[error(
        "the connection to `{host}` was lost while {action}: {reason}\nhelp: the previous state keeps serving; run the command again once the host answers"
    )]
    Lost {
        host: String,
        action: String,
        reason: String,
    },
    #[error("the service `{name}` on `{host}`: {detail}")]
    Spec {
        host: String,
        name: String,
        detail: String,
    },
    #[error("container `{name}` does not exist on `{host}`")]
    Missing { host: String, name: String },
    #[error("`{command}` in `{name}` on `{host}` exited with {status}:\n{output}")]
    Exec {
        host: String,
        name: String,
        command: String,
        status: i64,
        output: String,
    },
}

/// Seconds the client waits for the engine to start answering a request.
const DOCKER_TIMEOUT_SECS: u64 = 120;

/// One Docker engine (the host's, through the SSH tunnel, or the local one), named for error messages.
/// The only way to the Docker API: every call is one of its methods.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    pub host: String,
    /// The SSH connection the engine is reached through, which knows why it ended.
    link: Option<Link>,
}

impl Engine {
    fn new(docker: Docker, host: impl Into<String>) -> Self {
        Self {
            docker,
            host: host.into(),
            link: None,
        }
    }

    /// The engine of `remote`'s host (through its SSH tunnel), with the API version negotiated; its errors
    /// say when the connection was lost and why.
    pub async fn connect(remote: &Remote) -> Result<Self, TransportError> {
        let endpoint = remote.docker_endpoint().await?;
        let path = endpoint.local_path().to_string_lossy().into_owned();
        let docker =
            Docker::connect_with_unix(&path, DOCKER_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
                .map_err(|e| endpoint.unusable(&e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| endpoint.silent(&e.to_string()))?;
        Ok(Self::new(docker, endpoint.host()).through(remote.link()))
    }

    /// [`Engine::local`] with the API version agreed on first, for an engine that may be older than this
    /// client (the sandbox's).
    pub async fn local_negotiated() -> Result<Self, EngineError> {
        let engine = Self::local()?;
        let docker = engine
            .docker
            .clone()
            .negotiate_version()
            .await
            .map_err(engine.fail("agreeing on an API version with the local engine"))?;
        Ok(Self::new(docker, engine.host))
    }

    /// The same engine with another time limit per request (long builds and imports).
    #[must_use]
    pub fn with_timeout(&self, timeout: std::time::Duration) -> Self {
        Self {
            docker: self.docker.clone().with_timeout(timeout),
            ..self.clone()
        }
    }

    /// An engine reached through `link`: once the connection is lost, its errors say so and why.
    #[must_use]
    pub fn through(mut self, link: Link) -> Self {
        self.link = Some(link);
        self
    }

    /// Why the connection to this engine was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.link.as_ref().and_then(Link::lost)
    }

    /// The engine where vldeploy runs (`/var/run/docker.sock`, or `DOCKER_HOST`).
    pub fn local() -> Result<Self, EngineError> {
        let docker =
            Docker::connect_with_local_defaults().map_err(|source| EngineError::Docker {
                host: "local".into(),
                action: "connecting to the local engine".into(),
                source,
            })?;
        Ok(Self::new(docker, "local"))
    }

    fn fail(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> EngineError + '_ {
        let action = action.into();
        move |source| match self.lost() {
            Some(reason) => EngineError::Lost {
                host: self.host.clone(),
                action,
                reason,
            },
            None => EngineError::Docker {
                host: self.host.clone(),
                action,
                source,
            },
        }
    }

    /// Networks carrying `vldeploy.stack=<stack>`.
    pub async fn stack_networks(&self, stack: &str) -> Result<Vec<String>, EngineError> {
        let nets = self
            .networks_where(&label_filter(stack), "listing networks")
            .await?;
        Ok(nets.into_iter().filter_map(|n| n.name).collect())
    }

    /// The networks matching `filters` (Docker's list filters); `action` names the listing in an error.
    async fn networks_where(
        &self,
        filters: &HashMap<String, Vec<String>>,
        action: &str,
    ) -> Result<Vec<bollard::models::Network>, EngineError> {
        let opts = bollard::query_parameters::ListNetworksOptionsBuilder::new()
            .filters(filters)
            .build();
        self.docker
            .list_networks(Some(opts))
            .await
            .map_err(self.fail(action))
    }

    /// Volumes carrying `vldeploy.stack=<stack>`.
    pub async fn stack_volumes(&self, stack: &str) -> Result<Vec<String>, EngineError> {
        let filters = label_filter(stack);
        let opts = bollard::query_parameters::ListVolumesOptionsBuilder::new()
            .filters(&filters)
            .build();
        let vols = self
            .docker
            .list_volumes(Some(opts))
            .await
            .map_err(self.fail("listing volumes"))?;
        Ok(vols
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    pub async fn create_network(&self, stack: &str, name: &str) -> Result<(), EngineError> {
        let req = bollard::models::NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(stack_labels(stack)),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_) => {}
            Err(e) if is_conflict(&e) => {}
            Err(e) => return Err(self.fail(format!("creating network `{name}`"))(e)),
        }
        self.settle_network(name).await
    }

    /// Leaves one network called `name`. Docker names are not unique: a create that was in flight when an
    /// earlier run was killed can land beside this run's own, and two networks of one name make every container
    /// joined to it by name fail to start ("network … is ambiguous"). The oldest stays; the others, unused since
    /// nothing joins a network before its step ended, are removed.
    pub async fn settle_network(&self, name: &str) -> Result<(), EngineError> {
        let mut filters = HashMap::new();
        filters.insert("name".to_string(), vec![name.to_string()]);
        let nets = self
            .networks_where(&filters, &format!("listing networks called `{name}`"))
            .await?;
        let same: Vec<(String, String)> = nets
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .map(|n| (n.id.unwrap_or_default(), n.created.unwrap_or_default()))
            .collect();
        for id in duplicates_to_remove(same) {
            tracing::warn!(network = name, id = %id, "removing a second network of the same name");
            match self.docker.remove_network(&id).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(self.fail(format!(
                        "removing the second network called `{name}` (id {id}; `docker network rm {id}` on the host removes it)"
                    ))(e));
                }
            }
        }
        Ok(())
    }

    pub async fn create_volume(&self, stack: &str, name: &str) -> Result<(), EngineError> {
        self.create_labelled_volume(name, stack_labels(stack)).await
    }

    /// Creates a volume carrying `labels`.
    pub async fn create_labelled_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map_err(self.fail(format!("creating volume `{name}`")))?;
        Ok(())
    }

    /// Creates a bridge network carrying `labels`; one of that name already there is fine.
    pub async fn create_labelled_network(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = bollard::models::NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(self.fail(format!("creating network `{name}`"))(e)),
        }
    }

    /// The labels of the network called `name`, or `None` when there is none.
    pub async fn network_labels(
        &self,
        name: &str,
    ) -> Result<Option<HashMap<String, String>>, EngineError> {
        match self
            .docker
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(n) => Ok(Some(n.labels.unwrap_or_default())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(format!("inspecting network `{name}`"))(e)),
        }
    }

    /// Removes a network, ignoring one that is already gone.
    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.fail(format!("removing network `{name}`"))(e)),
        }
    }

    /// Removes a volume, ignoring one that is already gone.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.remove_volume_with(name, false).await
    }

    /// Removes a volume even when the engine still counts a user of it; one already gone is fine.
    pub async fn force_remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.remove_volume_with(name, true).await
    }

    async fn remove_volume_with(&self, name: &str, force: bool) -> Result<(), EngineError> {
        let opts = bollard::query_parameters::RemoveVolumeOptionsBuilder::new()
            .force(force)
            .build();
        match self.docker.remove_volume(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.fail(format!("removing volume `{name}`"))(e)),
        }
    }

    /// The tags of an image (`repo:tag`), empty for an untagged one.
    pub async fn image_tags(&self, id: &str) -> Result<Vec<String>, EngineError> {
        let image = self
            .docker
            .inspect_image(id)
            .await
            .map_err(self.fail(format!("inspecting image `{id}`")))?;
        Ok(image.repo_tags.unwrap_or_default())
    }

    /// Whether the engine has an image with this ID or reference.
    pub async fn has_image(&self, id: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(id).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.fail(format!("inspecting image `{id}`"))(e)),
        }
    }
}

/// Of several networks of one name (`(id, created)`, RFC 3339 with Docker's trimmed nanoseconds), the IDs of
/// all but the oldest.
fn duplicates_to_remove(mut same: Vec<(String, String)>) -> Vec<String> {
    fn key(created: &str) -> (String, String) {
        let created = created.trim_end_matches('Z');
        let (secs, frac) = created.split_once('.').unwrap_or((created, ""));
        (secs.to_string(), format!("{frac:0<9}"))
    }
    same.sort_by(|a, b| key(&a.1).cmp(&key(&b.1)).then_with(|| a.0.cmp(&b.0)));
    same.into_iter().skip(1).map(|(id, _)| id).collect()
}

pub(crate) fn label_filter(stack: &str) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::new();
    filters.insert("label".to_string(), vec![format!("{STACK_LABEL}={stack}")]);
    filters
}

pub(crate) fn stack_labels(stack: &str) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    labels.insert(STACK_LABEL.to_string(), stack.to_string());
    labels
}

pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The engine's answer to removing a container that is already being removed (by another caller, or `--rm`).
pub(crate) fn removal_in_progress(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError { status_code: 409, message }
            if message.contains("already in progress")
    )
}

pub(crate) fn is_conflict(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::{duplicates_to_remove, removal_in_progress};

    #[test]
    fn removal_in_progress_is_the_engines_409_for_a_container_it_is_removing() {
        let e = |status_code, message: &str| bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.into(),
        };
        assert!(removal_in_progress(&e(
            409,
            "removal of container vldeploy-sandbox-bench-dr is already in progress"
        )));
        assert!(!removal_in_progress(&e(409, "the container is running")));
        assert!(!removal_in_progress(&e(404, "already in progress")));
    }

    #[test]
    fn of_networks_sharing_a_name_all_but_the_oldest_are_removed() {
        let nets = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert!(duplicates_to_remove(nets(&[("a", "2026-12-02T21:08:41.5Z")])).is_empty());
        // Docker trims trailing zeros: 41Z is before 41.05Z, which is before 41.5Z.
        assert_eq!(
            duplicates_to_remove(nets(&[
                ("late", "2026-12-02T21:08:41.5Z"),
                ("first", "2026-12-02T21:08:41Z"),
                ("mid", "2026-12-02T21:08:41.05Z"),
            ])),
            vec!["mid", "late"]
        );
        assert_eq!(
            duplicates_to_remove(nets(&[
                ("b", "2026-12-02T21:08:42.000000001Z"),
                ("a", "2026-12-02T21:08:41.999999999Z"),
            ])),
            vec!["b"]
        );
    }
}
