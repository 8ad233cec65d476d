//! The go-live checklist end to end: each probed item fails on a seeded violation and passes once fixed, the
//! gate of a gated environment, attestations, waivers, the deploy lock between two `up`, and the audit log.

#![allow(clippy::unwrap_used)]

use crate::support::project::{As, Project};
use crate::support::ssh::no_secret;
use serde_json::Value;

/// The stack with `checklist: {items}` (and `gated: true` when asked) in the sandbox environment.
fn stack_with(p: &Project, items: &[&str], gated: bool, edit: impl FnOnce(&mut String)) -> String {
    p.stack_yaml(|t| {
        *t = t.replacen(
            "    domain: localhost\n",
            &format!(
                "    domain: localhost\n{}    checklist:\n      items: [{}]\n",
                if gated { "    gated: true\n" } else { "" },
                items.join(", ")
            ),
            1,
        );
        edit(t);
    })
}

/// `vldeploy check -o json`: exit code and the finding of `item`.
fn check(p: &Project, item: &str) -> (i32, Value, String) {
    let run = p.test().args(["check", "-o", "json"]).any_status().run();
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("check -o json: {e}\n{}", run.all()));
    let finding = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["item"] == item)
        .cloned()
        .unwrap_or_else(|| panic!("no finding for `{item}`: {v}"));
    (run.code, finding, run.all())
}

#[track_caller]
fn assert_status(p: &Project, item: &str, status: &str) -> Value {
    let (code, finding, all) = check(p, item);
    assert_eq!(finding["status"], status, "{all}");
    assert_eq!(code, i32::from(status != "pass"), "{all}");
    finding
}

#[test]
fn checklist_secrets_fail_on_a_default_value_without_printing_it() {
    let p = Project::with_sandbox("checklist_secrets");
    p.write_stack(&stack_with(&p, &["secrets"], false, |_| {}));
    let good = p.secret("ADMIN_TOKEN");
    let f = assert_status(&p, "secrets", "pass");
    assert!(
        f["evidence"].as_str().unwrap().contains("ADMIN_TOKEN"),
        "{f}"
    );

    p.set_secret("ADMIN_TOKEN", "change_this_secret");
    p.test()
        .arg("check")
        .status(1)
        .stdout_has("`ADMIN_TOKEN` is a well-known default value")
        .stdout_has("fix: ")
        .hides("change_this_secret")
        .run();
    p.set_secret("ADMIN_TOKEN", "short1");
    let f = assert_status(&p, "secrets", "fail");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("only 6 characters"),
        "{f}"
    );
    assert!(!f.to_string().contains("short1"), "{f}");

    p.set_secret("ADMIN_TOKEN", &good);
    assert_status(&p, "secrets", "pass");
}

#[test]
fn checklist_safe_mode_is_read_from_the_running_backend() {
    let p = Project::with_sandbox("checklist_safe_mode");
    let off = |t: &mut String| {
        *t = t.replace(
            "OPERATOR_SAFE_MODE: \"true\"",
            "OPERATOR_SAFE_MODE: \"false\"",
        );
    };
    p.write_stack(&stack_with(&p, &["safe_mode"], false, off));
    p.vldeploy(&["up"]).ok();
    let f = assert_status(&p, "safe_mode", "fail");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("OPERATOR_SAFE_MODE is `false` in `vl_backend`"),
        "{f}"
    );

    p.write_stack(&stack_with(&p, &["safe_mode"], false, |_| {}));
    p.vldeploy(&["up"]).ok();
    assert_status(&p, "safe_mode", "pass");
}

#[test]
fn checklist_auth_rate_limit_needs_a_429_before_ten_requests() {
    let p = Project::with_sandbox("checklist_rate_limit");
    p.write_stack(&stack_with(&p, &["auth_rate_limit"], false, |_| {}));
    p.vldeploy(&["up"]).ok();
    let f = assert_status(&p, "auth_rate_limit", "pass");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("answered 429 at request"),
        "{f}"
    );

    let lifted = |t: &mut String| {
        *t = t.replace(
            "      RUST_LOG: info\n",
            "      RUST_LOG: info\n      AUTH_RATE_LIMIT_PER_IP: \"100000\"\n      AUTH_RATE_LIMIT_PER_DESTINATION: \"100000\"\n",
        );
    };
    p.write_stack(&stack_with(&p, &["auth_rate_limit"], false, lifted));
    p.vldeploy(&["up"]).ok();
    let f = assert_status(&p, "auth_rate_limit", "fail");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("none answered 429"),
        "{f}"
    );

    p.write_stack(&stack_with(&p, &["auth_rate_limit"], false, |_| {}));
    p.vldeploy(&["up"]).ok();
    assert_status(&p, "auth_rate_limit", "pass");
}

