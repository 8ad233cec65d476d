//! Release history on the host: what was released, when, by whom; each release's full spec kept for rollback.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RolloutError;
use crate::layout;
use crate::plan::{ContainerSpec, EnvEntry, Health, Mount, Publish};
use crate::secret::Secret;
use crate::state::store::{self, Document};
use crate::transport::Remote;

/// One release, as listed by `vldeploy releases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The release's alias, `backend-<config hash>`.
    pub id: String,
    pub service: String,
    pub image_id: String,
    pub image_ref: String,
    pub created: u64,
    pub actor: String,
    #[serde(default)]
    pub git: Option<String>,
}

/// Releases, oldest first; the last one is the one most recently put live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub releases: Vec<Release>,
}

impl Document for History {
    const KIND: &'static str = "release history";
    const FIX: &'static str = "run `vldeploy up` (the history starts again from the next release)";
}

impl Document for StoredSpec {
    const KIND: &'static str = "release spec";
    const FIX: &'static str =
        "roll back to another release with `vldeploy rollback ID`, or run `vldeploy up`";
}

/// A spec as stored on the host (mode 0600 under /var/lib/vldeploy): env values in the clear, secret ones named.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSpec {
    service: String,
    name: String,
    image_id: String,
    image_ref: String,
    env: BTreeMap<String, String>,
    secret_env: Vec<String>,
    networks: BTreeMap<String, Vec<String>>,
    mounts: Vec<Mount>,
    publish: Vec<Publish>,
    health: Option<Health>,
    depends_on: Vec<String>,
    release_alias: Option<String>,
}

impl From<&ContainerSpec> for StoredSpec {
    fn from(s: &ContainerSpec) -> Self {
        Self {
            service: s.service.clone(),
            name: s.name.clone(),
            image_id: s.image_id.clone(),
            image_ref: s.image_ref.clone(),
            env: s
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_string()))
                .collect(),
            secret_env: s
                .env
                .iter()
                .filter(|(_, v)| matches!(v, EnvEntry::Secret(_)))
                .map(|(k, _)| k.clone())
                .collect(),
            networks: s.networks.clone(),
            mounts: s.mounts.clone(),
            publish: s.publish.clone(),
            health: s.health.clone(),
            depends_on: s.depends_on.clone(),
            release_alias: s.release_alias.clone(),
        }
    }
}

impl From<StoredSpec> for ContainerSpec {
    fn from(s: StoredSpec) -> Self {
        let env = s
            .env
            .into_iter()
            .map(|(k, v)| {
                let entry = if s.secret_env.contains(&k) {
                    EnvEntry::Secret(Secret::new(v))
                } else {
                    EnvEntry::Plain(v)
                };
                (k, entry)
            })
            .collect();
        Self {
            service: s.service,
            name: s.name,
            image_id: s.image_id,
            image_ref: s.image_ref,
            env,
            networks: s.networks,
            mounts: s.mounts,
            publish: s.publish,
            health: s.health,
            depends_on: s.depends_on,
            release_alias: s.release_alias,
            hash_key: None,
        }
    }
}

/// The host's release history (`releases.json`).
pub fn index_path(stack: &str) -> String {
    layout::releases_index(stack)
}

fn spec_path(stack: &str, id: &str) -> String {
    layout::release_file(stack, id)
}

fn fail(remote: &Remote, detail: impl Into<String>) -> RolloutError {
    RolloutError::History {
        host: remote.name().to_string(),
        detail: detail.into(),
    }
}

pub async fn read_history(remote: &Remote, stack: &str) -> Result<History, RolloutError> {
    Ok(store::read(remote, &index_path(stack))
        .await?
        .unwrap_or_default())
}

/// Records `spec` as the newest release and keeps the `keep` most recent (their specs too).
pub async fn record_release(
    remote: &Remote,
    stack: &str,
    spec: &ContainerSpec,
    actor: &str,
    git: Option<String>,
    keep: usize,
) -> Result<(), RolloutError> {
    let id = spec
        .release_alias
        .clone()
        .unwrap_or_else(|| spec.config_hash());
    store::write(remote, &spec_path(stack, &id), &StoredSpec::from(spec)).await?;
    let mut history = read_history(remote, stack).await?;
    history.releases.retain(|r| r.id != id);
    history.releases.push(Release {
        id,
        service: spec.service.clone(),
        image_id: spec.image_id.clone(),
        image_ref: spec.image_ref.clone(),
        created: crate::state::now(),
        actor: actor.to_string(),
        git,
    });
    let excess = history.releases.len().saturating_sub(keep.max(1));
    let pruned: Vec<Release> = history.releases.drain(..excess).collect();
    store::write(remote, &index_path(stack), &history).await?;
    if !pruned.is_empty() {
        let paths: Vec<String> = pruned.iter().map(|r| spec_path(stack, &r.id)).collect();
        remote.exec(&crate::remote::file::remove(&paths)).await?;
    }
    Ok(())
}

/// The full spec of a recorded release.
pub async fn stored_spec(
    remote: &Remote,
    stack: &str,
    id: &str,
) -> Result<ContainerSpec, RolloutError> {
    let path = spec_path(stack, id);
    let stored: StoredSpec = store::read(remote, &path).await?.ok_or_else(|| {
        fail(
            remote,
            format!("release `{id}` has no stored spec (`{path}`)"),
        )
    })?;
    Ok(stored.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_spec_round_trips_with_its_secrets_marked() {
        let mut env = BTreeMap::new();
        env.insert("A".to_string(), EnvEntry::Plain("1".into()));
        env.insert("PASS".to_string(), EnvEntry::Secret(Secret::new("s3cr3t")));
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
            depends_on: vec!["postgres".into()],
            release_alias: Some("backend-abc".into()),
            hash_key: None,
        };
        let json = serde_json::to_string(&StoredSpec::from(&spec)).unwrap();
        let back: ContainerSpec = serde_json::from_str::<StoredSpec>(&json).unwrap().into();
        assert_eq!(back, spec);
        assert!(matches!(back.env["PASS"], EnvEntry::Secret(_)));
        assert_eq!(back.config_hash(), spec.config_hash());
    }
}
