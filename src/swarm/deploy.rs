//! The stack on its swarm: images on every node that runs them, then the overlay network, secrets, configs and
//! services on a manager, waited for until their tasks run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::form::{Node, SwarmError};
use super::services::{ImageCommand, ServiceDesign, ServiceMode, design};
use crate::engine::{Engine, EngineError};
use crate::output::Output;
use crate::plan::{HashKey, Images};
use crate::stack::Stack;

/// How long the services may take for their tasks to run (a first start builds postgres's data directory).
const CONVERGE_LIMIT: Duration = Duration::from_mins(5);

/// Why the stack's services did not come up on its swarm; each names the node or the service.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}\n  nothing was changed on the swarm's services")]
    Design(#[from] super::services::ServicesError),
    #[error("no node of the swarm is a manager after it formed: nothing can create its services")]
    NoManager,
    #[error(
        "service `{service}`: {running} of {wanted} tasks running after {secs} s ({last})\n  help: `docker service ps {service} --no-trunc` on a manager says why"
    )]
    NotConverged {
        service: String,
        running: usize,
        wanted: usize,
        secs: u64,
        last: String,
    },
    #[error(
        "service `{service}`: its new tasks did not become healthy and Swarm rolled it back: the previous release keeps serving\n  swarm said: {message}\n  help: `docker service ps {service} --no-trunc` on a manager shows the failed tasks and their errors; `up` tries the release again once its cause is fixed"
    )]
    RolledBack { service: String, message: String },
    #[error(
        "service `{service}`: Swarm paused its update ({message})\n  help: `docker service ps {service} --no-trunc` on a manager says why; `docker service update --rollback {service}` goes back"
    )]
    Paused { service: String, message: String },
}

/// Puts each service's image on every node that runs it, all nodes at once: a node that has the image, or one
/// of the same build inputs, gets the name alone; the others receive its missing layers.
/// `inputs`: per built service, its build inputs label; `limit`: how long one node's transfer may take (several
/// at once share the machine's disk and link). Returns what was sent.
pub async fn deliver(
    nodes: &[Node],
    local: &Engine,
    images: &Images,
    inputs: &BTreeMap<String, String>,
    limit: Duration,
    out: &Output,
) -> Result<Vec<String>, DeployError> {
    let local = &local.with_timeout(limit);
    let sends = nodes.iter().map(|node| async move {
        let mut missing = Vec::new();
        for (reference, placed) in placements(node, images, inputs).await? {
            match placed {
                Placement::Tag(id) => node.engine.tag_image_as(&id, &reference).await?,
                Placement::Send => missing.push(reference),
            }
        }
        if missing.is_empty() {
            return Ok::<_, EngineError>(None);
        }
        let quiet: crate::engine::Progress = Arc::new(|_, _| {});
        let to = node.engine.with_timeout(limit);
        let delivered = crate::engine::deliver_images(local, &to, &missing, quiet).await?;
        Ok(Some(format!(
            "images: {} to {}",
            delivered.summary(),
            node.host.target
        )))
    });
    let mut done = Vec::new();
    for sent in futures_util::future::join_all(sends).await {
        if let Some(line) = sent? {
            out.note(&line);
            done.push(line);
        }
    }
    Ok(done)
}

/// How a node comes to hold an image of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// It has the image, or another build of the same inputs, by this ID: only the name is added (again).
    Tag(String),
    /// Its missing layers are sent.
    Send,
}

/// For each image the node runs (by its role), its reference and how the node comes to hold it. Changes
/// nothing.
pub async fn placements(
    node: &Node,
    images: &Images,
    inputs: &BTreeMap<String, String>,
) -> Result<Vec<(String, Placement)>, EngineError> {
    let mut placed = Vec::new();
    for (service, (id, reference)) in images {
        if !node.host.has(super::snapshot::service_role(service)) || id.is_empty() {
            continue;
        }
        let how = if node.engine.has_image(id).await? {
            Placement::Tag(id.clone())
        } else if let Some(held) = same_build(node, inputs.get(service)).await? {
            Placement::Tag(held)
        } else {
            Placement::Send
        };
        placed.push((reference.clone(), how));
    }
    Ok(placed)
}

/// The oldest image on the node built from the inputs `label` names.
async fn same_build(node: &Node, label: Option<&String>) -> Result<Option<String>, EngineError> {
    let Some(label) = label else {
        return Ok(None);
    };
    let same = crate::engine::images_built_from(&node.engine, label).await?;
    Ok(same
        .into_iter()
        .min_by_key(|(_, created)| *created)
        .map(|(held, _)| held))
}

/// What each service's image starts by default, read from the local engine that built it.
pub async fn image_commands(
    local: &Engine,
    images: &Images,
) -> Result<BTreeMap<String, ImageCommand>, DeployError> {
    let mut commands = BTreeMap::new();
    for (service, (_, reference)) in images {
        commands.insert(service.clone(), local.image_command(reference).await?);
    }
    Ok(commands)
}

