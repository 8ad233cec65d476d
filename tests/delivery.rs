//! Images reach the host layer by layer: only what its engine lacks is sent, compressed, shared layers once.

use crate::support::project::{As, Project, Run};

/// The bytes a run reports sending (`sent N bytes (…)`, one line per image delivery step), summed.
fn sent_bytes(run: &Run) -> u64 {
    run.stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("sent "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The project's stack with a build argument of the backend that its Dockerfile does not use: another value
/// changes the image's build-inputs label and nothing else (no layer).
fn with_label(p: &Project, value: &str) -> String {
    let backend = crate::support::project::repo().join("backend");
    let stack = p.stack_yaml(|t| {
        *t = t.replace(
            &format!("    build: {}\n", backend.display()),
            &format!(
                "    build:\n      context: {}\n      args:\n        DELIVERY_TEST: {}-{value}\n",
                backend.display(),
                p.name
            ),
        );
    });
    assert!(
        stack.contains("DELIVERY_TEST"),
        "the test edits the backend's build"
    );
    stack
}

#[test]
fn delivery_a_label_only_change_sends_under_a_megabyte_and_a_second_up_sends_nothing() {
    let p = Project::with_cold_sandbox_as("delivery_label", As::Root);
    p.write_stack(&with_label(&p, "1"));

    // From nothing: three images that share their base layer, which goes once.
    let cold = p.test().arg("up").stdout_has(p.is_up()).run();
    let cold_sent = sent_bytes(&cold);
    eprintln!("cold up sent {cold_sent} bytes");
    assert!(
        cold.stderr.contains("(3 images: "),
        "one delivery of the three images: {}",
        cold.stderr
    );
    let summary = cold
        .stderr
        .lines()
        .find(|l| l.contains("(3 images: "))
        .unwrap_or_default();
    let present: usize = summary
        .rsplit(", ")
        .next()
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        present >= 2,
        "the shared base layer is sent once, not once per image: {summary}"
    );
    assert!(
        cold_sent > 10_000_000,
        "a cold delivery sends the images: {cold_sent}"
    );

    let running_label = || {
        p.ssh("docker inspect -f '{{index .Config.Labels \"vldeploy.build-inputs\"}}' vl_backend")
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    let before = running_label();

    // Only the build-inputs label changes: the config and manifest go, no layer.
    p.write_stack(&with_label(&p, "2"));
    let label = p
        .test()
        .arg("up")
        .stdout_has("release `vl_backend` (blue/green)")
        .stderr_has("(1 image: 0 layers sent, ")
        .run();
    let label_sent = sent_bytes(&label);
    eprintln!("LABEL-only change sent {label_sent} bytes");
    assert!(label_sent > 0, "{}", label.stderr);
    assert!(
        label_sent < 1_000_000,
        "a LABEL-only change sends under 1 MB: {label_sent}"
    );
    let after = running_label();
    assert_eq!(after.len(), 64, "{after}");
    assert_ne!(after, before, "the host runs the image of the new inputs");

    // A code change: a new binary. Its layer goes (with the few-kB user layer built on top of it), compressed,
    // and nothing of the base: at most 1.2 times the changed layer's own gzip size.
    let context = p.path().join("backend-changed");
    let repo_backend = crate::support::project::repo().join("backend");
    std::fs::create_dir_all(context.join("dist")).unwrap();
    for file in ["Dockerfile", ".dockerignore"] {
        std::fs::copy(repo_backend.join(file), context.join(file)).unwrap();
    }
    let binary = context.join("dist/vl-backend");
    std::fs::copy(repo_backend.join("dist/vl-backend"), &binary).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&binary)
            .unwrap();
        writeln!(f, "one more line of {}", p.name).unwrap();
    }
    let gzip = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -1 -c '{}' | wc -c", binary.display()))
        .output()
        .unwrap();
    let layer_gz: u64 = String::from_utf8_lossy(&gzip.stdout)
        .trim()
        .parse()
        .unwrap();
    p.write_stack(&p.stack_yaml(|t| {
        *t = t.replace(
            &format!("    build: {}\n", repo_backend.display()),
            &format!("    build: {}\n", context.display()),
        );
    }));
    let code = p
        .test()
        .arg("up")
        .stdout_has("release `vl_backend` (blue/green)")
        .stderr_has("(1 image: ")
        .run();
    let code_sent = sent_bytes(&code);
    eprintln!("a changed binary sent {code_sent} bytes; its layer gzip'd is {layer_gz} bytes");
    assert!(
        code_sent > layer_gz / 2,
        "the changed layer is sent: {code_sent} of {layer_gz}"
    );
    assert!(
        code_sent as f64 <= 1.2 * layer_gz as f64,
        "a changed layer costs at most 1.2x its compressed size: {code_sent} for {layer_gz}"
    );
    let (status, _) = p.http_get("/api/health");
    assert_eq!(status, 200, "the changed binary serves");

    // Nothing changed: nothing is sent.
    let again = p
        .test()
        .arg("up")
        .stdout(p.converged())
        .stderr_lacks("sent ")
        .run();
    assert_eq!(sent_bytes(&again), 0);
}

