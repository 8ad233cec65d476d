//! What forming an environment's swarm takes, from what each node says of itself: a pure function.
//!
//! The first host of `hosts:` initialises the swarm; with three hosts or more the first three are managers (a
//! majority survives one lost manager), with fewer the first alone. Every other host joins. Each node carries a
//! label `vldeploy.role.<role>=true` for each of its roles, which services are placed by.

use std::collections::BTreeMap;

use crate::stack::{ClusterHost, Role};

/// The prefix of the role labels vldeploy puts on nodes.
pub const ROLE_LABEL_PREFIX: &str = "vldeploy.role.";

/// How many managers a swarm of `nodes` hosts gets: three from three hosts on, one below.
pub fn manager_count(nodes: usize) -> usize {
    if nodes >= 3 { 3 } else { 1 }
}

/// The label of a role, e.g. `vldeploy.role.db`.
pub fn role_label(role: Role) -> String {
    format!("{ROLE_LABEL_PREFIX}{role}")
}

/// A node's swarm membership as its engine reports it (`docker info`'s `Swarm.LocalNodeState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// In no swarm.
    Inactive,
    /// Joining, not yet accepted.
    Pending,
    /// In a swarm.
    Active,
    /// The engine could not take part (e.g. it cannot reach the managers).
    Error,
    /// A locked swarm that needs its unlock key.
    Locked,
}

/// What one node says of itself, and, once a manager is known, what the swarm says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub membership: Membership,
    /// The swarm's id, while a member.
    pub cluster_id: Option<String>,
    /// Its node id in the swarm, while a member.
    pub node_id: Option<String>,
    /// Whether it is a manager (it answers the swarm's API).
    pub manager: bool,
    /// Its labels as the swarm holds them (read from a manager), while a member.
    pub labels: BTreeMap<String, String>,
}

impl NodeFacts {
    /// A node in no swarm.
    pub fn inactive() -> Self {
        Self {
            membership: Membership::Inactive,
            cluster_id: None,
            node_id: None,
            manager: false,
            labels: BTreeMap::new(),
        }
    }
}

/// One step of forming the swarm; nodes are indices into the environment's hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmStep {
    /// `swarm init` on this node, advertising its address.
    Init { node: usize },
    /// This node joins through `via` (a manager), as a manager or a worker.
    Join {
        node: usize,
        via: usize,
        manager: bool,
    },
    /// A worker that should be a manager is promoted (through `via`).
    Promote { node: usize, via: usize },
    /// Sets and removes role labels on this node (through `via`).
    Label {
        node: usize,
        via: usize,
        set: Vec<String>,
        remove: Vec<String>,
    },
}

/// Why the swarm cannot be formed as asked; each names the hosts involved (by their place in `hosts:`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwarmPlanError {
    #[error("hosts {first} and {second} are in two different swarms ({first_id} and {second_id})")]
    TwoSwarms {
        first: String,
        first_id: String,
        second: String,
        second_id: String,
    },
    #[error(
        "host {node} is {state} in its swarm: the engine there needs attention before vldeploy joins it"
    )]
    Unusable { node: String, state: &'static str },
    #[error(
        "a swarm that none of the environment's hosts manages holds {members}: start one of its managers, or take them out of it (`docker swarm leave`)"
    )]
    NoManager { members: String },
    #[error("the facts name {facts} hosts and the environment {hosts}")]
    Mismatch { facts: usize, hosts: usize },
}

