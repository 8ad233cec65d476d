//! `vldeploy maintenance on|off|status`: the flag file that makes nginx answer `/api/` with a 503 maintenance message.

use std::time::Duration;

use super::context::Connected;
use super::{CommandError, Context};
use crate::cli::{MaintenanceAction, Output};
use crate::layout::{container_name, stack_dir};
use crate::remote::maintenance as flag_cmd;
use crate::stack::Tls;
use crate::state::StateError;

/// What the host says about the flag: whether the stack is deployed at all, and the flag's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Probe {
    /// The stack's `www` directory is missing: never deployed on this host.
    NotDeployed,
    Off,
    /// On since `since` (the flag's mtime), `age_s` seconds ago by the host's clock.
    On {
        since: u64,
        age_s: u64,
    },
}

pub(super) fn parse_probe(out: &str) -> Option<Probe> {
    let mut words = out.split_whitespace();
    match words.next()? {
        "missing" => Some(Probe::NotDeployed),
        "off" => Some(Probe::Off),
        "on" => {
            let since: u64 = words.next()?.parse().ok()?;
            let now: u64 = words.next()?.parse().ok()?;
            Some(Probe::On {
                since,
                age_s: now.saturating_sub(since),
            })
        }
        _ => None,
    }
}

async fn probe(ctx: &Context, c: &Connected) -> Result<Probe, CommandError> {
    let out = c.remote.run(&flag_cmd::probe(&ctx.stack.name)).await?;
    let text = out.stdout_str();
    parse_probe(&text).ok_or_else(|| {
        CommandError::Io(format!(
            "{}: cannot read the maintenance flag's state (the host answered `{}`)",
            c.remote.name(),
            text.trim()
        ))
    })
}

/// When the maintenance page is on: since when and how long ago, as text. `None` when it is off, the stack is
/// not deployed, or the host cannot say.
pub(crate) async fn on_since(ctx: &Context, c: &Connected) -> Option<String> {
    match probe(ctx, c).await {
        Ok(Probe::On { since, age_s }) => {
            Some(format!("{} ({} ago)", since_text(since), ago(age_s)))
        }
        _ => None,
    }
}

fn ago(seconds: u64) -> String {
    let rounded = if seconds >= 3600 {
        seconds - seconds % 60
    } else {
        seconds
    };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}

fn since_text(since: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(since))
        .to_string()
}

