//! Forming an environment's swarm: connect to every host, read what each says of its membership, plan, apply.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::plan::{Membership, NodeFacts, SwarmPlanError, SwarmStep, plan};
use crate::engine::{Engine, EngineError, SwarmMembership};
use crate::output::Output;
use crate::stack::{ClusterHost, Stack};
use crate::transport::{Remote, TransportError};

/// Why the swarm could not be formed; each names the host.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Plan(#[from] SwarmPlanError),
    #[error(
        "host {host}: cannot tell the address it reaches the other hosts from (`ip -4 route get` said: {said})"
    )]
    Address { host: String, said: String },
    #[error(transparent)]
    Firewall(#[from] crate::firewall::FirewallError),
    #[error("host {host}: the swarm does not list it after it joined")]
    NotListed { host: String },
}

/// One host of the environment, connected.
pub struct Node {
    pub host: ClusterHost,
    pub remote: Arc<Remote>,
    pub engine: Engine,
    /// Where the other hosts reach it, and what it advertises to the swarm.
    pub address: IpAddr,
}

/// Connects to every host of `stack.hosts`, one after another, and reads each one's address.
pub async fn connect(stack: &Stack) -> Result<Vec<Node>, SwarmError> {
    let mut nodes = Vec::new();
    for host in &stack.hosts {
        nodes.push(connect_host(stack, host, Duration::from_secs(15)).await?);
    }
    Ok(nodes)
}

/// Connects to one host of `stack.hosts` within `timeout`, and reads its address.
pub async fn connect_host(
    stack: &Stack,
    host: &ClusterHost,
    timeout: Duration,
) -> Result<Node, SwarmError> {
    let mut one = stack.clone();
    one.target = host.target.clone();
    let remote = crate::host::connect(&one, timeout).await?;
    let engine = Engine::connect(&remote).await?;
    let out = remote.exec(&crate::remote::swarm::route_source()).await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let address =
        crate::remote::swarm::parse_route_source(&text).ok_or_else(|| SwarmError::Address {
            host: host.target.to_string(),
            said: format!(
                "{}{}",
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })?;
    Ok(Node {
        host: host.clone(),
        remote: Arc::new(remote),
        engine,
        address,
    })
}

fn membership(m: &SwarmMembership) -> Membership {
    match m.state.as_str() {
        "pending" => Membership::Pending,
        "active" => Membership::Active,
        "error" => Membership::Error,
        "locked" => Membership::Locked,
        _ => Membership::Inactive,
    }
}

/// What every node says of itself, with its labels as a manager lists them.
pub async fn facts(nodes: &[Node]) -> Result<Vec<NodeFacts>, SwarmError> {
    let mut facts = Vec::new();
    for node in nodes {
        let m = node.engine.swarm_membership().await?;
        facts.push(NodeFacts {
            membership: membership(&m),
            cluster_id: m.cluster_id,
            node_id: m.node_id,
            manager: m.manager,
            labels: std::collections::BTreeMap::new(),
        });
    }
    if let Some(i) = facts
        .iter()
        .position(|f| f.membership == Membership::Active && f.manager)
    {
        let listed = nodes[i].engine.swarm_nodes().await?;
        for f in &mut facts {
            if let Some(n) = listed.iter().find(|n| Some(&n.id) == f.node_id.as_ref()) {
                f.labels = n.labels.clone();
            }
        }
    }
    Ok(facts)
}

/// A step as the plan shows it.
pub fn describe(step: &SwarmStep, nodes: &[Node]) -> String {
    let name = |i: usize| nodes[i].host.target.to_string();
    match step {
        SwarmStep::Init { node } => format!(
            "swarm: initialise on {} (advertising {})",
            name(*node),
            nodes[*node].address
        ),
        SwarmStep::Join { node, manager, .. } => format!(
            "swarm: {} joins as a {}",
            name(*node),
            if *manager { "manager" } else { "worker" }
        ),
        SwarmStep::Promote { node, .. } => format!("swarm: promote {} to manager", name(*node)),
        SwarmStep::Label {
            node, set, remove, ..
        } => {
            let mut parts: Vec<String> = set.iter().map(|l| format!("+{l}")).collect();
            parts.extend(remove.iter().map(|l| format!("-{l}")));
            format!("swarm: label {} {}", name(*node), parts.join(" "))
        }
    }
}

/// Forms the swarm of `stack`'s hosts: the steps applied, empty when it was as it should be.
pub async fn form(stack: &Stack, out: &Output) -> Result<Vec<String>, SwarmError> {
    let nodes = connect(stack).await?;
    form_nodes(stack, &nodes, out).await
}

/// [`form`] over nodes already connected.
pub async fn form_nodes(
    stack: &Stack,
    nodes: &[Node],
    out: &Output,
) -> Result<Vec<String>, SwarmError> {
    let facts = facts(nodes).await?;
    let steps = plan(&stack.hosts, &facts)?;
    let mut done = Vec::new();
    for step in &steps {
        let text = describe(step, nodes);
        out.note(&text);
        apply(step, nodes).await?;
        done.push(text);
    }
    done.extend(firewall(stack, nodes, out).await?);
    Ok(done)
}

/// Each node's firewall as it is and as the stack wants it, Swarm's ports open to the other nodes alone (the
/// number of those nodes beside it). Changes nothing.
pub async fn node_firewalls(
    stack: &Stack,
    nodes: &[Node],
) -> Result<Vec<(crate::firewall::Prepared, usize)>, SwarmError> {
    let mut prepared = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let peers: Vec<IpAddr> = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n.address)
            .collect();
        let observed = crate::firewall::observe(&node.remote).await?;
        let one = crate::firewall::prepared_for_swarm(observed, stack, &peers)?;
        prepared.push((one, peers.len()));
    }
    Ok(prepared)
}

