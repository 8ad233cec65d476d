#!/usr/bin/env bash
# `vldeploy bootstrap` of a bare sandbox host (a fresh server: systemd, sshd, root login), phase by phase, then
# the second run (nothing to do) timed SECOND_RUNS times, then `--harden-ssh`. Usage: bench/bootstrap/run.sh [RUNS] [SECOND_RUNS]
# VLDEPLOY=path picks the binary (default: target/debug/vldeploy, built if missing). Needs: bc.
# Creates the sandbox host vldeploy-sandbox-bench-bootstrap for each run and removes it.
set -euo pipefail
runs=${1:-1}
seconds_runs=${2:-10}
command -v bc >/dev/null || { echo "needs bc: apt-get install bc" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
vld=${VLDEPLOY:-$repo/target/debug/vldeploy}
[ -x "$vld" ] || (cd "$repo" && cargo build -p vldeploy >&2)
work=$(mktemp -d)
cleanup() { (cd "$work" && "$vld" sandbox down >/dev/null 2>&1 || true); rm -rf "$work"; }
trap cleanup EXIT
sed -e 's/^name: vaibava/name: bench-bootstrap/' \
    -e 's|^    host: ssh://root@127.0.0.1:${SANDBOX_SSH_PORT}$|    host: ssh://deploy@127.0.0.1:${SANDBOX_SSH_PORT}\n    bootstrap_user: root|' \
    "$repo/stack.yaml" > "$work/stack.yaml"
cd "$work"
now() { date +%s.%N; }
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
for run in $(seq 1 "$runs"); do
  "$vld" sandbox down >/dev/null 2>&1 || true
  "$vld" sandbox up --bare >/dev/null
  t0=$(now)
  "$vld" bootstrap >"$work/out" 2>"$work/err"
  t1=$(now)
  echo "run $run: bootstrap of a bare host: $(echo "$t1 - $t0" | bc) s (wall, vldeploy's own view below)"
  # Phases as vldeploy reports them: `bootstrap: facts read in 0.1s`, `bootstrap: <step>: done in 29.1s`.
  sed -n 's/^bootstrap: facts read in \(.*\)s$/  facts (one round trip)  \1 s/p; s/^bootstrap: \(.*\): done in \(.*\)s$/  \1  \2 s/p' "$work/err"
  sed -n 's/^bootstrap: \(.* applied in .*\);.*/  total: \1/p' "$work/out"
  total=0
  best=
  for i in $(seq 1 "$seconds_runs"); do
    s0=$(now)
    "$vld" bootstrap >"$work/out2" 2>&1
    s1=$(now)
    grep -q 'no changes' "$work/out2" || { echo "the second run changed something:" >&2; cat "$work/out2" >&2; exit 1; }
    d=$(echo "$s1 - $s0" | bc)
    total=$(echo "$total + $d" | bc)
    if [ -z "$best" ] || [ "$(echo "$d < $best" | bc)" = 1 ]; then best=$d; fi
  done
  echo "  second run (no changes): mean $(echo "scale=3; $total / $seconds_runs" | bc) s, best $best s over $seconds_runs runs"
  h0=$(now)
  VLDEPLOY_SSH_REVERT_AFTER=30 "$vld" bootstrap --harden-ssh >"$work/out3" 2>"$work/err3"
  h1=$(now)
  echo "  --harden-ssh (check, arm, restart sshd, confirm as deploy, disarm): $(echo "$h1 - $h0" | bc) s"
  "$vld" sandbox down >/dev/null
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
