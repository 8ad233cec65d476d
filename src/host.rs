//! The host of a stack's environment: opening the one SSH connection to it, as the stack describes.

use std::time::Duration;

use crate::stack::{HostKeys, SshAuth, Stack};
use crate::transport::{self, Auth, Remote, Target, TransportError};

/// The SSH target, credentials and host-key policy of the stack's environment.
pub fn ssh_settings(stack: &Stack) -> (Target, Auth, transport::HostKeys) {
    let t = &stack.target;
    let target = Target {
        user: t.user.clone(),
        host: t.host.clone(),
        port: t.port,
    };
    let auth = match &stack.auth {
        SshAuth::Key(p) => Auth::Key(p.clone()),
        SshAuth::Agent => Auth::Agent,
    };
    let keys = match &stack.host_keys {
        HostKeys::KnownHosts(p) => transport::HostKeys::KnownHosts(p.clone()),
        HostKeys::Pinned(f) => transport::HostKeys::Pinned(f.clone()),
    };
    (target, auth, keys)
}

/// Connects (the blocking handshake runs on a worker thread).
pub async fn connect(stack: &Stack, timeout: Duration) -> Result<Remote, TransportError> {
    connect_as(stack, &stack.target.user, timeout).await
}

/// Connects as `user` instead of the environment's user (bootstrap's first login), with the environment's key
/// and host keys.
pub async fn connect_as(
    stack: &Stack,
    user: &str,
    timeout: Duration,
) -> Result<Remote, TransportError> {
    let (mut target, auth, keys) = ssh_settings(stack);
    target.user = user.to_owned();
    let name = target.name();
    tokio::task::spawn_blocking(move || Remote::connect(&target, &auth, &keys, timeout))
        .await
        .unwrap_or_else(|e| {
            Err(TransportError::Local {
                step: format!("connecting to `{name}`"),
                reason: e.to_string(),
            })
        })
}
