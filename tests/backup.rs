//! Backups and restores against a real sandbox host: cron's own shell, a failing `pg_dump`, a round trip, refusals.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support::project::{As, Project, Run};
use crate::support::ssh::no_secret;
use base64::Engine as _;

const DB: &str = "vaibava_db";

/// Every public table with its row count and an md5 of all its rows, one `table|count:md5` line each.
const STATE_SQL: &str = "SELECT c.relname || '|' || (xpath('/row/c/text()', query_to_xml(format(\
    'SELECT count(*) || '':'' || md5(coalesce(string_agg(t::text, E''\\n'' ORDER BY t::text), '''')) AS c FROM %I.%I t', \
    n.nspname, c.relname), false, true, '')))[1]::text \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1;";

pub(crate) trait HostExt {
    fn sh(&self, cmd: &str) -> String;
    fn psql(&self, sql: &str) -> String;
    fn state(&self) -> String;
    fn dump(&self) -> String;
    fn backups(&self) -> Vec<serde_json::Value>;
    fn cron_run(&self) -> Run;
}

impl HostExt for Project {
    /// Runs a command on the host; it must succeed.
    #[track_caller]
    fn sh(&self, cmd: &str) -> String {
        let run = self.ssh(cmd);
        assert_eq!(
            run.code, 0,
            "`{cmd}` on the host failed:\n{}{}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// Runs SQL in the live database (sent base64-encoded, so no quoting gets in the way).
    #[track_caller]
    fn psql(&self, sql: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(sql);
        self.sh(&format!(
            "echo {b64} | base64 -d | docker exec -i vl_postgres psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d {DB}"
        ))
    }

    /// Row counts and checksums of every table.
    #[track_caller]
    fn state(&self) -> String {
        let s = self.psql(STATE_SQL);
        assert!(s.contains("orders|"), "the shop's tables exist: {s}");
        s
    }

    /// A plain dump of the live database (its random `\restrict` key removed).
    #[track_caller]
    fn dump(&self) -> String {
        self.sh(&format!(
            "docker exec vl_postgres pg_dump -U postgres {DB} | grep -v '^\\\\\\(un\\)\\?restrict '"
        ))
    }

    #[track_caller]
    fn backups(&self) -> Vec<serde_json::Value> {
        let run = self.vldeploy(&["backup", "list", "-o", "json"]).ok();
        let v: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("backup list -o json is JSON ({e}): {}", run.stdout));
        v["backups"].as_array().cloned().unwrap_or_default()
    }

    /// Runs the installed cron entry's command exactly as cron does: `/bin/sh -c` with cron's environment.
    fn cron_run(&self) -> Run {
        let entry = self.sh(&format!("cat /etc/cron.d/vldeploy-{}-backup", self.name));
        let line = entry
            .lines()
            .find(|l| !l.starts_with('#') && !l.trim().is_empty())
            .unwrap_or_else(|| panic!("a cron line: {entry}"));
        let fields: Vec<&str> = line.splitn(7, ' ').collect();
        assert_eq!(fields.len(), 7, "{line}");
        let user = &self.user;
        assert_eq!(fields[5], user, "{line}");
        let command = fields[6];
        let b64 = base64::engine::general_purpose::STANDARD.encode(command);
        // As cron runs it: as the entry's user with its groups (initgroups), cron's environment, `/bin/sh -c`.
        let home = if user == "root" {
            "/root".to_owned()
        } else {
            format!("/home/{user}")
        };
        self.ssh(&format!(
            "cmd=$(echo {b64} | base64 -d); cd / && runuser -u {user} -- env -i HOME={home} LOGNAME={user} USER={user} SHELL=/bin/sh PATH=/usr/bin:/bin /bin/sh -c \"$cmd\""
        ))
    }
}

pub(crate) fn names(backups: &[serde_json::Value]) -> Vec<String> {
    backups
        .iter()
        .map(|b| b["file"].as_str().unwrap_or("").to_string())
        .collect()
}

pub(crate) fn last_log_line(p: &Project) -> serde_json::Value {
    let text = p.sh("tail -n 1 /var/log/vl_backup.log");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("a JSON log line ({e}): {text}"))
}

