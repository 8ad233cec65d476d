//! The sandbox host and the stack's image recipes, against the real local Docker engine (run as root).
//!
//! Timings are printed to stderr; run with `-- --nocapture` to see them.
#![allow(clippy::unwrap_used, clippy::too_many_lines, clippy::large_futures)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use vldeploy::sandbox::{self, BuildContext, Flavor, SandboxOptions};

use crate::support::ssh::{Host as _, ssh, ssh_ok};

/// The tests share a 2-core machine: run them one after another.
static SERIAL: Mutex<()> = Mutex::const_new(());

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    buf.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Builds the stack's nginx and postgres recipes from the base image; returns their tags.
async fn stack_images() -> (String, String) {
    let engine = sandbox::connect().await.unwrap();
    let started = Instant::now();
    // VLDEPLOY_TEST_BASE builds the recipes from another base, e.g. a bare debootstrap image without nginx and
    // postgres, to exercise their apt-get branch as on a machine that pulls debian:bookworm-slim.
    let base = match std::env::var("VLDEPLOY_TEST_BASE") {
        Ok(base) if !base.is_empty() => base,
        _ => sandbox::ensure_base_image(&engine).await.unwrap(),
    };
    eprintln!(
        "timing: base image {base} ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut tags = Vec::new();
    for name in ["nginx", "postgres"] {
        let tag = format!("vldeploy-test/{name}:latest");
        let context =
            BuildContext::from_dir(&repo_path(&format!("templates/images/{name}"))).unwrap();
        let started = Instant::now();
        sandbox::build_image(&engine, &context, &tag, &[("BASE", &base)])
            .await
            .unwrap();
        eprintln!(
            "timing: {tag} built in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        tags.push(tag);
    }
    (tags[0].clone(), tags[1].clone())
}

/// A plain HTTP/1.0 GET on 127.0.0.1; returns the status line and body, retrying until `deadline`.
fn http_get(port: u16, path: &str, deadline: Duration) -> (String, String) {
    let started = Instant::now();
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })();
        if let Ok(text) = attempt
            && let Some((head, body)) = text.split_once("\r\n\r\n")
        {
            let status = head.lines().next().unwrap_or_default().to_owned();
            return (status, body.to_owned());
        }
        assert!(
            started.elapsed() < deadline,
            "nothing answered HTTP on 127.0.0.1:{port} within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn exists(kind: &str, name: &str) -> bool {
    docker(&[kind, "inspect", name]).status.success()
}

fn options(name: &str, dir: &Path, extra_ports: Vec<u16>) -> SandboxOptions {
    SandboxOptions {
        name: name.to_owned(),
        dir: dir.to_path_buf(),
        extra_ports,
        flavor: Flavor::Full,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_images_build_and_serve() {
    let _serial = serial().await;
    let (nginx, postgres) = stack_images().await;
    let id = random_hex(4);

    // PostgreSQL: initialised from the environment, reachable with the password over TCP from another container.
    let net = format!("vldeploy-test-net-{id}");
    let db = format!("vldeploy-test-db-{id}");
    let volume = format!("vldeploy-test-pgdata-{id}");
    let password = random_hex(16);
    docker_ok(&["network", "create", &net]);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &db,
        "--network",
        &net,
        "-v",
        &format!("{volume}:/var/lib/postgresql/data"),
        "-e",
        "POSTGRES_USER=shop",
        "-e",
        "POSTGRES_DB=shopdb",
        "-e",
        &format!("POSTGRES_PASSWORD={password}"),
        &postgres,
    ]);
    let query = |pw: &str| {
        docker(&[
            "run",
            "--rm",
            "--network",
            &net,
            "-e",
            &format!("PGPASSWORD={pw}"),
            "-e",
            &format!("DB={db}"),
            &postgres,
            "sh",
            "-c",
            "for i in $(seq 1 90); do pg_isready -q -h \"$DB\" -U shop -d shopdb && break; sleep 1; done; \
             pg_isready -h \"$DB\" -U shop -d shopdb && \
             psql -h \"$DB\" -U shop -d shopdb -At -c 'select current_user, current_database(), version()'",
        ])
    };
    let good = query(&password);
    let good_out = String::from_utf8_lossy(&good.stdout).into_owned();
    let wrong = query("not-the-password");
    let wrong_err = String::from_utf8_lossy(&wrong.stderr).into_owned();

    // A clean stop (SIGINT) and a start on the now non-empty data directory keep the data.
    let stop = docker(&["stop", "-t", "60", &db]);
    let exit_code = docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &db]);
    docker_ok(&["start", &db]);
    let again = query(&password);
    let again_out = String::from_utf8_lossy(&again.stdout).into_owned();
    let tools = docker(&[
        "exec",
        &db,
        "sh",
        "-c",
        "for t in pg_dump psql pg_isready; do command -v $t; done",
    ]);
    let dump = docker(&["exec", &db, "pg_dump", "-U", "shop", "shopdb"]);
    let logs = docker(&["logs", &db]);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    docker(&["rm", "-f", &db]);
    docker(&["volume", "rm", &volume]);
    docker(&["network", "rm", &net]);

    assert!(
        good.status.success(),
        "psql with the password failed: {good_out}{}\n{logs}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(good_out.contains("accepting connections"), "{good_out}");
    assert!(
        good_out.contains("shop|shopdb|PostgreSQL 15."),
        "{good_out}"
    );
    assert!(!wrong.status.success(), "a wrong password was accepted");
    assert!(
        wrong_err.contains("password authentication failed"),
        "{wrong_err}"
    );
    assert!(stop.status.success());
    assert_eq!(
        exit_code, "0",
        "postgres did not shut down cleanly:\n{logs}"
    );
    assert!(
        again.status.success() && again_out.contains("shop|shopdb"),
        "{again_out}\n{logs}"
    );
    assert!(logs.contains("found an existing cluster"), "{logs}");
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("PostgreSQL database dump"),
        "pg_dump over the socket failed"
    );
    let tools = String::from_utf8_lossy(&tools.stdout);
    assert_eq!(
        tools.lines().count(),
        3,
        "client tools missing from PATH: {tools}"
    );

    // nginx: serves the site config mounted read-only into /etc/nginx/conf.d/, logs to stdout.
    let site = tempfile::tempdir().unwrap();
    std::fs::write(
        site.path().join("site.conf"),
        "server {\n  listen 80;\n  location / { return 200 \"hello from the stack's nginx\\n\"; }\n}\n",
    )
    .unwrap();
    let web = format!("vldeploy-test-web-{id}");
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "-p",
        "127.0.0.1::80",
        "-v",
        &format!("{}:/etc/nginx/conf.d:ro", site.path().display()),
        &nginx,
    ]);
    let port = docker_ok(&["port", &web, "80/tcp"]);
    let port: u16 = port
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (status, body) = http_get(port, "/anything", Duration::from_mins(1));
    let stop = docker(&["stop", "-t", "30", &web]);
    let exit_code = docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &web]);
    let logs = docker(&["logs", &web]);
    docker(&["rm", "-f", &web]);

    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "hello from the stack's nginx\n");
    assert!(stop.status.success());
    assert_eq!(exit_code, "0", "nginx did not quit gracefully");
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("GET /anything HTTP/1.0"),
        "nginx's access log is not on stdout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_gives_a_host_with_ssh_and_its_own_engine_and_down_removes_it() {
    let _serial = serial().await;
    let (nginx, _) = stack_images().await;
    let name = "vldeploy-sandbox-test-main";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().join("sandbox");
    sandbox::down(name, &dir).await.unwrap();

    let started = Instant::now();
    let sb = sandbox::up(&options(name, &dir, vec![8080])).await.unwrap();
    eprintln!(
        "timing: up (cold) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The files a client needs.
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&sb.key_path()), 0o600);
    assert_eq!(mode(&dir.join("id_ed25519.pub")), 0o600);
    assert_eq!(mode(&sb.secrets_path()), 0o600);
    let known = std::fs::read_to_string(sb.known_hosts_path()).unwrap();
    assert!(
        known.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", sb.ssh_port)),
        "{known}"
    );
    let env = std::fs::read_to_string(sb.env_path()).unwrap();
    assert!(
        env.contains(&format!("SANDBOX_SSH_PORT={}\n", sb.ssh_port)),
        "{env}"
    );
    assert!(
        env.contains(&format!("SANDBOX_HTTP_PORT={}\n", sb.http_port)),
        "{env}"
    );
    assert!(
        env.contains(&format!("SANDBOX_HTTPS_PORT={}\n", sb.https_port)),
        "{env}"
    );
    let extra = sb.extra_ports[&8080];
    assert!(
        env.contains(&format!("SANDBOX_PORT_8080={extra}\n")),
        "{env}"
    );
    let secrets = std::fs::read_to_string(sb.secrets_path()).unwrap();
    for key in ["POSTGRES_PASSWORD=", "ADMIN_TOKEN="] {
        let value = secrets.lines().find_map(|l| l.strip_prefix(key)).unwrap();
        assert!(value.len() >= 32);
    }

    // SSH as root with the generated key and the pinned host key; the inner engine answers.
    let info = ssh_ok(&sb, "docker info --format '{{.ServerVersion}} {{.Driver}}'");
    assert!(info.starts_with("20.10"), "{info}");
    // Root by key only, one pinned host key.
    let sshd = ssh_ok(&sb, "sshd -T 2>/dev/null");
    for setting in [
        "permitrootlogin without-password",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "hostkey /etc/ssh/ssh_host_ed25519_key",
    ] {
        assert!(sshd.lines().any(|l| l == setting), "sshd lacks `{setting}`");
    }
    assert_eq!(
        sshd.lines().filter(|l| l.starts_with("hostkey ")).count(),
        1
    );
    for tool in ["nft", "iptables", "crontab", "gzip", "curl", "ip", "ps"] {
        ssh_ok(&sb, &format!("command -v {tool}"));
    }
    ssh_ok(
        &sb,
        "nft list ruleset >/dev/null && iptables -L DOCKER-USER -n >/dev/null",
    );
    // cron runs root's jobs (checked at the end, a minute from now).
    ssh_ok(
        &sb,
        "pgrep -x cron && echo '* * * * * date > /tmp/cron-ran' | crontab -",
    );
    let cron_installed = Instant::now();

    // An image reaches the inner engine, and a container published on 80 inside answers on http_port outside.
    let started = Instant::now();
    let load = Command::new("sh")
        .arg("-c")
        .arg(format!("docker save {nginx} | \"$0\" \"$@\""))
        .arg("ssh")
        .args(sb.login().command("docker load -q").get_args())
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    eprintln!(
        "timing: image save | ssh docker load in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ssh_ok(
        &sb,
        "mkdir -p /srv/site && printf 'server { listen 80; location / { return 200 \"inner nginx\\n\"; } }\\n' \
         > /srv/site/site.conf",
    );
    ssh_ok(
        &sb,
        &format!("docker run -d --name web -p 80:80 -v /srv/site:/etc/nginx/conf.d:ro {nginx}"),
    );
    let (status, body) = http_get(sb.http_port, "/", Duration::from_mins(1));
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "inner nginx\n");

    // `up` again returns the same running host, keys and secrets untouched.
    let started = Instant::now();
    let again = sandbox::up(&options(name, &dir, vec![8080])).await.unwrap();
    eprintln!(
        "timing: up (warm) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(again, sb);
    assert_eq!(std::fs::read_to_string(sb.secrets_path()).unwrap(), secrets);
    assert_eq!(ssh_ok(&sb, "docker ps --format '{{.Names}}'"), "web");
    assert_eq!(sandbox::status(name, &dir).await.unwrap(), Some(sb.clone()));

    // The inner engine can be restarted from a session, as the firewall tests do.
    ssh_ok(
        &sb,
        "sandbox-dockerd restart && docker info >/dev/null && sandbox-dockerd status",
    );
    assert_eq!(ssh_ok(&sb, "docker ps -a --format '{{.Names}}'"), "web");

    loop {
        if ssh(&sb, "test -s /tmp/cron-ran").code == 0 {
            break;
        }
        assert!(
            cron_installed.elapsed() < Duration::from_secs(150),
            "cron did not run root's job"
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // `down` removes the container and the inner engine's volume; a second `down` is fine.
    let started = Instant::now();
    sandbox::down(name, &dir).await.unwrap();
    eprintln!("timing: down in {:.1} s", started.elapsed().as_secs_f64());
    assert!(!exists("container", name));
    assert!(!exists("volume", &format!("{name}-docker")));
    assert_eq!(sandbox::status(name, &dir).await.unwrap(), None);
    sandbox::down(name, &dir).await.unwrap();
    assert!(sb.secrets_path().exists(), "down removed the secrets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sandboxes_run_side_by_side() {
    let _serial = serial().await;
    let dirs = tempfile::tempdir().unwrap();
    let (a_name, b_name) = ("vldeploy-sandbox-test-a", "vldeploy-sandbox-test-b");
    let (a_dir, b_dir) = (dirs.path().join("a"), dirs.path().join("b"));
    sandbox::down(a_name, &a_dir).await.unwrap();
    sandbox::down(b_name, &b_dir).await.unwrap();

    let started = Instant::now();
    let (a_opts, b_opts) = (
        options(a_name, &a_dir, vec![5432]),
        options(b_name, &b_dir, vec![]),
    );
    let (a, b) = tokio::join!(sandbox::up(&a_opts), sandbox::up(&b_opts));
    eprintln!(
        "timing: two sandboxes up together in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_ne!(a.container_id, b.container_id);
    assert_ne!(a.ssh_port, b.ssh_port);
    assert_ne!(a.http_port, b.http_port);
    assert!(a.extra_ports.contains_key(&5432));
    assert!(b.extra_ports.is_empty());
    assert_eq!(ssh_ok(&a, "hostname"), a_name);
    assert_eq!(ssh_ok(&b, "hostname"), b_name);
    ssh_ok(&a, "docker info >/dev/null");
    ssh_ok(&b, "docker info >/dev/null");

    // Each host has its own key: b's host key is not accepted where a's is pinned.
    let crossed = b
        .login()
        .with_known_hosts(&a.known_hosts_path())
        .command("true")
        .output()
        .unwrap();
    assert!(
        !crossed.status.success(),
        "a host key that was not pinned was accepted"
    );

    sandbox::down(a_name, &a_dir).await.unwrap();
    assert!(!exists("container", a_name));
    assert_eq!(
        ssh_ok(&b, "hostname"),
        b_name,
        "removing one sandbox disturbed the other"
    );
    sandbox::down(b_name, &b_dir).await.unwrap();
    assert!(!exists("container", b_name));
    assert!(!exists("volume", &format!("{b_name}-docker")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_sandbox_comes_back_with_up() {
    let _serial = serial().await;
    let name = "vldeploy-sandbox-test-restart";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().join("sandbox");
    sandbox::down(name, &dir).await.unwrap();
    let first = sandbox::up(&options(name, &dir, vec![])).await.unwrap();
    ssh_ok(&first, "mkdir -p /srv && echo kept > /srv/marker");

    // A graceful stop: the init process stops sshd and the inner engine and exits 0.
    docker_ok(&["stop", "-t", "60", name]);
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", name]),
        "0"
    );
    assert_eq!(sandbox::status(name, &dir).await.unwrap(), None);

    let started = Instant::now();
    let second = sandbox::up(&options(name, &dir, vec![])).await.unwrap();
    eprintln!(
        "timing: up of a stopped sandbox in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(second.container_id, first.container_id);
    let known = std::fs::read_to_string(second.known_hosts_path()).unwrap();
    assert!(
        known.starts_with(&format!("[127.0.0.1]:{} ", second.ssh_port)),
        "{known}"
    );
    assert_eq!(ssh_ok(&second, "cat /srv/marker"), "kept");
    ssh_ok(&second, "docker info >/dev/null");

    // A sandbox directory with new keys gets a fresh host that trusts them.
    std::fs::remove_file(dir.join("id_ed25519")).unwrap();
    let third = sandbox::up(&options(name, &dir, vec![])).await.unwrap();
    assert_ne!(third.container_id, first.container_id);
    assert_eq!(ssh(&third, "test -e /srv/marker").code, 1);

    sandbox::down(name, &dir).await.unwrap();
    assert!(!exists("container", name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_sandbox_is_a_fresh_server_booted_by_systemd() {
    let _serial = serial().await;
    let name = "vldeploy-sandbox-test-bare";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().join("sandbox");
    sandbox::down(name, &dir).await.unwrap();
    let started = Instant::now();
    let bare = sandbox::up(&SandboxOptions {
        flavor: Flavor::Bare,
        ..options(name, &dir, vec![])
    })
    .await
    .unwrap();
    eprintln!(
        "timing: bare sandbox up in {:.1} s (image built if missing)",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(bare.flavor, Flavor::Bare);

    // systemd is the first process and reaches its target; sshd is one of its units.
    assert_eq!(ssh_ok(&bare, "cat /proc/1/comm"), "systemd");
    let state = ssh_ok(
        &bare,
        "timeout 60 systemctl is-system-running --wait 2>/dev/null; true",
    );
    assert!(
        state == "running" || state == "degraded",
        "systemd's state: `{state}`; failed units: {}",
        ssh_ok(&bare, "systemctl --failed --no-legend --plain; true")
    );
    assert_eq!(ssh_ok(&bare, "systemctl is-active ssh.service"), "active");
    assert_eq!(ssh_ok(&bare, "id -un"), "root");

    // Nothing a deploy needs is there yet, and nothing listens but sshd.
    for tool in ["docker", "dockerd", "nft", "cron", "crontab", "sudo"] {
        let out = ssh(&bare, &format!("command -v {tool}"));
        assert_eq!(
            out.code, 1,
            "`{tool}` is absent from a bare host: {}",
            out.stdout
        );
    }
    let installed = ssh_ok(
        &bare,
        "dpkg-query -W -f='${Package} ${Status}\\n' docker.io nftables cron sudo nginx-light postgresql-15 2>/dev/null \
         | grep ' install ok installed' || true",
    );
    assert_eq!(installed, "", "packages a fresh server lacks");
    let listening = ssh_ok(
        &bare,
        "cat /proc/net/tcp /proc/net/tcp6 | awk '$4 == \"0A\" {print $2}'",
    );
    let ports: Vec<&str> = listening
        .lines()
        .map(|l| l.rsplit(':').next().unwrap_or(""))
        .collect();
    assert!(
        ports.iter().all(|p| *p == "0016"),
        "only sshd (port 22 = 0x16) listens: {ports:?}"
    );

    // Asking for a full host in its place recreates it with an engine.
    let full = sandbox::up(&options(name, &dir, vec![])).await.unwrap();
    assert_ne!(full.container_id, bare.container_id);
    assert_eq!(full.flavor, Flavor::Full);
    ssh_ok(&full, "docker info >/dev/null");

    sandbox::down(name, &dir).await.unwrap();
    assert!(!exists("container", name));
}
