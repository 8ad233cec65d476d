//! `vldeploy bootstrap` against a bare sandbox host (a fresh server booted by systemd, sshd only, root login):
//! the engine, the tools and the deploy user appear, a second run changes nothing, and `--harden-ssh` leaves
//! key logins of the deploy user only — or puts everything back by itself when its confirmation fails.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::project::{Project, Run};

/// A project whose sandbox environment logs in as `deploy`, first bootstrapped as `root`, on a bare host.
fn bare_project(test: &str) -> Project {
    let p = Project::new(test);
    let yaml = p.stack_yaml(|t| {
        *t = t.replacen(
            "    host: ssh://root@127.0.0.1:${SANDBOX_SSH_PORT}\n",
            "    host: ssh://deploy@127.0.0.1:${SANDBOX_SSH_PORT}\n    bootstrap_user: root\n",
            1,
        );
    });
    assert!(yaml.contains("bootstrap_user: root"), "{yaml}");
    p.write_stack(&yaml);
    p.vldeploy(&["sandbox", "up", "--bare"]).ok();
    p
}

/// Removes the sandbox host when the test ends, however it ends.
struct Down<'a>(&'a Project);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let container = format!("vldeploy-sandbox-{}", self.0.name);
            if let Ok(o) = Command::new("docker")
                .args([
                    "exec",
                    &container,
                    "journalctl",
                    "-u",
                    "ssh",
                    "-n",
                    "40",
                    "--no-pager",
                ])
                .output()
            {
                eprintln!(
                    "--- sshd's journal on the host\n{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        if std::env::var_os("VLDEPLOY_KEEP_SANDBOX").is_none() {
            let _ = self.0.command(&["sandbox", "down"]).output();
        }
    }
}

fn port(p: &Project) -> u16 {
    p.sandbox_var("SANDBOX_SSH_PORT").parse().unwrap()
}

