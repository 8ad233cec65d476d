//! `vldeploy firewall status|probe|apply`, and the firewall step of `up`.

use std::time::Duration;

use super::context::Connected;
use super::{CommandError, Context};
use crate::cli::{FirewallAction, Output};
use crate::firewall::{Applied, Confirm, FirewallError, Policy, Prepared, Reach};

pub(crate) async fn firewall(ctx: &Context, action: &FirewallAction) -> Result<i32, CommandError> {
    match action {
        FirewallAction::Probe => probe(ctx).await,
        FirewallAction::Status => status(ctx).await,
        FirewallAction::Apply { revert_after } => {
            validate(ctx)?;
            let after = revert_after.map_or_else(crate::firewall::revert_after, |s| {
                Duration::from_secs(s).max(crate::firewall::MIN_REVERT_AFTER)
            });
            let connected = ctx.connect().await?;
            ctx.locked(&connected, "firewall apply", || async {
                let prepared = match prepare_to_change(ctx, &connected).await {
                    Ok(p) => p,
                    Err(e) => return (Vec::new(), Err(e)),
                };
                let changes: Vec<String> = prepared
                    .change
                    .summary(&prepared.ruleset)
                    .into_iter()
                    .collect();
                let result = converge(ctx, &connected, &prepared, after).await;
                let code = result.map(|applied| {
                    print_applied(ctx, &prepared, applied.as_ref());
                    0
                });
                (changes, code)
            })
            .await
        }
    }
}

/// A firewall error as a command error (the message is kept whole).
#[allow(clippy::needless_pass_by_value)] // the shape `map_err` takes
pub(crate) fn fail(e: FirewallError) -> CommandError {
    CommandError::Firewall(e)
}

/// Refuses a firewall policy that contradicts itself, before anything is built, sent or changed.
pub(crate) fn validate(ctx: &Context) -> Result<(), CommandError> {
    let ssh_port = Reach::for_stack(&ctx.stack).ssh_port();
    Policy::from_stack(&ctx.stack, ssh_port).map_err(fail)?;
    Ok(())
}

/// Reads the host's firewall and renders the stack's; changes nothing.
pub(crate) async fn prepare(ctx: &Context, c: &Connected) -> Result<Prepared, CommandError> {
    let prepared = crate::firewall::prepare(&c.remote, &ctx.stack)
        .await
        .map_err(fail)?;
    if prepared.cuts_ssh {
        ctx.out.note(format!(
            "firewall: test switch `{}` set: the ruleset leaves SSH out",
            crate::firewall::TEST_CUT_SSH_ENV
        ));
    }
    Ok(prepared)
}

/// Like `prepare`, and refuses (before anything changes) a host that cannot take the change: no `nft`, not
/// root, or an earlier apply still waiting for its revert.
pub(crate) async fn prepare_to_change(
    ctx: &Context,
    c: &Connected,
) -> Result<Prepared, CommandError> {
    let prepared = prepare(ctx, c).await?;
    if !prepared.change.is_unchanged() {
        prepared.observed.usable(c.remote.name()).map_err(fail)?;
    }
    Ok(prepared)
}

/// Applies `prepared` safely; `None` when the host's firewall was already right.
pub(crate) async fn converge(
    ctx: &Context,
    c: &Connected,
    prepared: &Prepared,
    revert_after: Duration,
) -> Result<Option<Applied>, CommandError> {
    if prepared.change.is_unchanged() {
        return Ok(None);
    }
    if let Some(summary) = prepared.change.summary(&prepared.ruleset) {
        ctx.out.note(format!("firewall: {summary}"));
    }
    let confirm = Confirm {
        stack: &ctx.stack,
        ssh_port: prepared.policy.ssh_port,
    };
    let say = |line: &str| ctx.out.note(line);
    let applied = crate::firewall::safe_apply(
        &c.remote,
        &confirm,
        &prepared.ruleset,
        &prepared.change,
        &prepared.observed,
        revert_after,
        &say,
    )
    .await
    .map_err(fail)?;
    Ok(Some(applied))
}

/// One line (or a JSON object) saying what the firewall apply did.
fn print_applied(ctx: &Context, prepared: &Prepared, applied: Option<&Applied>) {
    match ctx.output {
        Output::Json => println!("{}", applied_json(prepared, applied)),
        Output::Human => println!("{}", applied_line(prepared, applied)),
    }
}

pub(crate) fn applied_line(prepared: &Prepared, applied: Option<&Applied>) -> String {
    match applied {
        None => format!("firewall: no changes ({})", prepared.ruleset.hash),
        Some(a) if a.swapped => format!(
            "firewall: ruleset {} applied and confirmed over a new connection in {:.1}s; loaded at boot by {}",
            a.hash,
            a.confirm_s,
            a.boot.describe()
        ),
        Some(a) => format!(
            "firewall: ruleset {} installed for boot ({})",
            a.hash,
            a.boot.describe()
        ),
    }
}

