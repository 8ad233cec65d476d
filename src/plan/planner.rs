//! `plan(desired, facts)`: the pure decision of what to change, and why.

use std::collections::BTreeSet;

use super::Plan;
use super::desired::{ContainerSpec, Desired, DesiredCertificate, EnvEntry, HashKey};
use super::facts::{Facts, ObservedCertificate, ObservedContainer, RulesetFacts};
use super::step::{ImageRef, Step};
use crate::layout::{container_name, serving_network, short_id};

/// Decides the steps that take a host from `facts` to `desired`, in the order they must be applied.
///
/// Networks and volumes come first, then images, then files, then containers in dependency order
/// (each starts once those it depends on are healthy), then reloads, and removals of leftovers last, so a
/// failure part-way leaves the previous containers serving. A service with a release alias (the
/// backend) is released blue/green: its candidate runs beside the live one until it is healthy.
/// The certificate and the firewall come last, as `up` carries them out once the containers serve.
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

    let container_steps: Vec<Step> = desired
        .containers
        .iter()
        .filter_map(|spec| container_step(spec, facts, &desired.stack))
        .collect();
    let replaced: BTreeSet<String> = container_steps
        .iter()
        .filter_map(Step::service)
        .map(str::to_string)
        .collect();
    let mut changed_files: BTreeSet<&str> = BTreeSet::new();
    for file in &desired.files {
        let reason = match facts.files.get(&file.path) {
            Some(hash) if *hash == file.hash => continue,
            Some(_) => "content changed",
            None => "missing on the host",
        };
        changed_files.insert(file.path.as_str());
        steps.push(Step::WriteFile {
            path: file.path.clone(),
            reason: reason.into(),
        });
    }

    if let Some(site) = &desired.site
        && facts.site.as_deref() != Some(site.hash.as_str())
    {
        steps.push(Step::Site {
            hash: site.hash.clone(),
            reason: match &facts.site {
                None => "no storefront on the host".into(),
                Some(live) => format!("the host serves {live}"),
            },
        });
    }

    steps.extend(container_steps);

    for spec in &desired.containers {
        if replaced.contains(spec.service.as_str()) {
            continue;
        }
        let own_files: Vec<&super::desired::DesiredFile> = desired
            .files
            .iter()
            .filter(|f| f.reloads.as_deref() == Some(spec.service.as_str()))
            .collect();
        if own_files.is_empty() {
            continue;
        }
        let reason = if own_files
            .iter()
            .any(|f| changed_files.contains(f.path.as_str()))
        {
            "its configuration changed"
        } else if facts.loaded.get(&spec.service) != Some(&loaded_hash(desired, &spec.service)) {
            "the running process has not loaded the current configuration"
        } else {
            continue;
        };
        steps.push(Step::Reload {
            service: spec.service.clone(),
            name: spec.name.clone(),
            reason: reason.into(),
        });
    }

    steps.extend(release_records(desired, facts, &replaced));

    let wanted: BTreeSet<&str> = desired.containers.iter().map(|c| c.name.as_str()).collect();
    // A release replaces the service's candidate itself (a gated first launch keeps one on purpose).
    let released: BTreeSet<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Release { service, .. } => Some(format!("{}_candidate", container_name(service))),
            _ => None,
        })
        .collect();
    for c in &facts.containers {
        if !wanted.contains(c.name.as_str()) && !released.contains(&c.name) {
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

    steps.extend(host_steps(desired, facts));

    Plan {
        stack: desired.stack.clone(),
        steps,
    }
}

/// A release that serves but is not the newest in the host's history (an interrupted run, a history edited
/// or lost) is recorded; a release being made records itself.
fn release_records(desired: &Desired, facts: &Facts, replaced: &BTreeSet<String>) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(recorded) = &facts.releases {
        for spec in &desired.containers {
            let Some(id) = &spec.release_alias else {
                continue;
            };
            if replaced.contains(spec.service.as_str()) {
                continue;
            }
            let reason = match recorded.get(&spec.service) {
                Some(last) if last == id => continue,
                Some(last) => format!("it serves, but the history ends at `{last}`"),
                None => "it serves, but the history has no release of it".to_string(),
            };
            steps.push(Step::RecordRelease {
                service: spec.service.clone(),
                id: id.clone(),
                reason,
            });
        }
    }
    steps
}

/// The certificate and the firewall ruleset, which `up` carries out with flows of its own.
fn host_steps(desired: &Desired, facts: &Facts) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(wanted) = &desired.certificate
        && let Some(reason) = certificate_reason(wanted, facts.certificate.as_ref(), facts.now)
    {
        steps.push(Step::Certificate {
            domains: wanted.domains.clone(),
            provided: wanted.provided.is_some(),
            reason,
        });
    }
    if let Some(hash) = &desired.firewall {
        let seen = facts.firewall.clone().unwrap_or_default();
        if let Some((apply, reason)) = ruleset_change(hash, &seen) {
            steps.push(Step::Firewall {
                hash: hash.clone(),
                apply,
                reason,
            });
        }
    }
    steps
}

