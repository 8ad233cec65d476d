//! `vldeploy down`: remove the stack's containers and networks; volumes only when asked, and confirmed.

use std::time::Duration;

use super::{CommandError, Context};
use crate::cli::{DownArgs, Output};
use crate::layout::{private_network, public_network};

pub(crate) async fn down(ctx: &Context, args: &DownArgs) -> Result<i32, CommandError> {
    if args.volumes && !args.yes {
        confirm_volume_deletion(ctx)?;
    }
    let c = ctx.connect().await?;
    ctx.locked(&c, "down", || async {
        let mut changes = Vec::new();
        let result = remove_all(ctx, &c, args, &mut changes).await;
        (changes, result)
    })
    .await
}

async fn remove_all(
    ctx: &Context,
    c: &super::context::Connected,
    args: &DownArgs,
    changes: &mut Vec<String>,
) -> Result<i32, CommandError> {
    let stack = ctx.stack.name.as_str();
    let containers = c.engine.stack_containers(stack).await?;
    // Front to back: nginx stops taking requests first, postgres stops last.
    let mut ordered = containers.clone();
    ordered.sort_by_key(|o| match o.service.as_deref() {
        Some("nginx") => 0,
        Some("backend") => 1,
        Some("postgres") => 3,
        _ => 2,
    });
    let mut removed = Vec::new();
    for o in &ordered {
        ctx.out.note(format!("stopping `{}` …", o.name));
        c.engine.stop(&o.name, Duration::from_secs(30)).await?;
        c.engine.remove(&o.name).await?;
        changes.push(format!("remove container `{}`", o.name));
        removed.push(o.name.clone());
    }
    for net in [public_network(stack), private_network(stack)] {
        c.engine.remove_network(&net).await?;
    }
    let mut deleted_volumes = Vec::new();
    if args.volumes {
        for v in c.engine.stack_volumes(stack).await? {
            c.engine.remove_volume(&v).await?;
            changes.push(format!("delete volume `{v}`"));
            deleted_volumes.push(v);
        }
    }
    match ctx.output {
        Output::Human => {
            println!(
                "{stack} ({}) is down: removed {} container(s).",
                ctx.stack.environment,
                removed.len()
            );
            if deleted_volumes.is_empty() {
                println!("volumes kept (the database survives); `down --volumes` deletes them.");
            } else {
                println!("deleted volumes: {}", deleted_volumes.join(", "));
            }
        }
        Output::Json => println!(
            "{}",
            serde_json::json!({"stack": stack, "removed_containers": removed, "deleted_volumes": deleted_volumes})
        ),
    }
    Ok(0)
}

/// Asks the operator to type the stack name; without a terminal, refuses and names `--yes`.
fn confirm_volume_deletion(ctx: &Context) -> Result<(), CommandError> {
    let stack = &ctx.stack.name;
    super::context::confirm_by_stack_name(
        ctx,
        format!(
            "refusing to delete the volumes of `{stack}` ({}) without confirmation: this deletes the database.\n  help: run it on a terminal to confirm, or pass `--yes` in automation",
            ctx.stack.environment
        ),
        &format!(
            "This deletes the volumes of `{stack}` on {}, including the database.",
            ctx.target_name()
        ),
    )
}
