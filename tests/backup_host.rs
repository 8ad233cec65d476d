//! The pgBackRest repository on a separate backup host (`backup.archive.repo: ssh://…`): `up` prepares that host,
//! postgres archives there over TLS, `backup now` backs up from there, and a stopped backup host is reported by
//! `backup status` and `doctor` while the shop serves, archiving catching up without a gap when it returns.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::backup::{HostExt as _, insert_orders};
use crate::support::peer;
use crate::support::project::Project;
use crate::support::ssh::no_secret;

/// Lets `p`'s environment key log in to `vault` as root, with `vault`'s host key in `p`'s `known_hosts`.
fn trust_environment(p: &Project, vault: &Project) {
    let public =
        std::fs::read_to_string(p.path().join(".vldeploy/sandbox/id_ed25519.pub")).unwrap();
    vault.sh(&format!(
        "printf '%s\\n' '{}' >> /root/.ssh/authorized_keys",
        public.trim()
    ));
    let keys = std::fs::read_to_string(vault.path().join(".vldeploy/sandbox/known_hosts")).unwrap();
    let mine = p.path().join(".vldeploy/sandbox/known_hosts");
    let mut text = std::fs::read_to_string(&mine).unwrap();
    text.push_str(&keys);
    std::fs::write(&mine, text).unwrap();
}