/// The first node that is a manager.
pub async fn manager(nodes: &[Node]) -> Result<&Node, DeployError> {
    for node in nodes {
        if node.engine.swarm_membership().await?.manager {
            return Ok(node);
        }
    }
    Err(DeployError::NoManager)
}

/// Brings the stack's services to their design through `manager`; pushes each change to `done` as it is made
/// (nothing when every service already ran its design), so that a failure still leaves them there.
pub async fn converge_services(
    stack: &Stack,
    manager: &Node,
    want: &super::ClusterDesign,
    out: &Output,
    done: &mut Vec<String>,
) -> Result<(), DeployError> {
    let engine = &manager.engine;
    let mut say = |line: String| {
        out.note(&line);
        done.push(line);
    };
    let ids = ensure_objects(engine, stack, &want, &mut say).await?;
    let mut changed = Vec::new();
    for service in &want.services {
        let running = engine.running_service(&service.name).await?;
        let hash = service.hash();
        let verb = match &running {
            Some(r) if r.hash.as_deref() == Some(hash.as_str()) => continue,
            Some(_) => "update",
            None => "create",
        };
        engine
            .put_service(&stack.name, &want.network, service, &ids, running.as_ref())
            .await?;
        say(format!(
            "service: {verb} `{}` ({}, spec {hash})",
            service.name,
            tasks_text(service, stack)
        ));
        changed.push(service.clone());
    }
    for service in &changed {
        converge(engine, service, wanted_tasks(service, stack)).await?;
    }
    // Once a release serves, what no release Swarm can go back to refers to is removed.
    if !changed.is_empty() {
        prune(engine, &stack.name, &want, &mut say).await?;
    }
    Ok(())
}

/// The name a candidate backend answers to on the overlay network: nginx resolves `backend-live`, never this,
/// so a candidate serves no customer.
pub const CANDIDATE_ALIAS: &str = "backend-candidate";

/// The Swarm service of a candidate backend release.
pub fn candidate_name(stack: &str) -> String {
    super::services::service_name(stack, "backend-candidate")
}

/// When the backend's design differs from the service that serves, that design started as a service of its
/// own (`<stack>_backend-candidate`, one task, answering only to [`CANDIDATE_ALIAS`]) and waited for until it
/// is healthy, while the backend service is left as it is: the go-live checklist looks at the candidate before
/// the rolling update is applied. Returns the candidate's service name (`None`: the backend serves its design
/// already, or there is none yet).
pub async fn stage_candidate(
    stack: &Stack,
    manager: &Node,
    want: &super::ClusterDesign,
    out: &Output,
    done: &mut Vec<String>,
) -> Result<Option<String>, DeployError> {
    let Some(backend) = want.services.iter().find(|s| s.service == "backend") else {
        return Ok(None);
    };
    let engine = &manager.engine;
    let Some(live) = engine.running_service(&backend.name).await? else {
        return Ok(None);
    };
    if live.hash.as_deref() == Some(backend.hash().as_str()) {
        return Ok(None);
    }
    let mut say = |line: String| {
        out.note(&line);
        done.push(line);
    };
    let ids = ensure_objects(engine, stack, &want, &mut say).await?;
    let candidate = ServiceDesign {
        name: candidate_name(&stack.name),
        aliases: vec![CANDIDATE_ALIAS.to_string()],
        mode: ServiceMode::Replicated(1),
        publish: Vec::new(),
        ..backend.clone()
    };
    let leftover = engine.running_service(&candidate.name).await?;
    engine
        .put_service(
            &stack.name,
            &want.network,
            &candidate,
            &ids,
            leftover.as_ref(),
        )
        .await?;
    say(format!(
        "service: create `{}` (the candidate release, spec {}) for the go-live checklist",
        candidate.name,
        backend.hash()
    ));
    if let Err(e) = await_spec(engine, &candidate.name, &candidate.hash(), 1).await {
        let _ = engine.remove_service(&candidate.name).await;
        return Err(e);
    }
    Ok(Some(candidate.name))
}