/// The status code nginx gives `GET /api/health` from inside its own container, or why there is none.
async fn api_answer(ctx: &Context, c: &Connected) -> Result<String, String> {
    let url = if ctx.stack.tls == Tls::Off {
        "http://127.0.0.1/api/health"
    } else {
        "https://127.0.0.1/api/health"
    };
    match c
        .engine
        .exec(
            &container_name("nginx"),
            &[
                "curl",
                "-sk",
                "-m",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                url,
            ],
        )
        .await
    {
        Ok((0, out)) => Ok(out.trim().to_string()),
        Ok((status, _)) => Err(format!(
            "curl in `{}` exited {status}",
            container_name("nginx")
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The longest `--message` kept in the audit log.
const MESSAGE_MAX: usize = 500;

/// `--message` as the audit log keeps it: trimmed, one line of at most 500 characters.
pub(super) fn message_text(message: Option<&str>) -> Result<Option<&str>, CommandError> {
    let Some(m) = message.map(str::trim).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    if m.chars().any(char::is_control) {
        return Err(CommandError::Usage(
            "the maintenance `--message` holds a line break or another control character\n  help: write the reason on one line, e.g. `--message \"payment gateway down, INC-1234\"`".to_owned(),
        ));
    }
    if m.chars().count() > MESSAGE_MAX {
        return Err(CommandError::Usage(format!(
            "the maintenance `--message` is {} characters long\n  help: keep it under {MESSAGE_MAX} characters and link the incident for the details",
            m.chars().count()
        )));
    }
    Ok(Some(m))
}

pub(crate) async fn maintenance(
    ctx: &Context,
    action: &MaintenanceAction,
) -> Result<i32, CommandError> {
    if !ctx.stack.hosts.is_empty() {
        return super::swarm_maintenance::maintenance(ctx, action).await;
    }
    if let MaintenanceAction::On { message } = action {
        message_text(message.as_deref())?;
    }
    let c = if matches!(action, MaintenanceAction::Status) {
        ctx.connect_quiet().await?
    } else {
        ctx.connect().await?
    };
    match action {
        MaintenanceAction::Status => status(ctx, &c).await,
        MaintenanceAction::On { message } => on(ctx, &c, message.as_deref()).await,
        MaintenanceAction::Off => {
            off(ctx, &c).await.map_err(|e| match e {
                CommandError::State(StateError::Locked { ref info, .. }) if info.command == "restore" => {
                    CommandError::Usage(format!(
                        "{e}\n  note: the restore keeps the maintenance page on while it replaces the database and lifts it itself once the backend is healthy again; nothing was changed"
                    ))
                }
                other => other,
            })
        }
    }
}

async fn status(ctx: &Context, c: &Connected) -> Result<i32, CommandError> {
    let state = probe(ctx, c).await?;
    let flag = crate::layout::maintenance_flag(&ctx.stack.name);
    let held = crate::state::lock_inspect(&c.remote, &ctx.stack.name).await?;
    let interrupted = ctx.interrupted_restore(c).await;
    // Only a holder whose process still runs is "running" something; a dead one's lock is left over.
    let (holder, left) = match held {
        Some((info, idle)) if crate::state::lock_alive(&info, idle) => (Some(info), None),
        Some((info, _)) => (None, Some(info)),
        None => (None, None),
    };
    let host = ctx.target_name();
    match ctx.output {
        Output::Json => {
            let (on, since, age_s) = match state {
                Probe::On { since, age_s } => (true, Some(since), Some(age_s)),
                Probe::Off | Probe::NotDeployed => (false, None, None),
            };
            println!(
                "{}",
                serde_json::json!({
                    "stack": ctx.stack.name,
                    "host": host,
                    "deployed": state != Probe::NotDeployed,
                    "on": on,
                    "since": since,
                    "age_s": age_s,
                    "flag": flag,
                    "locked_by": holder.as_ref().map(|h| serde_json::json!({"holder": h.holder, "command": h.command})),
                    "stale_lock": left.as_ref().map(|h| serde_json::json!({"holder": h.holder, "command": h.command})),
                    "interrupted_restore": interrupted.as_ref().map(|j| serde_json::json!({
                        "phase": j.phase, "file": j.file, "database": j.database, "started": j.started,
                        "actor": j.actor, "pid": j.pid, "maintenance_was_on": j.maintenance_was_on,
                    })),
                })
            );
        }
        Output::Human => {
            match state {
                Probe::NotDeployed => println!(
                    "maintenance is off: `{}` is not deployed on {host}.",
                    ctx.stack.name
                ),
                Probe::Off => {
                    println!("maintenance is off on {host}: nginx passes /api/ to the backend.");
                }
                Probe::On { since, age_s } => {
                    println!(
                        "maintenance is ON on {host} since {} ({} ago): nginx answers /api/ with 503 and Retry-After.",
                        since_text(since),
                        ago(age_s)
                    );
                    println!(
                        "  who turned it on and why: `vldeploy audit -e {}`",
                        ctx.stack.environment
                    );
                    println!("  flag: {flag}");
                    println!(
                        "  lift it with `vldeploy maintenance off -e {}`",
                        ctx.stack.environment
                    );
                }
            }
            if let Some(j) = &interrupted {
                println!(
                    "  {}",
                    j.describe(&ctx.stack.environment).replace('\n', "\n  ")
                );
            } else if let Some(h) = &holder {
                println!(
                    "  {} is running `{}` on this stack now.",
                    h.holder, h.command
                );
            }
            if let Some(h) = &left {
                println!(
                    "  a lock is left by {} (`{}`), whose process is gone; the next command takes it over.",
                    h.holder, h.command
                );
            }
        }
    }
    Ok(0)
}

async fn on(ctx: &Context, c: &Connected, message: Option<&str>) -> Result<i32, CommandError> {
    let flag = crate::layout::maintenance_flag(&ctx.stack.name);
    ctx.locked(c, "maintenance on", || async {
        let result = async {
            match probe(ctx, c).await? {
                Probe::NotDeployed => Err(CommandError::Usage(format!(
                    "`{}` is not deployed on {} (no `{}/www`): run `vldeploy up -e {}` first",
                    ctx.stack.name,
                    ctx.target_name(),
                    stack_dir(&ctx.stack.name),
                    ctx.stack.environment
                ))),
                Probe::On { since, age_s } => {
                    say(
                        ctx,
                        true,
                        false,
                        &format!(
                            "maintenance is already on since {} ({} ago); nothing changed.",
                            since_text(since),
                            ago(age_s)
                        ),
                    );
                    Ok(false)
                }
                Probe::Off => {
                    // Created under a temporary name and renamed: nginx sees the flag whole or not at all. It stays
                    // empty: nginx serves the site's directory, so the operator's words go to the audit log only.
                    c.remote.upload(&flag, b"", 0o644).await?;
                    match api_answer(ctx, c).await {
                        Ok(code) if code == "503" => {}
                        Ok(code) => ctx.out.warning(format!(
                            "the flag is set but nginx answered /api/health with {code}; check `vldeploy status`"
                        )),
                        Err(e) => ctx.out.warning(format!(
                            "the flag is set but nginx could not be asked ({e}); it takes effect once nginx runs"
                        )),
                    }
                    say(
                        ctx,
                        true,
                        true,
                        "maintenance is on: nginx answers /api/ with 503 and Retry-After; the static site still serves.",
                    );
                    Ok(true)
                }
            }
        }
        .await;
        let changes = if matches!(result, Ok(false)) {
            Vec::new()
        } else {
            let reason = message_text(message)
                .ok()
                .flatten()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            vec![format!("maintenance page on (`{flag}`){reason}")]
        };
        (changes, result.map(|_| 0))
    })
    .await
}

async fn off(ctx: &Context, c: &Connected) -> Result<i32, CommandError> {
    let flag = crate::layout::maintenance_flag(&ctx.stack.name);
    ctx.locked(c, "maintenance off", || async {
        let result = async {
            match probe(ctx, c).await? {
                Probe::NotDeployed | Probe::Off => {
                    say(ctx, false, false, "maintenance is already off; nothing changed.");
                    Ok(false)
                }
                Probe::On { .. } => {
                    if super::gate::first_launch_held(c, &ctx.stack.name).await? {
                        return Err(CommandError::Gate(format!(
                            "the maintenance page stays: `{}` is a gated first launch whose release the go-live checklist has not passed, and lifting it would serve that release\n  help: `vldeploy check` and `vldeploy up -e {env}` once the items pass, or `vldeploy up -e {env} --waive ITEM --reason \"…\"` (audited)",
                            ctx.stack.name,
                            env = ctx.stack.environment
                        )));
                    }
                    c.remote.run(&flag_cmd::lift(&ctx.stack.name)).await?;
                    match api_answer(ctx, c).await {
                        Ok(code) if code == "200" => {}
                        Ok(code) => ctx.out.warning(format!(
                            "maintenance is off but /api/health through nginx answers {code}: the backend is not healthy; `vldeploy doctor -e {}`",
                            ctx.stack.environment
                        )),
                        Err(e) => ctx.out.warning(format!("nginx could not be asked ({e})")),
                    }
                    say(
                        ctx,
                        false,
                        true,
                        "maintenance is off: nginx passes /api/ to the backend again.",
                    );
                    Ok(true)
                }
            }
        }
        .await;
        let changes = match &result {
            Ok(false) => Vec::new(),
            _ => vec![format!("maintenance page off (`{flag}` removed)")],
        };
        (changes, result.map(|_| 0))
    })
    .await
}

/// The outcome of `on`/`off` on stdout.
fn say(ctx: &Context, on: bool, changed: bool, text: &str) {
    match ctx.output {
        Output::Human => println!("{text}"),
        Output::Json => println!("{}", serde_json::json!({"on": on, "changed": changed})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_one_line_of_at_most_500_characters() {
        assert_eq!(message_text(None).unwrap(), None);
        assert_eq!(message_text(Some("  ")).unwrap(), None);
        assert_eq!(
            message_text(Some(" payment gateway down; INC-1234 `$(x)` ")).unwrap(),
            Some("payment gateway down; INC-1234 `$(x)`")
        );
        assert_eq!(
            message_text(Some("down\n1700000000  root  up  ok"))
                .unwrap_err()
                .to_string(),
            "the maintenance `--message` holds a line break or another control character\n  help: write the reason on one line, e.g. `--message \"payment gateway down, INC-1234\"`"
        );
        assert!(message_text(Some("a\u{1b}[2Jb")).is_err());
        assert!(message_text(Some(&"x".repeat(500))).is_ok());
        assert!(message_text(Some(&"x".repeat(501))).is_err());
    }

    #[test]
    fn the_probe_reads_on_off_and_missing() {
        assert_eq!(parse_probe("off\n"), Some(Probe::Off));
        assert_eq!(parse_probe("missing\n"), Some(Probe::NotDeployed));
        assert_eq!(
            parse_probe("on 1700000000 1700000042\n"),
            Some(Probe::On {
                since: 1_700_000_000,
                age_s: 42
            })
        );
        // A clock that went back never gives a negative age.
        assert_eq!(
            parse_probe("on 1700000042 1700000000"),
            Some(Probe::On {
                since: 1_700_000_042,
                age_s: 0
            })
        );
        assert_eq!(parse_probe(""), None);
        assert_eq!(parse_probe("on x y"), None);
        assert_eq!(parse_probe("stat: cannot stat"), None);
    }
}
