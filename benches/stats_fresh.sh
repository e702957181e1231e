#!/usr/bin/env bash
# A fresh server's first statistics request, two builds taking turns: all 55 conditions
# at 30 m (tiles/demo-30m.toml, made by `benches/stats.sh 1 --30m`) over a new
# 100,000-acre area, asked of a server just started. Before each, a server of the same
# build answers a slightly larger circle at the same centre and stops, so the area's
# pages are in the page cache and only the server is new.
#   benches/stats_fresh.sh BIN_A BIN_B [AREAS] [PAUSE_SECONDS]
# PAUSE_SECONDS (default 0): the wait between the server's /ready and the request.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
A="${1:?usage: benches/stats_fresh.sh BIN_A BIN_B [AREAS] [PAUSE_SECONDS]}"
B="${2:?usage: benches/stats_fresh.sh BIN_A BIN_B [AREAS] [PAUSE_SECONDS]}"
AREAS="${3:-6}"
PAUSE="${4:-0}"
WORK="$ROOT/.data/bench/stats_fresh"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
BIN="$A" bench_setup postgis curl
require_30m_rasters
require_free_port 18099
API=http://127.0.0.1:18099/planscape-backend
start() { # binary
  PLANSCAPE_LISTEN=127.0.0.1:18099 RUST_LOG=warn "$1" --config tiles/demo-30m.toml serve \
    2>> "$WORK/server.log" &
  PID=$!
  wait_for http://127.0.0.1:18099/ready
}
start "$A"
all="$(catalog_conditions "$API")"
token="$(signup_token "$API" fresh-)"
stop_server
salt="$(date +%s)" # circles no earlier run asked for (the memo)
body() { # lon lat acres
  echo "{\"region\":\"sierra_nevada\",\"conditions\":$all,\"geometry\":$(circle_geojson "$1" "$2" "$3")}" \
    > "$WORK/body.json"
}
post() {
  curl -fsS -o /dev/null -w '%{time_total}\n' "$API/conditions/stats" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' -d "@$WORK/body.json" | awk '{ printf "%.0f\n", $1 * 1000 }'
}
: > "$WORK/a.ms"; : > "$WORK/b.ms"
echo "| area | A ms | B ms |"
echo "|---|---:|---:|"
for k in $(seq 1 "$AREAS"); do
  read -r lon lat <<< "$(range_centre "$k" "$AREAS")"
  for i in 0 1; do
    bin=("$A" "$B")
    start "${bin[$i]}"
    body "$lon" "$lat" $((100100 + salt % 997))
    post > /dev/null
    stop_server
    start "${bin[$i]}"
    sleep "$PAUSE"
    body "$lon" "$lat" $((100000 + salt % 997 + k))
    post > "$WORK/r$i"
    stop_server
  done
  cat "$WORK/r0" >> "$WORK/a.ms"; cat "$WORK/r1" >> "$WORK/b.ms"
  echo "| $k | $(cat "$WORK/r0") | $(cat "$WORK/r1") |"
done
echo "| median | $(median < "$WORK/a.ms") | $(median < "$WORK/b.ms") |"
