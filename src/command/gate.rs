//! The go-live gate of `up` in a gated environment: a staged release goes live only when the checklist passes.

use super::context::Connected;
use super::{CommandError, Context};
use crate::checklist::{Inputs, Report, Subject};
use crate::cli::Output;
use crate::plan::Desired;
use crate::rollout::{Staged, Target};

/// The marker that says the maintenance page is up because a first launch waits for the checklist (so an
/// operator's own `maintenance on` is never lifted by a passing gate).
/// `--waive ITEM --reason TEXT` pairs, checked against the environment's items.
pub(crate) fn waivers(
    ctx: &Context,
    waive: &[String],
    reason: &[String],
) -> Result<Vec<(String, String)>, CommandError> {
    if waive.is_empty() && reason.is_empty() {
        return Ok(Vec::new());
    }
    if !ctx.stack.gated {
        return Err(CommandError::Usage(format!(
            "`--waive` applies to gated environments; `{}` is not gated (add `gated: true` to it)",
            ctx.stack.environment
        )));
    }
    if waive.len() != reason.len() {
        return Err(CommandError::Usage(format!(
            "every `--waive ITEM` needs its own `--reason \"…\"` ({} items, {} reasons)",
            waive.len(),
            reason.len()
        )));
    }
    let pairs: Vec<(String, String)> = waive
        .iter()
        .cloned()
        .zip(
            reason
                .iter()
                .map(|r| crate::secret::scrub(r.trim(), &ctx.stack.secrets)),
        )
        .collect();
    crate::checklist::check_waivers(&ctx.stack, &pairs).map_err(CommandError::Usage)?;
    Ok(pairs)
}

/// Before a gated environment's first release: the maintenance page goes up, so nothing is served before
/// the checklist passes. Returns whether it did.
pub(crate) async fn close_first_launch(ctx: &Context, c: &Connected) -> Result<bool, CommandError> {
    let backend = crate::layout::container_name("backend");
    if c.engine.container_state(&backend).await?.is_some() {
        return Ok(false);
    }
    let stack = &ctx.stack.name;
    c.remote
        .run(&crate::remote::gate::hold_first_launch(stack))
        .await?;
    Ok(true)
}

/// Whether the maintenance page is up because a gated first launch waits for the checklist.
pub(crate) async fn first_launch_held(c: &Connected, stack: &str) -> Result<bool, CommandError> {
    Ok(c.remote
        .exec(&crate::remote::gate::is_held(stack))
        .await?
        .success())
}

/// What the gate decided.
pub(crate) struct Decision {
    pub report: Report,
    /// Lines for the audit log.
    pub changes: Vec<String>,
}

/// Runs the checklist on the staged release; puts it live when every item passes (or is waived),
/// else removes it (the previous release keeps serving) and fails naming the items.
pub(crate) async fn decide(
    ctx: &Context,
    c: &Connected,
    desired: &Desired,
    staged: &Staged,
    waivers: &[(String, String)],
) -> Result<Decision, (Vec<String>, Report, CommandError)> {
    let port = ctx.backend_port();
    if ctx.output == Output::Human {
        ctx.out.note(format!(
            "go-live checklist: checking the staged release `{}` …",
            staged.candidate
        ));
    }
    let report = crate::checklist::run(&Inputs {
        stack: &ctx.stack,
        remote: &c.remote,
        engine: &c.engine,
        subject: Subject::Staged {
            container: staged.candidate.clone(),
            alias: staged.alias.clone(),
            port,
        },
        nginx: crate::layout::container_name("nginx"),
        waivers,
    })
    .await;
    let target = Target {
        remote: &c.remote,
        engine: &c.engine,
        stack: &ctx.stack.name,
    };
    if !report.passed() {
        let names: Vec<String> = report.blocking().iter().map(|f| f.item.clone()).collect();
        let _ = crate::rollout::discard(&target, staged).await;
        let serving = if staged.previous {
            "the previous release keeps serving; the staged one was removed".to_string()
        } else {
            "this is the first launch: the shop shows the maintenance page until the checklist passes".to_string()
        };
        let error = CommandError::Gate(format!(
            "the go-live checklist holds the release back: {} of {} items do not pass ({})\n{serving}\n  help: fix what each item's `fix:` line says and run `vldeploy up` again; record hand-checked items with `vldeploy checklist attest ITEM --note \"…\"`; or go live anyway with `--waive ITEM --reason \"…\"` (audited)",
            names.len(),
            report.findings.len(),
            names.join(", ")
        ));
        let changes = vec![format!(
            "release `{}` held back by the go-live checklist: {}",
            staged.alias,
            names.join(", ")
        )];
        return Err((changes, report, error));
    }
    let Some(spec) = desired.containers.iter().find(|s| s.service == "backend") else {
        let e = CommandError::Io("the desired state has no backend release".into());
        return Err((Vec::new(), report, e));
    };
    // The same switch as every release: into the stable name nginx resolves, no reload.
    if let Err(e) = crate::rollout::go_live(&target, staged).await {
        return Err((Vec::new(), report, e.into()));
    }
    let after = async {
        crate::rollout::record_release(
            &c.remote,
            &ctx.stack.name,
            spec,
            &crate::state::actor(),
            super::context::git_commit(&ctx.stack.project_dir),
            crate::apply::RELEASES_KEPT,
        )
        .await?;
        let stack = &ctx.stack.name;
        c.remote
            .run(&crate::remote::gate::release_first_launch(stack))
            .await?;
        Ok::<_, CommandError>(())
    }
    .await;
    if let Err(e) = after {
        return Err((Vec::new(), report, e));
    }
    let mut changes = vec![format!(
        "release `{}` put live: the go-live checklist passed",
        staged.alias
    )];
    changes.extend(report.waived().into_iter().map(|w| format!("waived {w}")));
    Ok(Decision { report, changes })
}