/// The seconds of each `[n/m] <summary>: done in S.Ss` line whose summary contains `part`.
fn step_seconds(run: &Run, part: &str) -> Vec<f64> {
    run.stderr
        .lines()
        .filter(|l| l.contains(part))
        .filter_map(|l| l.split(": done in ").nth(1))
        .filter_map(|s| s.trim_end_matches('s').parse().ok())
        .collect()
}

#[test]
fn delivery_a_starting_container_counts_as_healthy_once_its_check_passes_not_at_dockers_next_interval()
 {
    let p = Project::with_sandbox("delivery_health");
    // Docker runs a check first one interval after the start: 60 s here. The steps must not wait for it (a
    // loaded machine makes a first start take 25 s, still well short of it).
    let stack = p.stack_yaml(|t| *t = t.replace("      interval: 2s\n", "      interval: 60s\n"));
    assert_eq!(
        stack.matches("interval: 60s").count(),
        3,
        "every service's check is slow"
    );
    p.write_stack(&stack);
    let up = p.test().arg("up").stdout_has(p.is_up()).run();
    let postgres = step_seconds(&up, "create container `vl_postgres`");
    let backend = step_seconds(&up, "`vl_backend`");
    eprintln!("postgres {postgres:?} s, backend {backend:?} s");
    assert_eq!(postgres.len(), 1, "{}", up.stderr);
    assert!(!backend.is_empty(), "{}", up.stderr);
    for s in postgres.iter().chain(&backend) {
        assert!(
            *s < 45.0,
            "a container step waited for Docker's interval: {s}s\n{}",
            up.stderr
        );
    }
    // Docker's own check still runs for steady state: it reports healthy once its interval comes.
    let health = p
        .ssh("docker inspect -f '{{.State.Health.Status}}' vl_postgres")
        .ok()
        .stdout;
    assert!(["starting", "healthy"].contains(&health.trim()), "{health}");
}

#[test]
fn delivery_prepare_runs_again_only_when_its_declared_inputs_change() {
    let p = Project::with_sandbox("delivery_prepare");
    let backend = crate::support::project::repo().join("backend");
    std::fs::write(p.path().join("input.txt"), "one").expect("write an input");
    let stack = p.stack_yaml(|t| {
        *t = t.replace(
            &format!("    build: {}\n", backend.display()),
            &format!(
                "    build:\n      context: {}\n      prepare: echo ran >> prepared.log\n      inputs: [input.txt, \"*.in\"]\n",
                backend.display()
            ),
        );
    });
    assert!(
        stack.contains("inputs: [input.txt"),
        "the test edits the backend's build"
    );
    p.write_stack(&stack);
    let runs = || {
        std::fs::read_to_string(p.path().join("prepared.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let skipped = "`backend`: prepare skipped, its inputs are unchanged";

    p.test().arg("plan").stderr_has("preparing `backend`").run();
    assert_eq!(runs(), 1);
    assert!(p.path().join(".vldeploy/prepared/backend").is_file());
    // Unchanged inputs: not run again, by `plan` or by `up`.
    p.test().arg("plan").stderr_has(skipped).run();
    p.test()
        .arg("up")
        .stderr_has(skipped)
        .stdout_has(p.is_up())
        .run();
    assert_eq!(runs(), 1);

    // A changed input, a new file matching a glob, `--rebuild`: run again.
    std::fs::write(p.path().join("input.txt"), "two").expect("change an input");
    p.test().arg("plan").stderr_has("preparing `backend`").run();
    assert_eq!(runs(), 2);
    std::fs::write(p.path().join("extra.in"), "").expect("add an input");
    p.test().arg("plan").stderr_lacks(skipped).run();
    assert_eq!(runs(), 3);
    p.test()
        .args(["plan", "--rebuild"])
        .stderr_lacks(skipped)
        .run();
    assert_eq!(runs(), 4);
    p.test()
        .arg("up")
        .stdout(p.converged())
        .stderr_has(skipped)
        .run();
    assert_eq!(runs(), 4);
}
