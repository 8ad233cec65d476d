//! The TCP connection under an SSH session: kept alive by the kernel, declared dead when the host stops
//! acknowledging, and the one record of why it ended, for every caller that was waiting on it.

use std::io;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// How long data sent to the host may stay unacknowledged, or an idle connection unanswered by TCP
/// keepalive probes, before the connection counts as lost.
pub const ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Idle time before the first keepalive probe, and between probes.
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Makes the kernel notice a host that has gone away: keepalive probes on an idle connection, and a user
/// timeout that fails the socket when sent data goes unacknowledged for `alive`.
pub(crate) fn watch(tcp: &TcpStream, alive: Duration) -> io::Result<()> {
    let sock = SockRef::from(tcp);
    let probes = u32::try_from(alive.as_secs() / PROBE_EVERY.as_secs().max(1)).unwrap_or(4);
    sock.set_tcp_keepalive(
        &TcpKeepalive::new()
            .with_time(PROBE_EVERY)
            .with_interval(PROBE_EVERY)
            .with_retries(probes.max(1)),
    )?;
    sock.set_tcp_user_timeout(Some(alive))
}

/// Why a connection ended, shared by the pump (which finds out) and the engine (whose requests through the
/// Docker tunnel then fail with a transport error that says nothing of the cause).
#[derive(Debug, Clone, Default)]
pub struct Link {
    lost: Arc<Mutex<Option<String>>>,
}

impl Link {
    /// The reason the connection was lost, once it was.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    pub(crate) fn set_lost(&self, reason: &str) {
        if let Ok(mut l) = self.lost.lock() {
            l.get_or_insert_with(|| reason.to_owned());
        }
    }
}

/// A reason people can act on for a session that failed after the host had been `silent` (libssh2 itself
/// reports only "transport read" or "unable to send", whatever the cause).
pub(crate) fn reason(libssh2: &str, silent: Duration, alive: Duration) -> String {
    if silent + Duration::from_secs(2) >= alive {
        format!(
            "the host stopped answering: nothing came back for {}s (it may be down, or the network to it cut)",
            silent.as_secs()
        )
    } else if ["read", "disconnect", "send", "drain", "socket"]
        .iter()
        .any(|word| libssh2.to_ascii_lowercase().contains(word))
    {
        format!(
            "the host closed the connection (sshd stopped, restarted or cut it; libssh2: {libssh2})"
        )
    } else {
        libssh2.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_sticks() {
        let link = Link::default();
        assert_eq!(link.lost(), None);
        link.set_lost("a");
        link.set_lost("b");
        assert_eq!(link.clone().lost().as_deref(), Some("a"));
    }

    #[test]
    fn a_socket_gets_keepalive_and_a_user_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        watch(&tcp, Duration::from_secs(20)).unwrap();
        let sock = SockRef::from(&tcp);
        assert!(sock.keepalive().unwrap());
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(20))
        );
        assert_eq!(sock.tcp_keepalive_time().unwrap(), PROBE_EVERY);
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), 4);
    }

    #[test]
    fn reasons_say_what_happened() {
        let s = Duration::from_secs;
        assert_eq!(
            reason("transport read", s(1), ALIVE_TIMEOUT),
            "the host closed the connection (sshd stopped, restarted or cut it; libssh2: transport read)"
        );
        assert_eq!(
            reason("transport read", s(21), ALIVE_TIMEOUT),
            "the host stopped answering: nothing came back for 21s (it may be down, or the network to it cut)"
        );
        // What libssh2 says when the socket fails while a channel writes (the data read before the write).
        assert_eq!(
            reason("failure while draining incoming flow", s(0), ALIVE_TIMEOUT),
            "the host closed the connection (sshd stopped, restarted or cut it; libssh2: failure while draining incoming flow)"
        );
        assert_eq!(reason("bad mac", s(0), ALIVE_TIMEOUT), "bad mac");
    }
}
