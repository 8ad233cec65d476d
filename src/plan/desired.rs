//! The desired state of a host: what the stack, its rendered files and its built images call for.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::secret::Secret;

/// Everything one environment of a stack should have on its host.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Desired {
    pub stack: String,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<DesiredImage>,
    pub files: Vec<DesiredFile>,
    /// In dependency order: a container comes after the ones it depends on.
    pub containers: Vec<ContainerSpec>,
}

/// An image a container runs, identified by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredImage {
    pub service: String,
    /// `sha256:…` image ID, the same on every engine it is loaded into.
    pub id: String,
    /// The tag it carries, e.g. `vl/vaibava-backend:3f2a9c1b0d4e`.
    pub reference: String,
    /// Whether it is streamed from where vldeploy runs (`build:`) or pulled by the host (`image:`).
    pub pulled: bool,
}

/// A file vldeploy manages on the host; its first line carries the content hash.
#[derive(Debug, Clone, Serialize)]
pub struct DesiredFile {
    pub path: String,
    pub hash: String,
    pub mode: u32,
    #[serde(skip)]
    pub content: Vec<u8>,
    /// The service whose config this is, reloaded (not restarted) when only the file changes.
    pub reloads: Option<String>,
    /// The service whose release writes this file (the nginx upstream, switched once the release is healthy).
    #[serde(default)]
    pub owner: Option<String>,
}

/// A value in a container's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EnvEntry {
    Plain(String),
    Secret(Secret),
}

impl EnvEntry {
    pub fn expose(&self) -> &str {
        match self {
            EnvEntry::Plain(v) => v,
            EnvEntry::Secret(s) => s.expose(),
        }
    }
}

/// Where a mount comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountSource {
    Volume(String),
    HostPath(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Mount {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Publish {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Health {
    /// Docker's `Test` array: `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
}

/// One container as it should run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    pub service: String,
    pub name: String,
    pub image_id: String,
    pub image_ref: String,
    pub env: BTreeMap<String, EnvEntry>,
    /// Networks to join, each with the aliases the container answers to there.
    pub networks: BTreeMap<String, Vec<String>>,
    pub mounts: Vec<Mount>,
    pub publish: Vec<Publish>,
    pub health: Option<Health>,
    pub depends_on: Vec<String>,
    /// For services released blue/green: the network alias this exact configuration answers to
    /// (`backend-<config hash>`), which the nginx upstream names. Not part of the configuration hash.
    #[serde(default)]
    pub release_alias: Option<String>,
}

impl ContainerSpec {
    /// Hashes of each aspect of the container: a change in any of them means the container is recreated.
    pub fn aspect_hashes(&self) -> BTreeMap<&'static str, String> {
        let mut out = BTreeMap::new();
        out.insert("image", self.image_id.clone());
        let env: BTreeMap<&str, String> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), short_hash(&format!("{k}={}", v.expose()))))
            .collect();
        out.insert("env", hash_json(&env));
        out.insert("networks", hash_json(&self.networks));
        out.insert("mounts", hash_json(&self.mounts));
        out.insert("ports", hash_json(&self.publish));
        out.insert("health", hash_json(&self.health));
        out
    }

    /// Per-variable hashes, so a plan can say which variable changed without showing any value.
    pub fn env_hashes(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), short_hash(&format!("{k}={}", v.expose()))))
            .collect()
    }

    /// The hash over every aspect: the container's identity.
    pub fn config_hash(&self) -> String {
        short_hash(&serde_json::to_string(&self.aspect_hashes()).unwrap_or_default())
    }
}

/// The first 16 hex digits of a SHA-256: enough to tell versions apart, too short to be worth reversing.
pub fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

/// The full SHA-256 of some bytes, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn hash_json<T: Serialize>(value: &T) -> String {
    short_hash(&serde_json::to_string(value).unwrap_or_default())
}
