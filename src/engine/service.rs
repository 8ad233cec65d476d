//! Swarm services through the engine API (on a manager): the stack's overlay network, its secrets and configs,
//! services created or updated to a design, their tasks; and what an image starts by default.

use std::collections::HashMap;

use base64::Engine as _;
use bollard::models::{
    ConfigSpec, EndpointPortConfig, EndpointPortConfigProtocolEnum,
    EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum, HealthConfig, Mount,
    MountType, NetworkAttachmentConfig, NetworkCreateRequest, SecretSpec, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1,
    TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskState,
};
use bollard::query_parameters::{
    ListConfigsOptionsBuilder, ListSecretsOptionsBuilder, ListTasksOptionsBuilder,
    TagImageOptionsBuilder, UpdateServiceOptionsBuilder,
};

use super::{Engine, EngineError, is_conflict, is_not_found, label_filter, stack_labels};
use crate::plan::MountSource;
use crate::secret::Secret;
use crate::swarm::{ImageCommand, SPEC_HASH_LABEL, ServiceDesign, ServiceMode, UpdateOrder};

/// A service as a manager lists it: its version (to update it) and the hash of the design it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningService {
    pub version: u64,
    pub hash: Option<String>,
    /// The last update's state (`updating`, `completed`, `rollback_started`, `rollback_completed`, `paused`,
    /// …) and Swarm's message about it; `None` for a service never updated.
    pub update: Option<(String, String)>,
    /// The names of the secrets and configs its spec refers to.
    pub refs: Vec<String>,
}

/// One task of a service: where it runs and in what state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTask {
    pub node_id: String,
    /// The `vldeploy.spec-hash` of the spec the task runs.
    pub spec_hash: Option<String>,
    /// Why the task failed, as Swarm says (`task: non-zero exit (1)`, …).
    pub error: Option<String>,
    /// `running`, `starting`, `failed`, …
    pub state: String,
    pub desired: String,
}

/// The secrets and configs of the spec a service update replaced, comma-separated: what a rollback to it
/// needs, so that pruning keeps them.
pub(super) const KEEPS_LABEL: &str = "vldeploy.keeps";

/// The names of the secrets and configs `spec` refers to.
fn spec_refs(spec: &ServiceSpec) -> Vec<String> {
    let Some(c) = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
    else {
        return Vec::new();
    };
    let secrets = c
        .secrets
        .iter()
        .flatten()
        .filter_map(|s| s.secret_name.clone());
    let configs = c
        .configs
        .iter()
        .flatten()
        .filter_map(|c| c.config_name.clone());
    secrets.chain(configs).collect()
}

