//! Docker Swarm through the engine API: a node's membership, init, join, the nodes' labels and roles, and a
//! snapshot of a stack's nodes, services and tasks.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    LocalNodeState, NodeSpec, NodeSpecRoleEnum, SwarmInitRequest, SwarmJoinRequest,
};
use bollard::query_parameters::{
    ListServicesOptionsBuilder, ListTasksOptionsBuilder, UpdateNodeOptionsBuilder,
};

use super::{Engine, EngineError, SERVICE_LABEL, label_filter};
use crate::secret::Secret;
use crate::swarm::{ManagerView, NodeView, ServiceMode, ServiceView, Snapshot, TaskView};

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

impl Engine {
    /// What this manager says of the swarm's nodes and of `stack`'s services and their tasks, in three reads.
    pub async fn swarm_snapshot(&self, stack: &str) -> Result<Snapshot, EngineError> {
        let listed = self
            .docker
            .list_nodes(None)
            .await
            .map_err(self.fail("listing the swarm's nodes"))?;
        let mut nodes: Vec<NodeView> = listed.into_iter().filter_map(node_view).collect();
        nodes.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        let opts = ListServicesOptionsBuilder::new()
            .filters(&label_filter(stack))
            .build();
        let listed = self
            .docker
            .list_services(Some(opts))
            .await
            .map_err(self.fail("listing the stack's services"))?;
        let services: Vec<ServiceView> = listed.into_iter().filter_map(service_view).collect();
        let mut tasks = Vec::new();
        if !services.is_empty() {
            let mut filters = HashMap::new();
            filters.insert(
                "service".to_string(),
                services.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            );
            let opts = ListTasksOptionsBuilder::new().filters(&filters).build();
            let listed = self
                .docker
                .list_tasks(Some(opts))
                .await
                .map_err(self.fail("listing the stack's tasks"))?;
            tasks = listed.into_iter().filter_map(task_view).collect();
        }
        Ok(Snapshot {
            nodes,
            services,
            tasks,
        })
    }
}

fn lower(value: impl std::fmt::Display) -> String {
    value.to_string().to_lowercase()
}

fn node_view(n: bollard::models::Node) -> Option<NodeView> {
    let spec = n.spec.unwrap_or_default();
    let labels = spec.labels.unwrap_or_default();
    let status = n.status.unwrap_or_default();
    Some(NodeView {
        id: n.id?,
        hostname: n.description.and_then(|d| d.hostname).unwrap_or_default(),
        address: status.addr.unwrap_or_default(),
        roles: NodeView::roles_from_labels(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        availability: spec.availability.map(lower).unwrap_or_default(),
        state: status.state.map(lower).unwrap_or_default(),
        manager: n.manager_status.map(|m| ManagerView {
            leader: m.leader.unwrap_or(false),
            reachability: m.reachability.map(lower).unwrap_or_default(),
        }),
    })
}

fn service_view(s: bollard::models::Service) -> Option<ServiceView> {
    let spec = s.spec?;
    let service = spec.labels.as_ref()?.get(SERVICE_LABEL)?.clone();
    let mode = match spec.mode {
        Some(m) if m.global.is_some() => ServiceMode::Global,
        Some(m) => ServiceMode::Replicated(
            m.replicated
                .and_then(|r| r.replicas)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
        ),
        None => ServiceMode::Replicated(1),
    };
    Some(ServiceView {
        id: s.id?,
        name: spec.name?,
        service,
        mode,
    })
}

fn task_view(t: bollard::models::Task) -> Option<TaskView> {
    let status = t.status.unwrap_or_default();
    Some(TaskView {
        id: t.id?,
        service_id: t.service_id?,
        node_id: t.node_id.unwrap_or_default(),
        slot: t.slot.and_then(|s| u64::try_from(s).ok()),
        state: status.state.map(lower).unwrap_or_default(),
        desired: t.desired_state.map(lower).unwrap_or_default(),
        error: status.err.filter(|e| !e.is_empty()),
        image: t
            .spec
            .and_then(|s| s.container_spec)
            .and_then(|c| c.image)
            .unwrap_or_default(),
        since_s: status.timestamp.as_deref().and_then(epoch_seconds),
    })
}

/// Seconds since the epoch of an RFC 3339 time as the engine writes it (`2026-12-02T21:30:00.123456789Z`).
fn epoch_seconds(text: &str) -> Option<u64> {
    let whole = text.split('.').next()?.trim_end_matches('Z');
    humantime::parse_rfc3339_weak(whole)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #[test]
    fn engine_times_read_as_epoch_seconds() {
        assert_eq!(
            super::epoch_seconds("1970-01-01T00:01:40.123456789Z"),
            Some(100)
        );
        assert_eq!(super::epoch_seconds("1970-01-01T00:01:40Z"), Some(100));
        assert_eq!(super::epoch_seconds("0001-01-01T00:00:00Z"), None);
        assert_eq!(super::epoch_seconds("soon"), None);
    }
}
