//! The commands of a point-in-time restore: pgBackRest into a new data volume, the volumes' swap, the marker.

use super::{Command, q};

/// Where postgres' data is mounted in the stack's postgres container.
const PGDATA: &str = "/var/lib/postgresql/data";

/// The file in a restored data directory that names the volume it was restored into: after the swap it tells
/// which volume holds the restored data.
pub const MARKER: &str = "vldeploy-restore";

/// Prints the name of the volume mounted at `dest` in `$c`, from `docker inspect`.
const MOUNT_FN: &str = r#"mount_of() {
    docker inspect -f '{{range .Mounts}}{{.Destination}} {{.Name}}{{"\n"}}{{end}}' "$1" | awk -v d="$2" '$1 == d { print $2 }'
}
"#;

/// The lines, inside a one-off container of the stack's postgres image, that write pgBackRest's configuration
/// and TLS identity from the live container's environment (`VL_PGBACKREST_*`, as its entrypoint does): shared by
/// the restore beside and `backup verify --archive`'s scratch instance.
macro_rules! pgbackrest_files_from_env {
    () => {
        r#"printf "%s" "$VL_PGBACKREST_CONF" | base64 -d > /etc/pgbackrest/pgbackrest.conf
chmod 600 /etc/pgbackrest/pgbackrest.conf
if [ -n "${VL_PGBACKREST_TLS_KEY:-}" ]; then
    mkdir -p /etc/pgbackrest/tls
    printf "%s" "${VL_PGBACKREST_TLS_CA:?}" | base64 -d > /etc/pgbackrest/tls/ca.crt
    printf "%s" "${VL_PGBACKREST_TLS_CERT:?}" | base64 -d > /etc/pgbackrest/tls/self.crt
    (umask 077 && printf "%s" "$VL_PGBACKREST_TLS_KEY" | base64 -d > /etc/pgbackrest/tls/self.key)
    chmod 700 /etc/pgbackrest/tls
    chmod 600 /etc/pgbackrest/tls/*
fi
"#
    };
}
pub(crate) use pgbackrest_files_from_env;

/// The restore beside the live data: a new volume `$2`, and a one-off container of the postgres image with the
/// live container's environment (read by docker from `docker inspect`, never on a command line) and its
/// repository volume, in which pgBackRest restores as the postgres user. The marker names the new volume. With
/// `$6` = `stdin`, the repository's passphrase is the first line of standard input (the operator's secret, not
/// the live container's), passed to pgBackRest in its environment. With `$3` = `-`, the repository is on the
/// backup host: no volume, the live container's network, and its TLS files written from its environment as
/// its entrypoint writes them (the key readable by postgres alone).
const RESTORE_SCRIPT: &str = concat!(
    r#"set -euo pipefail
c=$1; new=$2; repo=$3; pgdata=$4; marker=$5; cipher=$6; shift 6
stdin=()
[ "$cipher" = stdin ] && stdin=(-i)
img=$(docker inspect -f '{{.Image}}' "$c")
if [ "$repo" = - ]; then
    where=(--network "container:$c")
else
    repo_vol=$(mount_of "$c" "$repo")
    [ -n "$repo_vol" ] || { echo "the container \`$c\` mounts no pgBackRest repository volume at $repo" >&2; exit 1; }
    where=(--network none -v "$repo_vol:$repo")
fi
docker volume rm -f "$new" >/dev/null 2>&1 || true
docker volume create --label vldeploy.restore=point-in-time "$new" >/dev/null
docker rm -f "$c.pitr" >/dev/null 2>&1 || true
docker run "${stdin[@]}" --rm --name "$c.pitr" "${where[@]}" \
    --env-file <(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$c") \
    -v "$new:$pgdata" --entrypoint /bin/sh "$img" -c '
set -eu
pgdata=$1; marker=$2; cipher=$3; shift 3
if [ "$cipher" = stdin ]; then
    IFS= read -r PGBACKREST_REPO1_CIPHER_PASS || [ -n "$PGBACKREST_REPO1_CIPHER_PASS" ]
    export PGBACKREST_REPO1_CIPHER_PASS
fi
: "${VL_PGBACKREST_CONF:?the postgres container has no pgBackRest configuration: is backup.archive applied (vldeploy up)?}"
mkdir -p /etc/pgbackrest /var/log/pgbackrest /tmp/pgbackrest
"#,
    pgbackrest_files_from_env!(),
    r#"chown -R postgres:postgres /etc/pgbackrest /var/log/pgbackrest /tmp/pgbackrest "$pgdata"
chmod 700 "$pgdata"
setpriv --reuid=postgres --regid=postgres --init-groups pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main --log-level-console=warn "$@" restore
printf "%s\n" "$marker" > "$pgdata/vldeploy-restore"
chown postgres:postgres "$pgdata/vldeploy-restore"
' restore "$pgdata" "$marker" "$cipher" "$@"
"#
);

/// Swaps the contents of the volume at the container's data path and the volume `$2` (by renaming their data
/// directories on the engine's disk, through a one-off container); the container must be stopped. Its own
/// inverse.
const SWAP_SCRIPT: &str = r#"set -euo pipefail
c=$1; other=$2; pgdata=$3
live=$(mount_of "$c" "$pgdata")
[ -n "$live" ] || { echo "the container \`$c\` mounts no volume at $pgdata" >&2; exit 1; }
lp=$(docker volume inspect -f '{{.Mountpoint}}' "$live")
op=$(docker volume inspect -f '{{.Mountpoint}}' "$other")
root=$(dirname "$(dirname "$lp")")
[ "$root" = "$(dirname "$(dirname "$op")")" ] || { echo "the volumes \`$live\` and \`$other\` are not on one disk ($lp, $op)" >&2; exit 1; }
img=$(docker inspect -f '{{.Image}}' "$c")
docker run --rm --network none -v "$root:/v" --entrypoint /bin/sh "$img" -c '
set -eu
a=/v/$1/_data; b=/v/$2/_data
[ -d "$a" ] && [ -d "$b" ] && [ ! -e "$a.swap" ]
mv "$a" "$a.swap"; mv "$b" "$a"; mv "$a.swap" "$b"
' swap "$(basename "$(dirname "$lp")")" "$(basename "$(dirname "$op")")"
"#;

/// Prints the marker of the data volume the container mounts (empty when it has none).
const MARKER_SCRIPT: &str = r#"set -euo pipefail
c=$1; pgdata=$2
live=$(mount_of "$c" "$pgdata")
[ -n "$live" ] || { echo "the container \`$c\` mounts no volume at $pgdata" >&2; exit 1; }
img=$(docker inspect -f '{{.Image}}' "$c")
docker run --rm --network none -v "$live:/d:ro" --entrypoint /bin/sh "$img" -c 'cat /d/vldeploy-restore 2>/dev/null || true'
"#;

fn script(body: &str, name: &str, args: &[&str]) -> Command {
    let mut text = format!("bash -c {} {name}", q(&format!("{MOUNT_FN}{body}")));
    for a in args {
        text.push(' ');
        text.push_str(&q(a));
    }
    Command::script(text)
}

/// pgBackRest restores the stanza of `container`'s repository (at `repo` in it; `None`: on the backup host) into
/// the new volume `volume`, with the restore `options` (`--type=time`, `--target=…`); the live container keeps
/// running. With `passphrase_on_stdin`, the command reads the repository's passphrase as one line of standard
/// input.
pub fn restore_beside(
    container: &str,
    volume: &str,
    repo: Option<&str>,
    passphrase_on_stdin: bool,
    options: &[String],
) -> Command {
    let cipher = if passphrase_on_stdin { "stdin" } else { "env" };
    let mut args = vec![
        container,
        volume,
        repo.unwrap_or("-"),
        PGDATA,
        volume,
        cipher,
    ];
    args.extend(options.iter().map(String::as_str));
    script(RESTORE_SCRIPT, "restore", &args)
}

/// Swaps the data of `container` (stopped) with the volume `other`.
pub fn swap(container: &str, other: &str) -> Command {
    script(SWAP_SCRIPT, "swap", &[container, other, PGDATA])
}

/// Prints the marker of `container`'s data volume: the name of the volume it was restored into, if it was.
pub fn marker(container: &str) -> Command {
    script(MARKER_SCRIPT, "marker", &[container, PGDATA])
}

/// Prints the name of the volume mounted as `container`'s data.
pub fn data_volume(container: &str) -> Command {
    script(r#"mount_of "$1" "$2""#, "volume", &[container, PGDATA])
}

/// Removes the safety copies of earlier point-in-time restores of the data volume `$1`: each volume labelled as
/// a restore's whose name is `$1_pitr_…`, except `$2` (this restore's). Prints each name removed; a volume the
/// engine will not remove (in use) stays.
const PRUNE_SCRIPT: &str = r#"set -euo pipefail
live=$1; keep=$2
docker volume ls -q --filter label=vldeploy.restore=point-in-time | while IFS= read -r v; do
    case "$v" in
        "$live"_pitr_*)
            if [ "$v" != "$keep" ] && docker volume rm -- "$v" >/dev/null; then printf '%s\n' "$v"; fi ;;
    esac
done
"#;

/// Removes the safety volumes earlier point-in-time restores of `live` left, keeping `keep`; prints their names.
pub fn remove_earlier_safety(live: &str, keep: &str) -> Command {
    script(PRUNE_SCRIPT, "prune", &[live, keep])
}

/// Removes the volume `volume` (a restore's leftover).
pub fn remove_volume(volume: &str) -> Command {
    Command::argv(["docker", "volume", "rm", "-f", "--"]).operands(&[volume])
}

/// Prints `t` once postgres in `container` accepts connections and has finished recovery, `f` while it recovers.
pub fn in_recovery(container: &str, user: &str) -> Command {
    Command::script(format!(
        "docker exec {} psql -X -q -At -U {} -d postgres -c 'SELECT pg_is_in_recovery()'",
        q(container),
        q(user)
    ))
}

/// Prints the system identifier of the cluster postgres in `container` runs.
pub fn system_identifier(container: &str, user: &str) -> Command {
    Command::script(format!(
        "docker exec {} psql -X -q -At -U {} -d postgres -c 'SELECT system_identifier FROM pg_control_system()'",
        q(container),
        q(user)
    ))
}

/// Prints `pgbackrest info --output=json` of the stanza, read from `container` (the postgres container, or the
/// backup host's repository container). With `passphrase_on_stdin`, the repository's passphrase is the first
/// line of standard input, in pgBackRest's environment (which comes before its configuration file).
pub fn repository_info(container: &str, passphrase_on_stdin: bool) -> Command {
    let read = if passphrase_on_stdin {
        r#"IFS= read -r PGBACKREST_REPO1_CIPHER_PASS || [ -n "$PGBACKREST_REPO1_CIPHER_PASS" ]; export PGBACKREST_REPO1_CIPHER_PASS; "#
    } else {
        ""
    };
    Command::script(format!(
        "docker exec {}-u postgres {} sh -c {}",
        if passphrase_on_stdin { "-i " } else { "" },
        q(container),
        q(&format!(
            "{read}exec pgbackrest --stanza=main --output=json --io-timeout=3 info"
        ))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_one_word_after_the_script() {
        let cmd = restore_beside(
            "vl_postgres",
            "shop_pgdata_pitr_1",
            Some("/var/lib/pgbackrest"),
            true,
            &[
                "--type=time".into(),
                "--target=2026-12-02 13:14:15+00".into(),
                "--target-action=promote".into(),
            ],
        );
        let cmd = cmd.text();
        assert!(cmd.starts_with("bash -c 'mount_of() {"), "{cmd}");
        assert!(
            cmd.ends_with("' restore vl_postgres shop_pgdata_pitr_1 /var/lib/pgbackrest /var/lib/postgresql/data shop_pgdata_pitr_1 stdin '--type=time' '--target=2026-12-02 13:14:15+00' '--target-action=promote'"),
            "{cmd}"
        );
        assert!(
            swap("vl_postgres", "a;b")
                .text()
                .ends_with("' swap vl_postgres 'a;b' /var/lib/postgresql/data")
        );
        assert!(
            marker("vl_postgres")
                .text()
                .ends_with("' marker vl_postgres /var/lib/postgresql/data")
        );
        assert!(
            data_volume("vl_postgres")
                .text()
                .ends_with("\nmount_of \"$1\" \"$2\"' volume vl_postgres /var/lib/postgresql/data")
        );
        assert_eq!(remove_volume("-x").text(), "docker volume rm -f -- '-x'");
        assert_eq!(
            in_recovery("vl_postgres", "shop user").text(),
            "docker exec vl_postgres psql -X -q -At -U 'shop user' -d postgres -c 'SELECT pg_is_in_recovery()'"
        );
    }

    /// The whole text of a script command: the functions and the body quoted as one word, then each operand.
    fn whole(body: &str, name: &str, operands: &str) -> String {
        format!(
            "bash -c {} {name} {operands}",
            q(&format!("{MOUNT_FN}{body}"))
        )
    }

    #[test]
    fn each_script_command_is_exact() {
        let restore = restore_beside(
            "vl_postgres",
            "shop_pgdata_pitr_1",
            Some("/var/lib/pgbackrest"),
            true,
            &[
                "--type=time".into(),
                "--target=2026-12-02 13:14:15+00".into(),
            ],
        );
        assert_eq!(
            restore.text(),
            whole(
                RESTORE_SCRIPT,
                "restore",
                "vl_postgres shop_pgdata_pitr_1 /var/lib/pgbackrest /var/lib/postgresql/data shop_pgdata_pitr_1 stdin '--type=time' '--target=2026-12-02 13:14:15+00'"
            )
        );
        assert_eq!(
            remove_earlier_safety("shop_pgdata", "shop_pgdata_pitr_2").text(),
            whole(PRUNE_SCRIPT, "prune", "shop_pgdata shop_pgdata_pitr_2")
        );
        let swapped = swap("vl_postgres", "a;b");
        assert_eq!(
            swapped.text(),
            whole(
                SWAP_SCRIPT,
                "swap",
                "vl_postgres 'a;b' /var/lib/postgresql/data"
            )
        );
        let marked = marker("vl_postgres");
        assert_eq!(
            marked.text(),
            whole(
                MARKER_SCRIPT,
                "marker",
                "vl_postgres /var/lib/postgresql/data"
            )
        );
        let volume = data_volume("vl_postgres");
        assert_eq!(
            volume.text(),
            whole(
                r#"mount_of "$1" "$2""#,
                "volume",
                "vl_postgres /var/lib/postgresql/data"
            )
        );
    }

    #[test]
    fn a_backup_host_repository_is_no_volume_and_its_passphrase_comes_on_stdin() {
        let cmd = restore_beside(
            "vl_postgres",
            "v_1",
            None,
            false,
            &["--type=default".into()],
        );
        assert!(
            cmd.text().ends_with(
                "' restore vl_postgres v_1 '-' /var/lib/postgresql/data v_1 env '--type=default'"
            ),
            "{}",
            cmd.text()
        );
        assert!(cmd.text().contains(r#"where=(--network "container:$c")"#));
        assert_eq!(
            system_identifier("vl_postgres", "a b").text(),
            "docker exec vl_postgres psql -X -q -At -U 'a b' -d postgres -c 'SELECT system_identifier FROM pg_control_system()'"
        );
        assert_eq!(
            repository_info("vl_shop_pgbackrest", false).text(),
            "docker exec -u postgres vl_shop_pgbackrest sh -c 'exec pgbackrest --stanza=main --output=json --io-timeout=3 info'"
        );
        let with = repository_info("x;y", true).text().to_string();
        assert!(
            with.starts_with(
                "docker exec -i -u postgres 'x;y' sh -c 'IFS= read -r PGBACKREST_REPO1_CIPHER_PASS"
            ),
            "{with}"
        );
        let parsed = std::process::Command::new("sh")
            .args(["-n", "-c", &with])
            .output()
            .expect("sh runs");
        assert!(parsed.status.success());
    }

    #[test]
    fn the_scripts_parse() {
        for body in [RESTORE_SCRIPT, SWAP_SCRIPT, MARKER_SCRIPT, PRUNE_SCRIPT] {
            let out = std::process::Command::new("bash")
                .args(["-n", "-c", &format!("{MOUNT_FN}{body}")])
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
