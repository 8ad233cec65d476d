//! `vldeploy bootstrap [--harden-ssh]`: make a fresh server ready for vldeploy, locked and audited.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{CommandError, Context};
use crate::bootstrap::{self, Harden, Step};
use crate::cli::{BootstrapArgs, Output};

/// Every progress line of bootstrap goes through here: a note of the one output stream.
fn progress(line: &str) {
    crate::output::Output::global().note(line);
}

pub(crate) async fn bootstrap(ctx: &Context, args: &BootstrapArgs) -> Result<i32, CommandError> {
    let started = Instant::now();
    let stack = &ctx.stack;
    let user = stack.bootstrap_user.as_str();
    let keys = bootstrap::operator_keys(stack)?;
    let wanted = bootstrap::wanted(stack, keys, args.harden_ssh);
    let remote = bootstrap::connect_as(stack, user, Duration::from_secs(15))
        .await
        .map_err(|e| {
            let hint = if user == "root" {
                "\n  help: a host hardened with `--harden-ssh` refuses root: set `bootstrap_user:` to a user with sudo"
            } else {
                ""
            };
            CommandError::Usage(format!("{e}{hint}"))
        })?;
    let remote = Arc::new(remote);
    let target = remote.name().to_owned();
    if user != "root" {
        let out = remote.exec(&crate::remote::host::sudo_check()).await?;
        if !out.success() {
            return Err(CommandError::Usage(format!(
                "`{target}` cannot run commands as root through `sudo -n`: {}\n  help: bootstrap needs a user with sudo without a password (e.g. `ubuntu` on a cloud image), or `bootstrap_user: root`",
                out.stderr_tail(1).trim()
            )));
        }
    }
    let lock = crate::state::acquire(remote.clone(), &stack.name, "bootstrap").await?;
    let (changes, result) = run(ctx, &remote, &wanted, started).await;
    let quiet = changes.is_empty() && result.is_ok();
    if !quiet {
        let entry = crate::state::AuditEntry {
            time: crate::state::now(),
            actor: crate::state::actor(),
            command: if args.harden_ssh {
                "bootstrap --harden-ssh".to_owned()
            } else {
                "bootstrap".to_owned()
            },
            environment: stack.environment.clone(),
            changes,
            result: if result.is_ok() { "ok" } else { "failed" }.to_owned(),
            error: result.as_ref().err().map(ToString::to_string),
            waived: Vec::new(),
            note: Some(format!("as `{user}` on {target}")),
        };
        if let Err(e) =
            crate::state::audit_append(&remote, &stack.name, &entry, &stack.secrets).await
        {
            tracing::warn!("could not write the audit log: {e}");
        }
        // What this connection wrote in the stack's directory (the audit log) is the deploy user's, who writes
        // it from now on.
        if wanted.user != user {
            let own = crate::remote::bootstrap::as_root(
                crate::remote::bootstrap::make_dir(
                    &crate::layout::stack_dir(&stack.name),
                    &wanted.user,
                    "0750",
                    true,
                ),
                user,
            );
            if let Err(e) = remote.run(&own).await {
                tracing::warn!(
                    "could not hand the stack's directory to `{}`: {e}",
                    wanted.user
                );
            }
        }
    }
    if let Err(e) = lock.release().await {
        tracing::warn!("could not release the lock: {e}");
    }
    result
}

/// Facts, plan, apply, hardening; returns the steps done (for the audit log) and the exit code.
async fn run(
    ctx: &Context,
    remote: &crate::transport::Remote,
    wanted: &bootstrap::Wanted,
    started: Instant,
) -> (Vec<String>, Result<i32, CommandError>) {
    let user = ctx.stack.bootstrap_user.as_str();
    let t = Instant::now();
    let facts = match bootstrap::read_facts(remote, wanted, user).await {
        Ok(f) => f,
        Err(e) => return (Vec::new(), Err(e.into())),
    };
    let facts_s = t.elapsed().as_secs_f64();
    if let Err(e) = facts.os.supported(remote.name()) {
        return (Vec::new(), Err(e.into()));
    }
    let steps = bootstrap::plan(wanted, &facts);
    let target = remote.name();
    match ctx.output {
        Output::Json => println!("{}", plan_json(&steps, target)),
        Output::Human => print!("{}", bootstrap::render(&steps, target)),
    }
    if steps.is_empty() {
        return (Vec::new(), Ok(0));
    }
    progress(&format!("bootstrap: facts read in {facts_s:.1}s"));
    let mut done = match bootstrap::apply(remote, &steps, wanted, user, &progress).await {
        Ok(d) => d,
        Err(e) => return (Vec::new(), Err(e.into())),
    };
    if let (Some(dropin), Some(step)) = (
        &wanted.sshd_dropin,
        steps.iter().find(|s| matches!(s, Step::HardenSsh { .. })),
    ) {
        let t = Instant::now();
        let h = Harden {
            stack: &ctx.stack,
            remote,
            bootstrap_user: user,
            dropin,
            revert_after: bootstrap::revert_after(),
        };
        if let Err(e) = bootstrap::harden(&h, &progress).await {
            return (done, Err(e.into()));
        }
        progress(&format!(
            "bootstrap: {}: done in {:.1}s",
            step.summary(),
            t.elapsed().as_secs_f64()
        ));
        done.push(step.summary());
    }
    let n = done.len();
    let line = format!(
        "bootstrap: {n} change{} applied in {:.1}s; `{}` can now run `vldeploy up`",
        if n == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64(),
        ctx.target_name()
    );
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"applied": done, "seconds": started.elapsed().as_secs_f64()})
        ),
        Output::Human => println!("{line}"),
    }
    (done, Ok(0))
}

fn plan_json(steps: &[Step], target: &str) -> serde_json::Value {
    serde_json::json!({
        "target": target,
        "changes": steps.len(),
        "steps": steps
            .iter()
            .map(|s| serde_json::json!({"summary": s.summary(), "reason": s.reason()}))
            .collect::<Vec<_>>(),
    })
}
