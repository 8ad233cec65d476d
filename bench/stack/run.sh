#!/bin/bash
# Stack loading benchmark: how long `vldeploy status` takes to load stack files of the worst shapes, each just
# under the 1 MiB limit, and (optionally) the same files with another vldeploy binary beside it.
#
#   bench/stack/run.sh [RUNS] [OTHER_BINARY]
#
# The files point at 127.0.0.1:9, where nothing listens: after loading, the command fails at once to connect,
# so the time measured is the load (plus process start and one refused TCP connect). Files that the loader
# refuses (deep.yaml has an unknown top-level key, over.yaml is over the limit) fail right after parsing.
# Needs: python3, hyperfine (apt-get install hyperfine); VLDEPLOY (default target/release/vldeploy).
set -euo pipefail
runs=${1:-10}
other=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
vld=${VLDEPLOY:-$here/../../target/release/vldeploy}
command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 1; }
[ -x "$vld" ] || { echo "needs $vld: cargo build --release (or set VLDEPLOY)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/gen.py" "$work"
for f in keys deep long aliases over; do
    echo "== $f.yaml: $("$vld" --file "$work/$f.yaml" -e bench status 2>&1 | grep -m1 '^error' || true)"
    /usr/bin/time -f "peak resident: %M KB" "$vld" --file "$work/$f.yaml" -e bench status >/dev/null 2>"$work/time" || true
    tail -n 1 "$work/time"
    hyperfine -N -i --style basic --warmup 1 --runs "$runs" \
        --export-markdown "$work/$f.md" "$vld --file $work/$f.yaml -e bench status" >/dev/null
    tail -n 1 "$work/$f.md"
    if [ -n "$other" ]; then
        /usr/bin/time -f "other binary: %e s, peak resident %M KB" timeout 300 "$other" --file "$work/$f.yaml" -e bench status \
            >/dev/null 2>"$work/time" || true
        tail -n 1 "$work/time"
    fi
done
