//! `vldeploy audit`: the host's audit log, newest last.

use super::{CommandError, Context};
use crate::cli::{AuditArgs, Output};

pub(crate) async fn audit(ctx: &Context, args: &AuditArgs) -> Result<i32, CommandError> {
    let c = ctx.connect_keeper().await?;
    let entries = crate::state::audit_read(&c.remote, &ctx.stack.name, args.last).await?;
    match ctx.output {
        Output::Json => println!("{}", serde_json::to_string(&entries).unwrap_or_default()),
        Output::Human => {
            if entries.is_empty() {
                println!(
                    "no audit entries for `{}` on {}",
                    ctx.stack.name,
                    ctx.target_name()
                );
            }
            for e in &entries {
                println!(
                    "{}  {:<24} {:<14} {:<11} {}",
                    e.time,
                    e.actor,
                    e.command,
                    e.environment,
                    if e.result == "ok" {
                        "ok".to_string()
                    } else {
                        format!(
                            "FAILED: {}",
                            e.error
                                .as_deref()
                                .unwrap_or("")
                                .lines()
                                .next()
                                .unwrap_or("")
                        )
                    }
                );
                // A change may quote an operator's words: one line each, whatever they hold.
                for change in &e.changes {
                    println!("      {}", crate::render::escape::line(change));
                }
            }
        }
    }
    Ok(0)
}
