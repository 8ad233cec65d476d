//! What was observed on a host: the planner's second input.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// The host as vldeploy found it, limited to what this stack manages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub networks: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    /// The image IDs (of those the stack wants) that the host's engine already has.
    pub images: BTreeSet<String>,
    /// Containers labelled with this stack.
    pub containers: Vec<ObservedContainer>,
    /// Managed files: path to the content hash recorded in the file.
    pub files: BTreeMap<String, String>,
    /// Per service, the hash of the config files its running process last loaded.
    pub loaded: BTreeMap<String, String>,
}

/// A container found on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub service: Option<String>,
    pub config_hash: Option<String>,
    /// Labels `vldeploy.hash.<aspect>` the container was created with.
    pub aspects: BTreeMap<String, String>,
    /// Per-variable hashes of its environment.
    pub env_hashes: BTreeMap<String, String>,
    /// The id of the host key its secrets were hashed with (`None`: made before secrets were keyed).
    pub hash_key: Option<String>,
    pub image_id: String,
    /// Docker's state: `running`, `exited`, `created`, `restarting`, …
    pub state: String,
    /// Docker's health status when it has a health check: `healthy`, `starting`, `unhealthy`.
    pub health: Option<String>,
}

impl ObservedContainer {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}
