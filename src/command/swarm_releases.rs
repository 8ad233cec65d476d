//! `vldeploy releases` and `vldeploy rollback` on an environment with `hosts:`: the releases Swarm keeps of each
//! service — its spec and the one before it (`PreviousSpec`) — and putting the previous one back through Swarm.
//!
//! Swarm's two specs live in the managers' Raft store (any manager answers, the first host need not), and they
//! are all a rollback can go to — an older spec's secrets, configs and images are not kept for it. Which
//! backend release each `up` and `rollback` put in place, when and by whom, is read from the cluster's audit
//! log on its first host and listed beside them.

use super::context::Audited;
use super::{CommandError, Context};
use crate::cli::{Output, RollbackArgs};
use crate::layout::SERVICES;
use crate::swarm::{Node, RecordedRelease, RollbackStep, ServiceReleases};

/// How many of the latest audit entries `releases` reads for the releases vldeploy recorded.
const AUDIT_READ: usize = 200;

/// What the manager keeps of each of the stack's services (those it has).
async fn read(ctx: &Context, manager: &Node) -> Result<Vec<ServiceReleases>, CommandError> {
    let mut all = Vec::new();
    for service in SERVICES {
        let name = crate::swarm::service_name(&ctx.stack.name, service);
        if manager.engine.running_service(&name).await?.is_none() {
            continue;
        }
        let out = manager
            .remote
            .run(&crate::remote::service_spec::previous_spec(&name))
            .await?;
        let json = String::from_utf8_lossy(&out.stdout);
        if let Some(r) = manager
            .engine
            .service_releases(service, &name, &json)
            .await?
        {
            all.push(r);
        }
    }
    Ok(all)
}

/// The backend releases the cluster's audit log (on its first host) recorded, newest first.
async fn recorded(ctx: &Context) -> Result<Vec<RecordedRelease>, CommandError> {
    let first = ctx.connect_keeper().await?;
    let entries = crate::state::audit_read(&first.remote, &ctx.stack.name, AUDIT_READ).await?;
    let name = crate::swarm::service_name(&ctx.stack.name, "backend");
    Ok(crate::swarm::recorded_releases(&entries, "backend", &name))
}

pub(crate) async fn releases(ctx: &Context) -> Result<i32, CommandError> {
    let manager = super::swarm_status::reach_manager(ctx).await?;
    let services = read(ctx, &manager).await?;
    let rows: Vec<_> = services.iter().flat_map(ServiceReleases::rows).collect();
    let recorded = recorded(ctx).await?;
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "stack": ctx.stack.name,
                "environment": ctx.stack.environment,
                "manager": manager.host.target.to_string(),
                "releases": rows,
                "services": services,
                "recorded": recorded,
            })
        ),
        Output::Human => {
            if rows.is_empty() {
                println!(
                    "no services of `{}` on the swarm of `{}` yet (run `vldeploy up -e {}`)",
                    ctx.stack.name, ctx.stack.environment, ctx.stack.environment
                );
                return Ok(0);
            }
            println!(
                "{} ({}) releases Swarm keeps, read through {}",
                ctx.stack.name, ctx.stack.environment, manager.host.target
            );
            println!(
                "  {:<26} {:<9} {:<6} {:<40} NOTE",
                "RELEASE", "SPEC", "TASKS", "IMAGE"
            );
            for r in &rows {
                let mark = if r.tasks > 0 { "*" } else { " " };
                println!(
                    "{mark} {:<26} {:<9} {:<6} {:<40} {}",
                    r.id,
                    r.spec,
                    r.tasks,
                    r.image,
                    r.note.as_deref().unwrap_or("-")
                );
            }
            println!(
                "(* running; `vldeploy rollback -e {}` puts the backend's previous release back)",
                ctx.stack.environment
            );
            if !recorded.is_empty() {
                println!(
                    "backend releases vldeploy recorded (audit log on {}), newest first",
                    ctx.target_name()
                );
                for r in &recorded {
                    let kept = rows
                        .iter()
                        .find(|k| k.id == r.id)
                        .map_or("not kept by Swarm", |k| k.spec);
                    println!(
                        "  {}  {:<26} {:<9} {:<7} {:<24} {kept}",
                        humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.time)
                        ),
                        r.id,
                        r.command,
                        r.result,
                        r.actor,
                    );
                }
            }
        }
    }
    Ok(0)
}

pub(crate) async fn rollback(ctx: &Context, args: &RollbackArgs) -> Result<i32, CommandError> {
    // The deploy lock and the audit log of a cluster live on its first host, as `up`'s do.
    let first = crate::swarm::connect_host(
        &ctx.stack,
        &ctx.stack.hosts[0],
        super::swarm_status::REACH_TIMEOUT,
    )
    .await?;
    let manager = super::swarm_status::reach_manager(ctx).await?;
    let wanted = args.wanted();
    ctx.locked_audited_on(&first.remote, "rollback", || async {
        let mut changes = Vec::new();
        let result = roll_back(ctx, &manager, wanted, &mut changes).await;
        let result = match result {
            Err(e) if changes.is_empty() => {
                changes.push(format!(
                    "rollback to {}",
                    wanted.unwrap_or("the backend's previous release")
                ));
                Err(e)
            }
            other => other,
        };
        let audited = Audited {
            changes,
            ..Audited::default()
        };
        (audited, result)
    })
    .await
}

async fn roll_back(
    ctx: &Context,
    manager: &Node,
    wanted: Option<&str>,
    changes: &mut Vec<String>,
) -> Result<i32, CommandError> {
    let env = ctx.stack.environment.as_str();
    let services = read(ctx, manager).await?;
    let step = crate::swarm::rollback_step(&services, wanted)
        .map_err(|e| CommandError::Usage(e.to_string().replace("<env>", env)))?;
    let (service, name, to, from, image) = match step {
        RollbackStep::AlreadyLive(id) => {
            println!("`{id}` is already the current release; nothing to do.");
            return Ok(0);
        }
        RollbackStep::Restore {
            service,
            name,
            to,
            from,
            image,
        } => (service, name, to, from, image),
    };
    ctx.out
        .note(format!("rolling `{name}` back to `{to}` ({image}) …"));
    let out = manager
        .remote
        .run(&crate::remote::service_spec::previous_spec(&name))
        .await?;
    let json = String::from_utf8_lossy(&out.stdout);
    if !manager.engine.restore_previous_spec(&name, &json).await? {
        return Err(CommandError::Usage(format!(
            "`{name}` no longer keeps a previous release; nothing was changed"
        )));
    }
    let line = format!("service: roll back `{name}` to `{to}`, from `{from}`");
    changes.push(line);
    // Waited for as `up` waits for an update: its tasks replaced one at a time, each healthy first.
    let snapshot = manager.engine.swarm_snapshot(&ctx.stack.name).await?;
    let target = snapshot
        .reports(&[service.as_str()], super::swarm_status::now_s())
        .first()
        .map_or(1, |r| r.target);
    let hash = to.trim_start_matches(&format!("{service}-")).to_owned();
    crate::swarm::await_spec(&manager.engine, &name, &hash, target).await?;
    match ctx.output {
        Output::Human => println!(
            "rolled back `{name}` to `{to}` ({image}), from `{from}`\nnote: Swarm keeps `{from}` as the previous release now; the next `vldeploy up -e {env}` puts stack.yaml's release back"
        ),
        Output::Json => println!(
            "{}",
            serde_json::json!({"stack": ctx.stack.name, "service": name, "rolled_back_to": to, "from": from, "image": image})
        ),
    }
    Ok(0)
}