/// The steps that make the swarm of `hosts` from `facts` (one per host, in the same order). Empty when the swarm
/// is as it should be.
pub fn plan(hosts: &[ClusterHost], facts: &[NodeFacts]) -> Result<Vec<SwarmStep>, SwarmPlanError> {
    if hosts.len() != facts.len() {
        return Err(SwarmPlanError::Mismatch {
            facts: facts.len(),
            hosts: hosts.len(),
        });
    }
    let name = |i: usize| hosts[i].target.to_string();
    for (i, f) in facts.iter().enumerate() {
        let state = match f.membership {
            Membership::Error => "in an error state",
            Membership::Locked => "locked",
            Membership::Pending => "pending",
            Membership::Inactive | Membership::Active => continue,
        };
        return Err(SwarmPlanError::Unusable {
            node: name(i),
            state,
        });
    }
    // Every member must belong to the same swarm.
    let mut swarm: Option<(usize, &str)> = None;
    for (i, f) in facts.iter().enumerate() {
        let Some(id) = f.cluster_id.as_deref() else {
            continue;
        };
        match swarm {
            None => swarm = Some((i, id)),
            Some((first, first_id)) if first_id != id => {
                return Err(SwarmPlanError::TwoSwarms {
                    first: name(first),
                    first_id: first_id.to_owned(),
                    second: name(i),
                    second_id: id.to_owned(),
                });
            }
            Some(_) => {}
        }
    }
    let managers = manager_count(hosts.len());
    let mut steps = Vec::new();
    // The manager new members join through: an existing manager, else the first host once it has initialised.
    let manager = facts
        .iter()
        .position(|f| f.membership == Membership::Active && f.manager);
    let via = manager.unwrap_or(0);
    if manager.is_none() {
        // Members without a manager here: a new swarm would split them off, so nothing is done.
        let members: Vec<String> = (0..facts.len())
            .filter(|&i| facts[i].membership == Membership::Active)
            .map(name)
            .collect();
        if !members.is_empty() {
            return Err(SwarmPlanError::NoManager {
                members: members.join(", "),
            });
        }
        steps.push(SwarmStep::Init { node: 0 });
    }
    let is_member = |i: usize| facts[i].membership == Membership::Active || i == via;
    for (i, f) in facts.iter().enumerate() {
        let manager = i < managers;
        if !is_member(i) {
            steps.push(SwarmStep::Join {
                node: i,
                via,
                manager,
            });
        } else if manager && i != via && !f.manager {
            steps.push(SwarmStep::Promote { node: i, via });
        }
    }
    for (i, host) in hosts.iter().enumerate() {
        // A node that joins now has no labels yet; one already in the swarm has those a manager reported.
        let fresh = !facts[i].membership.eq(&Membership::Active);
        let empty = BTreeMap::new();
        let have = if fresh { &empty } else { &facts[i].labels };
        let want: Vec<String> = host.roles.iter().map(|r| role_label(*r)).collect();
        let set: Vec<String> = want
            .iter()
            .filter(|l| have.get(*l).map(String::as_str) != Some("true"))
            .cloned()
            .collect();
        let remove: Vec<String> = have
            .keys()
            .filter(|k| k.starts_with(ROLE_LABEL_PREFIX) && !want.contains(k))
            .cloned()
            .collect();
        if !set.is_empty() || !remove.is_empty() {
            steps.push(SwarmStep::Label {
                node: i,
                via,
                set,
                remove,
            });
        }
    }
    Ok(steps)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::stack::SshUrl;

    fn host(port: u16, roles: &[Role]) -> ClusterHost {
        ClusterHost {
            target: SshUrl {
                user: "root".into(),
                host: "127.0.0.1".into(),
                port,
            },
            roles: roles.to_vec(),
        }
    }

    /// edge+app, app, db: the sandbox cluster.
    fn three() -> Vec<ClusterHost> {
        vec![
            host(2201, &[Role::Edge, Role::App]),
            host(2202, &[Role::Edge, Role::App]),
            host(2203, &[Role::Db]),
        ]
    }

    fn member(id: &str, manager: bool, roles: &[Role]) -> NodeFacts {
        NodeFacts {
            membership: Membership::Active,
            cluster_id: Some("swarm-a".into()),
            node_id: Some(id.into()),
            manager,
            labels: roles
                .iter()
                .map(|r| (role_label(*r), "true".to_owned()))
                .collect(),
        }
    }

    fn labels(roles: &[Role]) -> Vec<String> {
        roles.iter().map(|r| role_label(*r)).collect()
    }

    #[test]
    fn from_nothing_the_first_host_initialises_and_the_others_join_as_managers() {
        let facts = vec![NodeFacts::inactive(); 3];
        assert_eq!(
            plan(&three(), &facts).unwrap(),
            vec![
                SwarmStep::Init { node: 0 },
                SwarmStep::Join {
                    node: 1,
                    via: 0,
                    manager: true
                },
                SwarmStep::Join {
                    node: 2,
                    via: 0,
                    manager: true
                },
                SwarmStep::Label {
                    node: 0,
                    via: 0,
                    set: labels(&[Role::Edge, Role::App]),
                    remove: vec![]
                },
                SwarmStep::Label {
                    node: 1,
                    via: 0,
                    set: labels(&[Role::Edge, Role::App]),
                    remove: vec![]
                },
                SwarmStep::Label {
                    node: 2,
                    via: 0,
                    set: labels(&[Role::Db]),
                    remove: vec![]
                },
            ]
        );
    }

    #[test]
    fn a_formed_and_labelled_swarm_needs_nothing() {
        let facts = vec![
            member("n1", true, &[Role::Edge, Role::App]),
            member("n2", true, &[Role::Edge, Role::App]),
            member("n3", true, &[Role::Db]),
        ];
        assert_eq!(plan(&three(), &facts).unwrap(), vec![]);
    }

    #[test]
    fn a_missing_node_joins_through_a_manager_and_gets_its_labels() {
        let facts = vec![
            NodeFacts::inactive(),
            member("n2", true, &[Role::Edge, Role::App]),
            member("n3", true, &[Role::Db]),
        ];
        assert_eq!(
            plan(&three(), &facts).unwrap(),
            vec![
                SwarmStep::Join {
                    node: 0,
                    via: 1,
                    manager: true
                },
                SwarmStep::Label {
                    node: 0,
                    via: 1,
                    set: labels(&[Role::Edge, Role::App]),
                    remove: vec![]
                },
            ]
        );
    }

    #[test]
    fn two_hosts_have_one_manager_and_a_worker() {
        let hosts = vec![
            host(2201, &[Role::Edge, Role::App]),
            host(2202, &[Role::Db]),
        ];
        let steps = plan(&hosts, &[NodeFacts::inactive(), NodeFacts::inactive()]).unwrap();
        assert_eq!(
            steps[1],
            SwarmStep::Join {
                node: 1,
                via: 0,
                manager: false
            }
        );
    }

    #[test]
    fn a_worker_that_should_manage_is_promoted() {
        let facts = vec![
            member("n1", true, &[Role::Edge, Role::App]),
            member("n2", false, &[Role::Edge, Role::App]),
            member("n3", true, &[Role::Db]),
        ];
        assert_eq!(
            plan(&three(), &facts).unwrap(),
            vec![SwarmStep::Promote { node: 1, via: 0 }]
        );
    }

    #[test]
    fn a_role_taken_away_loses_its_label_and_other_labels_stay() {
        let mut facts = vec![
            member("n1", true, &[Role::Edge, Role::App]),
            member("n2", true, &[Role::Edge, Role::App, Role::Db]),
            member("n3", true, &[Role::Db]),
        ];
        facts[1].labels.insert("team".into(), "shop".into());
        assert_eq!(
            plan(&three(), &facts).unwrap(),
            vec![SwarmStep::Label {
                node: 1,
                via: 0,
                set: vec![],
                remove: labels(&[Role::Db])
            }]
        );
    }

    #[test]
    fn hosts_in_two_swarms_are_refused() {
        let mut other = member("x", true, &[]);
        other.cluster_id = Some("swarm-b".into());
        let facts = vec![member("n1", true, &[]), NodeFacts::inactive(), other];
        assert_eq!(
            plan(&three(), &facts).unwrap_err().to_string(),
            "hosts ssh://root@127.0.0.1:2201 and ssh://root@127.0.0.1:2203 are in two different swarms (swarm-a and swarm-b)"
        );
    }

    #[test]
    fn members_whose_managers_are_all_elsewhere_are_refused() {
        let facts = vec![
            NodeFacts::inactive(),
            member("n2", false, &[]),
            NodeFacts::inactive(),
        ];
        assert_eq!(
            plan(&three(), &facts).unwrap_err().to_string(),
            "a swarm that none of the environment's hosts manages holds ssh://root@127.0.0.1:2202: start one of its managers, or take them out of it (`docker swarm leave`)"
        );
    }

    #[test]
    fn a_node_in_error_or_locked_is_refused() {
        let mut facts = vec![NodeFacts::inactive(); 3];
        facts[2].membership = Membership::Locked;
        assert_eq!(
            plan(&three(), &facts).unwrap_err().to_string(),
            "host ssh://root@127.0.0.1:2203 is locked in its swarm: the engine there needs attention before vldeploy joins it"
        );
    }
}