/// A node's firewall change as `up` and `plan` say it.
pub fn firewall_text(node: &Node, ruleset_hash: &str, peers: usize) -> String {
    format!(
        "firewall: {} gets ruleset {ruleset_hash} (Swarm's ports open to {peers} other node{})",
        node.host.target,
        if peers == 1 { "" } else { "s" }
    )
}

/// Brings every node's firewall to the stack's ruleset with Swarm's ports open to the other nodes alone, each
/// applied safely (armed revert, confirmed over a new connection).
async fn firewall(stack: &Stack, nodes: &[Node], out: &Output) -> Result<Vec<String>, SwarmError> {
    let mut done = Vec::new();
    for (node, (prepared, peers)) in nodes.iter().zip(node_firewalls(stack, nodes).await?) {
        if prepared.change.is_unchanged() {
            continue;
        }
        prepared.observed.usable(node.remote.name())?;
        let text = firewall_text(node, &prepared.ruleset.hash, peers);
        out.note(&text);
        let mut one = stack.clone();
        one.target = node.host.target.clone();
        let confirm = crate::firewall::Confirm {
            stack: &one,
            ssh_port: prepared.policy.ssh_port,
        };
        let say = |line: &str| out.note(line);
        crate::firewall::safe_apply(
            &node.remote,
            &confirm,
            &prepared.ruleset,
            &prepared.change,
            &prepared.observed,
            crate::firewall::revert_after(),
            &say,
        )
        .await?;
        done.push(text);
    }
    Ok(done)
}

async fn apply(step: &SwarmStep, nodes: &[Node]) -> Result<(), SwarmError> {
    match step {
        SwarmStep::Init { node } => {
            let n = &nodes[*node];
            n.engine.init_swarm(&n.address.to_string()).await?;
        }
        SwarmStep::Join { node, via, manager } => {
            // The token goes from the manager's API to the joining engine's, never to a file or a log.
            let tokens = nodes[*via].engine.join_tokens().await?;
            let token = if *manager {
                &tokens.manager
            } else {
                &tokens.worker
            };
            let n = &nodes[*node];
            n.engine
                .join_swarm(
                    &n.address.to_string(),
                    &nodes[*via].address.to_string(),
                    token,
                )
                .await?;
        }
        SwarmStep::Promote { node, via } => {
            let listed = listed(&nodes[*node], &nodes[*via]).await?;
            nodes[*via]
                .engine
                .update_swarm_node(&listed, &[], &[], true)
                .await?;
        }
        SwarmStep::Label {
            node,
            via,
            set,
            remove,
        } => {
            let listed = listed(&nodes[*node], &nodes[*via]).await?;
            nodes[*via]
                .engine
                .update_swarm_node(&listed, set, remove, false)
                .await?;
        }
    }
    Ok(())
}

/// `node` as the manager `via` lists it (its id read from the node itself, which may have just joined).
async fn listed(node: &Node, via: &Node) -> Result<crate::engine::SwarmNode, SwarmError> {
    let id = node.engine.swarm_membership().await?.node_id;
    via.engine
        .swarm_nodes()
        .await?
        .into_iter()
        .find(|n| Some(&n.id) == id.as_ref())
        .ok_or_else(|| SwarmError::NotListed {
            host: node.host.target.to_string(),
        })
}
