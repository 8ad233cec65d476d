//! Walks a plan against a host, each step as soon as the steps it waits for have ended, stopping at the first
//! failure and naming the step.

mod ahead;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::engine::{Engine, EngineError, deliver_images};
use crate::layout::loaded_marker;
use crate::output::{LogTail, Output};
use crate::plan::{ContainerSpec, Desired, Plan, Step, loaded_hash};
use crate::transport::{Remote, TransportError};

/// The failure of one step; what was applied before it stays applied, the containers it touched are restored.
#[derive(Debug, thiserror::Error)]
#[error("step {index}/{total} `{summary}` on `{host}` failed:\n{source}")]
pub struct ApplyError {
    pub index: usize,
    pub total: usize,
    pub summary: String,
    pub host: String,
    #[source]
    pub source: StepError,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Rollout(#[from] crate::rollout::RolloutError),
    #[error("{0}")]
    Other(String),
}

/// Where the plan is applied.
pub struct Host<'a> {
    pub remote: &'a Remote,
    pub engine: &'a Engine,
    /// The engine where vldeploy runs, source of built images.
    pub local: &'a Engine,
    /// Recorded with each release: who released it and the commit it was built from, when known.
    pub actor: String,
    pub git: Option<String>,
    /// Leave a new backend release staged (healthy, not serving) for the go-live checklist to decide on.
    pub stage_release: bool,
}

/// How many releases the host keeps for rollback.
pub const RELEASES_KEPT: usize = 5;

/// How many lines of a failing container's log a failed step shows.
const LOG_LINES: usize = 20;

