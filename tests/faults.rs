//! The connection to the host lost in the middle of `up`: vldeploy fails at once naming the step and the host,
//! nothing is left waiting, and the next `up` converges.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::project::{As, Project};

/// Runs a command inside the sandbox host's container (not over ssh: the faults cut ssh).
fn on_host(p: &Project, cmd: &str) -> String {
    let out = Command::new("docker")
        .args([
            "exec",
            &format!("vldeploy-sandbox-{}", p.name),
            "sh",
            "-c",
            cmd,
        ])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_connection_lost_mid_up_fails_at_once_naming_the_step_and_the_next_up_converges() {
    let p = Project::with_cold_sandbox_as("conn-lost", As::Root);
    let host = format!("root@127.0.0.1:{}", p.sandbox_var("SANDBOX_SSH_PORT"));
    // Each `up` is cut while it sends the images (the longest step of a first deploy): the first by killing
    // the host's sshd process of the connection, the second by destroying the TCP connection on the host.
    for (fault, inject) in [
        ("sshd killed", "pkill -KILL -f '^sshd: root' ; true"),
        (
            "connection cut",
            "ss -K state established '( sport = :22 )' >/dev/null 2>&1; true",
        ),
    ] {
        // Each cut starts from a host without images, so that a long transfer is under way when it comes.
        on_host(
            &p,
            "docker images -aq | xargs -r docker rmi -f >/dev/null 2>&1; true",
        );
        let (mut child, rx) = p.spawn_watching_stderr(&["up"]);
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        // Cut on a progress line of the transfer with seconds still to go, once the firewall's safe apply beside
        // it (the first `up` applies one) is confirmed: a connection lost while that waits for its confirmation
        // makes `up` wait out the host's own revert, which is the firewall's fault test, not this one.
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) else {
                assert!(
                    Instant::now() < deadline,
                    "`up` never sent images long enough to be cut:\n{seen}"
                );
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "`up` ended before the cut:\n{seen}"
                );
                continue;
            };
            seen.push_str(&line);
            seen.push('\n');
            let confirmed = !seen.contains("firewall: apply") || seen.contains("revert disarmed");
            if confirmed && seen.contains("] send images") && transfer_has_time_left(&line) {
                break;
            }
        }
        on_host(&p, inject);
        let cut = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if cut.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{fault}: `up` was still running 30 s later:\n{seen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let took = cut.elapsed();
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
            seen.push_str(&line);
            seen.push('\n');
        }
        eprintln!(
            "{fault}: `up` exited with {status} {:.1} s later\n{seen}",
            took.as_secs_f64()
        );
        assert_eq!(status.code(), Some(1), "{fault}:\n{seen}");
        let error = &seen[seen
            .find("error: ")
            .unwrap_or_else(|| panic!("{fault}: no error:\n{seen}"))..];
        assert!(
            error.starts_with("error: step ") && error.contains("send images"),
            "{fault}: the error names the step:\n{error}"
        );
        assert!(
            error.contains(&format!(
                "the connection to `{host}` was lost while sending images: the host closed the connection"
            )),
            "{fault}: the error says the connection was lost, and how:\n{error}"
        );
        assert!(
            !error.contains("hyper"),
            "{fault}: no HTTP client internals:\n{error}"
        );
    }

    // The host kept what was complete; the next `up` sends the rest and converges, the one after is a no-op.
    p.test().arg("up").stdout_has(p.is_up()).run();
    let (status, body) = p.http_get("/api/health");
    assert_eq!(status, 200, "{body}");
    p.test().arg("up").stdout(p.converged()).run();
}

/// Whether `line` is a transfer's progress line that leaves a few seconds of sending (`…, 6s left`, or a
/// running count without a total).
fn transfer_has_time_left(line: &str) -> bool {
    let line = line.trim();
    if line.starts_with("sent ") && line.ends_with("MB/s)") {
        return true;
    }
    line.strip_suffix("s left")
        .and_then(|l| l.rsplit(", ").next())
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|left| left >= 4)
}