#[test]
fn checklist_backup_needs_a_fresh_verified_backup_and_restore_is_audited() {
    let p = Project::with_sandbox("checklist_backup");
    p.write_stack(&stack_with(&p, &["backup"], false, |_| {}));
    p.vldeploy(&["up"]).ok();
    let f = assert_status(&p, "backup", "fail");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("no backup was ever verified"),
        "{f}"
    );

    // A backup that was only taken is not evidence; one verified by a scratch restore is.
    p.vldeploy(&["backup", "now"]).ok();
    assert_status(&p, "backup", "fail");
    p.vldeploy(&["backup", "verify", "latest"]).ok();
    let f = assert_status(&p, "backup", "pass");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("restored into a scratch database"),
        "{f}"
    );

    // Older than the freshness window: stale.
    p.write_stack(&stack_with(&p, &["backup"], false, |t| {
        *t = t.replacen(
            "      items: [backup]\n",
            "      items: [backup]\n      freshness: {backup: 1s}\n",
            1,
        );
    }));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let f = assert_status(&p, "backup", "stale");
    assert!(
        f["evidence"].as_str().unwrap().contains("older than"),
        "{f}"
    );

    let restore = p.vldeploy(&["restore", "latest", "--yes"]).ok();
    no_secret(&restore, &p.secret_values());
    let entries = p.audit();
    assert!(
        entries
            .iter()
            .any(|e| e["command"] == "restore" && e["result"] == "ok"),
        "{entries:?}"
    );
}

#[test]
fn checklist_firewall_fails_when_a_published_port_is_open() {
    let p = Project::with_sandbox_publishing("checklist_firewall", &[5432, 8080]);
    p.write_stack(&stack_with(&p, &["firewall"], false, |_| {}));
    p.vldeploy(&["up"]).ok();
    assert_status(&p, "firewall", "pass");

    // A careless container publishes the database port and the firewall is gone (flushed by hand).
    let image = p
        .ssh("docker inspect -f '{{.Image}}' vl_postgres")
        .ok()
        .stdout;
    p.ssh(&format!(
        "docker run -d --name stray_db -e POSTGRES_PASSWORD=stray -p 5432:5432 {}",
        image.trim()
    ))
    .ok();
    p.ssh("for i in $(seq 1 60); do docker exec stray_db pg_isready -h 127.0.0.1 -q && exit 0; sleep 1; done; exit 1")
        .ok();
    p.ssh("nft delete table inet vldeploy").ok();
    let f = assert_status(&p, "firewall", "fail");
    assert!(f["evidence"].as_str().unwrap().contains("5432/tcp"), "{f}");

    // `up` puts the firewall back; the stray container still publishes 5432, unreachable now.
    p.vldeploy(&["up"]).ok();
    assert_status(&p, "firewall", "pass");
}

