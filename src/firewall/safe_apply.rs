//! The safe apply: check, save, arm the host's revert, swap atomically, confirm over a new connection, disarm,
//! then install the ruleset for boot.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::boot::Boot;
use super::change::Change;
use super::error::FirewallError;
use super::observed::{Observed, observe};
use super::ruleset::Ruleset;
use super::{REVERT_AFTER_ENV, RULESET_PATH};
use crate::remote::nft::Revert;
use crate::stack::Stack;
use crate::transport::{Remote, TransportError};

/// How long the host waits for a confirmation unless told otherwise.
pub(crate) const DEFAULT_REVERT_AFTER: Duration = Duration::from_secs(30);

/// The shortest revert delay accepted: a new SSH connection must fit in well before it.
pub const MIN_REVERT_AFTER: Duration = Duration::from_secs(10);

/// `VLDEPLOY_FIREWALL_REVERT_AFTER` (seconds, at least 10), or 30 s.
pub fn revert_after() -> Duration {
    std::env::var(REVERT_AFTER_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_REVERT_AFTER, Duration::from_secs)
        .max(MIN_REVERT_AFTER)
}

/// How a new connection confirms the ruleset: the stack's own SSH settings.
pub struct Confirm<'a> {
    pub stack: &'a Stack,
    /// The SSH port on the host, named when a ruleset cut it off.
    pub ssh_port: u16,
}

impl Confirm<'_> {
    /// Opens a new SSH connection to the stack's host (blocking work on a worker thread).
    async fn connect(&self, timeout: Duration) -> Result<Remote, TransportError> {
        crate::host::connect(self.stack, timeout).await
    }
}

/// What a safe apply did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    pub hash: String,
    /// Whether the table was swapped (`false`: only installed for boot).
    pub swapped: bool,
    /// Seconds from the check to the confirmation (`0` when only installed).
    pub confirm_s: f64,
    /// Seconds the whole apply took.
    pub seconds: f64,
    pub boot: Boot,
}

