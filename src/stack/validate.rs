//! Checks across services: the three required names, and `depends_on` without cycles.

use std::collections::BTreeMap;

use super::document::{Entry, Node};
use super::error::StackError;
use super::keys;
use super::reader::{Map, Reader, place};
use super::service::Read;
use super::suggest;

/// A key of `services` or `overrides` must name one of the three services.
pub(crate) fn service_name(r: &Reader<'_>, entry: &Entry) -> Result<(), StackError> {
    if keys::SERVICE_NAMES.contains(&entry.key.as_str()) {
        return Ok(());
    }
    let help = match suggest::did_you_mean(&entry.key, keys::SERVICE_NAMES.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "a stack runs exactly {}",
            suggest::list(keys::SERVICE_NAMES.iter().copied())
        ),
    };
    Err(r.error(
        entry.key_span,
        format!(
            "unknown service `{}` in {}",
            entry.key,
            place(&entry.parent)
        ),
        help,
    ))
}

/// All three services must be defined.
pub(crate) fn all_services(
    r: &Reader<'_>,
    services: &Node,
    entries: &[Entry],
) -> Result<(), StackError> {
    for name in keys::SERVICE_NAMES {
        if !entries.iter().any(|e| e.key == *name) {
            return Err(r.error_at(
                services,
                format!("missing service `{name}` in {}", place(&services.path)),
                format!(
                    "a stack runs exactly {}: add `{name}:` under `services`",
                    suggest::list(keys::SERVICE_NAMES.iter().copied())
                ),
            ));
        }
    }
    Ok(())
}

/// `depends_on` must not loop back.
pub(crate) fn no_cycles(r: &Reader<'_>, reads: &BTreeMap<String, Read>) -> Result<(), StackError> {
    fn visit<'a>(
        name: &'a str,
        reads: &'a BTreeMap<String, Read>,
        stack: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Option<(Vec<&'a str>, &'a Node)> {
        if done.contains(&name) {
            return None;
        }
        stack.push(name);
        if let Some(read) = reads.get(name) {
            for (dep, node) in &read.depends_on {
                if let Some(pos) = stack.iter().position(|s| *s == dep.as_str()) {
                    let mut cycle = stack[pos..].to_vec();
                    cycle.push(dep);
                    return Some((cycle, node));
                }
                if let Some(found) = visit(dep, reads, stack, done) {
                    return Some(found);
                }
            }
        }
        stack.pop();
        done.push(name);
        None
    }
    let mut done = Vec::new();
    for name in reads.keys() {
        let mut stack = Vec::new();
        if let Some((cycle, node)) = visit(name, reads, &mut stack, &mut done) {
            let cycle: Vec<String> = cycle.iter().map(|s| format!("`{s}`")).collect();
            return Err(r.error_at(
                node,
                format!(
                    "dependency cycle {} at {}",
                    cycle.join(" -> "),
                    place(&node.path)
                ),
                "services start in `depends_on` order, so a cycle can never start: remove one of these dependencies",
            ));
        }
    }
    Ok(())
}

/// `replicas` needs hosts by role: on one `host:` the backend runs as one container, switched blue/green.
pub(crate) fn replicas_on_one_host(
    r: &Reader<'_>,
    env: Map<'_>,
    services: &[Entry],
    overrides: &[Entry],
) -> Result<(), StackError> {
    let written = overrides
        .iter()
        .chain(services)
        .filter_map(|e| e.value.as_map())
        .flatten()
        .find(|e| e.key == "replicas");
    let Some(entry) = written else {
        return Ok(());
    };
    Err(r.error(
        entry.key_span,
        format!(
            "{} sets `replicas`, but {} runs on one host",
            place(&entry.parent),
            place(&env.node.path)
        ),
        "on one `host:` the backend runs as one container; set `replicas` in the `overrides` of an environment with `hosts:`",
    ))
}
