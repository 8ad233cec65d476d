//! The pump: one thread that owns the SSH session in non-blocking mode and moves every channel on it.
//!
//! libssh2 serialises every call on a session, so a blocking read on one channel would stall all the
//! others. Instead one thread owns the session, switched to non-blocking mode, and loops over its work:
//! new jobs, the one channel being opened (libssh2 opens one at a time), every running command and every
//! Docker tunnel connection. Each gets a bounded step; when a whole round moved nothing, the thread waits
//! on its job queue with a backoff from 0.2 ms to 5 ms (1 s when nothing at all is under way).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ssh2::{Channel, ErrorCode, Session};
use tempfile::TempDir;
use tokio::sync::oneshot;

use super::error::TransportError;
use super::exec::{ExecChannel, ExecJob};
use super::link::{self, Link};
use super::tunnel::TunnelConn;

const BACKOFF_MIN: Duration = Duration::from_micros(200);
const BACKOFF_MAX: Duration = Duration::from_millis(5);
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Keepalives are only sent after this long without outgoing data, so one never lands in a full socket.
const KEEPALIVE_QUIET: Duration = Duration::from_secs(2);

/// Session channels open at once; OpenSSH allows 10 by default (`MaxSessions`). Lowered on refusal.
const MAX_SESSIONS: usize = 8;

const LIBSSH2_ERROR_EAGAIN: i32 = -37;

/// libssh2 errors after which the session is unusable.
const FATAL: &[i32] = &[
    -1,  // SOCKET_NONE
    -2,  // BANNER_RECV
    -3,  // BANNER_SEND
    -4,  // INVALID_MAC
    -5,  // KEX_FAILURE
    -7,  // SOCKET_SEND
    -8,  // KEY_EXCHANGE_FAILURE
    -9,  // TIMEOUT
    -12, // DECRYPT
    -13, // SOCKET_DISCONNECT
    -14, // PROTO
    -30, // SOCKET_TIMEOUT
    -43, // SOCKET_RECV
    -44, // ENCRYPT
    -45, // BAD_SOCKET
    -52, // MAC_FAILURE
];

/// How an ssh2 call failed.
pub(crate) enum Fault {
    /// Try again later.
    WouldBlock,
    /// This channel failed; the session is fine.
    Channel(String),
    /// The session is gone.
    Lost(String),
}

pub(crate) fn ssh_fault(e: &ssh2::Error) -> Fault {
    match e.code() {
        ErrorCode::Session(LIBSSH2_ERROR_EAGAIN) => Fault::WouldBlock,
        ErrorCode::Session(code) if FATAL.contains(&code) => {
            Fault::Lost(e.message().to_lowercase())
        }
        _ => Fault::Channel(e.message().to_owned()),
    }
}

/// Classifies an I/O error from a channel read or write, looking at the session's last error.
pub(crate) fn io_fault(session: &Session, e: &io::Error) -> Fault {
    if e.kind() == io::ErrorKind::WouldBlock {
        return Fault::WouldBlock;
    }
    match ssh2::Error::last_session_error(session)
        .as_ref()
        .map(ssh_fault)
    {
        Some(Fault::Lost(reason)) => Fault::Lost(reason),
        _ => Fault::Channel(e.to_string()),
    }
}

/// Work for the pump.
pub(crate) enum Job {
    Exec(ExecJob),
    /// Forward a local socket to `socket` on the host; first checks that the host's socket accepts.
    Tunnel {
        socket: String,
        reply: oneshot::Sender<Result<PathBuf, TransportError>>,
    },
    /// A connection accepted on a tunnel's local socket.
    Accepted {
        local: UnixStream,
        socket: String,
    },
    Shutdown,
}

/// A channel waiting to be opened, or being opened.
enum Opening {
    Exec(ExecJob),
    Tunnel {
        local: UnixStream,
        socket: String,
    },
    Probe {
        socket: String,
        reply: oneshot::Sender<Result<PathBuf, TransportError>>,
    },
}

