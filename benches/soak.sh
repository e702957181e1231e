#!/usr/bin/env bash
# Soak: a long mixed load through the deployment's nginx with the server's memory sampled
# every second, to show that memory stays bounded by configuration (the tile cache,
# `[memory] gdal_cache_mb`, allocator arenas) and that nothing fails over time.
#
#   benches/soak.sh [DURATION_SECONDS] [CONNECTIONS]      (default 600 s, 12 connections)
#   VIEWS=N (default 400) map views in the mix: 16 requests each, cycled; enough views
#   (e.g. 40000) make more distinct tiles than the tile cache holds, so that it fills and
#   evicts during the run. CACHE_MB=N sets the tile cache's size (default: tiles/demo.toml's).
#
# Mix: the map views of benches/mix.py (vector and raster tiles, TileJSON, z7-z13) with,
# every 16 requests, a planning request of a signed-in user: statistics of all catalog
# conditions over one of 24 drawn areas (2,000 to 200,000 acres), a plan read, a plan's
# scores. Reports (in .data/bench/soak/soak.md, and on standard output) requests, errors,
# the largest and last RSS against the configured cache size, and the gauges of /metrics
# at the end; docs/loadtest.md's "Soak" section keeps the runs' history by hand.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-600}"
CONNECTIONS="${2:-12}"
VIEWS="${VIEWS:-400}"
CACHE_MB="${CACHE_MB:-}"
WORK="$ROOT/.data/bench/soak"
PORT=18082
NGINX_PORT=18089
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

bench_setup wrk
"$BIN" --config tiles/demo.toml demo >&2
"$BIN" --config tiles/demo.toml conditions build >&2

NGINX_PID=""
SAMPLER=""
stop_all() {
  if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null || true; fi
  stop_server
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
}
trap stop_all EXIT

sed -e "s|^listen = .*|listen = \"127.0.0.1:$PORT\"|" tiles/demo.toml > "$WORK/soak.toml"
if [ -n "$CACHE_MB" ]; then sed -i "s|^size_mb = .*|size_mb = $CACHE_MB|" "$WORK/soak.toml"; fi
RUST_LOG=warn "$BIN" --config "$WORK/soak.toml" serve 2>"$WORK/planscape.log" &
PID=$!
wait_for "http://127.0.0.1:$PORT/ready"
scripts/nginx-local.sh "$NGINX_PORT" "127.0.0.1:$PORT" "$WORK/nginx" &
NGINX_PID=$!
BASE="http://127.0.0.1:$NGINX_PORT"
wait_for "$BASE/health"
API="$BASE/planscape-backend"
cache_mb="$(sed -n 's/^size_mb = \([0-9]*\).*/\1/p' "$WORK/soak.toml" | head -1)"
cache_mb="${cache_mb:-512}"

token="$(signup_token "$API" soak)"
conditions="$(catalog_conditions "$API")"
# 24 circles over the Sierra Nevada, 2,000 to 200,000 acres (PostGIS makes them).
psql "$DATABASE_URL" -Atc "
  SELECT ST_AsGeoJSON(ST_Buffer(ST_SetSRID(ST_MakePoint(-120.6 + (i % 6) * 0.35, 37.0 + (i / 6) * 0.6), 4326)::geography,
                                sqrt((2000 * power(100, i / 23.0)) * 4046.8564224 / pi()), 32)::geometry, 6)
  FROM generate_series(0, 23) AS i" > "$WORK/areas.txt"
plans=()
while read -r area; do
  id="$(curl -fsS "$API/plans" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"name\":\"soak\",\"region\":\"sierra_nevada\",\"geometry\":$area}" | sed -n 's/^{"id":\([0-9]*\).*/\1/p')"
  plans+=("$id")
done < <(head -4 "$WORK/areas.txt")

/usr/bin/python3 benches/mix.py "$VIEWS" > "$WORK/tiles.txt"
/usr/bin/python3 - "$WORK/tiles.txt" "$WORK/areas.txt" "$conditions" "${plans[@]}" > "$WORK/mix.txt" <<'PY'
import json, sys
tiles = [l.rstrip("\n") for l in open(sys.argv[1])]
areas = [l.strip() for l in open(sys.argv[2]) if l.strip()]
conditions = json.loads(sys.argv[3])
plans = sys.argv[4:]
api = "/planscape-backend"
planning = []
for i, area in enumerate(areas):
    body = json.dumps({"region": "sierra_nevada", "conditions": conditions, "geometry": json.loads(area)},
                      separators=(",", ":"))
    planning.append(f"POST\t{api}/conditions/stats\t{body}")
    plan = plans[i % len(plans)]
    planning.append(f"{api}/plans/{plan}")
    planning.append(f"{api}/plans/{plan}/scores")
