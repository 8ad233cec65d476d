//! A cluster's releases as Swarm keeps them — each service's spec and the one before it — and as the cluster's
//! audit log recorded them, and which one a rollback puts back, or why it cannot: pure decisions on what a
//! manager and the first host said.

use serde::Serialize;

use crate::state::AuditEntry;

/// One spec of a service: the `vldeploy.spec-hash` it carries and the image it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpecRelease {
    pub hash: Option<String>,
    pub image: String,
}

/// What a manager keeps of a service's releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceReleases {
    /// `backend`, `nginx` or `postgres`.
    pub service: String,
    /// The Swarm service: `<stack>_<service>`.
    pub name: String,
    pub current: SpecRelease,
    /// Swarm's `PreviousSpec`: the one spec it keeps to go back to. Swarm drops it when it rolls an update back
    /// by itself (`failure_action: rollback`); `docker service rollback` swaps the two.
    pub previous: Option<SpecRelease>,
    /// The last update's state (`completed`, `rollback_completed`, `updating` …) and Swarm's message.
    pub update: Option<(String, String)>,
    /// When the service last changed (RFC 3339, to the second).
    pub updated: Option<String>,
    /// The spec hash of each task running now.
    pub running: Vec<String>,
}

/// A release as `releases -e <cluster>` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseRow {
    /// `<service>-<spec hash>`.
    pub id: String,
    pub service: String,
    /// `current` or `previous`.
    pub spec: &'static str,
    pub image: String,
    /// How many running tasks run it.
    pub tasks: usize,
    /// What to know about it: the release Swarm rolled back to, an update under way.
    pub note: Option<String>,
}

/// Why `rollback` on a cluster does nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefusal {
    #[error(
        "`{0}` keeps no previous release: it has had one spec since it was created\n  help: `vldeploy releases -e <env>` lists what Swarm keeps; nothing was changed"
    )]
    NoPrevious(String),
    #[error(
        "`{0}` keeps no previous release: Swarm rolled its last update back (its new tasks did not become healthy) and keeps only the release that serves\n  help: fix stack.yaml and run `vldeploy up`; nothing was changed"
    )]
    RolledBack(String),
    #[error(
        "`{name}` is being updated now ({state}): wait for it to end (`vldeploy status -e <env>`), then roll back\n  help: nothing was changed"
    )]
    Busy { name: String, state: String },
    #[error(
        "no release `{wanted}` on the cluster: Swarm keeps each service's current release and the one before it, {kept}\n  help: `vldeploy releases -e <env>` lists them; nothing was changed"
    )]
    Unknown { wanted: String, kept: String },
    #[error("`{0}` matches several releases; give more of its hash")]
    Ambiguous(String),
    #[error("the swarm has no service `{0}`: run `vldeploy up` first")]
    NoService(String),
}

/// What `rollback` does to one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackStep {
    /// Update `name` to its previous spec, `to`, from `from`.
    Restore {
        service: String,
        name: String,
        to: String,
        from: String,
        image: String,
    },
    /// The release asked for runs already.
    AlreadyLive(String),
}

pub fn release_id(service: &str, spec: &SpecRelease) -> String {
    format!("{service}-{}", spec.hash.as_deref().unwrap_or("unlabelled"))
}

impl ServiceReleases {
    fn rolled_back(&self) -> bool {
        self.update
            .as_ref()
            .is_some_and(|(s, _)| s == "rollback_completed")
    }

    fn busy(&self) -> Option<&str> {
        self.update.as_ref().map(|(s, _)| s.as_str()).filter(|s| {
            matches!(
                *s,
                "updating" | "rollback_started" | "paused" | "rollback_paused"
            )
        })
    }

    fn count(&self, spec: &SpecRelease) -> usize {
        self.running
            .iter()
            .filter(|h| spec.hash.as_deref() == Some(h.as_str()))
            .count()
    }

    /// Its current release, then the previous one.
    pub fn rows(&self) -> Vec<ReleaseRow> {
        let mut rows = vec![ReleaseRow {
            id: release_id(&self.service, &self.current),
            service: self.service.clone(),
            spec: "current",
            image: self.current.image.clone(),
            tasks: self.count(&self.current),
            note: self.busy().map(|s| format!("update {s}")).or_else(|| {
                self.rolled_back()
                    .then(|| "Swarm rolled back to it".to_owned())
            }),
        }];
        if let Some(p) = &self.previous {
            rows.push(ReleaseRow {
                id: release_id(&self.service, p),
                service: self.service.clone(),
                spec: "previous",
                image: p.image.clone(),
                tasks: self.count(p),
                note: None,
            });
        }
        rows
    }
}

