//! `vldeploy plan`: what `up` would change, and why; `--exit-code` for drift checks.

use super::context::Connected;
use super::{CommandError, Context};
use crate::cli::{Output, PlanArgs};
use crate::engine::Engine;
use crate::firewall::Prepared;
use crate::plan::{Desired, Plan};

/// Exit status of `plan --exit-code` when changes are pending.
pub(crate) const CHANGES_PENDING: i32 = 2;

pub(crate) async fn plan(ctx: &Context, args: &PlanArgs) -> Result<i32, CommandError> {
    if !ctx.stack.hosts.is_empty() {
        return super::swarm_plan::plan(ctx, args).await;
    }
    let local = Engine::local()?;
    let (images, connected) = tokio::try_join!(ctx.build(&local), ctx.connect())?;
    let desired = ctx.desired(&connected, &images, false).await?;
    let planned = host_plan(ctx, &connected, &desired).await?;
    let target = ctx.target_name();
    match ctx.output {
        Output::Human => print!("{}", planned.plan.render_human(&target)),
        Output::Json => println!("{}", planned.plan.render_json(&target)),
    }
    Ok(if args.exit_code && !planned.plan.is_empty() {
        CHANGES_PENDING
    } else {
        0
    })
}

/// The plan of one host and what it was made from.
pub(crate) struct HostPlan {
    pub(crate) plan: Plan,
    /// The firewall's reading, ruleset and change: what `up`'s safe apply carries out.
    pub(crate) firewall: Prepared,
}

/// Reads the host once and plans everything `up` converges: containers, files, cron entries, the
/// certificate and the firewall ruleset.
pub(crate) async fn host_plan(
    ctx: &Context,
    c: &Connected,
    desired: &Desired,
) -> Result<HostPlan, CommandError> {
    let gathered = crate::facts::gather(&c.remote, &c.engine, desired).await?;
    let firewall = crate::firewall::prepared_from(gathered.firewall, &ctx.stack)
        .map_err(super::firewall::fail)?;
    if firewall.cuts_ssh {
        ctx.out.note(format!(
            "firewall: test switch `{}` set: the ruleset leaves SSH out",
            crate::firewall::TEST_CUT_SSH_ENV
        ));
    }
    let wanted = Desired {
        firewall: Some(firewall.ruleset.hash.clone()),
        ..desired.clone()
    };
    let plan = crate::plan::plan(&wanted, &gathered.facts);
    Ok(HostPlan { plan, firewall })
}
