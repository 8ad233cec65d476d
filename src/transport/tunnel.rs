//! One local connection to the Docker tunnel, bridged to a `direct-streamlocal` channel to the host's socket.

use std::io::{self, Read as _, Write as _};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use ssh2::{Channel, Session};

use super::pump::{Fault, io_fault, ssh_fault};

/// Bytes buffered per direction.
const BUFFER: usize = 64 * 1024;

/// Bytes moved per direction per step, so that one busy connection cannot starve the others.
const STEP_BUDGET: usize = 256 * 1024;

/// A byte buffer with a read position.
struct Pending {
    data: Vec<u8>,
    at: usize,
}

impl Pending {
    fn new() -> Self {
        Self {
            data: vec![0; BUFFER],
            at: 0,
        }
    }
}

/// Copies bytes both ways between a local unix stream and a channel, with half-close handling:
/// EOF from the local side becomes the channel's EOF, and the channel's EOF shuts the local stream's
/// write half.
#[allow(clippy::struct_excessive_bools)] // one flag per half-close step reads better than a state enum here
pub(crate) struct TunnelConn {
    api: ApiLog,
    local: UnixStream,
    channel: Channel,
    up: Pending,
    up_len: usize,
    down: Pending,
    down_len: usize,
    local_eof: bool,
    eof_sent: bool,
    remote_eof: bool,
    local_shut: bool,
    closing: bool,
    finished: bool,
}

impl TunnelConn {
    pub(crate) fn new(host: &str, local: UnixStream, channel: Channel) -> Self {
        Self {
            api: ApiLog {
                host: host.to_owned(),
                waiting: None,
            },
            local,
            channel,
            up: Pending::new(),
            up_len: 0,
            down: Pending::new(),
            down_len: 0,
            local_eof: false,
            eof_sent: false,
            remote_eof: false,
            local_shut: false,
            closing: false,
            finished: false,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether bytes wait to go to the host (used to hold keepalives while the socket may be full).
    pub(crate) fn is_sending(&self) -> bool {
        !self.closing && self.up.at < self.up_len
    }

    /// Advances both directions; `Ok(true)` when anything moved, `Err(reason)` when the session is lost.
    pub(crate) fn step(&mut self, session: &Session) -> Result<bool, String> {
        if self.closing {
            return self.close();
        }
        let mut progress = self.upstream(session)?;
        progress |= self.downstream(session)?;
        if !self.closing && self.eof_sent && self.local_shut {
            self.closing = true;
            progress = true;
        }
        Ok(progress)
    }

    /// Local stream → channel.
    fn upstream(&mut self, session: &Session) -> Result<bool, String> {
        let mut progress = false;
        let mut budget = STEP_BUDGET;
        loop {
            if self.up.at == self.up_len && !self.local_eof {
                if budget == 0 {
                    break;
                }
                match self.local.read(&mut self.up.data) {
                    Ok(0) => {
                        self.local_eof = true;
                        progress = true;
                    }
                    Ok(n) => {
                        self.api.request(&self.up.data[..n]);
                        self.up.at = 0;
                        self.up_len = n;
                        budget = budget.saturating_sub(n);
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.closing = true;
                        return Ok(true);
                    }
                }
            }
            if self.up.at < self.up_len {
                match self.channel.write(&self.up.data[self.up.at..self.up_len]) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.up.at += n;
                        progress = true;
                        continue;
                    }
                    Err(e) => match io_fault(session, &e) {
                        Fault::WouldBlock => break,
                        Fault::Lost(reason) => return Err(reason),
                        Fault::Channel(_) => {
                            self.closing = true;
                            return Ok(true);
                        }
                    },
                }
            }
            if self.local_eof && !self.eof_sent {
                match self.channel.send_eof() {
                    Ok(()) => {
                        self.eof_sent = true;
                        progress = true;
                    }
                    Err(e) => match ssh_fault(&e) {
                        Fault::WouldBlock => {}
                        Fault::Lost(reason) => return Err(reason),
                        Fault::Channel(_) => {
                            self.closing = true;
                            return Ok(true);
                        }
                    },
                }
            }
            break;
        }
        Ok(progress)
    }

