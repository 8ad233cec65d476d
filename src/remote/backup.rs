//! The backups' commands: run the backup script, list and check the files, read and load a dump, run psql.

use super::{Command, q};

/// Reads the file once for the checksum and once through gzip and awk: the `COPY` blocks' row counts and the marker.
const CHECK_SCRIPT: &str = r#"set -u
f=$1
[ -f "$f" ] || { echo "exists 0"; exit 0; }
echo "exists 1"
echo "bytes $(stat -c %s -- "$f")"
if [ -f "$f.sha256" ]; then
    want=$(cut -d' ' -f1 -- "$f.sha256")
    got=$(sha256sum < "$f")
    got=${got%% *}
    if [ "$want" = "$got" ]; then echo "checksum ok"; else echo "checksum bad"; fi
else
    echo "checksum missing"
fi
gzip -dc -- "$f" 2>/dev/null | LC_ALL=C awk '
    /^COPY .* FROM stdin;$/ { t = $2; n = 0; copying = 1; next }
    copying && $0 == "\\." { print "table " t " " n; copying = 0; next }
    copying { n++; next }
    index($0, "-- PostgreSQL database dump complete") == 1 { marker = 1 }
    END { print "marker " (marker ? 1 : 0) }'
echo "gzip ${PIPESTATUS[0]}"
"#;

/// Lists `name size mtime checksum` for every file that looks like a backup (temporaries start with a dot).
const LIST_SCRIPT: &str = r#"cd "$1" 2>/dev/null || exit 0
for f in db_backup_*.sql.gz db_backup_*.sql.gz.age; do
    [ -f "$f" ] || continue
    st=missing
    if [ -f "$f.sha256" ]; then
        want=$(cut -d' ' -f1 -- "$f.sha256")
        got=$(sha256sum < "$f")
        if [ "$want" = "${got%% *}" ]; then st=ok; else st=bad; fi
    fi
    printf '%s %s %s %s\n' "$f" "$(stat -c %s -- "$f")" "$(stat -c %Y -- "$f")" "$st"
done
"#;

/// Checks the backup at `path`, reading it end to end: prints its size, checksum state, row counts and marker.
pub fn check(path: &str) -> Command {
    Command::script(format!("bash -c {} check {}", q(CHECK_SCRIPT), q(path)))
}

/// Lists `name size mtime checksum` for every backup in `dir`.
pub fn list(dir: &str) -> Command {
    Command::script(format!("bash -c {} list {}", q(LIST_SCRIPT), q(dir)))
}

/// `psql` in `container` as `user` against `db`: statements on stdin, tab-separated rows out, stopping at the
/// first error.
pub fn psql(container: &str, user: &str, db: &str) -> Command {
    Command::script(format!(
        "docker exec -i {} psql -X -q -At -F \"$(printf '\\t')\" -v ON_ERROR_STOP=1 -U {} -d {}",
        q(container),
        q(user),
        q(db)
    ))
}

/// Loads the dump at `path` through `psql` (see [`psql`]) in one transaction. `dd` reports its progress on the
/// command's stdout (fd 3); gzip and psql do the work.
pub fn load(psql: &Command, path: &str) -> Command {
    let script = format!(
        "set -o pipefail; exec 3>&1; dd if=\"$1\" bs=1M status=progress 2>&3 | gzip -dc | {} --single-transaction >/dev/null",
        psql.text()
    );
    Command::script(format!("bash -c {} load {}", q(&script), q(path)))
}

/// Runs the backup script now, as cron does but with a tag and a lock wait.
pub fn run(script: &str, tag: Option<&str>, wait_s: u64) -> Command {
    let mut cmd = q(script);
    if let Some(t) = tag {
        cmd = format!("{cmd} --tag {}", q(t));
    }
    if wait_s > 0 {
        cmd = format!("{cmd} --wait {wait_s}");
    }
    Command::script(cmd)
}