/// Nanoseconds, as the Swarm API counts time.
fn nanos(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

impl Engine {
    /// Whether a network of that name (or ID) exists.
    pub async fn has_network(&self, name: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_network(name, None).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.fail(format!("inspecting network `{name}`"))(e)),
        }
    }

    /// Creates the stack's overlay network (attachable, unencrypted) unless it is there.
    pub async fn ensure_overlay(&self, stack: &str, name: &str) -> Result<bool, EngineError> {
        if self.docker.inspect_network(name, None).await.is_ok() {
            return Ok(false);
        }
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(stack_labels(stack)),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(self.fail(format!("creating overlay network `{name}`"))(e)),
        }
    }

    /// The stack's Swarm secrets: name → ID.
    pub async fn swarm_secret_ids(
        &self,
        stack: &str,
    ) -> Result<HashMap<String, String>, EngineError> {
        let opts = ListSecretsOptionsBuilder::new()
            .filters(&label_filter(stack))
            .build();
        let listed = self
            .docker
            .list_secrets(Some(opts))
            .await
            .map_err(self.fail("listing the swarm's secrets"))?;
        Ok(listed
            .into_iter()
            .filter_map(|s| Some((s.spec?.name?, s.id?)))
            .collect())
    }

    /// Creates a Swarm secret; returns its ID. Its value goes to the manager's API alone; errors name the
    /// secret, never its value.
    pub async fn create_swarm_secret(
        &self,
        stack: &str,
        name: &str,
        value: &Secret,
    ) -> Result<String, EngineError> {
        let spec = SecretSpec {
            name: Some(name.to_string()),
            labels: Some(stack_labels(stack)),
            data: Some(base64::engine::general_purpose::STANDARD.encode(value.expose())),
            ..Default::default()
        };
        self.docker
            .create_secret(spec)
            .await
            .map(|r| r.id)
            .map_err(self.fail(format!("creating the swarm secret `{name}`")))
    }

    /// The stack's Swarm configs: name → ID.
    pub async fn swarm_config_ids(
        &self,
        stack: &str,
    ) -> Result<HashMap<String, String>, EngineError> {
        let opts = ListConfigsOptionsBuilder::new()
            .filters(&label_filter(stack))
            .build();
        let listed = self
            .docker
            .list_configs(Some(opts))
            .await
            .map_err(self.fail("listing the swarm's configs"))?;
        Ok(listed
            .into_iter()
            .filter_map(|c| Some((c.spec?.name?, c.id?)))
            .collect())
    }

    /// Creates a Swarm config holding `content`; returns its ID.
    pub async fn create_swarm_config(
        &self,
        stack: &str,
        name: &str,
        content: &[u8],
    ) -> Result<String, EngineError> {
        let spec = ConfigSpec {
            name: Some(name.to_string()),
            labels: Some(stack_labels(stack)),
            data: Some(base64::engine::general_purpose::STANDARD.encode(content)),
            ..Default::default()
        };
        self.docker
            .create_config(spec)
            .await
            .map(|r| r.id)
            .map_err(self.fail(format!("creating the swarm config `{name}`")))
    }

    /// The service `name`, if the swarm has it.
    pub async fn running_service(&self, name: &str) -> Result<Option<RunningService>, EngineError> {
        match self.docker.inspect_service(name, None).await {
            Ok(s) => Ok(Some(RunningService {
                version: s.version.and_then(|v| v.index).unwrap_or(0),
                refs: s.spec.as_ref().map(spec_refs).unwrap_or_default(),
                hash: s
                    .spec
                    .and_then(|s| s.labels)
                    .and_then(|l| l.get(SPEC_HASH_LABEL).cloned()),
                update: s.update_status.map(|u| {
                    (
                        u.state.map(|s| s.to_string()).unwrap_or_default(),
                        u.message.unwrap_or_default(),
                    )
                }),
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(format!("reading the service `{name}`"))(e)),
        }
    }

    /// Creates the service of `design` on `network`, or updates the one at `version` to it. `ids`: the IDs of
    /// its secrets and configs by name (Swarm refers to them by both).
    pub async fn put_service(
        &self,
        stack: &str,
        network: &str,
        design: &ServiceDesign,
        ids: &HashMap<String, String>,
        replaced: Option<&RunningService>,
    ) -> Result<(), EngineError> {
        let mut spec = service_spec(stack, network, design, ids);
        let version = replaced.map(|r| r.version);
        if let (Some(r), Some(labels)) = (replaced, spec.labels.as_mut()) {
            labels.insert(KEEPS_LABEL.to_string(), r.refs.join(","));
        }
        match version {
            None => self
                .docker
                .create_service(spec, None)
                .await
                .map(|_| ())
                .map_err(self.fail(format!("creating the service `{}`", design.name))),
            Some(v) => {
                let opts = UpdateServiceOptionsBuilder::new()
                    .version(i32::try_from(v).unwrap_or(i32::MAX))
                    .build();
                self.docker
                    .update_service(&design.name, spec, opts, None)
                    .await
                    .map(|_| ())
                    .map_err(self.fail(format!("updating the service `{}`", design.name)))
            }
        }
    }

    /// The environment (`NAME=value`) the service `name` gives its tasks; `None` when the swarm has no such
    /// service.
    pub async fn service_env(&self, name: &str) -> Result<Option<Vec<String>>, EngineError> {
        match self.docker.inspect_service(name, None).await {
            Ok(s) => Ok(Some(
                s.spec
                    .and_then(|s| s.task_template)
                    .and_then(|t| t.container_spec)
                    .and_then(|c| c.env)
                    .unwrap_or_default(),
            )),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(format!("reading the service `{name}`"))(e)),
        }
    }

    /// Removes the service `name`; `false` when the swarm has none by that name.
    pub async fn remove_service(&self, name: &str) -> Result<bool, EngineError> {
        match self.docker.delete_service(name).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.fail(format!("removing the service `{name}`"))(e)),
        }
    }

    /// The tasks of the service `name`.
    pub async fn service_tasks(&self, name: &str) -> Result<Vec<ServiceTask>, EngineError> {
        let mut filters = HashMap::new();
        filters.insert("service".to_string(), vec![name.to_string()]);
        let opts = ListTasksOptionsBuilder::new().filters(&filters).build();
        let tasks = self
            .docker
            .list_tasks(Some(opts))
            .await
            .map_err(self.fail(format!("listing the tasks of `{name}`")))?;
        let state = |s: Option<TaskState>| s.map(|s| s.to_string()).unwrap_or_default();
        Ok(tasks
            .into_iter()
            .map(|t| ServiceTask {
                error: t
                    .status
                    .as_ref()
                    .and_then(|s| s.err.clone())
                    .filter(|e| !e.is_empty()),
                node_id: t.node_id.unwrap_or_default(),
                spec_hash: t
                    .spec
                    .and_then(|s| s.container_spec)
                    .and_then(|c| c.labels)
                    .and_then(|l| l.get(SPEC_HASH_LABEL).cloned()),
                state: state(t.status.and_then(|s| s.state)),
                desired: state(t.desired_state),
            })
            .collect())
    }

    /// The names of the secrets and configs the stack's services refer to: in their spec, and in the spec
    /// each replaced (kept in [`KEEPS_LABEL`]: the release `docker service rollback` goes back to).
    pub async fn swarm_names_in_use(
        &self,
        stack: &str,
    ) -> Result<std::collections::BTreeSet<String>, EngineError> {
        let opts = bollard::query_parameters::ListServicesOptionsBuilder::new()
            .filters(&label_filter(stack))
            .build();
        let services = self
            .docker
            .list_services(Some(opts))
            .await
            .map_err(self.fail("listing the stack's services"))?;
        let mut names = std::collections::BTreeSet::new();
        for spec in services.iter().filter_map(|s| s.spec.as_ref()) {
            names.extend(spec_refs(spec));
            let kept = spec.labels.as_ref().and_then(|l| l.get(KEEPS_LABEL));
            names.extend(
                kept.into_iter()
                    .flat_map(|k| k.split(','))
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            );
        }
        Ok(names)
    }

    /// Removes a Swarm secret (`config: false`) or config by ID; `false` when Swarm refuses because a
    /// service still uses it.
    pub async fn remove_swarm_object(
        &self,
        id: &str,
        name: &str,
        config: bool,
    ) -> Result<bool, EngineError> {
        let removed = if config {
            self.docker.delete_config(id).await
        } else {
            self.docker.delete_secret(id).await
        };
        let kind = if config { "config" } else { "secret" };
        match removed {
            Ok(()) => Ok(true),
            Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(false),
            Err(e) => Err(self.fail(format!("removing the swarm {kind} `{name}`"))(e)),
        }
    }

    /// Names the image `id` `reference` too (a node that holds the image under another name).
    pub async fn tag_image_as(&self, id: &str, reference: &str) -> Result<(), EngineError> {
        let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
        let opts = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
        self.docker
            .tag_image(id, Some(opts))
            .await
            .map_err(self.fail(format!("naming image {id} `{reference}`")))
    }

    /// What the image `reference` starts by default (`ENTRYPOINT` then `CMD`) and as whom.
    pub async fn image_command(&self, reference: &str) -> Result<ImageCommand, EngineError> {
        let image = self
            .docker
            .inspect_image(reference)
            .await
            .map_err(self.fail(format!("inspecting image `{reference}`")))?;
        let config = image.config.unwrap_or_default();
        let mut argv = config.entrypoint.unwrap_or_default();
        argv.extend(config.cmd.unwrap_or_default());
        Ok(ImageCommand {
            argv,
            user: config.user.filter(|u| !u.is_empty()),
        })
    }
}

