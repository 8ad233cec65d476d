//! Reaching a host: one SSH session carrying exec, uploads and the Docker API tunnel.
//!
//! [`Remote::connect`] opens one ssh2 session per host (TCP connect, handshake, host key check against
//! `known_hosts` or a pinned fingerprint, then key or agent authentication, all blocking) and hands it to
//! a pump thread that owns it from then on in non-blocking mode (see `pump`). Every command runs on its
//! own session channel; the Docker API is reached through a unix socket in a private temporary directory
//! (mode 0700) whose every connection becomes a `direct-streamlocal` channel to the host's
//! `/var/run/docker.sock`; the engine module connects its client to that local socket ([`DockerEndpoint`]).
//!
//! Uploads are not SFTP: [`Remote::upload`] runs a small shell snippet on the same session
//! (`mkdir -p`, then `cat` from stdin to a temporary file under `umask 077`, `chmod`, `mv -fT`), which
//! makes the write atomic and keeps everything on the one pump. [`Remote::local`] offers the same API
//! on this machine (`sh -c`, the local Docker socket) for tests and the sandbox.

// Errors carry the host, fingerprints and paths that make them useful; they are rare and not worth boxing.
#![allow(clippy::result_large_err)]

mod endpoint;
mod error;
mod exec;
mod host_key;
mod link;
mod local;
mod output;
mod pump;
mod quote;
mod session;
mod tunnel;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Kept here too for callers from before the command builders; new code asks `crate::remote`.
pub use crate::remote::shell_quote;
pub use endpoint::DockerEndpoint;
pub use error::{STDERR_TAIL_LINES, TransportError};
pub use host_key::fingerprint;
pub use link::{ALIVE_TIMEOUT, Link};
pub use output::{ExecStream, Output, StreamEnd, StreamStatus};

use crate::remote::Command;
use crate::remote::root::{Privilege, prelude};
use exec::{ExecJob, Sink, Stdin};
use output::STREAM_STDOUT_CHUNKS;

/// Where the Docker engine listens on a host.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Who to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `user@host:port`, the name used in every message.
    pub fn name(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A private key file (`~/` is expanded); it must not need a passphrase.
    Key(PathBuf),
    /// The keys of the ssh agent at `$SSH_AUTH_SOCK`.
    Agent,
}

/// How to trust the host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeys {
    /// An OpenSSH `known_hosts` file (`~/` is expanded); plain, `[host]:port` and hashed entries work.
    KnownHosts(PathBuf),
    /// A fingerprint as `ssh-keygen -l` prints it: `SHA256:<base64 without padding>`.
    Pinned(String),
}

enum Backend {
    Ssh(pump::Handle),
    Local,
}

/// A host to run commands on and to reach Docker on. `Send + Sync`; share it through an `Arc`.
///
/// Dropping it closes the connection, stops its thread and removes the tunnel socket directory.
pub struct Remote {
    name: String,
    /// Why the connection ended, once it has.
    link: Link,
    backend: Backend,
    tunnel_dir: Option<PathBuf>,
    docker: tokio::sync::OnceCell<DockerEndpoint>,
    /// How root's steps run on this connection.
    privilege: Privilege,
    /// The longest one command may take.
    command_timeout: Duration,
    /// Every command runs as root through `sudo -n sh -c` (bootstrap's first connection as a sudo user).
    sudo_all: bool,
}

