//! The db node of an environment with `hosts:`: where its backup cron runs and its backups are kept, and what
//! `backup`, `restore` and `seed` act through (the postgres task there, the backend service on a manager).

use std::sync::Arc;

use super::context::Connected;
use super::{CommandError, Context};
use crate::backup::{Setup, SwarmBackend};
use crate::stack::{Role, Stack};
use crate::swarm::{Node, service_name};

/// Every host of the cluster, connected, and the db node among them.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Node>,
    /// The db node, its lock and audit log on the first host (where `up` keeps them).
    pub(crate) db: Connected,
}

/// The index of the host with the db role in `stack.hosts` (the loader accepts exactly one).
fn db_index(stack: &Stack) -> Result<usize, CommandError> {
    stack
        .hosts
        .iter()
        .position(|h| h.has(Role::Db))
        .ok_or_else(|| {
            CommandError::Usage(format!(
                "environment `{}` has no host with the `db` role under `hosts:`\n  help: name the host that runs postgres under `hosts: db:`",
                stack.environment
            ))
        })
}

/// Connects to every host of the environment; the db node's connection keeps its lock on the first host.
pub(crate) async fn connect(ctx: &Context) -> Result<Cluster, CommandError> {
    let db = db_index(&ctx.stack)?;
    let nodes = crate::swarm::connect(&ctx.stack).await?;
    let node = &nodes[db];
    let keeper = (db != 0).then(|| nodes[0].remote.clone());
    let db = Connected {
        remote: node.remote.clone(),
        engine: node.engine.clone(),
        keeper,
    };
    Ok(Cluster { nodes, db })
}

/// The first of `ids` (one container ID a line), if any.
fn first_id(ids: &str) -> Option<&str> {
    ids.lines().map(str::trim).find(|l| !l.is_empty())
}

/// The container of the running task of `service` on the host of `c`.
pub(crate) async fn running_task(c: &Connected, service: &str) -> Result<String, CommandError> {
    let out = c
        .remote
        .exec(&crate::remote::service_task::running_container(service))
        .await?;
    let host = c.remote.name();
    if !out.success() {
        return Err(CommandError::Io(format!(
            "on `{host}`, listing the tasks of service `{service}` exited with {}: {}",
            out.status,
            out.stderr_tail(3)
        )));
    }
    first_id(&out.stdout_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            CommandError::Io(format!(
                "on `{host}`, no task of service `{service}` runs\n  help: `vldeploy status` shows where the stack's tasks run; `vldeploy up` starts them"
            ))
        })
}

/// The backup settings of the cluster, against the running postgres task on the db node.
pub(crate) async fn setup(ctx: &Context, c: &Connected) -> Result<Setup, CommandError> {
    let mut setup = cluster_setup(&ctx.stack)?;
    setup.container = running_task(c, &service_name(&ctx.stack.name, "postgres")).await?;
    Ok(setup)
}

/// [`Setup::for_cluster`], or why there is none.
fn cluster_setup(stack: &Stack) -> Result<Setup, CommandError> {
    db_index(stack)?;
    Setup::for_cluster(stack).ok_or_else(|| CommandError::Usage("no db host".into()))
}

/// The replicas the backend runs outside a restore: `spec` (what its service says now) unless a restore that
/// was interrupted left it at 0, then what the stack asks for (`replicas:`, else one per app host).
pub(crate) fn backend_replicas(stack: &Stack, spec: Option<u32>) -> u32 {
    let app_hosts = stack.hosts.iter().filter(|h| h.has(Role::App)).count();
    let asked = stack.services.get("backend").and_then(|s| s.replicas);
    replicas_to_restore(spec, asked, app_hosts)
}

/// [`backend_replicas`] from the spec's count, the stack's `replicas:` and its number of app hosts.
fn replicas_to_restore(spec: Option<u32>, asked: Option<u32>, app_hosts: usize) -> u32 {
    spec.filter(|n| *n > 0)
        .or(asked)
        .unwrap_or_else(|| u32::try_from(app_hosts.max(1)).unwrap_or(1))
}

/// The backend service as a restore scales it, through a manager of the cluster.
pub(crate) async fn swarm_backend(
    ctx: &Context,
    nodes: &[Node],
) -> Result<SwarmBackend, CommandError> {
    let manager = crate::swarm::manager(nodes).await?;
    let service = service_name(&ctx.stack.name, "backend");
    let out = manager
        .remote
        .exec(&crate::remote::service_task::replicas(&service))
        .await?;
    if !out.success() {
        return Err(CommandError::Io(format!(
            "on `{}`, service `{service}` cannot be read ({}): {}\n  help: `vldeploy up` creates the stack's services",
            manager.remote.name(),
            out.status,
            out.stderr_tail(3)
        )));
    }
    let spec = out.stdout_str().trim().parse::<u32>().ok();
    Ok(SwarmBackend {
        manager: manager.remote.clone(),
        service,
        replicas: backend_replicas(&ctx.stack, spec),
    })
}

/// `up` on a cluster: the backup script and its cron entry on the db node alone, each written when it
/// differs. Returns the changes made.
pub(crate) async fn install_backup(
    stack: &Stack,
    nodes: &[Node],
) -> Result<Vec<String>, CommandError> {
    let node = &nodes[db_index(stack)?];
    let files = cluster_setup(stack)?.files()?;
    let remote: &Arc<crate::transport::Remote> = &node.remote;
    let mut changes = Vec::new();
    for file in files {
        if remote.read_file(&file.path).await?.as_deref() == Some(file.content.as_slice()) {
            continue;
        }
        remote.upload(&file.path, &file.content, file.mode).await?;
        changes.push(format!(
            "backup: write `{}` on `{}`",
            file.path,
            remote.name()
        ));
    }
    Ok(changes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_first_listed_container_is_the_task() {
        assert_eq!(first_id("abc123\ndef456\n"), Some("abc123"));
        assert_eq!(first_id("\n  \n"), None);
        assert_eq!(first_id(""), None);
    }

    #[test]
    fn the_backend_goes_back_to_what_it_ran_or_else_to_what_the_stack_asks() {
        assert_eq!(replicas_to_restore(Some(3), Some(2), 2), 3);
        // A restore interrupted while it was scaled to 0: the stack's count, else one per app host.
        assert_eq!(replicas_to_restore(Some(0), Some(4), 2), 4);
        assert_eq!(replicas_to_restore(Some(0), None, 2), 2);
        assert_eq!(replicas_to_restore(None, None, 0), 1);
    }
}