/// The step that puts `wanted` back (`<service>-<hash>`, a unique prefix of a hash, or `None`: the backend's
/// previous release) on the services a manager listed.
pub fn rollback_step(
    services: &[ServiceReleases],
    wanted: Option<&str>,
) -> Result<RollbackStep, RollbackRefusal> {
    let (service, spec_is_current) = match wanted {
        None => {
            let s = services
                .iter()
                .find(|s| s.service == "backend")
                .ok_or_else(|| RollbackRefusal::NoService("backend".to_owned()))?;
            (s, false)
        }
        Some(w) => {
            let mut found = Vec::new();
            for s in services {
                let candidates = std::iter::once((&s.current, true))
                    .chain(s.previous.iter().map(|p| (p, false)));
                for (spec, current) in candidates {
                    let id = release_id(&s.service, spec);
                    let hash = spec.hash.as_deref().unwrap_or("");
                    let matches = id == w
                        || (w.len() >= 4 && hash.starts_with(w))
                        || w.strip_prefix(&format!("{}-", s.service))
                            .is_some_and(|h| h.len() >= 4 && hash.starts_with(h));
                    if matches {
                        found.push((s, current));
                    }
                }
            }
            match found.as_slice() {
                [one] => *one,
                [] => {
                    let kept: Vec<String> = services
                        .iter()
                        .flat_map(|s| {
                            s.rows()
                                .into_iter()
                                .map(|r| format!("`{}` ({})", r.id, r.spec))
                        })
                        .collect();
                    return Err(RollbackRefusal::Unknown {
                        wanted: w.to_owned(),
                        kept: kept.join(", "),
                    });
                }
                _ => return Err(RollbackRefusal::Ambiguous(w.to_owned())),
            }
        }
    };
    if let Some(state) = service.busy() {
        return Err(RollbackRefusal::Busy {
            name: service.name.clone(),
            state: state.to_owned(),
        });
    }
    if spec_is_current {
        return Ok(RollbackStep::AlreadyLive(release_id(
            &service.service,
            &service.current,
        )));
    }
    let Some(previous) = &service.previous else {
        return Err(if service.rolled_back() {
            RollbackRefusal::RolledBack(service.name.clone())
        } else {
            RollbackRefusal::NoPrevious(service.name.clone())
        });
    };
    let to = release_id(&service.service, previous);
    Ok(RollbackStep::Restore {
        service: service.service.clone(),
        name: service.name.clone(),
        to,
        from: release_id(&service.service, &service.current),
        image: previous.image.clone(),
    })
}

/// A release of a service that an `up` or a `rollback` put in place, as the cluster's audit log recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRelease {
    /// `<service>-<spec hash>`.
    pub id: String,
    /// Seconds since the epoch.
    pub time: u64,
    pub actor: String,
    /// `up` or `rollback`.
    pub command: String,
    /// `ok`, or `failed` (Swarm rolled it back, or it did not converge in time).
    pub result: String,
}

/// The spec hash a change line of `up` (`service: update `NAME` (…, spec HASH)`) or of `rollback`
/// (`service: roll back `NAME` to `SERVICE-HASH`, from …`) put on the Swarm service `name`.
fn recorded_hash<'a>(change: &'a str, service: &str, name: &str) -> Option<&'a str> {
    let rest = change.strip_prefix("service: ")?;
    let quoted = format!("`{name}` ");
    if let Some(after) = rest
        .strip_prefix("update ")
        .or_else(|| rest.strip_prefix("create "))
        .and_then(|r| r.strip_prefix(quoted.as_str()))
    {
        return after.rsplit_once("spec ")?.1.strip_suffix(')');
    }
    let after = rest
        .strip_prefix("roll back ")?
        .strip_prefix(quoted.as_str())?
        .strip_prefix("to `")?;
    after
        .split_once('`')?
        .0
        .strip_prefix(service)?
        .strip_prefix('-')
}

