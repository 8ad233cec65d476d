//! A container step's container created ahead of its start, while the containers it waits for are starting.

use super::{Host, prepare_mount_dirs, spec_for};
use crate::plan::{Desired, Plan, Step};

/// What a container step made ahead: created (with its mount directories), not started, outside the stable name.
#[derive(Debug)]
pub(super) enum Made {
    /// A first launch's container (`create container`), under the service's own name.
    Container(String),
    /// A release's container ([`crate::rollout::create_ahead`]).
    Release(crate::rollout::Created),
}

/// Whether step `i` may create its container ahead now: it is a container step still waiting for containers
/// (the steps of services it waits for), and every other step it waits for (networks, volumes, images, files)
/// has ended well.
pub(super) fn ready(plan: &Plan, waits: &[usize], ended_well: &[bool], i: usize) -> bool {
    matches!(
        plan.steps[i],
        Step::CreateContainer { .. } | Step::Release { .. }
    ) && waits.iter().any(|&j| !ended_well[j])
        && waits
            .iter()
            .filter(|&&j| plan.steps[j].service().is_none())
            .all(|&j| ended_well[j])
}

/// Creates step's container ahead. `None` when there is nothing to create ahead or it failed: the step then
/// does all its work when it starts, and reports its own failure there.
pub(super) async fn create(host: &Host<'_>, step: &Step, desired: &Desired) -> Option<Made> {
    let made = async {
        match step {
            Step::CreateContainer { service, .. } => {
                let spec = spec_for(desired, service)?;
                prepare_mount_dirs(host, spec).await?;
                host.engine
                    .create_container(desired.stack.as_str(), spec)
                    .await?;
                Ok::<_, super::StepError>(Some(Made::Container(spec.name.clone())))
            }
            Step::Release { service, .. } => {
                let spec = spec_for(desired, service)?;
                prepare_mount_dirs(host, spec).await?;
                let created =
                    crate::rollout::create_ahead(&target(host, desired), spec, host.stage_release)
                        .await?;
                Ok(created.map(Made::Release))
            }
            _ => Ok(None),
        }
    }
    .await;
    match made {
        Ok(made) => made,
        Err(e) => {
            tracing::debug!(error = %e, "creating `{}` ahead failed; it is created when the step starts", step.summary());
            if let Step::CreateContainer { service, .. } = step
                && let Ok(spec) = spec_for(desired, service)
            {
                let _ = host.engine.remove(&spec.name).await;
            }
            None
        }
    }
}

/// Removes what was made ahead for a step that did not start (a step it waited for failed): the host is left as
/// it was before the run, for these containers.
pub(super) async fn discard(host: &Host<'_>, desired: &Desired, made: &Made) {
    let result = match made {
        Made::Container(name) => host.engine.remove(name).await.map_err(|e| e.to_string()),
        Made::Release(created) => crate::rollout::discard_ahead(&target(host, desired), created)
            .await
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "removing a container created ahead failed");
    }
}

fn target<'a>(host: &'a Host<'_>, desired: &'a Desired) -> crate::rollout::Target<'a> {
    crate::rollout::Target {
        remote: host.remote,
        engine: host.engine,
        stack: desired.stack.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::ready;
    use crate::plan::{Plan, Step};

    fn plan() -> Plan {
        let container = |service: &str| Step::CreateContainer {
            service: service.into(),
            name: format!("vl_{service}"),
            reason: String::new(),
        };
        Plan {
            stack: "shop".into(),
            steps: vec![
                Step::CreateNetwork {
                    name: "shop_private".into(),
                },
                container("postgres"),
                Step::Release {
                    service: "backend".into(),
                    name: "vl_backend".into(),
                    reason: String::new(),
                },
            ],
        }
    }

    #[test]
    fn a_release_waiting_for_postgres_is_created_ahead_once_its_preparation_ended() {
        let plan = plan();
        let waits = [0, 1];
        // The network still being created: nothing ahead yet.
        assert!(!ready(&plan, &waits, &[false, false, false], 2));
        // The network made, postgres starting: the backend's container is created ahead.
        assert!(ready(&plan, &waits, &[true, false, false], 2));
        // Postgres healthy too: the step itself starts, nothing is made ahead.
        assert!(!ready(&plan, &waits, &[true, true, false], 2));
    }

    #[test]
    fn steps_other_than_a_container_creation_or_release_are_never_made_ahead() {
        let plan = plan();
        assert!(!ready(&plan, &[0], &[true, false, false], 0));
        // postgres waits for the network only: it starts once that ends, nothing ahead.
        assert!(!ready(&plan, &[0], &[false, false, false], 1));
    }
}