/// Why the installed certificate does not do, if it does not.
fn certificate_reason(
    wanted: &DesiredCertificate,
    seen: Option<&ObservedCertificate>,
    now: u64,
) -> Option<String> {
    let Some(c) = seen else {
        return Some("no certificate is installed".into());
    };
    let mut names = c.sans.clone();
    let mut want = wanted.domains.clone();
    names.sort();
    want.sort();
    if let Some(fingerprint) = &wanted.provided {
        return (*fingerprint != c.fingerprint).then(|| {
            format!(
                "the host serves certificate {}, not the provided one",
                c.serial
            )
        });
    }
    if c.placeholder {
        return Some("only the placeholder is installed".into());
    }
    if names != want {
        return Some(format!(
            "the certificate names {} but the stack serves {}",
            c.sans.join(", "),
            wanted.domains.join(", ")
        ));
    }
    if now >= c.not_after {
        return Some(format!(
            "it expired {}",
            crate::timestamp::date(c.not_after)
        ));
    }
    (now >= c.renew_at).then(|| {
        format!(
            "it expires {} and is due for renewal since {}",
            crate::timestamp::date(c.not_after),
            crate::timestamp::date(c.renew_at)
        )
    })
}

/// What bringing vldeploy's nftables table to the ruleset `wanted` takes: `(true, why)` to apply it (safely),
/// `(false, why)` to install it for boot only, `None` when the host has it. The firewall's own flow decides
/// with this same function, so `plan` and `up` agree.
pub fn ruleset_change(wanted: &str, seen: &RulesetFacts) -> Option<(bool, String)> {
    let apply = |why: &str| Some((true, why.to_owned()));
    match &seen.live_hash {
        _ if !seen.loaded => return apply("no vldeploy firewall on the host"),
        Some(live) if live != wanted => return Some((true, format!("loaded {live}"))),
        None => return apply("the loaded table was changed by hand"),
        _ if seen.edited => return apply("the loaded table was changed by hand"),
        Some(_) => {}
    }
    if seen.file_hash.as_deref() != Some(wanted) {
        return Some((
            false,
            match &seen.file_hash {
                None => "no ruleset file for boot".to_owned(),
                Some(h) => format!("the file for boot has {h}"),
            },
        ));
    }
    seen.boot_disabled
        .then(|| (false, "the boot unit is not enabled".to_owned()))
}

/// What a container needs, if anything.
fn container_step(spec: &ContainerSpec, facts: &Facts, stack: &str) -> Option<Step> {
    let observed = facts.containers.iter().find(|c| c.name == spec.name);
    let (kind, reason) = match observed {
        None => (Kind::Create, "not on the host".to_string()),
        Some(c) if c.config_hash.as_deref() != Some(spec.config_hash().as_str()) => {
            (Kind::Recreate, what_changed(spec, c))
        }
        Some(c) if !c.is_running() => (Kind::Start, format!("it is {}", c.state)),
        // A release outside the stable name serves nothing (a host set up by an older vldeploy, or a run
        // stopped before the switch): its release puts it in service.
        Some(c)
            if spec.release_alias.is_some() && !c.networks.contains(&serving_network(stack)) =>
        {
            (
                Kind::Start,
                "it is not in service: nginx does not reach it".to_string(),
            )
        }
        Some(_) => return None,
    };
    let (service, name) = (spec.service.clone(), spec.name.clone());
    Some(match kind {
        _ if spec.release_alias.is_some() => Step::Release {
            service,
            name,
            reason,
        },
        Kind::Create => Step::CreateContainer {
            service,
            name,
            reason,
        },
        Kind::Recreate => Step::RecreateContainer {
            service,
            name,
            reason,
        },
        Kind::Start => Step::StartContainer {
            service,
            name,
            reason,
        },
    })
}

enum Kind {
    Create,
    Recreate,
    Start,
}

/// The hash of all config files a service reloads, recorded after a successful reload.
pub fn loaded_hash(desired: &Desired, service: &str) -> String {
    let joined: Vec<&str> = desired
        .files
        .iter()
        .filter(|f| f.reloads.as_deref() == Some(service))
        .map(|f| f.hash.as_str())
        .collect();
    crate::layout::short_hash(&joined.join(","))
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
                // Secrets hashed under another key (or, by an older vldeploy, under none) cannot be compared.
                let rekeyed = spec.has_secrets()
                    && c.hash_key.as_deref() != spec.hash_key.as_ref().map(HashKey::id).as_deref();
                let secret = |k: &str| matches!(spec.env.get(k), Some(EnvEntry::Secret(_)));
                let mut vars: Vec<String> = Vec::new();
                for (k, h) in &now {
                    match c.env_hashes.get(k) {
                        None => vars.push(format!("+{k}")),
                        Some(old) if old != h && !(rekeyed && secret(k)) => {
                            vars.push(format!("~{k}"));
                        }
                        Some(_) => {}
                    }
                }
                for k in c.env_hashes.keys() {
                    if !now.contains_key(k) {
                        vars.push(format!("-{k}"));
                    }
                }
                if !vars.is_empty() {
                    parts.push(format!("env {}", vars.join(" ")));
                }
                if rekeyed {
                    parts.push("secrets hashed with the host's key".into());
                }
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
