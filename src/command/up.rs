//! `vldeploy up`: take the lock, plan, apply in dependency order (health-gated), certificates, firewall, the
//! go-live gate in gated environments, print the URL.

use std::time::Instant;

use super::certs::{cert_error, certificate_step, describe, reload_provided};
use super::context::{Audited, Connected};
use super::{CommandError, Context};
use crate::apply::{Host, apply};
use crate::checklist::Report;
use crate::cli::{Output, UpArgs};
use crate::engine::Engine;
use crate::plan::Desired;

pub(crate) async fn up(ctx: &Context, args: &UpArgs) -> Result<i32, CommandError> {
    let started = Instant::now();
    // Refusals that need no host come first: nothing is built or changed for a stack that cannot go up.
    super::firewall::validate(ctx)?;
    if let Some(refused) = crate::tls::plain_http_refused(&ctx.stack) {
        return Err(CommandError::Usage(refused));
    }
    let waivers = super::gate::waivers(ctx, &args.waive, &args.reason)?;
    let local = Engine::local()?;
    let images = ctx.build(&local).await?;
    let connected = ctx.connect_quiet().await?;
    // An interrupted restore left the API on the maintenance page and the databases mid-way: which data should
    // serve is the operator's call, so `up` stops here and names the two ways out.
    if let Some(j) = ctx.interrupted_restore(&connected).await {
        return Err(CommandError::Usage(format!(
            "{}
  `up` changed nothing: it goes on once that restore is finished or rolled back",
            j.describe(&ctx.stack.environment)
        )));
    }
    let desired = ctx.desired(&connected, &images, true).await?;
    ctx.locked_audited(&connected, "up", || async {
        let run = Run {
            ctx,
            args,
            c: &connected,
            local: &local,
            desired: &desired,
            waivers: &waivers,
            started,
        };
        let (changes, report, result) = run.converge().await;
        if let Some(r) = &report {
            if ctx.output == Output::Human {
                print!(
                    "{}",
                    crate::secret::scrub(&r.render_human(), &ctx.stack.secrets)
                );
            }
        }
        let waived = report.as_ref().map(Report::waived).unwrap_or_default();
        let result = match result {
            Ok(json) => {
                let maintenance = super::maintenance::on_since(ctx, &connected).await;
                run.summary(&changes, report.as_ref(), json, maintenance.as_deref());
                Ok(0)
            }
            Err(e) => {
                if let (Some(r), Output::Json) = (&report, ctx.output) {
                    println!(
                        "{}",
                        serde_json::json!({"applied": false, "checklist": r.to_json()})
                    );
                }
                Err(e)
            }
        };
        (
            Audited {
                changes,
                waived,
                note: None,
            },
            result,
        )
    })
    .await
}

/// One `up`, under the deploy lock.
struct Run<'a> {
    ctx: &'a Context,
    args: &'a UpArgs,
    c: &'a Connected,
    local: &'a Engine,
    desired: &'a Desired,
    waivers: &'a [(String, String)],
    started: Instant,
}

/// What `up` did so far (for the audit log), the checklist's report when the gate ran, and how it ended.
type Converged = (Vec<String>, Option<Report>, Result<Json, CommandError>);

