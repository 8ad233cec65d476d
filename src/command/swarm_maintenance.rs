//! `vldeploy maintenance on|off|status` on a swarm: the flag in the `www` directory of every edge node (nginx
//! reads it on each request: nothing reloads). An edge that cannot be reached is named and fails the command,
//! after the page was changed on every edge that could be.

use std::sync::Arc;
use std::time::Duration;

use super::context::Audited;
use super::maintenance::{Probe, message_text, parse_probe};
use super::{CommandError, Context};
use crate::cli::{MaintenanceAction, Output};
use crate::remote::maintenance as flag_cmd;
use crate::stack::Role;
use crate::transport::Remote;

/// One edge as the command found it: its name, and its connection or why there is none.
struct Edge {
    name: String,
    remote: Result<Arc<Remote>, String>,
}

async fn connect_edges(ctx: &Context) -> Vec<Edge> {
    let mut edges = Vec::new();
    for host in ctx.stack.hosts.iter().filter(|h| h.has(Role::Edge)) {
        let mut one = ctx.stack.clone();
        one.target = host.target.clone();
        let remote = crate::host::connect(&one, Duration::from_secs(10))
            .await
            .map(Arc::new)
            .map_err(|e| e.to_string());
        edges.push(Edge {
            name: host.target.to_string(),
            remote,
        });
    }
    edges
}

async fn probe(stack: &str, remote: &Remote) -> Result<Probe, String> {
    let out = remote
        .run(&flag_cmd::probe(stack))
        .await
        .map_err(|e| e.to_string())?;
    let text = out.stdout_str();
    parse_probe(&text).ok_or_else(|| {
        format!(
            "cannot read the maintenance flag's state (the host answered `{}`)",
            text.trim()
        )
    })
}

