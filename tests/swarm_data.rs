//! A cluster's data: the catalog seeded through an edge's nginx task, a backup taken by the db node's cron
//! entry from the postgres task there, and a `restore` that brings every row back while the backend's service
//! is scaled down and back.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use base64::Engine as _;

use crate::cluster::Node;
use crate::support::project::{Project, http_get};
use crate::support::ssh::ssh_ok;

/// Runs `sql` in the running postgres task on the db node; its output, trimmed.
fn psql(p: &Project, db: &Node, sql: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(sql);
    ssh_ok(
        db,
        &format!(
            "c=$(docker ps -q --filter label=com.docker.swarm.service.name={}_postgres --filter status=running | head -n 1); \
             echo {b64} | base64 -d | docker exec -i \"$c\" psql -U postgres -d vaibava_db -v ON_ERROR_STOP=1 -tA",
            p.name
        ),
    )
}

/// Every product row, as one digest, and how many there are.
fn products(p: &Project, db: &Node) -> (u64, String) {
    let count = psql(p, db, "SELECT count(*) FROM products")
        .parse()
        .unwrap();
    let digest = psql(
        p,
        db,
        "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY handle), '')) FROM products t",
    );
    (count, digest)
}

/// The backups in the stack's backup directory on `node`, by name (none when it has no such directory).
fn backup_files(p: &Project, node: &Node) -> Vec<String> {
    let listed = ssh_ok(
        node,
        &format!(
            "ls -1 /var/backups/{} 2>/dev/null | grep '^db_backup_' || true",
            p.name
        ),
    );
    listed.lines().map(str::to_owned).collect()
}

