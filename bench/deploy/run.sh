#!/usr/bin/env bash
# vldeploy against docker-compose 1.29 (DOCKER_HOST=ssh://) on two fresh sandbox hosts of the same kind:
# cold up with the images built locally, its phases, and a no-op up. Usage: bench/deploy/run.sh [RUNS]
set -euo pipefail
runs=${1:-10}
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
cargo build --release -p vldeploy >&2
cargo build --release -p vl-backend --target-dir target/backend-release >&2
install -D -m 0755 target/backend-release/release/vl-backend backend/dist/vl-backend
bin=$repo/target/release/vldeploy
work=$(mktemp -d /tmp/vld-bench-XXXX)
cleanup() { (cd "$work/vld" && "$bin" sandbox down >/dev/null 2>&1) || true; (cd "$work/compose" && "$bin" sandbox down >/dev/null 2>&1) || true; rm -rf "$work"; }
trap cleanup EXIT

make_project() { # dir name
  mkdir -p "$1"
  sed -e "s|^name: vaibava|name: $2|" \
      -e "s|build: templates/images/|build: $repo/templates/images/|" \
      -e "s|      context: backend|      context: $repo/backend|" \
      -e "/      prepare: >-/,/backend\/dist\/vl-backend$/d" \
      "$repo/stack.yaml" > "$1/stack.yaml"
  (cd "$1" && "$bin" sandbox up >/dev/null)
}

echo "## vldeploy" >&2
make_project "$work/vld" bench
cd "$work/vld"
start=$(date +%s.%N)
"$bin" up >"$work/cold.out" 2>"$work/cold.err"
cold=$(echo "$(date +%s.%N) - $start" | bc)
phase() { grep -E "^\[[0-9]+/[0-9]+\] $1.*done in" "$work/cold.err" | sed -E 's/.*done in ([0-9.]+)s/\1/' | paste -sd+ | bc; }
build=$(echo "$cold - $(grep -E 'done in' "$work/cold.err" | sed -E 's/.*done in ([0-9.]+)s/\1/' | paste -sd+ | bc)" | bc)
printf 'vldeploy cold up: %.1fs (local build check and plan %.1fs, send images %.1fs, postgres %.1fs, backend %.1fs, nginx %.1fs)\n' \
  "$cold" "$build" "$(phase 'send image')" "$(phase 'create container `vl_postgres`')" \
  "$(phase 'release `vl_backend`')" "$(phase 'create container `vl_nginx`')"
hyperfine --warmup 2 --runs "$runs" --export-json "$work/vld-noop.json" "$bin up" >&2
printf 'vldeploy no-op up: mean %.3fs, min %.3fs, max %.3fs (%s runs)\n' \
  "$(jq '.results[0].mean' "$work/vld-noop.json")" "$(jq '.results[0].min' "$work/vld-noop.json")" "$(jq '.results[0].max' "$work/vld-noop.json")" "$runs"

echo "## docker-compose" >&2
make_project "$work/compose" bench-compose
cd "$work/compose"
sb=.vldeploy/sandbox
port=$(sed -n 's/^SANDBOX_SSH_PORT=//p' $sb/sandbox.env)
http=$(sed -n 's/^SANDBOX_HTTP_PORT=//p' $sb/sandbox.env)
mkdir -p "$work/home/.ssh"
cat > "$work/home/.ssh/config" <<CFG
Host 127.0.0.1
  User root
  Port $port
  IdentityFile $work/compose/$sb/id_ed25519
  UserKnownHostsFile $work/compose/$sb/known_hosts
  StrictHostKeyChecking yes
CFG
# OpenSSH reads the config of the passwd home, not $HOME: docker-compose's `ssh` goes through this wrapper.
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$work/home/.ssh/config" > "$work/bin/ssh"
chmod +x "$work/bin/ssh"
export PATH="$work/bin:$PATH"
ssh_() { ssh 127.0.0.1 "$@"; }
# Compose has no way to send local images: load them onto the host first (not timed), as a registry would.
imgs=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^vl/bench-(postgres|backend|nginx):' | grep -v building)
docker save $imgs | ssh_ docker load >/dev/null
ssh_ 'mkdir -p /var/lib/vldeploy/bench/nginx/conf.d /var/lib/vldeploy/bench/www /var/lib/vldeploy/bench/acme'
# The same nginx site vldeploy rendered for its own host.
vport=$(sed -n 's/^SANDBOX_SSH_PORT=//p' "$work/vld/$sb/sandbox.env")
ssh -p "$vport" -i "$work/vld/$sb/id_ed25519" -o UserKnownHostsFile="$work/vld/$sb/known_hosts" -o BatchMode=yes \
  root@127.0.0.1 cat /var/lib/vldeploy/bench/nginx/conf.d/site.conf > "$work/site.conf"
ssh_ "cat > /var/lib/vldeploy/bench/nginx/conf.d/site.conf" < "$work/site.conf"
export PG_IMAGE=$(echo "$imgs" | grep postgres) BACKEND_IMAGE=$(echo "$imgs" | grep backend) NGINX_IMAGE=$(echo "$imgs" | grep nginx)
export POSTGRES_PASSWORD=$(sed -n 's/^POSTGRES_PASSWORD=//p' $sb/secrets.env) ADMIN_TOKEN=$(sed -n 's/^ADMIN_TOKEN=//p' $sb/secrets.env)
export DOCKER_HOST=ssh://root@127.0.0.1 HOME=$work/home COMPOSE_PROJECT_NAME=bench
cp "$repo/bench/deploy/compose.yml" docker-compose.yml
start=$(date +%s.%N)
docker-compose up -d >/dev/null 2>"$work/compose-cold.err" || { cat "$work/compose-cold.err" >&2; exit 1; }
cmd=$(echo "$(date +%s.%N) - $start" | bc)
until curl -fsS -o /dev/null "http://127.0.0.1:$http/api/health"; do sleep 0.2; done
healthy=$(echo "$(date +%s.%N) - $start" | bc)
printf 'docker-compose cold up -d: %.1fs (healthy through nginx after %.1fs; images loaded beforehand)\n' "$cmd" "$healthy"
hyperfine --warmup 1 --runs "$runs" --export-json "$work/compose-noop.json" "docker-compose up -d" >&2
printf 'docker-compose no-op up -d: mean %.3fs, min %.3fs, max %.3fs (%s runs)\n' \
  "$(jq '.results[0].mean' "$work/compose-noop.json")" "$(jq '.results[0].min' "$work/compose-noop.json")" "$(jq '.results[0].max' "$work/compose-noop.json")" "$runs"
