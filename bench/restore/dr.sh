#!/usr/bin/env bash
# Disaster recovery onto a new host from a separate backup host, phase by phase, beside the dump restore of the
# same data. Usage: bench/restore/dr.sh [SCALE]     # pgbench scale; 65 ≈ 1 GB database (default)
#   VLDEPLOY=path: the vldeploy binary (default: vldeploy on PATH); backend/dist/vl-backend is used as it is.
# Two sandbox hosts: the shop's (vldeploy-sandbox-bench-dr) and a backup host (vldeploy-sandbox-bench-dr-vault)
# that holds the encrypted pgBackRest repository (`backup.archive.repo: ssh://…`). Order: `up`, pgbench -i,
# `backup now` (the dump and a full pgBackRest backup on the backup host), the dump restore on the shop host, a
# second `backup now` (a differential one of the restored data, the newest backup), more writes (pgbench -N) whose
# WAL is archived, the shop's host destroyed (`docker kill`, then `sandbox down`: container and volume gone), a new
# host, `up` there, `restore --from-backup-host`, every row counted. Removes both hosts (KEEP=1 keeps them).
# Needs: jq, column, docker.
set -euo pipefail
scale=${1:-65}
extra_tx=${EXTRA_TX:-5000}   # pgbench -N transactions per client (2 clients) after the newest backup
for tool in jq column docker; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install $tool" >&2; exit 1; }
done
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
bin=$(command -v "${VLDEPLOY:-vldeploy}") || { echo "no vldeploy: set VLDEPLOY=path/to/vldeploy" >&2; exit 1; }
bin=$(realpath "$bin")
[ -x backend/dist/vl-backend ] || { echo "needs backend/dist/vl-backend (see bench/restore/README.md)" >&2; exit 1; }
for h in vldeploy-sandbox-bench-dr vldeploy-sandbox-bench-dr-vault; do
  [ -z "$(docker ps -a -q --filter "name=^$h\$")" ] || {
    echo "$h exists: another dr.sh run (or a KEEP=1 one) is using it; remove it with \`docker rm -f -v $h\` once it is done" >&2
    exit 1
  }
