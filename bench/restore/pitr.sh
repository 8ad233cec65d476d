#!/usr/bin/env bash
# Point-in-time recovery beside the dump restore, and the write cost of archiving, on a sandbox host of its own
# whose stack has `backup.archive.repo: /var/lib/pgbackrest` (the repository a volume of the postgres container):
# run.sh (data, backup now, restore --to latest, raw pipe, dump restore), then archive-cost.sh.
# Usage: bench/restore/pitr.sh [SCALE] [RUNS] [SECONDS] [CLIENTS]     # default 65 5 20 4
#   VLDEPLOY_BIN=path: use that vldeploy binary and backend/dist/vl-backend as they are (no release builds)
# Needs: jq, curl. Creates the sandbox host vldeploy-sandbox-bench-pitr and removes it at the end (KEEP=1 keeps it).
set -euo pipefail
scale=${1:-65}
runs=${2:-5}
secs=${3:-20}
clients=${4:-4}
for tool in jq curl column; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install $tool" >&2; exit 1; }
done
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
if [ -n "${VLDEPLOY_BIN:-}" ]; then
  bin=$(realpath "$VLDEPLOY_BIN")
  [ -x backend/dist/vl-backend ] || { echo "VLDEPLOY_BIN needs backend/dist/vl-backend" >&2; exit 1; }
else
  cargo build --release -p vldeploy --target-dir "$repo/target" >&2
  cargo build --release -p vl-backend --target-dir target/backend-release >&2
  install -D -m 0755 target/backend-release/release/vl-backend backend/dist/vl-backend
  bin=$repo/target/release/vldeploy
fi
work=$(mktemp -d /tmp/vld-bench-pitr-XXXX)
cleanup() {
  [ -n "${KEEP:-}" ] && { echo "KEEP: the sandbox host and $work left in place" >&2; return; }
  (cd "$work" && "$bin" sandbox down >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT
sed -e "s|^name: vaibava|name: bench-pitr|" \
    -e "s|build: templates/images/|build: $repo/templates/images/|" \
    -e "s|      context: backend|      context: $repo/backend|" \
    -e "/      prepare: >-/,/backend\/dist\/vl-backend$/d" \
    -e "/      # What the binary is built from/d" -e "/      inputs: \[/d" \
    -e "/^site: /d" -e "/^    catalog: /d" \
    "$repo/stack.yaml" > "$work/stack.yaml"
printf 'backup:\n  archive:\n    repo: /var/lib/pgbackrest\n    timeout: 60s\n' >> "$work/stack.yaml"
cd "$work"
echo "== setup: sandbox host and up (not measured)" >&2
"$bin" sandbox up >/dev/null
"$bin" up >/dev/null
export VLDEPLOY=$bin
bash "$repo/bench/restore/run.sh" "$scale"
echo
echo "== the cost of archiving: pgbench -N -c $clients -T $secs, $runs runs each, interleaved"
bash "$repo/bench/restore/archive-cost.sh" "$runs" "$secs" "$clients"