/// Applies the plan, reporting each step through `out`: each step starts as soon as the steps it waits for
/// ([`Plan::prerequisites`]) have ended well, so preparation steps (networks, volumes, images, files, the
/// storefront) run at once, and each container step once its dependencies are healthy, beside unrelated ones.
/// After a failure no step starts; the ones running end first. The failure reported (with the last lines of
/// the log of the container it concerns) is the earliest step's. Returns the release left staged, if any.
pub async fn apply(
    host: &Host<'_>,
    plan: &Plan,
    desired: &Desired,
    out: &Output,
) -> Result<Option<crate::rollout::Staged>, ApplyError> {
    use futures_util::StreamExt as _;
    let total = plan.steps.len();
    let waits = plan.prerequisites(desired);
    let mut started = vec![false; total];
    let mut ended_well = vec![false; total];
    // A container step still waiting for containers creates its own ahead, unseen in the output: it is `None`
    // until then, `Some(None)` while it is created, `Some(Some(made))` once made.
    let mut ahead: Vec<Option<Option<ahead::Made>>> = (0..total).map(|_| None).collect();
    let mut running = futures_util::stream::FuturesUnordered::new();
    let mut staged = None;
    let mut failed: Option<ApplyError> = None;
    loop {
        if failed.is_none() {
            for i in 0..total {
                if started[i] {
                    continue;
                }
                let step = &plan.steps[i];
                if waits[i].iter().all(|&j| ended_well[j]) {
                    if matches!(ahead[i], Some(None)) {
                        continue;
                    }
                    started[i] = true;
                    let made = ahead[i].take().flatten();
                    running.push(Box::pin(async move {
                        Event::Ended(
                            i,
                            Box::new(run_step(host, step, i + 1, total, desired, out, made).await),
                        )
                    })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = Event> + '_>>);
                } else if ahead[i].is_none() && ahead::ready(plan, &waits[i], &ended_well, i) {
                    ahead[i] = Some(None);
                    running.push(Box::pin(async move {
                        Event::Made(i, ahead::create(host, step, desired).await)
                    }));
                }
            }
        }
        match running.next().await {
            None => break,
            Some(Event::Made(i, made)) => ahead[i] = made.map(Some),
            Some(Event::Ended(i, ended)) => match *ended {
                Ok(left) => {
                    ended_well[i] = true;
                    staged = staged.or(left);
                }
                Err(e) => {
                    if failed.as_ref().is_none_or(|f| e.index < f.index) {
                        failed = Some(e);
                    }
                }
            },
        }
    }
    for made in ahead.iter().flatten().flatten() {
        ahead::discard(host, desired, made).await;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(staged),
    }
}

/// What one of `apply`'s tasks ended with: a container made ahead, or a step.
enum Event {
    Made(usize, Option<ahead::Made>),
    Ended(
        usize,
        Box<Result<Option<crate::rollout::Staged>, ApplyError>>,
    ),
}

/// One step, from its start event to its end or failure event.
async fn run_step(
    host: &Host<'_>,
    step: &Step,
    index: usize,
    total: usize,
    desired: &Desired,
    out: &Output,
    made: Option<ahead::Made>,
) -> Result<Option<crate::rollout::Staged>, ApplyError> {
    let summary = step.summary();
    let shown = crate::output::Step::numbered(index, total, summary.clone());
    out.step_started(&shown);
    let started = Instant::now();
    let span = tracing::info_span!("step", index, total);
    let left = async {
        tracing::debug!("step started: {summary}");
        let left = apply_step(host, step, &shown, desired, out, made).await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &left {
            Ok(_) => tracing::debug!(elapsed_ms, "step finished: {summary}"),
            Err(e) => tracing::debug!(elapsed_ms, error = %e, "step failed: {summary}"),
        }
        left
    }
    .instrument(span)
    .await;
    match left {
        Ok(left) => {
            out.step_done(&shown, started.elapsed(), None);
            Ok(left)
        }
        Err(source) => {
            let log = failing_log(host, step, &source).await;
            out.step_failed(&shown, started.elapsed(), &source.to_string(), log);
            Err(ApplyError {
                index,
                total,
                summary,
                host: host.remote.name().to_string(),
                source,
            })
        }
    }
}

/// The container a failed step concerns and the last lines of its log: those a failed health check quoted
/// (the container may be gone since), else read from the engine for a step that runs one container.
async fn failing_log(host: &Host<'_>, step: &Step, error: &StepError) -> Option<LogTail> {
    let unhealthy = match error {
        StepError::Engine(e)
        | StepError::Rollout(
            crate::rollout::RolloutError::Engine(e)
            | crate::rollout::RolloutError::CandidateUnhealthy { source: e, .. },
        ) => Some(e),
        _ => None,
    };
    if let Some(EngineError::Unhealthy { name, log_tail, .. }) = unhealthy {
        return Some(LogTail {
            container: name.clone(),
            lines: log_tail
                .lines()
                .map(|l| l.strip_prefix("    ").unwrap_or(l).to_string())
                .collect(),
            in_error: true,
        });
    }
    let name = match step {
        Step::CreateContainer { name, .. }
        | Step::StartContainer { name, .. }
        | Step::RecreateContainer { name, .. }
        | Step::Reload { name, .. } => name,
        _ => return None,
    };
    let text = host.engine.log_tail(name, LOG_LINES).await.ok()?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    (!lines.is_empty()).then(|| LogTail {
        container: name.clone(),
        lines,
        in_error: false,
    })
}

async fn apply_step(
    host: &Host<'_>,
    step: &Step,
    shown: &crate::output::Step,
    desired: &Desired,
    out: &Output,
    made: Option<ahead::Made>,
) -> Result<Option<crate::rollout::Staged>, StepError> {
    let stack = desired.stack.as_str();
    match step {
        Step::CreateNetwork { name } => host.engine.create_network(stack, name).await?,
        Step::CreateVolume { name } => host.engine.create_volume(stack, name).await?,
        Step::TransferImages { images } => deliver(host, images, shown, out).await?,
        Step::PullImage { image } => {
            host.remote
                .run(&crate::remote::host::docker_pull(&image.reference))
                .await?;
        }
        Step::WriteFile { path, .. } => {
            let file = desired
                .files
                .iter()
                .find(|f| &f.path == path)
                .ok_or_else(|| StepError::Other(format!("no content for `{path}`")))?;
            // Keep the previous version, so a configuration that fails its test can be put back.
            if crate::host_file::installer(stack, path).is_none() {
                host.remote
                    .exec(&crate::remote::file::keep_previous(path))
                    .await?;
            }
            crate::host_file::write(host.remote, stack, path, &file.content, file.mode).await?;
        }
        Step::Site { hash, .. } => release_site(host, desired, hash).await?,
        Step::CreateContainer { service, .. } | Step::StartContainer { service, .. } => {
            let spec = spec_for(desired, service)?;
            if matches!(step, Step::CreateContainer { .. })
                && !matches!(made, Some(ahead::Made::Container(_)))
            {
                prepare_mount_dirs(host, spec).await?;
                host.engine.create_container(stack, spec).await?;
            }
            host.engine.start(&spec.name).await?;
            wait_healthy(host, spec).await?;
            mark_loaded(host, desired, service).await?;
        }
        Step::RecreateContainer { service, .. } => {
            let spec = spec_for(desired, service)?;
            recreate(host, stack, spec).await?;
            mark_loaded(host, desired, service).await?;
        }
        Step::Release { service, .. } => {
            let spec = spec_for(desired, service)?;
            let target = crate::rollout::Target {
                remote: host.remote,
                engine: host.engine,
                stack,
            };
            // nginx is not touched: the release moves into the stable name nginx resolves.
            let outcome = if let Some(ahead::Made::Release(created)) = made {
                crate::rollout::start_ahead(&target, spec, host.stage_release, created).await?
            } else {
                prepare_mount_dirs(host, spec).await?;
                crate::rollout::stage_or_release(&target, spec, host.stage_release).await?
            };
            if let crate::rollout::Outcome::Staged(staged) = outcome {
                if host.stage_release {
                    // The go-live checklist decides; the release is recorded once it serves.
                    return Ok(Some(staged));
                }
                crate::rollout::go_live(&target, &staged).await?;
            }
            record_release(host, stack, spec).await?;
        }
        Step::Reload { service, name, .. } => {
            reload(host, desired, service, name).await?;
        }
        Step::RemoveContainer { name, .. } => host.engine.remove(name).await?,
        Step::RecordRelease { service, .. } => {
            let spec = spec_for(desired, service)?;
            record_release(host, stack, spec).await?;
        }
        // `up` carries these out with the certificate and firewall flows (`Plan::for_apply` leaves them out).
        Step::Certificate { .. } | Step::Firewall { .. } => {
            return Err(StepError::Other(format!(
                "`{}` is carried out by `up`'s own flow, not by `apply`",
                step.summary()
            )));
        }
    }
    Ok(None)
}

/// Puts the storefront release `hash` on the host and switches nginx's document root to it.
async fn release_site(host: &Host<'_>, desired: &Desired, hash: &str) -> Result<(), StepError> {
    let site = desired
        .site
        .as_ref()
        .filter(|s| s.hash == hash)
        .ok_or_else(|| StepError::Other(format!("no storefront release `{hash}`")))?;
    crate::site::release(
        host.remote,
        &desired.stack,
        site,
        &host.actor,
        host.git.clone(),
    )
    .await
    .map_err(|e| StepError::Other(e.to_string()))
}

/// Sends the images the host lacks, only their missing layers, and says what went.
async fn deliver(
    host: &Host<'_>,
    images: &[crate::plan::ImageRef],
    shown: &crate::output::Step,
    out: &Output,
) -> Result<(), StepError> {
    let refs: Vec<String> = images.iter().map(|i| i.reference.clone()).collect();
    let (progress, step) = (out.clone(), shown.clone());
    let delivered = deliver_images(
        host.local,
        host.engine,
        &refs,
        Arc::new(move |n, total| progress.step_progress(&step, n, total)),
    )
    .await?;
    for (reference, reason) in &delivered.whole {
        out.warning(format!(
            "`{}`'s engine refused `{reference}` without the layers it has ({reason}); the whole image was sent",
            host.remote.name()
        ));
    }
    out.note(delivered.summary());
    for image in images {
        if !host.engine.has_image(&image.id).await? {
            return Err(StepError::Other(format!(
                "image `{}` ({}) is still missing on the host after the transfer",
                image.reference, image.id
            )));
        }
    }
    Ok(())
}

fn spec_for<'a>(desired: &'a Desired, service: &str) -> Result<&'a ContainerSpec, StepError> {
    desired
        .containers
        .iter()
        .find(|c| c.service == service)
        .ok_or_else(|| StepError::Other(format!("service `{service}` is not in the desired state")))
}

