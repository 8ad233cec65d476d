//! The OpenSSH client logged in to a sandbox host as root: one way to run a command there, one to require it
//! succeeds, and one check that no secret was printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::project::{Project, Run};

/// How to reach a sandbox host with `ssh`, strictly checking its host key.
#[derive(Debug, Clone)]
pub struct Login {
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub port: u16,
    /// The sandbox host's container on the local engine, whose logs a failure shows.
    pub container: String,
}

/// Something with a sandbox host behind it: a test project, or a sandbox the library created.
pub trait Host {
    fn login(&self) -> Login;
}

impl Host for Project {
    fn login(&self) -> Login {
        let dir = self.path().join(".vldeploy/sandbox");
        Login {
            key: dir.join("id_ed25519"),
            known_hosts: dir.join("known_hosts"),
            port: self
                .sandbox_var("SANDBOX_SSH_PORT")
                .parse()
                .expect("SANDBOX_SSH_PORT is a port"),
            container: format!("vldeploy-sandbox-{}", self.name),
        }
    }
}

impl Host for vldeploy::sandbox::Sandbox {
    fn login(&self) -> Login {
        Login {
            key: self.key_path(),
            known_hosts: self.known_hosts_path(),
            port: self.ssh_port,
            container: self.name.clone(),
        }
    }
}

impl Login {
    /// The same login checking the host key against `known_hosts` instead.
    pub fn with_known_hosts(mut self, known_hosts: &Path) -> Self {
        self.known_hosts = known_hosts.to_path_buf();
        self
    }

    /// `ssh … root@127.0.0.1 REMOTE`, not yet started.
    pub fn command(&self, remote: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-i")
            .arg(&self.key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=30",
                "-o",
                "LogLevel=ERROR",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg("root@127.0.0.1")
            .arg(remote)
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, remote: &str) -> Run {
        let out = self.command(remote).output().expect("ssh runs");
        Run::from_output(&out)
    }

    /// The last lines of the sandbox host's container log and of its inner engine's log.
    pub fn container_logs(&self) -> String {
        let docker = |args: &[&str]| {
            Command::new("docker").args(args).output().map_or_else(
                |e| format!("docker does not run: {e}"),
                |o| Run::from_output(&o).all(),
            )
        };
        format!(
            "--- docker logs {name}\n{}\n--- {name}:/var/log/dockerd.log\n{}",
            docker(&["logs", "--tail", "50", &self.container]),
            docker(&[
                "exec",
                &self.container,
                "tail",
                "-n",
                "50",
                "/var/log/dockerd.log"
            ]),
            name = self.container,
        )
    }
}

/// Runs `remote` on `host`'s sandbox host.
pub fn ssh(host: &impl Host, remote: &str) -> Run {
    host.login().run(remote)
}

/// Runs `remote` on `host`'s sandbox host, requires it to exit 0, and returns its stdout, trimmed.
#[track_caller]
pub fn ssh_ok(host: &impl Host, remote: &str) -> String {
    let login = host.login();
    let run = login.run(remote);
    assert!(
        run.code == 0,
        "`{remote}` on the sandbox host exited {}:\n{}\n{}",
        run.code,
        run.all(),
        login.container_logs()
    );
    run.stdout.trim().to_owned()
}

/// Neither stream of `run` shows any of `secrets`.
#[track_caller]
pub fn no_secret<S: AsRef<str>>(run: &Run, secrets: &[S]) {
    for (i, s) in secrets.iter().enumerate() {
        let s = s.as_ref();
        assert!(!s.is_empty(), "secret #{i} is empty: nothing to look for");
        assert!(
            !run.stdout.contains(s) && !run.stderr.contains(s),
            "secret #{i} was printed:\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout,
            run.stderr
        );
    }
}
