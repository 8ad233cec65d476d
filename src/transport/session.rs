//! Opening an SSH session: TCP connect, handshake, host key verification and authentication (blocking).

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2::{ErrorCode, Session};

use super::error::TransportError;
use super::host_key;
use super::{Auth, HostKeys, Target};

/// Seconds between keepalive messages on an otherwise quiet connection.
pub(crate) const KEEPALIVE_SECS: u32 = 15;

const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
const LIBSSH2_ERROR_SOCKET_DISCONNECT: i32 = -13;
const LIBSSH2_ERROR_FILE: i32 = -16;
const LIBSSH2_ERROR_KEYFILE_AUTH_FAILED: i32 = -48;

/// `~/x` with `$HOME` put in; other paths unchanged.
pub(crate) fn expand_home(path: &Path) -> PathBuf {
    let Ok(rest) = path.strip_prefix("~") else {
        return path.to_path_buf();
    };
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(rest),
        None => path.to_path_buf(),
    }
}

/// Connects to `target`, verifies its host key and authenticates; returns a blocking-mode session.
pub(crate) fn open(
    target: &Target,
    auth: &Auth,
    host_keys: &HostKeys,
    timeout: Duration,
) -> Result<Session, TransportError> {
    let name = target.name();
    for (what, value) in [("host name", &target.host), ("user name", &target.user)] {
        if value.is_empty() || value.contains('\0') || value.contains(char::is_whitespace) {
            return Err(TransportError::Invalid {
                host: name,
                what: what.to_owned(),
                reason: "it must be non-empty and contain no spaces or NUL bytes".to_owned(),
            });
        }
    }
    if let Auth::Key(path) = auth {
        let full = expand_home(path);
        if !full.is_file() {
            return Err(TransportError::KeyNotFound {
                path: path.display().to_string(),
            });
        }
    }

    let tcp = connect_tcp(target, &name, timeout)?;
    if let Err(e) = super::link::watch(&tcp, super::link::ALIVE_TIMEOUT) {
        tracing::debug!(host = %name, error = %e, "tcp keepalive and user timeout not set");
    }
    let mut session = Session::new().map_err(|e| TransportError::Local {
        step: "creating an ssh session".to_owned(),
        reason: e.message().to_owned(),
    })?;
    session.set_tcp_stream(tcp);
    session.set_timeout(
        u32::try_from(timeout.as_millis())
            .unwrap_or(u32::MAX)
            .max(1),
    );

    if let HostKeys::KnownHosts(path) = host_keys {
        let known = host_key::known_name(&target.host, target.port);
        if let Some(prefs) = host_key::preferred_algorithms(&session, &expand_home(path), &known) {
            // A failure here only loses the preference, never the check.
            let _ = session.method_pref(ssh2::MethodType::HostKey, &prefs);
        }
    }

    session
        .handshake()
        .map_err(|e| handshake_error(&name, target.port, timeout, &e))?;

    match host_keys {
        HostKeys::KnownHosts(path) => {
            host_key::check_known_hosts(
                &session,
                &name,
                &target.host,
                target.port,
                &expand_home(path),
            )?;
        }
        HostKeys::Pinned(fp) => host_key::check_pinned(&session, &name, fp)?,
    }

    match auth {
        Auth::Key(path) => key_auth(&session, target, &name, path)?,
        Auth::Agent => agent_auth(&session, target, &name)?,
    }
    if !session.authenticated() {
        return Err(TransportError::Ssh {
            host: name,
            step: "authenticating".to_owned(),
            reason: "the server did not confirm authentication".to_owned(),
        });
    }
    session.set_timeout(0);
    session.set_keepalive(false, KEEPALIVE_SECS);
    Ok(session)
}

