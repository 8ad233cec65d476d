//! Blue/green releases: a candidate beside the live container, health-gated, moved into the backend's stable name, the old one drained.
//!
//! nginx resolves one stable name, [`serving_name`], through Docker's DNS (`resolver 127.0.0.11 valid=1s`, a
//! variable `proxy_pass`), so a release never reloads nginx and never closes a client's connection. The name is a
//! network alias on the serving network: a release joins that network under it only once it is healthy (and, for
//! a gated environment, once the go-live checklist passed). The switch:
//!
//! 1. the candidate joins the serving network under the stable name: Docker's DNS answers with both releases;
//! 2. [`SEEN`] passes, so every nginx worker has resolved the name again and knows the candidate's address;
//! 3. the old release is stopped (SIGTERM): the backend closes its listening socket first, so nginx's next
//!    connection to it is refused before anything was sent, and `proxy_next_upstream` moves that request to the
//!    candidate (a POST too); it finishes its in-flight requests and exits, which takes it out of the name;
//! 4. the old container is removed and the candidate takes the service's name.
//!
//! A Swarm serves the same way: nginx resolves the `dnsrr` service's name on an overlay network, and a
//! `start-first` update adds a task to the name before the old one gets SIGTERM.

mod history;

use std::time::Duration;

use crate::engine::{Engine, EngineError};
use crate::layout::{serving_name, serving_network};
use crate::plan::ContainerSpec;
use crate::transport::{Remote, TransportError};

pub use history::{
    History, Release, index_path as history_path, read_history, record_release, stored_spec,
};

/// How long nginx keeps a resolved address (its `resolver … valid=1s`).
pub const RESOLVER_VALID: Duration = Duration::from_secs(1);

/// After a release joins the stable name, how long until nginx has surely resolved the name again: nginx's clock
/// counts whole seconds, so an answer may be used for up to twice `valid`; one second more for the lookup.
pub const SEEN: Duration = Duration::from_secs(2 * RESOLVER_VALID.as_secs() + 1);

/// How long the old release gets to finish its in-flight requests after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(
        "the candidate `{candidate}` did not become healthy, so it was not put in service: the live release keeps serving\n{source}"
    )]
    CandidateUnhealthy {
        candidate: String,
        #[source]
        source: EngineError,
    },
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

/// Releases `spec` (whose `release_alias` is set) and puts it in service (see the module's steps).
///
/// Any failure before the switch removes the candidate and leaves the live release serving.
pub async fn release(t: &Target<'_>, spec: &ContainerSpec) -> Result<(), RolloutError> {
    match stage_or_release(t, spec, false).await? {
        Outcome::Live => Ok(()),
        Outcome::Staged(staged) => go_live(t, &staged).await,
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
    /// The service it is a release of (`backend`).
    pub service: String,
    /// The candidate container, `vl_<service>_candidate`.
    pub candidate: String,
    /// The service's name, which the candidate takes when it goes live.
    pub live: String,
    /// The release's id (`backend-<config hash>`).
    pub alias: String,
    /// Whether a previous release is serving (else this is the first launch: nginx shows the maintenance page).
    pub previous: bool,
}

/// Steps up to the candidate's health check (and, with `stage` false, the switch). With `stage`, the candidate
/// is left healthy beside the live release, outside the stable name, and the live release keeps serving.
pub async fn stage_or_release(
    t: &Target<'_>,
    spec: &ContainerSpec,
    stage: bool,
) -> Result<Outcome, RolloutError> {
    let live = spec.name.clone();
    let candidate = format!("{live}_candidate");
    // A candidate left by an interrupted run. When it is in the stable name already (a run killed during the
    // switch), it serves: that release is finished first. A staged one never joined the name: it has not
    // passed the checklist, so it is replaced and judged again, never adopted.
    if !adopt_serving_candidate(t, spec, &candidate).await? {
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
            serve(t, &live, &spec.service).await?;
            return Ok(Outcome::Live);
        }
    }

    let candidate_name = if live_state.is_some() || stage {
        candidate.clone()
    } else {
        live.clone()
    };
    t.engine.remove(&candidate_name).await?;
    let mut candidate = spec.clone();
    candidate.name.clone_from(&candidate_name);
    t.engine.create_container(t.stack, &candidate).await?;
    let created = Created {
        name: candidate_name,
        previous: live_state.is_some(),
    };
    start_created(t, spec, stage, created).await
}

/// A release's container created ahead of its start ([`create_ahead`]): not started, outside the stable name.
#[derive(Debug, Clone)]
pub struct Created {
    name: String,
    previous: bool,
}

