//! The pure planner: desired state and host facts in, a `Plan` of steps out; and its printers.

mod desired;
mod facts;
mod layout;
mod planner;
mod step;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use serde::Serialize;

pub use desired::{
    ContainerSpec, Desired, DesiredCertificate, DesiredFile, DesiredImage, DesiredSite, EnvEntry,
    HashKey, Health, Mount, MountSource, Publish, content_hash,
};
pub use facts::{Facts, ObservedCertificate, ObservedContainer, RulesetFacts};
pub use layout::{
    Images, describe_probe, desired_from_stack, health_test, release_alias, upstream_file,
    upstream_path,
};
pub use planner::{loaded_hash, plan, ruleset_change};
pub use step::{ImageRef, Step};

/// The ordered changes that converge a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub stack: String,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// For each step, the earlier steps that must have ended well before it starts; every other step runs
    /// beside it. A preparation step ([`Step::is_preparation`]) waits for the steps before it that are not
    /// preparations; a container step for every step before it but the container steps of services it does
    /// not wait for ([`Desired::waits_for`]), so unrelated containers (nginx beside postgres and the backend)
    /// start at once and a dependent one only once its dependency is healthy; every other step (reloads,
    /// removals, records) for every step before it.
    pub fn prerequisites(&self, desired: &Desired) -> Vec<Vec<usize>> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let before = self.steps[..i].iter().enumerate();
                if step.is_preparation() {
                    before
                        .filter(|(_, b)| !b.is_preparation())
                        .map(|(j, _)| j)
                        .collect()
                } else if let Some(service) = step.service() {
                    let needs = desired.waits_for(service);
                    before
                        .filter(|(_, b)| b.service().is_none_or(|s| needs.contains(&s)))
                        .map(|(j, _)| j)
                        .collect()
                } else {
                    (0..i).collect()
                }
            })
            .collect()
    }

    /// The steps `apply` walks: all but those `up` carries out with flows of their own (see
    /// [`Step::is_host_flow`]).
    #[must_use]
    pub fn for_apply(&self) -> Plan {
        Plan {
            stack: self.stack.clone(),
            steps: self
                .steps
                .iter()
                .filter(|s| !s.is_host_flow())
                .cloned()
                .collect(),
        }
    }

    /// The plan as a readable diff, one line per step with its reason. Holds no secret: steps carry none.
    pub fn render_human(&self, target: &str) -> String {
        let mut out = String::new();
        if self.steps.is_empty() {
            let _ = writeln!(out, "{target}: no changes; the host matches the stack.");
            return out;
        }
        let n = self.steps.len();
        let _ = writeln!(out, "{target}: {n} change{}", if n == 1 { "" } else { "s" });
        let lines: Vec<_> = self
            .steps
            .iter()
            .map(|s| (s.sign(), s.summary(), s.reason()))
            .collect();
        step_lines(&mut out, &lines);
        out
    }

    /// The plan for machines: `{"stack", "target", "changes", "steps": [{action, summary, reason, …}]}`.
    pub fn render_json(&self, target: &str) -> serde_json::Value {
        let steps: Vec<serde_json::Value> = self
            .steps
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("summary".into(), s.summary().into());
                    obj.insert("reason".into(), s.reason().into());
                }
                v
            })
            .collect();
        serde_json::json!({
            "stack": self.stack,
            "target": target,
            "changes": self.steps.len(),
            "steps": steps,
        })
    }
}

/// One line per step, `  SIGN summary  (reason)`, the summaries padded to one width: `plan`'s look, which
/// bootstrap's plan shares.
pub fn step_lines(out: &mut String, steps: &[(char, String, String)]) {
    let width = steps
        .iter()
        .map(|(_, summary, _)| summary.chars().count())
        .max()
        .unwrap_or(0);
    for (sign, summary, reason) in steps {
        let pad = width.saturating_sub(summary.chars().count());
        let _ = writeln!(out, "  {sign} {summary}{}  ({reason})", " ".repeat(pad));
    }
}
