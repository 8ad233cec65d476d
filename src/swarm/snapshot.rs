//! What a manager says of a stack's swarm at one moment — its nodes, services and tasks — and each service's
//! standing against its target: a pure reading, with no engine asked.

use serde::Serialize;

use super::plan::ROLE_LABEL_PREFIX;
use super::services::ServiceMode;
use crate::stack::Role;

/// A node as a manager lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub id: String,
    pub hostname: String,
    /// The address it advertises to the swarm.
    pub address: String,
    /// From its `vldeploy.role.*` labels.
    pub roles: Vec<Role>,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// `ready`, `down`, `unknown` or `disconnected`.
    pub state: String,
    /// What the swarm says of it when it is a manager.
    pub manager: Option<ManagerView>,
}

impl NodeView {
    /// Its roles from its labels (`vldeploy.role.edge=true` …), in `edge`, `app`, `db` order.
    pub fn roles_from_labels<'a>(
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<Role> {
        let mut roles: Vec<Role> = labels
            .into_iter()
            .filter(|(_, v)| *v == "true")
            .filter_map(|(k, _)| Role::parse(k.strip_prefix(ROLE_LABEL_PREFIX)?))
            .collect();
        roles.sort_unstable();
        roles.dedup();
        roles
    }

    pub fn is_ready(&self) -> bool {
        self.state == "ready"
    }

    /// Ready and taking tasks.
    pub fn takes_tasks(&self) -> bool {
        self.is_ready() && self.availability == "active"
    }

    /// `edge app`, or `no role`.
    pub fn roles_text(&self) -> String {
        if self.roles.is_empty() {
            return "no role".to_owned();
        }
        self.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `leader`, `reachable`, `unreachable` … for a manager; `worker` for the others.
    pub fn manager_text(&self) -> String {
        match &self.manager {
            None => "worker".to_owned(),
            Some(m) if m.leader => "leader".to_owned(),
            Some(m) => m.reachability.clone(),
        }
    }
}

/// A manager's standing in the swarm's Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagerView {
    pub leader: bool,
    /// `reachable`, `unreachable` or `unknown`.
    pub reachability: String,
}

/// A service of the stack as a manager lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceView {
    pub id: String,
    /// The Swarm service's name: `<stack>_<service>`.
    pub name: String,
    /// `postgres`, `backend` or `nginx`.
    pub service: String,
    pub mode: ServiceMode,
}

/// A task of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskView {
    pub id: String,
    pub service_id: String,
    pub node_id: String,
    /// Its slot (replicated services); global tasks have none.
    pub slot: Option<u64>,
    /// `running`, `starting`, `failed`, …
    pub state: String,
    /// `running` for a task meant to run, `shutdown` for one replaced.
    pub desired: String,
    /// The task's error, when it has one.
    pub error: Option<String>,
    /// The image reference it runs.
    pub image: String,
    /// When it entered its state, in seconds since the epoch.
    pub since_s: Option<u64>,
}

impl TaskView {
    pub fn is_current(&self) -> bool {
        self.desired == "running"
    }
}

/// Everything status and doctor read of a stack's swarm, from one manager.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub nodes: Vec<NodeView>,
    pub services: Vec<ServiceView>,
    pub tasks: Vec<TaskView>,
}

/// A task as status shows it: where it runs, in what state, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRow {
    pub task: String,
    pub node: String,
    pub roles: Vec<Role>,
    pub state: String,
    /// `healthy`, `starting`, or the task's error.
    pub health: Option<String>,
    pub image: String,
    pub age_s: Option<u64>,
}

/// A service against its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub name: String,
    /// `replicated 2`, `global`; `missing` when the swarm has no such service.
    pub mode: String,
    /// Tasks running on a ready node.
    pub running: usize,
    /// Tasks it should run: its replicas, or one per ready, active node of its role.
    pub target: usize,
    pub at_target: bool,
    /// Its tasks meant to run, and the ones still running on a node the swarm lost.
    pub tasks: Vec<TaskRow>,
    /// The latest error among its tasks, old ones included.
    pub last_error: Option<String>,
}

/// The role whose nodes run `service`.
pub fn service_role(service: &str) -> Role {
    match service {
        "postgres" => Role::Db,
        "nginx" => Role::Edge,
        _ => Role::App,
    }
}

