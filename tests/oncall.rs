//! The on-call commands against a sandbox host: doctor, restart, exec, cache flush, maintenance on/off, errors.

use crate::support::project::{As, Project};
use crate::support::ssh::no_secret;

/// The flow, connected as `who`: `tests/as_deploy.rs` runs it as `deploy`, the user a real server has.
pub(crate) fn oncall_doctor_names_a_stopped_database_and_the_commands_bring_it_back_as(who: As) {
    let p = Project::deployed_as("oncall_doctor", who);

    // A fresh stack needs nothing.
    p.test().arg("doctor").status(0).run();

    p.ssh("docker stop vl_postgres").ok();
    // It names the check, the cause and the action.
    let sick = p
        .test()
        .arg("doctor")
        .status(1)
        .stdout_has("FAIL postgres container")
        .stdout_has("the database is down")
        .stdout_has("vldeploy restart postgres")
        .run();
    let json = p.test().args(["doctor", "-o", "json"]).status(1).run();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["healthy"], false);

    p.vldeploy(&["restart", "postgres"]).ok();
    // The backend notices the database again within its retry backoff.
    let mut last = String::new();
    for _ in 0..60 {
        let (code, body) = p.http_get("/api/health");
        if code == 200 {
            last.clear();
            break;
        }
        last = body;
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert!(
        last.is_empty(),
        "health came back after the restart: {last}"
    );

    let errors = p
        .vldeploy(&["logs", "backend", "--errors", "-n", "2000"])
        .ok();
    assert!(
        !errors.stdout.trim().is_empty(),
        "the outage left key errors in the logs"
    );
    assert!(
        errors
            .stdout
            .lines()
            .all(|l| l.contains("database_connection_failed")
                || l.contains("payment_verification_failed")
                || l.contains("shiprocket_auth_error")),
        "only key error events: {}",
        errors.stdout
    );

    let one = p
        .vldeploy(&[
            "exec",
            "postgres",
            "--",
            "psql",
            "-U",
            "postgres",
            "-tAc",
            "select 40 + 2",
        ])
        .ok();
    assert_eq!(one.stdout.trim(), "42");
    // exec passes the command's exit status on.
    p.test()
        .args(["exec", "postgres", "--", "sh", "-c", "exit 3"])
        .status(3)
        .run();

    let flushed = p
        .test()
        .args(["cache", "flush"])
        .stdout("search cache flushed.\n")
        .run();
    // `Project::audit` also checks that the audit log shows no secret.
    let audit = p.audit();
    for command in ["restart postgres", "exec postgres", "cache flush"] {
        assert!(
            audit.iter().any(|e| e["command"] == command),
            "audited `{command}`: {audit:?}"
        );
    }
    for run in [&flushed, &sick] {
        no_secret(run, &p.secret_values());
    }
}

/// `GET path` through the sandbox's nginx with curl: status, headers (lowercase names) and body.
fn get_with_headers(p: &Project, path: &str) -> (u16, String, String) {
    let url = format!(
        "http://127.0.0.1:{}{path}",
        p.sandbox_var("SANDBOX_HTTP_PORT")
    );
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-", "-o", "-", &url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_lowercase(), body.to_string())
}

/// The flow, connected as `who`: `tests/as_deploy.rs` runs it as `deploy`, the user a real server has.
pub(crate) fn oncall_maintenance_on_answers_503_and_off_serves_again_as(who: As) {
    let p = Project::deployed_as("oncall_maintenance", who);
    assert_eq!(p.http_get("/api/health").0, 200, "the fresh stack serves");

    let before = p.vldeploy(&["maintenance", "status", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(before.stdout.trim()).unwrap();
    assert_eq!(v["on"], false, "{}", before.stdout);

    let message = "payment gateway down, INC-1234";
    p.test()
        .args(["maintenance", "on", "--message", message])
        .stdout_has("maintenance is on")
        .run();

    let (code, headers, body) = get_with_headers(&p, "/api/health");
    assert_eq!(code, 503, "{headers}{body}");
    assert!(headers.contains("\r\nretry-after: 30"), "{headers}");
    assert!(
        headers.contains("content-type: application/json"),
        "{headers}"
    );
    let json: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(json["error"], "maintenance", "{body}");
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
    let (code, _) = p.http_get("/");
    assert_eq!(code, 200, "the static site still serves");

    let status = p.vldeploy(&["maintenance", "status", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(v["on"], true, "{}", status.stdout);
    assert!(
        v["since"].as_u64().is_some_and(|s| s > 0),
        "{}",
        status.stdout
    );
    let host = p.target();
    p.test()
        .args(["maintenance", "status"])
        .stdout_has(format!("maintenance is ON on {host} since "))
        .stdout_has(": nginx answers /api/ with 503 and Retry-After.\n")
        .stdout_has("  lift it with `vldeploy maintenance off -e sandbox`\n")
        .run();

    p.test()
        .args(["maintenance", "on"])
        .stdout_has("already on")
        .run();

    // A restore holds the deploy lock (and keeps the page on): `off` refuses, naming it, and changes nothing.
    let lock = format!("/var/lib/vldeploy/{}/lock", p.name);
    p.ssh(&format!(
        "mkdir {lock} && printf '%s' \"{{\\\"holder\\\":\\\"ops@elsewhere\\\",\\\"machine\\\":\\\"elsewhere\\\",\\\"pid\\\":1,\\\"command\\\":\\\"restore\\\",\\\"started\\\":$(date +%s),\\\"token\\\":\\\"t\\\"}}\" > {lock}/info.json"
    ))
    .ok();
    // It names the holder and its command.
    p.test()
        .args(["maintenance", "off"])
        .status(1)
        .stderr_has("ops@elsewhere")
        .stderr_has("`restore`")
        .run();
    assert_eq!(
        get_with_headers(&p, "/api/health").0,
        503,
        "still in maintenance"
    );
    p.ssh(&format!("rm -rf {lock}")).ok();

    let audit = p.vldeploy(&["audit", "-o", "json"]).ok();
    let entries: Vec<serde_json::Value> = serde_json::from_str(audit.stdout.trim()).unwrap();
    let entry = entries
        .iter()
        .find(|e| e["command"] == "maintenance on")
        .unwrap_or_else(|| panic!("`maintenance on` audited: {}", audit.stdout));
    assert_eq!(entry["result"], "ok");
    assert!(
        entry["changes"].to_string().contains(message),
        "the operator's reason is recorded: {entry}"
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["command"] == "maintenance on")
            .count(),
        1,
        "the no-op second `on` is not audited: {}",
        audit.stdout
    );

    p.test()
        .args(["maintenance", "off"])
        .stdout_has("maintenance is off")
        .run();
    let mut last = (0, String::new());
    for _ in 0..30 {
        last = p.http_get("/api/health");
        if last.0 == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert_eq!(last.0, 200, "the API serves again: {}", last.1);
    p.test()
        .args(["maintenance", "off"])
        .stdout_has("already off")
        .run();
    let v: serde_json::Value = serde_json::from_str(
        p.vldeploy(&["maintenance", "status", "-o", "json"])
            .ok()
            .stdout
            .trim(),
    )
    .unwrap();
    assert_eq!(v["on"], false);
    assert!(p.audited("maintenance off"), "{:?}", p.audit());
}
