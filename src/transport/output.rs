//! What a finished command left behind, and the handle of a command whose output streams.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::error::{TransportError, tail_lines};

/// Bytes of stderr a streaming command keeps (its tail).
pub(crate) const STREAM_STDERR_KEEP: usize = 64 * 1024;

/// Chunks of stdout a streaming command buffers before it stops reading from the host.
pub(crate) const STREAM_STDOUT_CHUNKS: usize = 16;

/// A finished command: its exit status and everything it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit status; a command killed by a signal reports `128 + signal`, as a shell does.
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The last `lines` lines of stderr as text.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail_lines(&self.stderr, lines)
    }
}

/// How a streaming command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStatus {
    pub status: i32,
    /// The last 64 KiB of stderr.
    pub stderr_tail: Vec<u8>,
}

/// The end of a streaming command, to be awaited once stdout is consumed (or not wanted).
///
/// Dropping it before the command ended aborts the command (see [`ExecStream`]).
#[derive(Debug)]
pub struct StreamEnd {
    pub(crate) host: String,
    pub(crate) command: String,
    pub(crate) done: oneshot::Receiver<Result<StreamStatus, TransportError>>,
}

impl StreamEnd {
    /// Waits for the command to end; any exit status is `Ok`.
    pub async fn wait(self) -> Result<StreamStatus, TransportError> {
        match self.done.await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Disconnected {
                host: self.host,
                reason: "the connection closed before the command ended".to_owned(),
            }),
        }
    }

    /// Waits for the command to end; a non-zero exit status is a [`TransportError::Command`].
    pub async fn success(self) -> Result<StreamStatus, TransportError> {
        let host = self.host.clone();
        let command = self.command.clone();
        let end = self.wait().await?;
        if end.status == 0 {
            Ok(end)
        } else {
            Err(TransportError::command(
                &host,
                &command,
                end.status,
                &end.stderr_tail,
            ))
        }
    }
}

/// A running command whose stdout arrives as chunks.
///
/// Read `stdout` until it yields `None`, then await [`ExecStream::finish`]. Dropping `stdout` early
/// discards the rest of the output but lets the command run to its end; dropping the whole `ExecStream`
/// (or its [`StreamEnd`]) aborts the command: its channel is closed, so it sees EOF on stdin and dies of
/// `SIGPIPE` on its next write (over SSH, a command that neither reads nor writes runs on until it ends).
#[derive(Debug)]
pub struct ExecStream {
    pub stdout: mpsc::Receiver<Bytes>,
    pub(crate) end: StreamEnd,
}

impl ExecStream {
    /// Separates stdout from the end, to consume both concurrently.
    pub fn split(self) -> (mpsc::Receiver<Bytes>, StreamEnd) {
        (self.stdout, self.end)
    }

    /// Discards any unread stdout and waits for the command to end; any exit status is `Ok`.
    pub async fn finish(self) -> Result<StreamStatus, TransportError> {
        drop(self.stdout);
        self.end.wait().await
    }

    /// Discards any unread stdout and waits for the command; a non-zero exit status is an error.
    pub async fn success(self) -> Result<StreamStatus, TransportError> {
        drop(self.stdout);
        self.end.success().await
    }
}
