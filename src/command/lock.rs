//! `vldeploy lock status|release`: the deploy lock on the host.

use super::{CommandError, Context};
use crate::cli::{LockAction, Output};

pub(crate) async fn lock(ctx: &Context, action: &LockAction) -> Result<i32, CommandError> {
    let c = ctx.connect_keeper().await?;
    let stack = &ctx.stack.name;
    match action {
        LockAction::Status => {
            let held = crate::state::lock_inspect(&c.remote, stack).await?;
            match (ctx.output, held) {
                (Output::Json, held) => println!(
                    "{}",
                    serde_json::json!({"stack": stack, "locked": held.is_some(),
                        "holder": held.as_ref().map(|(i, _)| i), "idle_s": held.as_ref().map(|(_, idle)| idle)})
                ),
                (Output::Human, None) => {
                    println!("`{stack}` on {} is not locked.", ctx.target_name())
                }
                (Output::Human, Some((i, idle))) => println!(
                    "`{stack}` on {} is locked by {} running `{}` (pid {} on {}), started {}s ago, last sign of life {idle}s ago.",
                    ctx.target_name(),
                    i.holder,
                    i.command,
                    i.pid,
                    i.machine,
                    crate::state::now().saturating_sub(i.started),
                ),
            }
        }
        LockAction::Release => {
            let removed = crate::state::lock_release_any(&c.remote, stack).await?;
            let entry = crate::state::AuditEntry {
                time: crate::state::now(),
                actor: crate::state::actor(),
                command: "lock release".into(),
                environment: ctx.stack.environment.clone(),
                changes: removed
                    .iter()
                    .map(|i| format!("freed the lock of {} (`{}`)", i.holder, i.command))
                    .collect(),
                result: "ok".into(),
                error: None,
                waived: Vec::new(),
                note: None,
            };
            crate::state::audit_append(&c.remote, stack, &entry, &ctx.stack.secrets).await?;
            match (ctx.output, removed) {
                (Output::Json, r) => {
                    println!("{}", serde_json::json!({"stack": stack, "released": r}))
                }
                (Output::Human, Some(i)) => {
                    println!("freed the lock held by {} (`{}`).", i.holder, i.command)
                }
                (Output::Human, None) => println!("`{stack}` was not locked."),
            }
        }
    }
    Ok(0)
}
