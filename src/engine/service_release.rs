//! A Swarm service's two releases as a manager keeps them (its spec and the previous one), going back to the
//! previous one, and its tasks' logs read through the manager. The API model this client has no
//! `PreviousSpec`: the manager's CLI reads it ([`crate::remote::service_spec::previous_spec`]), as JSON.

use bollard::query_parameters::{
    InspectServiceOptions, LogsOptionsBuilder, UpdateServiceOptionsBuilder,
};
use futures_util::{Stream, StreamExt};

use super::{Engine, EngineError, is_not_found};
use crate::swarm::{SPEC_HASH_LABEL, ServiceReleases, SpecRelease};

fn spec_release(spec: &bollard::models::ServiceSpec) -> SpecRelease {
    let container = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref());
    SpecRelease {
        hash: spec
            .labels
            .as_ref()
            .and_then(|l| l.get(SPEC_HASH_LABEL).cloned()),
        image: container.and_then(|c| c.image.clone()).unwrap_or_default(),
    }
}

impl Engine {
    /// The service `name`'s current and previous spec, its last update's state and when it changed; `None`
    /// when the swarm has no such service. `service`: `backend`, `nginx` or `postgres`.
    /// `previous_json`: its `PreviousSpec` as the manager's CLI printed it (`null` when it has none).
    pub async fn service_releases(
        &self,
        service: &str,
        name: &str,
        previous_json: &str,
    ) -> Result<Option<ServiceReleases>, EngineError> {
        let previous = self.parse_spec(name, previous_json)?;
        let s = match self
            .docker
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
        {
            Ok(s) => s,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.fail(format!("reading the service `{name}`"))(e)),
        };
        let tasks = self.service_tasks(name).await?;
        Ok(Some(ServiceReleases {
            service: service.to_owned(),
            name: name.to_owned(),
            current: s.spec.as_ref().map(spec_release).unwrap_or_default(),
            previous: previous.as_ref().map(spec_release),
            update: s.update_status.map(|u| {
                (
                    u.state.map(|s| s.to_string()).unwrap_or_default(),
                    u.message.unwrap_or_default(),
                )
            }),
            updated: s
                .updated_at
                .map(|t| t.split('.').next().unwrap_or(&t).to_owned()),
            running: tasks
                .into_iter()
                .filter(|t| t.desired == "running" && t.state == "running")
                .filter_map(|t| t.spec_hash)
                .collect(),
        }))
    }

    fn parse_spec(
        &self,
        name: &str,
        json: &str,
    ) -> Result<Option<bollard::models::ServiceSpec>, EngineError> {
        serde_json::from_str(json.trim()).map_err(|e| EngineError::Spec {
            host: self.host.clone(),
            name: name.to_owned(),
            detail: format!("its previous spec does not read as a service spec: {e}"),
        })
    }

    /// Updates the service `name` to the spec it had before (`previous_json`, its `PreviousSpec`), as an
    /// ordinary update: its update order and failure action apply. Returns `false` when it has none.
    pub async fn restore_previous_spec(
        &self,
        name: &str,
        previous_json: &str,
    ) -> Result<bool, EngineError> {
        let Some(previous) = self.parse_spec(name, previous_json)? else {
            return Ok(false);
        };
        let s = self
            .docker
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
            .map_err(self.fail(format!("reading the service `{name}`")))?;
        let version = s.version.and_then(|v| v.index).unwrap_or(0);
        let opts = UpdateServiceOptionsBuilder::new()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        self.docker
            .update_service(name, previous, opts, None)
            .await
            .map_err(self.fail(format!(
                "updating the service `{name}` to its previous spec"
            )))?;
        Ok(true)
    }

    /// A task's stdout and stderr through this manager, each line stamped with its time (RFC 3339), from its
    /// last `tail` lines on, and with `follow` what it writes afterwards.
    pub fn task_log_stream(
        &self,
        task_id: &str,
        tail: usize,
        follow: bool,
    ) -> impl Stream<Item = Result<Vec<u8>, EngineError>> + '_ {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .follow(follow)
            .tail(&tail.to_string())
            .build();
        let id = task_id.to_owned();
        self.docker.task_logs(&id, Some(opts)).map(move |chunk| {
            chunk.map(|c| c.into_bytes().to_vec()).map_err(|e| {
                self.fail(format!(
                    "reading logs of task {}",
                    crate::layout::short_id(&id)
                ))(e)
            })
        })
    }
}
