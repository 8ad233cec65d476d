//! Disaster recovery onto a new host from the backup host: orders written continuously, the shop's host
//! destroyed with its volumes, a new host, `up`, `restore --from-backup-host`; then a point in time restored from
//! the backup host's repository, and a wrong or missing passphrase refused with nothing changed.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::fmt::Write as _;
use std::io::{BufRead as _, Write as _};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::backup::HostExt as _;
use crate::support::peer;
use crate::support::project::Project;
use crate::support::ssh::{Host as _, no_secret};

/// Lets `p`'s environment key log in to `vault` as root, with `vault`'s host key in `p`'s `known_hosts`.
fn trust_environment(p: &Project, vault: &Project) {
    let public =
        std::fs::read_to_string(p.path().join(".vldeploy/sandbox/id_ed25519.pub")).unwrap();
    vault.sh(&format!(
        "grep -q -F '{key}' /root/.ssh/authorized_keys || printf '%s\\n' '{key}' >> /root/.ssh/authorized_keys",
        key = public.trim()
    ));
    let keys = std::fs::read_to_string(vault.path().join(".vldeploy/sandbox/known_hosts")).unwrap();
    let mine = p.path().join(".vldeploy/sandbox/known_hosts");
    let mut text = std::fs::read_to_string(&mine).unwrap();
    text.push_str(&keys);
    std::fs::write(&mine, text).unwrap();
}

fn stack(p: &Project, vault: &Project) -> String {
    let (vault_ip, db_ip) = (peer::address(vault), peer::address(p));
    let vault_ssh = vault.sandbox_var("SANDBOX_SSH_PORT");
    p.stack_yaml(|t| {
        let _ = write!(
            t,
            "\nbackup:\n  archive:\n    repo: ssh://root@127.0.0.1:{vault_ssh}/var/lib/pgbackrest\n    repo_address: {vault_ip}\n    db_address: {db_ip}\n    timeout: 5s\n    encrypt_passphrase: PGBACKREST_PASSPHRASE\n"
        );
    })
}

/// One order every 100 ms through one psql session on the host; each id is logged with the moment it was sent
/// and, once psql printed its `RETURNING` row (after the commit), as acknowledged with that moment.
struct Writer {
    stop: Arc<Mutex<bool>>,
    acked: Arc<Mutex<Vec<(u32, SystemTime)>>>,
    sent: Arc<Mutex<Vec<(u32, SystemTime)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(p: &Project, first: u32) -> Self {
        let mut child = p
            .login()
            .command(
                "docker exec -i vl_postgres psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d vaibava_db",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stop = Arc::new(Mutex::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = {
            let acked = acked.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(id) = line
                        .trim()
                        .strip_prefix("ord-")
                        .and_then(|n| n.parse().ok())
                    {
                        acked.lock().unwrap().push((id, SystemTime::now()));
                    }
                }
            })
        };
        let thread = {
            let stop = stop.clone();
            let sent = sent.clone();
            std::thread::spawn(move || {
                let mut id = first;
                while !*stop.lock().unwrap() {
                    let sql = format!(
                        "INSERT INTO orders (id, status, payment_mode, amount_paise, customer) VALUES ('ord-{id}', 'paid', 'cod', {id}, jsonb_build_object('name', 'c{id}')) RETURNING id;\n"
                    );
                    if stdin
                        .write_all(sql.as_bytes())
                        .and_then(|()| stdin.flush())
                        .is_err()
                    {
                        break;
                    }
                    sent.lock().unwrap().push((id, SystemTime::now()));
                    id += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                drop(stdin);
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
            })
        };
        Self {
            stop,
            acked,
            sent,
            thread: Some(thread),
        }
    }

