//! Continuous archiving with pgBackRest against a real throwaway cluster (Debian's postgresql-15 and pgbackrest
//! 2.45): vldeploy's configuration and commands archive WAL to an encrypted repository and restore to a point in
//! time beside the live data.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use vldeploy::backup::archive::{ArchiveConfig, RestoreTarget, STANZA};
use vldeploy::remote::backup::pgbackrest;
use vldeploy::secret::Secret;
use vldeploy::stack::{Archive, ArchiveRepo};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs shell text as the `postgres` user (`PostgreSQL` refuses root): (status, stdout, stderr).
fn as_postgres(script: &str) -> (i32, String, String) {
    let mut cmd = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    };
    let out = cmd
        .env("PATH", format!("{PG_BIN}:/usr/sbin:/usr/bin:/sbin:/bin"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(script: &str) -> String {
    let (code, out, err) = as_postgres(script);
    assert_eq!(code, 0, "`{script}` failed:\n{out}{err}");
    out
}

/// A cluster in `dir`, listening on `port` on its unix socket only; stopped when dropped.
struct Cluster {
    data: String,
    sock: String,
    port: u16,
}

impl Cluster {
    fn psql(&self, sql: &str) -> String {
        let sql = sql.replace('\'', "'\\''");
        ok(&format!(
            "psql -X -q -At -v ON_ERROR_STOP=1 -h {} -p {} -U postgres -d postgres -c '{sql}'",
            self.sock, self.port
        ))
    }

    fn start(&self) {
        ok(&format!(
            "pg_ctl -D {} -l {}/server.log -w -t 60 start >/dev/null",
            self.data, self.data
        ));
    }

    fn stop(&self) {
        let _ = as_postgres(&format!(
            "pg_ctl -D {} -m fast -w stop >/dev/null 2>&1",
            self.data
        ));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_conf(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    if running_as_root() {
        Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .unwrap();
    }
}

#[test]
fn backup_archive_restores_a_dropped_table_to_a_second_before_from_an_encrypted_repository() {
    let tmp = tempfile::Builder::new()
        .prefix("vld-pitr-")
        .tempdir()
        .unwrap();
    let root = tmp.path().display().to_string();
    if running_as_root() {
        Command::new("chown")
            .args(["postgres:postgres", &root])
            .status()
            .unwrap();
    }
    ok(&format!(
        "mkdir -p {root}/repo {root}/sock {root}/log {root}/lock && chmod 700 {root}/repo"
    ));
    let archive = Archive {
        repo: ArchiveRepo::Local(format!("{root}/repo")),
        timeout: Duration::from_mins(1),
        full: "0 3 * * 0".into(),
        diff: None,
        retention_full: 2,
        encrypt_passphrase: Some("PGBACKREST_PASSPHRASE".into()),
        repo_address: None,
        db_address: None,
    };
    let port = free_port();
    let config = |passphrase: Option<Secret>, data: &str| {
        let mut c = ArchiveConfig::new("pitr", &archive, passphrase);
        c.pg_path = data.to_owned();
        c.pg_socket = format!("{root}/sock");
        c.pg_port = port;
        c.log_path = format!("{root}/log");
        c.lock_path = format!("{root}/lock");
        c
    };
    let live = config(
        Some(Secret::new("a long passphrase for the repository")),
        &format!("{root}/data"),
    );
    let conf = format!("{root}/pgbackrest.conf");
    write_conf(Path::new(&conf), &live.database_conf().unwrap());
    let run = |options: &[&str], command: &str| {
        let cmd = pgbackrest(&conf, STANZA, options, command);
        as_postgres(cmd.text())
    };

    // The live cluster, archiving with vldeploy's settings.
    ok(&format!(
        "initdb -D {root}/data -U postgres --auth=trust >/dev/null"
    ));
    let mut settings = format!(
        "\nport = {port}\nlisten_addresses = ''\nunix_socket_directories = '{root}/sock'\n"
    );
    for (k, v) in live.postgres_settings(&conf) {
        let _ = writeln!(settings, "{k} = '{}'", v.replace('\'', "''"));
    }
    ok(&format!(
        "printf '%s' '{}' >> {root}/data/postgresql.conf",
        settings.replace('\'', "'\\''")
    ));
    let db = Cluster {
        data: format!("{root}/data"),
        sock: format!("{root}/sock"),
        port,
    };
    db.start();
    db.psql(
        "CREATE TABLE kept (id int PRIMARY KEY, note text); CREATE TABLE later (note text); \
         INSERT INTO kept SELECT i, 'needle-kept-' || i FROM generate_series(1, 150) i;",
    );
    let (code, out, err) = run(&[], "stanza-create");
    assert_eq!(code, 0, "stanza-create: {out}{err}");
    let (code, out, err) = run(&["--type=full"], "backup");
    assert_eq!(code, 0, "backup: {out}{err}");

    // After the backup (so only the WAL has them): more rows; then a row written after the target moment; then
    // the table dropped at T.
    db.psql("INSERT INTO kept SELECT i, 'needle-kept-' || i FROM generate_series(151, 200) i;");
    let kept =
        db.psql("SELECT count(*) || ':' || md5(string_agg(id || note, ',' ORDER BY id)) FROM kept");
    // The target is a whole second (pgBackRest's form): 1.5 s after the rows were committed it is a second that
    // begins after them, and the late row is written only once that second has passed, however slow the machine.
    let moment = SystemTime::now() + Duration::from_millis(1500);
    std::thread::sleep(Duration::from_millis(2500));
    db.psql("INSERT INTO later VALUES ('late');");
    db.psql("DROP TABLE kept;");
    db.psql("INSERT INTO later VALUES ('after the drop');");
    // `check` switches the WAL segment and waits until it is in the repository.
    let (code, out, err) = run(&[], "check");
    assert_eq!(code, 0, "check: {out}{err}");

    // No plaintext row in the repository (the same rows are plain in the data directory).
    let grep = |dir: &str| as_postgres(&format!("grep -r -l -a needle-kept {dir}")).0;
    assert_eq!(
        grep(&format!("{root}/data")),
        0,
        "the rows are plain in PGDATA"
    );
    assert_eq!(
        grep(&format!("{root}/repo")),
        1,
        "no plaintext row in the repository"
    );

    // Restore to that second, before the late row and the drop, beside the live data; the live cluster is stopped
    // only to swap.
    let target = RestoreTarget::at(moment);
    let restored = format!("{root}/restored");
    let mut options: Vec<String> = vec![format!("--pg1-path={restored}")];
    options.extend(target.options());
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let (code, out, err) = run(&options, "restore");
    assert_eq!(code, 0, "restore --to {target:?}: {out}{err}");
    db.stop();
    let back = Cluster {
        data: restored.clone(),
        sock: format!("{root}/sock"),
        port,
    };
    back.start();
    // Recovery ends at the target and promotes.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while back.psql("SELECT pg_is_in_recovery()").trim() == "t" {
        assert!(
            std::time::Instant::now() < deadline,
            "the restored cluster never left recovery"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        back.psql(
            "SELECT count(*) || ':' || md5(string_agg(id || note, ',' ORDER BY id)) FROM kept"
        ),
        kept,
        "the dropped table is back with exactly its rows"
    );
    assert_eq!(
        back.psql("SELECT count(*) FROM later").trim(),
        "0",
        "rows written after the target are absent"
    );
    back.stop();

    // Without the passphrase the repository does not open: a clear error, and nothing is restored.
    let nopass = config(None, &format!("{root}/nopass"));
    let conf2 = format!("{root}/nopass.conf");
    write_conf(Path::new(&conf2), &nopass.database_conf().unwrap());
    let cmd = pgbackrest(&conf2, STANZA, &[], "restore");
    let (code, out, err) = as_postgres(cmd.text());
    assert_ne!(code, 0, "{out}{err}");
    let text = format!("{out}{err}");
    assert!(text.contains("unable to load info file"), "{text}");
    assert_ne!(
        as_postgres(&format!("test -s {root}/nopass/PG_VERSION")).0,
        0
    );
}

/// `backup verify --archive` against a local repository (a volume of the postgres container): the newest backup
/// plus the WAL archived since, restored into a scratch instance on the host, holds every order; the scratch
/// container and volume are gone afterwards, also after a run that was killed.
#[test]
fn backup_verify_archive_restores_a_local_repository_into_a_scratch_instance_and_removes_it() {
    use crate::backup::{HostExt as _, insert_orders};
    use crate::support::project::Project;

    let p = Project::with_sandbox("backup_verify_archive");
    let passphrase = "a local repository passphrase 2718";
    p.set_secret("PGBACKREST_PASSPHRASE", &format!("\"{passphrase}\""));
    let stack = p.stack_yaml(|t| {
        t.push_str("\nbackup:\n  archive:\n    repo: /var/lib/pgbackrest\n    timeout: 5s\n    encrypt_passphrase: PGBACKREST_PASSPHRASE\n");
    });
    p.write_stack(&stack);
    p.vldeploy(&["up"]).ok();
    p.vldeploy(&["backup", "now"]).ok();
    insert_orders(&p, 8001, 8030);
    p.sh("docker exec -u postgres vl_postgres pgbackrest --stanza=main check");
    let live: u64 = p
        .psql("SELECT count(*) FROM orders")
        .trim()
        .parse()
        .unwrap();
    // What a killed run leaves: the next run removes it first.
    let scratch = format!("vl_{}_verify_archive", p.name);
    p.sh(&format!(
        "docker volume create {scratch} >/dev/null && docker create --name {scratch} -v {scratch}:/x $(docker inspect -f '{{{{.Image}}}}' vl_postgres) true >/dev/null"
    ));
    let v = verify_archive(&p, "a local repository", passphrase, live);
    // (Its exit status says whether archiving is stalled: an idle database archives nothing for a while.)
    let status = p.vldeploy(&["backup", "status", "-o", "json"]);
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        s["last_verification"]["file"],
        format!("pgBackRest backup {}", v["backup"].as_str().unwrap()),
        "{s}"
    );
}

/// `backup verify --archive` of `p`'s repository (`what`, for the timing line): it passes, restores as many orders
/// as `live`, prints no `passphrase` and leaves no scratch container or volume. Its JSON.
pub(crate) fn verify_archive(
    p: &crate::support::project::Project,
    what: &str,
    passphrase: &str,
    live: u64,
) -> serde_json::Value {
    use crate::backup::HostExt as _;
    let t = std::time::Instant::now();
    let run = p
        .vldeploy(&["backup", "verify", "--archive", "-o", "json"])
        .ok();
    eprintln!(
        "backup verify --archive of {what}: {:.1}s",
        t.elapsed().as_secs_f64()
    );
    crate::support::ssh::no_secret(&run, &[passphrase]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let orders = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.orders")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(orders["restored"], live, "{v}");
    let scratch = format!("vl_{}_verify_archive", p.name);
    assert_eq!(
        p.sh(&format!(
            "docker ps -aq --filter name={scratch}; docker volume ls -q --filter name={scratch}"
        ))
        .trim(),
        "",
        "the scratch container or volume is left"
    );
    v
}
