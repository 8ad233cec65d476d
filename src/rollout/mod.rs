//! Blue/green releases: a candidate beside the live container, health-gated, nginx switched to it, the old one drained.

mod history;

use std::time::Duration;

use crate::engine::{Engine, EngineError};
use crate::layout::container_name;
use crate::plan::{ContainerSpec, DesiredFile};
use crate::remote::file;
use crate::transport::{Remote, TransportError};

pub use history::{
    History, Release, index_path as history_path, read_history, record_release, stored_spec,
};

/// How long the old release keeps running after nginx has switched, for requests already on their way to it.
pub const DRAIN: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(
        "the candidate `{candidate}` did not become healthy, so nginx was not switched: the live release keeps serving\n{source}"
    )]
    CandidateUnhealthy {
        candidate: String,
        #[source]
        source: EngineError,
    },
    #[error(
        "`nginx -t` rejected the upstream for the new release; the previous upstream was put back, the candidate removed, the live release keeps serving:\n{output}"
    )]
    UpstreamRejected { output: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Store(#[from] crate::state::StoreError),
    #[error("release history on `{host}`: {detail}")]
    History { host: String, detail: String },
}

/// Where a release runs.
pub struct Target<'a> {
    pub remote: &'a Remote,
    pub engine: &'a Engine,
    pub stack: &'a str,
}

/// Releases `spec` (whose `release_alias` is set) and points nginx's upstream at it with `upstream`.
///
/// 1. a candidate container is created beside the live one and must pass its health check;
/// 2. the upstream file is written, checked with `nginx -t` and nginx reloaded (not restarted);
/// 3. the old container gets `DRAIN` to finish what it has, then is stopped (SIGTERM, its graceful shutdown);
/// 4. the candidate takes the service's name.
///
/// Any failure before the switch removes the candidate and leaves the live release serving.
pub async fn release(
    t: &Target<'_>,
    spec: &ContainerSpec,
    upstream: &DesiredFile,
) -> Result<(), RolloutError> {
    match stage_or_release(t, spec, upstream, false).await? {
        Outcome::Live => Ok(()),
        Outcome::Staged(staged) => go_live(t, &staged, upstream).await,
    }
}

/// Where a release ended: serving, or staged (healthy, not serving) until the go-live checklist passes.
#[derive(Debug, Clone)]
pub enum Outcome {
    Live,
    Staged(Staged),
}

/// A release started and healthy that nginx does not send the shop's traffic to yet.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The candidate container, `vl_<service>_candidate`.
    pub candidate: String,
    /// The service's name, which the candidate takes when it goes live.
    pub live: String,
    /// Its network alias (what nginx's upstream names).
    pub alias: String,
    /// Whether a previous release is serving (else this is the first launch: nginx shows the maintenance page).
    pub previous: bool,
}

/// Steps 1 (and, with `stage` false, 2–4) of a release. With `stage`, the candidate is left healthy beside the
/// live release, which keeps serving; at a first launch the upstream names the candidate so nginx can start
/// (the caller keeps the maintenance page up).
pub async fn stage_or_release(
    t: &Target<'_>,
    spec: &ContainerSpec,
    upstream: &DesiredFile,
    stage: bool,
) -> Result<Outcome, RolloutError> {
    let live = spec.name.clone();
    let candidate = format!("{live}_candidate");
    // A candidate left by an interrupted run, or by a gated first launch the checklist held back. When nginx's
    // upstream names it already (a run killed after the switch), it serves: that release is finished first. A
    // gated first launch's candidate is named by the upstream too, but only behind the maintenance page: it has
    // not passed the checklist, so it is replaced and judged again, never adopted.
    let held_back = stage && t.engine.container_state(&live).await?.is_none();
    if held_back || !adopt_switched_candidate(t, spec, &candidate, upstream).await? {
        t.engine.remove(&candidate).await?;
    }
    let live_state = t.engine.container_state(&live).await?;
    if let Some(state) = &live_state {
        if state.config_hash.as_deref() == Some(spec.config_hash().as_str()) {
            // The right release is already there (an earlier run stopped after creating it): make it serve.
            if !state.running {
                t.engine.start(&live).await?;
            }
            wait_healthy(t, &live, spec).await.map_err(|source| {
                RolloutError::CandidateUnhealthy {
                    candidate: live.clone(),
                    source,
                }
            })?;
            switch_upstream(t, upstream).await?;
            return Ok(Outcome::Live);
        }
    }

    let candidate_name = if live_state.is_some() || stage {
        format!("{live}_candidate")
    } else {
        live.clone()
    };
    t.engine.remove(&candidate_name).await?;
    let mut candidate = spec.clone();
    candidate.name.clone_from(&candidate_name);
    t.engine.create_container(t.stack, &candidate).await?;
    let started = async {
        t.engine.start(&candidate_name).await?;
        wait_healthy(t, &candidate_name, spec).await
    }
    .await;
    if let Err(source) = started {
        // Keep the candidate's logs in the error, then remove it.
        let _ = t.engine.remove(&candidate_name).await;
        return Err(RolloutError::CandidateUnhealthy {
            candidate: candidate_name,
            source,
        });
    }
    let staged = Staged {
        candidate: candidate_name.clone(),
        live: live.clone(),
        alias: spec.release_alias.clone().unwrap_or_default(),
        previous: live_state.is_some(),
    };
    if stage {
        if live_state.is_none() {
            // First launch: nginx needs an upstream it can resolve; the maintenance page keeps the shop closed.
            switch_upstream(t, upstream).await?;
        }
        return Ok(Outcome::Staged(staged));
    }
    if live_state.is_none() {
        switch_upstream(t, upstream).await?;
        return Ok(Outcome::Live);
    }
    Ok(Outcome::Staged(staged))
}

