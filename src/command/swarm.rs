//! `vldeploy swarm`: forms the Docker Swarm of an environment with `hosts:`; `up` on such an environment runs the
//! stack's services on it.

use super::context::Audited;
use super::{CommandError, Context};
use std::time::Instant;

use crate::cli::Output;
use crate::engine::Engine;

pub(crate) async fn swarm(ctx: &Context) -> Result<i32, CommandError> {
    if ctx.stack.hosts.is_empty() {
        return Err(CommandError::Usage(format!(
            "environment `{}` runs on one host (`host:`): there is no swarm to form\n  help: list its hosts by role under `hosts:` to run it across several",
            ctx.stack.environment
        )));
    }
    let done = crate::swarm::form(&ctx.stack, &ctx.out).await?;
    let hosts = ctx.stack.hosts.len();
    match ctx.output {
        Output::Human if done.is_empty() => println!("swarm of {hosts} hosts: no changes"),
        Output::Human => {
            let plural = if done.len() == 1 { "" } else { "s" };
            println!("swarm of {hosts} hosts: {} change{plural}", done.len());
        }
        Output::Json => {
            let json = serde_json::json!({"hosts": hosts, "changes": done});
            println!("{json}");
        }
    }
    Ok(0)
}

/// `vldeploy up` on an environment with `hosts:`: the images built, the swarm formed (with every node's
/// firewall), the images on every node that runs them, then the stack's services, waited for; in a gated
/// environment, only once the go-live checklist passes (see `swarm_gate`). `waivers`: `--waive` pairs.
pub(crate) async fn up_cluster(
    ctx: &Context,
    waivers: &[(String, String)],
) -> Result<i32, CommandError> {
    let started = Instant::now();
    let local = Engine::local()?;
    let (builds, nodes) = tokio::try_join!(ctx.build(&local), async {
        Ok::<_, CommandError>(crate::swarm::connect(&ctx.stack).await?)
    })?;
    // The deploy lock and the audit log of a cluster live on its first host, where `lock` and `audit` look.
    let first = nodes[0].remote.clone();
    let mut changes = Vec::new();
    ctx.locked_audited_on(&first, "up", || async {
        let result = converge(ctx, &nodes, &local, &builds, waivers, &mut changes).await;
        let result = result.map(|()| report(ctx, &changes, started));
        let audited = Audited {
            changes: std::mem::take(&mut changes),
            ..Audited::default()
        };
        (audited, result)
    })
    .await
}

/// The swarm formed, the images on every node that runs them, the services converged; each change is pushed
/// to `changes` as it is made, so that a failure still leaves them in the audit log.
async fn converge(
    ctx: &Context,
    nodes: &[crate::swarm::Node],
    local: &Engine,
    builds: &crate::builder::Builds,
    waivers: &[(String, String)],
    changes: &mut Vec<String>,
) -> Result<(), CommandError> {
    changes.extend(crate::swarm::form_nodes(&ctx.stack, nodes, &ctx.out).await?);
    changes.extend(
        crate::swarm::deliver(
            nodes,
            local,
            &builds.images,
            &builds.inputs,
            ctx.stack.command_timeout,
            &ctx.out,
        )
        .await?,
    );
    let manager = crate::swarm::manager(nodes).await?;
    // Secret names carry a hash keyed with the first manager's key, as single-host labels do.
    let key = crate::facts::hash_key(&manager.remote, &ctx.stack.name).await?;
    let commands = crate::swarm::image_commands(local, &builds.images).await?;
    super::swarm_edge::before_services(ctx, nodes, &builds.images, &commands, &key, changes)
        .await?;
    // One design of the services for the candidate and the rollout: both are held to the same specs.
    let want = crate::swarm::design(&ctx.stack, &builds.images, &commands, &key)
        .map_err(crate::swarm::DeployError::from)?;
    let backend = crate::swarm::service_name(&ctx.stack.name, "backend");
    // A first launch is one with no backend yet, or one an earlier `up` left held behind the page.
    let first_launch = ctx.stack.gated
        && (manager.engine.running_service(&backend).await?.is_none()
            || held_on_an_edge(ctx, nodes).await?);
    if first_launch {
        for edge in crate::swarm::edges(nodes) {
            edge.remote
                .run(&crate::remote::gate::hold_first_launch(&ctx.stack.name))
                .await?;
        }
        changes.push(
            "maintenance page up on every edge until the go-live checklist passes (first launch)"
                .into(),
        );
    } else if ctx.stack.gated {
        let candidate =
            crate::swarm::stage_candidate(&ctx.stack, manager, &want, &ctx.out, changes).await?;
        if let Some(candidate) = candidate {
            let looked = super::swarm_gate::candidate(&candidate);
            let gated = gate(ctx, nodes, manager, &looked, waivers, false, changes).await;
            // The candidate served no customer; it goes whatever the checklist said.
            manager.engine.remove_service(&candidate).await?;
            gated?;
        }
    }
    crate::swarm::converge_services(&ctx.stack, manager, &want, &ctx.out, changes).await?;
    super::swarm_edge::after_services(ctx, nodes, false, changes).await?;
    if first_launch {
        let looked = super::swarm_gate::serving(ctx);
        gate(ctx, nodes, manager, &looked, waivers, true, changes).await?;
        for edge in crate::swarm::edges(nodes) {
            edge.remote
                .run(&crate::remote::gate::release_first_launch(&ctx.stack.name))
                .await?;
        }
        changes.push("maintenance page lifted on every edge: the go-live checklist passed".into());
    }
    // The backup script and its cron entry, on the db node alone.
    changes.extend(super::db_node::install_backup(&ctx.stack, nodes).await?);
    Ok(())
}

