//! `vldeploy up`: take the lock, plan, apply in dependency order, wait for health, print the URL.

use std::sync::Arc;
use std::time::Instant;

use super::context::plan_for;
use super::progress::Lines;
use super::{CommandError, Context};
use crate::apply::{Host, apply};
use crate::cli::{Output, UpArgs};
use crate::engine::Engine;

pub(crate) async fn up(ctx: &Context, _args: &UpArgs) -> Result<i32, CommandError> {
    let started = Instant::now();
    let local = Engine::local()?;
    let mut desired = ctx.desired(&local).await?;
    // The backup script and its cron entry are files like the nginx config: written when they change.
    desired
        .files
        .extend(crate::backup::Setup::from_stack(&ctx.stack).files()?);
    let connected = ctx.connect().await?;
    let target = ctx.target_name();
    let url = ctx.url();
    ctx.locked(&connected, "up", || async {
        let plan = match plan_for(&connected, &desired).await {
            Ok((_, plan)) => plan,
            Err(e) => return (Vec::new(), Err(e)),
        };
        let changes: Vec<String> = plan
            .steps
            .iter()
            .map(|s| format!("{} ({})", s.summary(), s.reason()))
            .collect();
        if plan.is_empty() {
            match ctx.output {
                Output::Human => {
                    println!("{}: no changes; the stack is up at {url}", ctx.stack.name)
                }
                Output::Json => {
                    println!(
                        "{}",
                        serde_json::json!({"stack": ctx.stack.name, "changes": 0, "url": url})
                    );
                }
            }
            return (changes, Ok(0));
        }
        if ctx.output == Output::Human {
            print!("{}", plan.render_human(&target));
        }
        let host = Host {
            remote: &connected.remote,
            engine: &connected.engine,
            local: &local,
        };
        if let Err(e) = apply(&host, &plan, &desired, Arc::new(Lines::new())).await {
            return (changes, Err(e.into()));
        }
        let secs = started.elapsed().as_secs_f64();
        match ctx.output {
            Output::Human => println!(
                "{} ({}) is up at {url} — {} change{} applied in {secs:.1}s",
                ctx.stack.name,
                ctx.stack.environment,
                plan.steps.len(),
                if plan.steps.len() == 1 { "" } else { "s" }
            ),
            Output::Json => {
                let mut v = plan.render_json(&target);
                v["url"] = url.clone().into();
                v["applied"] = true.into();
                v["seconds"] = secs.into();
                println!("{v}");
            }
        }
        (changes, Ok(0))
    })
    .await
}
