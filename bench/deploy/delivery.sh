#!/usr/bin/env bash
# Image delivery on a fresh sandbox host: bytes and time of a cold `up`, of an `up` after a LABEL-only change of the
# backend image, and of a no-op `up`; then, on a second fresh host, `docker save | gzip -1 | ssh … docker load` of
# the same images, for the throughput of a plain stream. Usage: bench/deploy/delivery.sh [RUNS] [VLDEPLOY_BINARY]
# (default: a release build). Creates sandbox hosts vldeploy-sandbox-bench-dl and -dl-plain, removes them.
set -euo pipefail
runs=${1:-7}
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
bin=${2:+$(realpath "$2")}
if [ -z "$bin" ]; then
  cargo build --release -p vldeploy --target-dir "$repo/target" >&2
  bin=$repo/target/release/vldeploy
fi
[ -x backend/dist/vl-backend ] || {
  cargo build --release -p vl-backend --target-dir target/backend-release >&2
  install -D -m 0755 target/backend-release/release/vl-backend backend/dist/vl-backend
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load average at start: $(loadavg)"
work=$(mktemp -d /tmp/vld-delivery-XXXX)
cleanup() { for d in "$work"/dl "$work"/plain; do (cd "$d" 2>/dev/null && "$bin" sandbox down >/dev/null 2>&1) || true; done; rm -rf "$work"; }
trap cleanup EXIT

# The shop's stack, built from this checkout (its binary prepared above), the backend with a build argument that
# its Dockerfile does not use: changing it changes the image's build-inputs label and no layer.
make_project() { # dir name label
  mkdir -p "$1"
  sed -e "s|^name: vaibava|name: $2|" \
      -e "s|build: templates/images/|build: $repo/templates/images/|" \
      -e "s|      context: backend|      context: $repo/backend\n      args: { DELIVERY_BENCH: \"$3\" }|" \
      -e "/      prepare: >-/,/backend\/dist\/vl-backend$/d" \
      -e "/      # What the binary is built from/d" -e "/      inputs: \[/d" \
      "$repo/stack.yaml" > "$1/stack.yaml"
}
sent() { grep -oE 'sent [0-9]+ bytes' "$1" | awk '{s+=$2} END {print s+0}'; }
step() { grep -E "^\[[0-9]+/[0-9]+\] $1.*done in" "$2" | sed -E 's/.*done in ([0-9.]+)s/\1/' | paste -sd+ | bc; }
timed() { # out err -- command…
  local out=$1 err=$2; shift 2
  local start; start=$(date +%s.%N)
  "$@" >"$out" 2>"$err" || { cat "$err" >&2; exit 1; }
  echo "$(date +%s.%N) - $start" | bc
}

make_project "$work/dl" bench-dl 1
cd "$work/dl"
"$bin" sandbox up >/dev/null
cold=$(timed "$work/cold.out" "$work/cold.err" "$bin" up)
printf 'cold up: %.1fs; send images %.1fs, %s bytes sent %s\n' "$cold" "$(step 'send image' "$work/cold.err")" \
  "$(sent "$work/cold.err")" "$(grep -oE '\([0-9]+ images?: [^)]*\)' "$work/cold.err" | head -1)"
printf '  container steps: postgres %.1fs, backend %.1fs, nginx %.1fs\n' \
  "$(step 'create container `vl_postgres`' "$work/cold.err")" "$(step 'release `vl_backend`' "$work/cold.err")" \
  "$(step 'create container `vl_nginx`' "$work/cold.err")"
# The images the cold up sent, for the plain stream below.
images=$(cd "$work/dl" && ssh -i .vldeploy/sandbox/id_ed25519 -o UserKnownHostsFile=.vldeploy/sandbox/known_hosts \
  -p "$(sed -n 's/^SANDBOX_SSH_PORT=//p' .vldeploy/sandbox/sandbox.env)" root@127.0.0.1 \
  "docker images --format '{{.Repository}}:{{.Tag}}' | grep '^vl/bench-dl-'")
make_project "$work/dl" bench-dl 2
label=$(timed "$work/label.out" "$work/label.err" "$bin" up)
printf 'LABEL-only change: up %.1fs; send images %.1fs, %s bytes sent\n' "$label" \
  "$(step 'send image' "$work/label.err")" "$(sent "$work/label.err")"
noop=$(timed "$work/noop.out" "$work/noop.err" "$bin" up)
printf 'no-op up after it: %.2fs, %s bytes sent\n' "$noop" "$(sent "$work/noop.err")"
times=()
for _ in $(seq 1 "$runs"); do times+=("$(timed /dev/null "$work/n.err" "$bin" up)"); done
printf 'no-op up, %s runs: median %.3fs, min %.3fs, max %.3fs\n' "$runs" \
  "$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" \
  "$(printf '%s\n' "${times[@]}" | sort -n | head -1)" "$(printf '%s\n' "${times[@]}" | sort -n | tail -1)"

# The same images as one plain stream to a second fresh host.
mkdir -p "$work/plain" && cd "$work/plain" && sed "s|^name: bench-dl|name: bench-dl-plain|" "$work/dl/stack.yaml" > stack.yaml \
  && "$bin" sandbox up >/dev/null
port=$(sed -n 's/^SANDBOX_SSH_PORT=//p' .vldeploy/sandbox/sandbox.env)
# shellcheck disable=SC2086
bytes=$(docker save $images | gzip -1 | wc -c)
start=$(date +%s.%N)
# shellcheck disable=SC2086
docker save $images | gzip -1 | ssh -i .vldeploy/sandbox/id_ed25519 -o UserKnownHostsFile=.vldeploy/sandbox/known_hosts \
  -p "$port" root@127.0.0.1 'docker load -q' >/dev/null
plain=$(echo "$(date +%s.%N) - $start" | bc)
printf 'docker save | gzip -1 | ssh docker load, same images: %.1fs, %s bytes\n' "$plain" "$bytes"
echo "load average at end: $(loadavg)"