/// The Swarm API's spec of `design`, labelled with the stack and the design's hash.
#[allow(clippy::too_many_lines)] // one field of the API's spec after another
fn service_spec(
    stack: &str,
    network: &str,
    design: &ServiceDesign,
    ids: &HashMap<String, String>,
) -> ServiceSpec {
    let mut labels = stack_labels(stack);
    labels.insert(SPEC_HASH_LABEL.to_string(), design.hash());
    labels.insert(super::SERVICE_LABEL.to_string(), design.service.clone());
    // The secret files belong to the user the image runs as, readable by it alone.
    let (uid, gid) = design
        .user
        .as_deref()
        .map(|u| u.split_once(':').unwrap_or((u, u)))
        .filter(|(u, g)| is_number(u) && is_number(g))
        .unwrap_or(("0", "0"));
    let secrets = design
        .secrets
        .iter()
        .map(|s| TaskSpecContainerSpecSecrets {
            secret_name: Some(s.secret.clone()),
            secret_id: ids.get(&s.secret).cloned(),
            file: Some(TaskSpecContainerSpecFile {
                name: Some(s.secret.clone()),
                uid: Some(uid.to_string()),
                gid: Some(gid.to_string()),
                mode: Some(0o400),
            }),
        })
        .collect();
    let configs = design
        .configs
        .iter()
        .map(|c| TaskSpecContainerSpecConfigs {
            config_name: Some(c.config.clone()),
            config_id: ids.get(&c.config).cloned(),
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(c.target.clone()),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(0o444),
            }),
            ..Default::default()
        })
        .collect();
    let mounts = design
        .mounts
        .iter()
        .map(|m| {
            let (typ, source) = match &m.source {
                MountSource::Volume(v) => (MountType::VOLUME, v.clone()),
                MountSource::HostPath(p) => (MountType::BIND, p.clone()),
            };
            Mount {
                target: Some(m.target.clone()),
                source: Some(source),
                typ: Some(typ),
                read_only: Some(m.read_only),
                ..Default::default()
            }
        })
        .collect();
    let health = design.health.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: Some(nanos(h.interval_ms)),
        timeout: Some(nanos(h.timeout_ms)),
        retries: Some(i64::from(h.retries)),
        ..Default::default()
    });
    // The spec's hash on each task's container too: a task shows which spec it runs.
    let mut container_labels = stack_labels(stack);
    container_labels.insert(SPEC_HASH_LABEL.to_string(), design.hash());
    let container = TaskSpecContainerSpec {
        image: Some(design.image.clone()),
        labels: Some(container_labels),
        command: (!design.command.is_empty()).then(|| design.command.clone()),
        env: Some(design.env.clone()),
        mounts: Some(mounts),
        secrets: Some(secrets),
        configs: Some(configs),
        health_check: health,
        ..Default::default()
    };
    let mode = match design.mode {
        ServiceMode::Replicated(n) => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::from(n)),
            }),
            ..Default::default()
        },
        ServiceMode::Global => ServiceSpecMode {
            // The API's empty object.
            #[allow(clippy::zero_sized_map_values)]
            global: Some(HashMap::new()),
            ..Default::default()
        },
    };
    let (order, rollback_order) = match design.order {
        UpdateOrder::StartFirst => (
            ServiceSpecUpdateConfigOrderEnum::START_FIRST,
            ServiceSpecRollbackConfigOrderEnum::START_FIRST,
        ),
        UpdateOrder::StopFirst => (
            ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
            ServiceSpecRollbackConfigOrderEnum::STOP_FIRST,
        ),
    };
    let ports = design
        .publish
        .iter()
        .map(|(published, target)| EndpointPortConfig {
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            target_port: Some(i64::from(*target)),
            published_port: Some(i64::from(*published)),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            ..Default::default()
        })
        .collect();
    ServiceSpec {
        name: Some(design.name.clone()),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            placement: Some(TaskSpecPlacement {
                constraints: Some(vec![design.constraint.clone()]),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(network.to_string()),
                aliases: Some(design.aliases.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(mode),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(nanos(5_000)),
            order: Some(order),
            ..Default::default()
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            order: Some(rollback_order),
            ..Default::default()
        }),
        // No virtual IP: this kind of kernel has no IPVS; Docker's DNS answers with every task's address.
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: Some(ports),
        }),
        ..Default::default()
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}
