//! Zero-downtime backend releases under load: redeploys, a candidate that never becomes healthy, rollback.

use std::time::Duration;

use crate::support::load;
use crate::support::project::{As, Project};

/// A steady few hundred requests a second through nginx to the backend (which asks the database each time).
fn steady_load(p: &Project) -> load::Load {
    let port: u16 = p.sandbox_var("SANDBOX_HTTP_PORT").parse().unwrap();
    load::start(port, "/api/health", 4, 50, Duration::from_secs(600))
}

fn with_release_env(p: &Project, n: usize) -> String {
    p.stack_yaml(|t| {
        *t = t.replace(
            "      RUST_LOG: info\n",
            &format!("      RUST_LOG: info\n      RELEASE_N: \"{n}\"\n"),
        )
    })
}

/// The value of `key` in the live backend container's environment (empty when unset).
pub(crate) fn live_env(p: &Project, key: &str) -> String {
    let out = p
        .ssh("docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' vl_backend")
        .ok()
        .stdout;
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
        .to_string()
}

#[test]
fn release_five_redeploys_under_load_drop_no_request() {
    let p = Project::deployed("release_redeploys");
    let load = steady_load(&p);
    std::thread::sleep(Duration::from_secs(2));
    for n in 1..=5 {
        p.write_stack(&with_release_env(&p, n));
        p.test()
            .arg("up")
            .stdout_has("release `vl_backend` (blue/green)")
            .stdout_has(p.is_up())
            .run();
        assert_eq!(live_env(&p, "RELEASE_N"), n.to_string());
    }
    std::thread::sleep(Duration::from_secs(2));
    let stats = load.stop();
    eprintln!("load across 5 releases: {stats:?}");
    assert!(stats.ok > 300, "the load ran: {stats:?}");
    assert_eq!(
        (stats.non_2xx, stats.errors),
        (0, 0),
        "no request failed: {:?}",
        stats.failures
    );
    let names: Vec<String> = p.containers().into_keys().collect();
    assert_eq!(
        names,
        vec!["vl_backend", "vl_nginx", "vl_postgres"],
        "no candidate left behind"
    );
    let releases = p.vldeploy(&["releases", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&releases.stdout).unwrap();
    assert_eq!(
        v["releases"].as_array().unwrap().len(),
        5,
        "the host keeps the last five releases"
    );
    assert_eq!(v["live"], v["releases"][4]["id"]);
}

#[test]
fn release_a_candidate_that_never_becomes_healthy_leaves_the_live_release_serving() {
    let p = Project::deployed("release_unhealthy");
    let live_before = p.containers()["vl_backend"].clone();
    let load = steady_load(&p);
    // The candidate cannot reach its database: /api/health answers 503 and the health check never passes.
    let broken = p.stack_yaml(|t| {
        *t = t
            .replace("@postgres:5432/vaibava_db", "@no-such-host:5432/vaibava_db")
            .replace(
                "      http: /api/health\n      interval: 2s\n      timeout: 5s\n      retries: 30",
                "      http: /api/health\n      interval: 1s\n      timeout: 2s\n      retries: 4",
            );
    });
    assert!(
        broken.contains("retries: 4"),
        "the test edits the backend's health check"
    );
    p.write_stack(&broken);
    // It names the check and shows the candidate's own last log lines.
    p.test()
        .arg("up")
        .status(1)
        .stderr_has("did not become healthy")
        .stderr_has("the live release keeps serving")
        .stderr_has("check: CMD-SHELL")
        .stderr_has("/api/health")
        .stderr_has("last log lines of `vl_backend_candidate`")
        .stderr_has("database_connection_failed")
        .run();
    let stats = load.stop();
    assert_eq!(
        p.containers()["vl_backend"],
        live_before,
        "the live container was not touched"
    );
    assert!(
        !p.containers().contains_key("vl_backend_candidate"),
        "the candidate is removed"
    );
    assert!(stats.ok > 100, "{stats:?}");
    assert_eq!(
        (stats.non_2xx, stats.errors),
        (0, 0),
        "no request failed: {:?}",
        stats.failures
    );
    let (code, _) = p.http_get("/api/health");
    assert_eq!(code, 200);
}

/// The flow, connected as `who`: `tests/as_deploy.rs` runs it as `deploy`, the user a real server has.
pub(crate) fn release_rollback_goes_back_without_dropping_a_request_as(who: As) {
    let p = Project::with_sandbox_as("release_rollback", who, &[]);
    p.write_stack(&with_release_env(&p, 1));
    p.vldeploy(&["up"]).ok();
    p.write_stack(&with_release_env(&p, 2));
    p.vldeploy(&["up"]).ok();
    assert_eq!(live_env(&p, "RELEASE_N"), "2");

    let load = steady_load(&p);
    std::thread::sleep(Duration::from_secs(1));
    p.test()
        .arg("rollback")
        .stdout_has("rolled back `vl_backend`")
        .run();
    std::thread::sleep(Duration::from_secs(1));
    let stats = load.stop();
    assert_eq!(
        live_env(&p, "RELEASE_N"),
        "1",
        "the previous release serves"
    );
    assert!(stats.ok > 50, "{stats:?}");
    assert_eq!(
        (stats.non_2xx, stats.errors),
        (0, 0),
        "no request failed: {:?}",
        stats.failures
    );

    // The stack's own configuration is what `up` puts back.
    p.test()
        .arg("plan")
        .stdout_has("release `vl_backend`")
        .run();
    assert!(p.audited("rollback"), "{:?}", p.audit());
    // Rolling back to a release that is not kept is a clear error.
    p.test()
        .args(["rollback", "backend-0000"])
        .status(1)
        .stderr_has("no release `backend-0000`")
        .run();
}

#[test]
fn release_up_backup_before_takes_a_verified_backup_first() {
    let p = Project::with_sandbox("release_backup_before");
    // On a fresh host there is no database yet; `up` says so and goes on.
    p.test()
        .args(["up", "--backup-before"])
        .stderr_has("nothing to back up")
        .run();
    assert_eq!(
        p.vldeploy(&["backup", "list", "-o", "json"])
            .ok()
            .stdout
            .matches("pre-up")
            .count(),
        0
    );

    p.write_stack(&with_release_env(&p, 1));
    p.test()
        .args(["up", "--backup-before"])
        .stderr_has("verified backup `")
        .run();
    // The backup made before the release is listed.
    p.test()
        .args(["backup", "list", "-o", "json"])
        .stdout_has("pre-up")
        .run();
    assert_eq!(
        live_env(&p, "RELEASE_N"),
        "1",
        "the release went ahead after the verified backup"
    );
    let audit = p.audit();
    assert!(
        audit
            .iter()
            .any(|e| e.to_string().contains("verified backup")),
        "{audit:?}"
    );
}

/// Whether `container` is in the backend's stable name on the sandbox host (on the serving network).
fn serves(p: &Project, container: &str) -> bool {
    let run = p.ssh(&format!(
        "docker inspect -f '{{{{json .NetworkSettings.Networks}}}}' {container} 2>/dev/null"
    ));
    run.stdout.contains(&format!("\"{}_serving\"", p.name))
}

#[test]
fn release_killed_right_after_the_switch_is_finished_by_the_next_up_without_a_failed_request() {
    let p = Project::deployed("release_killed_switch");
    assert!(serves(&p, "vl_backend"), "the live release serves");

    // One request every 0.2 s through nginx, one connection each, across the kill and the next `up`.
    let port: u16 = p.sandbox_var("SANDBOX_HTTP_PORT").parse().unwrap();
    let probe = load::start(port, "/api/health", 1, 5, Duration::from_secs(600));
    p.write_stack(&with_release_env(&p, 1));
    // Kill -9 as soon as the candidate is in the stable name nginx resolves, beside the old release. The host
    // watches for it itself (every 50 ms, one SSH session): a fresh login per look can take longer than the
    // switch on a loaded machine.
    let mut watch = crate::support::ssh::Host::login(&p)
        .command(&format!(
            "until docker inspect -f '{{{{json .NetworkSettings.Networks}}}}' vl_backend_candidate 2>/dev/null \
             | grep -q '\"{}_serving\"'; do sleep 0.05; done; echo joined",
            p.name
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, joined) = std::sync::mpsc::channel();
    let out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        let _ = tx.send(line);
    });
    let mut child = p
        .command(&["up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(line) = joined.recv_timeout(Duration::from_millis(10)) {
            assert_eq!(
                line.trim(),
                "joined",
                "the host's watch ended without the switch"
            );
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "`up` ended before the switch was seen"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the candidate never joined the stable name"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = watch.kill();
    let _ = watch.wait();
    let left = p.containers();
    let serving = left
        .get("vl_backend_candidate")
        .unwrap_or_else(|| panic!("killed inside the switch window: {left:?}"))
        .clone();

    let again = p.vldeploy(&["up"]).ok();
    std::thread::sleep(Duration::from_secs(1));
    let stats = probe.stop();
    eprintln!("probe across the kill and the next up: {stats:?}");
    assert!(stats.ok > 10, "the probe ran: {stats:?}");
    assert_eq!(
        (stats.non_2xx, stats.errors),
        (0, 0),
        "no request failed: {:?}\n{}",
        stats.failures,
        again.all()
    );
    assert_eq!(live_env(&p, "RELEASE_N"), "1", "the new release serves");
    let now = p.containers();
    assert_eq!(
        now.get("vl_backend"),
        Some(&serving),
        "the candidate in the stable name was kept and took the service's name: {}",
        again.all()
    );
    let names: Vec<String> = now.into_keys().collect();
    assert_eq!(names, vec!["vl_backend", "vl_nginx", "vl_postgres"]);
    p.test().arg("up").stdout(p.converged()).run();
}

/// `docker ARGS` on the machine where vldeploy builds; its trimmed stdout.
fn local_docker(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("docker")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn release_two_builds_of_the_same_sources_are_one_image_nothing_is_sent_or_released_again() {
    let p = Project::with_sandbox("release_same_inputs");
    // Inputs of this test's own (a build argument the Dockerfile does not use), so no other stack shares them.
    let backend = crate::support::project::repo().join("backend");
    let stack = p.stack_yaml(|t| {
        *t = t.replace(
            &format!("    build: {}\n", backend.display()),
            &format!(
                "    build:\n      context: {}\n      args:\n        INPUTS_OF: {}\n",
                backend.display(),
                p.name
            ),
        );
    });
    assert!(
        stack.contains("INPUTS_OF"),
        "the test edits the backend's build"
    );
    p.write_stack(&stack);
    p.vldeploy(&["up"]).ok();
    let image_of_backend = || {
        p.ssh("docker inspect -f '{{.Image}}' vl_backend")
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    let first = image_of_backend();
    let label = |image: &str| {
        local_docker(
            &[
                "image",
                "inspect",
                "-f",
                "{{index .Config.Labels \"vldeploy.build-inputs\"}}",
                image,
            ],
            None,
        )
    };
    let inputs = label(&first);
    assert_eq!(inputs.len(), 64, "{inputs}");

    // Another build of the same sources, with another ID (as two builds at once give): newer, same inputs label.
    let repository = format!("vl/{}-backend", p.name);
    let first_tag = format!("{repository}:{}", &first["sha256:".len()..][..12]);
    let twin_tag = format!("{repository}:twin");
    local_docker(
        &["build", "-q", "-t", &twin_tag, "-"],
        Some(&format!("FROM {first_tag}\nLABEL vldeploy.test-twin=1\n")),
    );
    let twin = local_docker(&["image", "inspect", "-f", "{{.Id}}", &twin_tag], None);
    assert_ne!(twin, first);
    assert_eq!(label(&twin), inputs);

    // Both where vldeploy builds: the first one stays the image, so nothing is sent or released.
    p.test().arg("up").stdout(p.converged()).run();
    assert_eq!(image_of_backend(), first);

    // Only the twin where vldeploy builds (as on another machine), the first on the host: the host's is used.
    local_docker(&["rmi", &first_tag], None);
    p.test().arg("plan").stdout(p.no_changes()).run();
    // A real change releases the host's image of those inputs, sending none.
    p.write_stack(&stack.replace("RUST_LOG: info", "RUST_LOG: warn"));
    p.test()
        .arg("up")
        .stdout_has("release `vl_backend` (blue/green)  (env ~RUST_LOG)")
        .stdout_lacks("send image")
        .stderr_lacks("send image")
        .run();
    assert_eq!(image_of_backend(), first);
    p.test().arg("up").stdout(p.converged()).run();
    local_docker(&["rmi", &twin_tag], None);
}