/// Whether a gated first launch holds the maintenance page up on some edge.
async fn held_on_an_edge(
    ctx: &Context,
    nodes: &[crate::swarm::Node],
) -> Result<bool, CommandError> {
    for edge in crate::swarm::edges(nodes) {
        let held = edge
            .remote
            .exec(&crate::remote::gate::is_held(&ctx.stack.name))
            .await?;
        if held.success() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The go-live checklist against `looked`, printed; an error naming each item that does not pass.
async fn gate(
    ctx: &Context,
    nodes: &[crate::swarm::Node],
    manager: &crate::swarm::Node,
    looked: &super::swarm_gate::Looked,
    waivers: &[(String, String)],
    first_launch: bool,
    changes: &mut Vec<String>,
) -> Result<(), CommandError> {
    ctx.out.note(format!(
        "go-live checklist: checking {} across {} hosts …",
        looked.describe,
        nodes.len()
    ));
    let report = super::swarm_gate::run(ctx, nodes, manager, looked, waivers).await;
    if ctx.output == Output::Human {
        super::swarm_gate::print(ctx, &report);
    }
    let verdict = super::swarm_gate::verdict(&report, first_launch);
    if verdict.is_err() {
        let names: Vec<String> = report.blocking().iter().map(|f| f.item.clone()).collect();
        changes.push(format!(
            "release held back by the go-live checklist: {}",
            names.join(", ")
        ));
    } else {
        let line = format!("{} passed the go-live checklist", looked.describe);
        ctx.out.note(&line);
        changes.push(line);
        changes.extend(report.waived().into_iter().map(|w| format!("waived {w}")));
    }
    verdict
}

/// Prints what `up` on a cluster did; its exit code.
fn report(ctx: &Context, changes: &[String], started: Instant) -> i32 {
    let secs = started.elapsed().as_secs_f64();
    let hosts = ctx.stack.hosts.len();
    match ctx.output {
        Output::Human if changes.is_empty() => {
            println!("{} on {hosts} hosts: no changes", ctx.stack.name);
        }
        Output::Human => {
            let plural = if changes.len() == 1 { "" } else { "s" };
            println!(
                "{} ({}) is up on {hosts} hosts — {} change{plural} applied in {secs:.1}s",
                ctx.stack.name,
                ctx.stack.environment,
                changes.len()
            );
        }
        Output::Json => {
            let json = serde_json::json!({"hosts": hosts, "changes": changes, "seconds": secs});
            println!("{json}");
        }
    }
    0
}
