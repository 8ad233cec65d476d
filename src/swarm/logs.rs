//! The logs of a stack's tasks across its swarm: which tasks to read (and which nodes to skip), each line's
//! `<service>.<slot>@<hostname>` prefix, and the lines of all tasks merged in time order. Pure.

use super::snapshot::Snapshot;

/// A task whose log is read through the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    pub task_id: String,
    /// `backend.1@node-a`; a global task's slot is its node's hostname: `nginx.node-a@node-a`.
    pub prefix: String,
    pub node: String,
}

/// The tasks of `services` meant to run, on nodes that answer; and one warning for each node that does not,
/// naming it and the tasks skipped.
pub fn log_sources(snapshot: &Snapshot, services: &[&str]) -> (Vec<LogSource>, Vec<String>) {
    let mut sources = Vec::new();
    let mut skipped: std::collections::BTreeMap<String, (String, Vec<String>)> =
        std::collections::BTreeMap::new();
    for view in snapshot
        .services
        .iter()
        .filter(|v| services.contains(&v.service.as_str()))
    {
        for t in snapshot
            .tasks
            .iter()
            .filter(|t| t.service_id == view.id && t.is_current())
        {
            let host = snapshot.node_name(&t.node_id);
            let slot = t.slot.map_or_else(|| host.clone(), |s| s.to_string());
            let prefix = format!("{}.{slot}@{host}", view.service);
            let node = snapshot.nodes.iter().find(|n| n.id == t.node_id);
            match node {
                Some(n) if n.is_ready() => sources.push(LogSource {
                    task_id: t.id.clone(),
                    prefix,
                    node: host,
                }),
                _ => {
                    let state = node.map_or("gone", |n| n.state.as_str()).to_owned();
                    skipped
                        .entry(host)
                        .or_insert((state, Vec::new()))
                        .1
                        .push(prefix);
                }
            }
        }
    }
    sources.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    let warnings = skipped
        .into_iter()
        .map(|(host, (state, tasks))| {
            format!(
                "node `{host}` is {state}: the logs of {} are skipped",
                tasks.join(", ")
            )
        })
        .collect();
    (sources, warnings)
}

/// A moment as the engine stamps a log line (`2026-12-03T01:02:03.5Z`): seconds and nanoseconds, comparable.
pub(super) type Stamp = (u64, u32);

/// The stamp at the start of a line the engine wrote with `timestamps`, and the rest of it.
pub(super) fn split_stamp(line: &str) -> Option<(Stamp, &str)> {
    let (stamp, rest) = line.split_once(' ')?;
    let body = stamp.strip_suffix('Z')?;
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let secs = humantime::parse_rfc3339_weak(whole)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    Some(((secs, nanos), rest))
}

/// One line of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub at: Stamp,
    pub prefix: String,
    pub text: String,
}

impl LogLine {
    pub fn render(&self) -> String {
        format!("{} | {}", self.prefix, self.text)
    }
}

/// The lines of one task's log text (each stamped), under its prefix; a line without a stamp keeps the one
/// before it.
pub fn task_lines(prefix: &str, text: &str) -> Vec<LogLine> {
    let mut at = (0, 0);
    text.lines()
        .map(|l| {
            let body = match split_stamp(l) {
                Some((stamp, rest)) => {
                    at = stamp;
                    rest
                }
                None => l,
            };
            LogLine {
                at,
                prefix: prefix.to_owned(),
                text: body.to_owned(),
            }
        })
        .collect()
}

/// Every task's lines in time order (a task's own order kept for lines of the same moment).
pub fn merge(mut lines: Vec<LogLine>) -> Vec<LogLine> {
    lines.sort_by_key(|l| l.at);
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::swarm::{NodeView, ServiceMode, ServiceView, TaskView};

    fn node(id: &str, state: &str) -> NodeView {
        NodeView {
            id: id.into(),
            hostname: format!("host-{id}"),
            address: String::new(),
            roles: Vec::new(),
            availability: "active".into(),
            state: state.into(),
            manager: None,
        }
    }

    fn task(id: &str, service: &str, node: &str, slot: Option<u64>, desired: &str) -> TaskView {
        TaskView {
            id: id.into(),
            service_id: service.into(),
            node_id: node.into(),
            slot,
            state: "running".into(),
            desired: desired.into(),
            error: None,
            image: String::new(),
            since_s: None,
        }
    }

    #[test]
    fn tasks_on_a_node_that_is_down_are_skipped_with_a_warning_naming_it() {
        let snapshot = Snapshot {
            nodes: vec![node("a", "ready"), node("b", "down")],
            services: vec![
                ServiceView {
                    id: "s1".into(),
                    name: "shop_backend".into(),
                    service: "backend".into(),
                    mode: ServiceMode::Replicated(2),
                },
                ServiceView {
                    id: "s2".into(),
                    name: "shop_nginx".into(),
                    service: "nginx".into(),
                    mode: ServiceMode::Global,
                },
            ],
            tasks: vec![
                task("t1", "s1", "a", Some(1), "running"),
                task("t2", "s1", "b", Some(2), "running"),
                task("t0", "s1", "a", Some(2), "shutdown"),
                task("t3", "s2", "a", None, "running"),
            ],
        };
        let (sources, warnings) = log_sources(&snapshot, &["backend", "nginx"]);
        let prefixes: Vec<&str> = sources.iter().map(|s| s.prefix.as_str()).collect();
        assert_eq!(prefixes, ["backend.1@host-a", "nginx.host-a@host-a"]);
        assert_eq!(
            warnings,
            ["node `host-b` is down: the logs of backend.2@host-b are skipped"]
        );
        let (sources, _) = log_sources(&snapshot, &["nginx"]);
        assert_eq!(sources.len(), 1);
    }

    #[test]
    fn lines_of_several_tasks_merge_by_their_stamps_whatever_their_precision() {
        assert_eq!(
            split_stamp("1970-01-01T00:01:40.5Z hello world"),
            Some(((100, 500_000_000), "hello world"))
        );
        assert_eq!(split_stamp("1970-01-01T00:01:40Z x"), Some(((100, 0), "x")));
        assert_eq!(split_stamp("no stamp here"), None);
        let a = task_lines(
            "backend.1@a",
            "1970-01-01T00:01:40.1Z first\n1970-01-01T00:01:41Z third\ncontinued",
        );
        let b = task_lines("backend.2@b", "1970-01-01T00:01:40.12Z second\n");
        let merged: Vec<String> = merge([a, b].concat()).iter().map(LogLine::render).collect();
        assert_eq!(
            merged,
            [
                "backend.1@a | first",
                "backend.2@b | second",
                "backend.1@a | third",
                "backend.1@a | continued",
            ]
        );
    }
}