/// Runs the db node's installed cron entry exactly as cron does: `/bin/sh -c` with cron's environment, as its
/// user. Returns the script's report line.
fn cron_run(p: &Project, db: &Node) -> serde_json::Value {
    let entry = ssh_ok(db, &format!("cat /etc/cron.d/vldeploy-{}-backup", p.name));
    let line = entry
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap_or_else(|| panic!("a cron line: {entry}"));
    let fields: Vec<&str> = line.splitn(7, ' ').collect();
    assert_eq!(fields.len(), 7, "{line}");
    assert_eq!(fields[5], "root", "{line}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(fields[6]);
    ssh_ok(
        db,
        &format!(
            "cmd=$(echo {b64} | base64 -d); cd / && env -i HOME=/root LOGNAME=root USER=root SHELL=/bin/sh PATH=/usr/bin:/bin /bin/sh -c \"$cmd\""
        ),
    );
    let last = ssh_ok(db, "tail -n 1 /var/log/vl_backup.log");
    serde_json::from_str(&last).unwrap_or_else(|e| panic!("a JSON log line ({e}): {last}"))
}

pub(crate) fn check(p: &Project, nodes: &[Node]) {
    let db = &nodes[2];
    let edges = &nodes[..2];

    // `up` installed the backup script and its cron entry on the db node alone, and cron runs there.
    let cron = format!("/etc/cron.d/vldeploy-{}-backup", p.name);
    let script = format!("/var/lib/vldeploy/{}/backup/backup.sh", p.name);
    for (i, node) in nodes.iter().enumerate() {
        let has = ssh_ok(
            node,
            &format!("test -e {cron} && test -x {script} && echo yes || echo no"),
        );
        assert_eq!(
            has,
            if i == 2 { "yes" } else { "no" },
            "the backup cron on node {}",
            i + 1
        );
    }
    assert!(
        !ssh_ok(db, "pgrep -x cron || true").is_empty(),
        "cron runs on the db node"
    );

    // `seed` imports the catalog through the backend's admin import, from an edge's nginx task: the cluster
    // environment names the repository's catalog for this check, and the stack is put back after it.
    let stack = std::fs::read_to_string(p.path().join("stack.yaml")).unwrap();
    let at = stack.find("\n  cluster:\n").unwrap();
    let domain = stack[at..].find("    domain: localhost\n").unwrap() + at;
    let mut with_catalog = stack.clone();
    with_catalog.insert_str(domain, "    catalog: data/catalog.csv\n");
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    std::fs::copy(
        crate::support::project::repo().join("data/catalog.csv"),
        p.path().join("data/catalog.csv"),
    )
    .unwrap();
    p.write_stack(&with_catalog);
    let started = Instant::now();
    let seeded = p.vldeploy(&["--env", "cluster", "seed"]).ok();
    eprintln!(
        "timing: seed -e cluster in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        seeded.stdout.contains("imported:") && seeded.stdout.contains("products"),
        "{}",
        seeded.all()
    );
    let csv_rows = std::fs::read_to_string(p.path().join("data/catalog.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    let (count, digest) = products(p, db);
    assert!(
        count > 0 && count <= csv_rows,
        "{count} products from {csv_rows} rows"
    );

    // The cron entry's command, as cron runs it, dumps the postgres task's database on the db node; no other
    // node holds a backup.
    let before: Vec<String> = backup_files(p, db);
    let started = Instant::now();
    let report = cron_run(p, db);
    eprintln!(
        "timing: the db node's cron backup in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report["result"], "ok", "{report}");
    let file = report["file"].as_str().unwrap().to_owned();
    assert!(!before.contains(&file), "{file} is a new backup");
    assert!(backup_files(p, db).contains(&file), "{file} on the db node");
    for edge in edges {
        assert!(
            backup_files(p, edge).is_empty(),
            "no backup on {}",
            edge.address
        );
    }
    let dump = ssh_ok(
        db,
        &format!(
            "zcat /var/backups/{}/{file} | grep -c '^COPY public.products '",
            p.name
        ),
    );
    assert_eq!(dump, "1", "the dump holds the products table");
    // `backup list` lists the db node's backups.
    let listed = p
        .vldeploy(&["--env", "cluster", "backup", "list", "-o", "json"])
        .ok();
    assert!(listed.stdout.contains(&file), "{}", listed.all());

    // Rows changed and deleted after the backup…
    psql(
        p,
        db,
        "UPDATE products SET price = price + 1, title = 'changed' WHERE handle IN (SELECT handle FROM products ORDER BY handle LIMIT 2); \
         DELETE FROM products WHERE handle IN (SELECT handle FROM products ORDER BY handle DESC LIMIT 3)",
    );
    let (changed, changed_digest) = products(p, db);
    assert_eq!(changed, count - 3);
    assert_ne!(changed_digest, digest);

    // …are back after `restore`, which scales the backend to 0 and back to its two replicas.
    let started = Instant::now();
    let restored = p
        .vldeploy(&["--env", "cluster", "restore", &file, "--yes"])
        .ok();
    eprintln!(
        "timing: restore -e cluster in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for secret in p.cluster_secret_values() {
        assert!(!restored.all().contains(&secret), "a secret was printed");
    }
    assert_eq!(
        products(p, db),
        (count, digest.clone()),
        "every row is back"
    );
    let replicas = ssh_ok(
        &nodes[0],
        &format!(
            "docker service ls --filter name={}_backend --format '{{{{.Replicas}}}}'",
            p.name
        ),
    );
    assert_eq!(replicas, "2/2", "the backend is back at its replicas");
    for edge in edges {
        for path in ["/", "/api/health"] {
            let (code, body) = http_get(edge.http_port, path);
            assert_eq!(code, 200, "{path} through {}: {body}", edge.address);
        }
    }
    // The restore took its safety backup on the db node too, and left no journal behind.
    assert!(
        backup_files(p, db)
            .iter()
            .any(|f| f.ends_with("_pre-restore.sql.gz")),
        "{:?}",
        backup_files(p, db)
    );
    let audit = p
        .vldeploy(&["--env", "cluster", "audit", "-o", "json"])
        .ok();
    assert!(audit.stdout.contains("\"restore\""), "{}", audit.stdout);
    p.write_stack(&stack);
}
