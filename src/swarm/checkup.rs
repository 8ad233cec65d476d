//! `doctor` on a swarm: from what the hosts answered over SSH, a manager's snapshot and the probes of Swarm's
//! ports between nodes, the findings with the action to take. Pure: no host is asked.

use serde::Serialize;

use super::snapshot::{NodeView, Snapshot};
use crate::stack::Role;

/// How a finding stands; its JSON values (`ok`, `warn`, `fail`) are doctor's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One check's outcome and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub check: String,
    pub verdict: Verdict,
    pub finding: String,
    pub action: Option<String>,
}

fn checked(check: &str, verdict: Verdict, finding: String, action: Option<String>) -> Checked {
    Checked {
        check: check.to_owned(),
        verdict,
        finding,
        action,
    }
}

/// What one host of `hosts:` answered over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReach {
    /// `root@127.0.0.1:2201`.
    pub target: String,
    pub roles: Vec<Role>,
    /// One of the hosts vldeploy makes a manager.
    pub manager: bool,
    /// Why it did not answer; none when it did.
    pub error: Option<String>,
}

/// A probe of one Swarm port of one node, from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortProbe {
    /// The hostname it was probed from.
    pub from: String,
    pub to: String,
    pub address: String,
    pub port: u16,
    pub open: bool,
}

/// Everything doctor found out, and which services the stack runs.
#[derive(Debug, Clone)]
pub struct Examined<'a> {
    pub env: &'a str,
    pub hosts: &'a [HostReach],
    /// None when no manager answered.
    pub snapshot: Option<&'a Snapshot>,
    pub probes: &'a [PortProbe],
    pub services: &'a [&'a str],
    pub now_s: u64,
    /// `GET /api/health` through each edge node's nginx task.
    pub edges: &'a [super::edge_health::EdgeProbe],
}

/// The findings, in order: SSH and managers, each node, each service, tasks not running, the API through each
/// edge, Swarm's ports.
pub fn checkup(e: &Examined<'_>) -> Vec<Checked> {
    let mut out = vec![ssh_finding(e)];
    let Some(s) = e.snapshot else {
        out.push(checked(
            "managers",
            Verdict::Fail,
            "no manager answered: nothing can be read of the swarm".into(),
            Some(
                "start a manager host (the first three of `hosts:`), then `docker node ls` on it"
                    .into(),
            ),
        ));
        return out;
    };
    out.push(manager_finding(s));
    out.extend(s.nodes.iter().map(|n| node_finding(e.env, n)));
    for r in s.reports(e.services, e.now_s) {
        out.push(service_finding(e.env, &r));
    }
    out.push(task_finding(s));
    out.extend(
        e.edges
            .iter()
            .filter_map(|p| super::edge_health::edge_finding(e.env, p)),
    );
    out.extend(port_finding(e.env, e.probes));
    out
}

