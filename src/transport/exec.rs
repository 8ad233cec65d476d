//! One remote command on its own session channel, advanced a step at a time by the pump.

use std::io::{Read as _, Write as _};

use bytes::{Buf as _, Bytes};
use ssh2::{Channel, Session};
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{mpsc, oneshot};

use super::error::TransportError;
use super::output::{Output, STREAM_STDERR_KEEP, StreamStatus};
use super::pump::{Fault, io_fault, ssh_fault};

/// Bytes moved per direction per step, so that one busy channel cannot starve the others.
const STEP_BUDGET: usize = 256 * 1024;

/// Where a command's stdin comes from.
pub(crate) enum Stdin {
    Bytes(Bytes),
    Stream(mpsc::Receiver<Bytes>),
}

/// Where a command's results go.
pub(crate) enum Sink {
    /// Collect everything; reply once with the whole output.
    Collect(oneshot::Sender<Result<Output, TransportError>>),
    /// Stream stdout as chunks; reply at the end with the status and the stderr tail.
    Stream {
        stdout: mpsc::Sender<Bytes>,
        done: oneshot::Sender<Result<StreamStatus, TransportError>>,
    },
}

impl Sink {
    /// Whether whoever waits for the result has gone away (the command should then be aborted).
    fn abandoned(&self) -> bool {
        match self {
            Sink::Collect(tx) => tx.is_closed(),
            Sink::Stream { done, .. } => done.is_closed(),
        }
    }

    fn fail(self, err: TransportError) {
        match self {
            Sink::Collect(tx) => {
                let _ = tx.send(Err(err));
            }
            Sink::Stream { done, .. } => {
                let _ = done.send(Err(err));
            }
        }
    }
}

/// A command waiting for its channel.
pub(crate) struct ExecJob {
    pub(crate) command: String,
    pub(crate) stdin: Stdin,
    pub(crate) sink: Sink,
}

impl ExecJob {
    pub(crate) fn fail(self, err: TransportError) {
        self.sink.fail(err);
    }