impl Opening {
    fn fail(self, err: TransportError) {
        match self {
            Opening::Exec(job) => job.fail(err),
            Opening::Probe { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Opening::Tunnel { .. } => {}
        }
    }
}

/// The caller's side of the pump: submit jobs; dropping it stops the thread and removes the socket dir.
pub(crate) struct Handle {
    host: String,
    jobs: mpsc::Sender<Job>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    /// Starts the pump thread on an authenticated session (switched to non-blocking mode here).
    pub(crate) fn spawn(
        session: Session,
        host: &str,
        dir: TempDir,
        link: Link,
    ) -> Result<Handle, TransportError> {
        let (tx, rx) = mpsc::channel();
        session.set_blocking(false);
        let pump = Pump {
            session,
            host: host.to_owned(),
            jobs: rx,
            jobs_tx: tx.clone(),
            queue: VecDeque::new(),
            opening: None,
            execs: Vec::new(),
            tunnels: Vec::new(),
            closing: Vec::new(),
            listeners: HashMap::new(),
            stop_acceptors: Arc::new(AtomicBool::new(false)),
            dir,
            max_sessions: MAX_SESSIONS,
            lost: None,
            last_send: Instant::now(),
            last_moved: Instant::now(),
            link,
        };
        let thread = std::thread::Builder::new()
            .name("vldeploy-ssh".to_owned())
            .spawn(move || pump.run())
            .map_err(|e| TransportError::Local {
                step: "starting the ssh thread".to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Handle {
            host: host.to_owned(),
            jobs: tx,
            thread: Some(thread),
        })
    }

    pub(crate) fn submit(&self, job: Job) -> Result<(), TransportError> {
        self.jobs
            .send(job)
            .map_err(|_| TransportError::Disconnected {
                host: self.host.clone(),
                reason: "the connection is closed".to_owned(),
            })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.jobs.send(Job::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Pump {
    session: Session,
    host: String,
    jobs: mpsc::Receiver<Job>,
    jobs_tx: mpsc::Sender<Job>,
    queue: VecDeque<Opening>,
    opening: Option<Opening>,
    execs: Vec<ExecChannel>,
    tunnels: Vec<TunnelConn>,
    closing: Vec<Channel>,
    /// Host socket path → local socket path.
    listeners: HashMap<String, PathBuf>,
    stop_acceptors: Arc<AtomicBool>,
    dir: TempDir,
    max_sessions: usize,
    lost: Option<String>,
    last_send: Instant,
    /// When a round last moved anything: how long the host had been silent when the session failed.
    last_moved: Instant,
    link: Link,
}

impl Pump {
    fn run(mut self) {
        let mut buf = vec![0u8; 32 * 1024];
        let mut backoff = BACKOFF_MIN;
        loop {
            let mut progress = false;
            loop {
                match self.jobs.try_recv() {
                    Ok(job) => {
                        if !self.take(job) {
                            return self.shutdown();
                        }
                        progress = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.shutdown(),
                }
            }
            if self.lost.is_none() {
                match self.round(&mut buf) {
                    Ok(moved) => {
                        if moved {
                            self.last_moved = Instant::now();
                        }
                        progress |= moved;
                    }
                    Err(reason) => {
                        let reason =
                            link::reason(&reason, self.last_moved.elapsed(), link::ALIVE_TIMEOUT);
                        self.lose(&reason);
                        progress = true;
                    }
                }
            }
            if progress {
                backoff = BACKOFF_MIN;
                continue;
            }
            let wait = if self.is_idle() { IDLE_WAIT } else { backoff };
            backoff = (backoff * 2).min(BACKOFF_MAX);
            match self.jobs.recv_timeout(wait) {
                Ok(job) => {
                    if !self.take(job) {
                        return self.shutdown();
                    }
                    backoff = BACKOFF_MIN;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.shutdown(),
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.opening.is_none()
            && self.queue.is_empty()
            && self.execs.is_empty()
            && self.tunnels.is_empty()
            && self.closing.is_empty()
    }

    /// Accepts a job; `false` for shutdown.
    fn take(&mut self, job: Job) -> bool {
        let opening = match job {
            Job::Shutdown => return false,
            Job::Exec(job) => Opening::Exec(job),
            Job::Tunnel { socket, reply } => Opening::Probe { socket, reply },
            Job::Accepted { local, socket } => Opening::Tunnel { local, socket },
        };
        match &self.lost {
            Some(reason) => opening.fail(TransportError::Disconnected {
                host: self.host.clone(),
                reason: reason.clone(),
            }),
            None => self.queue.push_back(opening),
        }
        true
    }

    /// One pass over all work; `Err(reason)` when the session is lost.
    fn round(&mut self, buf: &mut [u8]) -> Result<bool, String> {
        let mut progress = self.open_next()?;
        for exec in &mut self.execs {
            progress |= exec.step(&self.session, buf)?;
        }
        self.execs.retain(|e| !e.is_finished());
        for tunnel in &mut self.tunnels {
            progress |= tunnel.step(&self.session)?;
        }
        self.tunnels.retain(|t| !t.is_finished());
        let mut still_closing = Vec::new();
        for mut channel in std::mem::take(&mut self.closing) {
            match channel.close() {
                Ok(()) => progress = true,
                Err(e) => match ssh_fault(&e) {
                    Fault::WouldBlock => still_closing.push(channel),
                    Fault::Lost(reason) => return Err(reason),
                    Fault::Channel(_) => progress = true,
                },
            }
        }
        self.closing = still_closing;
        self.keepalive()?;
        Ok(progress)
    }

    fn keepalive(&mut self) -> Result<(), String> {
        let sending = self.opening.is_some()
            || self.execs.iter().any(ExecChannel::is_sending)
            || self.tunnels.iter().any(TunnelConn::is_sending);
        if sending {
            self.last_send = Instant::now();
            return Ok(());
        }
        if self.last_send.elapsed() < KEEPALIVE_QUIET {
            return Ok(());
        }
        match self.session.keepalive_send() {
            Ok(_) => Ok(()),
            Err(e) => match ssh_fault(&e) {
                Fault::Lost(reason) => Err(reason),
                Fault::WouldBlock | Fault::Channel(_) => Ok(()),
            },
        }
    }

    /// Advances the one channel open libssh2 allows at a time.
    fn open_next(&mut self) -> Result<bool, String> {
        if self.opening.is_none() {
            // Commands whose callers gave up before they started are dropped unstarted.
            self.queue
                .retain(|o| !matches!(o, Opening::Exec(job) if job.abandoned()));
            let sessions = self.execs.len();
            let max = self.max_sessions;
            let next = self
                .queue
                .iter()
                .position(|o| !matches!(o, Opening::Exec(_)) || sessions < max);
            match next.and_then(|i| self.queue.remove(i)) {
                Some(opening) => self.opening = Some(opening),
                None => return Ok(false),
            }
        }
        let Some(opening) = self.opening.take() else {
            return Ok(false);
        };
        let result = match &opening {
            Opening::Exec(_) => self.session.channel_session(),
            Opening::Tunnel { socket, .. } | Opening::Probe { socket, .. } => {
                self.session.channel_direct_streamlocal(socket, None)
            }
        };
        let channel = match result {
            Ok(channel) => channel,
            Err(e) => {
                match ssh_fault(&e) {
                    Fault::WouldBlock => {
                        self.opening = Some(opening);
                        return Ok(false);
                    }
                    Fault::Lost(reason) => {
                        self.opening = Some(opening);
                        return Err(reason);
                    }
                    Fault::Channel(reason) => self.refused(opening, reason),
                }
                return Ok(true);
            }
        };
        match opening {
            Opening::Exec(job) => self.execs.push(ExecChannel::new(&self.host, channel, job)),
            Opening::Tunnel { local, .. } => {
                if local.set_nonblocking(true).is_ok() {
                    self.tunnels
                        .push(TunnelConn::new(&self.host, local, channel));
                } else {
                    self.closing.push(channel);
                }
            }
            Opening::Probe { socket, reply } => {
                self.closing.push(channel);
                let _ = reply.send(self.listen(&socket));
            }
        }
        Ok(true)
    }

    /// The server refused to open a channel.
    fn refused(&mut self, opening: Opening, reason: String) {
        match opening {
            Opening::Exec(job) if !self.execs.is_empty() => {
                // Most likely the server's `MaxSessions`: run fewer commands at once and retry this one.
                self.max_sessions = self.execs.len();
                tracing::debug!(host = %self.host, max = self.max_sessions, "session channel refused, retrying");
                self.queue.push_front(Opening::Exec(job));
            }
            Opening::Exec(job) => job.fail(TransportError::Ssh {
                host: self.host.clone(),
                step: "opening a session channel".to_owned(),
                reason,
            }),
            Opening::Tunnel { socket, .. } => {
                tracing::warn!(host = %self.host, %socket, %reason, "docker tunnel connection refused by the host");
            }
            Opening::Probe { socket, reply } => {
                let reason = format!(
                    "does not accept connections through ssh ({})",
                    reason.to_lowercase()
                );
                let _ = reply.send(Err(TransportError::NoDocker {
                    host: self.host.clone(),
                    socket,
                    reason,
                }));
            }
        }
    }

    /// The local socket that forwards to `socket` on the host, created on first use.
    fn listen(&mut self, socket: &str) -> Result<PathBuf, TransportError> {
        if let Some(path) = self.listeners.get(socket) {
            return Ok(path.clone());
        }
        let path = self
            .dir
            .path()
            .join(format!("docker-{}.sock", self.listeners.len()));
        let local_err = |e: io::Error| TransportError::Local {
            step: format!("creating the docker tunnel socket `{}`", path.display()),
            reason: e.to_string(),
        };
        let listener = UnixListener::bind(&path).map_err(local_err)?;
        let jobs = self.jobs_tx.clone();
        let stop = Arc::clone(&self.stop_acceptors);
        let remote = socket.to_owned();
        std::thread::Builder::new()
            .name("vldeploy-tunnel".to_owned())
            .spawn(move || accept_loop(&listener, &remote, &jobs, &stop))
            .map_err(local_err)?;
        self.listeners.insert(socket.to_owned(), path.clone());
        Ok(path)
    }

    /// The session is gone: fail everything in flight and everything that comes later.
    fn lose(&mut self, reason: &str) {
        tracing::warn!(host = %self.host, %reason, "ssh connection lost");
        self.link.set_lost(reason);
        self.fail_all(reason);
        self.execs.clear();
        self.tunnels.clear();
        self.closing.clear();
        self.lost = Some(reason.to_owned());
    }

    fn fail_all(&mut self, reason: &str) {
        let err = || TransportError::Disconnected {
            host: self.host.clone(),
            reason: reason.to_owned(),
        };
        for exec in &mut self.execs {
            exec.fail(err());
        }
        if let Some(opening) = self.opening.take() {
            opening.fail(err());
        }
        for opening in self.queue.drain(..) {
            opening.fail(err());
        }
    }

    fn shutdown(mut self) {
        self.fail_all("the connection was closed");
        self.stop_acceptors.store(true, Ordering::SeqCst);
        for path in self.listeners.values() {
            // Wakes the acceptor blocked in `accept` so that it sees the stop flag.
            let _ = UnixStream::connect(path);
        }
        // Say goodbye first: the server then drops the connection, so freeing channels that are still
        // open (a command that runs on) does not wait for their close. Blocking calls are bounded.
        self.session.set_blocking(true);
        self.session.set_timeout(1000);
        if self.lost.is_none() {
            let _ = self
                .session
                .disconnect(None, "vldeploy closed the connection", None);
        }
        self.execs.clear();
        self.tunnels.clear();
        self.closing.clear();
    }
}

/// Hands connections accepted on a tunnel socket to the pump, until told to stop.
fn accept_loop(listener: &UnixListener, socket: &str, jobs: &mpsc::Sender<Job>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(local) => {
                let job = Job::Accepted {
                    local,
                    socket: socket.to_owned(),
                };
                if jobs.send(job).is_err() {
                    break;
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
