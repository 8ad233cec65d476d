//! Reaching a host: one SSH session carrying exec, uploads and the Docker API tunnel.
//! (Interface placeholder; the full module replaces this file.)

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Other(String),
    #[error("command failed on `{host}`: {command} exited with {status}\n{stderr_tail}")]
    Command {
        host: String,
        command: String,
        status: i32,
        stderr_tail: String,
    },
}
pub struct Target {
    pub user: String,
    pub host: String,
    pub port: u16,
}
pub enum Auth {
    Key(PathBuf),
    Agent,
}
pub enum HostKeys {
    KnownHosts(PathBuf),
    Pinned(String),
}
#[derive(Debug, Clone)]
pub struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}
pub struct Remote {
    name: String,
}
impl Remote {
    pub fn connect(
        target: &Target,
        _auth: &Auth,
        _host_keys: &HostKeys,
        _timeout: Duration,
    ) -> Result<Remote, TransportError> {
        Ok(Remote {
            name: format!("{}@{}:{}", target.user, target.host, target.port),
        })
    }
    pub fn local() -> Remote {
        Remote {
            name: "local".into(),
        }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub async fn exec(&self, cmd: &str) -> Result<Output, TransportError> {
        Err(TransportError::Other(cmd.into()))
    }
    pub async fn exec_stdin(&self, cmd: &str, _stdin: Vec<u8>) -> Result<Output, TransportError> {
        Err(TransportError::Other(cmd.into()))
    }
    pub async fn run(&self, cmd: &str) -> Result<Output, TransportError> {
        Err(TransportError::Other(cmd.into()))
    }
    pub async fn upload(
        &self,
        path: &str,
        _contents: &[u8],
        _mode: u32,
    ) -> Result<(), TransportError> {
        Err(TransportError::Other(path.into()))
    }
    pub async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        Err(TransportError::Other(path.into()))
    }
    pub async fn docker(&self) -> Result<bollard::Docker, TransportError> {
        Err(TransportError::Other("docker".into()))
    }
}
/// Quotes a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
