//! Docker Swarm through the engine API: a node's membership, init, join, the nodes' labels and roles.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    LocalNodeState, NodeSpec, NodeSpecRoleEnum, SwarmInitRequest, SwarmJoinRequest,
};
use bollard::query_parameters::UpdateNodeOptionsBuilder;

use super::{Engine, EngineError};
use crate::secret::Secret;

/// The port managers listen on for the swarm's control traffic.
pub const SWARM_PORT: u16 = 2377;

/// What one engine says of its swarm membership (`docker info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmMembership {
    /// `inactive`, `pending`, `active`, `error` or `locked`.
    pub state: String,
    pub node_id: Option<String>,
    pub cluster_id: Option<String>,
    /// Whether it is a manager (it answers the swarm's API).
    pub manager: bool,
}

/// A node as a manager lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmNode {
    pub id: String,
    pub version: u64,
    pub labels: BTreeMap<String, String>,
    pub manager: bool,
    spec: NodeSpec,
}

/// The tokens a node joins with; never printed.
#[derive(Debug, Clone)]
pub struct JoinTokens {
    pub worker: Secret,
    pub manager: Secret,
}

impl Engine {
    /// This engine's swarm membership.
    pub async fn swarm_membership(&self) -> Result<SwarmMembership, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(self.fail("reading the engine's swarm state"))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = match swarm.local_node_state {
            Some(LocalNodeState::PENDING) => "pending",
            Some(LocalNodeState::ACTIVE) => "active",
            Some(LocalNodeState::ERROR) => "error",
            Some(LocalNodeState::LOCKED) => "locked",
            _ => "inactive",
        };
        Ok(SwarmMembership {
            state: state.to_owned(),
            node_id: swarm.node_id.filter(|s| !s.is_empty()),
            cluster_id: swarm.cluster.and_then(|c| c.id).filter(|s| !s.is_empty()),
            manager: swarm.control_available.unwrap_or(false),
        })
    }

    /// Makes this engine the first manager of a new swarm, advertising `address`.
    pub async fn init_swarm(&self, address: &str) -> Result<String, EngineError> {
        let req = SwarmInitRequest {
            listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
            advertise_addr: Some(address.to_owned()),
            ..Default::default()
        };
        self.docker
            .init_swarm(req)
            .await
            .map_err(self.fail(format!("initialising a swarm advertising {address}")))
    }

    /// The swarm's join tokens (on a manager).
    pub async fn join_tokens(&self) -> Result<JoinTokens, EngineError> {
        let swarm = self
            .docker
            .inspect_swarm()
            .await
            .map_err(self.fail("reading the swarm's join tokens"))?;
        let tokens = swarm.join_tokens.unwrap_or_default();
        Ok(JoinTokens {
            worker: Secret::new(tokens.worker.unwrap_or_default()),
            manager: Secret::new(tokens.manager.unwrap_or_default()),
        })
    }

    /// Joins the swarm whose manager listens at `manager_address`, advertising `address`.
    pub async fn join_swarm(
        &self,
        address: &str,
        manager_address: &str,
        token: &Secret,
    ) -> Result<(), EngineError> {
        let req = SwarmJoinRequest {
            listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
            advertise_addr: Some(address.to_owned()),
            remote_addrs: Some(vec![format!("{manager_address}:{SWARM_PORT}")]),
            join_token: Some(token.expose().to_owned()),
            ..Default::default()
        };
        self.docker
            .join_swarm(req)
            .await
            .map_err(self.fail(format!("joining the swarm of {manager_address}")))
    }

    /// The swarm's nodes (on a manager).
    pub async fn swarm_nodes(&self) -> Result<Vec<SwarmNode>, EngineError> {
        let nodes = self
            .docker
            .list_nodes(None)
            .await
            .map_err(self.fail("listing the swarm's nodes"))?;
        Ok(nodes
            .into_iter()
            .filter_map(|n| {
                let spec = n.spec.unwrap_or_default();
                Some(SwarmNode {
                    id: n.id?,
                    version: n.version.and_then(|v| v.index).unwrap_or(0),
                    labels: spec
                        .labels
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    manager: spec.role == Some(NodeSpecRoleEnum::MANAGER),
                    spec,
                })
            })
            .collect())
    }

    /// Sets and removes labels of a node, and makes it a manager when `promote` (on a manager).
    pub async fn update_swarm_node(
        &self,
        node: &SwarmNode,
        set: &[String],
        remove: &[String],
        promote: bool,
    ) -> Result<(), EngineError> {
        let mut labels: HashMap<String, String> = node.spec.labels.clone().unwrap_or_default();
        for key in remove {
            labels.remove(key);
        }
        for key in set {
            labels.insert(key.clone(), "true".to_owned());
        }
        let spec = NodeSpec {
            labels: Some(labels),
            role: if promote {
                Some(NodeSpecRoleEnum::MANAGER)
            } else {
                node.spec.role
            },
            ..node.spec.clone()
        };
        let opts = UpdateNodeOptionsBuilder::new()
            .version(i64::try_from(node.version).unwrap_or(i64::MAX))
            .build();
        self.docker
            .update_node(&node.id, spec, opts)
            .await
            .map_err(self.fail(format!("updating swarm node {}", node.id)))
    }
}