/// Runs `command` on the host as `user` with the sandbox's key (OpenSSH client, host key checked).
fn ssh_as(p: &Project, user: &str, command: &str) -> Run {
    let dir = p.path().join(".vldeploy/sandbox");
    let out = Command::new("ssh")
        .args(["-i", &dir.join("id_ed25519").display().to_string()])
        .args([
            "-o",
            &format!("UserKnownHostsFile={}", dir.join("known_hosts").display()),
        ])
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"])
        .args([
            "-p",
            &port(p).to_string(),
            &format!("{user}@127.0.0.1"),
            command,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ssh_ok(p: &Project, user: &str, command: &str) -> String {
    let run = ssh_as(p, user, command);
    assert_eq!(
        run.code, 0,
        "`{command}` as {user} failed: {}{}",
        run.stdout, run.stderr
    );
    run.stdout.trim().to_owned()
}

/// Whether sshd accepts `user` with `password` (the `password` method, through the ssh2 library). A
/// connection that fails before authentication is tried again (sshd may be reloading).
fn password_login(p: &Project, user: &str, password: &str) -> bool {
    let mut last = String::new();
    for _ in 0..5 {
        let attempt = (|| -> Result<bool, String> {
            let tcp = TcpStream::connect(("127.0.0.1", port(p))).map_err(|e| e.to_string())?;
            let mut session = ssh2::Session::new().map_err(|e| e.to_string())?;
            session.set_tcp_stream(tcp);
            session.set_timeout(15_000);
            session.handshake().map_err(|e| e.to_string())?;
            Ok(session.userauth_password(user, password).is_ok() && session.authenticated())
        })();
        match attempt {
            Ok(accepted) => return accepted,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("no SSH connection for a password login: {last}");
}

#[test]
fn bootstrap_makes_a_bare_server_ready_and_a_second_run_changes_nothing() {
    let p = bare_project("bootstrap_ready");
    let _down = Down(&p);
    assert_eq!(
        ssh_as(&p, "root", "command -v docker").code,
        1,
        "a bare host has no engine"
    );

    let started = Instant::now();
    let first = p.vldeploy(&["bootstrap"]).ok();
    eprintln!(
        "timing: bootstrap of a bare host in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        first.stdout.contains("+ install docker.io"),
        "{}",
        first.all()
    );
    assert!(
        first.stdout.contains("+ create user `deploy`"),
        "{}",
        first.all()
    );
    assert!(
        first.stderr.contains("bootstrap: installing"),
        "progress for the long phase: {}",
        first.all()
    );

    // The deploy user logs in with the operator's key, runs containers through the docker group…
    let version = ssh_ok(&p, "deploy", "docker info --format '{{.ServerVersion}}'");
    assert!(!version.is_empty());
    let id = ssh_ok(&p, "root", "id deploy");
    assert!(id.contains("(docker)"), "{id}");
    for tool in ["nft", "crontab", "gzip", "sudo", "pkill"] {
        ssh_ok(&p, "root", &format!("command -v {tool}"));
    }
    assert_eq!(
        ssh_ok(
            &p,
            "root",
            "systemctl is-enabled docker cron; systemctl is-active docker cron"
        ),
        "enabled\nenabled\nactive\nactive"
    );
    // …may run the root helper through sudo, and nothing else.
    ssh_ok(&p, "root", "visudo -c -q");
    assert_eq!(
        ssh_ok(
            &p,
            "root",
            "stat -c '%U %G %a' /etc/sudoers.d/vldeploy /usr/local/lib/vldeploy/vldeploy-root /var/lib/vldeploy/$(ls /var/lib/vldeploy) /home/deploy/.ssh/authorized_keys"
        ),
        "root root 440\nroot root 755\ndeploy deploy 750\ndeploy deploy 600"
    );
    assert_eq!(
        ssh_ok(
            &p,
            "deploy",
            "sudo -n /usr/local/lib/vldeploy/vldeploy-root check"
        ),
        "vldeploy-root ok 1"
    );
    let refused = ssh_as(&p, "deploy", "sudo -n true");
    assert_ne!(
        refused.code,
        0,
        "sudo grants the helper only: {}",
        refused.all()
    );
    let bad = ssh_as(
        &p,
        "deploy",
        "sudo -n /usr/local/lib/vldeploy/vldeploy-root cron-install x ../../../etc/shadow",
    );
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(bad.stderr.contains("invalid staged file"), "{}", bad.all());
    let audit = ssh_ok(
        &p,
        "root",
        &format!("cat /var/lib/vldeploy/{}/audit.log", p.name),
    );
    assert!(
        audit.contains("\"command\":\"bootstrap\"") && audit.contains("create user `deploy`"),
        "{audit}"
    );

    // A second run finds nothing to do.
    let started = Instant::now();
    let second = p.vldeploy(&["bootstrap"]).ok();
    let second_s = started.elapsed().as_secs_f64();
    eprintln!("timing: second bootstrap in {second_s:.2}s");
    assert!(second.stdout.contains("no changes"), "{}", second.all());
    assert_eq!(
        ssh_ok(
            &p,
            "root",
            &format!("wc -l < /var/lib/vldeploy/{}/audit.log", p.name)
        ),
        "1",
        "a run that changed nothing leaves no audit entry"
    );

    // From the fresh server to the shop, as `deploy`: root's steps through the helper, the rest as deploy.
    p.test().arg("up").stdout_has(p.is_up()).run();
    let (code, body) = p.http_get("/api/health");
    assert_eq!(code, 200, "{body}");
    p.test().arg("up").stdout(p.converged()).run();
    let cron = ssh_ok(
        &p,
        "root",
        &format!("stat -c '%U %a' /etc/cron.d/vldeploy-{}-backup", p.name),
    );
    assert_eq!(
        cron, "root 644",
        "cron entries are root's files, installed by the helper"
    );
}

#[test]
fn harden_ssh_leaves_deploy_keys_only_and_a_failed_confirmation_is_reverted_by_the_host() {
    let p = bare_project("bootstrap_harden");
    let _down = Down(&p);
    p.vldeploy(&["bootstrap"]).ok();

    // Make the host as lax as many rented servers come: root and passwords allowed.
    ssh_ok(
        &p,
        "root",
        "echo 'root:hunter2-test' | chpasswd && \
         printf 'PasswordAuthentication yes\\nPermitRootLogin yes\\n' > /etc/ssh/sshd_config.d/50-rented.conf && \
         systemctl restart ssh",
    );
    assert!(
        password_login(&p, "root", "hunter2-test"),
        "password login works before"
    );

    // Refused, changing nothing, while `deploy` cannot log in with the key: here its authorized_keys is gone
    // and the public key beside the environment's private key is another one (so bootstrap installs that).
    let sandbox = p.path().join(".vldeploy/sandbox");
    let public = sandbox.join("id_ed25519.pub");
    let other = sandbox.join("other_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "other", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let right = std::fs::read_to_string(&public).ok();
    ssh_ok(&p, "root", "rm /home/deploy/.ssh/authorized_keys");
    // (OpenSSH's client offers the `.pub` beside the key: until it is put back, only vldeploy, which derives
    // the public key from the private one, logs in by key.)
    std::fs::copy(sandbox.join("other_ed25519.pub"), &public).unwrap();
    let refused = p.vldeploy(&["bootstrap", "--harden-ssh"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stderr.contains(
            "sshd was not hardened: `deploy` cannot log in with the environment's key yet"
        ),
        "{}",
        refused.all()
    );
    match right {
        Some(text) => std::fs::write(&public, text).unwrap(),
        None => std::fs::remove_file(&public).unwrap(),
    }
    assert_eq!(
        ssh_as(
            &p,
            "root",
            "test -e /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf"
        )
        .code,
        1
    );
    assert!(
        password_login(&p, "root", "hunter2-test"),
        "nothing was hardened"
    );

    // A hardening whose confirmation cannot succeed (the test switch also refuses `deploy`) is put back by
    // the host itself: root logs in again, by key and by password, and the command says so.
    let started = Instant::now();
    let failed = p.vldeploy_env(
        &["bootstrap", "--harden-ssh"],
        &[
            ("VLDEPLOY_SSH_REVERT_AFTER", "10"),
            ("VLDEPLOY_SSH_TEST_DENY_DEPLOY", "1"),
        ],
    );
    eprintln!(
        "timing: failed hardening reverted and reported in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_ne!(failed.code, 0, "{}", failed.all());
    assert!(
        failed
            .stderr
            .contains("the host put its previous sshd settings back by itself after 10s"),
        "{}",
        failed.all()
    );
    assert_eq!(ssh_ok(&p, "root", "id -un"), "root");
    assert!(
        password_login(&p, "root", "hunter2-test"),
        "password login is back"
    );
    assert_eq!(
        ssh_as(
            &p,
            "root",
            "test -e /etc/ssh/sshd_config.d/00-vldeploy-hardening.conf"
        )
        .code,
        1
    );
    let audit = ssh_ok(
        &p,
        "root",
        &format!("tail -n 1 /var/lib/vldeploy/{}/audit.log", p.name),
    );
    assert!(
        audit.contains("\"command\":\"bootstrap --harden-ssh\"")
            && audit.contains("\"result\":\"failed\""),
        "{audit}"
    );

    // The real hardening: confirmed as `deploy`; passwords and root refused from then on.
    let hardened = p
        .vldeploy_env(
            &["bootstrap", "--harden-ssh"],
            &[("VLDEPLOY_SSH_REVERT_AFTER", "10")],
        )
        .ok();
    assert!(
        hardened.stdout.contains("~ harden sshd"),
        "{}",
        hardened.all()
    );
    assert!(
        hardened.stderr.contains("sshd hardening confirmed"),
        "{}",
        hardened.all()
    );
    assert_eq!(ssh_ok(&p, "deploy", "id -un"), "deploy");
    assert_ne!(ssh_as(&p, "root", "true").code, 0, "root's key is refused");
    assert!(
        !password_login(&p, "root", "hunter2-test"),
        "passwords are refused"
    );
    // Past the revert delay it stays hardened: the confirmation disarmed the host's revert.
    std::thread::sleep(Duration::from_secs(12));
    assert_ne!(
        ssh_as(&p, "root", "true").code,
        0,
        "still refused after the revert delay"
    );
    assert!(!password_login(&p, "root", "hunter2-test"));
    assert_eq!(
        ssh_ok(
            &p,
            "deploy",
            "sudo -n /usr/local/lib/vldeploy/vldeploy-root check"
        ),
        "vldeploy-root ok 1"
    );
}