for i, t in enumerate(tiles):
    print(t)
    if i % 16 == 15:
        print(planning[(i // 16) % len(planning)])
PY

# Memory sampled every second (RSS of the server process, KiB).
: > "$WORK/rss.txt"
( while kill -0 "$PID" 2>/dev/null; do ps -o rss= -p "$PID" >> "$WORK/rss.txt" || true; sleep 1; done ) &
SAMPLER=$!
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s --latency -s benches/soak.lua "$BASE" -- "$WORK/mix.txt" "$token" > "$WORK/wrk.out"
metrics="$(curl -fsS "http://127.0.0.1:$PORT/metrics")"
kill "$SAMPLER" 2>/dev/null || true
SAMPLER=""
gauge() { echo "$metrics" | awk -v n="$1" '$1 == n { printf "%.0f", $2 / 1048576 }'; }
requests="$(awk '/requests in/ { print $1 }' "$WORK/wrk.out")"
rps="$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out")"
p99="$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.out")"
non2xx="$(awk '/Non-2xx/ { print $NF }' "$WORK/wrk.out")"
sockets="$(awk '/Socket errors/ { sub(/^ */, ""); print }' "$WORK/wrk.out")"
max_mb="$(sort -n "$WORK/rss.txt" | tail -1 | awk '{ printf "%.0f", $1 / 1024 }')"
last_mb="$(tail -1 "$WORK/rss.txt" | awk '{ printf "%.0f", $1 / 1024 }')"
samples="$(wc -l < "$WORK/rss.txt")"
gdal_max="$(gauge gdal_cache_max_bytes)"
{
  echo "## Soak"
  echo
  echo "\`VIEWS=$VIEWS${CACHE_MB:+ CACHE_MB=$CACHE_MB} benches/soak.sh $DURATION $CONNECTIONS\`, measured $(date -u +%Y-%m-%d) on $(nproc) cores: wrk -t2 -c$CONNECTIONS for"
  echo "$DURATION s through nginx; map views of \`benches/mix.py $VIEWS\` ($(sort -u "$WORK/tiles.txt" | wc -l) distinct requests; vector and raster tiles, TileJSON)"
  echo "with, every 16 requests, a signed-in planning request (statistics of all $(echo "$conditions" | tr ',' '\n' | wc -l) catalog"
  echo "conditions over one of 24 areas of 2,000 to 200,000 acres, a plan read, a plan's scores)."
  echo "Server: release build, the demo configuration (tile cache ${cache_mb} MiB, GDAL block cache ${gdal_max} MiB)."
  echo
  echo "| requests | req/s | p99 | non-2xx | socket errors | largest RSS | RSS at the end | budget (tile cache + 150 MiB) |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  echo "| $requests | $rps | $p99 | ${non2xx:-0} | ${sockets:-none} | $max_mb MiB | $last_mb MiB | $((cache_mb + 150)) MiB |"
  echo
  echo "At the end (/metrics): tile cache $(gauge tile_cache_bytes) MiB held, GDAL block cache $(gauge gdal_cache_bytes) MiB of"
  echo "$gdal_max MiB; $samples one-second RSS samples in \`.data/bench/soak/rss.txt\`."
  echo "RSS at the end by part: anonymous $(gauge process_resident_anonymous_bytes) MiB, mapped files $(gauge process_resident_file_bytes) MiB,"
  echo "shared memory (the tile cache's bodies in its memory file) $(gauge process_resident_shared_bytes) MiB;"
  echo "the C allocator: $(gauge allocator_in_use_bytes) MiB in use, $(gauge allocator_free_bytes) MiB free but kept."
} > "$WORK/soak.md"
# The report goes to .data/bench/soak/soak.md and standard output, not into
# docs/loadtest.md: its Soak section is a history of runs, to which a run is added by hand.
cat "$WORK/soak.md"