pub(super) async fn maintenance(
    ctx: &Context,
    action: &MaintenanceAction,
) -> Result<i32, CommandError> {
    let on = match action {
        MaintenanceAction::Status => return status(ctx).await,
        MaintenanceAction::On { message } => {
            message_text(message.as_deref())?;
            true
        }
        MaintenanceAction::Off => false,
    };
    let edges = connect_edges(ctx).await;
    let command = if on {
        "maintenance on"
    } else {
        "maintenance off"
    };
    // The cluster's lock and audit log are on its first host.
    let keeper = connect_keeper(ctx).await?;
    ctx.locked_audited_on(&keeper, command, || async {
        let (changes, result) = switch(ctx, &edges, on).await;
        let reason = match action {
            MaintenanceAction::On { message } => message_text(message.as_deref())
                .ok()
                .flatten()
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let changes = changes
            .into_iter()
            .map(|c| format!("{c}{reason}"))
            .collect();
        (
            Audited {
                changes,
                ..Audited::default()
            },
            result,
        )
    })
    .await
}

async fn connect_keeper(ctx: &Context) -> Result<Arc<Remote>, CommandError> {
    let remote = crate::host::connect(&ctx.stack, Duration::from_secs(15)).await?;
    Ok(Arc::new(remote))
}

/// Sets (`on`) or removes the flag on every reachable edge; the changes made, and the outcome.
async fn switch(
    ctx: &Context,
    edges: &[Edge],
    on: bool,
) -> (Vec<String>, Result<i32, CommandError>) {
    let name = &ctx.stack.name;
    let flag = crate::layout::maintenance_flag(name);
    let mut changes = Vec::new();
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for edge in edges {
        let remote = match &edge.remote {
            Ok(r) => r,
            Err(e) => {
                failed.push(format!("edge `{}` cannot be reached: {e}", edge.name));
                rows.push((edge.name.clone(), "unreachable"));
                continue;
            }
        };
        let result = set_flag(ctx, remote, on).await;
        match result {
            Ok(switched) => {
                if switched {
                    changes.push(format!(
                        "maintenance page {} on edge {} (`{flag}`{})",
                        if on { "on" } else { "off" },
                        edge.name,
                        if on { "" } else { " removed" }
                    ));
                }
                rows.push((
                    edge.name.clone(),
                    match (on, switched) {
                        (true, true) => "on",
                        (true, false) => "already on",
                        (false, true) => "off",
                        (false, false) => "already off",
                    },
                ));
            }
            Err(e) => {
                failed.push(format!("edge `{}`: {e}", edge.name));
                rows.push((edge.name.clone(), "failed"));
            }
        }
    }
    print_switched(ctx, &rows, on, failed.is_empty(), !changes.is_empty());
    if failed.is_empty() {
        return (changes, Ok(0));
    }
    let done = rows
        .iter()
        .filter(|(_, s)| !matches!(*s, "unreachable" | "failed"))
        .count();
    let result = Err(CommandError::Io(format!(
        "{}\n  the maintenance page is {} on {done} of {} edges (those listed above); the others are unchanged\n  help: run `vldeploy maintenance {} -e {}` again once the edge is back",
        failed.join("\n"),
        if on { "on" } else { "off" },
        rows.len(),
        if on { "on" } else { "off" },
        ctx.stack.environment
    )));
    (changes, result)
}

/// Sets (`on`) or removes the flag on one edge; whether it changed.
async fn set_flag(ctx: &Context, remote: &Remote, on: bool) -> Result<bool, String> {
    let name = &ctx.stack.name;
    match probe(name, remote).await? {
        Probe::NotDeployed if on => Err(format!(
            "`{name}` is not deployed there: run `vldeploy up -e {}` first",
            ctx.stack.environment
        )),
        Probe::Off if on => {
            remote
                .upload(&crate::layout::maintenance_flag(name), b"", 0o644)
                .await
                .map_err(|e| e.to_string())?;
            Ok(true)
        }
        Probe::On { .. } if !on => {
            remote
                .run(&flag_cmd::lift(name))
                .await
                .map_err(|e| e.to_string())?;
            Ok(true)
        }
        Probe::NotDeployed | Probe::Off | Probe::On { .. } => Ok(false),
    }
}

/// Each edge's outcome, and with every edge done what the page does now.
fn print_switched(ctx: &Context, rows: &[(String, &str)], on: bool, all: bool, changed: bool) {
    match ctx.output {
        Output::Human => {
            for (edge, state) in rows {
                println!("edge {edge}: maintenance {state}");
            }
            if all {
                println!(
                    "{}",
                    if on {
                        "maintenance is on on every edge: nginx answers /api/ with 503 and Retry-After; the static site still serves."
                    } else {
                        "maintenance is off on every edge: nginx passes /api/ to the backend again."
                    }
                );
            }
        }
        Output::Json => {
            let edges: Vec<_> = rows
                .iter()
                .map(|(e, s)| serde_json::json!({"edge": e, "state": s}))
                .collect();
            println!(
                "{}",
                serde_json::json!({"on": on, "changed": changed, "edges": edges})
            );
        }
    }
}

async fn status(ctx: &Context) -> Result<i32, CommandError> {
    let edges = connect_edges(ctx).await;
    let mut rows = Vec::new();
    let mut unreachable = 0;
    for edge in &edges {
        let state = match &edge.remote {
            Ok(r) => match probe(&ctx.stack.name, r).await {
                Ok(Probe::On { .. }) => "on".to_string(),
                Ok(Probe::Off) => "off".to_string(),
                Ok(Probe::NotDeployed) => "not deployed".to_string(),
                Err(e) => {
                    unreachable += 1;
                    format!("unknown ({e})")
                }
            },
            Err(e) => {
                unreachable += 1;
                format!("unreachable ({e})")
            }
        };
        rows.push((edge.name.clone(), state));
    }
    match ctx.output {
        Output::Human => {
            for (edge, state) in &rows {
                println!("edge {edge}: maintenance {state}");
            }
        }
        Output::Json => {
            let edges: Vec<_> = rows
                .iter()
                .map(|(e, s)| serde_json::json!({"edge": e, "state": s}))
                .collect();
            println!("{}", serde_json::json!({"edges": edges}));
        }
    }
    Ok(i32::from(unreachable > 0))
}