/// Decrypts the age-encrypted backup `src` to `dst` with the identity read from stdin (never written to the
/// host's disk), then writes `dst`'s sha256 sidecar, so the restore's own check proves the plaintext whole.
pub fn decrypt(src: &str, dst: &str) -> Command {
    const SCRIPT: &str = r#"set -eu
umask 077
command -v age >/dev/null || { echo "\`age\` is not installed on this host (apt-get install age)" >&2; exit 127; }
rm -f -- "$2" "$2.sha256"
age --decrypt --identity - --output "$2" -- "$1" || { rm -f -- "$2"; exit 1; }
s=$(sha256sum < "$2")
printf '%s  %s\n' "${s%% *}" "${2##*/}" > "$2.sha256"
"#;
    Command::script(format!(
        "bash -c {} decrypt {} {}",
        q(SCRIPT),
        q(src),
        q(dst)
    ))
}

/// Removes a decrypted copy of a backup and its sidecar.
pub fn remove_decrypted(path: &str) -> Command {
    Command::argv(["rm", "-f", "--"]).operands(&[path, &format!("{path}.sha256")])
}

/// `pgbackrest --config=CONFIG --stanza=STANZA OPTIONS… COMMAND`: one command of pgBackRest on the stack's stanza.
pub fn pgbackrest(config: &str, stanza: &str, options: &[&str], command: &str) -> Command {
    let config = format!("--config={config}");
    let stanza = format!("--stanza={stanza}");
    let mut argv = vec!["pgbackrest", config.as_str(), stanza.as_str()];
    argv.extend_from_slice(options);
    argv.push(command);
    Command::argv(argv)
}

/// `cmd` run inside `container` as the postgres user (pgBackRest's commands, which need its data and socket).
pub fn in_postgres(container: &str, cmd: &Command) -> Command {
    Command::script(format!(
        "docker exec -u postgres {} {}",
        q(container),
        cmd.text()
    ))
}

/// Prints the size of the backup at `path`, in bytes.
pub fn size(path: &str) -> Command {
    Command::argv(["stat", "-c", "%s", "--"]).operands(&[path])
}