/// `pgbackrest info` on the backup host, as JSON.
fn info(vault: &Project, container: &str) -> serde_json::Value {
    let text = vault.sh(&format!(
        "docker exec -u postgres {container} pgbackrest --stanza=main info --output=json"
    ));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_repository_on_a_backup_host_is_prepared_by_up_archived_to_over_tls_and_its_outage_reported()
{
    let vault = Project::with_sandbox("backup_host_vault");
    let p = Project::with_sandbox("backup_host");
    trust_environment(&p, &vault);
    let (vault_ip, db_ip) = (peer::address(&vault), peer::address(&p));
    let vault_ssh = vault.sandbox_var("SANDBOX_SSH_PORT");
    let passphrase = "a backup host passphrase 0815";
    p.set_secret("PGBACKREST_PASSPHRASE", &format!("\"{passphrase}\""));
    let stack = p.stack_yaml(|t| {
        let _ = write!(
            t,
            "\nbackup:\n  archive:\n    repo: ssh://root@127.0.0.1:{vault_ssh}/var/lib/pgbackrest\n    repo_address: {vault_ip}\n    db_address: {db_ip}\n    timeout: 5s\n    encrypt_passphrase: PGBACKREST_PASSPHRASE\n"
        );
    });
    p.write_stack(&stack);
    let container = format!("vl_{}_pgbackrest", p.name);

    // `up` prepares the backup host: the stack's postgres image there, serving the repository.
    let t = Instant::now();
    let run = p.vldeploy(&["up"]).ok();
    eprintln!("up with a backup host: {:.1}s", t.elapsed().as_secs_f64());
    no_secret(&run, &[passphrase]);
    assert!(
        run.stderr.contains(&format!("backup host root@127.0.0.1:{vault_ssh}: pgBackRest repository `/var/lib/pgbackrest` served on port 8432 by `{container}`")),
        "{}",
        run.all()
    );
    assert_eq!(
        vault
            .sh(&format!(
                "docker inspect -f '{{{{.State.Running}}}}' {container}"
            ))
            .trim(),
        "true"
    );
    // The TLS identities stay with the operator, keys 0600; the CA's key never leaves this machine.
    let dir = p.path().join(".vldeploy/sandbox/pgbackrest");
    for f in ["ca.key", "repo.key", "db.key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let ca_key = std::fs::read_to_string(dir.join("ca.key")).unwrap();
    let ca_line = ca_key.lines().nth(1).unwrap();
    assert_eq!(
        vault
            .ssh(&format!("grep -r -l -F -q '{ca_line}' /var/lib/vldeploy"))
            .code,
        1
    );
    // pgBackRest's scheduled backups are the backup host's cron entry; the db host keeps only the dumps.
    let cron_path = format!("/etc/cron.d/vldeploy-{}-pgbackrest", p.name);
    assert!(
        run.stderr.contains(&format!(
            "backup host root@127.0.0.1:{vault_ssh}: cron entry `{cron_path}` takes pgBackRest's full backups"
        )),
        "{}",
        run.all()
    );
    let cron = vault.sh(&format!("cat {cron_path}"));
    let full = cron
        .lines()
        .find(|l| l.contains("--type=full backup"))
        .unwrap_or_else(|| panic!("no full backup in {cron}"));
    assert!(full.contains(" root flock -n "), "{cron}");
    let here = p.sh(&format!("cat /etc/cron.d/vldeploy-{}-backup", p.name));
    assert!(!here.contains("pgbackrest"), "{here}");
    assert!(here.contains("backup.sh"), "{here}");
    // A second `up` changes nothing there.
    let again = p.vldeploy(&["up"]).ok();
    assert!(!again.stderr.contains("backup host"), "{}", again.all());

    // `backup now` makes the stanza and a backup from the backup host; WAL arrives there.
    let run = p.vldeploy(&["backup", "now"]).ok();
    assert!(
        run.stderr.contains("pgBackRest: the stanza is ready"),
        "{}",
        run.all()
    );
    no_secret(&run, &[passphrase]);
    insert_orders(&p, 7001, 7020);
    p.psql("SELECT pg_switch_wal();");
    let started = Instant::now();
    let status = loop {
        let run = p.vldeploy(&["backup", "status", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
        if run.code == 0 && v["backups"].as_u64().unwrap_or(0) >= 1 {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{}", run.all());
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(
        status["backup_host"],
        format!("root@127.0.0.1:{vault_ssh}"),
        "{status}"
    );
    let i = info(&vault, &container);
    assert_eq!(i[0]["cipher"], "aes-256-cbc", "{i}");
    assert!(!i[0]["backup"].as_array().unwrap().is_empty(), "{i}");

    // The cron entry's command, run by hand as cron would, makes a new full backup there, one at a time, logged.
    let before = info(&vault, &container)[0]["backup"]
        .as_array()
        .unwrap()
        .len();
    let command = full.splitn(7, ' ').nth(6).unwrap();
    let t = Instant::now();
    vault.sh(command);
    eprintln!(
        "the backup host's scheduled full backup, by hand: {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let i = info(&vault, &container);
    let backups = i[0]["backup"].as_array().unwrap();
    assert_eq!(backups.len(), before + 1, "{i}");
    assert_eq!(backups.last().unwrap()["type"], "full", "{i}");
    let log = vault.sh(&format!(
        "cat /var/lib/vldeploy/{}/pgbackrest-backup.log",
        p.name
    ));
    assert!(
        log.contains("backup command end: completed successfully"),
        "{log}"
    );
    assert!(!log.contains(passphrase), "the log shows the passphrase");

    // `backup verify --archive`: the newest backup plus the WAL archived since, restored into a scratch
    // instance; every order is there, and the scratch container and volume are gone.
    insert_orders(&p, 7041, 7050);
    p.sh("docker exec -u postgres vl_postgres pgbackrest --stanza=main check");
    let live: u64 = p
        .psql("SELECT count(*) FROM orders")
        .trim()
        .parse()
        .unwrap();
    let v = crate::backup_archive::verify_archive(&p, "the backup host", passphrase, live);
    let human = p.vldeploy(&["backup", "status"]).ok();
    assert!(
        human.stdout.contains(&format!(
            "last verification  pgBackRest backup {}",
            v["backup"].as_str().unwrap()
        )),
        "{}",
        human.all()
    );
    assert!(
        human
            .stdout
            .contains(&format!("on the backup host root@127.0.0.1:{vault_ssh}")),
        "{}",
        human.all()
    );
    // No plaintext row in the repository on the backup host.
    let repo = vault
        .sh(&format!(
            "docker volume inspect -f '{{{{.Mountpoint}}}}' {}_pgbackrest_repo",
            p.name
        ))
        .trim()
        .to_string();
    for plain in ["c7001", "order_items"] {
        let found = vault.ssh(&format!("grep -r -l -a -F {plain} {repo}"));
        assert_eq!(
            found.code, 1,
            "`{plain}` is plain in the repository: {}",
            found.stdout
        );
    }

    // The backup host stopped: within twice archive_timeout `backup status` and `doctor` name it; the shop
    // serves.
    vault.sh(&format!("docker stop {container} >/dev/null"));
    p.psql("CREATE TABLE wal_marker (t text); INSERT INTO wal_marker VALUES ('x'); SELECT pg_switch_wal();");
    let stopped = Instant::now();
    let stalled = loop {
        let run = p.vldeploy(&["backup", "status"]);
        if run.code == 1 {
            break run;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "not reported within twice archive_timeout: {}",
            run.all()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "backup host stopped: reported after {:.1}s",
        stopped.elapsed().as_secs_f64()
    );
    assert!(
        stopped.elapsed() <= Duration::from_secs(10),
        "reported after {:?}, more than twice archive_timeout",
        stopped.elapsed()
    );
    assert!(stalled.stdout.contains(": STALLED"), "{}", stalled.all());
    assert!(
        stalled.stdout.contains("NOT ANSWERING"),
        "{}",
        stalled.all()
    );
    assert!(
        stalled.stderr.contains(&format!(
            "start the backup host root@127.0.0.1:{vault_ssh} again"
        )),
        "{}",
        stalled.all()
    );
    p.test()
        .arg("doctor")
        .status(1)
        .stdout_has("FAIL archive")
        .stdout_has("does not answer pgBackRest")
        .run();
    assert_eq!(p.http_get("/api/health").0, 200, "the shop keeps serving");
    insert_orders(&p, 7021, 7040);
    // The segment this switch completes: written while the backup host was away.
    let wanted = p.psql("SELECT pg_walfile_name(pg_switch_wal());");

    // It returns: archiving catches up by itself, and the repository's WAL has no gap up to the current one.
    vault.sh(&format!("docker start {container} >/dev/null"));
    let back = Instant::now();
    loop {
        let run = p.vldeploy(&["backup", "status", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
        if run.code == 0 && v["last_archived_wal"].as_str().unwrap_or("") >= wanted.trim() {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(90),
            "never caught up: {}",
            run.all()
        );
        p.psql("INSERT INTO wal_marker VALUES ('y'); SELECT pg_switch_wal();");
        std::thread::sleep(Duration::from_secs(2));
    }
    eprintln!(
        "archiving caught up {:.1}s after the backup host returned",
        back.elapsed().as_secs_f64()
    );
    p.sh("docker exec -u postgres vl_postgres pgbackrest --stanza=main check");
    let i = info(&vault, &container);
    let (min, max) = (
        i[0]["archive"][0]["min"].as_str().unwrap().to_string(),
        i[0]["archive"][0]["max"].as_str().unwrap().to_string(),
    );
    assert!(
        max.as_str() >= wanted.trim(),
        "archived up to {max}, wanted {wanted}"
    );
    // Every segment from the first to the last is in the repository: archive-get of each one.
    let seg = |s: &str| u64::from_str_radix(&s[16..24], 16).unwrap();
    for n in seg(&min)..=seg(&max) {
        let name = format!("{}{:08X}", &min[..16], n);
        p.sh(&format!(
            "docker exec -u postgres vl_postgres pgbackrest --stanza=main archive-get {name} /tmp/pgbackrest/{name} && docker exec vl_postgres rm -f /tmp/pgbackrest/{name}"
        ));
    }
    p.psql("DROP TABLE wal_marker;");
}
