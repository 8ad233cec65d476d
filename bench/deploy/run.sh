#!/usr/bin/env bash
# vldeploy against docker-compose 1.29 (through an SSH socket tunnel, and DOCKER_HOST=ssh://) on two fresh sandbox hosts of the
# same kind: cold up, its phases, no-op up, and a cold up with the images present. Usage: bench/deploy/run.sh [RUNS] [COMPOSE_RUNS]
# Needs: hyperfine, jq, bc, docker-compose 1.29 and python3-paramiko (apt-get install hyperfine jq bc docker-compose
# python3-paramiko). Creates sandbox hosts vldeploy-sandbox-bench and vldeploy-sandbox-bench-compose, removes them.
set -euo pipefail
runs=${1:-10}
cruns=${2:-$runs}
for tool in hyperfine jq bc docker-compose curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install $tool" >&2; exit 1; }
done
/usr/bin/python3 -c 'import paramiko' 2>/dev/null || { echo "needs python3-paramiko: apt-get install python3-paramiko" >&2; exit 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load average at start: $(loadavg)"
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
cargo build --release -p vldeploy --target-dir "$repo/target" >&2
cargo build --release -p vl-backend --target-dir target/backend-release >&2
install -D -m 0755 target/backend-release/release/vl-backend backend/dist/vl-backend
bin=$repo/target/release/vldeploy
work=$(mktemp -d /tmp/vld-bench-XXXX)
cleanup() { (cd "$work/vld" && env -u DOCKER_HOST "$bin" sandbox down >/dev/null 2>&1) || true; (cd "$work/compose" && env -u DOCKER_HOST "$bin" sandbox down >/dev/null 2>&1) || true; rm -rf "$work"; }
trap cleanup EXIT

make_project() { # dir name
  mkdir -p "$1"
  sed -e "s|^name: vaibava|name: $2|" \
      -e "s|build: templates/images/|build: $repo/templates/images/|" \
      -e "s|      context: backend|      context: $repo/backend|" \
      -e "/      prepare: >-/,/backend\/dist\/vl-backend$/d" \
      -e "/      # What the binary is built from/d" -e "/      inputs: \[/d" \
      -e "/^site: /d" -e "/^    catalog: /d" \
      "$repo/stack.yaml" > "$1/stack.yaml"
  (cd "$1" && "$bin" sandbox up >/dev/null)
}

echo "## vldeploy" >&2
make_project "$work/vld" bench
cd "$work/vld"
# Each line of `up`'s events carries when it came: steps overlap (nginx starts beside postgres), so the build
# check and plan end when the first step starts, not at the sum of the steps' durations.
stamp() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }
start=$EPOCHREALTIME
{ "$bin" up 2>&1 >"$work/cold.out" | stamp >"$work/cold.err"; }
cold=$(echo "$EPOCHREALTIME - $start" | bc)
phase() { grep -E "^[0-9.]+ \[[0-9]+/[0-9]+\] $1.*done in" "$work/cold.err" | sed -E 's/.*done in ([0-9.]+)s/\1/' | paste -sd+ | bc; }
build=$(echo "$(grep -m1 -E '^[0-9.]+ \[[0-9]+/[0-9]+\] ' "$work/cold.err" | cut -d' ' -f1) - $start" | bc)
printf 'vldeploy cold up: %.1fs (local build check and plan %.1fs, send images %.1fs, postgres %.1fs, backend %.1fs, nginx %.1fs)\n' \
  "$cold" "$build" "$(phase 'send image')" "$(phase 'create container `vl_postgres`')" \
  "$(phase 'release `vl_backend`')" "$(phase 'create container `vl_nginx`')"
hyperfine --warmup 2 --runs "$runs" --export-json "$work/vld-noop.json" "$bin up" >&2
printf 'vldeploy no-op up: mean %.3fs, min %.3fs, max %.3fs (%s runs)\n' \
  "$(jq '.results[0].mean' "$work/vld-noop.json")" "$(jq '.results[0].min' "$work/vld-noop.json")" "$(jq '.results[0].max' "$work/vld-noop.json")" "$runs"

