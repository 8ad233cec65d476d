//! A drift check sees the drift that matters: with the stack up, someone deletes the firewall table, removes
//! the certificate files, edits a cron entry or the backup script; `plan --exit-code` exits 2 and names the
//! change, `up` repairs it, and `plan --exit-code` exits 0 again. A lost release history is recorded again.

#![allow(clippy::unwrap_used)]

use crate::support::pebble::{HMAC, KID, Pebble};
use crate::support::project::{Project, Run};

const DOMAIN: &str = "shop.test";

/// `plan --exit-code` finds exactly one change, and it is `want` (summary and reason, as printed).
#[track_caller]
fn plan_names(p: &Project, want: &str) -> Run {
    let plan = p.vldeploy(&["plan", "--exit-code"]);
    assert_eq!(plan.code, 2, "pending changes exit 2:\n{}", plan.all());
    let target = plan.stdout.lines().next().unwrap_or_default();
    assert!(target.ends_with(": 1 change"), "{}", plan.stdout);
    let step = plan.stdout.lines().nth(1).unwrap_or_default();
    assert_eq!(step, format!("  ~ {want}"), "{}", plan.stdout);
    plan
}

/// `up` repairs the drift; then the drift check passes and a second `up` changes nothing.
#[track_caller]
fn up_repairs(p: &Project, pebble: &Pebble) {
    let up = p.vldeploy(&["up"]);
    assert_eq!(
        up.code,
        0,
        "up failed\n{}\n--- pebble\n{}",
        up.all(),
        pebble.logs()
    );
    let plan = p.vldeploy(&["plan", "--exit-code"]);
    assert_eq!(plan.code, 0, "converged after `up`:\n{}", plan.all());
    assert!(
        plan.stdout
            .ends_with(": no changes; the host matches the stack.\n"),
        "{}",
        plan.stdout
    );
}

#[test]
fn plan_exit_code_sees_firewall_certificate_cron_and_backup_script_drift_and_up_repairs_each() {
    let p = Project::new("plan_drift");
    p.sandbox_up(&[]);
    let pebble = Pebble::start(&p, DOMAIN, None);
    pebble.use_in(&p, DOMAIN, KID, HMAC);

    // Before the first `up`, the plan names the certificate and the firewall besides the containers.
    let first = p.vldeploy(&["plan", "--output", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    let steps = v["steps"].as_array().unwrap();
    let certificate = steps.iter().find(|s| s["action"] == "certificate").unwrap();
    assert_eq!(certificate["reason"], "no certificate is installed", "{v}");
    assert_eq!(
        certificate["summary"],
        format!("issue certificate for {DOMAIN}")
    );
    let firewall = steps.iter().find(|s| s["action"] == "firewall").unwrap();
    assert_eq!(
        firewall["reason"], "no vldeploy firewall on the host",
        "{v}"
    );
    assert_eq!(firewall["apply"], true, "{v}");
    let cron = format!("/etc/cron.d/vldeploy-{}-certs", p.name);
    assert!(
        steps
            .iter()
            .any(|s| s["summary"] == format!("write `{cron}`")),
        "the renewal job's cron entry is a planned file: {v}"
    );
    up_repairs(&p, &pebble);
    let again = p.vldeploy(&["up"]).ok();
    assert!(again.stdout.contains("no changes"), "{}", again.stdout);

    // Someone deletes vldeploy's nftables table.
    p.ssh("nft delete table inet vldeploy").ok();
    let plan = p.vldeploy(&["plan", "--exit-code"]);
    let hash = plan
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("the plan names the ruleset: {}", plan.stdout))
        .to_string();
    plan_names(
        &p,
        &format!("apply firewall ruleset {hash}  (no vldeploy firewall on the host)"),
    );
    let json = p.vldeploy(&["plan", "--output", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["changes"], 1, "{v}");
    assert_eq!(v["steps"][0]["action"], "firewall", "{v}");
    assert_eq!(v["steps"][0]["hash"], hash.as_str(), "{v}");
    up_repairs(&p, &pebble);
    assert!(
        p.ssh("nft list table inet vldeploy")
            .ok()
            .stdout
            .contains(&hash),
        "the table is back"
    );

    // Someone removes the certificate files.
    let certs = format!("/var/lib/vldeploy/{}/certs", p.name);
    p.ssh(&format!(
        "rm -f {certs}/current/fullchain.pem {certs}/current/privkey.pem"
    ))
    .ok();
    plan_names(
        &p,
        &format!("issue certificate for {DOMAIN}  (no certificate is installed)"),
    );
    up_repairs(&p, &pebble);
    assert_eq!(
        p.ssh(&format!("grep -c BEGIN {certs}/current/fullchain.pem"))
            .ok()
            .stdout
            .trim()
            .parse::<u32>()
            .map(|n| n >= 1),
        Ok(true),
        "a certificate is installed again"
    );

    // Someone edits the renewal job's cron entry.
    p.ssh(&format!(
        "sed -i 's/^\\* \\* \\* \\* \\*/*\\/5 * * * */' {cron}"
    ))
    .ok();
    plan_names(&p, &format!("write `{cron}`  (content changed)"));
    up_repairs(&p, &pebble);

    // Someone edits the backup cron entry.
    let backup_cron = format!("/etc/cron.d/vldeploy-{}-backup", p.name);
    p.ssh(&format!("sed -i 's/^0 2 /30 3 /' {backup_cron}"))
        .ok();
    plan_names(&p, &format!("write `{backup_cron}`  (content changed)"));
    up_repairs(&p, &pebble);

    // Someone edits the backup script.
    let script = format!("/var/lib/vldeploy/{}/backup/backup.sh", p.name);
    p.ssh(&format!("echo 'echo edited' >> {script}")).ok();
    plan_names(&p, &format!("write `{script}`  (content changed)"));
    up_repairs(&p, &pebble);
    assert!(
        !p.ssh(&format!("cat {script}"))
            .ok()
            .stdout
            .contains("echo edited"),
        "the script was written again"
    );
}
