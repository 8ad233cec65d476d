#!/usr/bin/env bash
# The backend through nginx on a sandbox host, as customers reach it: wrk on GET /api/health and
# GET /api/search?q=silk with the shop's catalog loaded, then search at a fixed RATE (default 1,000 requests/s) for
# RATE_S seconds with oha. Usage: bench/backend/nginx.sh [SECONDS] [CONNECTIONS] [THREADS] [RATE] [RATE_S]
#   SECONDS 0 skips the wrk runs; RATE 0 skips the fixed-rate run. Creates and removes vldeploy-sandbox-bench-nginx.
# Needs: wrk, curl, jq (apt-get install wrk curl jq), oha (cargo install oha).
set -euo pipefail
secs=${1:-5}; conns=${2:-32}; threads=${3:-2}; rate=${4:-1000}; rate_secs=${5:-10}
for tool in wrk curl jq; do command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install $tool" >&2; exit 1; }; done
[ "$rate" = 0 ] || command -v oha >/dev/null || { echo "needs oha for the fixed-rate run: cargo install oha" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
. "$repo/bench/backend/fixed-rate.sh"
cargo build --release -p vldeploy --target-dir "$repo/target" >&2
cargo build --release -p vl-backend --target-dir target/backend-release >&2
install -D -m 0755 target/backend-release/release/vl-backend backend/dist/vl-backend
bin=$repo/target/release/vldeploy
work=$(mktemp -d /tmp/vld-bench-nginx-XXXX)
trap '(cd "$work" && "$bin" sandbox down >/dev/null 2>&1) || true; rm -rf "$work"' EXIT
sed -e "s|^name: vaibava|name: bench-nginx|" \
    -e "s|build: templates/images/|build: $repo/templates/images/|" \
    -e "s|      context: backend|      context: $repo/backend|" \
    -e "/      prepare: >-/,/backend\/dist\/vl-backend$/d" \
    "$repo/stack.yaml" > "$work/stack.yaml"
cd "$work"
"$bin" sandbox up >/dev/null
"$bin" up >/dev/null 2>&1
port=$(sed -n 's/^SANDBOX_HTTP_PORT=//p' .vldeploy/sandbox/sandbox.env)
token=$(sed -n 's/^ADMIN_TOKEN=//p' .vldeploy/sandbox/secrets.env | tr -d '"')
curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: text/csv' \
  --data-binary @"$repo/backend/tests/data/catalog.csv" "http://127.0.0.1:$port/api/admin/catalog/import"
echo "## load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$secs" = 0 ] || for path in /api/health "/api/search?q=silk"; do
  echo "## GET $path through nginx"
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port$path" | grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx|Socket errors"
done
if [ "$rate" != 0 ]; then
  echo "## oha -q $rate -z ${rate_secs}s --latency-correction (fixed rate) through nginx"
  echo "| endpoint | rate | requests | non-2xx | errors | p50 | p90 | p99 | max | load average before → after |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  fixed_rate "http://127.0.0.1:$port/api/search?q=silk" "$rate" "$rate_secs" 'search, through nginx'
fi
sshp=$(sed -n 's/^SANDBOX_SSH_PORT=//p' .vldeploy/sandbox/sandbox.env)
ssh -p "$sshp" -i .vldeploy/sandbox/id_ed25519 -o UserKnownHostsFile=.vldeploy/sandbox/known_hosts -o BatchMode=yes root@127.0.0.1 \
  'ps -C vl-backend -o rss=,args= | sed "s/^/backend RSS (kB): /"'
