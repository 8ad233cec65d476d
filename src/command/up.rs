//! `vldeploy up`: take the lock, plan, apply in dependency order (health-gated) beside the firewall,
//! certificates, the go-live gate in gated environments, print the URL.

use std::time::Instant;

use super::certs::{cert_error, certificate_step, describe, reload_provided};
use super::context::{Audited, Connected};
use super::plan::HostPlan;
use super::{CommandError, Context};
use crate::apply::{Host, apply};
use crate::checklist::Report;
use crate::cli::{Output, UpArgs};
use crate::engine::Engine;
use crate::firewall::{Applied, Prepared};
use crate::plan::{Desired, Plan};
use crate::rollout::Staged;
use crate::tls::Converged;

pub(crate) async fn up(ctx: &Context, args: &UpArgs) -> Result<i32, CommandError> {
    if !ctx.stack.hosts.is_empty() {
        let waivers = super::gate::waivers(ctx, &args.waive, &args.reason)?;
        return super::swarm::up_cluster(ctx, &waivers).await;
    }
    let started = Instant::now();
    // Refusals that need no host come first: nothing is built or changed for a stack that cannot go up.
    super::firewall::validate(ctx)?;
    if let Some(refused) = crate::tls::plain_http_refused(&ctx.stack) {
        return Err(CommandError::Usage(refused));
    }
    let waivers = super::gate::waivers(ctx, &args.waive, &args.reason)?;
    let local = Engine::local()?;
    // Building and connecting need nothing of each other: the host's answer comes while the images build, and
    // either failing first ends the command before anything changes.
    let (images, connected) = tokio::try_join!(ctx.build(&local), ctx.connect_quiet())?;
    let (_, desired) = tokio::try_join!(
        refuse_interrupted_restore(ctx, &connected),
        ctx.desired(&connected, &images, true)
    )?;
    let run = Run {
        ctx,
        args,
        c: &connected,
        local: &local,
        desired: &desired,
        waivers: &waivers,
        started,
    };
    ctx.locked_audited(&connected, "up", || run.locked()).await
}