/// Host directories that are bind-mounted must exist before the container is created.
async fn prepare_mount_dirs(host: &Host<'_>, spec: &ContainerSpec) -> Result<(), StepError> {
    let dirs: Vec<String> = spec
        .mounts
        .iter()
        .filter_map(|m| match &m.source {
            crate::plan::MountSource::HostPath(p) => Some(p.clone()),
            crate::plan::MountSource::Volume(_) => None,
        })
        .collect();
    if !dirs.is_empty() {
        host.remote
            .run(&crate::remote::file::make_dirs(&dirs))
            .await?;
    }
    Ok(())
}

/// Replaces a container, keeping the old one (renamed, stopped) until the new one is healthy.
/// If the new one fails, it is removed and the old one is started again under its own name.
async fn recreate(host: &Host<'_>, stack: &str, spec: &ContainerSpec) -> Result<(), StepError> {
    let old = format!("{}_previous", spec.name);
    host.engine.remove(&old).await?;
    host.engine.rename(&spec.name, &old).await?;
    host.engine.stop(&old, Duration::from_secs(30)).await?;
    prepare_mount_dirs(host, spec).await?;
    let attempt = async {
        host.engine.create_container(stack, spec).await?;
        host.engine.start(&spec.name).await?;
        wait_healthy(host, spec).await
    }
    .await;
    match attempt {
        Ok(()) => {
            host.engine.remove(&old).await?;
            Ok(())
        }
        Err(e) => {
            tracing::warn!(container = %spec.name, "new container failed; restoring the previous one");
            let _ = host.engine.remove(&spec.name).await;
            let restore = async {
                host.engine.rename(&old, &spec.name).await?;
                host.engine.start(&spec.name).await
            }
            .await;
            match restore {
                Ok(()) => Err(StepError::Other(format!(
                    "{e}\n  the previous `{}` was restored and is running again",
                    spec.name
                ))),
                Err(r) => Err(StepError::Other(format!(
                    "{e}\n  restoring the previous `{}` also failed: {r}",
                    spec.name
                ))),
            }
        }
    }
}

