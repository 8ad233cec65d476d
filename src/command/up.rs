//! `vldeploy up`: take the lock, plan, apply in dependency order, wait for health, certificates, print the URL.

use std::sync::Arc;
use std::time::Instant;

use super::certs::{cert_error, certificate_step, describe, reload_provided};
use super::context::plan_for;
use super::progress::Lines;
use super::{CommandError, Context};
use crate::apply::{Host, apply};
use crate::cli::{Output, UpArgs};
use crate::engine::Engine;

pub(crate) async fn up(ctx: &Context, _args: &UpArgs) -> Result<i32, CommandError> {
    let started = Instant::now();
    if let Some(refused) = crate::tls::plain_http_refused(&ctx.stack) {
        return Err(CommandError::Usage(refused));
    }
    let local = Engine::local()?;
    let desired = ctx.desired(&local).await?;
    let connected = ctx.connect().await?;
    let target = ctx.target_name();
    let url = ctx.url();
    ctx.locked(&connected, "up", || async {
        // nginx needs a certificate before it starts: a placeholder until the CA issues one.
        let prepared = match crate::tls::prepare(&connected.remote, &ctx.stack).await {
            Ok(p) => p,
            Err(e) => return (Vec::new(), Err(cert_error(ctx, &target, &e))),
        };
        let plan = match plan_for(&connected, &desired).await {
            Ok((_, plan)) => plan,
            Err(e) => return (prepared.into_iter().collect(), Err(e)),
        };
        let installed = prepared.is_some();
        let mut changes: Vec<String> = prepared.into_iter().collect();
        changes.extend(
            plan.steps
                .iter()
                .map(|s| format!("{} ({})", s.summary(), s.reason())),
        );
        if plan.is_empty() {
            if let Err(e) = reload_provided(ctx, &connected, installed).await {
                return (changes, Err(e));
            }
            let certificate = match certificate_step(ctx, &connected, false).await {
                Ok(c) => c,
                Err(e) => return (changes, Err(e)),
            };
            if let Some(c) = &certificate {
                changes.extend(c.changes.clone());
            }
            match ctx.output {
                Output::Human => {
                    if let Some(c) = &certificate {
                        println!("{}", describe(&ctx.stack.domain, c));
                    }
                    if changes.is_empty() {
                        println!("{}: no changes; the stack is up at {url}", ctx.stack.name);
                    } else {
                        println!("{} is up at {url}", ctx.stack.name);
                    }
                }
                Output::Json => {
                    println!(
                        "{}",
                        serde_json::json!({"stack": ctx.stack.name, "changes": changes.len(), "url": url,
                            "certificate": certificate.as_ref().map(|c| &c.report)})
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
        if let Err(e) = reload_provided(ctx, &connected, installed).await {
            return (changes, Err(e));
        }
        let certificate = match certificate_step(ctx, &connected, false).await {
            Ok(c) => c,
            Err(e) => return (changes, Err(e)),
        };
        if let Some(c) = &certificate {
            changes.extend(c.changes.clone());
            if ctx.output == Output::Human {
                println!("{}", describe(&ctx.stack.domain, c));
            }
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
                v["certificate"] = serde_json::to_value(certificate.as_ref().map(|c| &c.report))
                    .unwrap_or_default();
                println!("{v}");
            }
        }
        (changes, Ok(0))
    })
    .await
}
