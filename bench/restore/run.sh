#!/bin/bash
# Restore benchmark: `vldeploy restore` phase by phase, beside the playbook's raw `gunzip | docker exec -i psql`
# on the same backup, in one run. Usage (from a project directory whose stack is up on the sandbox host):
#
#   bench/restore/run.sh [SCALE]      # pgbench scale; 65 ≈ 1 GB database
#
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

echo "== data: pgbench -i -s $scale"
host "docker exec vl_postgres pgbench -i -q -s $scale -U postgres $db" >/dev/null 2>&1
host "$psql -At -d $db -c \"SELECT pg_size_pretty(pg_database_size('$db'))\"" | sed 's/^/database size: /'

echo "== backup"
file=$("$vld" backup now -o json | jq -r .file)
bytes=$(host "stat -c %s /var/backups/$stack/$file")
echo "backup: $file, $((bytes / 1048576)) MB compressed"

echo "== raw pipe (the playbook's): gunzip | docker exec -i psql, into a fresh database"
host "$psql -d postgres -c 'DROP DATABASE IF EXISTS raw_bench' -c 'CREATE DATABASE raw_bench TEMPLATE template0'"
raw_s=$(host "s=\$(date +%s%N); gunzip -c /var/backups/$stack/$file | docker exec -i vl_postgres psql -U postgres -d raw_bench >/dev/null; echo \$(( (\$(date +%s%N) - s) / 1000000 ))")
host "$psql -d postgres -c 'DROP DATABASE raw_bench'"

echo "== vldeploy restore"
report=$("$vld" restore "$file" --yes -o json)
echo "$report" | jq -r '.phases[] | "\(.name)\t\(.seconds|.*100|round/100) s\t\(if .mb then "\(.mb|round) MB, \(.mb_per_s|.*10|round/10) MB/s" else "" end)"' \
    | column -t -s $'\t'
load_s=$(echo "$report" | jq '.phases[] | select(.name == "load") | .seconds')
mb=$((bytes / 1048576))
awk -v raw="$raw_s" -v load="$load_s" -v mb="$mb" 'BEGIN {
    r = raw / 1000;
    printf "\n%-28s %8.1f s  %6.1f MB/s (compressed)\n", "raw gunzip | psql", r, mb / r;
    printf "%-28s %8.1f s  %6.1f MB/s (compressed)\n", "vldeploy restore: load", load, mb / load;
    printf "load / raw: %.2fx (target: within 1.2x)\n", load / r;
}'