fn connect_tcp(
    target: &Target,
    name: &str,
    timeout: Duration,
) -> Result<TcpStream, TransportError> {
    let unreachable = |reason: String| TransportError::Unreachable {
        host: name.to_owned(),
        port: target.port,
        reason,
    };
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| {
            unreachable(format!(
                "cannot resolve `{}`: {}",
                target.host,
                io_reason(&e, timeout)
            ))
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(unreachable(match last {
        Some(e) => io_reason(&e, timeout),
        None => format!("`{}` resolves to no address", target.host),
    }))
}

/// A short lowercase reason for an I/O error.
fn io_reason(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("timed out after {}s", timeout.as_secs_f32())
        }
        io::ErrorKind::HostUnreachable => "no route to host".to_owned(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
            let mut chars = text.chars();
            chars
                .next()
                .map_or(text.clone(), |c| c.to_lowercase().chain(chars).collect())
        }
    }
}

fn handshake_error(name: &str, port: u16, timeout: Duration, e: &ssh2::Error) -> TransportError {
    match e.code() {
        ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) => TransportError::Unreachable {
            host: name.to_owned(),
            port,
            reason: format!("no ssh handshake within {}s", timeout.as_secs_f32()),
        },
        ErrorCode::Session(LIBSSH2_ERROR_SOCKET_DISCONNECT | -2 | -43) => {
            TransportError::Handshake {
                host: name.to_owned(),
                port,
                reason: format!("the server closed the connection ({})", e.message()),
            }
        }
        _ => TransportError::Handshake {
            host: name.to_owned(),
            port,
            reason: e.message().to_owned(),
        },
    }
}

fn key_auth(
    session: &Session,
    target: &Target,
    name: &str,
    path: &Path,
) -> Result<(), TransportError> {
    let full = expand_home(path);
    let shown = path.display().to_string();
    match session.userauth_pubkey_file(&target.user, None, &full, None) {
        Ok(()) => Ok(()),
        Err(e) => match e.code() {
            ErrorCode::Session(LIBSSH2_ERROR_FILE | LIBSSH2_ERROR_KEYFILE_AUTH_FAILED) => {
                Err(TransportError::KeyUnreadable {
                    host: name.to_owned(),
                    path: shown,
                    reason: format!(
                        "the file is not a private key libssh2 can read, or it needs a passphrase ({})",
                        e.message()
                    ),
                })
            }
            ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) => Err(TransportError::Unreachable {
                host: name.to_owned(),
                port: target.port,
                reason: "timed out while authenticating".to_owned(),
            }),
            _ => Err(TransportError::KeyRefused {
                host: name.to_owned(),
                user: target.user.clone(),
                path: shown,
                reason: e.message().to_lowercase(),
            }),
        },
    }
}

fn agent_auth(session: &Session, target: &Target, name: &str) -> Result<(), TransportError> {
    let unavailable = |reason: String| TransportError::AgentUnavailable {
        host: name.to_owned(),
        reason,
    };
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return Err(unavailable("`SSH_AUTH_SOCK` is not set".to_owned()));
    }
    let mut agent = session
        .agent()
        .map_err(|e| unavailable(e.message().to_owned()))?;
    agent
        .connect()
        .map_err(|e| unavailable(format!("cannot connect to it ({})", e.message())))?;
    agent
        .list_identities()
        .map_err(|e| unavailable(format!("cannot list its keys ({})", e.message())))?;
    let identities = agent
        .identities()
        .map_err(|e| unavailable(format!("cannot list its keys ({})", e.message())))?;
    if identities.is_empty() {
        return Err(unavailable("the agent holds no keys".to_owned()));
    }
    for identity in &identities {
        if agent.userauth(&target.user, identity).is_ok() {
            let _ = agent.disconnect();
            return Ok(());
        }
    }
    let _ = agent.disconnect();
    Err(TransportError::AgentRefused {
        host: name.to_owned(),
        user: target.user.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_expanded() {
        let expanded = expand_home(Path::new("~/.ssh/id_ed25519"));
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(expanded, PathBuf::from(home).join(".ssh/id_ed25519"));
        }
        assert_eq!(expand_home(Path::new("/etc/x")), PathBuf::from("/etc/x"));
    }

    #[test]
    fn io_reasons_are_short() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            io_reason(&refused, Duration::from_secs(5)),
            "connection refused"
        );
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(
            io_reason(&timed_out, Duration::from_secs(5)),
            "timed out after 5s"
        );
    }
}