/// Prints the backup at `path`.
pub fn read(path: &str) -> Command {
    Command::argv(["cat", "--"]).operands(&[path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_and_list_hand_the_script_to_bash() {
        assert_eq!(
            check("/var/backups/s/a b.sql.gz").text(),
            "bash -c 'set -u\nf=$1\n[ -f \"$f\" ] || { echo \"exists 0\"; exit 0; }\necho \"exists 1\"\necho \"bytes $(stat -c %s -- \"$f\")\"\nif [ -f \"$f.sha256\" ]; then\n    want=$(cut -d'\\'' '\\'' -f1 -- \"$f.sha256\")\n    got=$(sha256sum < \"$f\")\n    got=${got%% *}\n    if [ \"$want\" = \"$got\" ]; then echo \"checksum ok\"; else echo \"checksum bad\"; fi\nelse\n    echo \"checksum missing\"\nfi\ngzip -dc -- \"$f\" 2>/dev/null | LC_ALL=C awk '\\''\n    /^COPY .* FROM stdin;$/ { t = $2; n = 0; copying = 1; next }\n    copying && $0 == \"\\\\.\" { print \"table \" t \" \" n; copying = 0; next }\n    copying { n++; next }\n    index($0, \"-- PostgreSQL database dump complete\") == 1 { marker = 1 }\n    END { print \"marker \" (marker ? 1 : 0) }'\\''\necho \"gzip ${PIPESTATUS[0]}\"\n' check '/var/backups/s/a b.sql.gz'"
        );
        assert_eq!(
            list("/var/backups/s").text(),
            "bash -c 'cd \"$1\" 2>/dev/null || exit 0\nfor f in db_backup_*.sql.gz db_backup_*.sql.gz.age; do\n    [ -f \"$f\" ] || continue\n    st=missing\n    if [ -f \"$f.sha256\" ]; then\n        want=$(cut -d'\\'' '\\'' -f1 -- \"$f.sha256\")\n        got=$(sha256sum < \"$f\")\n        if [ \"$want\" = \"${got%% *}\" ]; then st=ok; else st=bad; fi\n    fi\n    printf '\\''%s %s %s %s\\n'\\'' \"$f\" \"$(stat -c %s -- \"$f\")\" \"$(stat -c %Y -- \"$f\")\" \"$st\"\ndone\n' list /var/backups/s"
        );
    }

    #[test]
    fn psql_and_load_are_exact() {
        let psql = psql("vl_postgres", "postgres", "shop_restore_1");
        assert_eq!(
            psql.text(),
            "docker exec -i vl_postgres psql -X -q -At -F \"$(printf '\\t')\" -v ON_ERROR_STOP=1 -U postgres -d shop_restore_1"
        );
        assert_eq!(
            load(&psql, "/var/backups/s/db.sql.gz").text(),
            "bash -c 'set -o pipefail; exec 3>&1; dd if=\"$1\" bs=1M status=progress 2>&3 | gzip -dc | docker exec -i vl_postgres psql -X -q -At -F \"$(printf '\\''\\t'\\'')\" -v ON_ERROR_STOP=1 -U postgres -d shop_restore_1 --single-transaction >/dev/null' load /var/backups/s/db.sql.gz"
        );
    }

    #[test]
    fn run_adds_tag_and_wait() {
        assert_eq!(
            run(
                "/var/lib/vldeploy/s/backup/backup.sh",
                Some("pre restore"),
                600
            )
            .text(),
            "/var/lib/vldeploy/s/backup/backup.sh --tag 'pre restore' --wait 600"
        );
        assert_eq!(run("/b.sh", None, 0).text(), "/b.sh");
    }

    #[test]
    fn decrypt_reads_the_identity_from_stdin_and_writes_a_sidecar() {
        assert_eq!(
            decrypt("/b/db.sql.gz.age", "/b/db.sql.gz").text(),
            "bash -c 'set -eu\numask 077\ncommand -v age >/dev/null || { echo \"\\`age\\` is not installed on this host (apt-get install age)\" >&2; exit 127; }\nrm -f -- \"$2\" \"$2.sha256\"\nage --decrypt --identity - --output \"$2\" -- \"$1\" || { rm -f -- \"$2\"; exit 1; }\ns=$(sha256sum < \"$2\")\nprintf '\\''%s  %s\\n'\\'' \"${s%% *}\" \"${2##*/}\" > \"$2.sha256\"\n' decrypt /b/db.sql.gz.age /b/db.sql.gz"
        );
        assert_eq!(
            remove_decrypted("/b/db.sql.gz").text(),
            "rm -f -- /b/db.sql.gz /b/db.sql.gz.sha256"
        );
    }

    #[test]
    fn pgbackrest_takes_config_stanza_options_and_command() {
        assert_eq!(
            pgbackrest(
                "/etc/pgbackrest/pgbackrest.conf",
                "main",
                &["--type=time", "--target=2026-12-02 13:14:15+00"],
                "restore"
            )
            .text(),
            "pgbackrest '--config=/etc/pgbackrest/pgbackrest.conf' --stanza=main --type=time '--target=2026-12-02 13:14:15+00' restore"
        );
    }

    #[test]
    fn in_postgres_runs_as_the_postgres_user_in_the_container() {
        assert_eq!(
            in_postgres(
                "vl_postgres",
                &pgbackrest(
                    "/etc/pgbackrest/pgbackrest.conf",
                    "main",
                    &[],
                    "stanza-create"
                )
            )
            .text(),
            "docker exec -u postgres vl_postgres pgbackrest '--config=/etc/pgbackrest/pgbackrest.conf' --stanza=main stanza-create"
        );
    }

    #[test]
    fn file_commands_never_take_a_path_for_an_option() {
        assert_eq!(size("-x").text(), "stat -c %s -- '-x'");
        assert_eq!(read("/b/a.gz").text(), "cat -- /b/a.gz");
    }
}
