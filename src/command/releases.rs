//! `vldeploy releases` and `vldeploy rollback [RELEASE]`: the backend's release history, and going back in it.

use super::context::Connected;
use super::{CommandError, Context};
use crate::cli::{Output, RollbackArgs};
use crate::layout::container_name;
use crate::rollout::{self, Release, Target};

/// The id of the release serving now: the alias of the live backend's configuration.
async fn live_release(c: &Connected) -> Result<Option<String>, CommandError> {
    let state = c.engine.container_state(&container_name("backend")).await?;
    Ok(state
        .and_then(|s| s.config_hash)
        .map(|h| format!("backend-{h}")))
}

pub(crate) async fn releases(ctx: &Context) -> Result<i32, CommandError> {
    if !ctx.stack.hosts.is_empty() {
        return super::swarm_releases::releases(ctx).await;
    }
    let c = ctx.connect().await?;
    let history = rollout::read_history(&c.remote, &ctx.stack.name).await?;
    let live = live_release(&c).await?;
    match ctx.output {
        Output::Json => {
            let site = crate::site::read_history(&c.remote, &ctx.stack.name).await?;
            let live_site = live_site(&c, &ctx.stack.name).await?;
            println!(
                "{}",
                serde_json::json!({"stack": ctx.stack.name, "live": live, "releases": history.releases,
                    "site": {"live": live_site, "releases": site.releases}})
            );
        }
        Output::Human => {
            if history.releases.is_empty() {
                println!(
                    "no releases recorded for `{}` on {} yet (run `vldeploy up`)",
                    ctx.stack.name,
                    ctx.target_name()
                );
                return Ok(0);
            }
            println!(
                "  {:<25} {:<34} {:<22} {:<20} COMMIT",
                "RELEASE", "IMAGE", "RELEASED", "BY"
            );
            for r in &history.releases {
                let mark = if live.as_deref() == Some(r.id.as_str()) {
                    "*"
                } else {
                    " "
                };
                println!(
                    "{mark} {:<25} {:<34} {:<22} {:<20} {}",
                    r.id,
                    r.image_ref,
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.created)
                    ),
                    r.actor,
                    r.git.as_deref().unwrap_or("-")
                );
            }
            site_listing(ctx, &c).await?;
            println!("(* live)");
        }
    }
    Ok(0)
}