echo "## docker-compose" >&2
make_project "$work/compose" bench-compose
cd "$work/compose"
http=$(sed -n 's/^SANDBOX_HTTP_PORT=//p' .vldeploy/sandbox/sandbox.env)
. "$repo/bench/deploy/compose-host.sh"
compose_host_prepare "$work" "$work/compose" bench "$work/vld"
# compose's fastest way to a remote engine: the engine's socket forwarded over one SSH connection.
sshhost=$DOCKER_HOST
/usr/bin/ssh -F "$COMPOSE_HOST_SSH_CONFIG" -N -o ExitOnForwardFailure=yes -L "$work/d.sock:/var/run/docker.sock" bench-compose &
tunnel=$!
for _ in $(seq 1 100); do [ -S "$work/d.sock" ] && break; sleep 0.1; done
[ -S "$work/d.sock" ] || { echo "the SSH socket tunnel did not come up" >&2; exit 1; }
export DOCKER_HOST=unix://$work/d.sock
start=$(date +%s.%N)
docker-compose up -d >/dev/null 2>"$work/compose-cold.err" || { cat "$work/compose-cold.err" >&2; exit 1; }
cmd=$(echo "$(date +%s.%N) - $start" | bc)
for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$http/api/health" 2>/dev/null && break; sleep 0.2; done
curl -fsS -o /dev/null "http://127.0.0.1:$http/api/health" || { echo "compose stack not healthy through nginx" >&2; exit 1; }
healthy=$(echo "$(date +%s.%N) - $start" | bc)
printf 'docker-compose cold up -d (socket tunnel): %.1fs (healthy through nginx after %.1fs; images loaded beforehand)\n' "$cmd" "$healthy"
# The no-op, with docker-compose's default transport (one `ssh ... docker system dial-stdio` per API connection),
# then with paramiko (COMPOSE_PARAMIKO_SSH=1: one SSH connection, a channel per API connection).
for mode in tunnel ssh paramiko; do
  p=0; [ "$mode" = paramiko ] && p=1
  if [ "$mode" = tunnel ]; then export DOCKER_HOST=unix://$work/d.sock; else export DOCKER_HOST=$sshhost; fi
  COMPOSE_PARAMIKO_SSH=$p hyperfine --warmup 1 --runs "$cruns" --export-json "$work/compose-noop-$mode.json" "docker-compose up -d" >&2
  j=$work/compose-noop-$mode.json
  printf 'docker-compose no-op up -d (%s): mean %.3fs, min %.3fs, max %.3fs (%s runs)\n' "$mode" \
    "$(jq '.results[0].mean' "$j")" "$(jq '.results[0].min' "$j")" "$(jq '.results[0].max' "$j")" "$cruns"
done
# vldeploy on the same host from nothing but the images compose ran: its cold `up` with the images present, beside
# compose's cold `up -d` above (both until /api/health answers 200 through nginx).
DOCKER_HOST=unix://$work/d.sock docker-compose down -v >/dev/null 2>&1
kill "$tunnel" 2>/dev/null || true
start=$(date +%s.%N)
env -u DOCKER_HOST -u POSTGRES_PASSWORD -u ADMIN_TOKEN "$bin" up >"$work/present.out" 2>"$work/present.err" || { cat "$work/present.err" >&2; exit 1; }
for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$http/api/health" 2>/dev/null && break; sleep 0.2; done
curl -fsS -o /dev/null "http://127.0.0.1:$http/api/health" || { echo "vldeploy stack not healthy through nginx" >&2; exit 1; }
present=$(echo "$(date +%s.%N) - $start" | bc)
grep -q "send image" "$work/present.err" && echo "note: vldeploy sent images to the compose host" >&2
printf 'vldeploy cold up, images present (the compose host after `docker-compose down -v`): healthy through nginx after %.1fs\n' "$present"
echo "load average at end: $(loadavg)"