impl Run<'_> {
    #[allow(clippy::too_many_lines)]
    async fn converge(&self) -> Converged {
        let (ctx, connected) = (self.ctx, self.c);
        let target = ctx.target_name();
        // One reading of the host plans everything: containers, files, cron entries, the certificate, the firewall.
        let (plan, firewall) = match super::plan::host_plan(ctx, connected, self.desired).await {
            Ok(p) => (p.plan, p.firewall),
            Err(e) => return (Vec::new(), None, Err(e)),
        };
        // A host that cannot take the firewall change is refused before anything changes.
        if !firewall.change.is_unchanged()
            && let Err(e) = firewall.observed.usable(connected.remote.name())
        {
            return (Vec::new(), None, Err(super::firewall::fail(e)));
        }
        // nginx needs a certificate before it starts: a placeholder until the CA issues one.
        let prepared = match crate::tls::prepare(&connected.remote, &ctx.stack).await {
            Ok(p) => p,
            Err(e) => return (Vec::new(), None, Err(cert_error(ctx, &target, &e))),
        };
        let installed = prepared.is_some();
        let mut changes: Vec<String> = prepared.into_iter().collect();
        // The containers and files go through `apply`; the certificate and the firewall steps are carried out
        // below by their own flows, which report what they changed.
        let work = plan.for_apply();
        changes.extend(
            work.steps
                .iter()
                .map(|s| format!("{} ({})", s.summary(), s.reason())),
        );
        changes.extend(firewall.change.summary(&firewall.ruleset));

        if ctx.output == Output::Human && !plan.is_empty() {
            print!("{}", plan.render_human(&target));
        }
        if self.args.backup_before && !work.is_empty() {
            match backup_before(ctx, connected).await {
                Ok(Some(line)) => changes.insert(0, line),
                Ok(None) => {}
                Err(e) => return (changes, None, Err(e)),
            }
        }
        let mut staged = None;
        if !work.is_empty() {
            if ctx.stack.gated {
                match super::gate::close_first_launch(ctx, connected).await {
                    Ok(true) => changes.push(
                        "maintenance page up until the go-live checklist passes (first launch)"
                            .into(),
                    ),
                    Ok(false) => {}
                    Err(e) => return (changes, None, Err(e)),
                }
            }
            let host = Host {
                remote: &connected.remote,
                engine: &connected.engine,
                local: self.local,
                actor: crate::state::actor(),
                git: super::context::git_commit(&ctx.stack.project_dir),
                stage_release: ctx.stack.gated,
            };
            match apply(&host, &work, self.desired, &ctx.out).await {
                Ok(s) => staged = s,
                Err(e) => return (changes, None, Err(e.into())),
            }
        }
        if let Err(e) = reload_provided(ctx, connected, installed).await {
            return (changes, None, Err(e));
        }
        let certificate = match certificate_step(ctx, connected, false).await {
            Ok(c) => c,
            Err(e) => return (changes, None, Err(e)),
        };
        if let Some(c) = &certificate {
            changes.extend(c.changes.clone());
        }
        let applied = match super::firewall::converge(
            ctx,
            connected,
            &firewall,
            crate::firewall::revert_after(),
        )
        .await
        {
            Ok(a) => a,
            Err(e) => return (changes, None, Err(e)),
        };
        if ctx.output == Output::Human {
            if let Some(c) = &certificate {
                println!("{}", describe(&ctx.stack.domain, c));
            }
            if applied.is_some() {
                println!(
                    "{}",
                    super::firewall::applied_line(&firewall, applied.as_ref())
                );
            }
        }
        // The gate comes last: certificates and firewall are items of the checklist.
        let mut report = None;
        if let Some(staged) = &staged {
            match super::gate::decide(ctx, connected, self.desired, staged, self.waivers).await {
                Ok(d) => {
                    changes.extend(d.changes);
                    report = Some(d.report);
                }
                Err((more, r, e)) => {
                    changes.extend(more);
                    return (changes, Some(r), Err(e));
                }
            }
        }
        let json = Json {
            plan: plan.render_json(&target),
            certificate: serde_json::to_value(certificate.as_ref().map(|c| &c.report))
                .unwrap_or_default(),
            firewall: super::firewall::applied_json(&firewall, applied.as_ref()),
        };
        (changes, report, Ok(json))
    }

    /// The last lines: the URL and what changed, or the JSON summary.
    /// `maintenance`: when the maintenance page is on, since when (a finding: the API answers 503).
    fn summary(
        &self,
        changes: &[String],
        report: Option<&Report>,
        json: Json,
        maintenance: Option<&str>,
    ) {
        let ctx = self.ctx;
        let url = ctx.url();
        let secs = self.started.elapsed().as_secs_f64();
        match ctx.output {
            Output::Human => {
                if let Some(since) = maintenance {
                    let what = if changes.is_empty() {
                        "no changes".to_string()
                    } else {
                        format!(
                            "{} change{} applied in {secs:.1}s",
                            changes.len(),
                            if changes.len() == 1 { "" } else { "s" }
                        )
                    };
                    println!(
                        "{} ({}): {what}; the maintenance page is ON since {since}: nginx answers {url}api/ with 503 while the static site serves",
                        ctx.stack.name, ctx.stack.environment
                    );
                    println!(
                        "  lift it with `vldeploy maintenance off -e {env}` (who turned it on: `vldeploy audit -e {env}`)",
                        env = ctx.stack.environment
                    );
                } else if changes.is_empty() {
                    println!("{}: no changes; the stack is up at {url}", ctx.stack.name);
                } else {
                    println!(
                        "{} ({}) is up at {url} — {} change{} applied in {secs:.1}s",
                        ctx.stack.name,
                        ctx.stack.environment,
                        changes.len(),
                        if changes.len() == 1 { "" } else { "s" }
                    );
                }
            }
            Output::Json => {
                let mut v = json.plan;
                v["changes"] = changes.len().into();
                v["url"] = url.into();
                v["applied"] = (!changes.is_empty()).into();
                v["maintenance"] = maintenance.is_some().into();
                v["seconds"] = secs.into();
                v["certificate"] = json.certificate;
                v["firewall"] = json.firewall;
                v["checklist"] = report.map(Report::to_json).unwrap_or_default();
                println!("{v}");
            }
        }
    }
}