impl Created {
    /// The container's name: the service's own at a first launch, else the candidate's.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Creates the release's container, not started and outside the stable name, while the containers it waits
/// for are still starting, so that [`start_ahead`] only starts it. Nothing is created (`None`) where
/// [`stage_or_release`] has more to decide first: a candidate an earlier run left, or a live release of this
/// very configuration. Nothing serving changes: [`discard_ahead`] removes it if the release does not start.
pub async fn create_ahead(
    t: &Target<'_>,
    spec: &ContainerSpec,
    stage: bool,
) -> Result<Option<Created>, RolloutError> {
    let live = spec.name.clone();
    let candidate = format!("{live}_candidate");
    if t.engine.container_state(&candidate).await?.is_some() {
        return Ok(None);
    }
    let live_state = t.engine.container_state(&live).await?;
    if live_state
        .as_ref()
        .is_some_and(|s| s.config_hash.as_deref() == Some(spec.config_hash().as_str()))
    {
        return Ok(None);
    }
    let name = if live_state.is_some() || stage {
        candidate
    } else {
        live
    };
    let mut container = spec.clone();
    container.name.clone_from(&name);
    t.engine.create_container(t.stack, &container).await?;
    Ok(Some(Created {
        name,
        previous: live_state.is_some(),
    }))
}

/// [`stage_or_release`] for a container [`create_ahead`] made: from its start on.
pub async fn start_ahead(
    t: &Target<'_>,
    spec: &ContainerSpec,
    stage: bool,
    created: Created,
) -> Result<Outcome, RolloutError> {
    start_created(t, spec, stage, created).await
}

/// Removes a container [`create_ahead`] made for a release that did not start (a step it waited for failed).
pub async fn discard_ahead(t: &Target<'_>, created: &Created) -> Result<(), RolloutError> {
    t.engine.remove(&created.name).await?;
    Ok(())
}

/// The candidate's start, its health check, and at a first launch (not staged) its joining the stable name.
async fn start_created(
    t: &Target<'_>,
    spec: &ContainerSpec,
    stage: bool,
    created: Created,
) -> Result<Outcome, RolloutError> {
    let Created {
        name: candidate_name,
        previous,
    } = created;
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
        service: spec.service.clone(),
        candidate: candidate_name.clone(),
        live: spec.name.clone(),
        alias: spec.release_alias.clone().unwrap_or_default(),
        previous,
    };
    if !stage && !previous {
        // The first launch: nothing to drain.
        serve(t, &candidate_name, &spec.service).await?;
        return Ok(Outcome::Live);
    }
    Ok(Outcome::Staged(staged))
}

/// Finishes a release that an interrupted run put in the stable name but did not complete: the previous
/// release is drained and removed, and the candidate takes the service's name. Returns whether it did.
async fn adopt_serving_candidate(
    t: &Target<'_>,
    spec: &ContainerSpec,
    candidate: &str,
) -> Result<bool, RolloutError> {
    let Some(info) = t.engine.inspect(candidate).await? else {
        return Ok(false);
    };
    if !info.running || !info.answers_to(&serving_network(t.stack), &serving_name(&spec.service)) {
        return Ok(false);
    }
    tracing::info!(
        candidate,
        "the candidate an interrupted run left serves already: finishing that release"
    );
    // The run may have been stopped the moment the candidate joined the name: nginx's resolver is given the
    // time to see it before the previous release goes, as `go_live` gives it.
    tokio::time::sleep(SEEN).await;
    retire(t, &spec.name).await?;
    rename(t, candidate, &spec.name).await?;
    Ok(true)
}

/// Puts a staged release live: it joins the stable name, and once nginx knows it the previous release is
/// drained and removed; the candidate takes the service's name.
pub async fn go_live(t: &Target<'_>, staged: &Staged) -> Result<(), RolloutError> {
    if let Err(e) = serve(t, &staged.candidate, &staged.service).await {
        if staged.previous {
            let _ = t.engine.remove(&staged.candidate).await;
        }
        return Err(e);
    }
    if staged.previous {
        tokio::time::sleep(SEEN).await;
    }
    retire(t, &staged.live).await?;
    rename(t, &staged.candidate, &staged.live).await
}

/// Takes a release out of service: SIGTERM (the backend stops accepting at once and finishes what it has), then
/// removal. A missing container is not an error.
async fn retire(t: &Target<'_>, name: &str) -> Result<(), RolloutError> {
    if t.engine
        .container_state(name)
        .await?
        .is_some_and(|s| s.running)
    {
        t.engine.stop(name, STOP_GRACE).await?;
    }
    t.engine.remove(name).await?;
    Ok(())
}

/// Puts `name` in the stable name of `service`'s serving releases, unless it is there already.
async fn serve(t: &Target<'_>, name: &str, service: &str) -> Result<(), RolloutError> {
    let network = serving_network(t.stack);
    let alias = serving_name(service);
    let serving = t
        .engine
        .inspect(name)
        .await?
        .is_some_and(|info| info.answers_to(&network, &alias));
    if !serving {
        t.engine
            .join_network(name, name, &network, &[alias])
            .await?;
    }
    Ok(())
}

async fn rename(t: &Target<'_>, from: &str, to: &str) -> Result<(), RolloutError> {
    t.engine.rename(from, to).await?;
    Ok(())
}

/// Removes a staged release that may not go live, when a previous release serves. At a first launch the
/// candidate stays behind the maintenance page, outside the stable name, and the next `up` replaces it.
pub async fn discard(t: &Target<'_>, staged: &Staged) -> Result<(), RolloutError> {
    if staged.previous {
        t.engine.remove(&staged.candidate).await?;
    }
    Ok(())
}

async fn wait_healthy(t: &Target<'_>, name: &str, spec: &ContainerSpec) -> Result<(), EngineError> {
    t.engine.wait_for_spec(name, spec).await
}
