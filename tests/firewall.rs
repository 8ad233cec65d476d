//! The host firewall against a real sandbox host: only SSH, 80 and 443 answer from outside, whatever Docker
//! publishes, through an engine restart and a reboot; a ruleset that cuts off SSH is reverted by the host itself;
//! a stack that publishes the database is refused with nothing changed.

use std::time::{Duration, Instant};

use crate::support::project::{As, Project};
use crate::support::ssh::ssh_ok;
use serde_json::Value;

/// `vldeploy firewall probe -o json`: its exit code and `port -> (seen, ok)`.
fn probe(p: &Project) -> (i32, Value) {
    let run = p.vldeploy(&["firewall", "probe", "-o", "json"]);
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {}", run.all()));
    (run.code, v)
}

/// What the probe saw on `port`, and whether that was right.
fn seen(report: &Value, port: u16) -> (String, Value) {
    let p = report["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["port"] == port))
        .unwrap_or_else(|| panic!("port {port} is not in the probe: {report}"));
    (
        p["seen"].as_str().unwrap_or("").to_string(),
        p["ok"].clone(),
    )
}

/// Waits (up to 3 minutes) until `cmd` succeeds on the sandbox host.
fn wait_for(p: &Project, what: &str, cmd: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let run = p.ssh(cmd);
        if run.code == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: `{cmd}` still fails after 3 minutes: {}",
            run.all()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Everything on the host that a refused command must leave alone.
fn host_state(p: &Project) -> String {
    ssh_ok(
        p,
        "nft list table inet vldeploy; \
         docker ps -a --format '{{.Names}} {{.ID}} {{.Status}}' | sed 's/ Up .*/ Up/' | sort; \
         docker network ls -q | sort; docker volume ls -q | sort; \
         find /etc/vldeploy /var/lib/vldeploy -type f | sort | xargs sha256sum",
    )
}

#[track_caller]
fn assert_probe_passes(p: &Project, when: &str) {
    let (code, report) = probe(p);
    assert_eq!(code, 0, "{when}: the probe fails: {report}");
    assert_eq!(report["passed"], true, "{when}: {report}");
    assert_eq!(
        seen(&report, 22),
        ("answered".into(), Value::Bool(true)),
        "{when}: {report}"
    );
    assert_eq!(
        seen(&report, 80),
        ("answered".into(), Value::Bool(true)),
        "{when}: {report}"
    );
    assert_eq!(seen(&report, 443).1, Value::Bool(true), "{when}: {report}");
    assert_eq!(
        seen(&report, 5432),
        ("no_answer".into(), Value::Bool(true)),
        "{when}: {report}"
    );
    assert_eq!(
        seen(&report, 8080),
        ("no_answer".into(), Value::Bool(true)),
        "{when}: {report}"
    );
}

/// The flow, connected as `who`: `tests/as_deploy.rs` runs it as `deploy`, the user a real server has.
pub(crate) fn firewall_after_up_only_ssh_http_and_https_answer_even_for_ports_docker_publishes_as(
    who: As,
) {
    let p = Project::with_sandbox_as("firewall_up", who, &[5432, 8080]);

    // Without a firewall the probe can tell: the host answers on 5432 and 8080 (nothing listens, it refuses).
    let (code, report) = probe(&p);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        seen(&report, 5432),
        ("refused".into(), Value::Bool(false)),
        "{report}"
    );
    assert_eq!(
        seen(&report, 8080),
        ("refused".into(), Value::Bool(false)),
        "{report}"
    );

    p.test()
        .arg("up")
        .stdout_has("applied and confirmed over a new connection")
        .run();
    assert_probe_passes(&p, "after up");

    // Containers that publish the database's port and the backend's port, as a careless `docker run` would.
    let image = ssh_ok(&p, "docker inspect -f '{{.Image}}' vl_postgres");
    let image = image.trim();
    for (name, port) in [("stray_db", "5432"), ("stray_backend", "8080")] {
        ssh_ok(
            &p,
            &format!(
                "docker run -d --restart unless-stopped --name {name} -e POSTGRES_PASSWORD=stray \
                 -p {port}:5432 {image}"
            ),
        );
    }
    for name in ["stray_db", "stray_backend"] {
        wait_for(
            &p,
            name,
            &format!("docker exec {name} pg_isready -h 127.0.0.1 -q"),
        );
    }
    // They do serve on the host itself (the firewall, not an idle container, keeps them from outside).
    ssh_ok(&p, "timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/5432'");
    assert_probe_passes(&p, "with containers publishing 5432 and 8080");
    assert_eq!(p.http_get("/").0, 200);

    // A stack that publishes the database is refused, and nothing on the host changes.
    let before = host_state(&p);
    let good = p.stack_yaml(|_| {});
    p.write_stack(&p.stack_yaml(|t| {
        *t = t.replacen(
            "    volumes:\n      - pgdata",
            "    ports: [\"5432:5432\"]\n    volumes:\n      - pgdata",
            1,
        );
    }));
    p.test()
        .arg("up")
        .status(1)
        .stderr_has("the database must stay on the private network")
        .stderr_has("remove `ports`")
        .run();
    assert_eq!(host_state(&p), before, "a refused stack changed the host");
    p.write_stack(&good);

    // Unchanged rules are not applied again.
    p.test()
        .arg("up")
        .stdout(p.converged())
        .stderr_lacks("firewall:")
        .run();

    // Restarting the host's Docker engine (which rewrites its own iptables rules) reopens nothing.
    ssh_ok(&p, "sandbox-dockerd restart");
    for name in ["stray_db", "stray_backend"] {
        wait_for(
            &p,
            name,
            &format!("docker exec {name} pg_isready -h 127.0.0.1 -q"),
        );
    }
    wait_for(
        &p,
        "nginx after the engine restart",
        "[ \"$(docker inspect -f '{{.State.Health.Status}}' vl_nginx)\" = healthy ]",
    );
    assert_probe_passes(&p, "after a restart of the Docker engine");
    assert_eq!(p.http_get("/").0, 200);

    // A reboot: the host loads the installed ruleset before its engine starts.
    let container = format!("vldeploy-sandbox-{}", p.name);
    let stop = std::process::Command::new("docker")
        .args(["stop", "-t", "40", &container])
        .output()
        .expect("docker runs");
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    p.sandbox_up(&[5432, 8080]);
    for name in ["stray_db", "stray_backend"] {
        wait_for(
            &p,
            name,
            &format!("docker exec {name} pg_isready -h 127.0.0.1 -q"),
        );
    }
    wait_for(
        &p,
        "nginx after the reboot",
        "[ \"$(docker inspect -f '{{.State.Health.Status}}' vl_nginx)\" = healthy ]",
    );
    assert_probe_passes(&p, "after a reboot");
    let status = p.vldeploy(&["firewall", "status", "-o", "json"]).ok();
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["in_sync"], true, "{status}");
}