/// The flow, connected as `who`: `tests/as_deploy.rs` runs it as `deploy`, the user a real server has.
pub(crate) fn checklist_gate_holds_a_failing_release_until_attested_or_waived_as(who: As) {
    let p = Project::with_sandbox_as("checklist_gate", who, &[]);
    let items = ["safe_mode", "health", "auth_rate_limit", "payment_test"];
    p.write_stack(&stack_with(&p, &items, true, |_| {}));

    // First launch: payment_test is not attested, so the shop stays behind the maintenance page.
    let first = p
        .test()
        .arg("up")
        .status(1)
        .stdout_has("safe_mode")
        .stderr_has("holds the release back")
        .stderr_has("maintenance page")
        .run();
    assert!(
        first.stdout.lines().any(|l| l.starts_with("payment_test ")
            && l.contains(" FAIL ")
            && l.ends_with("not attested yet")),
        "{}",
        first.stdout
    );
    no_secret(&first, &p.secret_values());
    let (code, body) = p.http_get("/api/health");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("maintenance"), "{body}");
    // Lifting the maintenance page by hand would serve the held release: refused.
    p.test()
        .args(["maintenance", "off"])
        .status(1)
        .stderr_has("go-live checklist has not passed")
        .run();
    assert_eq!(p.http_get("/api/health").0, 503);

    // An attestation, then `up` puts the release live.
    p.test()
        .args([
            "checklist",
            "attest",
            "payment_test",
            "--note",
            "paid 1 INR with a real card, refunded",
        ])
        .stdout_has("payment_test attested by")
        .run();
    p.test()
        .args(["checklist", "attest", "ssl", "--note", "looked fine"])
        .status(1)
        .stderr_has("checked by a probe")
        .run();
    p.test().arg("up").stdout_has("all 4 items pass").run();
    assert_eq!(p.http_get("/api/health").0, 200);
    let l1 = p.ssh("docker inspect -f '{{.Id}}' vl_backend").ok().stdout;

    // A release that turns safe mode off is held back: the live release keeps serving, untouched.
    let unsafe_release = |t: &mut String| {
        *t = t.replace(
            "OPERATOR_SAFE_MODE: \"true\"",
            "OPERATOR_SAFE_MODE: \"false\"",
        );
    };
    p.write_stack(&stack_with(&p, &items, true, unsafe_release));
    p.test()
        .arg("up")
        .status(1)
        .stdout_has("OPERATOR_SAFE_MODE is `false` in `vl_backend_candidate`")
        .stderr_has("the previous release keeps serving")
        .run();
    assert_eq!(
        p.ssh("docker inspect -f '{{.Id}}' vl_backend").ok().stdout,
        l1
    );
    assert!(
        !p.containers().contains_key("vl_backend_candidate"),
        "{:?}",
        p.containers()
    );
    assert_eq!(p.http_get("/api/health").0, 200);
    let env = p
        .ssh("docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' vl_backend")
        .ok()
        .stdout;
    assert!(env.contains("OPERATOR_SAFE_MODE=true"), "{env}");

    // A waiver needs a reason and a real item; with both, the release goes live and the waiver is audited.
    p.test()
        .args(["up", "--waive", "safe_mode"])
        .status(1)
        .run();
    p.test()
        .args(["up", "--waive", "safe_mod", "--reason", "x"])
        .any_status()
        .stderr_has("did you mean `safe_mode`?")
        .run();
    let waived = p
        .test()
        .args([
            "up",
            "--waive",
            "safe_mode",
            "--reason",
            "catalog import needs price edits today",
        ])
        .stdout_has("waived")
        .run();
    no_secret(&waived, &p.secret_values());
    let env = p
        .ssh("docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' vl_backend")
        .ok()
        .stdout;
    assert!(env.contains("OPERATOR_SAFE_MODE=false"), "{env}");
    assert_eq!(p.http_get("/api/health").0, 200);

    let entries = p.audit();
    let ups: Vec<&Value> = entries.iter().filter(|e| e["command"] == "up").collect();
    assert!(ups.iter().any(|e| e["result"] == "failed"), "{ups:?}");
    assert!(
        ups.iter().any(|e| e["waived"]
            .to_string()
            .contains("catalog import needs price edits")),
        "{ups:?}"
    );
    let attested = entries
        .iter()
        .find(|e| e["command"] == "checklist attest payment_test")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(attested["note"], "paid 1 INR with a real card, refunded");
    assert!(
        attested["actor"].as_str().is_some_and(|a| !a.is_empty()),
        "{attested}"
    );
}

#[test]
fn checklist_two_concurrent_ups_one_applies_the_other_names_the_holder() {
    let p = Project::with_sandbox("checklist_lock");
    let spawn = || {
        p.command(&["up"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let runs: Vec<std::process::Output> = [a, b]
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let codes: Vec<i32> = runs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
    let text: Vec<String> = runs
        .iter()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect();
    assert_eq!(
        {
            let mut c = codes.clone();
            c.sort_unstable();
            c
        },
        vec![0, 1],
        "{text:?}"
    );
    let loser = &text[codes.iter().position(|c| *c == 1).unwrap()];
    assert!(loser.contains("locked by"), "{loser}");
    assert!(loser.contains("`up`"), "{loser}");
    assert_eq!(p.http_get("/api/health").0, 200);
    let entries = p.audit();
    assert_eq!(
        entries.iter().filter(|e| e["command"] == "up").count(),
        1,
        "{entries:?}"
    );
}
