//! The local machine as a host: commands through `sh -c`, Docker through the local engine socket.

use std::process::{ExitStatus, Stdio};

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use super::error::TransportError;
use super::output::{
    ExecStream, Output, STREAM_STDERR_KEEP, STREAM_STDOUT_CHUNKS, StreamEnd, StreamStatus,
};

/// How local hosts are named in messages.
pub(crate) const NAME: &str = "local";

fn spawn(command: &str) -> Result<Child, TransportError> {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| TransportError::Local {
            step: format!("starting `sh -c {command}`"),
            reason: e.to_string(),
        })
}

/// The exit status as a shell reports it: the code, or `128 + signal`.
fn status_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

fn wait_error(command: &str, e: &std::io::Error) -> TransportError {
    TransportError::Local {
        step: format!("running `{command}`"),
        reason: e.to_string(),
    }
}

pub(crate) async fn exec(command: &str, stdin: Vec<u8>) -> Result<Output, TransportError> {
    let mut child = spawn(command)?;
    if let Some(mut pipe) = child.stdin.take() {
        // A command that does not read its stdin makes this fail with a broken pipe: that is fine.
        tokio::spawn(async move {
            let _ = pipe.write_all(&stdin).await;
        });
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| wait_error(command, &e))?;
    Ok(Output {
        status: status_code(out.status),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Starts `command`; needs a running tokio runtime.
pub(crate) fn exec_stream(
    command: &str,
    stdin: Option<mpsc::Receiver<Bytes>>,
) -> Result<ExecStream, TransportError> {
    let mut child = spawn(command)?;
    let stdin_pipe = child.stdin.take();
    let mut stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take();

    tokio::spawn(async move {
        let (Some(mut pipe), Some(mut rx)) = (stdin_pipe, stdin) else {
            return;
        };
        while let Some(chunk) = rx.recv().await {
            if pipe.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });

    let (out_tx, out_rx) = mpsc::channel(STREAM_STDOUT_CHUNKS);
    let stdout_task = tokio::spawn(async move {
        let Some(pipe) = stdout_pipe.as_mut() else {
            return;
        };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // A dropped reader means "discard the rest": keep draining so the command can finish.
                Ok(n) => {
                    let _ = out_tx.send(Bytes::copy_from_slice(&buf[..n])).await;
                }
            }
        }
    });
    let stderr_task = tokio::spawn(async move {
        let mut tail = Vec::new();
        let Some(pipe) = stderr_pipe.as_mut() else {
            return tail;
        };
        let mut buf = vec![0u8; 8 * 1024];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 2 * STREAM_STDERR_KEEP {
                        let cut = tail.len() - STREAM_STDERR_KEEP;
                        tail.drain(..cut);
                    }
                }
            }
        }
        let keep = tail.len().saturating_sub(STREAM_STDERR_KEEP);
        tail.split_off(keep)
    });

    let (done_tx, done_rx) = oneshot::channel();
    let shown = command.to_owned();
    tokio::spawn(async move {
        let mut done_tx = done_tx;
        let status = tokio::select! {
            status = child.wait() => status,
            () = done_tx.closed() => {
                // Nobody waits for the command any more: abort it.
                let _ = child.kill().await;
                return;
            }
        };
        let _ = stdout_task.await;
        let stderr_tail = stderr_task.await.unwrap_or_default();
        let result = status
            .map(|s| StreamStatus {
                status: status_code(s),
                stderr_tail,
            })
            .map_err(|e| wait_error(&shown, &e));
        let _ = done_tx.send(result);
    });

    Ok(ExecStream {
        stdout: out_rx,
        end: StreamEnd {
            host: NAME.to_owned(),
            command: command.to_owned(),
            done: done_rx,
        },
    })
}
