//! `vldeploy plan` on an environment with `hosts:`: what `up` would change on each node and in the stack's
//! services, read from every node and a manager without changing anything.

use super::plan::CHANGES_PENDING;
use super::{CommandError, Context};
use crate::cli::{Output, PlanArgs};
use crate::engine::Engine;
use crate::swarm::{ClusterPlan, NodeChanges, Placement};

pub(crate) async fn plan(ctx: &Context, args: &PlanArgs) -> Result<i32, CommandError> {
    let local = Engine::local()?;
    let (builds, nodes) = tokio::try_join!(ctx.build(&local), async {
        Ok::<_, CommandError>(crate::swarm::connect(&ctx.stack).await?)
    })?;
    let facts = crate::swarm::facts(&nodes).await?;
    let steps =
        crate::swarm::plan(&ctx.stack.hosts, &facts).map_err(crate::swarm::SwarmError::from)?;
    let firewalls = crate::swarm::node_firewalls(&ctx.stack, &nodes).await?;
    let mut per_node: Vec<NodeChanges> = nodes
        .iter()
        .map(|n| NodeChanges {
            host: n.host.target.to_string(),
            roles: n.host.roles.iter().map(ToString::to_string).collect(),
            changes: Vec::new(),
        })
        .collect();
    for step in &steps {
        let text = crate::swarm::describe(step, &nodes);
        per_node[step_node(step)]
            .changes
            .push(crate::swarm::swarm_change(step, text));
    }
    for (i, (prepared, peers)) in firewalls.iter().enumerate() {
        let text = crate::swarm::firewall_text(&nodes[i], &prepared.ruleset.hash, *peers);
        if let Some(c) = crate::swarm::firewall_change(text, &prepared.change) {
            per_node[i].changes.push(c);
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let placed = crate::swarm::placements(node, &builds.images, &builds.inputs)
            .await
            .map_err(crate::swarm::DeployError::from)?;
        for (reference, how) in placed {
            if how == Placement::Send {
                per_node[i]
                    .changes
                    .push(crate::swarm::image_change(&reference));
            }
        }
    }
    // The services as a manager holds them; before the swarm is formed there is none, and every service is new.
    let manager = nodes
        .iter()
        .zip(&facts)
        .find(|(_, f)| f.manager && f.membership == crate::swarm::Membership::Active)
        .map(|(n, _)| n);
    let key = match manager {
        Some(m) => crate::facts::read_hash_key(&m.remote, &ctx.stack.name).await?,
        None => None,
    };
    let key = match key {
        Some(k) => k,
        None => crate::facts::ephemeral_hash_key()?,
    };
    let commands = crate::swarm::image_commands(&local, &builds.images).await?;
    let preview =
        crate::swarm::preview_services(&ctx.stack, manager, &builds.images, &commands, &key)
            .await?;
    let planned = ClusterPlan {
        stack: ctx.stack.name.clone(),
        environment: ctx.stack.environment.clone(),
        nodes: per_node,
        services: crate::swarm::service_changes(&preview),
    };
    match ctx.output {
        Output::Human => print!("{}", planned.render_human()),
        Output::Json => println!("{}", planned.render_json()),
    }
    Ok(if args.exit_code && !planned.is_empty() {
        CHANGES_PENDING
    } else {
        0
    })
}

/// The node a swarm step changes.
fn step_node(step: &crate::swarm::SwarmStep) -> usize {
    use crate::swarm::SwarmStep;
    match step {
        SwarmStep::Init { node }
        | SwarmStep::Join { node, .. }
        | SwarmStep::Promote { node, .. }
        | SwarmStep::Label { node, .. } => *node,
    }
}
