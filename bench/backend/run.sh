#!/usr/bin/env bash
# Throughput and latency of GET /api/health and GET /api/search?q=silk, direct on loopback, with wrk.
# Starts a throwaway PostgreSQL 15 cluster and a release build of vl-backend, imports the shop catalog,
# runs wrk for a few seconds per endpoint, and prints the backend's peak RSS. Never part of the tests.
#
# Then GET /api/search?q=silk at a fixed RATE (default 1,000 requests/s) for RATE_S seconds with oha: p50/p90/p99.
#
# Usage (from the repository root):  bench/backend/run.sh [DURATION_S] [CONNECTIONS] [THREADS] [RATE] [RATE_S]
#   DURATION_S 0 skips the wrk runs; RATE 0 skips the fixed-rate run.
# Needs: wrk, curl, jq, PostgreSQL 15 (apt-get install wrk curl jq postgresql-15), oha (cargo install oha).
set -euo pipefail
duration=${1:-5}
connections=${2:-32}
threads=${3:-2}
rate=${4:-1000}
rate_secs=${5:-10}
for tool in wrk curl jq; do command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install $tool" >&2; exit 1; }; done
[ "$rate" = 0 ] || command -v oha >/dev/null || { echo "needs oha for the fixed-rate run: cargo install oha" >&2; exit 1; }
root=$(git rev-parse --show-toplevel)
. "$root/bench/backend/fixed-rate.sh"
target=${CARGO_TARGET_DIR:-$root/target}
pgbin=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/vl-bench.XXXXXX)
chmod 0755 "$work"
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$work"; as_pg=(runuser -u postgres --); fi

cleanup() {
  [ -n "${backend_pid:-}" ] && kill -TERM "$backend_pid" 2>/dev/null && wait "$backend_pid" 2>/dev/null || true
  (cd "$work" && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -p vl-backend --manifest-path "$root/Cargo.toml" >&2
(cd "$work" && "${as_pg[@]}" "$pgbin/initdb" -U postgres -A trust -E UTF8 --no-sync --no-instructions -D "$work/data" >/dev/null)
(cd "$work" && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -l "$work/pg.log" -w \
   -o "-p $pgport -k $work -c listen_addresses=127.0.0.1" start >/dev/null)
(cd "$work" && "${as_pg[@]}" "$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U postgres vaibava_db)

DATABASE_URL="postgres://postgres@127.0.0.1:$pgport/vaibava_db" LISTEN_ADDR="127.0.0.1:$port" \
  ADMIN_TOKEN=bench-token RUST_LOG=info "$target/release/vl-backend" > "$work/backend.log" &
backend_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS -H 'authorization: Bearer bench-token' --data-binary @"$root/backend/tests/data/catalog.csv" \
  "http://127.0.0.1:$port/api/admin/catalog/import"; echo

echo "== rss after start: $(grep VmRSS /proc/$backend_pid/status | awk '{print $2, $3}')"
echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$duration" = 0 ] || for path in /api/health "/api/search?q=silk"; do
  echo "== wrk -t$threads -c$connections -d${duration}s --latency http://127.0.0.1:$port$path"
  wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "http://127.0.0.1:$port$path"
done
if [ "$rate" != 0 ]; then
  echo "== oha -q $rate -z ${rate_secs}s --latency-correction (fixed rate)"
  echo "| endpoint | rate | requests | non-2xx | errors | p50 | p90 | p99 | max | load average before → after |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  fixed_rate "http://127.0.0.1:$port/api/search?q=silk" "$rate" "$rate_secs" 'search, direct'
fi
echo "== peak rss: $(grep VmHWM /proc/$backend_pid/status | awk '{print $2, $3}')"
echo "== log lines written: $(wc -l < "$work/backend.log")"
