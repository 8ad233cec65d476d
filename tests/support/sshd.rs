//! A real OpenSSH server on 127.0.0.1 for tests: generated host and client keys, killed on drop.
//!
//! ```ignore
//! mod support;
//! let sshd = support::sshd::Sshd::start();
//! let remote = sshd.connect();
//! ```

use std::fs;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vldeploy::transport::{Auth, HostKeys, Remote, Target};

/// A running `sshd -D -e` with its own keys and config, all in a temporary directory.
pub struct Sshd {
    pub port: u16,
    /// Private key accepted for root (listed in `authorized_keys`).
    pub client_key: PathBuf,
    /// A `known_hosts` holding the host key as `[127.0.0.1]:port`.
    pub known_hosts: PathBuf,
    /// The host key's public line (`ssh-ed25519 AAAA...`).
    pub host_public_key: String,
    /// The host key's fingerprint as `ssh-keygen -lf` prints it.
    pub host_fingerprint: String,
    pub dir: TempDir,
    child: Child,
}

/// Runs `ssh-keygen` to make an unencrypted ed25519 key at `path` (and `path.pub`).
pub fn keygen(path: &Path, comment: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// The `SHA256:...` fingerprint of a public key file, computed by `ssh-keygen -lf`.
pub fn keygen_fingerprint(public_key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key)
        .output()
        .expect("ssh-keygen -lf runs");
    assert!(
        out.status.success(),
        "ssh-keygen -lf {}",
        public_key.display()
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint field")
        .to_owned()
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

impl Sshd {
    /// Starts a server with the default test configuration.
    pub fn start() -> Sshd {
        Self::start_with("")
    }

    /// Starts a server with `extra` at the top of its `sshd_config` (sshd keeps the first value it reads
    /// for an option, so `extra` overrides the defaults below it).
    pub fn start_with(extra: &str) -> Sshd {
        fs::create_dir_all("/run/sshd").expect("create /run/sshd for privilege separation");
        let dir = tempfile::Builder::new()
            .prefix("vldeploy-sshd-")
            .tempdir()
            .expect("temp dir");
        let host_key = dir.path().join("host_ed25519");
        let client_key = dir.path().join("client_ed25519");
        keygen(&host_key, "vldeploy-test-host");
        keygen(&client_key, "vldeploy-test-client");
        let authorized = dir.path().join("authorized_keys");
        fs::copy(client_key.with_extension("pub"), &authorized).expect("write authorized_keys");
        let host_pub = fs::read_to_string(host_key.with_extension("pub")).expect("host public key");
        let host_public_key = host_pub
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let host_fingerprint = keygen_fingerprint(&host_key.with_extension("pub"));

        for _attempt in 0..10 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            fs::write(
                &config,
                format!(
                    "{extra}\n\
                     Port {port}\n\
                     ListenAddress 127.0.0.1\n\
                     HostKey {host_key}\n\
                     PidFile {pid}\n\
                     AuthorizedKeysFile {authorized}\n\
                     PermitRootLogin yes\n\
                     StrictModes no\n\
                     UsePAM no\n\
                     PubkeyAuthentication yes\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     AllowStreamLocalForwarding yes\n\
                     AllowTcpForwarding yes\n\
                     LogLevel VERBOSE\n",
                    host_key = host_key.display(),
                    pid = dir.path().join("sshd.pid").display(),
                    authorized = authorized.display(),
                ),
            )
            .expect("write sshd_config");
            let log_path = dir.path().join("sshd.log");
            let log = fs::File::create(&log_path).expect("create sshd.log");
            let mut child = Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start /usr/sbin/sshd");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let text = fs::read_to_string(&log_path).unwrap_or_default();
                if text.contains("Server listening on") {
                    let known_hosts = dir.path().join("known_hosts");
                    fs::write(
                        &known_hosts,
                        format!("[127.0.0.1]:{port} {host_public_key}\n"),
                    )
                    .expect("write known_hosts");
                    return Sshd {
                        port,
                        client_key,
                        known_hosts,
                        host_public_key,
                        host_fingerprint,
                        dir,
                        child,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    if text.contains("Address already in use") {
                        break; // another port
                    }
                    panic!("sshd exited early:\n{text}");
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("sshd did not start within 20s:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("sshd found no free port in 10 attempts");
    }

    pub fn target(&self) -> Target {
        Target {
            user: "root".to_owned(),
            host: "127.0.0.1".to_owned(),
            port: self.port,
        }
    }

    pub fn auth(&self) -> Auth {
        Auth::Key(self.client_key.clone())
    }

    pub fn host_keys(&self) -> HostKeys {
        HostKeys::KnownHosts(self.known_hosts.clone())
    }

    /// Connects as root with the client key, trusting the host through `known_hosts`.
    pub fn connect(&self) -> Remote {
        Remote::connect(
            &self.target(),
            &self.auth(),
            &self.host_keys(),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| {
            panic!(
                "connect to test sshd: {e}\n--- sshd log ---\n{}",
                self.log()
            )
        })
    }

    /// Kills the per-connection sshd processes (children of this server), dropping every client connection.
    pub fn kill_connections(&self) {
        let status = Command::new("pkill")
            .args(["-KILL", "-P", &self.child.id().to_string()])
            .status()
            .expect("pkill runs");
        assert!(status.success(), "no connection process to kill");
    }

    /// Drops every packet sent to this server's port from now on, as a host that went off the network
    /// does (it answers nothing, not even TCP); the rule goes when the guard is dropped.
    pub fn stop_answering(&self) -> Silence {
        let rule = ["INPUT", "-i", "lo", "-p", "tcp", "--dport"];
        let port = self.port.to_string();
        let status = Command::new("iptables")
            .arg("-I")
            .args(rule)
            .args([port.as_str(), "-j", "DROP"])
            .status()
            .expect("iptables runs (installed by .ci/setup)");
        assert!(
            status.success(),
            "iptables could not add the rule (needs root)"
        );
        Silence { port }
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(self.dir.path().join("sshd.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A packet filter dropping everything sent to one local port, removed on drop.
pub struct Silence {
    port: String,
}

impl Drop for Silence {
    fn drop(&mut self) {
        let _ = Command::new("iptables")
            .args([
                "-D", "INPUT", "-i", "lo", "-p", "tcp", "--dport", &self.port, "-j", "DROP",
            ])
            .status();
    }
}
