#!/usr/bin/env bash
# The stack on a sandbox cluster of three hosts (Docker Swarm: nodes 1 and 2 edge+app, node 3 db) beside the same
# stack on one sandbox host, in one run: cold `up` (images only on this machine), no-op `up`, and RELEASES backend
# releases under a keep-alive load through nginx (wrk, through both edges on the cluster).
# Usage: bench/cluster/run.sh [NOOP_RUNS] [RELEASES]
#   VLDEPLOY_BIN=path: use that vldeploy binary and backend/dist/vl-backend as they are (no release builds)
# Needs: hyperfine, wrk, jq, bc, curl (apt-get install hyperfine wrk jq bc curl). Creates the sandbox hosts
# vldeploy-sandbox-bench-one and vldeploy-sandbox-bench-swarm-cluster-{1,2,3} and removes them at the end.
set -euo pipefail
runs=${1:-10}
releases=${2:-5}
for tool in hyperfine wrk jq bc curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install $tool" >&2; exit 1; }
done
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
if [ -n "${VLDEPLOY_BIN:-}" ]; then
  bin=$(realpath "$VLDEPLOY_BIN")
  [ -x backend/dist/vl-backend ] || { echo "VLDEPLOY_BIN needs backend/dist/vl-backend" >&2; exit 1; }
else
  cargo build --release -p vldeploy --target-dir "$repo/target" >&2
  cargo build --release -p vl-backend --target-dir target/backend-release >&2
  install -D -m 0755 target/backend-release/release/vl-backend backend/dist/vl-backend
  bin=$repo/target/release/vldeploy
