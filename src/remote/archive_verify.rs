//! The commands of `backup verify --archive`: a scratch instance restored from the pgBackRest repository, watched
//! and removed.

use super::{Command, q};

/// Where postgres' data is mounted in the stack's postgres container.
const PGDATA: &str = "/var/lib/postgresql/data";

/// The label of the scratch container and volume.
pub const LABEL: &str = "vldeploy.verify=archive";

/// Starts the scratch instance `$2` (container and volume of that name, leftovers of an earlier run removed
/// first): the live container's image and environment (read by docker from `docker inspect`, never on a command
/// line), its repository volume at `$4` when it has one, on the network `$5` (`none`, or `live`: the live
/// container's first network, to reach a backup host). In it, pgBackRest restores the newest backup with every
/// archived WAL (archiving off in the copy, so it never writes to the repository), then postgres starts on its
/// unix socket alone and recovers to the end of the WAL.
const START_SCRIPT: &str = concat!(
    r#"set -euo pipefail
c=$1; name=$2; pgdata=$3; repo=$4; network=$5
img=$(docker inspect -f '{{.Image}}' "$c")
docker rm -f "$name" >/dev/null 2>&1 || true
docker volume rm -f "$name" >/dev/null 2>&1 || true
mounts=(-v "$name:$pgdata")
if [ -n "$repo" ]; then
    repo_vol=$(docker inspect -f '{{range .Mounts}}{{.Destination}} {{.Name}}{{"\n"}}{{end}}' "$c" | awk -v d="$repo" '$1 == d { print $2 }')
    [ -n "$repo_vol" ] || { echo "the container \`$c\` mounts no pgBackRest repository volume at $repo" >&2; exit 1; }
    mounts+=(-v "$repo_vol:$repo")
fi
if [ "$network" = live ]; then
    network=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{println $k}}{{end}}' "$c" | head -n 1)
fi
docker volume create --label vldeploy.verify=archive "$name" >/dev/null
docker run -d --name "$name" --label vldeploy.verify=archive --network "$network" \
    --env-file <(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$c") \
    "${mounts[@]}" --entrypoint /bin/sh "$img" -c '
set -eu
pgdata=$1
: "${VL_PGBACKREST_CONF:?the postgres container has no pgBackRest configuration: is backup.archive applied (vldeploy up)?}"
mkdir -p /etc/pgbackrest /var/log/pgbackrest /tmp/pgbackrest /var/run/postgresql
"#,
    super::pitr::pgbackrest_files_from_env!(),
    r#"chown -R postgres:postgres /etc/pgbackrest /var/log/pgbackrest /tmp/pgbackrest /var/run/postgresql "$pgdata"
chmod 700 "$pgdata"
setpriv --reuid=postgres --regid=postgres --init-groups pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main --log-level-console=warn --archive-mode=off restore
echo "vldeploy-verify: restored; recovering"
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$pgdata" -c archive_mode=off -c "listen_addresses="
' verify "$pgdata" >/dev/null
"#
);

/// Prints `f` once the scratch instance `$1` accepts connections and has finished recovery, `t` while it
/// recovers, `starting` before it answers, and `exited` followed by its last log lines when it has stopped.
const STATE_SCRIPT: &str = r#"name=$1; user=$2
if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then
    echo exited
    docker logs --tail 15 "$name" 2>&1
    exit 0
fi
docker exec "$name" psql -X -q -At -U "$user" -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null || echo starting
"#;

fn script(body: &str, name: &str, args: &[&str]) -> Command {
    let mut text = format!("bash -c {} {name}", q(body));
    for a in args {
        text.push(' ');
        text.push_str(&q(a));
    }
    Command::script(text)
}

/// Starts the scratch instance `name` from `container`'s configuration: with its repository volume at `repo`
/// (a local repository), or on its network (`repo` = `None`: the repository is on a backup host).
pub fn start(container: &str, name: &str, repo: Option<&str>) -> Command {
    let network = if repo.is_some() { "none" } else { "live" };
    script(
        START_SCRIPT,
        "verify",
        &[container, name, PGDATA, repo.unwrap_or(""), network],
    )
}

/// Prints the scratch instance's state (see [`STATE_SCRIPT`]).
pub fn state(name: &str, user: &str) -> Command {
    script(STATE_SCRIPT, "state", &[name, user])
}

/// Removes the scratch container and volume `name`; missing ones are fine.
pub fn remove(name: &str) -> Command {
    Command::script(format!(
        "docker rm -f {n} >/dev/null 2>&1; docker volume rm -f {n} >/dev/null 2>&1; true",
        n = q(name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_one_word_after_the_script() {
        let local = start("vl_postgres", "vl_shop_verify", Some("/var/lib/pgbackrest"))
            .text()
            .to_owned();
        assert!(local.starts_with("bash -c 'set -euo pipefail\n"), "{local}");
        assert!(
            local.ends_with("' verify vl_postgres vl_shop_verify /var/lib/postgresql/data /var/lib/pgbackrest none"),
            "{local}"
        );
        let far = start("vl_postgres", "a;b", None).text().to_owned();
        assert!(
            far.ends_with("' verify vl_postgres 'a;b' /var/lib/postgresql/data '' live"),
            "{far}"
        );
        assert!(
            state("vl_shop_verify", "shop user")
                .text()
                .ends_with("' state vl_shop_verify 'shop user'")
        );
        assert_eq!(
            remove("vl_shop_verify").text(),
            "docker rm -f vl_shop_verify >/dev/null 2>&1; docker volume rm -f vl_shop_verify >/dev/null 2>&1; true"
        );
    }

    #[test]
    fn each_script_command_is_exact() {
        assert_eq!(
            start("vl_postgres", "n", Some("/r")).text(),
            format!(
                "bash -c {} verify vl_postgres n /var/lib/postgresql/data /r none",
                q(START_SCRIPT)
            )
        );
        assert_eq!(
            state("n", "u").text(),
            format!("bash -c {} state n u", q(STATE_SCRIPT))
        );
        assert_eq!(script("true", "x", &["a b"]).text(), "bash -c true x 'a b'");
    }

    #[test]
    fn the_scripts_parse_as_bash() {
        for cmd in [start("c", "n", Some("/r")), state("n", "u")] {
            let out = std::process::Command::new("bash")
                .arg("-n")
                .arg("-c")
                .arg(cmd.text())
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
