# A fixed-rate latency run with oha, sourced by run.sh and nginx.sh (bash). Needs oha: cargo install oha.
#
# fixed_rate URL RATE SECONDS LABEL
#   oha at RATE requests/s for SECONDS (50 keep-alive connections, latency measured from when each request was due,
#   so a stall counts against every request it delays), then one line of Markdown:
#   | LABEL | RATE | requests | non-2xx | errors | p50 | p90 | p99 | max | load average before → after |
#   then one line per kind of error. Requests still in flight when SECONDS end ("aborted due to deadline") are
#   neither counted as requests nor as errors.

fixed_rate() {
  local url=$1 rate=$2 secs=$3 label=$4 out before
  command -v oha >/dev/null || { echo "| $label | skipped: needs oha (cargo install oha) |"; return 0; }
  out=$(mktemp /tmp/vl-bench-oha.XXXXXX)
  before=$(cut -d' ' -f1-3 /proc/loadavg)
  oha --no-tui --output-format json -q "$rate" -z "${secs}s" --latency-correction "$url" > "$out"
  jq -r --arg name "$label" --arg rate "$rate" --arg before "$before" --arg after "$(cut -d' ' -f1-3 /proc/loadavg)" '
    def ms: . * 1000 | . * 100 | round / 100 | tostring + " ms";
    ([.statusCodeDistribution | to_entries[] | .value] | add // 0) as $answered
    | ([.statusCodeDistribution | to_entries[] | select(.key | test("^2") | not) | .value] | add // 0) as $non2xx
    | ([.errorDistribution | to_entries[] | select(.key | test("deadline") | not) | .value] | add // 0) as $errors
    | "| \($name) | \($rate)/s | \($answered + $errors) | \($non2xx) | \($errors) | \(.latencyPercentiles.p50 | ms) | \(.latencyPercentiles.p90 | ms) | \(.latencyPercentiles.p99 | ms) | \(.summary.slowest | ms) | \($before) → \($after) |",
      (.errorDistribution | to_entries[] | "  \($name): \(.value) × \(.key)")
  ' "$out"
  rm -f "$out"
}
