#!/usr/bin/env bash
# How long a repeated statistics request (a memo hit: all 55 demo conditions over one
# 100,000-acre circle asked before) takes, idle and while wrk keeps the raster threads
# busy rendering raster tiles (the demo server, tile cache off, 8 connections on distinct
# z7-z13 tiles of `aboveground_biomass`). Prints one line: medians, p90 and max.
#   benches/memo_under_load.sh [BIN]     # BIN: a build to measure (default: release)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/.data/bench/memo_under_load"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
BIN="${1:-${BIN:-}}"
bench_setup wrk curl
"$BIN" --config tiles/demo.toml demo >&2
/usr/bin/python3 benches/tile_list.py 2000 7 13 | sed 's|^|/tiles/aboveground_biomass/|; s|$|.png|' \
  > "$WORK/paths.txt"
require_free_port 18096
PLANSCAPE_LISTEN=127.0.0.1:18096 PLANSCAPE_CACHE_SIZE_MB=0 RUST_LOG=warn \
  "$BIN" --config tiles/demo.toml serve 2> "$WORK/server.log" &
PID=$!
wait_for http://127.0.0.1:18096/ready
API=http://127.0.0.1:18096/planscape-backend
all="$(catalog_conditions "$API")"
token="$(signup_token "$API" memo)"
echo "{\"region\":\"sierra_nevada\",\"conditions\":$all,\"geometry\":$(circle_geojson -120.2 38.9 100000)}" \
  > "$WORK/body.json"
post() {
  curl -fsS -o /dev/null -w '%{time_total}\n' "$API/conditions/stats" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' -d "@$WORK/body.json" | awk '{ printf "%.1f\n", $1 * 1000 }'
}
post > /dev/null # computed once; the rest are memo hits
for _ in $(seq 1 20); do post; done > "$WORK/idle.ms"
wrk -t1 -c8 -d30s -s benches/paths.lua http://127.0.0.1:18096 -- "$WORK/paths.txt" > "$WORK/wrk.out" &
WRK=$!
sleep 3
for _ in $(seq 1 40); do post; sleep 0.3; done > "$WORK/load.ms"
wait "$WRK"
p90() { sort -n | awk '{ a[NR] = $1 } END { print a[int(NR * 0.9 + 0.5)] }'; }
echo "memo hit, idle: median $(median < "$WORK/idle.ms") ms;" \
  "under render load: median $(median < "$WORK/load.ms") ms, p90 $(p90 < "$WORK/load.ms") ms," \
  "max $(sort -n "$WORK/load.ms" | tail -1) ms; raster tiles rendered meanwhile: $(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out") req/s"
