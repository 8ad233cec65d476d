#!/usr/bin/env bash
# Failed requests and latency during backend releases: a steady load on GET /api/health through nginx of a sandbox
# host while `vldeploy up` performs RELEASES blue/green releases of the backend; then the same against a second
# sandbox host running the same stack with docker-compose 1.29 (`docker-compose up -d` after changing the backend's
# env, which recreates it). Usage: bench/release/run.sh [RELEASES] [RATE] [COMPOSE_SSH]
#   RATE: requests/s of oha, a new connection per request; or `keepalive`: wrk -t2 -c16, 16 connections kept
#         open across requests, as browsers, apps and CDNs do (as fast as they go, no fixed rate)
#   COMPOSE_SSH: paramiko (COMPOSE_PARAMIKO_SSH=1, the default here: 1.3 s per no-op) or ssh (docker-compose's own default, the system ssh client: 10 s per no-op)
#   VLDEPLOY_BIN=path: use that vldeploy binary and backend/dist/vl-backend as they are (no release builds)
# Needs: oha (cargo install oha) or wrk, jq, bc, curl, docker-compose 1.29, python3-paramiko
# (apt-get install wrk jq bc curl docker-compose python3-paramiko). Creates the sandbox hosts
# vldeploy-sandbox-bench-release and vldeploy-sandbox-bench-release-compose and removes them at the end.
set -euo pipefail
releases=${1:-5}
rate=${2:-300}
compose_ssh_mode=${3:-paramiko}
loader=oha
[ "$rate" = keepalive ] && loader=wrk
for tool in $loader jq bc curl docker-compose; do
  command -v "$tool" >/dev/null || {
    case $tool in oha) echo "needs oha: cargo install oha" >&2 ;; *) echo "needs $tool: apt-get install $tool" >&2 ;; esac
    exit 1
  }
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
# vldeploy takes a secret from the process environment before its secrets file: once compose-host.sh has exported
# the compose host's POSTGRES_PASSWORD, vldeploy must run without it (and without compose's DOCKER_HOST, HOME, PATH).
home0=$HOME path0=$PATH
vld() { env -u POSTGRES_PASSWORD -u ADMIN_TOKEN -u DOCKER_HOST -u COMPOSE_PARAMIKO_SSH -u COMPOSE_PROJECT_NAME \
  HOME="$home0" PATH="$path0" "$bin" "$@"; }
