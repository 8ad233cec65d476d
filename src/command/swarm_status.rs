//! `vldeploy status` on an environment with `hosts:`: each service against its target with its tasks by node, and
//! the swarm's nodes, read from one manager that answers.

use std::time::{Duration, SystemTime};

use super::{CommandError, Context};
use crate::cli::Output;
use crate::layout::SERVICES;
use crate::swarm::{Node, ServiceReport, Snapshot};

/// How long one host may take to answer over SSH: a host that is down must not hold the command up.
pub(super) const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Seconds since the epoch, now.
pub(super) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The hosts vldeploy makes managers: the first of `hosts:` (three from three hosts on).
pub(super) fn manager_hosts(ctx: &Context) -> &[crate::stack::ClusterHost] {
    let n = crate::swarm::manager_count(ctx.stack.hosts.len()).min(ctx.stack.hosts.len());
    &ctx.stack.hosts[..n]
}

/// Whether a connected node's engine is a manager of its swarm.
pub(super) async fn is_manager(node: &Node) -> Result<bool, CommandError> {
    Ok(node.engine.swarm_membership().await?.manager)
}

/// The first manager host that answers over SSH and is a manager, tried in turn; each one that did not is named
/// with why (warned on stderr).
pub(super) async fn reach_manager(ctx: &Context) -> Result<Node, CommandError> {
    let mut missed = Vec::new();
    for host in manager_hosts(ctx) {
        match crate::swarm::connect_host(&ctx.stack, host, REACH_TIMEOUT).await {
            Ok(node) => match is_manager(&node).await {
                Ok(true) => {
                    for line in &missed {
                        ctx.out.warning(format!(
                            "manager {line}; read the swarm through {}",
                            host.target
                        ));
                    }
                    return Ok(node);
                }
                Ok(false) => missed.push(format!("{}: is not a manager of a swarm", host.target)),
                Err(e) => missed.push(format!("{}: {e}", host.target)),
            },
            Err(e) => missed.push(format!("{}: {e}", host.target)),
        }
    }
    Err(CommandError::Usage(format!(
        "no manager of environment `{}` answered:\n  {}\n  help: start a manager host; on a new environment `vldeploy up -e {}` forms the swarm",
        ctx.stack.environment,
        missed.join("\n  "),
        ctx.stack.environment
    )))
}

pub(crate) async fn status(ctx: &Context) -> Result<i32, CommandError> {
    let manager = reach_manager(ctx).await?;
    let snapshot = manager.engine.swarm_snapshot(&ctx.stack.name).await?;
    let reports = snapshot.reports(&SERVICES, now_s());
    let behind: Vec<&ServiceReport> = reports.iter().filter(|r| !r.at_target).collect();
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "stack": ctx.stack.name,
                "environment": ctx.stack.environment,
                "manager": manager.host.target.to_string(),
                "at_target": behind.is_empty(),
                "services": reports,
                "nodes": snapshot.nodes,
            })
        ),
        Output::Human => print(ctx, &manager, &snapshot, &reports),
    }
    if behind.is_empty() {
        return Ok(0);
    }
    let names: Vec<String> = behind
        .iter()
        .map(|r| format!("{} ({} of {})", r.service, r.running, r.target))
        .collect();
    ctx.out.warning(format!(
        "below target: {}; `vldeploy doctor -e {}` says why",
        names.join(", "),
        ctx.stack.environment
    ));
    Ok(1)
}

fn age(s: Option<u64>) -> String {
    s.map_or_else(
        || "-".to_owned(),
        |s| humantime::format_duration(Duration::from_secs(s)).to_string(),
    )
}

fn print(ctx: &Context, manager: &Node, snapshot: &Snapshot, reports: &[ServiceReport]) {
    println!(
        "{} ({}) on {} hosts, read through {}",
        ctx.stack.name,
        ctx.stack.environment,
        ctx.stack.hosts.len(),
        manager.host.target
    );
    println!(
        "{:<9} {:<13} {:<8} {:<7}",
        "SERVICE", "MODE", "TASKS", "TARGET"
    );
    for r in reports {
        let mark = if r.at_target { "ok" } else { "BELOW TARGET" };
        println!(
            "{:<9} {:<13} {:<8} {mark}",
            r.service,
            r.mode,
            format!("{}/{}", r.running, r.target)
        );
    }
    println!();
    let width = snapshot
        .nodes
        .iter()
        .map(|n| n.hostname.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<12} {:<width$} {:<9} {:<9} {:<22} {:<14} AGE",
        "TASK", "NODE", "ROLES", "STATE", "HEALTH", "IMAGE"
    );
    for r in reports {
        for t in &r.tasks {
            let roles = t
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",");
            println!(
                "{:<12} {:<width$} {:<9} {:<9} {:<22} {:<14} {}",
                t.task,
                t.node,
                if roles.is_empty() { "-" } else { &roles },
                t.state,
                t.health.as_deref().unwrap_or("-"),
                t.image,
                age(t.age_s)
            );
        }
    }
    println!();
    println!(
        "{:<width$} {:<15} {:<9} {:<7} {:<12} MANAGER",
        "NODE", "ADDRESS", "ROLES", "STATE", "AVAILABILITY"
    );
    for n in &snapshot.nodes {
        println!(
            "{:<width$} {:<15} {:<9} {:<7} {:<12} {}",
            n.hostname,
            n.address,
            n.roles_text().replace(' ', ","),
            n.state,
            n.availability,
            n.manager_text()
        );
    }
}
