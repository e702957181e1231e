#!/usr/bin/env bash
# Statistics of all 55 conditions at 30 m read from a cold disk, two builds side by side:
# one server each (tiles/demo-30m.toml, made by `benches/stats.sh 1 --30m`), the same
# areas, taking turns. Before each request every 30 m raster's pages are dropped from the
# page cache (`dd iflag=nocache`), so it reads from the disk what it needs; each area is
# new to both servers (statistics memo and GDAL's block cache). Prints, per area, each
# server's time and the bytes it read from the disk (/proc/PID/io), and the bytes of the
# blocks under the area (benches/block_bytes.py), then the medians.
#   benches/stats_cold.sh BIN_A BIN_B [ACRES] [AREAS]
#   WARM=1 benches/stats_cold.sh ...   # the pages cached instead (a larger circle at the
#                                      # same centre asked of both first)
#   CONFIG_B=path benches/stats_cold.sh BIN BIN ...  # B serves other data, e.g. rasters
#                                      # written with another codec (benches/recode_30m.sh)
# The kernel's read-ahead for the disk matters: /sys/block/<disk>/queue/read_ahead_kb
# (printed first).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/.data/bench/stats_cold"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
A="${1:?usage: benches/stats_cold.sh BIN_A BIN_B [ACRES] [AREAS]}"
B="${2:?usage: benches/stats_cold.sh BIN_A BIN_B [ACRES] [AREAS]}"
ACRES="${3:-100000}"
AREAS="${4:-8}"
BIN="$A" bench_setup postgis curl
CFG30=tiles/demo-30m.toml
require_30m_rasters
for port in 18094 18095; do
  require_free_port "$port"
done
disk="$(df --output=source .data/rasters-30m | tail -1 | sed 's|/dev/||; s|[0-9]*$||')"
echo "read-ahead of $disk: $(cat "/sys/block/$disk/queue/read_ahead_kb" 2>/dev/null || echo '?') KiB"

PIDS=()
stop_servers() { kill "${PIDS[@]}" 2>/dev/null || true; }
trap stop_servers EXIT
for i in 0 1; do
  bin=("$A" "$B"); config=("$CFG30" "${CONFIG_B:-$CFG30}"); port=$((18094 + i))
  PLANSCAPE_LISTEN=127.0.0.1:$port RUST_LOG=warn "${bin[$i]}" --config "${config[$i]}" serve \
    2>> "$WORK/server$i.log" &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$port/ready"
done
api() { echo "http://127.0.0.1:$((18094 + $1))/planscape-backend"; }
TOKENS=("$(signup_token "$(api 0)" cold0-)" "$(signup_token "$(api 1)" cold1-)")
all="$(catalog_conditions "$(api 0)")"
salt="$(date +%s)" # a circle no earlier run asked for (the memo)
body() { # lon lat acres -> $WORK/body.json (and the circle alone, $WORK/area.json)
  circle_geojson "$1" "$2" $(($3 + salt % 997)) > "$WORK/area.json"
  echo "{\"region\":\"sierra_nevada\",\"conditions\":$all,\"geometry\":$(cat "$WORK/area.json")}" \
    > "$WORK/body.json"
}
post() { # server -> "ms MB"
  local before after ms
  before="$(awk '/^read_bytes/ { print $2 }' "/proc/${PIDS[$1]}/io")"
  ms="$(curl -fsS -o /dev/null -w '%{time_total}' "$(api "$1")/conditions/stats" \
    -H "authorization: Bearer ${TOKENS[$1]}" -H 'content-type: application/json' \
    -d "@$WORK/body.json" | awk '{ printf "%.0f", $1 * 1000 }')"
  after="$(awk '/^read_bytes/ { print $2 }' "/proc/${PIDS[$1]}/io")"
  echo "$ms $(((after - before) / 1000000))"
}
# Both servers past their first request (datasets open, PROJ ready), on a small area.
body -120.0 38.5 300
post 0 > /dev/null
post 1 > /dev/null
: > "$WORK/a.ms"; : > "$WORK/b.ms"
echo "| area | A ms | A MB read | B ms | B MB read | blocks under the area (benches/block_bytes.py) |"
echo "|---|---:|---:|---:|---:|---|"
for k in $(seq 1 "$AREAS"); do
  read -r lon lat <<< "$(range_centre "$k" "$AREAS")"
  if [ -n "${WARM:-}" ]; then
    body "$lon" "$lat" $((ACRES + 1000))
    post 0 > /dev/null
    post 1 > /dev/null
  fi
  body "$lon" "$lat" "$ACRES"
  # Taking turns at going first.
  for i in $(if [ $((k % 2)) = 0 ]; then echo 0 1; else echo 1 0; fi); do
    if [ -z "${WARM:-}" ]; then evict_30m_rasters; fi
    post "$i" > "$WORK/r$i"
  done
  read -r a_ms a_mb < "$WORK/r0"
  read -r b_ms b_mb < "$WORK/r1"
  echo "$a_ms" >> "$WORK/a.ms"; echo "$b_ms" >> "$WORK/b.ms"
  echo "| $k | $a_ms | $a_mb | $b_ms | $b_mb | $(/usr/bin/python3 benches/block_bytes.py "$WORK/area.json") |"
done
echo "| median | $(median < "$WORK/a.ms") | | $(median < "$WORK/b.ms") | | |"