/// The storefront's releases under the backend's, when the stack has some.
async fn site_listing(ctx: &Context, c: &Connected) -> Result<(), CommandError> {
    let history = crate::site::read_history(&c.remote, &ctx.stack.name).await?;
    if history.releases.is_empty() {
        return Ok(());
    }
    let live = live_site(c, &ctx.stack.name).await?;
    println!(
        "  {:<25} {:<34} {:<22} {:<20} COMMIT",
        "SITE", "", "RELEASED", "BY"
    );
    for r in &history.releases {
        let mark = if live.as_deref() == Some(r.hash.as_str()) {
            "*"
        } else {
            " "
        };
        println!(
            "{mark} {:<25} {:<34} {:<22} {:<20} {}",
            r.id(),
            "",
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.created)
            ),
            r.actor,
            r.git.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// The storefront release `current` names on the host.
async fn live_site(c: &Connected, stack: &str) -> Result<Option<String>, CommandError> {
    let out = c.remote.run(&crate::remote::site::serving(stack)).await?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((!text.is_empty()).then_some(text))
}

/// Which release `rollback` without an argument undoes: the storefront's when it changed last (and a previous
/// release of it is kept), else the backend's.
async fn site_rolled_back(
    ctx: &Context,
    c: &Connected,
    args: &RollbackArgs,
) -> Result<Option<(i32, Vec<String>)>, CommandError> {
    let stack = ctx.stack.name.as_str();
    let wanted = args.wanted();
    if wanted.is_some_and(|w| !w.starts_with("site-")) {
        return Ok(None);
    }
    let history = crate::site::read_history(&c.remote, stack).await?;
    let live = live_site(c, stack).await?;
    let target = match wanted {
        Some(w) => {
            let hash = w.trim_start_matches("site-");
            let matches: Vec<_> = history
                .releases
                .iter()
                .filter(|r| r.hash.starts_with(hash) && !hash.is_empty())
                .collect();
            match matches.as_slice() {
                [one] => (*one).clone(),
                [] => {
                    return Err(CommandError::Usage(format!(
                        "no storefront release `{w}` on {}; `vldeploy releases` lists the {} kept",
                        ctx.target_name(),
                        history.releases.len()
                    )));
                }
                _ => {
                    return Err(CommandError::Usage(format!(
                        "`{w}` matches several storefront releases; give more of its hash"
                    )));
                }
            }
        }
        None => {
            let backend_last = rollout::read_history(&c.remote, stack)
                .await?
                .releases
                .last()
                .map_or(0, |r| r.created);
            let site_last = history.releases.last().map_or(0, |r| r.created);
            match history.previous(live.as_deref()) {
                Some(p) if site_last >= backend_last => p.clone(),
                _ => return Ok(None),
            }
        }
    };
    if live.as_deref() == Some(target.hash.as_str()) {
        println!("`{}` is already live; nothing to do.", target.id());
        return Ok(Some((0, Vec::new())));
    }
    ctx.out.note(format!(
        "rolling the storefront back to `{}` …",
        target.id()
    ));
    crate::site::switch_back(&c.remote, stack, &target, &crate::state::actor())
        .await
        .map_err(|e| CommandError::Io(e.to_string()))?;
    let summary = format!(
        "rolled the storefront back to `{}`, from {}",
        target.id(),
        live.as_deref()
            .map_or("nothing".to_string(), |h| format!("`site-{h}`"))
    );
    match ctx.output {
        Output::Human => println!(
            "{summary}\nnote: the next `vldeploy up` releases the stack's own storefront again."
        ),
        Output::Json => println!(
            "{}",
            serde_json::json!({"stack": stack, "rolled_back_to": target.id(), "from": live.map(|h| format!("site-{h}"))})
        ),
    }
    Ok(Some((0, vec![summary])))
}

pub(crate) async fn rollback(ctx: &Context, args: &RollbackArgs) -> Result<i32, CommandError> {
    if !ctx.stack.hosts.is_empty() {
        return super::swarm_releases::rollback(ctx, args).await;
    }
    let c = ctx.connect().await?;
    ctx.locked(&c, "rollback", || async {
        match rollback_locked(ctx, &c, args).await {
            Ok((code, changes)) => (changes, Ok(code)),
            Err(e) => (
                vec![format!(
                    "rollback to {}",
                    args.wanted().unwrap_or("the previous release")
                )],
                Err(e),
            ),
        }
    })
    .await
}

async fn rollback_locked(
    ctx: &Context,
    c: &Connected,
    args: &RollbackArgs,
) -> Result<(i32, Vec<String>), CommandError> {
    if let Some(done) = site_rolled_back(ctx, c, args).await? {
        return Ok(done);
    }
    let stack = ctx.stack.name.as_str();
    let history = rollout::read_history(&c.remote, stack).await?;
    let live = live_release(c).await?;
    let target: &Release = match args.wanted() {
        Some(wanted) => {
            let matches: Vec<&Release> = history
                .releases
                .iter()
                .filter(|r| {
                    r.id == *wanted
                        || r.id
                            .trim_start_matches("backend-")
                            .starts_with(wanted.trim_start_matches("backend-"))
                })
                .collect();
            match matches.as_slice() {
                [one] => one,
                [] => {
                    return Err(CommandError::Usage(format!(
                        "no release `{wanted}` on {}; `vldeploy releases` lists the {} kept",
                        ctx.target_name(),
                        history.releases.len()
                    )));
                }
                _ => {
                    return Err(CommandError::Usage(format!(
                        "`{wanted}` matches several releases; give more of its id"
                    )));
                }
            }
        }
        None => history
            .releases
            .iter()
            .rev()
            .find(|r| Some(&r.id) != live.as_ref())
            .ok_or_else(|| {
                CommandError::Usage(format!(
                    "no earlier release to roll back to on {}; `vldeploy releases` lists them",
                    ctx.target_name()
                ))
            })?,
    };
    if live.as_deref() == Some(target.id.as_str()) {
        println!("`{}` is already live; nothing to do.", target.id);
        return Ok((0, Vec::new()));
    }
    if !c.engine.has_image(&target.image_id).await? {
        return Err(CommandError::Usage(format!(
            "the image of `{}` ({}) is no longer on {}; it cannot be rolled back to",
            target.id,
            target.image_ref,
            ctx.target_name()
        )));
    }
    let mut spec = rollout::stored_spec(&c.remote, stack, &target.id).await?;
    spec.hash_key = Some(crate::facts::hash_key(&c.remote, stack).await?);
    ctx.out.note(format!(
        "rolling back to `{}` ({}) …",
        target.id, target.image_ref
    ));
    let t = Target {
        remote: &c.remote,
        engine: &c.engine,
        stack,
    };
    // The same switch as `up`'s releases: into the stable name nginx resolves, no reload.
    rollout::release(&t, &spec).await?;
    rollout::record_release(
        &c.remote,
        stack,
        &spec,
        &crate::state::actor(),
        target.git.clone(),
        crate::apply::RELEASES_KEPT,
    )
    .await?;
    let line = format!(
        "rolled back `vl_backend` to `{}` ({}), from {}",
        target.id,
        target.image_ref,
        live.as_deref().unwrap_or("nothing")
    );
    match ctx.output {
        Output::Human => println!(
            "{line}\nnote: the next `vldeploy up` releases the stack's own configuration again."
        ),
        Output::Json => println!(
            "{}",
            serde_json::json!({"stack": stack, "rolled_back_to": target, "from": live})
        ),
    }
    Ok((0, vec![line]))
}