async fn wait_healthy(host: &Host<'_>, spec: &ContainerSpec) -> Result<(), StepError> {
    Ok(host.engine.wait_for_spec(&spec.name, spec).await?)
}

/// Tests the new configuration inside the running container, then reloads it; a failing test puts the old file back.
/// Adds `spec` to the host's release history, keeping the newest [`RELEASES_KEPT`].
async fn record_release(
    host: &Host<'_>,
    stack: &str,
    spec: &ContainerSpec,
) -> Result<(), StepError> {
    crate::rollout::record_release(
        host.remote,
        stack,
        spec,
        &host.actor,
        host.git.clone(),
        RELEASES_KEPT,
    )
    .await?;
    Ok(())
}

async fn reload(
    host: &Host<'_>,
    desired: &Desired,
    service: &str,
    name: &str,
) -> Result<(), StepError> {
    let (status, output) = host.engine.exec(name, &["nginx", "-t"]).await?;
    if status != 0 {
        let mut restored = Vec::new();
        for f in desired
            .files
            .iter()
            .filter(|f| f.reloads.as_deref() == Some(service))
        {
            host.remote
                .exec(&crate::remote::file::restore_previous(&f.path))
                .await?;
            restored.push(f.path.clone());
        }
        return Err(StepError::Other(format!(
            "`nginx -t` rejected the new configuration; the previous files were put back ({}) and nginx keeps serving them:\n{}",
            restored.join(", "),
            output.trim_end()
        )));
    }
    host.engine
        .exec_checked(name, &["nginx", "-s", "reload"])
        .await?;
    mark_loaded(host, desired, service).await
}

/// Records that the running `service` has loaded the current configuration files.
async fn mark_loaded(host: &Host<'_>, desired: &Desired, service: &str) -> Result<(), StepError> {
    Ok(mark_loaded_on(host.remote, desired, service).await?)
}

/// Records that `service` (nginx) has loaded the desired versions of its files, so no reload is planned.
pub async fn mark_loaded_on(
    remote: &Remote,
    desired: &Desired,
    service: &str,
) -> Result<(), TransportError> {
    if desired
        .files
        .iter()
        .any(|f| f.reloads.as_deref() == Some(service))
    {
        let marker = loaded_marker(&desired.stack, service);
        remote
            .upload(&marker, loaded_hash(desired, service).as_bytes(), 0o644)
            .await?;
    }
    Ok(())
}
