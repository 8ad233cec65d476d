//! The go-live checklist: each item a probe or an attestation, judged with its evidence and a way to fix it.

mod attestation;
mod evidence;
mod probe;
mod report;
pub mod secrets;
pub mod ssl;

use std::time::Duration;

pub use attestation::{ATTESTED_ITEMS, Attestation, attest, read_attestations};
pub use evidence::{
    BackupVerified, read_backup_verified, record_backup_verified, record_verification,
};
pub use probe::Subject;
pub use report::{Finding, Report, Status};

use crate::engine::Engine;
use crate::stack::Stack;
use crate::transport::Remote;

/// How old the newest verified backup may be, unless `checklist.freshness.backup` says otherwise.
pub const BACKUP_FRESHNESS: Duration = Duration::from_secs(2 * 86_400);
/// How long an attestation holds, unless `checklist.freshness.<item>` says otherwise.
pub const ATTESTATION_FRESHNESS: Duration = Duration::from_secs(30 * 86_400);
/// The auth rate limit must answer 429 within this many requests.
pub const AUTH_PROBE_REQUESTS: u32 = 10;

/// What the checklist needs to look at.
pub struct Inputs<'a> {
    pub stack: &'a Stack,
    pub remote: &'a Remote,
    pub engine: &'a Engine,
    pub subject: Subject,
    /// The nginx container a staged release and the homepage are asked through (`vl_nginx` on one host, an
    /// edge node's nginx task on a swarm).
    pub nginx: String,
    /// Items to pass whatever they show, with the operator's reason: `(item, reason)`.
    pub waivers: &'a [(String, String)],
}

/// The items of an environment: those named in `checklist.items`, else every built-in.
pub fn items(stack: &Stack) -> Vec<String> {
    stack.checklist.as_ref().map_or_else(
        || {
            crate::stack::CHECKLIST_ITEMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        },
        |c| c.items.clone(),
    )
}

/// The freshness window of `item`.
pub fn freshness(stack: &Stack, item: &str) -> Duration {
    stack
        .checklist
        .as_ref()
        .and_then(|c| c.freshness.get(item).copied())
        .unwrap_or(if item == "backup" {
            BACKUP_FRESHNESS
        } else {
            ATTESTATION_FRESHNESS
        })
}

/// Runs every item of the environment, one after another, and returns the report.
pub async fn run(inputs: &Inputs<'_>) -> Report {
    let now = crate::state::now();
    let names = items(inputs.stack);
    let mut findings = Vec::new();
    for name in &names {
        let started = std::time::Instant::now();
        let mut f = probe::judge(inputs, name, now).await;
        f.took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        findings.push(waive(f, inputs.waivers));
    }
    Report {
        environment: inputs.stack.environment.clone(),
        subject: inputs.subject.describe(),
        checked_at: now,
        findings,
    }
}

/// Judges one item of the checklist on its own (a swarm's checklist asks each item where its evidence lives).
pub async fn judge(inputs: &Inputs<'_>, item: &str, now: u64) -> Finding {
    probe::judge(inputs, item, now).await
}

/// `finding`, waived when it does not pass and `waivers` names its item.
pub fn waive(mut finding: Finding, waivers: &[(String, String)]) -> Finding {
    if finding.status != Status::Pass {
        if let Some((_, reason)) = waivers.iter().find(|(i, _)| *i == finding.item) {
            finding.evidence = format!("{} — waived: {reason}", finding.evidence);
            finding.status = Status::Waived;
        }
    }
    finding
}

/// A waiver names an item of the environment; anything else is a typo that must not pass silently.
pub fn check_waivers(stack: &Stack, waivers: &[(String, String)]) -> Result<(), String> {
    let names = items(stack);
    for (item, reason) in waivers {
        if !names.contains(item) {
            let help = crate::stack::did_you_mean(item, names.iter().map(String::as_str))
                .map_or_else(
                    || {
                        format!(
                            "the items of `{}` are {}",
                            stack.environment,
                            names.join(", ")
                        )
                    },
                    |s| format!("did you mean `{s}`?"),
                );
            return Err(format!(
                "`--waive {item}`: no such checklist item in environment `{}`\n  help: {help}",
                stack.environment
            ));
        }
        if reason.trim().is_empty() {
            return Err(format!(
                "`--waive {item}` needs a reason: `--waive {item} --reason \"…\"` (it goes into the audit log)"
            ));
        }
    }
    Ok(())
}
