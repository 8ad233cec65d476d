//! The plan of a swarm environment: what `up` would change on each node and in the stack's services. Pure.

use std::fmt::Write as _;

use super::deploy::ServicesPreview;

/// One change as a plan line: its sign (`+` create, `~` change), what, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub sign: char,
    pub summary: String,
    pub reason: String,
}

impl Change {
    fn new(sign: char, summary: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            sign,
            summary: summary.into(),
            reason: reason.into(),
        }
    }
}

/// A node's changes: joining or labelling it, its firewall, the images it receives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeChanges {
    /// `ssh://user@host:port`.
    pub host: String,
    /// Its roles, as `hosts:` gives them.
    pub roles: Vec<String>,
    pub changes: Vec<Change>,
}

/// What `up` would change across the environment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterPlan {
    pub stack: String,
    pub environment: String,
    pub nodes: Vec<NodeChanges>,
    /// The overlay network, secrets, configs and services, created or updated through a manager.
    pub services: Vec<Change>,
}

impl ClusterPlan {
    /// How many changes the plan holds.
    pub fn len(&self) -> usize {
        self.nodes.iter().map(|n| n.changes.len()).sum::<usize>() + self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plan for people: a heading, then each node with changes, then the services.
    pub fn render_human(&self) -> String {
        let mut out = String::new();
        let hosts = self.nodes.len();
        if self.is_empty() {
            let _ = writeln!(
                out,
                "{} ({}) on {hosts} hosts: no changes; the swarm matches the stack.",
                self.stack, self.environment
            );
            return out;
        }
        let n = self.len();
        let _ = writeln!(
            out,
            "{} ({}) on {hosts} hosts: {n} change{}",
            self.stack,
            self.environment,
            if n == 1 { "" } else { "s" }
        );
        for node in &self.nodes {
            let count = node.changes.len();
            let what = if count == 0 {
                "no changes".to_string()
            } else {
                format!("{count} change{}", if count == 1 { "" } else { "s" })
            };
            let _ = writeln!(out, "{} ({}): {what}", node.host, node.roles.join(", "));
            crate::plan::step_lines(&mut out, &lines(&node.changes));
        }
        let count = self.services.len();
        if count == 0 {
            let _ = writeln!(out, "services: no changes");
        } else {
            let _ = writeln!(
                out,
                "services: {count} change{}",
                if count == 1 { "" } else { "s" }
            );
            crate::plan::step_lines(&mut out, &lines(&self.services));
        }
        out
    }

    /// The plan for machines: `{"stack", "environment", "changes", "nodes": [{host, roles, changes}],
    /// "services": [{sign, summary, reason}]}`.
    pub fn render_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("changes".into(), self.len().into());
        }
        v
    }
}

fn lines(changes: &[Change]) -> Vec<(char, String, String)> {
    changes
        .iter()
        .map(|c| (c.sign, c.summary.clone(), c.reason.clone()))
        .collect()
}

/// A swarm step as a plan line, `text` as [`super::describe`] gives it.
pub fn swarm_change(step: &super::SwarmStep, text: String) -> Change {
    use super::SwarmStep;
    let reason = match step {
        SwarmStep::Init { .. } => "no host of the environment is in a swarm yet",
        SwarmStep::Join { .. } => "not a node of the environment's swarm",
        SwarmStep::Promote { .. } => "the environment's swarm needs it as a manager",
        SwarmStep::Label { .. } => "its labels differ from its roles",
    };
    let sign = match step {
        SwarmStep::Init { .. } | SwarmStep::Join { .. } => '+',
        _ => '~',
    };
    Change::new(sign, text, reason)
}

/// A firewall change as a plan line.
pub fn firewall_change(text: String, change: &crate::firewall::Change) -> Option<Change> {
    use crate::firewall::Change as Fw;
    match change {
        Fw::Unchanged => None,
        Fw::Install { reason } | Fw::Apply { reason } => {
            Some(Change::new('~', text, reason.clone()))
        }
    }
}

/// An image a node receives as a plan line.
pub fn image_change(reference: &str) -> Change {
    Change::new(
        '+',
        format!("image: send {reference}"),
        "not on this node: its missing layers are sent",
    )
}

