//! The edges of a swarm from `up`, `certs` and `maintenance`: nginx's host directories and the storefront's
//! release on each edge node,
//! the certificate issued once and installed on every edge, the maintenance page put up or lifted on each.

use std::collections::BTreeMap;

use super::{CommandError, Context};
use crate::plan::{HashKey, Images};
use crate::stack::Tls;
use crate::swarm::{ImageCommand, Node};

fn edge_error(e: &crate::swarm::EdgeError) -> CommandError {
    CommandError::Io(e.to_string())
}

/// Before the services of `up`: every edge node's `www`, ACME webroot and first certificate in place.
pub(super) async fn before_services(
    ctx: &Context,
    nodes: &[Node],
    images: &Images,
    commands: &BTreeMap<String, ImageCommand>,
    key: &HashKey,
    changes: &mut Vec<String>,
) -> Result<(), CommandError> {
    let design = crate::swarm::design(&ctx.stack, images, commands, key)
        .map_err(crate::swarm::DeployError::from)?;
    let done = crate::swarm::prepare_edges(&ctx.stack, nodes, &design.edge_files, &ctx.out)
        .await
        .map_err(|e| edge_error(&e))?;
    changes.extend(done);
    // The storefront's release is on every edge before nginx's service is converged: a task that bind-mounts
    // its directory finds it there.
    if let Some(site) =
        crate::site::desired(&ctx.stack).map_err(|e| CommandError::Io(e.to_string()))?
    {
        let done = crate::swarm::release_site(
            &ctx.stack,
            nodes,
            &site,
            &crate::state::actor(),
            super::context::git_commit(&ctx.stack.project_dir),
            &ctx.out,
        )
        .await
        .map_err(|e| edge_error(&e))?;
        changes.extend(done);
    }
    Ok(())
}

/// After the services of `up`: with `tls: acme`, the certificate issued when due and served by every edge.
pub(super) async fn after_services(
    ctx: &Context,
    nodes: &[Node],
    force: bool,
    changes: &mut Vec<String>,
) -> Result<Option<crate::tls::Converged>, CommandError> {
    if !matches!(ctx.stack.tls, Tls::Acme(_)) {
        return Ok(None);
    }
    let edges = crate::swarm::edge_remotes(nodes);
    ctx.out.note(format!(
        "certificate for {}: checking on {} edges…",
        ctx.stack.domain,
        edges.len()
    ));
    let first = edges
        .first()
        .map_or_else(String::new, |r| r.name().to_string());
    let done = crate::tls::converge_edges(&ctx.stack, &edges, force)
        .await
        .map_err(|e| super::certs::cert_error(ctx, &first, &e))?;
    for line in &done.changes {
        ctx.out.note(line);
    }
    changes.extend(done.changes.iter().cloned());
    Ok(Some(done))
}

/// `vldeploy certs status|renew` on a swarm.
pub(super) async fn certs(
    ctx: &Context,
    action: &crate::cli::CertsAction,
) -> Result<i32, CommandError> {
    match action {
        crate::cli::CertsAction::Status => certs_status(ctx).await,
        crate::cli::CertsAction::Renew { force } => certs_renew(ctx, *force).await,
    }
}

async fn certs_renew(ctx: &Context, force: bool) -> Result<i32, CommandError> {
    if !matches!(ctx.stack.tls, Tls::Acme(_)) {
        return Err(CommandError::Usage(format!(
            "environment `{}` does not use `tls: acme`: there is nothing to renew",
            ctx.stack.environment
        )));
    }
    let nodes = crate::swarm::connect(&ctx.stack).await?;
    let first = nodes[0].remote.clone();
    ctx.locked_audited_on(&first, "certs renew", || async {
        let mut changes = Vec::new();
        let result = after_services(ctx, &nodes, force, &mut changes).await;
        let result = result.map(|done| {
            if let Some(c) = done {
                match ctx.output {
                    crate::cli::Output::Human => {
                        println!("{}", super::certs::describe(&ctx.stack.domain, &c));
                    }
                    crate::cli::Output::Json => {
                        println!("{}", serde_json::to_string(&c.report).unwrap_or_default());
                    }
                }
            }
            0
        });
        (
            super::context::Audited {
                changes,
                ..super::context::Audited::default()
            },
            result,
        )
    })
    .await
}

/// Each edge's certificate (serial, issuer, expiry), the one that differs from the first edge's named; exits 1
/// when an edge has none or another one.
async fn certs_status(ctx: &Context) -> Result<i32, CommandError> {
    use crate::tls::date;
    let nodes = crate::swarm::connect(&ctx.stack).await?;
    let edges = crate::swarm::edge_remotes(&nodes);
    let rows = crate::tls::edge_certificates(&ctx.stack, &edges)
        .await
        .map_err(|e| CommandError::Io(e.to_string()))?;
    let status = crate::tls::edges_status(&edges, &ctx.stack.name)
        .await
        .map_err(|e| CommandError::Io(e.to_string()))?;
    let bad = rows
        .iter()
        .filter(|r| r.differs || r.certificate.is_none())
        .count();
    match ctx.output {
        crate::cli::Output::Json => println!(
            "{}",
            serde_json::json!({"domain": ctx.stack.domain, "edges": rows, "status": status})
        ),
        crate::cli::Output::Human => {
            println!("domain        {}", ctx.stack.domain);
            for r in &rows {
                match &r.certificate {
                    Some(c) => println!(
                        "edge {}: certificate {} from {}, expires {}{}{}",
                        r.host,
                        c.serial,
                        c.issuer,
                        date(c.not_after),
                        if c.placeholder { " (placeholder)" } else { "" },
                        if r.differs {
                            format!(" — DIFFERS from edge {}", rows[0].host)
                        } else {
                            String::new()
                        }
                    ),
                    None => println!("edge {}: no certificate installed", r.host),
                }
            }
            println!(
                "renewal       by `vldeploy up` / `vldeploy certs renew -e {}` (run it daily from CI); status on edge {}",
                ctx.stack.environment,
                rows.first().map_or("-", |r| r.host.as_str())
            );
            if bad > 0 {
                println!(
                    "  help: `vldeploy certs renew -e {}` gives every edge the first edge's certificate",
                    ctx.stack.environment
                );
            }
        }
    }
    Ok(i32::from(bad > 0))
}