/// How long one command may take unless the stack says otherwise.
pub use crate::layout::COMMAND_TIMEOUT;

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Connects, verifies the host key and authenticates. Blocking: call it from `spawn_blocking` in
    /// async code. `timeout` bounds the TCP connect and each step of the handshake and authentication.
    pub fn connect(
        target: &Target,
        auth: &Auth,
        host_keys: &HostKeys,
        timeout: Duration,
    ) -> Result<Remote, TransportError> {
        let session = session::open(target, auth, host_keys, timeout)?;
        let name = target.name();
        let dir = tempfile::Builder::new()
            .prefix("vldeploy-ssh-")
            .tempdir()
            .and_then(|dir| {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
                Ok(dir)
            })
            .map_err(|e| TransportError::Local {
                step: "creating the docker tunnel directory".to_owned(),
                reason: e.to_string(),
            })?;
        let tunnel_dir = dir.path().to_path_buf();
        let link = Link::default();
        let handle = pump::Handle::spawn(session, &name, dir, link.clone())?;
        Ok(Remote {
            name,
            link,
            backend: Backend::Ssh(handle),
            tunnel_dir: Some(tunnel_dir),
            docker: tokio::sync::OnceCell::new(),
            privilege: Privilege::of_user(&target.user),
            command_timeout: COMMAND_TIMEOUT,
            sudo_all: false,
        })
    }

    /// This machine, through `sh -c` and the local Docker socket.
    pub fn local() -> Remote {
        Remote {
            name: local::NAME.to_owned(),
            link: Link::default(),
            backend: Backend::Local,
            tunnel_dir: None,
            docker: tokio::sync::OnceCell::new(),
            privilege: Privilege::Root,
            command_timeout: COMMAND_TIMEOUT,
            sudo_all: false,
        }
    }

    /// `user@host:port`, or `local`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The remote with `timeout` as the longest any one command may take (streams excepted: they show
    /// progress and end when their stream does).
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The remote with every command run as root through `sudo -n sh -c` (stdin passes through): bootstrap's
    /// connection as a user with sudo, whose state files (lock, audit) live where only root may write yet.
    /// Commands already marked root's are left as their builder made them.
    #[must_use]
    pub fn with_sudo_for_all(mut self) -> Self {
        self.sudo_all = true;
        self.privilege = Privilege::Root;
        self
    }

    /// `script` through `sudo -n sh -c` when every command runs as root that way.
    fn sudo_wrapped(&self, script: &str) -> String {
        if self.sudo_all {
            format!("sudo -n sh -c {}", crate::remote::shell_quote(script))
        } else {
            script.to_owned()
        }
    }

    /// How root's steps run here: as they are for `root` (and this machine), through `sudo -n` for others.
    pub fn privilege(&self) -> Privilege {
        self.privilege
    }

    /// The text the host's `sh` runs for `cmd`: with the root helper's function defined first when it calls it.
    fn script_of(&self, cmd: &Command) -> String {
        if cmd.uses_helper() {
            self.sudo_wrapped(&format!("{}{}", prelude(self.privilege), cmd.text()))
        } else if cmd.needs_root() {
            cmd.text().to_owned()
        } else {
            self.sudo_wrapped(cmd.text())
        }
    }

    /// The connection's record of how it ended, for the engine's errors.
    pub fn link(&self) -> Link {
        self.link.clone()
    }

    /// Runs `cmd` with `sh` semantics on the host; any exit status is `Ok`.
    pub async fn exec(&self, cmd: &Command) -> Result<Output, TransportError> {
        self.exec_stdin(cmd, Vec::new()).await
    }

    /// Runs `cmd` with `stdin` as its standard input; any exit status is `Ok`.
    pub async fn exec_stdin(
        &self,
        cmd: &Command,
        stdin: Vec<u8>,
    ) -> Result<Output, TransportError> {
        self.exec_logged(&self.script_of(cmd), cmd.text(), stdin)
            .await
    }

    /// Runs shell text (a command's, or the transport's own snippets) and logs it.
    async fn exec_text(&self, cmd: &str, stdin: Vec<u8>) -> Result<Output, TransportError> {
        self.exec_logged(&self.sudo_wrapped(cmd), cmd, stdin).await
    }

    /// Runs `script`, logged as `shown` (a root command without the helper's text before it).
    async fn exec_logged(
        &self,
        script: &str,
        cmd: &str,
        stdin: Vec<u8>,
    ) -> Result<Output, TransportError> {
        let started = std::time::Instant::now();
        let stdin_bytes = stdin.len();
        let result = match tokio::time::timeout(
            self.command_timeout,
            self.exec_stdin_unlogged(script, stdin),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                host: self.name.clone(),
                command: cmd.to_owned(),
                after: self.command_timeout,
            }),
        };
        // The command line only (the log writer scrubs secret values from it); never stdin or output.
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(out) => tracing::debug!(
                host = %self.name,
                status = out.status,
                elapsed_ms,
                stdin_bytes,
                stdout_bytes = out.stdout.len(),
                stderr_bytes = out.stderr.len(),
                "remote command: {}",
                error::shorten(cmd)
            ),
            Err(e) => tracing::debug!(
                host = %self.name,
                elapsed_ms,
                stdin_bytes,
                error = %e,
                "remote command failed to run: {}",
                error::shorten(cmd)
            ),
        }
        result
    }

    async fn exec_stdin_unlogged(
        &self,
        cmd: &str,
        stdin: Vec<u8>,
    ) -> Result<Output, TransportError> {
        match &self.backend {
            Backend::Local => local::exec(cmd, stdin).await,
            Backend::Ssh(handle) => {
                let (tx, rx) = oneshot::channel();
                handle.submit(pump::Job::Exec(ExecJob {
                    command: cmd.to_owned(),
                    stdin: Stdin::Bytes(Bytes::from(stdin)),
                    sink: Sink::Collect(tx),
                }))?;
                rx.await.unwrap_or_else(|_| Err(self.gone()))
            }
        }
    }

    /// Runs `cmd`; a non-zero exit status is a [`TransportError::Command`] with the tail of stderr.
    pub async fn run(&self, cmd: &Command) -> Result<Output, TransportError> {
        self.run_stdin(cmd, Vec::new()).await
    }

    /// Runs `cmd` with `stdin`; a non-zero exit status is a [`TransportError::Command`].
    pub async fn run_stdin(&self, cmd: &Command, stdin: Vec<u8>) -> Result<Output, TransportError> {
        let out = self.exec_stdin(cmd, stdin).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(TransportError::command(
                &self.name,
                cmd.text(),
                out.status,
                &out.stderr,
            ))
        }
    }

    /// Runs `cmd` with stdin fed from `stdin` (closed when the sender is dropped; `None` for none) and
    /// stdout delivered as chunks. Both directions apply backpressure: a slow reader slows the command,
    /// a slow command slows the sender.
    #[allow(clippy::unused_async)] // async like the rest of the API, so callers need not care how it starts
    pub async fn exec_stream(
        &self,
        cmd: &Command,
        stdin: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<ExecStream, TransportError> {
        let script = self.script_of(cmd);
        let cmd = script.as_str();
        tracing::debug!(
            host = %self.name,
            streamed = true,
            "remote command: {}",
            error::shorten(cmd)
        );
        match &self.backend {
            Backend::Local => local::exec_stream(cmd, stdin),
            Backend::Ssh(handle) => {
                let (out_tx, out_rx) = mpsc::channel(STREAM_STDOUT_CHUNKS);
                let (done_tx, done_rx) = oneshot::channel();
                let stdin = match stdin {
                    Some(rx) => Stdin::Stream(rx),
                    None => Stdin::Bytes(Bytes::new()),
                };
                handle.submit(pump::Job::Exec(ExecJob {
                    command: cmd.to_owned(),
                    stdin,
                    sink: Sink::Stream {
                        stdout: out_tx,
                        done: done_tx,
                    },
                }))?;
                Ok(ExecStream {
                    stdout: out_rx,
                    end: StreamEnd {
                        host: self.name.clone(),
                        command: cmd.to_owned(),
                        done: done_rx,
                    },
                })
            }
        }
    }

    /// Writes `contents` to `path` with `mode`, atomically: parent directories are created, the bytes go
    /// to a temporary file next to `path` (never readable by others), which is then renamed over `path`.
    pub async fn upload(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), TransportError> {
        let cmd = quote::upload_command(path, mode).map_err(|e| self.invalid_path(path, e.0))?;
        let out = self.exec_text(&cmd, contents.to_vec()).await?;
        if out.success() {
            Ok(())
        } else {
            Err(TransportError::command(
                &self.name,
                &cmd,
                out.status,
                &out.stderr,
            ))
        }
    }

    /// The contents of `path`, or `None` when it does not exist.
    pub async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        let cmd = quote::read_command(path).map_err(|e| self.invalid_path(path, e.0))?;
        let out = self.exec_text(&cmd, Vec::new()).await?;
        match out.status {
            0 => Ok(Some(out.stdout)),
            // Only the snippet's own `exit` gives this status (`cat` fails with 1); what the login shell's
            // startup files print on stderr (a deploy user's `.bashrc` warning) does not make a file exist.
            quote::MISSING_STATUS if out.stdout.is_empty() => Ok(None),
            status => Err(TransportError::command(
                &self.name,
                &cmd,
                status,
                &out.stderr,
            )),
        }
    }

    /// The way to the host's engine (through the ssh tunnel), checked to lead somewhere. Made once per
    /// `Remote` and cloned afterwards.
    pub async fn docker_endpoint(&self) -> Result<DockerEndpoint, TransportError> {
        self.docker
            .get_or_try_init(|| self.docker_endpoint_at(DOCKER_SOCKET))
            .await
            .cloned()
    }

    /// Like [`Remote::docker_endpoint`], for an engine socket at another path on the host (tests use a
    /// missing one). Not cached.
    #[doc(hidden)]
    pub async fn docker_endpoint_at(&self, socket: &str) -> Result<DockerEndpoint, TransportError> {
        let (local_path, through_ssh) = match &self.backend {
            Backend::Local => {
                if !Path::new(socket).exists() {
                    return Err(TransportError::NoDocker {
                        host: self.name.clone(),
                        socket: socket.to_owned(),
                        reason: "does not exist".to_owned(),
                    });
                }
                (PathBuf::from(socket), false)
            }
            Backend::Ssh(handle) => {
                let (tx, rx) = oneshot::channel();
                handle.submit(pump::Job::Tunnel {
                    socket: socket.to_owned(),
                    reply: tx,
                })?;
                (rx.await.unwrap_or_else(|_| Err(self.gone()))?, true)
            }
        };
        Ok(DockerEndpoint::new(
            &self.name,
            socket,
            local_path,
            through_ssh,
        ))
    }

    /// The private directory holding the Docker tunnel socket (`None` for a local remote).
    #[doc(hidden)]
    pub fn tunnel_dir(&self) -> Option<&Path> {
        self.tunnel_dir.as_deref()
    }

    fn gone(&self) -> TransportError {
        TransportError::Disconnected {
            host: self.name.clone(),
            reason: "the connection closed before the work was done".to_owned(),
        }
    }

    fn invalid_path(&self, path: &str, reason: &str) -> TransportError {
        TransportError::Invalid {
            host: self.name.clone(),
            what: format!("path `{path}`"),
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn remote_is_send_and_sync() {
        assert_send_sync::<Remote>();
        assert_send_sync::<TransportError>();
    }

    /// A command that outlives the deadline is an error naming the host and the command, at the deadline.
    #[tokio::test]
    async fn a_command_past_its_deadline_fails_naming_the_host_and_the_command() {
        let remote = Remote::local().with_command_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = remote
            .exec(&crate::remote::raw("sleep 5"))
            .await
            .expect_err("a timeout");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "a command on `local` did not finish within 0s: `sleep 5`\nhelp: check the host (`uptime`, `docker ps`, free disk); if the step needs longer, raise `command_timeout` in the environment of stack.yaml"
        );
        let quick = remote.exec(&crate::remote::raw("echo ok")).await;
        assert_eq!(
            quick
                .map(|o| o.stdout_str().trim().to_owned())
                .ok()
                .as_deref(),
            Some("ok")
        );
    }

    #[test]
    fn target_names_user_host_and_port() {
        let target = Target {
            user: "root".to_owned(),
            host: "10.0.0.5".to_owned(),
            port: 22,
        };
        assert_eq!(target.name(), "root@10.0.0.5:22");
        assert_eq!(Remote::local().name(), "local");
    }
}
