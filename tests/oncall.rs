//! The on-call commands against a sandbox host: doctor names a stopped database, restart, exec, cache flush, errors.

mod support;

use support::project::Project;

#[test]
fn oncall_doctor_names_a_stopped_database_and_the_commands_bring_it_back() {
    let p = Project::new("oncall_doctor");
    p.sandbox_up(&[]);
    p.vldeploy(&["up"]).ok();

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