done
work=$(mktemp -d /tmp/vld-bench-dr-XXXX)
shop=$work/shop
vault=$work/vault
stack=bench-dr
cleanup() {
  [ -n "${KEEP:-}" ] && { echo "KEEP: the sandbox hosts and $work left in place" >&2; return; }
  (cd "$shop" && "$bin" sandbox down >/dev/null 2>&1) || true
  (cd "$vault" && "$bin" sandbox down >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { awk -v m="$1" 'BEGIN{printf "%.1f", m/1000}'; }
on() { # DIR COMMAND…: runs COMMAND on DIR's sandbox host as root, its host key checked
  local d=$1/.vldeploy/sandbox; shift
  ssh -i "$d/id_ed25519" -o UserKnownHostsFile="$d/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes \
      -o LogLevel=ERROR -p "$(sed -n 's/^SANDBOX_SSH_PORT=//p' "$d/sandbox.env")" root@127.0.0.1 "$@"
}
address() { # NAME: the address at which the other sandbox hosts reach NAME's sshd
  docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "vldeploy-sandbox-$1" | awk '{print $1}'
}
json() { # DIR vldeploy ARGS…: the JSON report on stdout; the step events shown when it fails
  local d=$1; shift
  (cd "$d" && "$bin" "$@" -o json 2>"$work/events") || { cat "$work/events" >&2; exit 1; }
}
db=vaibava_db
psql() { on "$shop" "docker exec -i vl_postgres psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d $db" ; }

project() { # DIR NAME: a project directory of the repository's stack, named NAME
  mkdir -p "$1"
  sed -e "s|^name: vaibava|name: $2|" \
      -e "s|build: templates/images/|build: $repo/templates/images/|" \
      -e "s|      context: backend|      context: $repo/backend|" \
      -e "/      prepare: >-/,/backend\/dist\/vl-backend$/d" \
      -e "/      # What the binary is built from/d" -e "/      inputs: \[/d" \
      -e "/^site: /d" -e "/^    catalog: /d" \
      "$repo/stack.yaml" > "$1/stack.yaml.base"
  cp "$1/stack.yaml.base" "$1/stack.yaml"
}
# The shop's stack with the repository on the backup host (as tests/backup_dr.rs writes it).
archive_stack() {
  local vault_port
  vault_port=$(sed -n 's/^SANDBOX_SSH_PORT=//p' "$vault/.vldeploy/sandbox/sandbox.env")
  { cat "$shop/stack.yaml.base"
    printf 'backup:\n  archive:\n    repo: ssh://root@127.0.0.1:%s/var/lib/pgbackrest\n' "$vault_port"
    printf '    repo_address: %s\n    db_address: %s\n' "$(address $stack-vault)" "$(address $stack)"
    printf '    timeout: 60s\n    encrypt_passphrase: PGBACKREST_PASSPHRASE\n'
  } > "$shop/stack.yaml"
}
# The shop's environment key may log in to the backup host as root; the backup host's key pinned beside it.
trust() {
  on "$vault" "grep -q -F '$(cat "$shop/.vldeploy/sandbox/id_ed25519.pub")' /root/.ssh/authorized_keys || \
     printf '%s\n' '$(cat "$shop/.vldeploy/sandbox/id_ed25519.pub")' >> /root/.ssh/authorized_keys"
  cat "$vault/.vldeploy/sandbox/known_hosts" >> "$shop/.vldeploy/sandbox/known_hosts"
}
repo_info() { # the repository's backups, read on the backup host
  on "$vault" "docker exec -u postgres vl_${stack}_pgbackrest pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main --output=json info"
}
backups() { # INFO: one line per backup in the repository
  echo "$1" | jq -r '.[0].backup[] | "  pgBackRest \(.type) backup \(.label): \(.info.size/1048576|round) MB of data, \(.info.repository.delta/1048576|round) MB in the repository, \(.timestamp.stop - .timestamp.start) s"'
}

echo "load average at start: $(loadavg)"
echo "== setup: a backup host and the shop's host, up with the repository on the backup host (not measured)"
project "$vault" "$stack-vault"
project "$shop" "$stack"
(cd "$vault" && "$bin" sandbox up >/dev/null)
(cd "$shop" && "$bin" sandbox up >/dev/null)
trust
passphrase=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'PGBACKREST_PASSPHRASE="%s"\n' "$passphrase" >> "$shop/.vldeploy/sandbox/secrets.env"
archive_stack
s=$(now_ms); json "$shop" up >/dev/null; echo "up: $(secs $(( $(now_ms) - s ))) s"

echo "== data: pgbench -i -s $scale"
on "$shop" "docker exec vl_postgres pgbench -i -q -s $scale -U postgres $db" >/dev/null 2>&1
echo "database size: $(echo "SELECT pg_size_pretty(pg_database_size('$db'))" | psql)"

echo "== backup now (the dump, and pgBackRest's first backup on the backup host)"
s=$(now_ms)
backup=$(json "$shop" backup now)
file=$(echo "$backup" | jq -r .file)
bytes=$(on "$shop" "stat -c %s /var/backups/$stack/$file")
echo "backup now: $(secs $(( $(now_ms) - s ))) s; the dump $file, $((bytes / 1048576)) MB compressed, $(echo "$backup" | jq '.seconds|.*10|round/10') s"
info=$(repo_info)
backups "$info"
echo "$info" | jq -e '[.[0].backup[] | select(.type == "full")] | length == 1' >/dev/null \
  || { echo "backup now took no pgBackRest full backup on the backup host" >&2; exit 1; }
echo "$info" | jq -e '.[0].cipher == "aes-256-cbc"' >/dev/null || { echo "the repository is not encrypted" >&2; exit 1; }

echo "== vldeploy restore $file (the dump, on the shop's host)"
dump_load=$(loadavg)
dump=$(json "$shop" restore "$file" --yes)
echo "$dump" | jq -r '.phases[] | "  \(.name)\t\(.seconds|.*100|round/100) s"' | column -t -s $'\t'
echo "rows in pgbench_accounts after it: $(echo 'SELECT count(*) FROM pgbench_accounts' | psql)"
# The previous database (`…_before_…`) and the safety dump are the restore's own copies: not part of the data.
before=$(on "$shop" "docker exec vl_postgres psql -X -At -U postgres -d postgres -c \"SELECT datname FROM pg_database WHERE datname LIKE '${db}_before_%'\"")
for d in $before; do on "$shop" "docker exec vl_postgres psql -X -q -U postgres -d postgres -c 'DROP DATABASE \"$d\"'"; done
on "$shop" "rm -f /var/backups/$stack/*_pre-restore.sql.gz*"

echo "== backup now again: the newest backup is of the restored data"
s=$(now_ms)
json "$shop" backup now >/dev/null
echo "backup now: $(secs $(( $(now_ms) - s ))) s"
info=$(repo_info)
backups "$info"

echo "== more writes after the newest backup: pgbench -N, 2 clients × $extra_tx transactions"
on "$shop" "docker exec vl_postgres pgbench -n -N -c 2 -j 2 -t $extra_tx -U postgres $db" 2>&1 | grep -E '^(tps|number of transactions actually)' | sed 's/^/  /'
expect() { echo "SELECT (SELECT count(*) FROM pgbench_accounts) || ' ' || (SELECT count(*) FROM pgbench_history) || ' ' || (SELECT sum(abalance) FROM pgbench_accounts)" | psql; }
rows=$(expect)
read -r accounts history balance <<<"$rows"
[ "$accounts" = $(( scale * 100000 )) ] || { echo "pgbench_accounts has $accounts rows, not $(( scale * 100000 ))" >&2; exit 1; }
[ "$history" = $(( 2 * extra_tx )) ] || { echo "pgbench_history has $history rows, not $(( 2 * extra_tx ))" >&2; exit 1; }
wal=$(echo "SELECT pg_walfile_name(pg_switch_wal())" | psql)
for _ in $(seq 1 240); do
  done_=$(echo "SELECT last_archived_wal >= '$wal' FROM pg_stat_archiver" | psql)
  [ "$done_" = t ] && break
  sleep 0.5
done
[ "$done_" = t ] || { echo "WAL $wal never reached the backup host" >&2; exit 1; }
echo "before the disaster: $accounts accounts, $history history rows, balance sum $balance; WAL up to $wal archived"

echo "== the shop's host destroyed: docker kill, then its container and volume removed"
docker kill "vldeploy-sandbox-$stack" >/dev/null
(cd "$shop" && "$bin" sandbox down >/dev/null)
[ -z "$(docker ps -a -q --filter "name=^vldeploy-sandbox-$stack\$")" ] || { echo "the shop's host is still there" >&2; exit 1; }
! docker volume inspect "vldeploy-sandbox-$stack-docker" >/dev/null 2>&1 || { echo "the shop's host's volume is still there" >&2; exit 1; }

echo "== a new host, up there (the shop on an empty database)"
up_load=$(loadavg)
s=$(now_ms)
# A host made under the destroyed one's name can stop while starting if the engine is still releasing the old
# one's resources: one more try, after its error.
(cd "$shop" && "$bin" sandbox up >/dev/null) || { sleep 2; (cd "$shop" && "$bin" sandbox up >/dev/null); }
sandbox_ms=$(( $(now_ms) - s ))
trust
archive_stack
s=$(now_ms); json "$shop" up >/dev/null; up_ms=$(( $(now_ms) - s ))
echo "sandbox up: $(secs $sandbox_ms) s, up: $(secs $up_ms) s (load average $up_load)"
[ "$(echo 'SELECT count(*) FROM orders' | psql)" = 0 ] || { echo "the new host's database is not empty" >&2; exit 1; }

echo "== vldeploy restore --from-backup-host"
dr_load=$(loadavg)
s=$(now_ms)
dr=$(json "$shop" restore --from-backup-host --yes)
dr_ms=$(( $(now_ms) - s ))
echo "$dr" | jq -r '.phases[] | "  \(.name)\t\(.seconds|.*100|round/100) s"' | column -t -s $'\t'
got=$(expect)
[ "$got" = "$rows" ] || { echo "after the recovery: $got (accounts, history, balance sum), before: $rows" >&2; exit 1; }
echo "after the recovery: $got — every row back"

phases() { echo "$1" | jq -r '[.phases[] | "\(.name) \(.seconds|.*10|round/10)"] | join(", ")'; }
sum() { echo "$1" | jq -r --argjson names "$2" '[.phases[] | select(.name as $n | $names | index($n)) | .seconds] | add | .*10 | round / 10'; }
echo
{
  printf '\t%s\t%s\n' "restore FILE (the dump, the shop's host)" "restore --from-backup-host (a new host)"
  printf '%s\t%s\t%s\n' "load average at start" "$dump_load" "$dr_load"
  printf '%s\t%s\t%s\n' "phases (s)" "$(phases "$dump")" "$(phases "$dr")"
  printf '%s\t%s\t%s\n' "all phases (s)" "$(echo "$dump" | jq '[.phases[].seconds] | add | .*10 | round/10')" \
    "$(echo "$dr" | jq '[.phases[].seconds] | add | .*10 | round/10') (the command: $(secs $dr_ms))"
  printf '%s\t%s\t%s\n' "backend stopped → healthy (s)" "$(sum "$dump" '["stop backend","load","swap","start backend"]')" \
    "$(sum "$dr" '["stop","swap","start"]') (+ the new host: sandbox up $(secs $sandbox_ms), up $(secs $up_ms))"
} | column -t -s $'\t'
echo "load average at end: $(loadavg)"