/// The releases of `service` (the Swarm service `name`) the audit `entries` recorded, newest first.
pub fn recorded_releases(
    entries: &[AuditEntry],
    service: &str,
    name: &str,
) -> Vec<RecordedRelease> {
    let mut rows: Vec<RecordedRelease> = entries
        .iter()
        .filter(|e| matches!(e.command.as_str(), "up" | "rollback"))
        .flat_map(|e| {
            e.changes
                .iter()
                .filter_map(|c| recorded_hash(c, service, name))
                .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric()))
                .map(|h| RecordedRelease {
                    id: format!("{service}-{h}"),
                    time: e.time,
                    actor: e.actor.clone(),
                    command: e.command.clone(),
                    result: e.result.clone(),
                })
        })
        .collect();
    rows.reverse();
    rows
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(hash: &str) -> SpecRelease {
        SpecRelease {
            hash: Some(hash.to_owned()),
            image: format!("vl/backend:{hash}"),
        }
    }

    fn backend(previous: Option<&str>, update: Option<&str>) -> ServiceReleases {
        ServiceReleases {
            service: "backend".into(),
            name: "shop_backend".into(),
            current: spec("aaaa1111"),
            previous: previous.map(spec),
            update: update.map(|s| (s.to_owned(), String::new())),
            updated: None,
            running: vec!["aaaa1111".into(), "aaaa1111".into()],
        }
    }

    #[test]
    fn rows_list_the_current_release_then_the_previous_with_the_tasks_that_run_each() {
        let rows = backend(Some("bbbb2222"), Some("completed")).rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, "backend-aaaa1111");
        assert_eq!((rows[0].spec, rows[0].tasks), ("current", 2));
        assert_eq!((rows[1].spec, rows[1].tasks), ("previous", 0));
        assert_eq!((rows[0].note.as_ref(), rows[1].note.as_ref()), (None, None));
        // Swarm rolled an update back by itself: it keeps the release that serves alone.
        let rows = backend(None, Some("rollback_completed")).rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].note.as_deref(), Some("Swarm rolled back to it"));
        let rows = backend(Some("bbbb2222"), Some("updating")).rows();
        assert_eq!(rows[0].note.as_deref(), Some("update updating"));
        assert_eq!(backend(None, None).rows().len(), 1);
    }

    #[test]
    fn without_a_release_the_backend_goes_back_to_its_previous_spec() {
        let step = rollback_step(&[backend(Some("bbbb2222"), Some("completed"))], None).unwrap();
        assert_eq!(
            step,
            RollbackStep::Restore {
                service: "backend".into(),
                name: "shop_backend".into(),
                to: "backend-bbbb2222".into(),
                from: "backend-aaaa1111".into(),
                image: "vl/backend:bbbb2222".into(),
            }
        );
        // A release named by its id, its hash or a prefix of it.
        for w in ["backend-bbbb2222", "bbbb", "backend-bbbb"] {
            assert!(matches!(
                rollback_step(&[backend(Some("bbbb2222"), None)], Some(w)),
                Ok(RollbackStep::Restore { .. })
            ));
        }
        assert_eq!(
            rollback_step(&[backend(Some("bbbb2222"), None)], Some("aaaa1111")),
            Ok(RollbackStep::AlreadyLive("backend-aaaa1111".into()))
        );
    }

    #[test]
    fn what_cannot_be_rolled_back_to_is_refused_with_why() {
        assert_eq!(
            rollback_step(&[backend(None, None)], None),
            Err(RollbackRefusal::NoPrevious("shop_backend".into()))
        );
        assert_eq!(
            rollback_step(&[backend(None, Some("rollback_completed"))], None),
            Err(RollbackRefusal::RolledBack("shop_backend".into()))
        );
        // After `docker service rollback` the previous release is the one rolled back from: it may go back.
        assert!(matches!(
            rollback_step(
                &[backend(Some("bbbb2222"), Some("rollback_completed"))],
                None
            ),
            Ok(RollbackStep::Restore { .. })
        ));
        assert!(matches!(
            rollback_step(&[backend(Some("bbbb2222"), Some("updating"))], None),
            Err(RollbackRefusal::Busy { .. })
        ));
        let e = rollback_step(&[backend(Some("bbbb2222"), None)], Some("cccc")).unwrap_err();
        assert!(
            e.to_string()
                .contains("`backend-aaaa1111` (current), `backend-bbbb2222` (previous)"),
            "{e}"
        );
        // Too short to name one release.
        assert!(matches!(
            rollback_step(&[backend(Some("bbbb2222"), None)], Some("b")),
            Err(RollbackRefusal::Unknown { .. })
        ));
        assert_eq!(
            rollback_step(&[], None),
            Err(RollbackRefusal::NoService("backend".into()))
        );
    }

    fn entry(command: &str, result: &str, time: u64, changes: &[&str]) -> AuditEntry {
        AuditEntry {
            time,
            actor: "ops@laptop".into(),
            command: command.into(),
            environment: "cluster".into(),
            changes: changes.iter().map(|&c| c.to_owned()).collect(),
            result: result.into(),
            error: None,
            waived: Vec::new(),
            note: None,
        }
    }

    #[test]
    fn recorded_releases_are_the_backend_specs_each_up_and_rollback_put_in_place_newest_first() {
        let entries = [
            entry(
                "up",
                "ok",
                1,
                &[
                    "network: create `shop_net`",
                    "service: create `shop_postgres` (1 task, spec p0)",
                    "service: create `shop_backend` (2 tasks, spec aaaa1111)",
                ],
            ),
            entry(
                "up",
                "failed",
                2,
                &["service: update `shop_backend` (2 tasks, spec bbbb2222)"],
            ),
            entry(
                "lock",
                "ok",
                3,
                &["service: update `shop_backend` (2 tasks, spec zzzz)"],
            ),
            entry(
                "rollback",
                "ok",
                4,
                &[
                    "service: roll back `shop_backend` to `backend-aaaa1111`, from `backend-cccc3333`",
                ],
            ),
            entry(
                "up",
                "ok",
                5,
                &["service: update `shop_backendx` (2 tasks, spec dddd)"],
            ),
        ];
        let rows = recorded_releases(&entries, "backend", "shop_backend");
        let seen: Vec<(&str, u64, &str, &str)> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.time, r.command.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("backend-aaaa1111", 4, "rollback", "ok"),
                ("backend-bbbb2222", 2, "up", "failed"),
                ("backend-aaaa1111", 1, "up", "ok"),
            ]
        );
        assert!(recorded_releases(&[], "backend", "shop_backend").is_empty());
    }
}
