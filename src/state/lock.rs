//! The deploy lock: one mutating command per stack and host at a time, with its holder named and stale locks detected.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::remote::lock as cmd;
use crate::transport::{Remote, TransportError};

/// A lock whose holder has not refreshed it for this long is stale.
pub(crate) const STALE_AFTER_S: u64 = 120;
const HEARTBEAT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "`{stack}` on `{host}` is locked by {holder} running `{command}` since {age_s}s ago (last sign of life {idle_s}s ago)\n  help: wait for it to finish; if that run is gone, `vldeploy lock release` frees the lock (a lock idle for {stale}s is taken over automatically)",
        holder = .info.holder, command = .info.command, stale = STALE_AFTER_S
    )]
    Locked {
        stack: String,
        host: String,
        info: LockInfo,
        age_s: u64,
        idle_s: u64,
    },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the lock file of `{stack}` on `{host}` is unreadable: {detail}")]
    Corrupt {
        stack: String,
        host: String,
        detail: String,
    },
}

/// What the lock says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub holder: String,
    pub machine: String,
    pub pid: u32,
    pub command: String,
    pub started: u64,
    pub token: String,
}

/// A held lock; refreshed in the background, released by `release` (or left to go stale if the process dies).
pub struct Lock {
    remote: Arc<Remote>,
    stack: String,
    token: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// Takes the lock of `stack` for `command`. A lock left by a dead process on this machine, or idle for
/// `STALE_AFTER_S`, is taken over with a warning; a live one is an error naming its holder.
pub async fn acquire(remote: Arc<Remote>, stack: &str, command: &str) -> Result<Lock, StateError> {
    let token = format!(
        "{:x}{:x}",
        std::process::id(),
        crate::state::now() ^ u64::from(std::process::id()) << 20
    );
    let info = LockInfo {
        holder: crate::state::actor(),
        machine: crate::state::machine(),
        pid: std::process::id(),
        command: command.to_string(),
        started: crate::state::now(),
        token: token.clone(),
    };
    let json = serde_json::to_string(&info).unwrap_or_default();
    // A holder that has just made the directory writes its record a moment later: look again then.
    let mut starting = 0;
    let mut attempt = 0;
    while attempt < 2 {
        let out = remote
            .exec_stdin(&cmd::acquire(stack), json.clone().into_bytes())
            .await?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.starts_with("taken") {
            let heartbeat = spawn_heartbeat(remote.clone(), stack.to_owned());
            return Ok(Lock {
                remote,
                stack: stack.to_owned(),
                token,
                heartbeat,
            });
        }
        let mut lines = text.lines().skip(1);
        let held: Option<LockInfo> = lines.next().and_then(|l| serde_json::from_str(l).ok());
        let times = lines.find(|l| l.starts_with("now=")).unwrap_or("");
        let num = |key: &str| {
            times
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (now, mtime) = (num("now="), num("mtime="));
        let idle = now.saturating_sub(mtime);
        let Some(held) = held else {
            // A lock directory without a readable holder: one being taken right now, or an interrupted
            // acquire (stale once idle).
            if mtime == 0 {
                // Gone already: its holder finished. Try again.
                attempt += 1;
                continue;
            }
            if idle >= STALE_AFTER_S {
                remote.run(&cmd::remove(stack)).await?;
                attempt += 1;
                continue;
            }
            if starting < 5 {
                starting += 1;
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                continue;
            }
            return Err(StateError::Corrupt {
                stack: stack.into(),
                host: remote.name().into(),
                detail: "no holder recorded; retry in a moment".into(),
            });
        };
        let dead_here = held.machine == info.machine && !process_alive(held.pid);
        if attempt == 0 && !alive(&held, idle) {
            crate::output::Output::global().warning(format!(
                "taking over a stale lock of `{stack}` held by {} (`{}`, {})",
                held.holder,
                held.command,
                if dead_here {
                    "its process is gone".to_string()
                } else {
                    format!("idle for {idle}s")
                }
            ));
            remote.run(&cmd::remove(stack)).await?;
            attempt += 1;
            continue;
        }
        return Err(StateError::Locked {
            stack: stack.into(),
            host: remote.name().into(),
            age_s: now.saturating_sub(held.started),
            idle_s: idle,
            info: held,
        });
    }
    Err(StateError::Corrupt {
        stack: stack.into(),
        host: remote.name().into(),
        detail: "the lock could not be taken".into(),
    })
}

impl Lock {
    /// Frees the lock, if it is still ours.
    pub async fn release(self) -> Result<(), StateError> {
        self.heartbeat.abort();
        self.remote
            .run(&cmd::release(&self.stack, &self.token))
            .await?;
        Ok(())
    }
}

fn spawn_heartbeat(remote: Arc<Remote>, stack: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let touch = cmd::touch(&stack);
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let _ = remote.exec(&touch).await;
        }
    })
}

/// Whether the holder of a lock idle for `idle_s` seconds still runs: its lock is fresh and, when it runs on
/// this machine, its process exists.
pub fn alive(info: &LockInfo, idle_s: u64) -> bool {
    idle_s < STALE_AFTER_S && (info.machine != crate::state::machine() || process_alive(info.pid))
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The current holder, if any, and how long since it last refreshed the lock.
pub async fn inspect(remote: &Remote, stack: &str) -> Result<Option<(LockInfo, u64)>, StateError> {
    let out = remote.exec(&cmd::inspect(stack)).await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let info = lines
        .next()
        .and_then(|l| serde_json::from_str::<LockInfo>(l).ok());
    let idle = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    Ok(info.map(|i| (i, idle)))
}

/// Removes the lock whoever holds it (`vldeploy lock release`). Returns the holder it removed.
pub async fn release_any(remote: &Remote, stack: &str) -> Result<Option<LockInfo>, StateError> {
    let held = inspect(remote, stack).await?.map(|(i, _)| i);
    remote.run(&cmd::remove(stack)).await?;
    Ok(held)
}
