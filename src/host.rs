//! The host of a stack's environment: opening the one SSH connection to it, as the stack describes.

use std::time::Duration;

use crate::remote::root::Privilege;
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

/// Connects (the blocking handshake runs on a worker thread) as the environment's user; for a user that is not
/// root, checks once what vldeploy needs of it ([`check_rights`]).
pub async fn connect(stack: &Stack, timeout: Duration) -> Result<Remote, TransportError> {
    let remote = connect_as(stack, &stack.target.user, timeout).await?;
    if remote.privilege() == Privilege::Sudo {
        check_rights(&remote, stack).await?;
    }
    Ok(remote)
}

/// What a user that is not root needs: root's helper through `sudo -n`, the very helper this binary carries,
/// the stack's directory writable, the engine's socket usable. One round trip; a miss is one error naming each
/// problem and what to do, before anything is changed.
pub async fn check_rights(remote: &Remote, stack: &Stack) -> Result<(), TransportError> {
    let user = &stack.target.user;
    let dir = crate::layout::stack_dir(&stack.name);
    let out = remote
        .run(&crate::remote::root::rights(&dir, transport::DOCKER_SOCKET))
        .await?;
    let text = out.stdout_str();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let helper = crate::layout::HELPER_PATH;
    let mut problems = Vec::new();
    let sudo = get("sudo");
    if sudo != "ok" {
        problems.push(format!(
            "`sudo -n {helper}` failed: {}",
            if sudo.is_empty() { "no answer" } else { &sudo }
        ));
    } else if get("helper") != crate::remote::root::helper_hash() {
        problems.push(format!(
            "`{helper}` is another version than this vldeploy's"
        ));
    }
    if get("writable") != "yes" {
        problems.push(format!("`{dir}` is missing or not writable by `{user}`"));
    }
    if get("docker") != "yes" {
        problems.push(format!(
            "`{user}` may not use the Docker engine (`{}`): not in the `docker` group",
            transport::DOCKER_SOCKET
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let env = &stack.environment;
    Err(TransportError::Rights {
        host: remote.name().to_owned(),
        user: user.clone(),
        problems: problems
            .iter()
            .map(|p| format!("  - {p}"))
            .collect::<Vec<_>>()
            .join("\n"),
        help: format!(
            "run `vldeploy bootstrap -e {env}` (it connects as `bootstrap_user`, root or a sudo user, and sets all of \
             this up), or by hand: add `{user}` to the `docker` group, give it `{dir}`, install vldeploy's root \
             helper at {helper} and allow it in /etc/sudoers.d/vldeploy with `{}`; nothing was changed",
            crate::bootstrap::sudoers(user)
                .lines()
                .last()
                .unwrap_or_default()
        ),
    })
}

/// Connects as `user` instead of the environment's user (bootstrap's first login), with the environment's key
/// and host keys.
/// Connects to `target` with the environment's credentials and host-key policy (a backup host).
pub async fn connect_to(
    stack: &Stack,
    target: Target,
    timeout: Duration,
) -> Result<Remote, TransportError> {
    let (_, auth, keys) = ssh_settings(stack);
    let name = target.name();
    let command_timeout = stack.command_timeout;
    tokio::task::spawn_blocking(move || Remote::connect(&target, &auth, &keys, timeout))
        .await
        .unwrap_or_else(|e| {
            Err(TransportError::Local {
                step: format!("connecting to `{name}`"),
                reason: e.to_string(),
            })
        })
        .map(|remote| remote.with_command_timeout(command_timeout))
}

pub async fn connect_as(
    stack: &Stack,
    user: &str,
    timeout: Duration,
) -> Result<Remote, TransportError> {
    let (mut target, auth, keys) = ssh_settings(stack);
    target.user = user.to_owned();
    let name = target.name();
    let command_timeout = stack.command_timeout;
    tokio::task::spawn_blocking(move || Remote::connect(&target, &auth, &keys, timeout))
        .await
        .unwrap_or_else(|e| {
            Err(TransportError::Local {
                step: format!("connecting to `{name}`"),
                reason: e.to_string(),
            })
        })
        .map(|remote| remote.with_command_timeout(command_timeout))
}
