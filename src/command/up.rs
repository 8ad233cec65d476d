//! `vldeploy up`: plan, apply in dependency order, wait for health, print the URL.

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
    let desired = ctx.desired(&local).await?;
    let connected = ctx.connect().await?;
    let (_facts, plan) = plan_for(&connected, &desired).await?;
    let target = ctx.target_name();
    let url = ctx.url();
    if plan.is_empty() {
        match ctx.output {
            Output::Human => println!("{}: no changes; the stack is up at {url}", ctx.stack.name),
            Output::Json => println!(
                "{}",
                serde_json::json!({"stack": ctx.stack.name, "changes": 0, "url": url})
            ),
        }
        return Ok(0);
    }
    if ctx.output == Output::Human {
        print!("{}", plan.render_human(&target));
    }
    let host = Host {
        remote: &connected.remote,
        engine: &connected.engine,
        local: &local,
    };
    apply(&host, &plan, &desired, Arc::new(Lines::new())).await?;
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
            v["url"] = url.into();
            v["applied"] = true.into();
            v["seconds"] = secs.into();
            println!("{v}");
        }
    }
    Ok(0)
}
