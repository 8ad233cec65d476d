//! One local connection to the Docker tunnel, bridged to a `direct-streamlocal` channel to the host's socket.

use std::io::{self, Read as _, Write as _};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

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
    pub(crate) fn new(local: UnixStream, channel: Channel) -> Self {
        Self {
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