    /// Channel → local stream.
    fn downstream(&mut self, session: &Session) -> Result<bool, String> {
        let mut progress = false;
        let mut budget = STEP_BUDGET;
        loop {
            if self.down.at == self.down_len && !self.remote_eof {
                if budget == 0 {
                    break;
                }
                match self.channel.read(&mut self.down.data) {
                    Ok(0) => {
                        if self.channel.eof() {
                            self.remote_eof = true;
                            progress = true;
                        } else {
                            break;
                        }
                    }
                    Ok(n) => {
                        self.api.response(&self.down.data[..n]);
                        self.down.at = 0;
                        self.down_len = n;
                        budget = budget.saturating_sub(n);
                        progress = true;
                    }
                    Err(e) => match io_fault(session, &e) {
                        Fault::WouldBlock => break,
                        Fault::Lost(reason) => return Err(reason),
                        Fault::Channel(_) => {
                            self.closing = true;
                            return Ok(true);
                        }
                    },
                }
            }
            if self.down.at < self.down_len {
                match self
                    .local
                    .write(&self.down.data[self.down.at..self.down_len])
                {
                    Ok(0) => break,
                    Ok(n) => {
                        self.down.at += n;
                        progress = true;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.closing = true;
                        return Ok(true);
                    }
                }
            }
            if self.remote_eof && !self.local_shut {
                let _ = self.local.shutdown(Shutdown::Write);
                self.local_shut = true;
                progress = true;
            }
            break;
        }
        Ok(progress)
    }

    fn close(&mut self) -> Result<bool, String> {
        match self.channel.close() {
            Ok(()) => {}
            Err(e) => match ssh_fault(&e) {
                Fault::WouldBlock => return Ok(false),
                Fault::Lost(reason) => return Err(reason),
                Fault::Channel(_) => {}
            },
        }
        let _ = self.local.shutdown(Shutdown::Both);
        self.finished = true;
        Ok(true)
    }
}

/// The Docker API calls seen on one tunnel connection, logged at debug: method, path, status and the time to
/// the response's status line. HTTP/1.1 without pipelining sends a request only after the previous response,
/// so a request line begins the first chunk sent while no request waits; anything else (bodies, streams
/// of an upgraded connection) is not a request line and is passed over.
struct ApiLog {
    host: String,
    /// `(method, path, sent at)` of the request waiting for its response.
    waiting: Option<(String, String, Instant)>,
}

impl ApiLog {
    fn request(&mut self, chunk: &[u8]) {
        if self.waiting.is_none()
            && let Some((method, path)) = request_line(chunk)
        {
            self.waiting = Some((method, path, Instant::now()));
        }
    }

    fn response(&mut self, chunk: &[u8]) {
        let Some(status) = status_line(chunk) else {
            return;
        };
        if let Some((method, path, sent)) = self.waiting.take() {
            let elapsed_ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::debug!(host = %self.host, status, elapsed_ms, "docker api: {method} {path}");
        }
    }
}

/// `GET /v1.41/containers/json?all=true HTTP/1.1` → `("GET", "/v1.41/containers/json?all=true")`.
fn request_line(chunk: &[u8]) -> Option<(String, String)> {
    let line = first_line(chunk)?;
    let mut parts = line.split(' ');
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    let is_method = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    (is_method && path.starts_with('/') && version.starts_with("HTTP/1.") && parts.next().is_none())
        .then(|| {
            let path: String = path.chars().take(200).collect();
            (method.to_owned(), path)
        })
}

/// `HTTP/1.1 200 OK` → 200.
fn status_line(chunk: &[u8]) -> Option<u16> {
    let line = first_line(chunk)?;
    let rest = line.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}

fn first_line(chunk: &[u8]) -> Option<&str> {
    let end = chunk.windows(2).take(4096).position(|w| w == b"\r\n")?;
    std::str::from_utf8(&chunk[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_status_lines_are_read_and_anything_else_passed_over() {
        assert_eq!(
            request_line(b"GET /v1.41/containers/json?all=true HTTP/1.1\r\nHost: docker\r\n\r\n"),
            Some(("GET".into(), "/v1.41/containers/json?all=true".into()))
        );
        assert_eq!(
            request_line(b"POST /v1.41/images/load HTTP/1.1\r\n"),
            Some(("POST".into(), "/v1.41/images/load".into()))
        );
        assert_eq!(request_line(b"\x1f\x8b tar bytes\r\n"), None);
        assert_eq!(request_line(b"GET /no-end-of-line HTTP/1.1"), None);
        assert_eq!(request_line(b"get / HTTP/1.1\r\n"), None);
        assert_eq!(status_line(b"HTTP/1.1 404 Not Found\r\n"), Some(404));
        assert_eq!(status_line(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(status_line(b"{\"message\":\"HTTP/1.1 200\"}\r\n"), None);
    }
}