work=$(mktemp -d /tmp/vld-bench-release-XXXX)
cleanup() {
  if [ "${ok:-0}" != 1 ] && [ -d "$work" ]; then
    keep=/tmp/vld-bench-release-failed-$(date +%H%M%S); mkdir -p "$keep"
    cp "$work"/*.err "$work"/*.out "$work"/*.json "$keep"/ 2>/dev/null || true
    echo "logs of the failed run kept in $keep" >&2
  fi
  [ -n "${KEEP:-}" ] && { echo "KEEP: sandbox hosts and $work left in place" >&2; return; }
  (cd "$work/vld" && vld sandbox down >/dev/null 2>&1) || true
  (cd "$work/compose" && vld sandbox down >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

make_project() { # dir stack-name
  mkdir -p "$1"
  sed -e "s|^name: vaibava|name: $2|" \
      -e "s|build: templates/images/|build: $repo/templates/images/|" \
      -e "s|      context: backend|      context: $repo/backend|" \
      -e "/      prepare: >-/,/backend\/dist\/vl-backend$/d" \
      "$repo/stack.yaml" > "$1/stack.yaml"
  (cd "$1" && vld sandbox up >/dev/null)
}
http_port() { sed -n 's/^SANDBOX_HTTP_PORT=//p' "$1/.vldeploy/sandbox/sandbox.env"; }
wait_healthy() { # port
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "http://127.0.0.1:$1/api/health" 2>/dev/null && return 0; sleep 0.2; done
  echo "the stack does not answer /api/health on port $1" >&2; return 1
}
host_env() { # dir key: the live backend container's value of KEY
  local sb=$1/.vldeploy/sandbox
  ssh -p "$(sed -n 's/^SANDBOX_SSH_PORT=//p' "$sb/sandbox.env")" -i "$sb/id_ed25519" -o UserKnownHostsFile="$sb/known_hosts" \
    -o BatchMode=yes root@127.0.0.1 "docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' vl_backend" |
    sed -n "s/^$2=//p"
}

echo "## setup: two sandbox hosts, the stack deployed on each (not measured)" >&2
make_project "$work/vld" bench-release
(cd "$work/vld" && vld up >/dev/null 2>"$work/vld-cold.err") || { cat "$work/vld-cold.err" >&2; exit 1; }
make_project "$work/compose" bench-release-compose
. "$repo/bench/deploy/compose-host.sh"
compose_host_prepare "$work" "$work/compose" bench-release "$work/vld"
[ "$compose_ssh_mode" = paramiko ] && export COMPOSE_PARAMIKO_SSH=1
(cd "$work/compose" && RELEASE_N=0 docker-compose up -d >/dev/null 2>"$work/compose-cold.err") || { cat "$work/compose-cold.err" >&2; exit 1; }
wait_healthy "$(http_port "$work/vld")"
# The vldeploy host is converged before the measurement: a second `up` changes nothing.
(cd "$work/vld" && vld up >"$work/vld-noop.out" 2>"$work/vld-noop.err") || { cat "$work/vld-noop.err" >&2; exit 1; }
grep -q 'no changes' "$work/vld-noop.out" || { echo "the vldeploy host is not converged after its first up:" >&2; cat "$work/vld-noop.out" >&2; exit 1; }
wait_healthy "$(http_port "$work/compose")"

# release_all TOOL DIR RELEASE_FN LOAD_PID: 2 s of load, then releases 1..$releases one after the other (each
# checked live), then 2 s more; sets `walls` to each release's seconds. A failure stops the load and returns 1.
release_all() {
  local tool=$1 dir=$2 release=$3 load_pid=$4 n t0 t1
  walls=""
  sleep 2
  for n in $(seq 1 "$releases"); do
    t0=$(date +%s.%N)
    (cd "$dir" && "$release" "$n") || { echo "$tool: release $n failed" >&2; kill -INT "$load_pid"; wait "$load_pid" || true; return 1; }
    t1=$(date +%s.%N)
    walls="$walls $(printf '%.1f' "$(echo "$t1 - $t0" | bc)")"
    [ "$(host_env "$dir" RELEASE_N)" = "$n" ] || { echo "$tool: release $n is not live" >&2; kill -INT "$load_pid"; wait "$load_pid" || true; return 1; }
  done
  sleep 2
}

# measure TOOL DIR RELEASE_FN: oha at $rate req/s (a new connection per request, as tests/support/load.rs does)
# from 2 s before the first release to 2 s after the last; prints one table row.
measure() {
  local tool=$1 dir=$2 release=$3 port out t0 t1 walls="" n
  port=$(http_port "$dir")
  out=$work/oha-${tool%% *}.json
  local before; before=$(loadavg)
  oha --no-tui --output-format json -q "$rate" -z 600s --disable-keepalive --latency-correction \
    "http://127.0.0.1:$port/api/health" > "$out" 2>"$work/oha-${tool%% *}.err" &
  local oha_pid=$!
  release_all "$tool" "$dir" "$release" "$oha_pid" || return 1
  kill -INT "$oha_pid"
  wait "$oha_pid" || true
  jq -e '.summary' "$out" >/dev/null || { echo "$tool: oha wrote no result" >&2; cat "$work/oha-${tool%% *}.err" >&2; return 1; }
  jq -r --arg tool "$tool" --arg walls "${walls# }" --arg before "$before" --arg after "$(loadavg)" '
    def ms: . * 1000 | . * 10 | round / 10 | tostring + " ms";
    ([.statusCodeDistribution | to_entries[] | .value] | add // 0) as $answered
    | ([.statusCodeDistribution | to_entries[] | select(.key | test("^2") | not) | .value] | add // 0) as $non2xx
    | ([.errorDistribution | to_entries[] | .value] | add // 0) as $errors
    | "| \($tool) | \($answered + $errors) | \($non2xx) | \($errors) | \(.latencyPercentiles.p50 | ms) | \(.latencyPercentiles.p99 | ms) | \(.summary.slowest | ms) | \($walls) s | \($before) → \($after) |",
      (.errorDistribution | to_entries[] | "  \($tool) error: \(.value) × \(.key)"),
      (.statusCodeDistribution | to_entries[] | select(.key | test("^2") | not) | "  \($tool) status \(.key): \(.value)")
  ' "$out"
}

# measure_keepalive TOOL DIR RELEASE_FN: wrk -t2 -c16 (keep-alive connections, as fast as they go) from 2 s before
# the first release to 2 s after the last; prints one table row.
measure_keepalive() {
  local tool=$1 dir=$2 release=$3 port out t0 t1 walls="" n
  port=$(http_port "$dir")
  out=$work/wrk-${tool%% *}.out
  local before; before=$(loadavg)
  wrk -t2 -c16 -d600s --timeout 10s --latency "http://127.0.0.1:$port/api/health" > "$out" 2>&1 &
  local wrk_pid=$!
  release_all "$tool" "$dir" "$release" "$wrk_pid" || return 1
  kill -INT "$wrk_pid"
  wait "$wrk_pid" || true
  grep -q ' requests in ' "$out" || { echo "$tool: wrk wrote no result" >&2; cat "$out" >&2; return 1; }
  local requests non2xx errors p50 p99 max
  requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$out")
  non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$out"); non2xx=${non2xx:-0}
  errors=$(sed -n 's/^ *Socket errors: *//p' "$out"); errors=${errors:-none}
  p50=$(awk '$1 == "50%" { print $2 }' "$out"); p99=$(awk '$1 == "99%" { print $2 }' "$out")
  max=$(awk '$1 == "Latency" { print $4; exit }' "$out")
  echo "| $tool | $requests | $non2xx | $errors | $p50 | $p99 | $max | ${walls# } s | $before → $(loadavg) |"
}