    /// Stops writing (the session may already be gone with its host); the acknowledged ids and the sent ones,
    /// with their times.
    fn finish(mut self) -> (Vec<(u32, SystemTime)>, Vec<(u32, SystemTime)>) {
        *self.stop.lock().unwrap() = true;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.acked.lock().unwrap().clone(),
            self.sent.lock().unwrap().clone(),
        )
    }
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn the_shop_host_destroyed_a_new_host_restores_from_the_backup_host_then_a_point_in_time() {
    let started = Instant::now();
    let lap = |what: &str| eprintln!("[{:>5.1}s] {what}", started.elapsed().as_secs_f64());
    let vault = Project::with_sandbox("backup_dr_vault");
    let p = Project::with_sandbox("backup_dr");
    trust_environment(&p, &vault);
    let passphrase = "a disaster recovery passphrase 4711";
    p.set_secret("PGBACKREST_PASSPHRASE", &format!("\"{passphrase}\""));
    p.write_stack(&stack(&p, &vault));
    let vault_name = format!("root@127.0.0.1:{}", vault.sandbox_var("SANDBOX_SSH_PORT"));
    lap("two sandbox hosts");

    // Without a backup host, `--from-backup-host` is refused and names the key to set.
    for (archive, says) in [
        (
            "\nbackup:\n  archive:\n    repo: /var/lib/pgbackrest\n    timeout: 5s\n",
            "(`backup.archive.repo` is a path on the database host)",
        ),
        ("", "(`backup.archive.repo` is not set)"),
    ] {
        p.write_stack(&p.stack_yaml(|t| t.push_str(archive)));
        p.test()
            .args(["restore", "--from-backup-host", "--yes"])
            .status(1)
            .stderr_has(says)
            .stderr_has("set `backup.archive.repo: ssh://USER@HOST/PATH`")
            .stderr_has("nothing was changed")
            .run();
    }
    p.write_stack(&stack(&p, &vault));

    p.vldeploy(&["up"]).ok();
    let run = p.vldeploy(&["backup", "now"]).ok();
    no_secret(&run, &[passphrase]);
    lap("up and a first backup on the backup host");

    // Orders, one every 100 ms, acknowledged one by one; then the host destroyed with its volumes.
    let writer = Writer::start(&p, 100_000);
    std::thread::sleep(Duration::from_secs(20));
    let container = format!("vldeploy-sandbox-{}", p.name);
    let kill = std::process::Command::new("docker")
        .args(["kill", &container])
        .output()
        .unwrap();
    assert!(kill.status.success(), "{kill:?}");
    // `docker kill` returns once the host is dead: nothing is written after this moment.
    let destroyed = SystemTime::now();
    let (acked, sent) = writer.finish();
    p.vldeploy(&["sandbox", "down"]).ok();
    assert!(
        !std::process::Command::new("docker")
            .args(["ps", "-a", "-q", "--filter", &format!("name=^{container}$")])
            .output()
            .unwrap()
            .stdout
            .iter()
            .any(|b| !b.is_ascii_whitespace()),
        "the shop's host is gone"
    );
    assert!(acked.len() > 100, "orders were written: {}", acked.len());
    lap(&format!(
        "{} orders acknowledged; the shop's host destroyed",
        acked.len()
    ));

    // A new host: `up` with the stack pointed at it. Its fresh cluster is not the repository's.
    p.sandbox_up(&[]);
    trust_environment(&p, &vault);
    p.write_stack(&stack(&p, &vault));
    let run = p.vldeploy(&["up"]).ok();
    no_secret(&run, &[passphrase]);
    assert_eq!(
        p.psql("SELECT count(*) FROM orders").trim(),
        "0",
        "a new, empty database"
    );
    lap("a new host, up");
    p.test()
        .args(["backup", "status"])
        .status(1)
        .stderr_has("this database is not the one the repository holds: `vldeploy restore --from-backup-host`")
        .run();
    p.test()
        .arg("doctor")
        .status(1)
        .stdout_has("FAIL archive")
        .stdout_has("this database is not the one the repository holds: `vldeploy restore --from-backup-host`")
        .run();
    p.test()
        .args(["restore", "--to", "latest", "--yes"])
        .status(1)
        .stderr_has("this database is not the one the repository holds")
        .stderr_has("`vldeploy restore --from-backup-host`")
        .stderr_has("nothing was changed")
        .run();

    // The passphrase wrong or missing: refused before anything changes.
    let volumes = p.sh("docker volume ls -q | sort");
    let wrong = "not the disaster passphrase";
    for (value, says) in [
        (
            format!("\"{wrong}\""),
            "the pgBackRest repository does not decrypt with the passphrase in the secret `PGBACKREST_PASSPHRASE`",
        ),
        (
            "\"\"".to_owned(),
            "the secret `PGBACKREST_PASSPHRASE` (`backup.archive.encrypt_passphrase`) has no value",
        ),
    ] {
        p.set_secret("PGBACKREST_PASSPHRASE", &value);
        let run = p.vldeploy(&["restore", "--from-backup-host", "--yes"]);
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(run.stderr.contains(says), "`{says}` in {}", run.all());
        assert!(run.stderr.contains("nothing was changed"), "{}", run.all());
        no_secret(&run, &[passphrase, wrong]);
    }
    p.set_secret("PGBACKREST_PASSPHRASE", &format!("\"{passphrase}\""));
    assert_eq!(
        p.sh("docker volume ls -q | sort"),
        volumes,
        "nothing was changed"
    );
    assert_eq!(p.psql("SELECT count(*) FROM orders").trim(), "0");
    lap("wrong and missing passphrases refused");

    // Back to the last WAL archived on the backup host.
    let t = Instant::now();
    let run = p.vldeploy(&["restore", "--from-backup-host", "--yes"]).ok();
    let restore_s = t.elapsed().as_secs_f64();
    no_secret(&run, &[passphrase]);
    assert!(
        run.stdout.contains("restored `vaibava_db` to latest"),
        "{}",
        run.all()
    );
    eprintln!("{}", run.stdout);
    let present: Vec<u32> = p
        .psql("SELECT substr(id, 5) FROM orders WHERE id LIKE 'ord-1_____' ORDER BY 1")
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let mut unique = present.clone();
    unique.dedup();
    assert_eq!(unique.len(), present.len(), "no order twice");
    let acked_ids: Vec<u32> = acked.iter().map(|(id, _)| *id).collect();
    // What came back is the acknowledged orders up to one moment: none missing before it, nothing invented.
    let last = *present.last().expect("orders came back");
    let first = acked_ids[0];
    assert_eq!(
        present,
        (first..=last).collect::<Vec<_>>(),
        "no gap in the restored orders"
    );
    let missing: Vec<&(u32, SystemTime)> = acked.iter().filter(|(id, _)| *id > last).collect();
    // The seconds of loss: from the moment the first order that did not come back was sent.
    let first_lost = sent
        .iter()
        .find(|(id, _)| *id > last)
        .map_or(destroyed, |(_, t)| *t);
    let loss_s = secs(destroyed) - secs(first_lost);
    eprintln!(
        "disaster recovery: {} of {} acknowledged orders back, {} lost ({:.1}s of orders before the host was destroyed); restore --from-backup-host took {restore_s:.1}s",
        present.len(),
        acked.len(),
        missing.len(),
        loss_s
    );
    for (id, at) in &acked {
        if secs(*at) <= secs(destroyed) - 60.0 {
            assert!(
                present.contains(id),
                "ord-{id}, acknowledged more than 60s before, is lost"
            );
        }
    }
    assert!(
        loss_s <= 15.0,
        "{loss_s:.1}s of orders lost: more than three times archive_timeout (5s)"
    );
    assert_eq!(
        p.http_get("/api/health").0,
        200,
        "the shop serves the restored data"
    );
    // Archiving resumes into the stanza, on a new timeline.
    p.sh("docker exec -u postgres vl_postgres pgbackrest --stanza=main check");
    let timeline = p.psql("SELECT timeline_id FROM pg_control_checkpoint()");
    assert_ne!(timeline.trim(), "1", "a new timeline");
    let status = p.vldeploy(&["backup", "status"]).ok();
    assert!(
        status
            .stdout
            .contains(&format!("on the backup host {vault_name}")),
        "{}",
        status.all()
    );
    lap("restored from the backup host");

    // A point in time on the backup host's repository: a table dropped at T, `--to` T−1s brings back its rows.
    p.psql("CREATE TABLE dr_rows (id int PRIMARY KEY, v text); INSERT INTO dr_rows SELECT g, md5(g::text) FROM generate_series(1, 300) g;");
    let rows_sql =
        "SELECT count(*) || ' ' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM dr_rows";
    let rows = p.psql(rows_sql);
    std::thread::sleep(Duration::from_millis(1100));
    let target = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    p.psql("INSERT INTO dr_rows VALUES (301, 'written after the target'); DROP TABLE dr_rows; SELECT pg_switch_wal();");
    let wait = Instant::now();
    while p.vldeploy(&["backup", "status"]).code != 0 {
        assert!(
            wait.elapsed() < Duration::from_mins(1),
            "the WAL is never archived"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let safety = |p: &Project| {
        p.sh("docker volume ls -q --filter label=vldeploy.restore=point-in-time | sort")
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let before = safety(&p);
    assert_eq!(
        before.len(),
        1,
        "the recovery kept one safety copy: {before:?}"
    );
    let t = Instant::now();
    let run = p.vldeploy(&["restore", "--to", &target, "--yes"]).ok();
    eprintln!(
        "restore --to from the backup host took {:.1}s",
        t.elapsed().as_secs_f64()
    );
    no_secret(&run, &[passphrase]);
    // The recovery's safety copy goes once this restore serves; this one's stays, alone.
    let after = safety(&p);
    assert!(
        after.len() == 1 && after != before,
        "one safety copy, this restore's: {before:?} then {after:?}"
    );
    assert!(
        run.stdout
            .contains(&format!("removed volume `{}`", before[0])),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&after[0]), "{}", run.stdout);
    assert_eq!(
        p.psql(rows_sql),
        rows,
        "the table is back with exactly its rows"
    );
    assert_eq!(
        p.psql("SELECT count(*) FROM dr_rows WHERE id = 301").trim(),
        "0",
        "the row written after the target is absent"
    );
    assert_eq!(p.http_get("/api/health").0, 200);
    p.sh("docker exec -u postgres vl_postgres pgbackrest --stanza=main check");
    lap("restored to a point in time from the backup host");
}
