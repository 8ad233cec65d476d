//! What can go wrong while building sandbox images or running a sandbox host.

use std::path::PathBuf;

/// An error from the `sandbox` module. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),

    #[error("building image `{image}` failed: {message}{tail}")]
    Build {
        image: String,
        message: String,
        /// The last lines of the build output, already prefixed with a newline when not empty.
        tail: String,
    },

    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}){tail}")]
    Command {
        command: String,
        status: String,
        /// The last lines of its output, already prefixed with a newline when not empty.
        tail: String,
    },

    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "invalid sandbox name `{0}`: use 1 to 63 characters out of a-z, 0-9, `-`, `_` and `.`, starting with a letter or digit"
    )]
    InvalidName(String),

    #[error("a container named `{0}` exists but is not a vldeploy sandbox; remove or rename it")]
    NotASandbox(String),

    #[error(
        "a network named `{0}` exists but is not a vldeploy sandbox cluster's; remove or rename it"
    )]
    NotAClusterNetwork(String),

    #[error("a sandbox cluster has 2 to {max} hosts, not {nodes}")]
    NodeCount { nodes: usize, max: usize },

    #[error("sandbox `{name}` has no address on network `{network}`")]
    NoAddress { name: String, network: String },

    #[error("sandbox `{name}` has no port published for {port}/tcp")]
    MissingPort { name: String, port: u16 },

    #[error("sandbox `{name}` stopped while starting{details}")]
    Exited { name: String, details: String },

    #[error("sandbox `{name}` was not ready after {seconds} s: {reason}{details}")]
    NotReady {
        name: String,
        seconds: u64,
        reason: String,
        /// The last lines of the container log and of the inner `/var/log/dockerd.log`.
        details: String,
    },
}

impl SandboxError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Formats the last `n` lines of `text` as an indented block that starts with a newline, or "" when empty.
pub(crate) fn tail_block(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(n);
    let mut out = String::new();
    for line in &lines[start..] {
        out.push_str("\n  | ");
        out.push_str(line);
    }
    out
}
