//! `vldeploy up` against a real sandbox host: from nothing, converged, changed, interrupted, refused.

use std::time::{Duration, Instant};

use crate::support::project::{As, Project};
use crate::support::ssh::no_secret;

fn health_json(p: &Project) -> serde_json::Value {
    let (code, body) = p.http_get("/api/health");
    assert_eq!(code, 200, "GET /api/health through nginx: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("health is not JSON ({e}): {body}"))
}

/// The flow, connected as `who`: `tests/as_deploy.rs` runs it as `deploy`, the user a real server has.
pub(crate) fn up_from_nothing_serves_the_shop_and_a_second_up_changes_nothing_as(who: As) {
    let p = Project::with_cold_sandbox_as("up_from_nothing", who);

    let first = p
        .test()
        .arg("up")
        .stdout_has("create container `vl_postgres`")
        .stdout_has(p.is_up())
        .run();
    // nginx finds the backend per request, so its container starts beside postgres's first start (initdb)
    // instead of after the backend's release; the backend still waits for a healthy postgres.
    let at = |needle: &str| {
        first
            .stderr
            .find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in `up`'s steps:\n{}", first.stderr))
    };
    assert!(
        at("create container `vl_nginx` …") < at("create container `vl_postgres`: done"),
        "nginx started only after postgres was healthy:\n{}",
        first.stderr
    );
    assert!(
        at("create container `vl_postgres`: done") < at("release `vl_backend` (blue/green) …"),
        "the backend started before postgres was healthy:\n{}",
        first.stderr
    );

    // The backend's container is created while postgres's first start runs, and started only once postgres
    // accepts connections: its creation time comes before the time postgres's log gives for being ready, its
    // start after it.
    let ready = p
        .ssh("docker logs vl_postgres 2>&1 | grep -m1 'ready to accept connections' | sed -E 's/^([0-9-]+) ([0-9:.]+) UTC.*/\\1T\\2Z/'")
        .ok_stdout();
    let backend = p
        .ssh("docker inspect -f '{{.Created}} {{.State.StartedAt}}' vl_backend")
        .ok_stdout();
    let (created, started) = backend.trim().split_once(' ').unwrap_or_default();
    let instant = |t: &str| {
        humantime::parse_rfc3339(t.trim())
            .unwrap_or_else(|e| panic!("a time `{t}` from the host: {e}\n{}", first.stderr))
    };
    let ready = instant(&ready);
    assert!(
        instant(created) < ready && ready < instant(started),
        "the backend was created at {created} and started at {started}, postgres was ready at {ready:?}:\n{}",
        first.stderr
    );

    let health = health_json(&p);
    assert!(health["uptime_s"].as_f64().is_some(), "{health}");
    assert_eq!(
        health["database"]["status"], "up",
        "the backend reaches the database: {health}"
    );

    // Postgres and the backend publish nothing; nginx is the only way in.
    assert_eq!(p.ssh("docker port vl_postgres").ok_stdout(), "");
    assert_eq!(p.ssh("docker port vl_backend").ok_stdout(), "");
    assert!(p.ssh("docker port vl_nginx").ok_stdout().contains("80/tcp"));

    let (code, page) = p.http_get("/");
    assert_eq!(code, 200);
    assert!(page.contains(&p.name), "{page}");

    // A converged host applies nothing.
    p.test()
        .arg("up")
        .stdout(p.converged())
        .stderr_lacks("[1/")
        .run();
    p.test()
        .args(["plan", "--exit-code"])
        .status(0)
        .stdout(p.no_changes())
        .run();

    // Another machine (a CI runner, a colleague's laptop) has none of this project's images: it builds or finds
    // the same sources again. The host keeps the image it has for those inputs, so nothing is sent and nothing
    // is released. Only this project's names go: the image ID may be shared by other projects' builds of the
    // same sources (removing it by ID would pull it from under them).
    let ids = p.containers();
    let repo = format!("vl/{}-backend", p.name);
    let local = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {repo} | xargs -r docker rmi"
        ))
        .output()
        .unwrap();
    assert!(local.status.success(), "{local:?}");
    // Nothing sent, nothing applied.
    p.test()
        .arg("up")
        .stdout(p.converged())
        .stderr_lacks("send images")
        .stderr_lacks("[1/")
        .run();
    assert_eq!(p.containers(), ids, "no container replaced");

    let status = p.vldeploy(&["status", "--output", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let healthy = v["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["health"] == "healthy")
        .count();
    assert_eq!(healthy, 3, "{}", status.stdout);
}

#[test]
fn one_env_value_recreates_only_the_backend_and_a_template_change_reloads_only_nginx() {
    let p = Project::deployed("changes");
    let before = p.containers();

    p.write_stack(&p.stack_yaml(|t| *t = t.replace("RUST_LOG: info", "RUST_LOG: debug")));
    // Pending changes exit 2.
    p.test()
        .args(["plan", "--exit-code"])
        .status(2)
        .stdout(format!(
            "{}: 1 change\n  ~ release `vl_backend` (blue/green)  (env ~RUST_LOG)\n",
            p.target()
        ))
        .run();
    p.vldeploy(&["up"]).ok();
    let after = p.containers();
    assert_eq!(
        before["vl_postgres"], after["vl_postgres"],
        "postgres untouched"
    );
    assert_eq!(before["vl_nginx"], after["vl_nginx"], "nginx untouched");
    assert_ne!(
        before["vl_backend"], after["vl_backend"],
        "backend replaced"
    );
    health_json(&p);

    // The project's own nginx template replaces the embedded one: only nginx reloads.
    let tpl_dir = p.path().join("templates/nginx");
    std::fs::create_dir_all(&tpl_dir).unwrap();
    let tpl = std::fs::read_to_string(
        crate::support::project::repo().join("templates/nginx/site.conf.j2"),
    )
    .unwrap();
    let tpl = tpl.replace(
        "server_tokens off;",
        "server_tokens off;\n    add_header X-Shop-Test reloaded always;",
    );
    std::fs::write(tpl_dir.join("site.conf.j2"), tpl).unwrap();
    p.test()
        .arg("plan")
        .stdout_has("reload `vl_nginx`")
        .stdout_has("site.conf")
        .stdout_lacks("recreate")
        .run();
    p.vldeploy(&["up"]).ok();
    assert_eq!(
        p.containers(),
        after,
        "no container replaced by a template change"
    );
    let headers = p.ssh("curl -sSI http://127.0.0.1/nginx-health").ok_stdout();
    assert!(headers.contains("X-Shop-Test: reloaded"), "{headers}");
    p.test().arg("up").stdout(p.converged()).run();
}

#[test]
fn down_then_up_keeps_the_database() {
    let p = Project::deployed("down_up");
    let psql = "docker exec vl_postgres psql -U postgres -d vaibava_db -tAc";
    p.ssh(&format!(
        "{psql} \"CREATE TABLE keepme(v text); INSERT INTO keepme VALUES ('still here')\""
    ))
    .ok();

    p.test()
        .arg("down")
        .stdout(format!(
            "{} (sandbox) is down: removed 3 container(s).\n\
             volumes kept (the database survives); `down --volumes` deletes them.\n",
            p.name
        ))
        .run();
    assert!(p.containers().is_empty(), "down removes the containers");

    // Deleting volumes without a terminal and without --yes is refused, and changes nothing.
    p.test()
        .args(["down", "--volumes"])
        .status(1)
        .stdout("")
        .stderr(format!(
            "error: refusing to delete the volumes of `{}` (sandbox) without confirmation: this deletes the \
             database.\n  help: run it on a terminal to confirm, or pass `--yes` in automation\n",
            p.name
        ))
        .run();

    p.vldeploy(&["up"]).ok();
    let row = p.ssh(&format!("{psql} 'SELECT v FROM keepme'")).ok_stdout();
    assert_eq!(row.trim(), "still here");
    health_json(&p);
}

#[test]
fn up_killed_part_way_converges_on_the_next_run() {
    let p = Project::with_cold_sandbox_as("interrupted", As::Root);
    // Kill `up` as it starts step N, for several N, then run it again.
    for kill_at in ["[2/", "[5/", "[7/", "[8/"] {
        let mut child = p
            .command(&["up"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn({
            let kill_at = kill_at.to_string();
            move || {
                use std::io::BufRead;
                let mut seen = String::new();
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    seen.push_str(&line);
                    seen.push('\n');
                    if line.starts_with(&kill_at) {
                        return (true, seen);
                    }
                }
                (false, seen)
            }
        });
        let deadline = Instant::now() + Duration::from_secs(600);
        let (hit, seen) = loop {
            if reader.is_finished() {
                break reader.join().unwrap();
            }
            assert!(Instant::now() < deadline, "up did not reach {kill_at}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("killed at {kill_at} (reached: {hit})\n{seen}");
        // Then kill was either mid-step or (when the plan was shorter) after completion: both must converge.
        let again = p.test().arg("up").run();
        assert!(
            again.stdout.contains(&p.is_up()) || again.stdout.contains(&p.converged()),
            "{}",
            again.stdout
        );
        let names: Vec<String> = p.containers().into_keys().collect();
        assert_eq!(
            names,
            vec!["vl_backend", "vl_nginx", "vl_postgres"],
            "no orphans after killing at {kill_at}"
        );
        health_json(&p);
        // Make the next round replace containers again.
        p.ssh("docker rm -f vl_backend vl_nginx").ok();
    }

    // A create that was in flight when `up` was killed can land beside the next run's own: two networks of one
    // name (the engine's API, unlike the CLI, does not refuse it), and a container joined by name cannot start.
    let public = p
        .ssh("docker network ls --format '{{.Name}}' | grep '_public$'")
        .ok_stdout()
        .trim()
        .to_string();
    let stack = public.trim_end_matches("_public");
    let created = p.ssh(&format!(
        "curl -fsS --unix-socket /var/run/docker.sock -H 'Content-Type: application/json' \
         -d '{{\"Name\":\"{public}\",\"Driver\":\"bridge\",\"Labels\":{{\"vldeploy.stack\":\"{stack}\"}}}}' \
         http://localhost/networks/create"
    ))
    .ok_stdout();
    let count = |p: &Project| {
        p.ssh(&format!(
            "docker network ls -q --filter name=^{public}$ | wc -l"
        ))
        .ok_stdout()
        .trim()
        .to_string()
    };
    assert_eq!(
        count(&p),
        "2",
        "the engine holds two networks of one name: {created}\n{}",
        p.ssh("docker network ls").ok_stdout()
    );
    let again = p.test().arg("up").run();
    assert!(again.stdout.contains(&p.is_up()), "{}", again.stdout);
    assert_eq!(count(&p), "1", "the second network was removed");
    health_json(&p);
}

#[test]
fn an_unknown_host_key_is_refused_and_nothing_changes() {
    let p = Project::with_sandbox("unknown_key");
    let known = p.path().join(".vldeploy/sandbox/known_hosts");
    let real = std::fs::read_to_string(&known).unwrap();
    std::fs::write(&known, "").unwrap();
    // The fingerprint is shown, and the command to trust it.
    p.test()
        .arg("up")
        .status(1)
        .stderr_has("SHA256:")
        .stderr_has("ssh-keyscan")
        .stdout_lacks("panicked")
        .stderr_lacks("panicked")
        .run();
    std::fs::write(&known, real).unwrap();
    assert!(p.containers().is_empty(), "nothing was created on the host");

    // A changed key is refused too, loudly.
    let other = tempfile::tempdir().unwrap();
    let key = other.path().join("k");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let port = p.sandbox_var("SANDBOX_SSH_PORT");
    let fake = format!(
        "[127.0.0.1]:{port} {}",
        pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let real = std::fs::read_to_string(&known).unwrap();
    std::fs::write(&known, format!("{fake}\n")).unwrap();
    let run = p.test().arg("plan").status(1).run();
    assert!(
        run.stderr.to_lowercase().contains("changed"),
        "{}",
        run.stderr
    );
    std::fs::write(&known, real).unwrap();
    assert!(p.containers().is_empty());
}

#[test]
fn connection_problems_give_one_clear_error_each() {
    let p = Project::with_sandbox("conn_errors");
    let base = p.stack_yaml(|_| {});

    // Wrong key path.
    p.write_stack(&base.replace(
        "ssh_key: .vldeploy/sandbox/id_ed25519",
        "ssh_key: .vldeploy/sandbox/no_such_key",
    ));
    p.test()
        .arg("plan")
        .status(1)
        .stderr_has("no_such_key")
        .run();

    // Unreachable host: a closed port on loopback.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    p.write_stack(&base.replace("${SANDBOX_SSH_PORT}", &closed.to_string()));
    p.test()
        .arg("plan")
        .status(1)
        .stderr_has(format!("127.0.0.1:{closed}"))
        .run();

    // No Docker engine on the host.
    p.write_stack(&base);
    p.ssh("pkill -x dockerd; for i in $(seq 50); do [ -S /var/run/docker.sock ] || break; sleep 0.2; done; rm -f /var/run/docker.sock").ok();
    let run = p
        .test()
        .arg("plan")
        .status(1)
        .stdout_lacks("panicked")
        .stderr_lacks("panicked")
        .run();
    assert!(
        run.stderr.to_lowercase().contains("docker"),
        "{}",
        run.stderr
    );
}

#[test]
fn secrets_never_appear_in_any_output() {
    let p = Project::with_sandbox("secrets");
    let secrets = [p.secret("POSTGRES_PASSWORD"), p.secret("ADMIN_TOKEN")];
    let mut outputs = Vec::new();
    let env = [("VLDEPLOY_LOG", "debug")];
    outputs.push(p.vldeploy_env(&["plan"], &env));
    outputs.push(p.vldeploy_env(&["plan", "--output", "json"], &env));
    outputs.push(p.vldeploy_env(&["up"], &env).ok());
    p.write_stack(&p.stack_yaml(|t| *t = t.replace("RUST_LOG: info", "RUST_LOG: warn")));
    outputs.push(p.vldeploy_env(&["up", "--output", "json"], &env).ok());
    outputs.push(p.vldeploy_env(&["status"], &env).ok());
    outputs.push(p.vldeploy_env(&["logs", "backend", "-n", "200"], &env).ok());
    outputs.push(
        p.vldeploy_env(&["logs", "postgres", "-n", "200"], &env)
            .ok(),
    );
    // At debug, the log shows each remote command with its host, exit status and duration, each Docker API
    // call with its status and duration, and each applied step.
    let up = &outputs[2].stderr;
    let has = |what: &str, parts: &[&str]| {
        assert!(
            up.lines().any(|l| parts.iter().all(|p| l.contains(p))),
            "the debug log of `up` shows {what}:\n{up}"
        );
    };
    has(
        "a remote command",
        &[
            "DEBUG",
            "remote command: ",
            "host=root@127.0.0.1:",
            "status=0",
            "elapsed_ms=",
        ],
    );
    has(
        "a Docker API call",
        &[
            "DEBUG",
            "docker api: GET /containers/json?",
            "status=200",
            "elapsed_ms=",
        ],
    );
    has("a step", &["DEBUG", "step{index=1 ", "step started: "]);
    has(
        "a step's duration",
        &["DEBUG", "step finished: ", "elapsed_ms="],
    );
    no_plain_secret_hash_in_labels(&p);
    // The key secrets are hashed with stays on the host, readable by its owner only.
    let key = format!("/var/lib/vldeploy/{}/hash.key", p.name);
    assert_eq!(
        p.ssh(&format!("stat -c %a {key}")).ok_stdout().trim(),
        "600"
    );

    // A changed secret still releases the backend, named but not shown; then nothing is left to do.
    let before = p.containers();
    let token = format!("{}-rotated", p.secret("ADMIN_TOKEN"));
    let secrets_env = p.path().join(".vldeploy/sandbox/secrets.env");
    let text = std::fs::read_to_string(&secrets_env).unwrap();
    let rotated: String = text
        .lines()
        .map(|l| {
            if l.starts_with("ADMIN_TOKEN=") {
                format!("ADMIN_TOKEN={token}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&secrets_env, rotated).unwrap();
    let plan = p
        .test()
        .arg("plan")
        .env(env[0].0, env[0].1)
        .stdout(format!(
            "{}: 1 change\n  ~ release `vl_backend` (blue/green)  (env ~ADMIN_TOKEN)\n",
            p.target()
        ))
        .run();
    outputs.push(plan);
    outputs.push(p.vldeploy_env(&["up"], &env).ok());
    let after = p.containers();
    assert_ne!(
        before["vl_backend"], after["vl_backend"],
        "backend released"
    );
    assert_eq!(
        before["vl_postgres"], after["vl_postgres"],
        "postgres untouched"
    );
    assert_eq!(before["vl_nginx"], after["vl_nginx"], "nginx untouched");
    no_plain_secret_hash_in_labels(&p);
    let again = p
        .test()
        .arg("up")
        .env(env[0].0, env[0].1)
        .stdout(p.converged())
        .run();
    outputs.push(again);

    let secrets = [secrets[0].clone(), secrets[1].clone(), token];
    for s in &secrets {
        assert!(s.len() >= 16, "sandbox secrets are long random strings");
    }
    for run in &outputs {
        no_secret(run, &secrets);
    }
}

/// No label of any container holds an unkeyed SHA-256 (any prefix of 8 hex digits or more) of a secret
/// variable as the container has it, `KEY=value`, or of the value alone: such a hash could be checked offline.
fn no_plain_secret_hash_in_labels(p: &Project) {
    use sha2::{Digest, Sha256};
    let names = ["vl_postgres", "vl_backend", "vl_nginx"];
    let labels = p
        .ssh(&format!(
            "docker inspect -f '{{{{json .Config.Labels}}}}' {}",
            names.join(" ")
        ))
        .ok_stdout();
    assert!(labels.contains("vldeploy.env-hashes"), "{labels}");
    let envs = p
        .ssh(&format!(
            "docker inspect -f '{{{{range .Config.Env}}}}{{{{println .}}}}{{{{end}}}}' {}",
            names.join(" ")
        ))
        .ok_stdout();
    let secrets = [p.secret("POSTGRES_PASSWORD"), p.secret("ADMIN_TOKEN")];
    let secret_vars: Vec<&str> = envs
        .lines()
        .filter(|l| secrets.iter().any(|s| l.contains(s.as_str())))
        .collect();
    assert!(
        secret_vars.len() >= 3,
        "POSTGRES_PASSWORD, DATABASE_URL and ADMIN_TOKEN carry secrets"
    );
    for line in secret_vars {
        let (key, value) = line.split_once('=').unwrap();
        for text in [line, value] {
            let hash = hex::encode(Sha256::digest(text.as_bytes()));
            assert!(
                !labels.contains(&hash[..8]),
                "a label holds the plain SHA-256 of `{key}`'s secret value: {labels}"
            );
        }
    }
}

trait OkStdout {
    fn ok_stdout(self) -> String;
}

impl OkStdout for crate::support::project::Run {
    #[track_caller]
    fn ok_stdout(self) -> String {
        self.ok().stdout
    }
}
