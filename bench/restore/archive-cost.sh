#!/bin/bash
# The write cost of continuous archiving: pgbench's TPC-B-like script without the branch and teller updates
# (`-N`) in the postgres container, with archiving on (`backup.archive` in stack.yaml) and off (the same stack.yaml
# without it: `archive_mode` off, as vldeploy runs postgres then), same host, same data, runs interleaved.
# Usage (from a project directory whose stack.yaml has `backup.archive` and is up on its sandbox host, with the
# pgbench tables loaded, e.g. after bench/restore/run.sh):
#
#   bench/restore/archive-cost.sh [RUNS] [SECONDS] [CLIENTS]     # default 3 30 4: on, off, on, off, on, off
#
# Each switch is a `vldeploy up` (postgres is recreated with the other settings); before each run a VACUUM of the
# pgbench tables and a CHECKPOINT, and autovacuum is off for those tables during the benchmark (on again at the end),
# so that no run pays for another's dead rows.
# Besides transactions per second (which other work on a shared machine moves), each run reports the CPU time the
# postgres container used per 1,000 transactions (its cgroup's cpuacct: postgres, pgbench and pgBackRest's
# archive-push all run there), which shows what archiving costs whatever else the machine is doing.
# stack.yaml is put back as it was at the end. Needs: VLDEPLOY (default: vldeploy on PATH), jq.
set -euo pipefail
runs=${1:-3}
secs=${2:-30}
clients=${3:-4}
vld=${VLDEPLOY:-vldeploy}
dir=.vldeploy/sandbox
port=$(sed -n 's/^SANDBOX_SSH_PORT=//p' "$dir/sandbox.env")
host() {
    ssh -i "$dir/id_ed25519" -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes \
        -o BatchMode=yes -o LogLevel=ERROR -p "$port" root@127.0.0.1 "$@"
}
db=vaibava_db
psql="docker exec -i vl_postgres psql -X -q -At -U postgres -d $db"
grep -q '^  archive:' stack.yaml || { echo "stack.yaml has no backup.archive" >&2; exit 1; }
work=$(mktemp -d)
cp stack.yaml "$work/on.yaml"
# Off: the `archive:` block of `backup:` removed (its lines are indented deeper than `  archive:`), and `backup:`
# too when nothing else was under it.
awk '/^  archive:/ { skip = 1; next } skip && /^    / { next } { skip = 0; print }' "$work/on.yaml" \
    | awk 'held && !/^  / { held = 0 } held { print "backup:"; held = 0 } /^backup:$/ { held = 1; next } { print }' \
    > "$work/off.yaml"
tables="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history"
autovacuum() { # on|off
    for t in $tables; do host "$psql -c 'ALTER TABLE $t SET (autovacuum_enabled = $1)'" >/dev/null; done
}
restore() { cp "$work/on.yaml" stack.yaml; rm -rf "$work"; autovacuum on || true; }
trap restore EXIT
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
autovacuum off

switch() { # on|off
    cp "$work/$1.yaml" stack.yaml
    "$vld" up >/dev/null 2>"$work/up.err" || { cat "$work/up.err" >&2; exit 1; }
    for _ in $(seq 1 60); do host "$psql -c 'SELECT 1'" >/dev/null 2>&1 && break; sleep 1; done
    local mode
    mode=$(host "$psql -c 'SHOW archive_mode'")
    [ "$mode" = "$1" ] || { echo "archive_mode is $mode after up with archiving $1" >&2; exit 1; }
}

cpu_ns() { host "docker exec vl_postgres cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || docker exec vl_postgres sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat | sed 's/\$/000/'"; }
printf '%-4s %-8s %10s %8s %14s %8s %9s %s\n' run archiving tps "lat ms" "CPU ms/1k tx" "WAL MB" archived "load average"
for i in $(seq 1 "$runs"); do
    for mode in on off; do
        switch "$mode"
        host "$psql -c 'VACUUM ${tables// /, }' -c CHECKPOINT" >/dev/null
        # With archiving on, the WAL of the VACUUM and CHECKPOINT is pushed before the run starts, not during it.
        for _ in $(seq 1 120); do
            [ "$(host "$psql -c \"SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'\"")" = 0 ] && break
            sleep 1
        done
        lsn0=$(host "$psql -c 'SELECT pg_current_wal_lsn()'")
        arch0=$(host "$psql -c 'SELECT archived_count FROM pg_stat_archiver'")
        cpu0=$(cpu_ns)
        out=$(host "docker exec vl_postgres pgbench -n -N -c $clients -j 2 -T $secs -U postgres $db" 2>&1)
        cpu1=$(cpu_ns)
        wal=$(host "$psql -c \"SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / 1048576)\"")
        arch1=$(host "$psql -c 'SELECT archived_count FROM pg_stat_archiver'")
        tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p')
        lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
        tx=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
        [ -n "$tps" ] && [ -n "$tx" ] || { echo "$out" >&2; exit 1; }
        cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$tx" 'BEGIN { printf "%.1f", (b - a) / 1e6 / n * 1000 }')
        printf '%-4s %-8s %10.1f %8.2f %14s %8s %9s %s\n' "$i" "$mode" "$tps" "$lat" "$cpu" "$wal" "$((arch1 - arch0))" \
            "$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "$mode $tps $cpu" >> "$work/tps"
    done
done
awk '{ s[$1] += $2; c[$1] += $3; n[$1]++ } END {
    on = s["on"] / n["on"]; off = s["off"] / n["off"];
    con = c["on"] / n["on"]; coff = c["off"] / n["off"];
    printf "\nmean tps: archiving on %.1f, off %.1f: %+.1f%% with archiving on (target: at most 5%% fewer)\n", on, off, (on - off) / off * 100;
    printf "mean CPU per 1,000 transactions: archiving on %.0f ms, off %.0f ms: %+.1f%% with archiving on\n", con, coff, (con - coff) / coff * 100;
}' "$work/tps"
echo "back to archiving on"
switch on
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