/// Finishes a release that an interrupted run switched nginx to but did not complete: when the upstream file on
/// the host names the candidate's alias and the candidate runs, nginx is made to load that file, the previous
/// release is drained and stopped, and the candidate takes the service's name. Returns whether it did.
async fn adopt_switched_candidate(
    t: &Target<'_>,
    spec: &ContainerSpec,
    candidate: &str,
    upstream: &DesiredFile,
) -> Result<bool, RolloutError> {
    let Some(state) = t.engine.container_state(candidate).await? else {
        return Ok(false);
    };
    let Some(hash) = state.config_hash.as_deref().filter(|_| state.running) else {
        return Ok(false);
    };
    let current = t
        .remote
        .read_file(&upstream.path)
        .await?
        .unwrap_or_default();
    if !names_alias(
        &String::from_utf8_lossy(&current),
        &format!("{}-{hash}", spec.service),
    ) {
        return Ok(false);
    }
    tracing::info!(
        candidate,
        "nginx routes to the candidate an interrupted run left: finishing that release"
    );
    reload_nginx(t, &upstream.path).await?;
    let live = spec.name.as_str();
    let previous = t.engine.container_state(live).await?;
    if previous.as_ref().is_some_and(|p| p.running) {
        tokio::time::sleep(DRAIN).await;
        t.engine.stop(live, Duration::from_secs(30)).await?;
    }
    t.engine.remove(live).await?;
    rename(t, candidate, live).await?;
    Ok(true)
}

/// Whether an upstream file's text routes to `alias` (its `server <alias>:<port>` line).
fn names_alias(upstream: &str, alias: &str) -> bool {
    upstream.lines().any(|l| {
        l.trim_start()
            .strip_prefix("server ")
            .and_then(|rest| rest.trim_start().strip_prefix(alias))
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

/// Puts a staged release live: nginx switched to it (reload), the previous release drained and stopped,
/// and the candidate renamed to the service's name.
pub async fn go_live(
    t: &Target<'_>,
    staged: &Staged,
    upstream: &DesiredFile,
) -> Result<(), RolloutError> {
    if let Err(e) = switch_upstream(t, upstream).await {
        if staged.previous {
            let _ = t.engine.remove(&staged.candidate).await;
        }
        return Err(e);
    }
    if staged.previous {
        tokio::time::sleep(DRAIN).await;
        t.engine.stop(&staged.live, Duration::from_secs(30)).await?;
    }
    t.engine.remove(&staged.live).await?;
    rename(t, &staged.candidate, &staged.live).await
}

async fn rename(t: &Target<'_>, from: &str, to: &str) -> Result<(), RolloutError> {
    t.engine.rename(from, to).await?;
    Ok(())
}

/// Removes a staged release that may not go live, when a previous release serves. At a first launch the
/// candidate stays (nginx's upstream names it) behind the maintenance page, and the next `up` replaces it.
pub async fn discard(t: &Target<'_>, staged: &Staged) -> Result<(), RolloutError> {
    if staged.previous {
        t.engine.remove(&staged.candidate).await?;
    }
    Ok(())
}

async fn wait_healthy(t: &Target<'_>, name: &str, spec: &ContainerSpec) -> Result<(), EngineError> {
    t.engine.wait_for_spec(name, spec).await
}

/// Writes the upstream (keeping the previous one), and when nginx runs: `nginx -t`, then reload.
/// A rejected configuration puts the previous upstream back.
pub async fn switch_upstream(t: &Target<'_>, upstream: &DesiredFile) -> Result<(), RolloutError> {
    t.remote.exec(&file::keep_previous(&upstream.path)).await?;
    t.remote
        .upload(&upstream.path, &upstream.content, upstream.mode)
        .await?;
    reload_nginx(t, &upstream.path).await
}

/// When nginx runs: `nginx -t`, then reload. A rejected configuration puts the previous upstream back.
async fn reload_nginx(t: &Target<'_>, upstream_path: &str) -> Result<(), RolloutError> {
    let nginx = container_name("nginx");
    let running = t
        .engine
        .container_state(&nginx)
        .await?
        .is_some_and(|s| s.running);
    if !running {
        return Ok(());
    }
    let (status, output) = t.engine.exec(&nginx, &["nginx", "-t"]).await?;
    if status != 0 {
        t.remote
            .exec(&file::restore_previous(upstream_path))
            .await?;
        return Err(RolloutError::UpstreamRejected {
            output: output.trim_end().to_string(),
        });
    }
    t.engine
        .exec_checked(&nginx, &["nginx", "-s", "reload"])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::names_alias;

    #[test]
    fn the_upstream_names_exactly_one_alias() {
        let text = "# comment backend-abc\nupstream backend {\n    server backend-abc:8080 max_fails=0;\n}\n";
        assert!(names_alias(text, "backend-abc"));
        assert!(!names_alias(text, "backend-ab"));
        assert!(!names_alias(text, "backend-abcd"));
        assert!(!names_alias("", "backend-abc"));
    }
}