fi
work=$(mktemp -d /tmp/vld-bench-cluster-XXXX)
cleanup() {
  [ -n "${KEEP:-}" ] && { echo "KEEP: sandbox hosts and $work left in place" >&2; return; }
  (cd "$work/one" && "$bin" sandbox down >/dev/null 2>&1) || true
  (cd "$work/swarm" && "$bin" sandbox down >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

make_project() { # dir stack-name
  mkdir -p "$1"
  sed -e "s|^name: vaibava|name: $2|" \
      -e "s|build: templates/images/|build: $repo/templates/images/|" \
      -e "s|      context: backend|      context: $repo/backend|" \
      -e "/      prepare: >-/,/backend\/dist\/vl-backend$/d" \
      -e "/      # What the binary is built from/d" -e "/      inputs: \[/d" \
      -e "/^site: /d" -e "/^    catalog: /d" \
      "$repo/stack.yaml" > "$1/stack.yaml"
}
secs() { echo "$(date +%s.%N) - $1" | bc; }
healthy() { # port: waits until /api/health answers 200
  for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$1/api/health" 2>/dev/null && return 0; sleep 0.1; done
  echo "no /api/health on port $1" >&2; return 1
}

echo "## setup: one sandbox host and a sandbox cluster of three (not measured)" >&2
make_project "$work/one" bench-one
make_project "$work/swarm" bench-swarm
(cd "$work/one" && "$bin" sandbox up >/dev/null)
(cd "$work/swarm" && "$bin" sandbox up --nodes 3 >/dev/null)
one_port=$(sed -n 's/^SANDBOX_HTTP_PORT=//p' "$work/one/.vldeploy/sandbox/sandbox.env")
edge1=$(sed -n 's/^CLUSTER_NODE1_HTTP_PORT=//p' "$work/swarm/.vldeploy/cluster/cluster.env")
edge2=$(sed -n 's/^CLUSTER_NODE2_HTTP_PORT=//p' "$work/swarm/.vldeploy/cluster/cluster.env")
# The images are built once before either cold run, so that neither pays for the build.
(cd "$work/one" && "$bin" plan >/dev/null)

echo "load average before the measurements: $(loadavg)"
echo
echo "| | one host | cluster of 3 |"
echo "|---|---|---|"
t0=$(date +%s.%N)
(cd "$work/one" && "$bin" up >"$work/one-cold.out" 2>"$work/one-cold.err") || { cat "$work/one-cold.err" >&2; exit 1; }
healthy "$one_port"
one_cold=$(secs "$t0")
t0=$(date +%s.%N)
(cd "$work/swarm" && "$bin" -e cluster up >"$work/swarm-cold.out" 2>"$work/swarm-cold.err") || { cat "$work/swarm-cold.err" >&2; exit 1; }
healthy "$edge1"; healthy "$edge2"
swarm_cold=$(secs "$t0")
printf '| cold `up` (images only on this machine) until /api/health answers through nginx | %.1f s | %.1f s (swarm formed, firewalls, images to 3 nodes) |\n' "$one_cold" "$swarm_cold"

(cd "$work/one" && hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/one-noop.json" "$bin up" >/dev/null 2>&1)
(cd "$work/swarm" && hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/swarm-noop.json" "$bin -e cluster up" >/dev/null 2>&1)
grep -q 'no changes' <(cd "$work/swarm" && "$bin" -e cluster up) || { echo "the cluster's second up changed something" >&2; exit 1; }
median() { jq '.results[0].median' "$1"; }
printf '| no-op `up`, median of %s | %.3f s | %.3f s |\n' "$runs" "$(median "$work/one-noop.json")" "$(median "$work/swarm-noop.json")"

# release DIR ENV-ARGS N: a changed dummy value in the backend's env makes each `up` a release.
release() {
  local dir=$1 n=$3
  sed -i -e '/^      RELEASE_N: /d' -e "s/^      RUST_LOG: info$/      RUST_LOG: info\n      RELEASE_N: \"$n\"/" "$dir/stack.yaml"
  # shellcheck disable=SC2086
  (cd "$dir" && "$bin" $2 up >"$work/release-$n.out" 2>"$work/release-$n.err") || { cat "$work/release-$n.err" >&2; return 1; }
}
# under_load LABEL DIR ENV-ARGS PORT...: wrk -t1 -c8 (keep-alive) per port from 2 s before the first release to 2 s
# after the last; prints one row of the release table.
under_load() {
  local label=$1 dir=$2 envargs=$3; shift 3
  local pids=() i=0 walls="" n t0 before
  before=$(loadavg)
  for port in "$@"; do
    wrk -t1 -c8 -d900s --timeout 10s --latency "http://127.0.0.1:$port/api/health" >"$work/wrk-$label-$i.out" 2>&1 &
    pids+=($!); i=$((i + 1))
  done
  sleep 2
  for n in $(seq 1 "$releases"); do
    t0=$(date +%s.%N)
    release "$dir" "$envargs" "$n" || { kill -INT "${pids[@]}"; return 1; }
    walls="$walls $(printf '%.1f' "$(secs "$t0")")"
  done
  sleep 2
  kill -INT "${pids[@]}"; wait "${pids[@]}" || true
  local requests=0 non2xx=0 errors="" p99="" max=""
  for f in "$work"/wrk-"$label"-*.out; do
    requests=$((requests + $(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$f")))
    non2xx=$((non2xx + $(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$f" | grep . || echo 0)))
    errors="$errors$(sed -n 's/^ *Socket errors: *//p' "$f")"
    p99="$p99 $(awk '$1 == "99%" { print $2 }' "$f")"
    max="$max $(awk '$1 == "Latency" { print $4; exit }' "$f")"
  done
  echo "| $label | $requests | $non2xx | ${errors:-none} |${p99} |${max} | ${walls# } s | $before → $(loadavg) |"
}
echo
echo "$releases backend releases under wrk -t1 -c8 per nginx (keep-alive):"
echo
echo "| | requests | non-2xx | socket errors | p99 per nginx | max per nginx | each release's wall time | load average before → after |"
echo "|---|---|---|---|---|---|---|---|"
under_load one-host "$work/one" "" "$one_port"
under_load cluster "$work/swarm" "-e cluster" "$edge1" "$edge2"