/// The parts of `up`'s JSON summary.
struct Json {
    plan: serde_json::Value,
    certificate: serde_json::Value,
    firewall: serde_json::Value,
}

/// `--backup-before`: a backup tagged `pre-up`, verified by a scratch restore, before anything changes.
/// Returns what to record, or `None` when there is no database yet.
async fn backup_before(
    ctx: &Context,
    c: &super::context::Connected,
) -> Result<Option<String>, CommandError> {
    let postgres = crate::layout::container_name("postgres");
    if !c
        .engine
        .container_state(&postgres)
        .await?
        .is_some_and(|s| s.running)
    {
        ctx.out.note(format!(
            "backup before the release: `{postgres}` is not running yet, so there is nothing to back up"
        ));
        return Ok(None);
    }
    let setup = crate::backup::Setup::from_stack(&ctx.stack);
    ctx.out
        .note("backup before the release: dumping the database …");
    let outcome = crate::backup::run_backup(&c.remote, &setup, Some("pre-up"), 600)
        .await
        .map_err(|e| {
            CommandError::Io(format!(
                "{e}\nnothing was changed: `up --backup-before` stops when the backup fails"
            ))
        })?;
    let file = outcome.file.unwrap_or_default();
    ctx.out.note(format!(
        "backup before the release: verifying `{file}` by a scratch restore …"
    ));
    let verification = crate::backup::verify(&c.remote, &setup, &file, &|_, _| {})
        .await
        .map_err(|e| CommandError::Io(format!("{e}\nnothing was changed")))?;
    if !verification.ok {
        return Err(CommandError::Io(format!(
            "the backup `{file}` taken before the release does not restore cleanly ({}); nothing was changed",
            verification.problems.join("; ")
        )));
    }
    if let Err(e) =
        crate::checklist::record_verification(&c.remote, &ctx.stack.name, &setup, &verification)
            .await
    {
        ctx.out.warning(format!(
            "the checklist's backup evidence was not recorded: {e}"
        ));
    }
    if let Err(e) =
        crate::checklist::record_verification(&c.remote, &ctx.stack.name, &setup, &verification)
            .await
    {
        ctx.out.warning(format!(
            "the checklist's backup evidence was not recorded: {e}"
        ));
    }
    let line = format!(
        "verified backup `{file}` before the release ({} tables)",
        verification.tables.len()
    );
    ctx.out.note(line.clone());
    Ok(Some(line))
}