pub(crate) fn applied_json(prepared: &Prepared, applied: Option<&Applied>) -> serde_json::Value {
    serde_json::json!({
        "hash": prepared.ruleset.hash,
        "change": prepared.change,
        "applied": applied,
    })
}

async fn probe(ctx: &Context) -> Result<i32, CommandError> {
    let report = crate::firewall::probe(&ctx.stack).await.map_err(fail)?;
    match ctx.output {
        Output::Json => println!("{}", report.to_json()),
        Output::Human => {
            println!(
                "firewall probe of `{}` ({}) from this machine",
                ctx.stack.name, ctx.stack.environment
            );
            print!("{}", report.render_human());
        }
    }
    Ok(if report.passed() {
        0
    } else {
        crate::run::FAILURE
    })
}

async fn status(ctx: &Context) -> Result<i32, CommandError> {
    let c = ctx.connect().await?;
    let p = prepare(ctx, &c).await?;
    let o = &p.observed;
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "stack": ctx.stack.name,
                "host": ctx.target_name(),
                "table": crate::firewall::TABLE,
                "loaded": o.table,
                "loaded_hash": o.live_hash,
                "wanted_hash": p.ruleset.hash,
                "installed_hash": o.file_hash,
                "boot": o.boot,
                "in_sync": p.change.is_unchanged(),
                "change": p.change,
                "allow": p.policy.allow,
                "icmp": p.policy.icmp,
                "must_be_closed": p.policy.must_be_closed,
                "last_apply": o.last_outcome,
                "revert_armed": o.armed,
            })
        ),
        Output::Human => {
            println!(
                "firewall of `{}` ({}) on {}",
                ctx.stack.name,
                ctx.stack.environment,
                ctx.target_name()
            );
            let loaded = match (&o.table, &o.live_hash) {
                (false, _) => "not loaded".to_owned(),
                (true, Some(h)) if o.edited => format!("loaded, {h}, but changed by hand since"),
                (true, Some(h)) if *h == p.ruleset.hash => format!("loaded, {h} (up to date)"),
                (true, Some(h)) => format!("loaded, {h} (the stack wants {})", p.ruleset.hash),
                (true, None) => "loaded, without vldeploy's hash (changed by hand)".to_owned(),
            };
            println!("  table {}: {loaded}", crate::firewall::TABLE);
            println!(
                "  installed: {} {}; loaded at boot by {}",
                crate::firewall::RULESET_PATH,
                o.file_hash.as_deref().unwrap_or("(missing)"),
                o.boot.describe()
            );
            let allow: Vec<String> = p
                .policy
                .allow
                .iter()
                .map(|a| {
                    if a.from.is_empty() {
                        format!("{} ({})", a.label(), a.why)
                    } else {
                        format!("{} ({}, from {})", a.label(), a.why, a.from.join(" "))
                    }
                })
                .collect();
            println!("  allowed: {}", allow.join(", "));
            println!(
                "  must be closed: {}",
                p.policy
                    .must_be_closed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!(
                "  icmp: {}",
                if p.policy.icmp { "answered" } else { "dropped" }
            );
            if let Some(last) = &o.last_outcome {
                println!("  last apply: {}", outcome_text(last, crate::state::now()));
            }
            if let Some(dir) = &o.armed {
                println!("  a revert is armed: {dir}");
            }
            match p.change.summary(&p.ruleset) {
                None => println!("  in sync with the stack"),
                Some(s) => println!("  `vldeploy up` would {s}"),
            }
        }
    }
    Ok(0)
}

/// The host's record of the last apply (`confirmed 1796159922`, `reverted 0 1796159922`) for people:
/// `confirmed 2026-12-01 21:18 UTC (12 min ago)`, `reverted by the host 2026-12-01 21:18 UTC (…)`.
fn outcome_text(raw: &str, now: u64) -> String {
    let Some((head, at)) = raw
        .trim()
        .rsplit_once(' ')
        .and_then(|(h, t)| Some((h, t.parse::<u64>().ok()?)))
    else {
        return raw.to_string();
    };
    let what = match head.strip_prefix("reverted") {
        Some(status) => match status.trim() {
            "" | "0" => "reverted by the host".to_string(),
            code => format!("reverted by the host (nft exited {code})"),
        },
        None => head.to_string(),
    };
    format!("{what} {}", crate::timestamp::when(at, now))
}

#[cfg(test)]
mod tests {
    use super::outcome_text;

    #[test]
    fn the_last_apply_reads_as_a_date() {
        let now = 1_796_159_922;
        assert_eq!(
            outcome_text("confirmed 1796159202", now),
            "confirmed 2026-12-01 21:06 UTC (12 min ago)"
        );
        assert_eq!(
            outcome_text("reverted 0 1796159202", now),
            "reverted by the host 2026-12-01 21:06 UTC (12 min ago)"
        );
        assert_eq!(outcome_text("reverted", now), "reverted");
        assert_eq!(outcome_text("confirmed soon", now), "confirmed soon");
    }
}