/// Brings the host's firewall to `ruleset` as `change` says; `say` receives progress lines.
///
/// A swap goes: upload the candidate, `nft -c` it and the saved table, arm the host's revert to fire after
/// `revert_after`, load the candidate in one transaction, open a new SSH connection, disarm over it. If that
/// connection fails, vldeploy waits for the host to revert by itself, checks over yet another new connection
/// that it did, and returns [`FirewallError::Reverted`].
pub async fn safe_apply(
    remote: &Remote,
    confirm: &Confirm<'_>,
    ruleset: &Ruleset,
    change: &Change,
    observed: &Observed,
    revert_after: Duration,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Applied, FirewallError> {
    let started = Instant::now();
    let host = remote.name().to_owned();
    let mut applied = Applied {
        hash: ruleset.hash.clone(),
        swapped: false,
        confirm_s: 0.0,
        seconds: 0.0,
        boot: observed.boot.clone(),
    };
    match change {
        Change::Unchanged => return Ok(applied),
        Change::Install { .. } => {}
        Change::Apply { .. } => {
            observed.usable(&host)?;
            swap(remote, confirm, ruleset, observed, revert_after, say).await?;
            applied.swapped = true;
            applied.confirm_s = started.elapsed().as_secs_f64();
        }
    }
    applied.boot = install(remote, &confirm.stack.name, ruleset).await?;
    if !applied.boot.loads_at_boot() {
        say(&format!(
            "firewall: warning: `{host}` has no systemd; the ruleset is installed at {RULESET_PATH} but nothing loads it at boot (have the host's init run `nft -f {RULESET_PATH}`)"
        ));
    }
    applied.seconds = started.elapsed().as_secs_f64();
    Ok(applied)
}

async fn swap(
    remote: &Remote,
    confirm: &Confirm<'_>,
    ruleset: &Ruleset,
    observed: &Observed,
    revert_after: Duration,
    say: &(dyn Fn(&str) + Sync),
) -> Result<(), FirewallError> {
    let host = remote.name().to_owned();
    let step_error = |step: &str, e: TransportError| FirewallError::Step {
        host: host.clone(),
        step: step.to_owned(),
        detail: e.to_string(),
    };
    let revert = Revert::new(&confirm.stack.name, crate::state::now());
    remote
        .run(&Revert::prune())
        .await
        .map_err(|e| step_error("prune", e))?;
    remote
        .upload(&revert.candidate(), ruleset.text.as_bytes(), 0o600)
        .await
        .map_err(|e| step_error("upload", e))?;
    let check = remote
        .exec(&revert.prepare(observed.live_hash.as_deref()))
        .await?;
    if !check.success() {
        return Err(FirewallError::Refused {
            host,
            step: "check".to_owned(),
            detail: check.stderr_tail(crate::transport::STDERR_TAIL_LINES),
        });
    }
    let secs = revert_after.as_secs();
    remote
        .run(&revert.arm(secs))
        .await
        .map_err(|e| step_error("arm", e))?;
    let armed_at = Instant::now();
    say(&format!(
        "firewall: the host reverts by itself in {secs}s unless a new connection confirms"
    ));
    let loaded = remote.exec(&revert.apply()).await?;
    if !loaded.success() {
        let _ = remote.exec(&revert.disarm()).await;
        return Err(FirewallError::Refused {
            host,
            step: "apply".to_owned(),
            detail: loaded.stderr_tail(crate::transport::STDERR_TAIL_LINES),
        });
    }
    say(&format!(
        "firewall: ruleset {} loaded; confirming over a new SSH connection",
        ruleset.hash
    ));
    let timeout = confirm_timeout(revert_after);
    let confirmed = match confirm.connect(timeout).await {
        Ok(fresh) => fresh
            .run(&revert.disarm())
            .await
            .map(|out| out.stdout_str().trim().to_owned())
            .map_err(|e| e.to_string()),
        Err(e) => Err(first_line(&e.to_string())),
    };
    match confirmed {
        Ok(outcome) if outcome == "confirmed" => {
            remote
                .run(&crate::remote::nft::record_listing())
                .await
                .map_err(|e| step_error("record", e))?;
            say(&format!(
                "firewall: confirmed in {:.1}s; revert disarmed",
                armed_at.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Ok(outcome) => Err(FirewallError::Step {
            host,
            step: "confirm".to_owned(),
            detail: format!(
                "the confirmation came too late: the host had already reverted ({outcome}); run the command again"
            ),
        }),
        Err(reason) => {
            say(&format!(
                "firewall: a new SSH connection failed ({reason}); waiting for the host to revert by itself"
            ));
            Err(wait_for_revert(confirm, &revert, &host, reason, revert_after, armed_at, say).await)
        }
    }
}

/// Waits until the revert is due, then checks over new connections that the host reverted.
async fn wait_for_revert(
    confirm: &Confirm<'_>,
    revert: &Revert,
    host: &str,
    reason: String,
    revert_after: Duration,
    armed_at: Instant,
    say: &(dyn Fn(&str) + Sync),
) -> FirewallError {
    let due = revert_after + Duration::from_secs(2);
    tokio::time::sleep(due.saturating_sub(armed_at.elapsed())).await;
    let deadline = Instant::now() + revert_after + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        match confirm.connect(Duration::from_secs(15)).await {
            Ok(fresh) => {
                let outcome = fresh
                    .run(&revert.outcome())
                    .await
                    .map(|o| o.stdout_str().trim().to_owned())
                    .unwrap_or_default();
                let after_s = armed_at.elapsed().as_secs();
                if outcome.starts_with("reverted 0") {
                    say(&format!(
                        "firewall: the host reverted to its previous ruleset by itself; reached again over a new connection {after_s}s after arming"
                    ));
                    return FirewallError::Reverted {
                        host: host.to_owned(),
                        reason,
                        after_s: revert_after.as_secs(),
                        ssh_port: confirm.ssh_port,
                    };
                }
                return FirewallError::Step {
                    host: host.to_owned(),
                    step: "confirm".to_owned(),
                    detail: format!(
                        "a new SSH connection failed ({reason}); the host is reachable again but its revert says `{outcome}`; check `vldeploy firewall status`"
                    ),
                };
            }
            Err(e) => {
                last = first_line(&e.to_string());
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    FirewallError::Unconfirmed {
        host: host.to_owned(),
        reason,
        waited_s: armed_at.elapsed().as_secs(),
        after: last,
        table: super::TABLE,
    }
}

/// How long the confirming connection may take: well inside the revert delay.
fn confirm_timeout(revert_after: Duration) -> Duration {
    (revert_after / 2)
        .saturating_sub(Duration::from_secs(1))
        .clamp(Duration::from_secs(3), Duration::from_secs(15))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

/// Installs the ruleset file (and, under systemd, the unit that loads it at boot, enabled): staged under the
/// stack's directory, installed by root's helper. Returns how it boots.
async fn install(remote: &Remote, stack: &str, ruleset: &Ruleset) -> Result<Boot, FirewallError> {
    let staged = format!(
        "{}/{}",
        crate::layout::stack_dir(stack),
        crate::remote::nft::boot_staged()
    );
    remote
        .upload(&staged, ruleset.text.as_bytes(), 0o600)
        .await?;
    remote.run(&crate::remote::nft::boot_install(stack)).await?;
    Ok(observe(remote).await?.boot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirming_connection_fits_well_inside_the_revert_delay() {
        assert_eq!(
            confirm_timeout(Duration::from_secs(10)),
            Duration::from_secs(4)
        );
        assert_eq!(
            confirm_timeout(Duration::from_secs(30)),
            Duration::from_secs(14)
        );
        assert_eq!(
            confirm_timeout(Duration::from_secs(300)),
            Duration::from_secs(15)
        );
    }
}
