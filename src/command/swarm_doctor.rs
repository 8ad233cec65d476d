//! `vldeploy doctor` on an environment with `hosts:`: every host over SSH at once, the swarm read from a manager
//! that answers, Swarm's ports probed between the nodes, the API asked through each edge's nginx task; the
//! findings are decided by `crate::swarm::checkup`.

use super::swarm_status::{REACH_TIMEOUT, is_manager, manager_hosts, now_s};
use super::{CommandError, Context};
use crate::layout::SERVICES;
use crate::swarm::{EdgeProbe, HostReach, Node, PortProbe, Snapshot};

/// What doctor prints for one finding, as the one-host doctor does.
pub(super) struct Row {
    pub check: String,
    pub verdict: crate::swarm::Verdict,
    pub finding: String,
    pub action: Option<String>,
}

/// The findings of the environment's swarm.
pub(super) async fn examine(ctx: &Context) -> Result<Vec<Row>, CommandError> {
    let managers = manager_hosts(ctx).len();
    let tries = ctx.stack.hosts.iter().map(|host| async move {
        crate::swarm::connect_host(&ctx.stack, host, REACH_TIMEOUT).await
    });
    let answers = futures_util::future::join_all(tries).await;
    let mut hosts = Vec::new();
    let mut nodes = Vec::new();
    for (i, (host, answer)) in ctx.stack.hosts.iter().zip(answers).enumerate() {
        hosts.push(HostReach {
            target: format!(
                "{}@{}:{}",
                host.target.user, host.target.host, host.target.port
            ),
            roles: host.roles.clone(),
            manager: i < managers,
            // The first line: the transport's help below it is the action this finding gives.
            error: answer
                .as_ref()
                .err()
                .map(|e| e.to_string().lines().next().unwrap_or_default().to_owned()),
        });
        if let Ok(node) = answer {
            nodes.push(node);
        }
    }
    let mut snapshot = None;
    for node in &nodes {
        if matches!(is_manager(node).await, Ok(true)) {
            snapshot = Some(node.engine.swarm_snapshot(&ctx.stack.name).await?);
            break;
        }
    }
    let probes = match &snapshot {
        Some(s) => probe_ports(&nodes, s).await,
        None => Vec::new(),
    };
    let edges = edge_health(ctx, &nodes).await;
    let examined = crate::swarm::Examined {
        env: &ctx.stack.environment,
        hosts: &hosts,
        snapshot: snapshot.as_ref(),
        probes: &probes,
        services: &SERVICES,
        now_s: now_s(),
        edges: &edges,
    };
    Ok(crate::swarm::checkup(&examined)
        .into_iter()
        .map(|c| Row {
            check: c.check,
            verdict: c.verdict,
            finding: c.finding,
            action: c.action,
        })
        .collect())
}

/// `GET /api/health` through the nginx task of every edge node that answered over SSH, all at once.
async fn edge_health(ctx: &Context, nodes: &[Node]) -> Vec<EdgeProbe> {
    let command = crate::remote::edge::health_through_nginx(&ctx.stack.name);
    let asks = crate::swarm::edges(nodes).into_iter().map(|node| {
        let command = &command;
        async move {
            let t = &node.host.target;
            let health = node
                .remote
                .exec(command)
                .await
                .ok()
                .filter(|out| out.success())
                .and_then(|out| {
                    crate::swarm::parse_edge_health(&String::from_utf8_lossy(&out.stdout))
                });
            EdgeProbe {
                target: format!("{}@{}:{}", t.user, t.host, t.port),
                health,
            }
        }
    });
    futures_util::future::join_all(asks).await
}

/// From each node that answered, Swarm's ports of every other ready node: 7946 (gossip) on all, 2377 (control)
/// on managers. One command per node, all at once; a closed port costs its 2 s timeout.
async fn probe_ports(nodes: &[Node], snapshot: &Snapshot) -> Vec<PortProbe> {
    let runs = nodes.iter().map(|node| async move {
        let id = node.engine.swarm_membership().await.ok()?.node_id?;
        let me = snapshot.nodes.iter().find(|n| n.id == id)?;
        let targets: Vec<(std::net::IpAddr, u16, &str)> = snapshot
            .nodes
            .iter()
            .filter(|n| n.id != id && n.is_ready())
            .filter_map(|n| Some((n.address.parse().ok()?, n)))
            .flat_map(|(address, n)| {
                let mut ports = vec![(address, 7946, n.hostname.as_str())];
                if n.manager.is_some() {
                    ports.push((address, crate::engine::SWARM_PORT, n.hostname.as_str()));
                }
                ports
            })
            .collect();
        let asked: Vec<(std::net::IpAddr, u16)> =
            targets.iter().map(|(a, p, _)| (*a, *p)).collect();
        let out = node
            .remote
            .exec(&crate::remote::swarm::port_probes(&asked))
            .await
            .ok()?;
        let said = crate::remote::swarm::parse_port_probes(&String::from_utf8_lossy(&out.stdout));
        Some(
            targets
                .iter()
                .map(|(address, port, to)| PortProbe {
                    from: me.hostname.clone(),
                    to: (*to).to_owned(),
                    address: address.to_string(),
                    port: *port,
                    open: said
                        .iter()
                        .any(|(at, open)| *open && *at == format!("{address}:{port}")),
                })
                .collect::<Vec<_>>(),
        )
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}