/// The services' changes as plan lines, in the order `up` makes them.
pub fn service_changes(preview: &ServicesPreview) -> Vec<Change> {
    let mut out = Vec::new();
    if let Some(network) = &preview.network {
        out.push(Change::new(
            '+',
            format!("network: create overlay `{network}`"),
            "absent",
        ));
    }
    for name in &preview.secrets {
        out.push(Change::new(
            '+',
            format!("secret: create `{name}`"),
            "a value the swarm does not hold yet",
        ));
    }
    for name in &preview.configs {
        out.push(Change::new(
            '+',
            format!("config: create `{name}`"),
            "a file the swarm does not hold yet",
        ));
    }
    for s in &preview.services {
        let (sign, verb, reason) = match &s.from {
            None => ('+', "create", "absent".to_string()),
            Some(from) => ('~', "update", format!("runs spec {from}")),
        };
        out.push(Change::new(
            sign,
            format!("service: {verb} `{}` ({}, spec {})", s.name, s.tasks, s.to),
            reason,
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::swarm::deploy::ServiceChange;

    fn plan(nodes: Vec<NodeChanges>, services: Vec<Change>) -> ClusterPlan {
        ClusterPlan {
            stack: "shop".into(),
            environment: "cluster".into(),
            nodes,
            services,
        }
    }

    fn node(host: &str, changes: Vec<Change>) -> NodeChanges {
        NodeChanges {
            host: host.into(),
            roles: vec!["edge".into(), "app".into()],
            changes,
        }
    }

    #[test]
    fn a_swarm_that_matches_the_stack_has_one_line() {
        let p = plan(vec![node("ssh://root@a:22", vec![])], vec![]);
        assert!(p.is_empty());
        assert_eq!(
            p.render_human(),
            "shop (cluster) on 1 hosts: no changes; the swarm matches the stack.\n"
        );
        assert_eq!(p.render_json()["changes"], 0);
    }

    #[test]
    fn changes_are_listed_per_node_then_per_service_with_their_reasons() {
        let preview = ServicesPreview {
            network: None,
            secrets: vec!["shop_backend_TOKEN_ab12".into()],
            configs: vec![],
            services: vec![
                ServiceChange {
                    name: "shop_backend".into(),
                    from: Some("1111".into()),
                    to: "2222".into(),
                    tasks: "2 tasks".into(),
                },
                ServiceChange {
                    name: "shop_nginx".into(),
                    from: None,
                    to: "3333".into(),
                    tasks: "one task on each of 2 edge nodes".into(),
                },
            ],
        };
        let p = plan(
            vec![
                node("ssh://root@a:22", vec![image_change("shop/backend:7")]),
                node("ssh://root@b:22", vec![]),
            ],
            service_changes(&preview),
        );
        assert_eq!(p.len(), 4);
        assert_eq!(
            p.render_human(),
            "shop (cluster) on 2 hosts: 4 changes\n\
             ssh://root@a:22 (edge, app): 1 change\n\
             \x20 + image: send shop/backend:7  (not on this node: its missing layers are sent)\n\
             ssh://root@b:22 (edge, app): no changes\n\
             services: 3 changes\n\
             \x20 + secret: create `shop_backend_TOKEN_ab12`                                    (a value the swarm does not hold yet)\n\
             \x20 ~ service: update `shop_backend` (2 tasks, spec 2222)                         (runs spec 1111)\n\
             \x20 + service: create `shop_nginx` (one task on each of 2 edge nodes, spec 3333)  (absent)\n"
        );
        let json = p.render_json();
        assert_eq!(json["changes"], 4);
        assert_eq!(
            json["nodes"][0]["changes"][0]["summary"],
            "image: send shop/backend:7"
        );
        assert_eq!(json["services"][1]["sign"], "~");
    }

    #[test]
    fn a_firewall_that_matches_is_no_change() {
        let unchanged = crate::firewall::Change::Unchanged;
        assert_eq!(firewall_change("firewall: x".into(), &unchanged), None);
        let apply = crate::firewall::Change::Apply {
            reason: "the loaded table differs".into(),
        };
        let c = firewall_change("firewall: x".into(), &apply).unwrap();
        assert_eq!(
            (c.sign, c.reason.as_str()),
            ('~', "the loaded table differs")
        );
    }
}
