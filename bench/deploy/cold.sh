#!/usr/bin/env bash
# Cold `up` with every image already on the host, vldeploy and docker-compose 1.29 (SSH socket tunnel) taking turns
# on one sandbox host, until /api/health answers 200 through nginx; prints each run with the load average beside it.
# Usage: bench/deploy/cold.sh [PAIRS]   (VLDEPLOY=path/to/vldeploy to use a built binary instead of a release build)
# Between runs: `docker-compose down -v`, and for vldeploy `down --volumes` and its state directory on the host
# removed (images, and the firewall's table, stay). Needs what run.sh needs. Creates and removes the sandbox hosts
# vldeploy-sandbox-coldbench and vldeploy-sandbox-coldbench-compose.
set -euo pipefail
pairs=${1:-5}
for tool in jq bc docker-compose curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install $tool" >&2; exit 1; }
done
[ -z "${VLDEPLOY:-}" ] || VLDEPLOY=$(realpath "$VLDEPLOY")
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
if [ -z "${VLDEPLOY:-}" ]; then
  cargo build --release -p vldeploy --target-dir "$repo/target" >&2
  VLDEPLOY=$repo/target/release/vldeploy
fi
[ -x backend/dist/vl-backend ] || { echo "needs backend/dist/vl-backend (see run.sh)" >&2; exit 1; }
bin=$VLDEPLOY
[ -z "${EVENTS:-}" ] || mkdir -p "$EVENTS"
work=$(mktemp -d /tmp/vld-cold-XXXX)
cleanup() { (cd "$work/vld" && env -u DOCKER_HOST "$bin" sandbox down >/dev/null 2>&1) || true; (cd "$work/compose" && env -u DOCKER_HOST "$bin" sandbox down >/dev/null 2>&1) || true; { [ -z "${tunnel:-}" ] || kill "$tunnel" 2>/dev/null || true; }; rm -rf "$work"; }
trap cleanup EXIT
loadavg() { cut -d' ' -f1 /proc/loadavg; }

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

# The images built and deployed once (not timed), then loaded onto the compose host, as run.sh does.
make_project "$work/vld" coldbench
(cd "$work/vld" && "$bin" up >/dev/null 2>&1)
make_project "$work/compose" coldbench-compose
cd "$work/compose"
http=$(sed -n 's/^SANDBOX_HTTP_PORT=//p' .vldeploy/sandbox/sandbox.env)
. "$repo/bench/deploy/compose-host.sh"
compose_host_prepare "$work" "$work/compose" coldbench "$work/vld"
/usr/bin/ssh -F "$COMPOSE_HOST_SSH_CONFIG" -N -o ExitOnForwardFailure=yes -L "$work/d.sock:/var/run/docker.sock" bench-compose &
tunnel=$!
for _ in $(seq 1 100); do [ -S "$work/d.sock" ] && break; sleep 0.1; done
[ -S "$work/d.sock" ] || { echo "the SSH socket tunnel did not come up" >&2; exit 1; }
export DOCKER_HOST=unix://$work/d.sock

healthy_after() { # start: seconds until /api/health is 200 through nginx
  for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$http/api/health" 2>/dev/null && break; sleep 0.05; done
  curl -fsS -o /dev/null "http://127.0.0.1:$http/api/health" || { echo "not healthy through nginx" >&2; exit 1; }
  echo "$EPOCHREALTIME - $1" | bc
}
stamp() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }
vld() { env -u DOCKER_HOST -u POSTGRES_PASSWORD -u ADMIN_TOKEN "$bin" "$@"; }
for i in $(seq 1 "$pairs"); do
  docker-compose down -v >/dev/null 2>&1
  l=$(loadavg); start=$EPOCHREALTIME
  docker-compose up -d >/dev/null 2>"$work/compose.err" || { cat "$work/compose.err" >&2; exit 1; }
  c=$(healthy_after "$start")
  docker-compose down -v >/dev/null 2>&1
  compose_ssh "rm -rf /var/lib/vldeploy/coldbench-compose"
  l2=$(loadavg); start=$EPOCHREALTIME
  { vld up 2>&1 >"$work/vld.out" | stamp >"$work/vld.err"; } || { cat "$work/vld.err" >&2; exit 1; }
  v=$(healthy_after "$start")
  # Each step's start and end, in seconds since the run began (EVENTS=DIR keeps them as DIR/vldeploy-RUN.txt).
  [ -n "${EVENTS:-}" ] && awk -v s="$start" '{ $1 = sprintf("%6.2f", $1 - s); print }' "$work/vld.err" > "$EVENTS/vldeploy-$i.txt"
  grep -q "send image" "$work/vld.err" && echo "note: vldeploy sent images" >&2
  printf 'run %s: docker-compose %.2fs (load %s)  vldeploy %.2fs (load %s)  ratio %.2f\n' "$i" "$c" "$l" "$v" "$l2" "$(echo "$v / $c" | bc -l)"
  vld down --volumes --yes >/dev/null 2>&1
done
