//! The on-call commands against a sandbox host: doctor, restart, exec, cache flush, maintenance on/off, errors.

use crate::support::project::Project;

#[test]
fn oncall_doctor_names_a_stopped_database_and_the_commands_bring_it_back() {
    let p = Project::deployed("oncall_doctor");

    let healthy = p.vldeploy(&["doctor"]);
    assert_eq!(
        healthy.code,
        0,
        "a fresh stack needs nothing: {}",
        healthy.all()
    );

    p.ssh("docker stop vl_postgres").ok();
    let sick = p.vldeploy(&["doctor"]);
    assert_eq!(sick.code, 1, "{}", sick.all());
    assert!(
        sick.stdout.contains("FAIL postgres container"),
        "{}",
        sick.stdout
    );
    assert!(
        sick.stdout.contains("the database is down"),
        "names the cause: {}",
        sick.stdout
    );
    assert!(
        sick.stdout.contains("vldeploy restart postgres"),
        "names the action: {}",
        sick.stdout
    );
    let json = p.vldeploy(&["doctor", "-o", "json"]);
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
    let failing = p.vldeploy(&["exec", "postgres", "--", "sh", "-c", "exit 3"]);
    assert_eq!(failing.code, 3, "exec passes the command's exit status on");

    let flushed = p.vldeploy(&["cache", "flush"]).ok();
    assert!(
        flushed.stdout.contains("search cache flushed"),
        "{}",
        flushed.stdout
    );
    let audit = p.vldeploy(&["audit", "-o", "json"]).ok();
    for command in ["restart postgres", "exec postgres", "cache flush"] {
        assert!(
            audit.stdout.contains(&format!("\"command\":\"{command}\"")),
            "audited `{command}`: {}",
            audit.stdout
        );
    }
    let token = p.secret("ADMIN_TOKEN");
    for run in [&flushed, &audit, &sick] {
        assert!(!run.all().contains(&token), "the admin token never shows");
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

#[test]
fn oncall_maintenance_on_answers_503_and_off_serves_again() {
    let p = Project::deployed("oncall_maintenance");
    assert_eq!(p.http_get("/api/health").0, 200, "the fresh stack serves");

    let before = p.vldeploy(&["maintenance", "status", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(before.stdout.trim()).unwrap();
    assert_eq!(v["on"], false, "{}", before.stdout);

    let message = "payment gateway down, INC-1234";
    let on = p
        .vldeploy(&["maintenance", "on", "--message", message])
        .ok();
    assert!(on.stdout.contains("maintenance is on"), "{}", on.all());

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
    let human = p.vldeploy(&["maintenance", "status"]).ok();
    assert!(
        human.stdout.contains("maintenance is ON"),
        "{}",
        human.stdout
    );

    let again = p.vldeploy(&["maintenance", "on"]).ok();
    assert!(again.stdout.contains("already on"), "{}", again.all());

    // A restore holds the deploy lock (and keeps the page on): `off` refuses, naming it, and changes nothing.
    let lock = format!("/var/lib/vldeploy/{}/lock", p.name);
    p.ssh(&format!(
        "mkdir {lock} && printf '%s' \"{{\\\"holder\\\":\\\"ops@elsewhere\\\",\\\"machine\\\":\\\"elsewhere\\\",\\\"pid\\\":1,\\\"command\\\":\\\"restore\\\",\\\"started\\\":$(date +%s),\\\"token\\\":\\\"t\\\"}}\" > {lock}/info.json"
    ))
    .ok();
    let refused = p.vldeploy(&["maintenance", "off"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stderr.contains("ops@elsewhere") && refused.stderr.contains("`restore`"),
        "names the holder and its command: {}",
        refused.stderr
    );
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

    let off = p.vldeploy(&["maintenance", "off"]).ok();
    assert!(off.stdout.contains("maintenance is off"), "{}", off.all());
    let mut last = (0, String::new());
    for _ in 0..30 {
        last = p.http_get("/api/health");
        if last.0 == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert_eq!(last.0, 200, "the API serves again: {}", last.1);
    let again = p.vldeploy(&["maintenance", "off"]).ok();
    assert!(again.stdout.contains("already off"), "{}", again.all());
    let v: serde_json::Value = serde_json::from_str(
        p.vldeploy(&["maintenance", "status", "-o", "json"])
            .ok()
            .stdout
            .trim(),
    )
    .unwrap();
    assert_eq!(v["on"], false);
    let audit = p.vldeploy(&["audit", "-o", "json"]).ok();
    assert!(
        audit.stdout.contains("\"command\":\"maintenance off\""),
        "`maintenance off` audited: {}",
        audit.stdout
    );
}
