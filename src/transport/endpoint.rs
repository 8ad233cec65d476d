//! The way to a host's Docker engine: a local unix socket whose every connection reaches the engine.

use std::path::{Path, PathBuf};

use super::TransportError;

/// A local socket that carries the Docker API to one host's engine: the engine's own socket on this machine,
/// or the tunnel socket whose connections become SSH channels to the host's `/var/run/docker.sock`.
/// The engine module connects its client here; nothing else speaks the Docker API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEndpoint {
    host: String,
    /// The engine's socket on the host, for messages.
    socket: String,
    local_path: PathBuf,
    through_ssh: bool,
}

impl DockerEndpoint {
    pub(crate) fn new(host: &str, socket: &str, local_path: PathBuf, through_ssh: bool) -> Self {
        Self {
            host: host.to_owned(),
            socket: socket.to_owned(),
            local_path,
            through_ssh,
        }
    }

    /// The host's name, as in every message.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The local socket to connect to.
    pub fn local_path(&self) -> &Path {
        &self.local_path
    }

    /// The error for an engine that was reached but cannot be used (`reason` says why).
    pub fn unusable(&self, reason: &str) -> TransportError {
        TransportError::NoDocker {
            host: self.host.clone(),
            socket: self.socket.clone(),
            reason: format!("cannot be used ({reason})"),
        }
    }

    /// The error for an engine that did not answer the first request (`reason` says why).
    pub fn silent(&self, reason: &str) -> TransportError {
        if self.through_ssh {
            TransportError::Docker {
                host: self.host.clone(),
                reason: reason.to_owned(),
            }
        } else {
            TransportError::NoDocker {
                host: self.host.clone(),
                socket: self.socket.clone(),
                reason: format!("does not answer ({reason})"),
            }
        }
    }
}