/// An interrupted restore left the API on the maintenance page and the databases mid-way: which data should
/// serve is the operator's call, so `up` stops here and names the two ways out.
async fn refuse_interrupted_restore(
    ctx: &Context,
    connected: &Connected,
) -> Result<(), CommandError> {
    match ctx.interrupted_restore(connected).await {
        Some(j) => Err(CommandError::Usage(format!(
            "{}
  `up` changed nothing: it goes on once that restore is finished or rolled back",
            j.describe(&ctx.stack.environment)
        ))),
        None => Ok(()),
    }
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

/// What `up` did so far: the lines for the audit log and the checklist's report when the gate ran.
#[derive(Default)]
struct Progress {
    changes: Vec<String>,
    report: Option<Report>,
}

/// How `up` ended: what it did so far and the JSON summary, or the error that stopped it.
struct Outcome {
    done: Progress,
    result: Result<Json, CommandError>,
}

/// The parts of `up`'s JSON summary.
struct Json {
    plan: serde_json::Value,
    certificate: serde_json::Value,
    firewall: serde_json::Value,
}

impl Run<'_> {
    /// The body under the lock: converge, print the checklist and the summary, say what to audit.
    async fn locked(&self) -> (Audited, Result<i32, CommandError>) {
        let Outcome { done, result } = self.converge().await;
        let Progress { changes, report } = done;
        self.print_checklist(report.as_ref());
        let waived = report.as_ref().map(Report::waived).unwrap_or_default();
        let result = match result {
            Ok(json) => {
                let maintenance = super::maintenance::on_since(self.ctx, self.c).await;
                self.summary(&changes, report.as_ref(), json, maintenance.as_deref());
                Ok(0)
            }
            Err(e) => {
                self.print_refusal_json(report.as_ref());
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
    }

    /// Every step in order; the first error stops `up`, keeping what was done so far.
    async fn converge(&self) -> Outcome {
        let mut done = Progress::default();
        let result = self.steps(&mut done).await;
        Outcome { done, result }
    }

    async fn steps(&self, done: &mut Progress) -> Result<Json, CommandError> {
        let (ctx, connected) = (self.ctx, self.c);
        let target = ctx.target_name();
        let HostPlan { plan, firewall } = self.read_host().await?;
        let installed = self.placeholder_certificate(&target, done).await?;
        // The containers and files go through `apply`; the certificate and the firewall steps are carried out
        // below by their own flows, which report what they changed.
        let work = plan.for_apply();
        record_planned(&work, &firewall, done);
        if ctx.output == Output::Human && !plan.is_empty() {
            print!("{}", plan.render_human(&target));
        }
        self.backup_first(&work, done).await?;
        self.backup_host(done).await?;
        // The firewall needs nothing of the containers and they nothing of it: its safe apply (and the new
        // connection that confirms it) runs beside the release. A release that fails is reported first.
        let firewall_flow =
            super::firewall::converge(ctx, connected, &firewall, crate::firewall::revert_after());
        let (staged, applied) = tokio::join!(self.release(&work, done), firewall_flow);
        let staged = staged?;
        let applied = applied?;
        self.seed_catalog(done).await?;
        reload_provided(ctx, connected, installed).await?;
        let certificate = certificate_step(ctx, connected, false).await?;
        if let Some(c) = &certificate {
            done.changes.extend(c.changes.clone());
        }
        self.print_host_flows(certificate.as_ref(), &firewall, applied.as_ref());
        // The gate comes last: certificates and firewall are items of the checklist.
        if let Some(staged) = &staged {
            self.go_live(staged, done).await?;
        }
        Ok(Json {
            plan: plan.render_json(&target),
            certificate: serde_json::to_value(certificate.as_ref().map(|c| &c.report))
                .unwrap_or_default(),
            firewall: super::firewall::applied_json(&firewall, applied.as_ref()),
        })
    }

    /// With the repository on a backup host (`backup.archive.repo: ssh://…`): that host serves it (the stack's
    /// postgres image there, `pgbackrest server` over TLS) before postgres here archives to it.
    async fn backup_host(&self, done: &mut Progress) -> Result<(), CommandError> {
        let ctx = self.ctx;
        let Some(target) = crate::backup::backup_host::target(&ctx.stack) else {
            return Ok(());
        };
        let Some(material) = ctx.repository_tls()? else {
            return Ok(());
        };
        let Some(postgres) = self
            .desired
            .containers
            .iter()
            .find(|c| c.service == "postgres")
        else {
            return Ok(());
        };
        let name = target.name();
        let remote = crate::host::connect_to(&ctx.stack, target, std::time::Duration::from_secs(15))
            .await
            .map_err(|e| {
                CommandError::Usage(format!(
                    "the backup host `{name}` (`backup.archive.repo`) cannot be reached: {e}\n  help: check that it is up and that this environment's key may log in there as that user, with its host key in `known_hosts`"
                ))
            })?;
        let changed = crate::backup::backup_host::prepare(
            &remote,
            self.local,
            &ctx.stack,
            (&postgres.image_id, &postgres.image_ref),
            &material,
        )
        .await
        .map_err(super::backup::failed)?;
        if let Some(line) = changed {
            ctx.out.note(&line);
            done.changes.push(line);
        }
        Ok(())
    }

    /// One reading of the host plans everything: containers, files, cron entries, the certificate, the
    /// firewall. A host that cannot take the firewall change is refused before anything changes.
    async fn read_host(&self) -> Result<HostPlan, CommandError> {
        let host = super::plan::host_plan(self.ctx, self.c, self.desired).await?;
        if !host.firewall.change.is_unchanged() {
            host.firewall
                .observed
                .usable(self.c.remote.name())
                .map_err(super::firewall::fail)?;
        }
        Ok(host)
    }

    /// nginx needs a certificate before it starts: a placeholder until the CA issues one.
    /// Returns whether a certificate was installed.
    async fn placeholder_certificate(
        &self,
        target: &str,
        done: &mut Progress,
    ) -> Result<bool, CommandError> {
        let prepared = crate::tls::prepare(&self.c.remote, &self.ctx.stack)
            .await
            .map_err(|e| cert_error(self.ctx, target, &e))?;
        let installed = prepared.is_some();
        done.changes.extend(prepared);
        Ok(installed)
    }

    /// `--backup-before`, when something is to change: the verified backup's line goes first in the audit log.
    async fn backup_first(&self, work: &Plan, done: &mut Progress) -> Result<(), CommandError> {
        if self.args.backup_before && !work.is_empty() {
            if let Some(line) = backup_before(self.ctx, self.c).await? {
                done.changes.insert(0, line);
            }
        }
        Ok(())
    }

    /// The containers and files: the first launch of a gated stack closes behind the maintenance page, then
    /// `apply`. Returns the staged release of a gated environment.
    async fn release(
        &self,
        work: &Plan,
        done: &mut Progress,
    ) -> Result<Option<Staged>, CommandError> {
        let (ctx, connected) = (self.ctx, self.c);
        if work.is_empty() {
            return Ok(None);
        }
        if ctx.stack.gated && super::gate::close_first_launch(ctx, connected).await? {
            done.changes.push(
                "maintenance page up until the go-live checklist passes (first launch)".into(),
            );
        }
        let host = Host {
            remote: &connected.remote,
            engine: &connected.engine,
            local: self.local,
            actor: crate::state::actor(),
            git: super::context::git_commit(&ctx.stack.project_dir),
            stage_release: ctx.stack.gated,
        };
        Ok(apply(&host, work, self.desired, &ctx.out).await?)
    }

    /// The catalog seed (`catalog:`), imported once per host: at the first launch, through the backend release
    /// that runs now.
    async fn seed_catalog(&self, done: &mut Progress) -> Result<(), CommandError> {
        let alias = self
            .desired
            .containers
            .iter()
            .find_map(|c| c.release_alias.clone());
        if let Some(alias) = alias
            && let Some(line) = super::seed::first_launch(self.ctx, self.c, &alias).await?
        {
            done.changes.push(line);
        }
        Ok(())
    }

    /// The go-live checklist on the staged release; its report is kept whether it passes or not.
    async fn go_live(&self, staged: &Staged, done: &mut Progress) -> Result<(), CommandError> {
        match super::gate::decide(self.ctx, self.c, self.desired, staged, self.waivers).await {
            Ok(d) => {
                done.changes.extend(d.changes);
                done.report = Some(d.report);
                Ok(())
            }
            Err((more, r, e)) => {
                done.changes.extend(more);
                done.report = Some(r);
                Err(e)
            }
        }
    }

    /// The certificate's and the firewall's lines, for people.
    fn print_host_flows(
        &self,
        certificate: Option<&Converged>,
        firewall: &Prepared,
        applied: Option<&Applied>,
    ) {
        if self.ctx.output != Output::Human {
            return;
        }
        if let Some(c) = certificate {
            println!("{}", describe(&self.ctx.stack.domain, c));
        }
        if applied.is_some() {
            println!("{}", super::firewall::applied_line(firewall, applied));
        }
    }

    /// The checklist's report, for people, when the gate ran.
    fn print_checklist(&self, report: Option<&Report>) {
        if let (Some(r), Output::Human) = (report, self.ctx.output) {
            print!(
                "{}",
                crate::secret::scrub(&r.render_human(), &self.ctx.stack.secrets)
            );
        }
    }

    /// With `--json`, a refused go-live still prints the checklist.
    fn print_refusal_json(&self, report: Option<&Report>) {
        if let (Some(r), Output::Json) = (report, self.ctx.output) {
            println!(
                "{}",
                serde_json::json!({"applied": false, "checklist": r.to_json()})
            );
        }
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
        let secs = self.started.elapsed().as_secs_f64();
        match self.ctx.output {
            Output::Human => self.summary_human(changes, secs, maintenance),
            Output::Json => {
                let mut v = json.plan;
                v["changes"] = changes.len().into();
                v["url"] = self.ctx.url().into();
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

    fn summary_human(&self, changes: &[String], secs: f64, maintenance: Option<&str>) {
        let ctx = self.ctx;
        let url = ctx.url();
        if let Some(since) = maintenance {
            let what = if changes.is_empty() {
                "no changes".to_string()
            } else {
                applied_count(changes.len(), secs)
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
                "{} ({}) is up at {url} — {}",
                ctx.stack.name,
                ctx.stack.environment,
                applied_count(changes.len(), secs)
            );
        }
    }
}

/// The planned steps of `apply` and the firewall change, as lines for the audit log.
fn record_planned(work: &Plan, firewall: &Prepared, done: &mut Progress) {
    done.changes.extend(
        work.steps
            .iter()
            .map(|s| format!("{} ({})", s.summary(), s.reason())),
    );
    done.changes
        .extend(firewall.change.summary(&firewall.ruleset));
}

/// "3 changes applied in 4.2s".
fn applied_count(n: usize, secs: f64) -> String {
    format!(
        "{n} change{} applied in {secs:.1}s",
        if n == 1 { "" } else { "s" }
    )
}

/// `--backup-before`: a backup tagged `pre-up`, verified by a scratch restore, before anything changes.
/// Returns what to record, or `None` when there is no database yet.
async fn backup_before(ctx: &Context, c: &Connected) -> Result<Option<String>, CommandError> {
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
    let tables = verify_backup(ctx, c, &setup, &file).await?;
    let line = format!("verified backup `{file}` before the release ({tables} tables)");
    ctx.out.note(line.clone());
    Ok(Some(line))
}

/// The scratch restore of the backup just taken; records the checklist's evidence. Returns how many tables
/// it restored.
async fn verify_backup(
    ctx: &Context,
    c: &Connected,
    setup: &crate::backup::Setup,
    file: &str,
) -> Result<usize, CommandError> {
    ctx.out.note(format!(
        "backup before the release: verifying `{file}` by a scratch restore …"
    ));
    let verification = crate::backup::verify(&c.remote, setup, file, &|_, _| {})
        .await
        .map_err(|e| CommandError::Io(format!("{e}\nnothing was changed")))?;
    if !verification.ok {
        return Err(CommandError::Io(format!(
            "the backup `{file}` taken before the release does not restore cleanly ({}); nothing was changed",
            verification.problems.join("; ")
        )));
    }
    if let Err(e) =
        crate::checklist::record_verification(&c.remote, &ctx.stack.name, setup, &verification)
            .await
    {
        ctx.out.warning(format!(
            "the checklist's backup evidence was not recorded: {e}"
        ));
    }
    Ok(verification.tables.len())
}
