#!/bin/bash
# Restore benchmark: `vldeploy restore` of a dump phase by phase, beside the playbook's raw `gunzip | docker exec -i
# psql` on the same backup, and — on a stack with `backup.archive` — `vldeploy restore --to latest` (pgBackRest's
# point-in-time recovery) of the same data, in one run. Usage (from a project directory whose stack is up on the
# sandbox host):
#
#   bench/restore/run.sh [SCALE]      # pgbench scale; 65 ≈ 1 GB database
#
# Order: data, `backup now` (the dump, and pgBackRest's backup when archiving is on), restore --to latest (right
# after the backup, so it replays only the WAL since), raw pipe, dump restore.
# Needs: VLDEPLOY (default: vldeploy on PATH), jq, and the sandbox host of the current directory's stack.
set -euo pipefail
scale=${1:-65}
vld=${VLDEPLOY:-vldeploy}
dir=.vldeploy/sandbox
port=$(sed -n 's/^SANDBOX_SSH_PORT=//p' "$dir/sandbox.env")
host() {
    ssh -i "$dir/id_ed25519" -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes \
        -o BatchMode=yes -o LogLevel=ERROR -p "$port" root@127.0.0.1 "$@"
}
stack=$(sed -n 's/^name: *//p' stack.yaml | head -n 1)
db=vaibava_db
psql="docker exec -i vl_postgres psql -X -q -U postgres"
archive=no
grep -q '^  archive:' stack.yaml && archive=yes
events=$(mktemp)
trap 'rm -f "$events"' EXIT
json() { # vldeploy ARGS… -o json: the report on stdout; the step events kept aside, shown when it fails
    "$vld" "$@" -o json 2>"$events" || { cat "$events" >&2; exit 1; }
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== data: pgbench -i -s $scale"
host "docker exec vl_postgres pgbench -i -q -s $scale -U postgres $db" >/dev/null 2>&1
host "$psql -At -d $db -c \"SELECT pg_size_pretty(pg_database_size('$db'))\"" | sed 's/^/database size: /'

echo "== backup now (continuous archiving: $archive)"
s=$(now_ms)
backup=$(json backup now)
backup_s=$(( $(now_ms) - s ))
file=$(echo "$backup" | jq -r .file)
dump_s=$(echo "$backup" | jq .seconds)
bytes=$(host "stat -c %s /var/backups/$stack/$file")
echo "backup: $file, $((bytes / 1048576)) MB compressed; the dump took $(printf '%.1f' "$dump_s") s of the command's $(awk -v m="$backup_s" 'BEGIN{printf "%.1f", m/1000}') s"

pitr=""
if [ "$archive" = yes ]; then
    info=$(host "docker exec vl_postgres pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main info --output=json")
    echo "$info" | jq -r '.[0].backup[] | "pgBackRest \(.type) backup \(.label): \(.info.size/1048576|round) MB of data, \(.info.repository.delta/1048576|round) MB in the repository, \(.timestamp.stop - .timestamp.start) s"'
    echo "$info" | jq -e '[.[0].backup[] | select(.type == "full")] | length > 0' >/dev/null \
        || { echo "backup now took no pgBackRest full backup" >&2; exit 1; }
    echo "== vldeploy restore --to latest (pgBackRest)"
    s=$(now_ms)
    pitr=$(json restore --to latest --yes)
    pitr_wall=$(( $(now_ms) - s ))
    echo "$pitr" | jq -r '.phases[] | "\(.name)\t\(.seconds|.*100|round/100) s"' | column -t -s $'\t'
    echo "restore --to latest: $(echo "$pitr" | jq '.seconds|.*10|round/10') s (the command: $(awk -v m="$pitr_wall" 'BEGIN{printf "%.1f", m/1000}') s)"
    host "$psql -At -d $db -c 'SELECT count(*) FROM pgbench_accounts'" | sed 's/^/rows in pgbench_accounts after it: /'
    # The data from before the restore stays in the safety volume: not needed here.
    host "docker volume rm $(echo "$pitr" | jq -r .safety_volume)" >/dev/null
fi

echo "== raw pipe (the playbook's): gunzip | docker exec -i psql, into a fresh database"
host "$psql -d postgres -c 'DROP DATABASE IF EXISTS raw_bench' -c 'CREATE DATABASE raw_bench TEMPLATE template0'"
raw_s=$(host "s=\$(date +%s%N); gunzip -c /var/backups/$stack/$file | docker exec -i vl_postgres psql -U postgres -d raw_bench >/dev/null; echo \$(( (\$(date +%s%N) - s) / 1000000 ))")
host "$psql -d postgres -c 'DROP DATABASE raw_bench'"

echo "== vldeploy restore (the dump)"
report=$(json restore "$file" --yes)
echo "$report" | jq -r '.phases[] | "\(.name)\t\(.seconds|.*100|round/100) s\t\(if .mb then "\(.mb|round) MB, \(.mb_per_s|.*10|round/10) MB/s" else "" end)"' \
    | column -t -s $'\t'
load_s=$(echo "$report" | jq '.phases[] | select(.name == "load") | .seconds')
total_s=$(echo "$report" | jq '[.phases[].seconds] | add')
mb=$((bytes / 1048576))
awk -v raw="$raw_s" -v load="$load_s" -v mb="$mb" -v total="$total_s" 'BEGIN {
    r = raw / 1000;
    printf "\n%-34s %8.1f s  %6.1f MB/s (compressed)\n", "raw gunzip | psql", r, mb / r;
    printf "%-34s %8.1f s  %6.1f MB/s (compressed)\n", "vldeploy restore: load", load, mb / load;
    printf "%-34s %8.1f s\n", "vldeploy restore: all phases", total;
    printf "load / raw: %.2fx (target: within 1.2x)\n", load / r;
}'
if [ -n "$pitr" ]; then
    echo "$pitr" | jq -r '"restore --to latest: all phases      \(.seconds|.*10|round/10) s (" + ([.phases[] | "\(.name) \(.seconds|.*10|round/10)"] | join(", ")) + ")"'
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
