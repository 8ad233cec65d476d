//! The event stream as CI reads it: `--output json` puts one JSON object per line on stderr, and the
//! command's result document alone on stdout.

use crate::support::project::{Project, Run};

/// Every stderr line of `run`, parsed; the test fails naming a line that is not a JSON object with `event`.
fn events(run: &Run) -> Vec<serde_json::Value> {
    run.stderr
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("stderr line is not JSON ({e}): {line}\n{}", run.stderr)
            });
            assert!(v["event"].is_string(), "no `event` in {line}");
            v
        })
        .collect()
}

fn of_kind<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn a_command_that_cannot_start_ends_with_an_error_event_in_json_and_an_error_line_in_plain() {
    let p = Project::new("output_error");
    // No sandbox host yet: the stack's sandbox files are missing, so the command stops before connecting.
    let json = p.vldeploy(&["status", "--output", "json"]);
    assert_eq!(json.code, 1, "{}", json.all());
    assert_eq!(json.stdout, "", "nothing on stdout");
    let ev = events(&json);
    assert_eq!(ev.len(), 1, "{}", json.stderr);
    assert_eq!(ev[0]["event"], "error");
    let message = ev[0]["message"].as_str().expect("a message");
    assert!(message.contains("`vldeploy sandbox up`"), "{message}");

    let plain = p.vldeploy(&["status"]);
    assert_eq!(plain.code, 1);
    // The same message, once prefixed with `error:`.
    let expected = if message.starts_with("error") {
        format!("{message}\n")
    } else {
        format!("error: {message}\n")
    };
    assert_eq!(plain.stderr, expected);
}

#[test]
fn up_with_json_output_reports_every_step_and_a_failing_candidates_log() {
    let p = Project::new("output_json");
    p.sandbox_up(&[]);

    // From nothing: each step starts once and ends once, numbered of the plan's total; stdout is the summary.
    // What only prepares the host (networks, the volume, files) runs at once; the container steps follow.
    let run = p.vldeploy(&["up", "--output", "json"]).ok();
    let summary: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", run.stdout));
    assert!(summary.is_object(), "{summary}");
    let ev = events(&run);
    let steps: Vec<&serde_json::Value> = ev
        .iter()
        .filter(|e| e["event"] == "step_started" || e["event"] == "step_done")
        .collect();
    assert!(!steps.is_empty(), "{}", run.stderr);
    let total = steps[0]["total"].as_u64().expect("a numbered step");
    assert_eq!(steps.len() as u64, 2 * total, "{}", run.stderr);
    // Where each step's start and end come in the stream.
    let at = |kind: &str, index: u64| -> usize {
        let found: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, e)| e["event"] == kind && e["index"] == index)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(found.len(), 1, "one {kind} of step {index}: {}", run.stderr);
        found[0]
    };
    let summary_of = |index: u64| steps[at("step_started", index)]["summary"].clone();
    for index in 1..=total {
        let (start, end) = (at("step_started", index), at("step_done", index));
        assert!(
            start < end,
            "step {index} ends after it starts: {}",
            run.stderr
        );
        assert_eq!(steps[end]["summary"], summary_of(index), "{}", run.stderr);
        assert_eq!(steps[end]["total"], total, "{}", run.stderr);
        assert!(steps[end]["seconds"].as_f64().is_some(), "{}", steps[end]);
    }
    let postgres = (1..=total)
        .find(|&i| summary_of(i) == "create container `vl_postgres`")
        .unwrap_or_else(|| panic!("postgres is created: {}", run.stderr));
    let preparing: Vec<u64> = (1..postgres).collect();
    assert!(
        preparing.len() >= 3,
        "networks, volume, files first: {}",
        run.stderr
    );
    let first_end = preparing.iter().map(|&i| at("step_done", i)).min().unwrap();
    let last_start = preparing
        .iter()
        .map(|&i| at("step_started", i))
        .max()
        .unwrap();
    assert!(
        last_start < first_end,
        "the {} preparation steps all start before any of them ends: {}",
        preparing.len(),
        run.stderr
    );
    // Each container step starts once every preparation step has ended; the backend's release waits for
    // postgres to be healthy (nginx, which finds the backend per request, may start beside them).
    for index in postgres..=total {
        let start = at("step_started", index);
        for &before in &preparing {
            assert!(
                at("step_done", before) < start,
                "step {index} starts after step {before} ended: {}",
                run.stderr
            );
        }
    }
    let backend = (1..=total)
        .find(|&i| {
            summary_of(i)
                .as_str()
                .is_some_and(|s| s.starts_with("release `vl_backend`"))
        })
        .unwrap_or_else(|| panic!("the backend is released: {}", run.stderr));
    assert!(
        at("step_done", postgres) < at("step_started", backend),
        "the backend starts after postgres is healthy: {}",
        run.stderr
    );
    assert!(
        steps
            .iter()
            .any(|e| e["summary"] == "create container `vl_postgres`"),
        "{}",
        run.stderr
    );
    assert!(of_kind(&ev, "step_failed").is_empty(), "{}", run.stderr);
    assert!(of_kind(&ev, "error").is_empty(), "{}", run.stderr);

    // A candidate that never becomes healthy: its step fails with the candidate's log, then the error.
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
    let run = p.vldeploy(&["up", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let ev = events(&run);
    let failed = of_kind(&ev, "step_failed");
    assert_eq!(failed.len(), 1, "{}", run.stderr);
    let failed = failed[0];
    assert_eq!(
        failed["summary"], "release `vl_backend` (blue/green)",
        "{failed}"
    );
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not become healthy")),
        "{failed}"
    );
    assert_eq!(
        failed["log"]["container"], "vl_backend_candidate",
        "{failed}"
    );
    let lines = failed["log"]["lines"].as_array().expect("log lines");
    assert!(
        lines.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.contains("database_connection_failed"))),
        "the candidate's own words: {failed}"
    );
    let last = ev.last().expect("events");
    assert_eq!(
        last["event"], "error",
        "the run ends with its error: {last}"
    );
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("release `vl_backend`")),
        "{last}"
    );
}