fn ssh_finding(e: &Examined<'_>) -> Checked {
    let lost: Vec<&HostReach> = e.hosts.iter().filter(|h| h.error.is_some()).collect();
    if lost.is_empty() {
        return checked(
            "ssh",
            Verdict::Ok,
            format!("all {} hosts answer over SSH", e.hosts.len()),
            None,
        );
    }
    let names = lost
        .iter()
        .map(|h| {
            format!(
                "{} ({}{}): {}",
                h.target,
                h.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                if h.manager { ", manager" } else { "" },
                h.error.as_deref().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    checked(
        "ssh",
        Verdict::Fail,
        format!(
            "{} of {} hosts do not answer over SSH: {names}",
            lost.len(),
            e.hosts.len()
        ),
        Some(format!(
            "start the host or its sshd; `vldeploy up -e {}` needs every host",
            e.env
        )),
    )
}

fn manager_finding(s: &Snapshot) -> Checked {
    let managers: Vec<&NodeView> = s.nodes.iter().filter(|n| n.manager.is_some()).collect();
    let lost: Vec<&NodeView> = managers
        .iter()
        .copied()
        .filter(|n| {
            n.manager
                .as_ref()
                .is_some_and(|m| m.reachability != "reachable")
                || !n.is_ready()
        })
        .collect();
    let up = managers.len() - lost.len();
    if lost.is_empty() {
        let leader = managers
            .iter()
            .find(|n| n.manager.as_ref().is_some_and(|m| m.leader))
            .map_or("none", |n| n.hostname.as_str());
        return checked(
            "managers",
            Verdict::Ok,
            format!("{up} of {} reachable, leader {leader}", managers.len()),
            None,
        );
    }
    let names = lost
        .iter()
        .map(|n| n.hostname.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let quorum = up > managers.len() / 2;
    let (verdict, consequence) = if quorum {
        (
            Verdict::Warn,
            format!("the swarm keeps its quorum with {up} of {}", managers.len()),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "the swarm has lost its quorum ({up} of {}): it takes no change",
                managers.len()
            ),
        )
    };
    checked(
        "managers",
        verdict,
        format!("unreachable: {names}; {consequence}"),
        Some(
            "bring the manager back; `docker node ls` on a manager shows each one's status".into(),
        ),
    )
}

fn node_finding(env: &str, n: &NodeView) -> Checked {
    let check = "node";
    let what = match &n.manager {
        None => format!("{}, worker", n.roles_text()),
        Some(m) if m.leader => format!("{}, leader", n.roles_text()),
        Some(m) => format!("{}, manager {}", n.roles_text(), m.reachability),
    };
    if !n.is_ready() {
        return checked(
            check,
            Verdict::Fail,
            format!(
                "{} ({what}) at {} is {}: its tasks are rescheduled or stopped",
                n.hostname, n.address, n.state
            ),
            Some(format!(
                "`docker node ls` on a manager; start the host at {} or its Docker engine, then `vldeploy doctor -e {env}`",
                n.address
            )),
        );
    }
    if n.availability != "active" {
        return checked(
            check,
            Verdict::Warn,
            format!(
                "ready but `{}`: it takes no new task ({what})",
                n.availability
            ),
            Some(format!(
                "`docker node update --availability active {}` on a manager when it may run tasks again",
                n.hostname
            )),
        );
    }
    checked(
        check,
        Verdict::Ok,
        format!("{} ({what}) at {}: ready, active", n.hostname, n.address),
        None,
    )
}

fn service_finding(env: &str, r: &super::snapshot::ServiceReport) -> Checked {
    let check = format!("service {}", r.service);
    if r.mode == "missing" {
        return checked(
            &check,
            Verdict::Fail,
            format!("the swarm has no service `{}`", r.service),
            Some(format!("`vldeploy up -e {env}` creates it")),
        );
    }
    let nodes = {
        let mut on: Vec<&str> = r
            .tasks
            .iter()
            .filter(|t| t.state == "running" && t.health.as_deref() == Some("healthy"))
            .map(|t| t.node.as_str())
            .collect();
        on.sort_unstable();
        on.join(", ")
    };
    if r.at_target {
        return checked(
            &check,
            Verdict::Ok,
            format!(
                "{} of {} running ({}) on {}",
                r.running,
                r.target,
                r.mode,
                if nodes.is_empty() { "-" } else { &nodes }
            ),
            None,
        );
    }
    let missing = r.target - r.running;
    let error = r.last_error.as_deref().map_or_else(
        || "no task error recorded".to_owned(),
        |e| format!("last task error: {e}"),
    );
    checked(
        &check,
        Verdict::Fail,
        format!(
            "{} of {} running ({}): {missing} missing; {error}",
            r.running, r.target, r.mode
        ),
        Some(format!(
            "`docker service ps {} --no-trunc` on a manager says why; `vldeploy logs {} -e {env}`",
            r.name, r.service
        )),
    )
}

fn task_finding(s: &Snapshot) -> Checked {
    let stuck: Vec<String> = s
        .tasks
        .iter()
        .filter(|t| t.is_current() && t.state != "running")
        .map(|t| {
            let service = s
                .services
                .iter()
                .find(|v| v.id == t.service_id)
                .map_or("?", |v| v.service.as_str());
            let error = t
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            format!(
                "{service} on {}: {}{error}",
                s.node_name(&t.node_id),
                t.state
            )
        })
        .collect();
    if stuck.is_empty() {
        return checked(
            "tasks",
            Verdict::Ok,
            "every task meant to run is running".into(),
            None,
        );
    }
    checked(
        "tasks",
        Verdict::Warn,
        format!("not running yet: {}", stuck.join("; ")),
        Some(
            "a task starting is waiting for its health check; one pending names what it waits for in `docker service ps`".into(),
        ),
    )
}

fn port_finding(env: &str, probes: &[PortProbe]) -> Option<Checked> {
    if probes.is_empty() {
        return None;
    }
    let closed: Vec<String> = probes
        .iter()
        .filter(|p| !p.open)
        .map(|p| format!("{} → {} ({}:{})", p.from, p.to, p.address, p.port))
        .collect();
    if closed.is_empty() {
        return Some(checked(
            "swarm ports",
            Verdict::Ok,
            format!("{} probes between the nodes answered", probes.len()),
            None,
        ));
    }
    Some(checked(
        "swarm ports",
        Verdict::Fail,
        format!("closed: {}", closed.join(", ")),
        Some(format!(
            "`vldeploy swarm -e {env}` opens Swarm's ports between the nodes in every node's firewall"
        )),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::snapshot::tests::{SERVICES, cluster, task};
    use super::*;

    fn hosts() -> Vec<HostReach> {
        (1..=3)
            .map(|i| HostReach {
                target: format!("root@127.0.0.1:220{i}"),
                roles: if i == 3 {
                    vec![Role::Db]
                } else {
                    vec![Role::Edge, Role::App]
                },
                manager: true,
                error: None,
            })
            .collect()
    }

    fn verdicts(c: &[Checked]) -> Vec<(&str, Verdict)> {
        c.iter().map(|c| (c.check.as_str(), c.verdict)).collect()
    }

    #[test]
    fn a_healthy_swarm_passes_every_check() {
        let s = cluster();
        let hosts = hosts();
        let probe = PortProbe {
            from: "host-n1".into(),
            to: "host-n2".into(),
            address: "10.0.0.2".into(),
            port: 7946,
            open: true,
        };
        let e = Examined {
            env: "cluster",
            hosts: &hosts,
            snapshot: Some(&s),
            probes: &[probe],
            services: &SERVICES,
            now_s: 1000,
            edges: &[super::super::edge_health::EdgeProbe {
                target: "root@10.0.0.1:22".into(),
                health: Some(super::super::edge_health::EdgeHealth::Answered {
                    maintenance: false,
                    status: 200,
                }),
            }],
        };
        let c = checkup(&e);
        assert!(c.iter().all(|c| c.verdict == Verdict::Ok), "{c:#?}");
        assert_eq!(
            verdicts(&c).iter().map(|v| v.0).collect::<Vec<_>>(),
            [
                "ssh",
                "managers",
                "node",
                "node",
                "node",
                "service postgres",
                "service backend",
                "service nginx",
                "tasks",
                "api health",
                "swarm ports"
            ]
        );
        assert_eq!(c[1].finding, "3 of 3 reachable, leader host-n1");
        assert_eq!(
            c[3].finding,
            "host-n2 (edge app, manager reachable) at 10.0.0.2: ready, active"
        );
        assert_eq!(
            c[6].finding,
            "2 of 2 running (replicated 2) on host-n1, host-n2"
        );
    }

    #[test]
    fn a_paused_node_fails_naming_its_host_role_and_address() {
        let mut s = cluster();
        s.nodes[1].state = "down".into();
        s.nodes[1].manager.as_mut().unwrap().reachability = "unreachable".into();
        s.tasks[2].desired = "shutdown".into();
        let mut failed = task("b3", "backend", "n1", "starting", "running");
        failed.error = Some("no suitable node".into());
        s.tasks.push(failed);
        let mut hosts = hosts();
        hosts[1].error = Some("no ssh handshake within 5s".into());
        let e = Examined {
            env: "cluster",
            hosts: &hosts,
            snapshot: Some(&s),
            probes: &[],
            services: &SERVICES,
            now_s: 1000,
            edges: &[],
        };
        let c = checkup(&e);
        assert_eq!(
            verdicts(&c),
            [
                ("ssh", Verdict::Fail),
                ("managers", Verdict::Warn),
                ("node", Verdict::Ok),
                ("node", Verdict::Fail),
                ("node", Verdict::Ok),
                ("service postgres", Verdict::Ok),
                ("service backend", Verdict::Fail),
                ("service nginx", Verdict::Ok),
                ("tasks", Verdict::Warn),
            ]
        );
        assert_eq!(
            c[0].finding,
            "1 of 3 hosts do not answer over SSH: root@127.0.0.1:2202 (edge app, manager): no ssh handshake within 5s"
        );
        assert_eq!(
            c[1].finding,
            "unreachable: host-n2; the swarm keeps its quorum with 2 of 3"
        );
        assert_eq!(
            c[3].finding,
            "host-n2 (edge app, manager unreachable) at 10.0.0.2 is down: its tasks are rescheduled or stopped"
        );
        assert!(
            c[3].action
                .as_deref()
                .unwrap()
                .starts_with("`docker node ls` on a manager"),
            "{c:#?}"
        );
        assert_eq!(
            c[6].finding,
            "1 of 2 running (replicated 2): 1 missing; last task error: no suitable node"
        );
        assert_eq!(
            c[8].finding,
            "not running yet: backend on host-n1: starting (no suitable node)"
        );
    }

    #[test]
    fn no_manager_and_closed_ports_fail() {
        let hosts = hosts();
        let e = Examined {
            env: "cluster",
            hosts: &hosts,
            snapshot: None,
            probes: &[],
            services: &SERVICES,
            now_s: 0,
            edges: &[],
        };
        assert_eq!(
            verdicts(&checkup(&e)),
            [("ssh", Verdict::Ok), ("managers", Verdict::Fail)]
        );
        let mut s = cluster();
        for n in &mut s.nodes[1..] {
            n.manager.as_mut().unwrap().reachability = "unreachable".into();
        }
        assert_eq!(manager_finding(&s).verdict, Verdict::Fail);
        let closed = PortProbe {
            from: "a".into(),
            to: "b".into(),
            address: "10.0.0.9".into(),
            port: 2377,
            open: false,
        };
        let f = port_finding("cluster", &[closed]).unwrap();
        assert_eq!(
            (f.verdict, f.finding.as_str()),
            (Verdict::Fail, "closed: a → b (10.0.0.9:2377)")
        );
    }
}