impl Snapshot {
    fn node(&self, id: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node `id`'s hostname, or the start of its id when the swarm no longer lists it.
    pub fn node_name(&self, id: &str) -> String {
        self.node(id).map_or_else(
            || crate::layout::short_id(id).to_owned(),
            |n| n.hostname.clone(),
        )
    }

    fn on_ready_node(&self, t: &TaskView) -> bool {
        self.node(&t.node_id).is_some_and(NodeView::is_ready)
    }

    /// Each of `services` (`postgres`, `backend`, `nginx`) against its target, at `now_s`.
    pub fn reports(&self, services: &[&str], now_s: u64) -> Vec<ServiceReport> {
        services.iter().map(|s| self.report(s, now_s)).collect()
    }

    fn report(&self, service: &str, now_s: u64) -> ServiceReport {
        let Some(view) = self.services.iter().find(|v| v.service == service) else {
            return ServiceReport {
                service: service.to_owned(),
                name: String::new(),
                mode: "missing".to_owned(),
                running: 0,
                target: 1,
                at_target: false,
                tasks: Vec::new(),
                last_error: None,
            };
        };
        let role = service_role(service);
        let (mode, target) = match view.mode {
            ServiceMode::Replicated(n) => (format!("replicated {n}"), n as usize),
            ServiceMode::Global => (
                "global".to_owned(),
                self.nodes
                    .iter()
                    .filter(|n| n.takes_tasks() && n.roles.contains(&role))
                    .count(),
            ),
        };
        let mut tasks: Vec<&TaskView> = self
            .tasks
            .iter()
            .filter(|t| t.service_id == view.id)
            .collect();
        tasks.sort_by_key(|t| std::cmp::Reverse(t.since_s));
        let running = tasks
            .iter()
            .filter(|t| t.is_current() && t.state == "running" && self.on_ready_node(t))
            .count();
        let last_error = tasks.iter().find_map(|t| t.error.clone());
        let mut shown: Vec<&TaskView> = tasks
            .iter()
            .copied()
            .filter(|t| t.is_current() || (t.state == "running" && !self.on_ready_node(t)))
            .collect();
        shown.sort_by_key(|t| (t.slot, self.node_name(&t.node_id)));
        let rows = shown.iter().map(|t| self.row(view, t, now_s)).collect();
        ServiceReport {
            service: service.to_owned(),
            name: view.name.clone(),
            mode,
            running,
            target,
            at_target: running >= target,
            tasks: rows,
            last_error,
        }
    }

    fn row(&self, view: &ServiceView, t: &TaskView, now_s: u64) -> TaskRow {
        let node = self.node(&t.node_id);
        let lost = node.is_some_and(|n| !n.is_ready());
        let health = if lost {
            Some(format!(
                "its node is {}",
                node.map_or("gone", |n| n.state.as_str())
            ))
        } else if let Some(e) = &t.error {
            Some(e.clone())
        } else {
            match t.state.as_str() {
                "running" => Some("healthy".to_owned()),
                "starting" => Some("starting".to_owned()),
                _ => None,
            }
        };
        // A global service's task is known by its node, which its row names beside it.
        let task = match t.slot {
            Some(slot) => format!("{}.{slot}", view.service),
            None => view.service.clone(),
        };
        TaskRow {
            task,
            node: self.node_name(&t.node_id),
            roles: node.map(|n| n.roles.clone()).unwrap_or_default(),
            state: t.state.clone(),
            health,
            image: image_short(&t.image),
            age_s: t.since_s.map(|s| now_s.saturating_sub(s)),
        }
    }
}

/// The part of an image reference that tells one build from another: its tag (vldeploy tags images by their
/// short ID), without a digest.
pub fn image_short(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag.to_owned(),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn node(id: &str, roles: &[Role], state: &str, manager: Option<bool>) -> NodeView {
        NodeView {
            id: id.into(),
            hostname: format!("host-{id}"),
            address: format!("10.0.0.{}", &id[1..]),
            roles: roles.to_vec(),
            availability: "active".into(),
            state: state.into(),
            manager: manager.map(|leader| ManagerView {
                leader,
                reachability: if state == "ready" {
                    "reachable".into()
                } else {
                    "unreachable".into()
                },
            }),
        }
    }

    pub(crate) fn task(
        id: &str,
        service: &str,
        node: &str,
        state: &str,
        desired: &str,
    ) -> TaskView {
        TaskView {
            id: id.into(),
            service_id: service.into(),
            node_id: node.into(),
            slot: None,
            state: state.into(),
            desired: desired.into(),
            error: None,
            image: "vldeploy/backend:0123456789ab@sha256:ff".into(),
            since_s: Some(1000),
        }
    }

    /// The test's cluster: n1 and n2 edge and app, n3 db; all managers, n1 leads.
    pub(crate) fn cluster() -> Snapshot {
        use Role::{App, Db, Edge};
        let svc = |id: &str, mode| ServiceView {
            id: id.into(),
            name: format!("shop_{id}"),
            service: id.into(),
            mode,
        };
        let mut b1 = task("b1", "backend", "n1", "running", "running");
        b1.slot = Some(1);
        let mut b2 = task("b2", "backend", "n2", "running", "running");
        b2.slot = Some(2);
        let mut p1 = task("p1", "postgres", "n3", "running", "running");
        p1.slot = Some(1);
        Snapshot {
            nodes: vec![
                node("n1", &[Edge, App], "ready", Some(true)),
                node("n2", &[Edge, App], "ready", Some(false)),
                node("n3", &[Db], "ready", Some(false)),
            ],
            services: vec![
                svc("postgres", ServiceMode::Replicated(1)),
                svc("backend", ServiceMode::Replicated(2)),
                svc("nginx", ServiceMode::Global),
            ],
            tasks: vec![
                p1,
                b1,
                b2,
                task("x1", "nginx", "n1", "running", "running"),
                task("x2", "nginx", "n2", "running", "running"),
            ],
        }
    }

    pub(crate) const SERVICES: [&str; 3] = ["postgres", "backend", "nginx"];

    #[test]
    fn every_service_at_its_target_lists_its_tasks_by_node() {
        let r = cluster().reports(&SERVICES, 1060);
        let seen: Vec<_> = r
            .iter()
            .map(|s| {
                (
                    s.service.as_str(),
                    s.mode.as_str(),
                    s.running,
                    s.target,
                    s.at_target,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("postgres", "replicated 1", 1, 1, true),
                ("backend", "replicated 2", 2, 2, true),
                ("nginx", "global", 2, 2, true),
            ]
        );
        let backend: Vec<_> = r[1]
            .tasks
            .iter()
            .map(|t| {
                (
                    t.task.as_str(),
                    t.node.as_str(),
                    t.health.as_deref(),
                    t.age_s,
                )
            })
            .collect();
        assert_eq!(
            backend,
            [
                ("backend.1", "host-n1", Some("healthy"), Some(60)),
                ("backend.2", "host-n2", Some("healthy"), Some(60)),
            ]
        );
        assert_eq!(
            (r[2].tasks[0].task.as_str(), r[2].tasks[0].node.as_str()),
            ("nginx", "host-n1")
        );
        assert_eq!(r[1].tasks[0].image, "0123456789ab");
        assert_eq!(r[1].tasks[0].roles, [Role::Edge, Role::App]);
    }

    #[test]
    fn a_down_node_lowers_the_global_target_and_its_tasks_no_longer_count() {
        let mut s = cluster();
        s.nodes[1].state = "down".into();
        // The scheduler has not placed the lost replica yet; the old one still says running.
        s.tasks[2].desired = "shutdown".into();
        let mut new = task("b3", "backend", "n1", "starting", "running");
        new.slot = Some(2);
        new.error = None;
        s.tasks.push(new);
        let r = s.reports(&SERVICES, 1000);
        assert_eq!((r[1].running, r[1].target, r[1].at_target), (1, 2, false));
        let rows: Vec<_> = r[1]
            .tasks
            .iter()
            .map(|t| (t.node.as_str(), t.state.as_str(), t.health.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                ("host-n1", "running", Some("healthy")),
                ("host-n1", "starting", Some("starting")),
                ("host-n2", "running", Some("its node is down")),
            ]
        );
        assert_eq!((r[2].running, r[2].target, r[2].at_target), (1, 1, true));
    }

    #[test]
    fn a_missing_service_and_a_failed_task_say_so() {
        let mut s = cluster();
        s.services.retain(|v| v.service != "postgres");
        let mut failed = task("b9", "backend", "n2", "failed", "shutdown");
        failed.error = Some("task: non-zero exit (1)".into());
        failed.since_s = Some(2000);
        s.tasks.push(failed);
        let r = s.reports(&SERVICES, 2000);
        assert_eq!((r[0].mode.as_str(), r[0].at_target), ("missing", false));
        assert_eq!(r[1].last_error.as_deref(), Some("task: non-zero exit (1)"));
        assert_eq!(r[1].tasks.len(), 2, "a replaced task is not shown");
    }

    #[test]
    fn roles_come_from_the_role_labels_and_image_tags_name_the_build() {
        let roles = NodeView::roles_from_labels([
            ("vldeploy.role.db", "true"),
            ("vldeploy.role.edge", "true"),
            ("vldeploy.role.app", "false"),
            ("other", "true"),
        ]);
        assert_eq!(roles, [Role::Edge, Role::Db]);
        assert_eq!(image_short("vl/backend:abc@sha256:1"), "abc");
        assert_eq!(image_short("registry:5000/nginx"), "registry:5000/nginx");
        assert_eq!(image_short("nginx"), "nginx");
    }
}
