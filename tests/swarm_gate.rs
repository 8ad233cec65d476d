//! The go-live gate on the cluster: a gated release whose candidate fails an item is held (the backend service
//! keeps its release, both edges keep serving, the candidate is gone) and the refusal names the item; one that
//! passes gets its rolling update; `check -e cluster` reports the same items. The environment is left as it was
//! found (not gated, the release it served).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use crate::cluster::Node;
use crate::support::project::{Project, http_get};
use crate::support::ssh::ssh_ok;

const ITEMS: &str = "secrets, safe_mode, firewall, health, homepage";

/// The cluster environment gated on `ITEMS`, its backend given `env` on top of the stack's.
fn gated(p: &Project, env: &str) -> String {
    p.stack_yaml(|t| {
        *t = t.replacen(
            "    secrets_file: .vldeploy/cluster/secrets.env\n    domain: localhost\n",
            &format!(
                "    secrets_file: .vldeploy/cluster/secrets.env\n    domain: localhost\n    gated: true\n    checklist:\n      items: [{ITEMS}]\n    overrides:\n      backend:\n        env:\n          {env}\n"
            ),
            1,
        );
    })
}

pub(crate) fn check(p: &Project, nodes: &[Node]) {
    let started = Instant::now();
    let service = format!("{}_backend", p.name);
    let spec = || {
        ssh_ok(
            &nodes[0],
            &format!(
                "docker service inspect {service} --format '{{{{index .Spec.Labels \"vldeploy.spec-hash\"}}}}'"
            ),
        )
    };
    let candidate_gone = || {
        ssh_ok(
            &nodes[0],
            &format!(
                "docker service inspect {}_backend-candidate >/dev/null 2>&1 && echo there || echo gone",
                p.name
            ),
        )
    };
    let serving = |when: &str| {
        for node in &nodes[..2] {
            assert_eq!(
                http_get(node.http_port, "/api/health").0,
                200,
                "{when}: /api/health through {}",
                node.address
            );
        }
    };
    let before = spec();

    // A release whose candidate turns safe mode off: held back, naming the item and where it looked.
    p.write_stack(&gated(p, r#"OPERATOR_SAFE_MODE: "false""#));
    let held = p.vldeploy(&["--env", "cluster", "up"]);
    assert_ne!(held.code, 0, "{}", held.all());
    assert!(
        held.stderr.contains(
            "the go-live checklist holds the release back: 1 of 5 items do not pass: safe_mode"
        ),
        "{}",
        held.all()
    );
    assert!(
        held.all().contains(&format!(
            "OPERATOR_SAFE_MODE is `false` in service `{}_backend-candidate`",
            p.name
        )),
        "{}",
        held.all()
    );
    assert!(
        held.stderr
            .contains("the backend service keeps its release and serves"),
        "{}",
        held.all()
    );
    // The other items passed, each with evidence from where it lives.
    let out = held.all();
    assert!(out.contains("Swarm secrets"), "{out}");
    assert!(out.contains("Swarm's ports open to 2 other nodes"), "{out}");
    assert_eq!(out.matches("GET /api/health on").count(), 2, "{out}");
    assert_eq!(spec(), before, "the backend service kept its release");
    assert_eq!(candidate_gone(), "gone");
    serving("after a held release");
    let audit = p
        .vldeploy(&["--env", "cluster", "audit", "-o", "json"])
        .ok();
    assert!(
        audit
            .stdout
            .contains("release held back by the go-live checklist: safe_mode"),
        "{}",
        audit.all()
    );

    // One that passes goes live by the backend's rolling update.
    p.write_stack(&gated(p, "RUST_LOG: debug"));
    let passed = p.vldeploy(&["--env", "cluster", "up"]).ok();
    assert!(
        passed.all().contains("passed the go-live checklist"),
        "{}",
        passed.all()
    );
    let live = spec();
    assert_ne!(live, before);
    assert_eq!(candidate_gone(), "gone");
    serving("after the release went live");
    let env = ssh_ok(
        &nodes[0],
        &format!(
            "docker service inspect {service} --format '{{{{json .Spec.TaskTemplate.ContainerSpec.Env}}}}'"
        ),
    );
    assert!(env.contains("RUST_LOG=debug"), "{env}");

    // `check -e cluster` reports the same items against what serves.
    let checked = p.vldeploy(&["--env", "cluster", "check"]);
    assert_eq!(checked.code, 0, "{}", checked.all());
    for item in ITEMS.split(", ") {
        assert!(
            checked
                .stdout
                .lines()
                .any(|l| l.contains(item) && l.contains("pass")),
            "{item}: {}",
            checked.all()
        );
    }

    // As found: not gated, the release it served.
    p.write_stack(&p.stack_yaml(|_| {}));
    p.vldeploy(&["--env", "cluster", "up"]).ok();
    assert_eq!(spec(), before);
    serving("as found");
    eprintln!(
        "timing: the go-live gate's check on the cluster in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
