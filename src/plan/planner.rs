//! `plan(desired, facts)`: the pure decision of what to change, and why.

use std::collections::BTreeSet;

use super::Plan;
use super::desired::{ContainerSpec, Desired};
use super::facts::{Facts, ObservedContainer};
use super::step::{ImageRef, Step, short_id};

/// Decides the steps that take a host from `facts` to `desired`, in the order they must be applied.
///
/// Networks and volumes come first, then images, then files, then containers in dependency order
/// (each waits for health before the next), then reloads, and removals of leftovers last, so a
/// failure part-way leaves the previous containers serving.
pub fn plan(desired: &Desired, facts: &Facts) -> Plan {
    let mut steps = Vec::new();

    for name in &desired.networks {
        if !facts.networks.contains(name) {
            steps.push(Step::CreateNetwork { name: name.clone() });
        }
    }
    for name in &desired.volumes {
        if !facts.volumes.contains(name) {
            steps.push(Step::CreateVolume { name: name.clone() });
        }
    }

    let mut to_send = Vec::new();
    let mut seen = BTreeSet::new();
    for image in &desired.images {
        if facts.images.contains(&image.id) || !seen.insert(image.id.clone()) {
            continue;
        }
        let r = ImageRef {
            service: image.service.clone(),
            id: image.id.clone(),
            reference: image.reference.clone(),
        };
        if image.pulled {
            steps.push(Step::PullImage { image: r });
        } else {
            to_send.push(r);
        }
    }
    if !to_send.is_empty() {
        steps.push(Step::TransferImages { images: to_send });
    }

    let mut changed_files: BTreeSet<&str> = BTreeSet::new();
    for file in &desired.files {
        match facts.files.get(&file.path) {
            Some(hash) if *hash == file.hash => {}
            Some(_) => {
                changed_files.insert(file.path.as_str());
                steps.push(Step::WriteFile {
                    path: file.path.clone(),
                    reason: "content changed".into(),
                });
            }
            None => {
                changed_files.insert(file.path.as_str());
                steps.push(Step::WriteFile {
                    path: file.path.clone(),
                    reason: "missing on the host".into(),
                });
            }
        }
    }

    let mut replaced: BTreeSet<&str> = BTreeSet::new();
    for spec in &desired.containers {
        let observed = facts.containers.iter().find(|c| c.name == spec.name);
        match observed {
            None => {
                replaced.insert(spec.service.as_str());
                steps.push(Step::CreateContainer {
                    service: spec.service.clone(),
                    name: spec.name.clone(),
                    reason: "not on the host".into(),
                });
            }
            Some(c) if c.config_hash.as_deref() != Some(spec.config_hash().as_str()) => {
                replaced.insert(spec.service.as_str());
                steps.push(Step::RecreateContainer {
                    service: spec.service.clone(),
                    name: spec.name.clone(),
                    reason: what_changed(spec, c),
                });
            }
            Some(c) if !c.is_running() => {
                replaced.insert(spec.service.as_str());
                steps.push(Step::StartContainer {
                    service: spec.service.clone(),
                    name: spec.name.clone(),
                    reason: format!("it is {}", c.state),
                });
            }
            Some(_) => {}
        }
    }

    for spec in &desired.containers {
        if replaced.contains(spec.service.as_str()) {
            continue;
        }
        let mut why = Vec::new();
        let own_files: Vec<&super::desired::DesiredFile> = desired
            .files
            .iter()
            .filter(|f| f.reloads.as_deref() == Some(spec.service.as_str()))
            .collect();
        if own_files.is_empty() {
            continue;
        }
        if own_files
            .iter()
            .any(|f| changed_files.contains(f.path.as_str()))
        {
            why.push("its configuration changed".to_string());
        } else if facts.loaded.get(&spec.service) != Some(&loaded_hash(desired, &spec.service)) {
            why.push("the running process has not loaded the current configuration".to_string());
        }
        let upstreams: Vec<&str> = spec
            .depends_on
            .iter()
            .filter(|d| replaced.contains(d.as_str()))
            .map(String::as_str)
            .collect();
        if !upstreams.is_empty() {
            why.push(format!(
                "`{}` was replaced and must be resolved again",
                upstreams.join("`, `")
            ));
        }
        if !why.is_empty() {
            steps.push(Step::Reload {
                service: spec.service.clone(),
                name: spec.name.clone(),
                reason: why.join("; "),
            });
        }
    }

    let wanted: BTreeSet<&str> = desired.containers.iter().map(|c| c.name.as_str()).collect();
    for c in &facts.containers {
        if !wanted.contains(c.name.as_str()) {
            let reason = match &c.service {
                Some(s) if desired.containers.iter().any(|d| &d.service == s) => {
                    format!("a leftover of service `{s}` (an interrupted run)")
                }
                Some(s) => format!("service `{s}` is no longer in the stack"),
                None => "not part of the stack".into(),
            };
            steps.push(Step::RemoveContainer {
                name: c.name.clone(),
                reason,
            });
        }
    }

    Plan {
        stack: desired.stack.clone(),
        steps,
    }
}

/// The hash of all config files a service reloads, recorded after a successful reload.
pub fn loaded_hash(desired: &Desired, service: &str) -> String {
    let joined: Vec<&str> = desired
        .files
        .iter()
        .filter(|f| f.reloads.as_deref() == Some(service))
        .map(|f| f.hash.as_str())
        .collect();
    super::desired::short_hash(&joined.join(","))
}

/// Names what differs between a container and its spec, without showing any value.
fn what_changed(spec: &ContainerSpec, c: &ObservedContainer) -> String {
    if c.aspects.is_empty() {
        return "created by an older vldeploy (no recorded configuration)".into();
    }
    let want = spec.aspect_hashes();
    let mut parts = Vec::new();
    for (aspect, hash) in &want {
        if c.aspects.get(*aspect) == Some(hash) {
            continue;
        }
        match *aspect {
            "image" => parts.push(format!(
                "image {} → {}",
                short_id(c.aspects.get("image").map_or("", String::as_str)),
                short_id(&spec.image_id)
            )),
            "env" => {
                let now = spec.env_hashes();
                let mut vars: Vec<String> = Vec::new();
                for (k, h) in &now {
                    match c.env_hashes.get(k) {
                        None => vars.push(format!("+{k}")),
                        Some(old) if old != h => vars.push(format!("~{k}")),
                        Some(_) => {}
                    }
                }
                for k in c.env_hashes.keys() {
                    if !now.contains_key(k) {
                        vars.push(format!("-{k}"));
                    }
                }
                parts.push(format!("env {}", vars.join(" ")));
            }
            other => parts.push(format!("{other} changed")),
        }
    }
    if parts.is_empty() {
        "configuration changed".into()
    } else {
        parts.join(", ")
    }
}