release_vldeploy() { # n: a dummy env value in the backend's env makes every `up` a blue/green release
  sed -i -e '/^      RELEASE_N: /d' -e "s/^      RUST_LOG: info$/      RUST_LOG: info\n      RELEASE_N: \"$1\"/" stack.yaml
  vld up > "$work/vld-up-$1.out" 2>"$work/vld-up-$1.err" || { cat "$work/vld-up-$1.out" "$work/vld-up-$1.err" >&2; return 1; }
  grep -q 'release `vl_backend` (blue/green)' "$work/vld-up-$1.out" || { echo "up $1 was not a release" >&2; cat "$work/vld-up-$1.out" >&2; return 1; }
}
release_compose() { # n: compose recreates the backend when its env changes (in the run, only `vl_backend`: nginx stays)
  RELEASE_N=$1 docker-compose up -d > "$work/compose-up-$1.out" 2>&1 || { cat "$work/compose-up-$1.out" >&2; return 1; }
}

if [ "$rate" = keepalive ]; then
  echo "load average before the measurements: $(loadavg); $releases releases each, wrk -t2 -c16 (keep-alive)"
  echo
  echo "| tool | requests | non-2xx | socket errors | p50 | p99 | max | each release's wall time | load average before → after |"
  echo "|---|---|---|---|---|---|---|---|---|"
  measure_keepalive vldeploy "$work/vld" release_vldeploy
  measure_keepalive "docker-compose ($compose_ssh_mode)" "$work/compose" release_compose
else
  echo "load average before the measurements: $(loadavg); $releases releases each, oha -q $rate"
  echo
  echo "| tool | requests | non-2xx | connection errors | p50 | p99 | max | each release's wall time | load average before → after |"
  echo "|---|---|---|---|---|---|---|---|---|"
  measure vldeploy "$work/vld" release_vldeploy
  measure "docker-compose ($compose_ssh_mode)" "$work/compose" release_compose
fi
ok=1
grep -h -E 'Recreat|Start' "$work"/compose-up-1.out | sed 's/^/  compose up 1: /' || true
