//! `logs`, `releases` and `rollback` on a cluster: each task's lines through a manager, the releases Swarm keeps,
//! and the previous one put back under load; called from the cluster test in tests/cluster.rs.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::time::{Duration, Instant};

use crate::cluster::{self, Node};
use crate::support::project::{Project, http_get};
use crate::support::ssh::ssh_ok;

pub(crate) fn check(p: &Project, nodes: &[Node]) {
    let whole = Instant::now();
    let started = Instant::now();
    let host = |i: usize| format!("vldeploy-sandbox-{}-cluster-{i}", p.name);
    // Requests with a path of their own through both edges: each backend task and each nginx logs them.
    let probe = format!("/api/logprobe-{}", std::process::id());
    for _ in 0..20 {
        for node in &nodes[..2] {
            let _ = http_get(node.http_port, &probe);
        }
    }
    let logs = p
        .vldeploy(&["--env", "cluster", "logs", "backend", "--tail", "200"])
        .ok();
    let probed: Vec<&str> = logs.stdout.lines().filter(|l| l.contains(&probe)).collect();
    for slot in 1..=2 {
        assert!(
            probed.iter().any(|l| l.starts_with(&format!(
                "backend.{slot}@vldeploy-sandbox-{}-cluster-",
                p.name
            ))),
            "backend task {slot} logged the probe requests: {}",
            logs.all()
        );
    }
    assert!(probed.iter().all(|l| l.contains(" | ")), "{}", logs.stdout);
    let all = p
        .vldeploy(&["--env", "cluster", "logs", "--tail", "200"])
        .ok();
    for i in 1..=2 {
        let prefix = format!("nginx.{0}@{0} | ", host(i));
        assert!(
            all.stdout
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(&probe)),
            "nginx on edge {i} logged the probe: {}",
            all.all()
        );
    }
    assert!(all.stdout.contains("postgres.1@"), "{}", all.stdout);
    for secret in p.cluster_secret_values() {
        assert!(
            !all.all().contains(&secret) && !logs.all().contains(&secret),
            "a secret is in the logs"
        );
    }
    let unknown = p.vldeploy(&["--env", "cluster", "logs", "nosuch"]);
    assert_eq!(unknown.code, 1, "{}", unknown.all());
    assert!(
        unknown.stderr.contains("unknown service `nosuch`"),
        "{}",
        unknown.all()
    );
    eprintln!(
        "timing: logs -e cluster (backend, then all) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // `-f` follows every task at once: requests made after it started show up from both backend tasks.
    let started = Instant::now();
    let mut child = p
        .command(&["--env", "cluster", "logs", "backend", "-f", "--tail", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let followed = format!("/api/followprobe-{}", std::process::id());
    let mut slots = std::collections::BTreeSet::new();
    let mut seen = Vec::new();
    while slots.len() < 2 && started.elapsed() < Duration::from_secs(30) {
        for node in &nodes[..2] {
            let _ = http_get(node.http_port, &followed);
        }
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            if line.contains(&followed)
                && let Some(slot) = line.split('@').next()
            {
                slots.insert(slot.to_owned());
            }
            seen.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        slots.into_iter().collect::<Vec<_>>(),
        ["backend.1", "backend.2"],
        "both tasks' new lines while following: {}",
        seen.join("\n")
    );
    eprintln!(
        "timing: logs -f -e cluster showed both tasks' new lines in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Swarm rolled the broken release back by itself, and with that it dropped its previous spec: the release
    // that serves is listed alone, noted so, and `rollback` has nothing to go back to.
    let spec_hash = |service: &str, field: &str| {
        ssh_ok(
            &nodes[0],
            &format!(
                "docker service inspect {}_{service} --format '{{{{index .{field}.Labels \"vldeploy.spec-hash\"}}}}'",
                p.name
            ),
        )
    };
    let releases = p.vldeploy(&["--env", "cluster", "releases"]).ok();
    assert!(
        releases.stdout.lines().any(|l| l.starts_with("* backend-")
            && l.contains("current")
            && l.contains("Swarm rolled back to it")),
        "{}",
        releases.all()
    );
    let refused = p.vldeploy(&["--env", "cluster", "rollback"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused
            .stderr
            .contains("keeps no previous release: Swarm rolled its last update back"),
        "{}",
        refused.all()
    );

    // A sixth release, then `rollback` puts the fifth back under a steady load through both edges.
    let found = std::fs::read_to_string(p.path().join("stack.yaml")).unwrap();
    let five = spec_hash("backend", "Spec");
    let sixth = p.stack_yaml(|t| {
        *t = t.replace(
            "      RUST_LOG: info\n",
            "      RUST_LOG: info\n      RELEASE_N: \"6\"\n",
        );
    });
    p.write_stack(&sixth);
    p.vldeploy(&["--env", "cluster", "up"]).ok();
    let six = spec_hash("backend", "Spec");
    assert_ne!(five, six, "release 6 is another spec");
    let releases = p
        .vldeploy(&["--env", "cluster", "releases", "-o", "json"])
        .ok();
    let listed: serde_json::Value = serde_json::from_str(&releases.stdout).unwrap();
    let rows = listed["releases"].as_array().unwrap();
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).cloned();
    let current = row(&format!("backend-{six}")).unwrap_or_else(|| panic!("{}", releases.stdout));
    assert_eq!(
        (current["spec"].as_str(), current["tasks"].as_u64()),
        (Some("current"), Some(2))
    );
    let previous = row(&format!("backend-{five}")).unwrap_or_else(|| panic!("{}", releases.stdout));
    assert_eq!(
        (previous["spec"].as_str(), previous["tasks"].as_u64()),
        (Some("previous"), Some(0))
    );
    let human = p.vldeploy(&["--env", "cluster", "releases"]).ok();
    assert!(
        human
            .stdout
            .lines()
            .any(|l| l.starts_with(&format!("* backend-{six}"))),
        "{}",
        human.stdout
    );

    let loads = cluster::load_through_edges(nodes, Duration::from_mins(5));
    let started = Instant::now();
    let rolled = p.vldeploy(&["--env", "cluster", "rollback"]).ok();
    eprintln!(
        "timing: rollback -e cluster (backend, 2 tasks) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        rolled.stdout.contains(&format!(
            "rolled back `{}_backend` to `backend-{five}`",
            p.name
        )),
        "{}",
        rolled.all()
    );
    assert_eq!(spec_hash("backend", "Spec"), five);
    let running = ssh_ok(
        &nodes[0],
        &format!(
            "docker service ps {}_backend --filter desired-state=running -q | xargs docker inspect --format '{{{{index .Spec.ContainerSpec.Labels \"vldeploy.spec-hash\"}}}} {{{{.Status.State}}}} {{{{json .Spec.ContainerSpec.Env}}}}'",
            p.name
        ),
    );
    let lines: Vec<&str> = running.lines().collect();
    assert_eq!(lines.len(), 2, "{running}");
    for l in &lines {
        assert!(
            l.starts_with(&format!("{five} running")) && l.contains("RELEASE_N=5"),
            "a task runs release 5: {running}"
        );
    }
    // Going back again names the release that runs.
    let again = p
        .vldeploy(&[
            "--env",
            "cluster",
            "rollback",
            "--to",
            &format!("backend-{five}"),
        ])
        .ok();
    assert!(
        again.stdout.contains("already the current release"),
        "{}",
        again.all()
    );

    // `up` puts stack.yaml's release (6) back.
    let started = Instant::now();
    let up = p.vldeploy(&["--env", "cluster", "up"]).ok();
    eprintln!(
        "timing: up -e cluster after a rollback in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        up.all()
            .contains(&format!("service: update `{}_backend`", p.name)),
        "{}",
        up.all()
    );
    assert_eq!(spec_hash("backend", "Spec"), six);
    // A rollback named by a prefix of its hash puts release 5 back again, and stack.yaml's release 5 is then
    // what runs: `up` changes nothing. The cluster is left as it was found.
    let started = Instant::now();
    let back = p
        .vldeploy(&["--env", "cluster", "rollback", "--to", &five[..8]])
        .ok();
    eprintln!(
        "timing: rollback -e cluster --to a hash prefix in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        back.stdout.contains(&format!(
            "rolled back `{}_backend` to `backend-{five}` (",
            p.name
        )) && back.stdout.contains(&format!("), from `backend-{six}`\n")),
        "{}",
        back.all()
    );
    assert_eq!(spec_hash("backend", "Spec"), five);
    cluster::assert_edges_served(nodes, loads, "the rollbacks", 100);
    p.write_stack(&found);
    let again = p.vldeploy(&["--env", "cluster", "up"]).ok();
    assert!(again.stdout.contains("no changes"), "{}", again.all());

    let audit = p
        .vldeploy(&["--env", "cluster", "audit", "-o", "json"])
        .ok();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&audit.stdout).unwrap();
    let rollbacks: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["command"] == "rollback")
        .collect();
    // The refusal and the two rollbacks; the one to the release already running changed nothing.
    assert_eq!(rollbacks.len(), 3, "{}", audit.stdout);
    assert_eq!(rollbacks[0]["result"], "failed", "{}", audit.stdout);
    assert_eq!(rollbacks[1]["result"], "ok", "{}", audit.stdout);
    assert_eq!(rollbacks[2]["result"], "ok", "{}", audit.stdout);
    assert!(
        rollbacks[1]["changes"][0]
            .as_str()
            .is_some_and(|c| c.contains(&format!("to `backend-{five}`, from `backend-{six}`"))),
        "{}",
        audit.stdout
    );
    // `releases` lists, newest first, the backend releases `up` and `rollback` put in place.
    let listed = p
        .vldeploy(&["--env", "cluster", "releases", "-o", "json"])
        .ok();
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let recorded: Vec<(&str, &str, &str)> = listed["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["command"].as_str().unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            (format!("backend-{five}").as_str(), "rollback", "ok"),
            (format!("backend-{six}").as_str(), "up", "ok"),
            (format!("backend-{five}").as_str(), "rollback", "ok"),
        ],
        "{listed}"
    );
    eprintln!(
        "timing: logs, releases and rollbacks on the cluster in {:.1} s",
        whole.elapsed().as_secs_f64()
    );
}