/// The stack's overlay network, secrets and configs as `want` has them; the IDs of its secrets and configs
/// by name (Swarm refers to them by both).
async fn ensure_objects(
    engine: &Engine,
    stack: &Stack,
    want: &super::ClusterDesign,
    say: &mut impl FnMut(String),
) -> Result<std::collections::HashMap<String, String>, DeployError> {
    if engine.ensure_overlay(&stack.name, &want.network).await? {
        say(format!("network: create overlay `{}`", want.network));
    }
    // Swarm refers to a secret or config by its ID as well as its name.
    let mut ids = engine.swarm_secret_ids(&stack.name).await?;
    for s in &want.secrets {
        if !ids.contains_key(&s.name) {
            let id = engine
                .create_swarm_secret(&stack.name, &s.name, &s.value)
                .await?;
            ids.insert(s.name.clone(), id);
            say(format!("secret: create `{}`", s.name));
        }
    }
    let configs = engine.swarm_config_ids(&stack.name).await?;
    ids.extend(configs);
    for c in &want.configs {
        if !ids.contains_key(&c.name) {
            let id = engine
                .create_swarm_config(&stack.name, &c.name, &c.content)
                .await?;
            ids.insert(c.name.clone(), id);
            say(format!("config: create `{}`", c.name));
        }
    }
    Ok(ids)
}

/// Removes the stack's secrets and configs that neither this design nor a service or task refers to.
async fn prune(
    engine: &Engine,
    stack: &str,
    want: &super::ClusterDesign,
    say: &mut impl FnMut(String),
) -> Result<(), DeployError> {
    let wanted: std::collections::BTreeSet<String> = want
        .secrets
        .iter()
        .map(|s| s.name.clone())
        .chain(want.configs.iter().map(|c| c.name.clone()))
        .collect();
    let in_use = engine.swarm_names_in_use(stack).await?;
    let secrets = engine.swarm_secret_ids(stack).await?;
    let configs = engine.swarm_config_ids(stack).await?;
    for (held, config) in [(secrets, false), (configs, true)] {
        for (name, id) in super::prune::unused(&held, &wanted, &in_use) {
            if engine.remove_swarm_object(&id, &name, config).await? {
                let kind = if config { "config" } else { "secret" };
                say(format!("{kind}: remove `{name}` (no release refers to it)"));
            }
        }
    }
    Ok(())
}

/// What `up` would change in the stack's services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicesPreview {
    /// The overlay network, when it is missing.
    pub network: Option<String>,
    /// Secrets and configs to create, by name.
    pub secrets: Vec<String>,
    pub configs: Vec<String>,
    pub services: Vec<ServiceChange>,
}

/// A service `up` would create or update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChange {
    pub name: String,
    /// The spec hash it runs now (`None`: it does not exist).
    pub from: Option<String>,
    pub to: String,
    /// `2 tasks`, `one task on each of 2 edge nodes`.
    pub tasks: String,
}

/// What [`converge_services`] would change through `manager` (`None`: there is no swarm yet, so everything
/// is created). Changes nothing.
pub async fn preview_services(
    stack: &Stack,
    manager: Option<&Node>,
    images: &Images,
    commands: &BTreeMap<String, ImageCommand>,
    key: &HashKey,
) -> Result<ServicesPreview, DeployError> {
    let want = design(stack, images, commands, key)?;
    let mut preview = ServicesPreview::default();
    let mut held = std::collections::HashMap::new();
    let mut running = BTreeMap::new();
    if let Some(m) = manager {
        held = m.engine.swarm_secret_ids(&stack.name).await?;
        held.extend(m.engine.swarm_config_ids(&stack.name).await?);
        if !m.engine.has_network(&want.network).await? {
            preview.network = Some(want.network.clone());
        }
        for s in &want.services {
            if let Some(r) = m.engine.running_service(&s.name).await? {
                running.insert(s.name.clone(), r.hash);
            }
        }
    } else {
        preview.network = Some(want.network.clone());
    }
    preview.secrets = want
        .secrets
        .iter()
        .filter(|s| !held.contains_key(&s.name))
        .map(|s| s.name.clone())
        .collect();
    preview.configs = want
        .configs
        .iter()
        .filter(|c| !held.contains_key(&c.name))
        .map(|c| c.name.clone())
        .collect();
    for service in &want.services {
        let to = service.hash();
        let from = running.remove(&service.name);
        if from
            .as_ref()
            .is_some_and(|h| h.as_deref() == Some(to.as_str()))
        {
            continue;
        }
        preview.services.push(ServiceChange {
            name: service.name.clone(),
            from: from.map(|h| h.unwrap_or_else(|| "unlabelled".into())),
            to,
            tasks: tasks_text(service, stack),
        });
    }
    Ok(preview)
}

/// How many tasks `service` runs.
fn wanted_tasks(service: &ServiceDesign, stack: &Stack) -> usize {
    match service.mode {
        ServiceMode::Replicated(n) => n as usize,
        ServiceMode::Global => stack.hosts.iter().filter(|h| h.has(service.role())).count(),
    }
}

fn tasks_text(service: &ServiceDesign, stack: &Stack) -> String {
    let n = wanted_tasks(service, stack);
    let plural = if n == 1 { "" } else { "s" };
    match service.mode {
        ServiceMode::Replicated(_) => format!("{n} task{plural}"),
        ServiceMode::Global => format!("one task on each of {n} {} node{plural}", service.role()),
    }
}

