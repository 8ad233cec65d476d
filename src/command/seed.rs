//! `vldeploy seed`: import the stack's catalog CSV (`catalog:`) through the backend's admin import, on demand;
//! and the first launch's import, which `up` runs once per host.

use super::context::Connected;
use super::{CommandError, Context};
use crate::cli::Output;
use crate::layout::container_name;

pub(crate) async fn seed(ctx: &Context) -> Result<i32, CommandError> {
    let csv = catalog_csv(ctx)?.ok_or_else(|| {
        CommandError::Usage(format!(
            "environment `{}` names no `catalog:`; add e.g. `catalog: data/catalog.csv` to stack.yaml",
            ctx.stack.environment
        ))
    })?;
    let token = ctx.admin_token("the catalog import")?;
    let (c, container, backend) = if ctx.stack.hosts.is_empty() {
        let c = ctx.connect().await?;
        (c, container_name("nginx"), container_name("backend"))
    } else {
        cluster_edge(ctx).await?
    };
    ctx.locked_audited(&c, "seed", || async {
        let url = import_url(ctx, &backend);
        match run_import_in(ctx, &c, &container, &url, &token, &csv).await {
            Ok(line) => {
                match ctx.output {
                    Output::Human => println!("{line}"),
                    Output::Json => {
                        println!("{}", serde_json::json!({"seeded": true, "summary": line}));
                    }
                }
                (audited(vec![line]), Ok(0))
            }
            Err(e) => (audited(vec!["import the catalog seed".into()]), Err(e)),
        }
    })
    .await
}

fn audited(changes: Vec<String>) -> super::context::Audited {
    super::context::Audited {
        changes,
        waived: Vec::new(),
        note: None,
    }
}

/// At a first launch: imports the catalog seed unless the host records an earlier import. `alias` names the
/// backend release that runs now (live or staged). Returns the line for the audit log when it imported.
pub(crate) async fn first_launch(
    ctx: &Context,
    c: &Connected,
    alias: &str,
) -> Result<Option<String>, CommandError> {
    let Some(csv) = catalog_csv(ctx)? else {
        return Ok(None);
    };
    if crate::catalog::seeded(&c.remote, &ctx.stack.name)
        .await
        .map_err(|e| CommandError::Io(e.to_string()))?
        .is_some()
    {
        return Ok(None);
    }
    let token = ctx.admin_token("the catalog import")?;
    ctx.out
        .note("catalog seed: first launch, importing `catalog:` …");
    let line = run_import(ctx, c, &import_url(ctx, alias), &token, &csv)
        .await
        .map_err(|e| {
            CommandError::Io(format!(
                "{e}\n  the stack is up without its catalog; `vldeploy seed -e {}` imports it",
                ctx.stack.environment
            ))
        })?;
    ctx.out.note(line.clone());
    Ok(Some(line))
}

/// On a cluster: the first edge node (its lock on the first host), the container of its nginx task, and the
/// backend's name on the stack's overlay network (each of its tasks answers it).
async fn cluster_edge(ctx: &Context) -> Result<(Connected, String, String), CommandError> {
    let edge = ctx
        .stack
        .hosts
        .iter()
        .position(|h| h.has(crate::stack::Role::Edge))
        .ok_or_else(|| {
            CommandError::Usage(format!(
                "environment `{}` has no host with the `edge` role under `hosts:`: the import goes through nginx",
                ctx.stack.environment
            ))
        })?;
    let node = crate::swarm::connect_host(
        &ctx.stack,
        &ctx.stack.hosts[edge],
        std::time::Duration::from_secs(15),
    )
    .await?;
    let keeper = if edge == 0 {
        None
    } else {
        Some(ctx.connect_keeper().await?.remote)
    };
    let c = Connected {
        remote: node.remote,
        engine: node.engine,
        keeper,
    };
    let nginx = crate::swarm::service_name(&ctx.stack.name, "nginx");
    let container = super::db_node::running_task(&c, &nginx).await?;
    Ok((c, container, "backend".to_owned()))
}

async fn run_import(
    ctx: &Context,
    c: &Connected,
    url: &str,
    token: &str,
    csv: &[u8],
) -> Result<String, CommandError> {
    run_import_in(ctx, c, &container_name("nginx"), url, token, csv).await
}

/// [`run_import`] from inside `container`.
async fn run_import_in(
    ctx: &Context,
    c: &Connected,
    container: &str,
    url: &str,
    token: &str,
    csv: &[u8],
) -> Result<String, CommandError> {
    let imported =
        crate::catalog::import_in(&c.remote, container, &ctx.stack.name, url, token, csv)
            .await
            .map_err(|e| {
                CommandError::Io(crate::secret::scrub(&e.to_string(), &ctx.stack.secrets))
            })?;
    Ok(format!(
        "catalog seed `{}` imported: {} products ({} new, {} updated)",
        shown_path(ctx),
        imported.imported,
        imported.created,
        imported.updated
    ))
}

/// The backend's admin import at `host` (a container name or release alias on the private network): nginx's
/// `/api/` would answer 503 behind a gated first launch's maintenance page.
fn import_url(ctx: &Context, host: &str) -> String {
    format!(
        "http://{host}:{}/api/admin/catalog/import",
        ctx.backend_port()
    )
}

fn shown_path(ctx: &Context) -> String {
    ctx.stack.catalog.as_ref().map_or_else(String::new, |p| {
        p.strip_prefix(&ctx.stack.project_dir)
            .unwrap_or(p)
            .display()
            .to_string()
    })
}

/// The CSV of `catalog:`, read now (`None`: the environment names none).
fn catalog_csv(ctx: &Context) -> Result<Option<Vec<u8>>, CommandError> {
    let Some(path) = &ctx.stack.catalog else {
        return Ok(None);
    };
    std::fs::read(path)
        .map(Some)
        .map_err(|e| CommandError::Usage(format!("catalog `{}`: {e}", path.display())))
}
