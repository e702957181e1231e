#!/usr/bin/env bash
# What usage analytics cost on the warm tile path: the same server, the same 2,000
# watershed tiles (z5-z12, benches/tile_list.py) served from a primed in-process cache,
# with analytics off and on (PLANSCAPE_ANALYTICS_ENABLED), alternating RUNS times so
# that the machine's drift falls on both. Each tile request with analytics on adds one
# counter call (src/analytics/tile_counts.rs); the counters are written every
# flush_interval_s.
#
#   benches/analytics_cost.sh [DURATION_SECONDS] [CONNECTIONS] [RUNS]
#
# Release build, loopback only, bounded: RUNS x 2 wrk runs of DURATION seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-15}"
CONNECTIONS="${2:-8}"
RUNS="${3:-3}"
TILES="${TILES:-2000}"
WORK="$ROOT/.data/bench/analytics"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

bench_setup wrk
"$BIN" --config tiles/demo.toml demo >&2

/usr/bin/python3 benches/tile_list.py "$TILES" 5 12 > "$WORK/tiles.txt"
sed 's|^|/tiles/watersheds/|; s|$|.mvt|' "$WORK/tiles.txt" > "$WORK/paths.txt"
sed -e 's|^listen = .*|listen = "127.0.0.1:18080"|' -e 's|^size_mb = .*|size_mb = 2048|' \
  tiles/demo.toml > "$WORK/planscape.toml"

start_planscape() { # analytics on (true) or off (false)
  PLANSCAPE_ANALYTICS_ENABLED="$1" RUST_LOG=warn "$BIN" \
    --config "$WORK/planscape.toml" serve 2>"$WORK/planscape.log" &
  PID=$!
  wait_for http://127.0.0.1:18080/ready
  prime http://127.0.0.1:18080 "$WORK/paths.txt"
}

echo "| run | analytics | req/s | p50 | p99 | transfer/s |"
echo "| --- | --- | --- | --- | --- | --- |"
for run in $(seq 1 "$RUNS"); do
  for enabled in false true; do
    start_planscape "$enabled"
    echo "| $run | $([ "$enabled" = true ] && echo on || echo off) | $(run_wrk http://127.0.0.1:18080 "$WORK/paths.txt") |"
    stop_server
  done
done