#[test]
fn firewall_a_ruleset_that_cuts_off_ssh_is_reverted_by_the_host_itself() {
    let p = Project::with_sandbox("firewall_revert");

    p.test()
        .args(["firewall", "apply"])
        .stdout_has("applied and confirmed")
        .run();
    p.test()
        .args(["firewall", "apply"])
        .stdout_has("firewall: no changes (")
        .run();
    let table = ssh_ok(&p, "nft list table inet vldeploy");

    p.test()
        .args(["firewall", "apply", "--revert-after", "10"])
        .env("VLDEPLOY_FIREWALL_TEST_CUT_SSH", "1")
        .status(1)
        .stderr_has("the new firewall ruleset cut off")
        .stderr_has("the host restored its previous ruleset by itself after 10s")
        .run();

    // The host is reachable over new connections, with the ruleset it had before.
    assert_eq!(ssh_ok(&p, "nft list table inet vldeploy"), table);
    let status = p.vldeploy(&["firewall", "status", "-o", "json"]).ok();
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["in_sync"], true, "{status}");
    assert!(
        status["last_apply"]
            .as_str()
            .is_some_and(|s| s.starts_with("reverted 0")),
        "{status}"
    );
    assert_eq!(status["revert_armed"], Value::Null, "{status}");
    p.test()
        .args(["audit", "-n", "1"])
        .stdout_has("cut off")
        .run();
}
