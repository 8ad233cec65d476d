//! Backups that leave the host: `copy_to` a second sandbox host over SSH (checked there), and `encrypt:` with age,
//! restored with the identity.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::fmt::Write as _;
use std::time::Duration;

use crate::backup::{HostExt as _, insert_orders, last_log_line, names};
use crate::support::peer;
use crate::support::project::Project;
use crate::support::ssh::no_secret;

/// Makes an age identity on `p`'s host and takes it off again: (the identity file's text, its recipient).
fn age_identity(p: &Project) -> (String, String) {
    let text = p.sh(
        "umask 077 && age-keygen -o /root/vl-id.key 2>/dev/null && cat /root/vl-id.key && rm -f /root/vl-id.key",
    );
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap_or_else(|| panic!("age-keygen names the public key: {text}"))
        .trim()
        .to_string();
    (text, recipient)
}

/// `stack` with its sandbox environment gated, the checklist's `backup` item its only one.
fn gated(stack: &str) -> String {
    assert!(stack.contains("    domain: localhost\n"));
    stack.replacen(
        "    domain: localhost\n",
        "    domain: localhost\n    gated: true\n    checklist:\n      items: [backup]\n",
        1,
    )
}

#[test]
fn backup_copy_to_a_second_host_is_checked_there_and_an_encrypted_dump_restores_with_its_identity()
{
    let vault = Project::with_sandbox("backup_vault");
    let p = Project::with_sandbox("backup_offsite");
    // What the operator does once: `age` on the shop's host, an identity kept on this machine, and a login from
    // the shop's host to the backup host with its host key pinned.
    p.sh("apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends age >/dev/null");
    let (identity, recipient) = age_identity(&p);
    let (other_identity, _) = age_identity(&p);
    let key = p.path().join("backup.key");
    let other_key = p.path().join("other.key");
    std::fs::write(&key, &identity).unwrap();
    std::fs::write(&other_key, &other_identity).unwrap();
    let addr = peer::trust(&p, &vault, "offsite");
    vault.sh("install -d -o offsite -g offsite /srv/offsite");
    let far = format!("/srv/offsite/{}", p.name);
    let dir = format!("/var/backups/{}", p.name);
    // Continuous archiving too, to a pgBackRest repository on the host, encrypted with a stack secret.
    let passphrase = "an archive passphrase of the shop 4711";
    p.set_secret("PGBACKREST_PASSPHRASE", &format!("\"{passphrase}\""));
    let stack = p.stack_yaml(|t| {
        let _ = write!(
            t,
            "\nbackup:\n  copy_to: offsite@{addr}:{far}\n  encrypt: {recipient}\n  archive:\n    repo: /var/lib/pgbackrest\n    timeout: 5s\n    encrypt_passphrase: PGBACKREST_PASSPHRASE\n"
        );
    });
    p.write_stack(&stack);
    let run = p.vldeploy(&["up"]).ok();
    no_secret(&run, &[passphrase]);
    insert_orders(&p, 9001, 9020);
    let state_then = p.state();
    // Beside the dump's cron line, pgBackRest's full and differential backups on their (default) schedules.
    let cron = p.sh(&format!("cat /etc/cron.d/vldeploy-{}-backup", p.name));
    for line in [
        "\n0 3 * * 0 root docker exec -u postgres vl_postgres pgbackrest '--config=/etc/pgbackrest/pgbackrest.conf' --stanza=main --type=full backup >/dev/null 2>&1\n",
        "\n0 3 * * 1-6 root docker exec -u postgres vl_postgres pgbackrest '--config=/etc/pgbackrest/pgbackrest.conf' --stanza=main --type=diff backup >/dev/null 2>&1\n",
    ] {
        assert!(cron.contains(line), "{cron}");
    }

    // `backup now` makes pgBackRest's stanza and its first backup; WAL is archived from then on, and the
    // repository holds no plaintext row (the database's own files do).
    let run = p.vldeploy(&["backup", "now"]).ok();
    assert!(
        run.stderr.contains("pgBackRest: the stanza is ready"),
        "{}",
        run.all()
    );
    no_secret(&run, &[passphrase]);
    p.sh("docker exec -u postgres vl_postgres pgbackrest --stanza=main check");
    let info =
        p.sh("docker exec -u postgres vl_postgres pgbackrest --stanza=main info --output=json");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert!(
        !info[0]["backup"].as_array().unwrap().is_empty(),
        "a backup is in the repository: {info}"
    );
    assert!(
        info[0]["archive"][0]["max"].is_string(),
        "WAL is archived: {info}"
    );
    assert_eq!(info[0]["cipher"], "aes-256-cbc", "{info}");
    let mount = |dest: &str| {
        p.sh(&format!(
            "docker inspect vl_postgres -f '{{{{range .Mounts}}}}{{{{if eq .Destination \"{dest}\"}}}}{{{{.Source}}}}{{{{end}}}}{{{{end}}}}'"
        ))
        .trim()
        .to_string()
    };
    // `backup status`: the last archived WAL, the repository's backups and the restore points.
    let run = p.vldeploy(&["backup", "status", "-o", "json"]).ok();
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status["stalled"], false, "{status}");
    assert!(status["last_archived_wal"].is_string(), "{status}");
    assert!(
        status["last_archived_age_s"].as_u64().unwrap() <= 10,
        "{status}"
    );
    assert!(status["backups"].as_u64().unwrap() >= 1, "{status}");
    assert!(status["repository_bytes"].as_u64().unwrap() > 0, "{status}");
    assert!(
        status["oldest_restore_point"].as_u64().unwrap()
            <= status["newest_restore_point"].as_u64().unwrap(),
        "{status}"
    );
    // The repository refuses writes: within twice archive_timeout `backup status` says archiving is stalled
    // (exit 1) while the shop serves; when it is writable again, archiving catches up by itself.
    // What this test's encryption and checklist checks take, to keep their cost in CI known.
    let added = std::cell::Cell::new(Duration::ZERO);
    let count = |t: std::time::Instant| added.set(added.get() + t.elapsed());
    p.sh("docker exec vl_postgres chmod 000 /var/lib/pgbackrest");
    p.psql("CREATE TABLE wal_marker (t text); INSERT INTO wal_marker VALUES ('x'); SELECT pg_switch_wal();");
    let started = std::time::Instant::now();
    let stalled = loop {
        let run = p.vldeploy(&["backup", "status"]);
        if run.code == 1 {
            break run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reported stalled: {}",
            run.all()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(stalled.stdout.contains(": STALLED"), "{}", stalled.all());
    assert!(stalled.stderr.contains("archiving on"), "{}", stalled.all());
    // The go-live checklist of a gated environment reads the same state: its `backup` item fails on it.
    let backup_item = |p: &Project| {
        let t = std::time::Instant::now();
        p.write_stack(&gated(&stack));
        let run = p.test().args(["check", "-o", "json"]).any_status().run();
        p.write_stack(&stack);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let item = v["findings"][0].clone();
        assert_eq!(item["item"], "backup", "{v}");
        count(t);
        (
            item["status"].as_str().unwrap().to_string(),
            item["evidence"].as_str().unwrap().to_string(),
            item["fix"].as_str().unwrap().to_string(),
        )
    };
    let (status, evidence, fix) = backup_item(&p);
    assert_eq!(status, "fail", "{evidence}");
    assert!(
        evidence.starts_with("continuous archiving is stalled: "),
        "{evidence}"
    );
    assert!(fix.contains("vldeploy backup status"), "{fix}");
    p.test()
        .arg("doctor")
        .status(1)
        .stdout_has("FAIL archive")
        .stdout_has("archiving is stalled")
        .stdout_has("vldeploy logs postgres")
        .run();
    assert_eq!(p.http_get("/api/health").0, 200, "the shop keeps serving");
    p.sh("docker exec vl_postgres chmod 750 /var/lib/pgbackrest");
    let started = std::time::Instant::now();
    while p.vldeploy(&["backup", "status"]).code != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "archiving never caught up"
        );
        p.psql("INSERT INTO wal_marker VALUES ('y'); SELECT pg_switch_wal();");
        std::thread::sleep(Duration::from_secs(2));
    }
    p.psql("DROP TABLE wal_marker;");
    // Caught up: the item no longer holds archiving against the shop (it still wants a verified dump).
    let (status, evidence, _) = backup_item(&p);
    assert_eq!(status, "fail", "{evidence}");
    assert!(
        evidence.starts_with(
            "no backup was ever verified by a scratch restore; continuous archiving: WAL `"
        ),
        "{evidence}"
    );
    let repo = mount("/var/lib/pgbackrest");
    let pgdata = mount("/var/lib/postgresql/data");
    assert!(!repo.is_empty() && !pgdata.is_empty());
    // A row's customer and a table's name: plain in PGDATA (the control), nowhere in the repository.
    let t = std::time::Instant::now();
    p.psql("CHECKPOINT;");
    for plain in ["c9001", "order_items"] {
        assert_eq!(
            p.ssh(&format!("grep -r -l -a -q -F {plain} {pgdata}")).code,
            0,
            "`{plain}` is plain in PGDATA"
        );
        let found = p.ssh(&format!("grep -r -l -a -F {plain} {repo}"));
        assert_eq!(
            found.code, 1,
            "no plaintext `{plain}` in the pgBackRest repository: {}",
            found.stdout
        );
    }
    count(t);

    // The cron entry's run: an encrypted dump, copied to the backup host and checked there.
    let run = p.cron_run();
    assert_eq!(run.code, 0, "{}", run.all());
    let log = last_log_line(&p);
    assert_eq!(log["result"], "ok", "{log}");
    assert_eq!(log["encrypted"], true, "{log}");
    assert_eq!(log["copy"], "ok", "{log}");
    let file = log["file"].as_str().unwrap().to_string();
    assert!(file.ends_with(".sql.gz.age"), "{file}");
    let sum = log["sha256"].as_str().unwrap().to_string();
    assert_eq!(
        vault.sh(&format!("cd {far} && sha256sum -c {file}.sha256")),
        format!("{file}: OK\n"),
        "the copy on the backup host matches its sidecar"
    );
    assert!(
        vault
            .sh(&format!("cat {far}/{file}.sha256"))
            .starts_with(&sum)
    );
    assert_eq!(
        vault.sh(&format!("stat -c %U {far}/{file}")).trim(),
        "offsite"
    );

    // On disk the dump is not plaintext: no row of the data, no gzip stream, age's header; with the identity
    // it decrypts to the dump that holds those rows.
    for (host, path) in [
        (&p, format!("{dir}/{file}")),
        (&vault, format!("{far}/{file}")),
    ] {
        assert_eq!(
            host.ssh(&format!("grep -c -a -e ord-9001 -e c9001 {path}"))
                .stdout
                .trim(),
            "0",
            "{path}: no plaintext row"
        );
        assert_ne!(
            host.ssh(&format!("gzip -t < {path}")).code,
            0,
            "{path}: not a gzip stream"
        );
        assert_eq!(
            host.sh(&format!("head -c 21 {path}")),
            "age-encryption.org/v1"
        );
    }
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &identity);
    let rows = p.sh(&format!(
        "echo {b64} | base64 -d | age -d -i - {dir}/{file} | gzip -dc | grep -c -e '^ord-9001' -e '^ord-9020'"
    ));
    // ord-9001 and ord-9020, each in `orders` and `order_items`.
    assert_eq!(rows.trim(), "4", "the decrypted dump holds the rows");

    // The backup host's own sha256 differs from the file's (what a copy damaged on the way looks like): the run
    // exits 2, the local backup is kept and listed, and the backup host has neither the file nor a temporary.
    vault.sh("printf '#!/bin/sh\\ncat >/dev/null\\necho \"0000000000000000000000000000000000000000000000000000000000000000  -\"\\n' > /usr/local/bin/sha256sum && chmod 755 /usr/local/bin/sha256sum");
    let run = p.cron_run();
    vault.sh("rm -f /usr/local/bin/sha256sum");
    assert_eq!(run.code, 2, "{}", run.all());
    let log = last_log_line(&p);
    assert_eq!(log["result"], "ok", "{log}");
    assert_eq!(log["copy"], "failed", "{log}");
    let error = log["error"].as_str().unwrap();
    assert!(
        error.contains("the sha256 on the far side is 0000000000000000000000000000000000000000000000000000000000000000, not "),
        "{log}"
    );
    let damaged = log["file"].as_str().unwrap().to_string();
    assert!(
        names(&p.backups()).contains(&damaged),
        "the local backup is kept"
    );
    assert_eq!(
        p.sh(&format!("cd {dir} && sha256sum -c {damaged}.sha256")),
        format!("{damaged}: OK\n")
    );
    assert_eq!(
        vault
            .sh(&format!("ls -A {far} | grep -c -F {damaged} || true"))
            .trim(),
        "0",
        "nothing of the failed copy is on the backup host"
    );

    // The backup host refuses the login: exit 2 again, with ssh's reason, and the local backup is kept.
    vault.sh("mv /home/offsite/.ssh/authorized_keys /home/offsite/.ssh/authorized_keys.off");
    let run = p.cron_run();
    vault.sh("mv /home/offsite/.ssh/authorized_keys.off /home/offsite/.ssh/authorized_keys");
    assert_eq!(run.code, 2, "{}", run.all());
    let log = last_log_line(&p);
    assert_eq!(log["copy"], "failed", "{log}");
    assert!(
        log["error"].as_str().unwrap().contains("Permission denied"),
        "{log}"
    );
    let refused = log["file"].as_str().unwrap().to_string();
    assert!(
        names(&p.backups()).contains(&refused),
        "the local backup is kept"
    );
    assert!(refused.ends_with(".sql.gz.age"), "{refused}");

    // Restore of the encrypted dump (the newest: retention keeps one a day, and the data is unchanged since the
    // first run): refused without the identity and with a wrong one, nothing changed; with
    // the identity it brings back exactly the data of the backup, and leaves no decrypted copy behind.
    insert_orders(&p, 9021, 9030);
    let live = p.state();
    assert_ne!(live, state_then);
    p.test()
        .args(["restore", &refused, "--yes"])
        .status(1)
        .stderr_has("is encrypted with age and no identity was given")
        .stderr_has("--identity PATH")
        .run();
    p.test()
        .args([
            "restore",
            &refused,
            "--yes",
            "--identity",
            other_key.to_str().unwrap(),
        ])
        .status(1)
        .stderr_has("does not decrypt with the given identity")
        .stderr_has("no identity matched any of the recipients")
        .stderr_has("nothing was changed")
        .run();
    assert_eq!(p.state(), live, "the refused restores changed nothing");
    let plain = refused.trim_end_matches(".age");
    let run = p
        .vldeploy(&[
            "restore",
            &refused,
            "--yes",
            "--identity",
            key.to_str().unwrap(),
        ])
        .ok();
    assert!(
        run.stdout.contains(&format!("from `{plain}`")),
        "{}",
        run.stdout
    );
    assert_eq!(p.state(), state_then, "the encrypted backup's data is back");
    assert_eq!(p.http_get("/api/health").0, 200);
    assert_eq!(
        p.ssh(&format!(
            "test -e {dir}/{plain} || test -e {dir}/{plain}.sha256"
        ))
        .code,
        1,
        "the decrypted copy is removed"
    );
    let secret_line = identity
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    no_secret(&run, std::slice::from_ref(&secret_line));

    // The same encrypted backup from this machine: pulled, then sent back with `--from-local`.
    let local = p.path().join("pulled.sql.gz.age");
    p.vldeploy(&["backup", "pull", &refused, "--to", local.to_str().unwrap()])
        .ok();
    insert_orders(&p, 9031, 9035);
    assert_ne!(p.state(), state_then);
    let run = p
        .vldeploy(&[
            "restore",
            "--from-local",
            local.to_str().unwrap(),
            "--yes",
            "--identity",
            key.to_str().unwrap(),
        ])
        .ok();
    assert!(
        run.stdout.contains("_uploaded.sql.gz`"),
        "the upload keeps its `.age` until it is decrypted: {}",
        run.all()
    );
    assert_eq!(p.state(), state_then, "the pulled backup's data is back");
    no_secret(&run, &[secret_line]);

    // Point-in-time recovery from the pgBackRest repository: a table written, the moment noted, one more row,
    // then the table dropped; `restore --to` that moment brings the table back with exactly its rows then.
    p.psql("CREATE TABLE pitr_rows (id int PRIMARY KEY, v text); INSERT INTO pitr_rows SELECT g, md5(g::text) FROM generate_series(1, 500) g;");
    let rows_sql =
        "SELECT count(*) || ' ' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM pitr_rows";
    let rows = p.psql(rows_sql);
    assert!(rows.starts_with("500 "), "{rows}");
    std::thread::sleep(Duration::from_millis(1100));
    let target = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    p.psql("INSERT INTO pitr_rows VALUES (501, 'written after the target');");
    p.psql("DROP TABLE pitr_rows; SELECT pg_switch_wal();");
    let after = p.state();
    let started = std::time::Instant::now();
    while p.vldeploy(&["backup", "status"]).code != 0 {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "the WAL is never archived"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // Before the oldest backup: refused, with the oldest restore point named, and nothing changed.
    let volumes = p.sh("docker volume ls -q | sort");
    p.test()
        .args(["restore", "--to", "2001-02-03 04:05:06", "--yes"])
        .status(1)
        .stderr_has("no backup precedes 2001-02-03T04:05:06Z: the oldest restore point is ")
        .stderr_has("nothing was changed")
        .run();
    p.test()
        .args(["restore", "--to", "last tuesday", "--yes"])
        .status(1)
        .stderr_has("`--to last tuesday` is not a time")
        .run();
    // The passphrase secret wrong, empty or gone: refused with the secret named (never a value) and what to do,
    // and nothing changed.
    let t = std::time::Instant::now();
    let wrong = "not the archive passphrase 0815";
    let secrets = p.path().join(".vldeploy/sandbox/secrets.env");
    let set_passphrase = |line: Option<&str>| {
        let text = std::fs::read_to_string(&secrets).unwrap();
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("PGBACKREST_PASSPHRASE="))
            .collect();
        lines.extend(line);
        std::fs::write(&secrets, lines.join("\n") + "\n").unwrap();
    };
    for (line, says) in [
        (
            format!("PGBACKREST_PASSPHRASE=\"{wrong}\""),
            vec![
                "the pgBackRest repository does not decrypt with the passphrase in the secret `PGBACKREST_PASSPHRASE` (`backup.archive.encrypt_passphrase`)",
                "the live database and the backend are as they were",
                "nothing was changed",
                "help: set `PGBACKREST_PASSPHRASE` in the secrets file to the passphrase the repository was created with",
            ],
        ),
        (
            "PGBACKREST_PASSPHRASE=\"\"".to_string(),
            vec![
                "the secret `PGBACKREST_PASSPHRASE` (`backup.archive.encrypt_passphrase`) has no value",
                "nothing was changed",
                "help: set `PGBACKREST_PASSPHRASE` in the secrets file",
            ],
        ),
        (
            String::new(),
            vec![
                "`encrypt_passphrase` names no secret: `PGBACKREST_PASSPHRASE` at `backup.archive.encrypt_passphrase`",
            ],
        ),
    ] {
        set_passphrase(Some(line.as_str()).filter(|l| !l.is_empty()));
        let run = p.vldeploy(&["restore", "--to", "latest", "--yes"]);
        assert_eq!(run.code, 1, "{}", run.all());
        for text in says {
            assert!(run.stderr.contains(text), "`{text}` in {}", run.all());
        }
        no_secret(&run, &[passphrase, wrong]);
        assert_eq!(p.http_get("/api/health").0, 200, "the shop keeps serving");
    }
    set_passphrase(Some(&format!("PGBACKREST_PASSPHRASE=\"{passphrase}\"")));
    count(t);
    assert_eq!(p.state(), after, "the refused restores changed nothing");
    assert_eq!(p.sh("docker volume ls -q | sort"), volumes);
    let timed = std::time::Instant::now();
    let run = p.vldeploy(&["restore", "--to", &target, "--yes"]).ok();
    eprintln!("restore --to took {:.1}s", timed.elapsed().as_secs_f64());
    no_secret(&run, &[passphrase]);
    let target_pg = target.trim_end_matches('Z').replacen('T', " ", 1);
    assert!(
        run.stdout.contains(&format!("to {target_pg}+00")),
        "{}",
        run.all()
    );
    let safety = run
        .stdout
        .split("the previous data is kept in volume `")
        .nth(1)
        .and_then(|t| t.split('`').next())
        .unwrap_or_else(|| panic!("the safety copy is named: {}", run.all()))
        .to_string();
    assert_eq!(
        p.psql(rows_sql),
        rows,
        "the table is back with exactly its rows"
    );
    assert_eq!(
        p.psql("SELECT count(*) FROM pitr_rows WHERE id = 501")
            .trim(),
        "0",
        "the row written after the target is absent"
    );
    assert_eq!(
        p.http_get("/api/health").0,
        200,
        "the shop serves the restored data"
    );
    assert!(
        p.sh("docker volume ls -q").lines().any(|v| v == safety),
        "the safety copy `{safety}` is kept"
    );
    assert_eq!(
        p.ssh(&format!(
            "test -e /var/lib/vldeploy/{}/restore.json",
            p.name
        ))
        .code,
        1,
        "the journal is gone"
    );
    p.sh("docker exec -u postgres vl_postgres pgbackrest --stanza=main check");
    // The restored table's name is plain in the live data again, and still nowhere in the repository.
    let t = std::time::Instant::now();
    p.psql("CHECKPOINT;");
    assert_eq!(
        p.ssh(&format!("grep -r -l -a -q -F pitr_rows {pgdata}"))
            .code,
        0,
        "`pitr_rows` is plain in PGDATA"
    );
    assert_eq!(
        p.ssh(&format!("grep -r -l -a -F -e pitr_rows -e c9001 {repo}"))
            .code,
        1,
        "no plaintext in the pgBackRest repository after the restore"
    );
    count(t);
    eprintln!(
        "the encryption and checklist checks took {:.1}s",
        added.get().as_secs_f64()
    );
}
