//! The sshd hardening, applied like the firewall: revert armed on the host, sshd restarted, confirmed over a new
//! connection as the deploy user, disarmed; reverted by the host itself when that confirmation fails.

use std::time::{Duration, Instant};

use super::BootstrapError;
use crate::remote::Command;
use crate::remote::bootstrap::as_root;
use crate::remote::sshd::{DROPIN_PATH, Hardening};
use crate::stack::Stack;
use crate::transport::Remote;

/// Seconds after which the host reverts an unconfirmed hardening (default 30, at least 10).
pub const REVERT_AFTER_ENV: &str = "VLDEPLOY_SSH_REVERT_AFTER";

/// Set to `1` (tests only): the drop-in also refuses the deploy user, so the confirmation must fail.
pub const TEST_DENY_ENV: &str = "VLDEPLOY_SSH_TEST_DENY_DEPLOY";

/// The shortest revert delay accepted: a new SSH connection must fit in well before it.
pub const MIN_REVERT_AFTER: Duration = Duration::from_secs(10);

/// `VLDEPLOY_SSH_REVERT_AFTER` (seconds, at least 10), or 30 s.
pub fn revert_after() -> Duration {
    std::env::var(REVERT_AFTER_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs)
        .max(MIN_REVERT_AFTER)
}

/// What a hardening works with.
pub struct Harden<'a> {
    pub stack: &'a Stack,
    /// The connection as the bootstrap user.
    pub remote: &'a Remote,
    pub bootstrap_user: &'a str,
    pub dropin: &'a str,
    pub revert_after: Duration,
}

impl Harden<'_> {
    fn host(&self) -> String {
        self.remote.name().to_owned()
    }

    fn step(&self, step: &str, detail: String) -> BootstrapError {
        BootstrapError::Step {
            host: self.host(),
            step: step.to_owned(),
            detail,
        }
    }

    async fn run(
        &self,
        step: &str,
        command: Command,
        stdin: Vec<u8>,
    ) -> Result<String, BootstrapError> {
        let command = as_root(command, self.bootstrap_user);
        let out = self.remote.exec_stdin(&command, stdin).await?;
        if out.success() {
            Ok(out.stdout_str().trim().to_owned())
        } else {
            Err(self.step(step, out.stderr_tail(crate::transport::STDERR_TAIL_LINES)))
        }
    }

    /// A new connection as the deploy user, with the environment's key.
    async fn deploy_login(&self, timeout: Duration) -> Result<Remote, String> {
        crate::host::connect(self.stack, timeout)
            .await
            .map_err(|e| first_line(&e.to_string()))
    }
}

/// Hardens sshd; `say` gets progress lines. Refuses (changing nothing) when the deploy user is root or cannot
/// log in with the key yet.
pub async fn harden(h: &Harden<'_>, say: &(dyn Fn(&str) + Sync)) -> Result<(), BootstrapError> {
    let user = &h.stack.target.user;
    if user == "root" {
        return Err(BootstrapError::Refused(format!(
            "`--harden-ssh` turns off root's login, and the environment logs in as `root`\n  help: set the environment's `host` to the deploy user, e.g. `ssh://deploy@{}:{}`, run `vldeploy bootstrap`, then add `--harden-ssh`",
            h.stack.target.host, h.stack.target.port
        )));
    }
    match h.deploy_login(Duration::from_secs(15)).await {
        Ok(fresh) => {
            fresh
                .run(&crate::remote::host::login_check())
                .await
                .map_err(|e| h.step("check the deploy login", first_line(&e.to_string())))?;
        }
        Err(reason) => {
            return Err(BootstrapError::Refused(format!(
                "sshd was not hardened: `{user}` cannot log in with the environment's key yet ({reason}), and hardening would leave key logins only\n  help: check the key in stack.yaml and `{user}`'s ~/.ssh/authorized_keys, then run the command again"
            )));
        }
    }
    let hardening = Hardening::new(crate::state::now());
    h.run("prepare the revert", hardening.prepare(), Vec::new())
        .await?;
    let secs = h.revert_after.as_secs();
    h.run("arm the revert", hardening.arm(secs), Vec::new())
        .await?;
    let armed_at = Instant::now();
    say(&format!(
        "bootstrap: the host puts sshd's settings back by itself in {secs}s unless a new connection as `{user}` confirms"
    ));
    if let Err(e) = h
        .run(
            "check the sshd drop-in",
            hardening.write_and_check(),
            h.dropin.as_bytes().to_vec(),
        )
        .await
    {
        let _ = h.run("disarm", hardening.disarm(), Vec::new()).await;
        return Err(e);
    }
    // On failure the timer puts the previous drop-in back and restarts sshd again.
    h.run("restart sshd", Hardening::restart(), Vec::new())
        .await?;
    say("bootstrap: sshd restarted with the new settings; confirming over a new SSH connection");
    // A login as the deploy user over a new connection is the confirmation; the revert is the bootstrap
    // user's (its directory is root's), so the connection that armed it disarms it.
    let confirmed = match h.deploy_login(confirm_timeout(h.revert_after)).await {
        Ok(fresh) => match fresh.run(&crate::remote::host::login_check()).await {
            Ok(_) => h
                .run("disarm", hardening.disarm(), Vec::new())
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(first_line(&e.to_string())),
        },
        Err(reason) => Err(reason),
    };
    match confirmed {
        Ok(outcome) if outcome == "confirmed" => {
            say(&format!(
                "bootstrap: sshd hardening confirmed in {:.1}s as `{user}`; revert disarmed",
                armed_at.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Ok(outcome) => Err(h.step(
            "confirm",
            format!("the confirmation came too late: the host had already reverted ({outcome}); run the command again"),
        )),
        Err(reason) => {
            say(&format!(
                "bootstrap: a new SSH connection as `{user}` failed ({reason}); waiting for the host to revert by itself"
            ));
            Err(wait_for_revert(h, &hardening, reason, armed_at).await)
        }
    }
}

/// Waits until the revert is due, then checks over new connections as the bootstrap user that the host
/// reverted.
async fn wait_for_revert(
    h: &Harden<'_>,
    hardening: &Hardening,
    reason: String,
    armed_at: Instant,
) -> BootstrapError {
    let due = h.revert_after + Duration::from_secs(2);
    tokio::time::sleep(due.saturating_sub(armed_at.elapsed())).await;
    let deadline = Instant::now() + h.revert_after + Duration::from_mins(1);
    let mut last = String::new();
    while Instant::now() < deadline {
        match super::connect_as(h.stack, h.bootstrap_user, Duration::from_secs(15)).await {
            Ok(fresh) => {
                let command = as_root(hardening.outcome(), h.bootstrap_user);
                let outcome = fresh
                    .run(&command)
                    .await
                    .map(|o| o.stdout_str().trim().to_owned())
                    .unwrap_or_default();
                if outcome.starts_with("reverted 0") {
                    return BootstrapError::Reverted {
                        host: h.host(),
                        reason,
                        after_s: h.revert_after.as_secs(),
                        user: h.stack.target.user.clone(),
                        bootstrap_user: h.bootstrap_user.to_owned(),
                    };
                }
                return h.step(
                    "confirm",
                    format!(
                        "a new SSH connection failed ({reason}); the host is reachable again but its revert says `{outcome}`; check {DROPIN_PATH}"
                    ),
                );
            }
            Err(e) => {
                last = first_line(&e.to_string());
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    BootstrapError::Unconfirmed {
        host: h.host(),
        reason,
        waited_s: armed_at.elapsed().as_secs(),
        after: last,
        dropin: DROPIN_PATH,
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
