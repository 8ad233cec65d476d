//! The host's own record under `/var/lib/vldeploy/<stack>/`: the document store, the deploy lock, the audit log.

mod audit;
mod lock;
pub mod store;

pub use audit::{AuditEntry, append as audit_append, read as audit_read};
pub use lock::{
    Lock, LockInfo, StateError, acquire, alive as lock_alive, inspect as lock_inspect,
    release_any as lock_release_any,
};
pub use store::{Document, StoreError};

/// Who is acting: `VLDEPLOY_ACTOR`, else `user@machine` where vldeploy runs.
pub fn actor() -> String {
    if let Ok(a) = std::env::var("VLDEPLOY_ACTOR") {
        if !a.trim().is_empty() {
            return a;
        }
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{}", machine())
}

/// The name of this process's user, from its uid and /etc/passwd.
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

/// The name of the machine vldeploy runs on.
pub fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