/// The flow, connected as `who`: `tests/as_deploy.rs` runs it as `deploy`, the user a real server has.
pub(crate) fn backup_by_cron_makes_a_checked_file_never_overlaps_and_a_failed_dump_leaves_nothing_as(
    who: As,
) {
    let p = Project::deployed_as("backup_cron", who);
    let dir = format!("/var/backups/{}", p.name);

    // `up` installed the script and its cron entry: 02:00 every day, as the environment's user.
    let entry = p.sh(&format!("cat /etc/cron.d/vldeploy-{}-backup", p.name));
    assert!(
        entry.contains(&format!(
            "0 2 * * * {} /var/lib/vldeploy/{}/backup/backup.sh",
            p.user, p.name
        )),
        "{entry}"
    );
    assert!(!p.sh("pgrep -x cron || pgrep -x crond").trim().is_empty());
    // A second `up` leaves the backup files alone.
    p.test().arg("up").stdout(p.converged()).run();

    // pg_dump fails part-way (it printed some SQL first): the run fails and no backup appears.
    p.sh("docker exec vl_postgres sh -c 'rm -f /usr/local/bin/pg_dump && printf \"#!/bin/sh\\n/usr/lib/postgresql/15/bin/pg_dump \\\"\\$@\\\" | head -c 3000\\nexit 1\\n\" > /usr/local/bin/pg_dump && chmod 755 /usr/local/bin/pg_dump'");
    let failed = p.cron_run();
    assert_eq!(failed.code, 1, "a failed dump exits 1: {}", failed.all());
    let log = last_log_line(&p);
    assert_eq!(log["result"], "failed", "{log}");
    assert_eq!(log["step"], "pg_dump", "{log}");
    assert!(
        p.backups().is_empty(),
        "no backup is listed after a failed dump"
    );
    let files = p.sh(&format!("ls -A {dir}"));
    assert_eq!(
        files.trim(),
        ".backup.lock",
        "only the lock file is left: {files}"
    );
    p.test()
        .args(["backup", "now"])
        .status(1)
        .stderr_has("pg_dump")
        .run();
    assert!(p.backups().is_empty());

    // With pg_dump back, the cron command makes a backup whose checksum, gzip stream and marker hold.
    p.sh(
        "docker exec vl_postgres ln -sf /usr/lib/postgresql/15/bin/pg_dump /usr/local/bin/pg_dump",
    );
    let ok = p.cron_run();
    assert_eq!(ok.code, 0, "{}", ok.all());
    let log = last_log_line(&p);
    assert_eq!(log["result"], "ok", "{log}");
    let file = log["file"].as_str().unwrap().to_string();
    let backups = p.backups();
    assert_eq!(names(&backups), vec![file.clone()]);
    assert_eq!(backups[0]["checksum"], "ok");
    assert!(backups[0]["bytes"].as_u64().unwrap() > 512);
    p.sh(&format!(
        "cd {dir} && sha256sum -c {file}.sha256 && gzip -t {file} && gzip -dc {file} | grep -q 'PostgreSQL database dump complete'"
    ));
    let secret = p.secret("POSTGRES_PASSWORD");
    let log_text = p.sh("cat /var/log/vl_backup.log");
    assert!(!log_text.contains(&secret), "the log holds no password");

    // A second run while one is in progress does not overlap: it exits 75 and makes nothing.
    // The first run is held inside pg_dump by a lock on a table.
    p.sh("nohup docker exec vl_postgres psql -U postgres -d vaibava_db -c 'BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(25); COMMIT;' >/dev/null 2>&1 &");
    let deadline = Instant::now() + Duration::from_secs(60);
    while p
        .psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'orders' AND l.mode = 'AccessExclusiveLock' AND l.granted")
        .trim()
        != "1"
    {
        assert!(Instant::now() < deadline, "the table lock was never taken");
        std::thread::sleep(Duration::from_millis(300));
    }
    let script = format!("/var/lib/vldeploy/{}/backup/backup.sh", p.name);
    p.sh(&format!(
        "cd /; nohup env -i PATH=/usr/bin:/bin /bin/sh -c '{script} > /tmp/first-run.json 2>&1' </dev/null >/dev/null 2>&1 &"
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while p.ssh(&format!("flock -n {dir}/.backup.lock true")).code == 0 {
        assert!(
            Instant::now() < deadline,
            "the first run never took its lock"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let second = p.cron_run();
    assert_eq!(
        second.code,
        75,
        "the second run is refused: {}",
        second.all()
    );
    let log = last_log_line(&p);
    assert_eq!(log["result"], "busy", "{log}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = p.sh("cat /tmp/first-run.json 2>/dev/null || true");
        if let Some(line) = out.lines().last().filter(|l| l.starts_with('{')) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["result"], "ok", "the first run completes: {v}");
            let listed = names(&p.backups());
            assert!(
                listed.contains(&v["file"].as_str().unwrap().to_string()),
                "{listed:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first run did not finish: {out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Makes backup file `name` from `good` in the backup directory with the shell snippet `make` (which sees both
/// as `$good` and `$name`); its sidecar is computed over the result when `fresh_sidecar`, else it is the original's.
fn doctored(p: &Project, good: &str, name: &str, make: &str, fresh_sidecar: bool) {
    let dir = format!("/var/backups/{}", p.name);
    let sidecar = if fresh_sidecar {
        "sha256sum \"$name\" > \"$name.sha256\""
    } else {
        "sed \"s/$good/$name/\" \"$good.sha256\" > \"$name.sha256\""
    };
    p.sh(&format!(
        "cd {dir} && good={good} && name={name} && {{ {make}; }} && {sidecar}"
    ));
}

/// Orders `ord-<from>` … `ord-<to>`, each with one item.
pub(crate) fn insert_orders(p: &Project, from: u32, to: u32) {
    p.psql(&format!(
        "INSERT INTO orders (id, status, payment_mode, amount_paise, customer) \
         SELECT 'ord-' || i, 'paid', 'cod', i * 100, jsonb_build_object('name', 'c' || i) FROM generate_series({from}, {to}) i; \
         INSERT INTO order_items (order_id, handle, title, price, quantity) \
         SELECT 'ord-' || i, 'tea', 'Tea', 100, 1 + i % 3 FROM generate_series({from}, {to}) i;"
    ));
}

fn backend_started_at(p: &Project) -> String {
    p.sh("docker inspect -f '{{.State.StartedAt}} {{.State.Running}}' vl_backend")
}

/// The flow, connected as `who`: `tests/as_deploy.rs` runs it as `deploy`, the user a real server has.
pub(crate) fn backup_round_trip_restores_exactly_and_bad_backups_are_refused_before_anything_stops_as(
    who: As,
) {
    let p = Project::deployed_as("backup_restore", who);
    let insert = |from: u32, to: u32| insert_orders(&p, from, to);

    // Orders, a backup, more orders.
    insert(1, 40);
    let first = p.vldeploy(&["backup", "now", "-o", "json"]).ok();
    let made: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    let file = made["file"].as_str().unwrap().to_string();
    let state_then = p.state();
    assert!(state_then.contains("orders|40:"), "{state_then}");
    insert(41, 75);
    p.psql("UPDATE orders SET status = 'shipped' WHERE id = 'ord-1';");
    assert_ne!(p.state(), state_then);

    // verify: a scratch restore with every table's rows compared; the live database is only read.
    let before_verify = p.dump();
    let v = p.vldeploy(&["backup", "verify", &file, "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["matches_live"], false, "live has more orders now: {v}");
    let orders = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.orders")
        .unwrap_or_else(|| panic!("orders verified: {v}"));
    assert_eq!(orders["backup"], 40);
    assert_eq!(orders["restored"], 40);
    assert_eq!(orders["live"], 75);
    assert_eq!(p.dump(), before_verify);
    assert_eq!(
        p.psql("SELECT count(*) FROM pg_database WHERE datname LIKE '%_verify_%'")
            .trim(),
        "0",
        "the scratch database is gone"
    );

    // The maintenance page: nginx answers /api/ with 503 while the flag is set.
    let flag = format!("/var/lib/vldeploy/{}/www/.maintenance", p.name);
    p.sh(&format!("touch {flag}"));
    let (code, body) = p.http_get("/api/health");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("maintenance"), "{body}");
    p.sh(&format!("rm -f {flag}"));
    assert_eq!(p.http_get("/api/health").0, 200);

    // A corrupted backup (one byte changed, the original checksum) and a truncated one (a checksum made over
    // the truncated file, so the gzip check must catch it): both refused before the backend stops.
    doctored(
        &p,
        &file,
        "db_backup_20200101_000000.sql.gz",
        "cp \"$good\" \"$name\" && b=$(od -An -tu1 -j300 -N1 \"$good\") && printf \"\\\\$(printf %o $((255 - b)))\" | dd of=\"$name\" bs=1 seek=300 conv=notrunc 2>/dev/null && ! cmp -s \"$good\" \"$name\"",
        false,
    );
    doctored(
        &p,
        &file,
        "db_backup_20200102_000000.sql.gz",
        "head -c -40 \"$good\" > \"$name\"",
        true,
    );
    let live_before = p.dump();
    let started_before = backend_started_at(&p);
    for (bad, why) in [
        ("db_backup_20200101_000000.sql.gz", "sha256 does not match"),
        ("db_backup_20200102_000000.sql.gz", "gzip stream is damaged"),
    ] {
        p.test()
            .args(["restore", bad, "--yes"])
            .status(1)
            .stderr_has(why)
            .stderr_has("nothing was changed")
            .run();
        assert_eq!(
            backend_started_at(&p),
            started_before,
            "the backend never stopped"
        );
        assert_eq!(p.dump(), live_before, "the live database is unchanged");
    }

    // A backup whose SQL fails near its end (the marker is intact): the load's transaction rolls back, the
    // original database serves again, and the backend is healthy.
    doctored(
        &p,
        &file,
        "db_backup_20200103_000000.sql.gz",
        "gzip -dc \"$good\" | sed 's/^-- PostgreSQL database dump complete/SELECT * FROM no_such_table;\\n&/' | gzip > \"$name\"",
        true,
    );
    p.test()
        .args(["restore", "db_backup_20200103_000000.sql.gz", "--yes"])
        .status(1)
        .stderr_has("no_such_table")
        .stderr_has("was not changed")
        .stderr_has("healthy")
        .run();
    assert_eq!(p.dump(), live_before, "the original database serves");
    assert_eq!(p.http_get("/api/health").0, 200, "the backend is healthy");
    assert_eq!(
        p.psql("SELECT count(*) FROM pg_database WHERE datname LIKE '%_restore_%'")
            .trim(),
        "0",
        "the half-loaded database is gone"
    );
    assert_eq!(
        p.ssh(&format!("test -e {flag}")).code,
        1,
        "the maintenance page is lifted"
    );

    // The round trip: restoring the first backup brings back exactly the first state.
    let run = p.vldeploy(&["restore", &file, "--yes", "-o", "json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["result"], "ok", "{report}");
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "verify",
            "safety backup",
            "stop backend",
            "load",
            "swap",
            "start backend"
        ]
    );
    assert_eq!(
        p.state(),
        state_then,
        "every table's rows and checksum are back"
    );
    let (code, health) = p.http_get("/api/health");
    assert_eq!(code, 200, "{health}");
    assert!(
        health.contains("\"up\""),
        "the backend reaches the restored database: {health}"
    );
    let safety = report["safety_backup"].as_str().unwrap();
    assert!(safety.ends_with("_pre-restore.sql.gz"), "{safety}");
    assert!(names(&p.backups()).contains(&safety.to_string()));
    assert!(p.audited("restore"), "{:?}", p.audit());

    // The safety backup undoes the restore: pulled to this machine and sent back with --from-local.
    let local = p.path().join("safety.sql.gz");
    p.vldeploy(&["backup", "pull", safety, "--to", local.to_str().unwrap()])
        .ok();
    assert!(std::fs::metadata(&local).unwrap().len() > 512);
    let run = p
        .test()
        .args(["restore", "--from-local", local.to_str().unwrap(), "--yes"])
        .stdout_has("restored")
        .run();
    let state_now = p.state();
    assert!(
        state_now.contains("orders|75:"),
        "the later orders are back: {state_now}"
    );
    no_secret(&run, &p.secret_values());
}

/// Starts `vldeploy restore FILE --yes`, waits for the line that says `phase` began and then until `ready`
/// holds, and kills the process with SIGKILL. Returns what it printed on stderr until then.
fn kill_restore_at(p: &Project, file: &str, phase: &str, ready: &dyn Fn() -> bool) -> String {
    let (mut child, rx) = p.spawn_watching_stderr(&["restore", file, "--yes"]);
    let want = format!("  {phase} …");
    let deadline = Instant::now() + Duration::from_mins(5);
    let mut seen = String::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line == want {
                    break;
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the restore never reached `{phase}` ({e}):\n{seen}");
            }
        }
    }
    let waiting = Instant::now();
    while !ready() {
        assert!(
            waiting.elapsed() < Duration::from_mins(1),
            "`{phase}` never got under way:\n{seen}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the restore ended before the kill:\n{seen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {seen}");
    p.record(
        &["restore", file, "--yes", "(killed)"],
        &Run {
            code: -9,
            stdout: String::new(),
            stderr: seen.clone(),
        },
    );
    seen
}

#[test]
fn a_restore_killed_in_any_phase_is_reported_and_resume_or_abort_ends_it_serving() {
    let p = Project::deployed("restore_killed");
    let flag = format!("/var/lib/vldeploy/{}/www/.maintenance", p.name);
    let journal = format!("/var/lib/vldeploy/{}/restore.json", p.name);
    // Enough rows that the load takes seconds, so a kill lands in the middle of it.
    p.psql(
        "CREATE TABLE ballast (id int PRIMARY KEY, pad text); \
         INSERT INTO ballast SELECT i, repeat(md5(i::text), 6) FROM generate_series(1, 250000) i;",
    );
    let leftovers = |p: &Project| {
        p.psql(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_restore\\_%' OR datname LIKE '%\\_failed\\_%'",
        )
        .trim()
        .to_string()
    };

    // The load is under way once a session works in the database being loaded.
    let loading = || {
        p.psql("SELECT count(*) FROM pg_stat_activity WHERE datname LIKE '%\\_restore\\_%'")
            .trim()
            != "0"
    };
    let at_once = || true;
    // (phase killed in, how it ends, whether the operator had maintenance on)
    let cases = [
        ("safety backup", "--resume", false),
        ("stop backend", "--abort", true),
        ("load", "--resume", false),
        ("load", "--abort", false),
        ("swap", "--resume", false),
        ("start backend", "--abort", false),
    ];
    for (i, (phase, end, operator)) in cases.into_iter().enumerate() {
        // Known data, a backup of it, then different data: "restored" and "old" are told apart.
        let base = 1000 * (u32::try_from(i).unwrap() + 1);
        insert_orders(&p, base, base + 20);
        let made = p.vldeploy(&["backup", "now", "-o", "json"]).ok();
        let made: serde_json::Value = serde_json::from_str(&made.stdout).unwrap();
        let file = made["file"].as_str().unwrap().to_string();
        let restored = p.state();
        insert_orders(&p, base + 21, base + 30);
        p.psql(&format!(
            "UPDATE orders SET status = 'shipped' WHERE id = 'ord-{base}';"
        ));
        let old = p.state();
        assert_ne!(old, restored);
        if operator {
            p.vldeploy(&["maintenance", "on", "--message", "INC-7"])
                .ok();
        }

        let ready: &dyn Fn() -> bool = if phase == "load" { &loading } else { &at_once };
        let seen = kill_restore_at(&p, &file, phase, ready);

        // The data is the old set or the restored set, never less.
        let now = p.state();
        match phase {
            "safety backup" | "stop backend" | "load" => assert_eq!(now, old, "{phase}: {seen}"),
            "swap" => assert!(now == old || now == restored, "{phase}: {now}"),
            _ => assert_eq!(now, restored, "{phase}: {seen}"),
        }
        assert_eq!(
            p.sh(&format!("stat -c %a {journal}")).trim(),
            "600",
            "the journal is the host's, 0600"
        );
        if phase == "load" {
            assert_ne!(
                leftovers(&p),
                "0",
                "the kill landed in the load: a part-loaded database is there"
            );
        }

        // The next command says so: which phase, and the two ways out.
        p.test()
            .arg("status")
            .stderr_has(format!("was interrupted in phase `{phase}`"))
            .stderr_has("vldeploy restore --resume")
            .stderr_has("vldeploy restore --abort")
            .run();
        match i {
            1 => {
                // The restore is the cause, not the backend's logs.
                p.test()
                    .arg("doctor")
                    .status(1)
                    .stdout_has("FAIL restore")
                    .stdout_lacks("vldeploy logs backend")
                    .run();
            }
            2 => {
                p.test()
                    .arg("up")
                    .status(1)
                    .stdout_lacks("the stack is up")
                    .stderr_has("interrupted in phase `load`")
                    .stderr_has("restore --resume")
                    .run();
            }
            5 => {
                // The killed process runs nothing.
                p.test()
                    .args(["maintenance", "status"])
                    .stdout_has("maintenance is ON")
                    .stdout_has("was interrupted")
                    .stdout_lacks("is running `restore`")
                    .run();
            }
            _ => {}
        }
        // A new restore waits for this one to end.
        p.test()
            .args(["restore", &file, "--yes"])
            .status(1)
            .stderr_has("was interrupted")
            .run();

        let ended = p.vldeploy(&["restore", end, "--yes"]).ok();
        let expect = if end == "--resume" { &restored } else { &old };
        assert_eq!(&p.state(), expect, "{phase} {end}: {}", ended.all());
        if operator {
            assert_eq!(
                p.ssh(&format!("test -e {flag}")).code,
                0,
                "the operator's maintenance page stays on"
            );
            assert_eq!(p.http_get("/api/health").0, 503);
            p.vldeploy(&["maintenance", "off"]).ok();
        }
        let (code, body) = p.http_get("/api/health");
        assert_eq!(code, 200, "{phase} {end}: {body}\n{}", ended.all());
        assert_eq!(
            p.ssh(&format!("test -e {flag}")).code,
            1,
            "{phase} {end}: no maintenance page"
        );
        assert_eq!(
            p.ssh(&format!("test -e {journal}")).code,
            1,
            "{phase} {end}: the journal is gone"
        );
        assert_eq!(leftovers(&p), "0", "{phase} {end}: no leftover database");
        p.test().arg("status").stderr_lacks("interrupted").run();
    }
    let audit = p.audit();
    for command in ["restore --resume", "restore --abort"] {
        assert!(
            audit.iter().any(|e| e["command"] == command),
            "`{command}` is audited: {audit:?}"
        );
    }
    p.test()
        .args(["restore", "--abort"])
        .stdout_has("no interrupted restore")
        .run();

    // A maintenance page an operator put on is a finding of `up` and `doctor`, never "the stack is up".
    p.vldeploy(&["maintenance", "on"]).ok();
    p.test()
        .arg("up")
        .stdout_lacks("the stack is up")
        .stdout_has("the maintenance page is ON")
        .run();
    p.test().arg("doctor").stdout_has("WARN maintenance").run();
    p.vldeploy(&["maintenance", "off"]).ok();
    p.test().arg("up").stdout(p.converged()).run();
}

#[test]
fn a_backup_directory_whose_disk_fills_up_says_so_and_leaves_no_partial_file() {
    let p = Project::deployed("backup_full");
    let dir = format!("/var/backups/{}", p.name);

    // The backup directory is a small filesystem of its own with one good backup on it, then filled up:
    // the next dump (a few KB compressed) cannot be written.
    p.sh(&format!(
        "mkdir -p {dir} && mount -t tmpfs -o size=1m,mode=700 tmpfs {dir}"
    ));
    let first = p.vldeploy(&["backup", "now"]).ok();
    let before = p.backups();
    assert_eq!(before.len(), 1, "{}", first.all());
    p.sh(&format!(
        "dd if=/dev/zero of={dir}/filler bs=4k 2>/dev/null; sync; df -P -B1 {dir}"
    ));
    let listing = || p.sh(&format!("ls -A {dir} | sort"));
    let files_before = listing();

    for (how, run) in [
        ("`vldeploy backup now`", p.vldeploy(&["backup", "now"])),
        ("the cron entry", p.cron_run()),
    ] {
        assert_eq!(run.code, 1, "{how} exits 1: {}", run.all());
        let free = p.sh(&format!("df -P -B1 {dir} | awk 'NR == 2 {{ print $4 }}'"));
        let free = free.trim();
        let log = last_log_line(&p);
        assert_eq!(log["result"], "failed", "{how}: {log}");
        assert_eq!(log["step"], "disk-full", "{how}: {log}");
        assert_eq!(log["failed"], "gzip", "{how}: {log}");
        assert_eq!(log["free_bytes"].to_string(), free, "{how}: {log}");
        let error = log["error"].as_str().unwrap();
        assert!(
            error.starts_with("gzip exited with 1: gzip: stdout: No space left on device"),
            "{how}: gzip's own message is kept: {log}"
        );
        assert!(
            !error.contains("141"),
            "{how}: not pg_dump's broken pipe: {log}"
        );
        if how.contains("vldeploy") {
            assert!(
                run.stderr.contains(&format!(
                    "the filesystem of the backup directory `{dir}` on `root@127.0.0.1:"
                )) && run.stderr.contains(&format!("is full ({free} bytes free): gzip exited with 1: gzip: stdout: No space left on device")),
                "{}",
                run.stderr
            );
            assert!(
                run.stderr.contains("help: free space on that filesystem, keep fewer backups (`backup.retention`), or set another `backup.dir`"),
                "{}",
                run.stderr
            );
        }
        assert_eq!(listing(), files_before, "{how}: no partial file is left");
        assert_eq!(p.backups(), before, "{how}: `backup list` is unchanged");
    }
    p.sh(&format!("umount {dir}"));
}