    pub(crate) fn abandoned(&self) -> bool {
        self.sink.abandoned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The `exec` request is on its way.
    Starting,
    /// Moving stdin, stdout and stderr.
    Running,
    /// Closing the channel; the exit status is read once it is closed.
    Closing,
    Finished,
}

/// A command on an open channel.
pub(crate) struct ExecChannel {
    host: String,
    channel: Channel,
    command: String,
    phase: Phase,
    stdin_pending: Bytes,
    stdin_source: Option<mpsc::Receiver<Bytes>>,
    stdin_closed: bool,
    stdout: Vec<u8>,
    stdout_held: Option<Bytes>,
    stderr: Vec<u8>,
    sink: Option<Sink>,
}

impl ExecChannel {
    pub(crate) fn new(host: &str, channel: Channel, job: ExecJob) -> Self {
        let (stdin_pending, stdin_source) = match job.stdin {
            Stdin::Bytes(bytes) => (bytes, None),
            Stdin::Stream(rx) => (Bytes::new(), Some(rx)),
        };
        Self {
            host: host.to_owned(),
            channel,
            command: job.command,
            phase: Phase::Starting,
            stdin_pending,
            stdin_source,
            stdin_closed: false,
            stdout: Vec::new(),
            stdout_held: None,
            stderr: Vec::new(),
            sink: Some(job.sink),
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Whether stdin still has bytes to move (used to hold keepalives while the socket may be full).
    pub(crate) fn is_sending(&self) -> bool {
        self.phase == Phase::Running && !self.stdin_closed
    }

    /// Fails the command's caller (the connection is gone); the channel is left to the session.
    pub(crate) fn fail(&mut self, err: TransportError) {
        if let Some(sink) = self.sink.take() {
            sink.fail(err);
        }
        self.phase = Phase::Finished;
    }

    /// Advances the command; `Ok(true)` when anything moved, `Err(reason)` when the session is lost.
    pub(crate) fn step(&mut self, session: &Session, buf: &mut [u8]) -> Result<bool, String> {
        match self.phase {
            Phase::Starting => self.start(),
            Phase::Running => self.run(session, buf),
            Phase::Closing => self.close(),
            Phase::Finished => Ok(false),
        }
    }

    fn start(&mut self) -> Result<bool, String> {
        if self.sink.as_ref().is_none_or(Sink::abandoned) {
            self.sink = None;
            self.phase = Phase::Closing;
            return Ok(true);
        }
        match self.channel.exec(&self.command) {
            Ok(()) => {
                self.phase = Phase::Running;
                Ok(true)
            }
            Err(e) => match ssh_fault(&e) {
                Fault::WouldBlock => Ok(false),
                Fault::Lost(reason) => Err(reason),
                Fault::Channel(reason) => {
                    self.give_up(format!(
                        "the server refused to start the command ({reason})"
                    ));
                    Ok(true)
                }
            },
        }
    }

    fn run(&mut self, session: &Session, buf: &mut [u8]) -> Result<bool, String> {
        if self.sink.as_ref().is_none_or(Sink::abandoned) {
            // Nobody waits for this command any more: abort it.
            self.sink = None;
            self.phase = Phase::Closing;
            return Ok(true);
        }
        let mut progress = self.feed_stdin(session)?;
        progress |= self.drain(session, 0, buf)?;
        progress |= self.drain(session, 1, buf)?;
        if self.stdout_held.is_none() && self.channel.eof() {
            if !self.stdin_closed {
                // The remote side ended its output; if it also closed the channel, stdin cannot go anywhere.
                match self.channel.wait_close() {
                    Ok(()) => self.abandon_stdin(),
                    Err(e) => match ssh_fault(&e) {
                        Fault::WouldBlock => {}
                        Fault::Lost(reason) => return Err(reason),
                        Fault::Channel(_) => self.abandon_stdin(),
                    },
                }
            }
            if self.stdin_closed {
                self.phase = Phase::Closing;
                progress = true;
            }
        }
        Ok(progress)
    }

    fn abandon_stdin(&mut self) {
        self.stdin_closed = true;
        self.stdin_pending = Bytes::new();
        self.stdin_source = None;
    }

    fn feed_stdin(&mut self, session: &Session) -> Result<bool, String> {
        if self.stdin_closed {
            return Ok(false);
        }
        let mut progress = false;
        let mut budget = STEP_BUDGET;
        loop {
            if self.stdin_pending.is_empty() {
                if let Some(rx) = &mut self.stdin_source {
                    match rx.try_recv() {
                        Ok(chunk) => {
                            self.stdin_pending = chunk;
                            progress = true;
                            continue;
                        }
                        Err(TryRecvError::Empty) => return Ok(progress),
                        Err(TryRecvError::Disconnected) => self.stdin_source = None,
                    }
                }
                return match self.channel.send_eof() {
                    Ok(()) => {
                        self.stdin_closed = true;
                        Ok(true)
                    }
                    Err(e) => match ssh_fault(&e) {
                        Fault::WouldBlock => Ok(progress),
                        Fault::Lost(reason) => Err(reason),
                        Fault::Channel(_) => {
                            self.abandon_stdin();
                            Ok(true)
                        }
                    },
                };
            }
            if budget == 0 {
                return Ok(progress);
            }
            match self.channel.write(&self.stdin_pending) {
                Ok(0) => return Ok(progress),
                Ok(n) => {
                    let n = n.min(self.stdin_pending.len());
                    self.stdin_pending.advance(n);
                    budget = budget.saturating_sub(n);
                    progress = true;
                }
                Err(e) => match io_fault(session, &e) {
                    Fault::WouldBlock => return Ok(progress),
                    Fault::Lost(reason) => return Err(reason),
                    Fault::Channel(_) => {
                        // The command stopped reading (it exited or closed stdin): drop the rest.
                        self.abandon_stdin();
                        return Ok(true);
                    }
                },
            }
        }
    }

    /// Reads stream `id` (0 stdout, 1 stderr) until it would block or the step budget is spent.
    fn drain(&mut self, session: &Session, id: i32, buf: &mut [u8]) -> Result<bool, String> {
        let mut progress = false;
        let mut budget = STEP_BUDGET;
        let mut stream = self.channel.stream(id);
        while budget > 0 {
            if id == 0 && !self.deliver_held() {
                break;
            }
            match stream.read(buf) {
                Ok(0) => break,
                Ok(n) => {
                    progress = true;
                    budget = budget.saturating_sub(n);
                    if id == 0 {
                        self.take_stdout(&buf[..n]);
                    } else {
                        self.take_stderr(&buf[..n]);
                    }
                }
                Err(e) => match io_fault(session, &e) {
                    Fault::WouldBlock => break,
                    Fault::Lost(reason) => return Err(reason),
                    Fault::Channel(reason) => {
                        self.give_up(format!("reading the command's output failed ({reason})"));
                        return Ok(true);
                    }
                },
            }
        }
        Ok(progress)
    }

    fn take_stdout(&mut self, data: &[u8]) {
        match &self.sink {
            Some(Sink::Stream { .. }) => {
                self.stdout_held = Some(Bytes::copy_from_slice(data));
                self.deliver_held();
            }
            _ => self.stdout.extend_from_slice(data),
        }
    }

    /// Hands the held stdout chunk to the stream; `false` while the reader has no room for it.
    fn deliver_held(&mut self) -> bool {
        let Some(chunk) = self.stdout_held.take() else {
            return true;
        };
        let Some(Sink::Stream { stdout, .. }) = &self.sink else {
            return true;
        };
        match stdout.try_send(chunk) {
            Ok(()) | Err(TrySendError::Closed(_)) => true,
            Err(TrySendError::Full(chunk)) => {
                self.stdout_held = Some(chunk);
                false
            }
        }
    }

    fn take_stderr(&mut self, data: &[u8]) {
        self.stderr.extend_from_slice(data);
        if matches!(self.sink, Some(Sink::Stream { .. }))
            && self.stderr.len() > 2 * STREAM_STDERR_KEEP
        {
            let cut = self.stderr.len() - STREAM_STDERR_KEEP;
            self.stderr.drain(..cut);
        }
    }

    /// Fails the caller with a channel-level error and closes the channel.
    fn give_up(&mut self, reason: String) {
        if let Some(sink) = self.sink.take() {
            sink.fail(TransportError::Ssh {
                host: self.host.clone(),
                step: format!("running `{}`", self.command),
                reason,
            });
        }
        self.phase = Phase::Closing;
    }

    fn close(&mut self) -> Result<bool, String> {
        if self.sink.as_ref().is_some_and(|s| !s.abandoned()) {
            // Someone waits for the exit status, which the server sends after the end of the output and before
            // its own close. libssh2's `close` may return before that close arrives (it stops at the first
            // packet it reads, often another channel's): without this wait a failed command could read as 0.
            match self.channel.wait_close() {
                Ok(()) => {}
                Err(e) => match ssh_fault(&e) {
                    Fault::WouldBlock => return Ok(false),
                    Fault::Lost(reason) => return Err(reason),
                    Fault::Channel(_) => {}
                },
            }
        }
        match self.channel.close() {
            Ok(()) => {}
            Err(e) => match ssh_fault(&e) {
                Fault::WouldBlock => return Ok(false),
                Fault::Lost(reason) => return Err(reason),
                Fault::Channel(_) => {}
            },
        }
        self.phase = Phase::Finished;
        let status = self.status();
        match self.sink.take() {
            Some(Sink::Collect(tx)) => {
                let _ = tx.send(Ok(Output {
                    status,
                    stdout: std::mem::take(&mut self.stdout),
                    stderr: std::mem::take(&mut self.stderr),
                }));
            }
            Some(Sink::Stream { done, .. }) => {
                let keep = self.stderr.len().saturating_sub(STREAM_STDERR_KEEP);
                let _ = done.send(Ok(StreamStatus {
                    status,
                    stderr_tail: self.stderr.split_off(keep),
                }));
            }
            None => {}
        }
        Ok(true)
    }

    /// The exit status, or `128 + signal` for a command killed by a signal.
    fn status(&self) -> i32 {
        if let Ok(signal) = self.channel.exit_signal()
            && let Some(name) = signal.exit_signal
        {
            return 128 + signal_number(&name);
        }
        self.channel.exit_status().unwrap_or(-1)
    }
}

/// The usual Linux number of a signal named as SSH names it (`TERM`, `KILL`...); 127 when unknown.
fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 127,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_like_a_shell() {
        assert_eq!(signal_number("KILL"), 9);
        assert_eq!(signal_number("SIGTERM"), 15);
        assert_eq!(signal_number("WHAT"), 127);
    }
}
