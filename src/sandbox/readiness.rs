//! Waiting until a started sandbox host serves SSH and its inner Docker engine answers.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::container;
use super::error::SandboxError;
use super::{Flavor, Sandbox};
use crate::engine::Engine;

/// How long a sandbox may take to come up on a busy machine.
const READY_TIMEOUT: Duration = Duration::from_mins(3);

/// Polls until sshd sends its banner on the published port and (on a full host) `docker info` works inside.
pub(crate) async fn wait(docker: &Engine, sandbox: &Sandbox) -> Result<(), SandboxError> {
    let started = Instant::now();
    let mut ssh_ok = false;
    let mut reason = String::from("not checked yet");
    loop {
        if !ssh_ok {
            match ssh_banner(sandbox.ssh_port).await {
                Ok(()) => ssh_ok = true,
                Err(why) => reason = format!("sshd on 127.0.0.1:{} {why}", sandbox.ssh_port),
            }
        }
        if ssh_ok && sandbox.flavor == Flavor::Bare {
            // A bare host has no engine yet: its sshd answering is all there is to wait for.
            return Ok(());
        }
        if ssh_ok {
            match container::exec(
                docker,
                &sandbox.container_id,
                &["docker", "info", "--format", "{{.ServerVersion}}"],
            )
            .await
            {
                Ok((0, _)) => return Ok(()),
                Ok((code, out)) => {
                    let first = out.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                    reason = format!("inner `docker info` exited with {code}: {first}");
                }
                Err(e) => reason = format!("inner `docker info` could not run: {e}"),
            }
        }
        match container::inspect(docker, &sandbox.name).await? {
            Some(c) if container::is_running(&c) => {}
            _ => {
                return Err(SandboxError::Exited {
                    name: sandbox.name.clone(),
                    details: container::diagnostics(docker, &sandbox.name, 30).await,
                });
            }
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(SandboxError::NotReady {
                name: sandbox.name.clone(),
                seconds: READY_TIMEOUT.as_secs(),
                reason,
                details: container::diagnostics(docker, &sandbox.name, 30).await,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Connects to `127.0.0.1:port` and reads an SSH identification line.
async fn ssh_banner(port: u16) -> Result<(), String> {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("refused the connection: {e}"))?;
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while got.len() < 8 {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("dropped the connection: {e}"))?;
            if n == 0 {
                return Err("closed the connection before its banner".to_owned());
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.starts_with(b"SSH-2.0-") {
            Ok(())
        } else {
            Err("answered with something other than an SSH banner".to_owned())
        }
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .unwrap_or_else(|_| Err("sent no banner within 5 s".to_owned()))
}
