//! Putting a storefront release live: unpack it beside the others, switch `current` with one rename, record it,
//! prune what is no longer kept.

use super::SiteError;
use super::history::{SiteRelease, read_history, write_history};
use crate::layout::SITE_RELEASES_KEPT;
use crate::plan::DesiredSite;
use crate::remote::site as cmd;
use crate::transport::Remote;

/// Puts `site` on the host and makes it the one nginx serves. Requests in flight see the old release or the
/// new one, never a mix of directories: nginx resolves `current` per request, so no reload is needed.
pub async fn release(
    remote: &Remote,
    stack: &str,
    site: &DesiredSite,
    actor: &str,
    git: Option<String>,
) -> Result<(), SiteError> {
    remote
        .run_stdin(&cmd::unpack(stack, &site.hash), site.archive.clone())
        .await?;
    switch_and_record(remote, stack, &site.hash, actor, git).await
}

/// Puts `site` on the host beside the releases it has, without serving it yet (a host that has it already
/// only reads the stream): on a swarm every edge holds the release before any edge switches to it.
pub async fn stage(remote: &Remote, stack: &str, site: &DesiredSite) -> Result<(), SiteError> {
    remote
        .run_stdin(&cmd::unpack(stack, &site.hash), site.archive.clone())
        .await?;
    Ok(())
}

/// Makes the staged release `hash` the one nginx serves, recorded in the host's history.
pub async fn switch_to(
    remote: &Remote,
    stack: &str,
    hash: &str,
    actor: &str,
    git: Option<String>,
) -> Result<(), SiteError> {
    switch_and_record(remote, stack, hash, actor, git).await
}

/// The release `current` names on the host (`None`: none yet).
pub async fn serving(remote: &Remote, stack: &str) -> Result<Option<String>, SiteError> {
    let out = remote.run(&cmd::serving(stack)).await?;
    let hash = out.stdout_str().trim().to_owned();
    Ok((!hash.is_empty()).then_some(hash))
}

/// Makes the kept release `hash` serve again (`vldeploy rollback`).
pub async fn switch_back(
    remote: &Remote,
    stack: &str,
    release: &SiteRelease,
    actor: &str,
) -> Result<(), SiteError> {
    switch_and_record(remote, stack, &release.hash, actor, release.git.clone()).await
}

async fn switch_and_record(
    remote: &Remote,
    stack: &str,
    hash: &str,
    actor: &str,
    git: Option<String>,
) -> Result<(), SiteError> {
    remote.run(&cmd::switch(stack, hash)).await?;
    let mut history = read_history(remote, stack).await?;
    let kept = history.push(
        SiteRelease {
            hash: hash.to_owned(),
            created: crate::state::now(),
            actor: actor.to_owned(),
            git,
        },
        SITE_RELEASES_KEPT,
    );
    write_history(remote, stack, &history).await?;
    remote.run(&cmd::prune(stack, &kept)).await?;
    Ok(())
}
