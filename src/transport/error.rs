//! What can go wrong reaching a host, each told in one paragraph that names the host and, where it helps, the fix.

use std::fmt::Write as _;

/// How many lines of a failed command's stderr an error shows.
pub const STDERR_TAIL_LINES: usize = 20;

/// Longest command text an error repeats; longer ones are cut with an ellipsis.
const COMMAND_DISPLAY_CHARS: usize = 300;

/// A failure of the transport: connecting, verifying the host, authenticating, running or tunnelling.
///
/// Messages never contain a secret: commands are shown as given (callers pass secrets on stdin, never in
/// the command line) and key material is shown only as public fingerprints.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The TCP connection or the SSH handshake could not be established.
    #[error(
        "cannot reach `{host}`: {reason}\nhelp: check that the host is up, that sshd listens on port {port} and that no firewall drops the connection"
    )]
    Unreachable {
        host: String,
        port: u16,
        reason: String,
    },

    /// Something answered, but the SSH handshake failed.
    #[error(
        "ssh handshake with `{host}` failed: {reason}\nhelp: check that port {port} is served by an OpenSSH server"
    )]
    Handshake {
        host: String,
        port: u16,
        reason: String,
    },

    /// The host offered a key that `known_hosts` does not list for it.
    #[error(
        "refusing to connect to `{host}`: its host key is not known. It offered {key_type} key {fingerprint}, which `{known_hosts}` does not list for `{known_name}`.\nhelp: if this is your host, trust it with `{keyscan}` (and compare `ssh-keygen -lf {known_hosts}` with the fingerprint above), or pin it in stack.yaml with `host_key: {fingerprint}`"
    )]
    UnknownHostKey {
        host: String,
        key_type: String,
        fingerprint: String,
        known_hosts: String,
        known_name: String,
        keyscan: String,
    },

    /// `known_hosts` lists a different key for the host: possibly an attack, so the connection is refused.
    #[error(
        "HOST KEY CHANGED for `{host}`: refusing to connect, this could be a man-in-the-middle attack. `{known_hosts}` line {line} expects {expected_type} key {expected}, but the host offered {key_type} key {offered}.\nhelp: only if you know the host was reinstalled or its keys were rotated, remove the old entry (line {line}) with `ssh-keygen -R '{known_name}' -f {known_hosts}` and trust the new key"
    )]
    HostKeyChanged {
        host: String,
        known_hosts: String,
        known_name: String,
        line: usize,
        expected_type: String,
        expected: String,
        key_type: String,
        offered: String,
    },

    /// The host's key does not match the fingerprint pinned in stack.yaml.
    #[error(
        "refusing to connect to `{host}`: its host key does not match the pinned fingerprint. stack.yaml pins {pinned}, but the host offered {key_type} key {offered}.\nhelp: if the host was reinstalled, check the new key on its console with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` and update `host_key` in stack.yaml"
    )]
    PinnedKeyMismatch {
        host: String,
        pinned: String,
        key_type: String,
        offered: String,
    },

    /// The configured private key file does not exist.
    #[error(
        "ssh key `{path}` not found\nhelp: point `ssh_key` in stack.yaml at an existing private key (for example `~/.ssh/id_ed25519`), or create one with `ssh-keygen -t ed25519`"
    )]
    KeyNotFound { path: String },

    /// The private key file exists but cannot be used.
    #[error(
        "cannot use ssh key `{path}` for `{host}`: {reason}\nhelp: use an unencrypted OpenSSH or PEM private key, or load a passphrase-protected key into ssh-agent (`ssh-add`) and use the agent"
    )]
    KeyUnreadable {
        host: String,
        path: String,
        reason: String,
    },

    /// The server did not accept the key.
    #[error(
        "`{host}` refused ssh key `{path}` for user `{user}`: {reason}\nhelp: add the public key (`{path}.pub`) to `~{user}/.ssh/authorized_keys` on the host, for example with `ssh-copy-id -i {path} {user}@<host>`"
    )]
    KeyRefused {
        host: String,
        user: String,
        path: String,
        reason: String,
    },

    /// No usable ssh agent.
    #[error(
        "ssh agent unavailable for `{host}`: {reason}\nhelp: start ssh-agent and add your key with `ssh-add`, or set `ssh_key` in stack.yaml to a private key file"
    )]
    AgentUnavailable { host: String, reason: String },

    /// The agent's keys were all refused.
    #[error(
        "`{host}` refused every key in the ssh agent for user `{user}`\nhelp: add one of the agent's public keys (`ssh-add -L`) to `~{user}/.ssh/authorized_keys` on the host"
    )]
    AgentRefused { host: String, user: String },

    /// An SSH protocol step failed on an established connection.
    #[error("ssh connection to `{host}` failed while {step}: {reason}")]
    Ssh {
        host: String,
        step: String,
        reason: String,
    },

    /// The connection ended while work was still under way.
    #[error(
        "connection to `{host}` lost: {reason}\nhelp: the host may have rebooted or sshd restarted; run the command again"
    )]
    Disconnected { host: String, reason: String },

    /// The host has no reachable Docker engine socket.
    #[error(
        "no Docker engine on `{host}`: {socket} {reason}\nhelp: install Docker on the host (`apt-get install docker.io`) and start it (`systemctl enable --now docker`, or `dockerd &` where there is no systemd); if it runs, check that the host's sshd allows `AllowStreamLocalForwarding`"
    )]
    NoDocker {
        host: String,
        socket: String,
        reason: String,
    },

    /// The Docker engine was reached but did not answer usefully.
    #[error(
        "the Docker engine on `{host}` did not answer: {reason}\nhelp: check `docker version` and `journalctl -u docker` on the host"
    )]
    Docker { host: String, reason: String },

    /// A command ran and exited with a non-zero status.
    #[error(
        "command failed on `{host}` with exit status {status}: `{}`{}",
        shorten(command),
        indent_tail(stderr_tail)
    )]
    Command {
        host: String,
        command: String,
        status: i32,
        stderr_tail: String,
    },

    /// The connection's user may not do what vldeploy needs on the host (root's steps, the stack's directory,
    /// the engine). Checked once, right after connecting, before anything is changed.
    #[error("`{host}` lacks what vldeploy needs as `{user}`:\n{problems}\nhelp: {help}")]
    Rights {
        host: String,
        user: String,
        /// One `  - …` line per problem.
        problems: String,
        help: String,
    },

    /// A command ran longer than the environment's `command_timeout`.
    #[error(
        "a command on `{host}` did not finish within {}s: `{}`\nhelp: check the host (`uptime`, `docker ps`, free disk); if the step needs longer, raise `command_timeout` in the environment of stack.yaml",
        after.as_secs(),
        shorten(command)
    )]
    Timeout {
        host: String,
        command: String,
        after: std::time::Duration,
    },

    /// A bad argument (a path that cannot be uploaded to, a host name with a NUL byte...).
    #[error("invalid {what} for `{host}`: {reason}")]
    Invalid {
        host: String,
        what: String,
        reason: String,
    },

    /// Local plumbing failed (spawning a process, creating the tunnel directory).
    #[error("{step} failed on this machine: {reason}")]
    Local { step: String, reason: String },
}