/// Waits until `wanted` tasks of `service` run (healthy, where it has a health check).
async fn converge(
    engine: &Engine,
    service: &ServiceDesign,
    wanted: usize,
) -> Result<(), DeployError> {
    await_spec(engine, &service.name, &service.hash(), wanted).await
}

/// Waits until `wanted` tasks of the service `name` run the spec `hash` (healthy, where it has a health
/// check), as `up` waits: an update Swarm rolls back or pauses is an error naming the service.
pub async fn await_spec(
    engine: &Engine,
    name: &str,
    hash: &str,
    wanted: usize,
) -> Result<(), DeployError> {
    let started = Instant::now();
    loop {
        let live = engine.running_service(name).await?;
        let ours = live
            .as_ref()
            .is_some_and(|r| r.hash.as_deref() == Some(hash));
        let update = live.and_then(|r| r.update);
        let tasks = engine.service_tasks(name).await?;
        let current: Vec<_> = tasks.iter().filter(|t| t.desired == "running").collect();
        let running = current.iter().filter(|t| t.state == "running").count();
        // An update is done when the tasks meant to run all run this spec and no old one is still shutting
        // down.
        let tasks_done = running >= wanted
            && current.len() == running
            && current.iter().all(|t| t.spec_hash.as_deref() == Some(hash));
        match update_outcome(ours, update.as_ref().map(|(s, _)| s.as_str()), tasks_done) {
            Outcome::Done => return Ok(()),
            Outcome::Waiting => {}
            Outcome::RolledBack => {
                // Swarm's message says only that it rolled back; a failed task of this spec says why.
                let why = tasks
                    .iter()
                    .filter(|t| t.spec_hash.as_deref() == Some(hash))
                    .find_map(|t| t.error.clone())
                    .map(|e| format!("; a new task: {e}"))
                    .unwrap_or_default();
                return Err(DeployError::RolledBack {
                    service: name.to_owned(),
                    message: format!("{}{why}", update.map(|(_, m)| m).unwrap_or_default()),
                });
            }
            Outcome::Paused => {
                return Err(DeployError::Paused {
                    service: name.to_owned(),
                    message: update.map(|(_, m)| m).unwrap_or_default(),
                });
            }
        }
        if started.elapsed() > CONVERGE_LIMIT {
            let last = tasks
                .iter()
                .map(|t| t.state.clone())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(DeployError::NotConverged {
                service: name.to_owned(),
                running,
                wanted,
                secs: started.elapsed().as_secs(),
                last: format!("task states: {last}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Where a service's update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Waiting,
    /// Swarm rolled the update back (`failure_action: rollback`): the previous spec runs again.
    RolledBack,
    /// Swarm stopped the update (or its rollback) half way.
    Paused,
}

/// From whether the service still has the spec `up` gave it (a rollback puts the previous one back), its
/// update's state (`None` for a service just created) and whether its tasks all run that spec. A rollback in
/// progress is waited for, so that the error comes once the previous release serves again.
fn update_outcome(ours: bool, state: Option<&str>, tasks_done: bool) -> Outcome {
    match (ours, state) {
        (false, Some("rollback_completed")) => Outcome::RolledBack,
        (false, Some("rollback_paused")) | (true, Some("paused")) => Outcome::Paused,
        (false, _) | (true, Some("updating")) => Outcome::Waiting,
        (true, _) if tasks_done => Outcome::Done,
        (true, _) => Outcome::Waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::{Outcome, update_outcome};

    #[test]
    fn an_update_is_done_when_its_tasks_run_its_spec_and_a_rollback_is_an_error_once_complete() {
        assert_eq!(update_outcome(true, None, true), Outcome::Done);
        assert_eq!(update_outcome(true, None, false), Outcome::Waiting);
        assert_eq!(update_outcome(true, Some("completed"), true), Outcome::Done);
        assert_eq!(
            update_outcome(true, Some("completed"), false),
            Outcome::Waiting
        );
        // Mid-update every task may run (start-first: the new one up, the old one not yet stopped).
        assert_eq!(
            update_outcome(true, Some("updating"), true),
            Outcome::Waiting
        );
        // A rollback of an earlier `up` is history once this spec is in place.
        assert_eq!(
            update_outcome(true, Some("rollback_completed"), true),
            Outcome::Done
        );
        // Swarm put the previous spec back: waited for, then an error.
        assert_eq!(
            update_outcome(false, Some("rollback_started"), true),
            Outcome::Waiting
        );
        assert_eq!(
            update_outcome(false, Some("rollback_completed"), true),
            Outcome::RolledBack
        );
        assert_eq!(update_outcome(true, Some("paused"), false), Outcome::Paused);
        assert_eq!(
            update_outcome(false, Some("rollback_paused"), true),
            Outcome::Paused
        );
    }
}
