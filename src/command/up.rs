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
    super::firewall::validate(ctx)?;
    let local = Engine::local()?;
    let desired = ctx.desired(&local).await?;
    let connected = ctx.connect().await?;
    let target = ctx.target_name();
    let url = ctx.url();
    ctx.locked(&connected, "up", || async {
        let plan = match plan_for(&connected, &desired).await {
            Ok((_, plan)) => plan,
            Err(e) => return (Vec::new(), Err(e)),
        };
        let firewall = match super::firewall::prepare_to_change(ctx, &connected).await {
            Ok(f) => f,
            Err(e) => return (Vec::new(), Err(e)),
        };
        let mut changes: Vec<String> = plan
            .steps
            .iter()
            .map(|s| format!("{} ({})", s.summary(), s.reason()))
            .collect();
        let firewall_change = firewall.change.summary(&firewall.ruleset);
        changes.extend(firewall_change.clone());
        if changes.is_empty() {
            match ctx.output {
                Output::Human => {
                    println!("{}: no changes; the stack is up at {url}", ctx.stack.name)
                }
                Output::Json => {
                    println!(
                        "{}",
                        serde_json::json!({"stack": ctx.stack.name, "changes": 0, "url": url,
                            "firewall": firewall.ruleset.hash})
                    );
                }
            }
            return (changes, Ok(0));
        }
        if ctx.output == Output::Human {
            if !plan.is_empty() {
                print!("{}", plan.render_human(&target));
            }
            if let Some(s) = &firewall_change {
                println!("firewall: {s}");
            }
        }
        let host = Host {
            remote: &connected.remote,
            engine: &connected.engine,
            local: &local,
            actor: crate::state::actor(),
            git: super::context::git_commit(&ctx.stack.project_dir),
        };
        if !plan.is_empty()
            && let Err(e) = apply(&host, &plan, &desired, Arc::new(Lines::new())).await
        {
            return (changes, Err(e.into()));
        }
        let applied = match super::firewall::converge(
            ctx,
            &connected,
            &firewall,
            crate::firewall::revert_after(),
        )
        .await
        {
            Ok(a) => a,
            Err(e) => return (changes, Err(e)),
        };
        let secs = started.elapsed().as_secs_f64();
        match ctx.output {
            Output::Human => {
                if applied.is_some() {
                    println!(
                        "{}",
                        super::firewall::applied_line(&firewall, applied.as_ref())
                    );
                }
                println!(
                    "{} ({}) is up at {url} — {} change{} applied in {secs:.1}s",
                    ctx.stack.name,
                    ctx.stack.environment,
                    changes.len(),
                    if changes.len() == 1 { "" } else { "s" }
                );
            }
            Output::Json => {
                let mut v = plan.render_json(&target);
                v["url"] = url.clone().into();
                v["applied"] = true.into();
                v["seconds"] = secs.into();
                v["firewall"] = super::firewall::applied_json(&firewall, applied.as_ref());
                println!("{v}");
            }
        }
        (changes, Ok(0))
    })
    .await
}