impl TransportError {
    /// A `Command` error from an output, keeping the last lines of stderr.
    pub(crate) fn command(host: &str, command: &str, status: i32, stderr: &[u8]) -> Self {
        Self::Command {
            host: host.to_owned(),
            command: command.to_owned(),
            status,
            stderr_tail: tail_lines(stderr, STDERR_TAIL_LINES),
        }
    }
}

/// The last `n` lines of `bytes`, decoded lossily, without a trailing newline.
pub(crate) fn tail_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\n', '\r']);
    if n == 0 || text.is_empty() {
        return String::new();
    }
    let starts: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    let from = if starts.len() >= n {
        starts[starts.len() - n]
    } else {
        0
    };
    text[from..].to_owned()
}

/// A command on one line, cut to a readable length: for messages and the debug log.
pub(crate) fn shorten(command: &str) -> String {
    let one_line = command.replace('\n', "; ");
    if one_line.chars().count() <= COMMAND_DISPLAY_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(COMMAND_DISPLAY_CHARS).collect();
    format!("{cut}…")
}

fn indent_tail(tail: &str) -> String {
    if tail.trim().is_empty() {
        return "\n  (no output on stderr)".to_owned();
    }
    let mut out = String::from("\n  stderr (last lines):");
    for line in tail.lines() {
        let _ = write!(out, "\n  | {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let text = (1..=30).fold(String::new(), |s, i| s + "line " + &i.to_string() + "\n");
        let tail = tail_lines(text.as_bytes(), 3);
        assert_eq!(tail, "line 28\nline 29\nline 30");
        assert_eq!(tail_lines(b"only\n", 5), "only");
        assert_eq!(tail_lines(b"", 5), "");
    }

    #[test]
    fn command_error_names_host_command_and_stderr() {
        let err = TransportError::command("root@h:22", "false", 1, b"a\nb\nboom\n");
        let text = err.to_string();
        assert!(text.starts_with("command failed on `root@h:22` with exit status 1: `false`"));
        assert!(text.contains("\n  | boom"), "{text}");
    }

    #[test]
    fn long_commands_are_shortened() {
        let long = "x".repeat(1000);
        let err = TransportError::command("h", &long, 2, b"");
        let text = err.to_string();
        assert!(text.len() < 500, "{text}");
        assert!(text.contains('…'));
        assert!(text.contains("(no output on stderr)"));
    }
}
