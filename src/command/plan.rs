//! `vldeploy plan`: what `up` would change, and why; `--exit-code` for drift checks.

use super::context::plan_for;
use super::{CommandError, Context};
use crate::cli::{Output, PlanArgs};
use crate::engine::Engine;

/// Exit status of `plan --exit-code` when changes are pending.
pub(crate) const CHANGES_PENDING: i32 = 2;

pub(crate) async fn plan(ctx: &Context, args: &PlanArgs) -> Result<i32, CommandError> {
    let local = Engine::local()?;
    let images = ctx.build(&local).await?;
    let connected = ctx.connect().await?;
    let desired = ctx.desired(&connected, &images, false).await?;
    let (_facts, plan) = plan_for(&connected, &desired).await?;
    let target = ctx.target_name();
    match ctx.output {
        Output::Human => print!("{}", plan.render_human(&target)),
        Output::Json => println!("{}", plan.render_json(&target)),
    }
    Ok(if args.exit_code && !plan.is_empty() {
        CHANGES_PENDING
    } else {
        0
    })
}
