#!/usr/bin/env bash
# Statistics and scenarios, measured:
#   1. one 30 m raster (the demo's 10,940 x 21,179 Int16 COG) over a 100,000-acre circle:
#      Planscape's engine against PostGIS ST_SummaryStatsAgg(ST_Clip(...)) (raster2pgsql,
#      256 px tiles, in-db), rasterstats and exactextract (PyPI), side by side;
#   2. all conditions of the demo catalog for the same area through the HTTP API;
#   3. a scenario with 10-acre stands over a 500,000-acre circle and 10 weighted
#      conditions, end to end (POST, background run, poll).
#   4. with --30m: all 55 conditions at 30 m (tiles/demo-30m.toml) over 100,000 and
#      500,000 acres through the HTTP API (see the end of the script).
#   benches/stats.sh [RUNS]          # 1-3
#   benches/stats.sh [RUNS] --30m    # 4 alone
# Sets up what it needs (packages, embedded PostGIS, demo data incl. the large raster,
# conditions build, release build, a venv with rasterstats and exactextract).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${1:-15}"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
WORK="$ROOT/.data/bench/stats"
COG="$ROOT/.data/rasters/aboveground_biomass_30m.tif"
mkdir -p "$WORK"
bench_setup postgis curl python3-venv

# 1-3 (the default run; `--30m` runs part 4 alone).
if [ "${2:-}" != "--30m" ]; then
"$BIN" --config tiles/demo.toml demo --large-raster >&2
"$BIN" --config tiles/demo.toml conditions build >&2

# Circles of 100,000 and 500,000 acres in the Sierra Nevada (radius from the area).
circle_geojson -119.75 37.55 100000 > "$WORK/100k.geojson"
circle_geojson -119.75 37.55 500000 > "$WORK/500k.geojson"

echo "| tool | 30 m raster, 100,000 acres | median ms |"
echo "|---|---|---:|"
ours="$("$BIN" conditions stats "$COG" --geojson "$WORK/100k.geojson" --repeat "$RUNS")"
echo "| planscape (engine) | count $(echo "$ours" | sed -n 's/.*"count":\([0-9]*\).*/\1/p') | $(echo "$ours" | sed -n 's/.*"median_ms":\([0-9.]*\).*/\1/p') |"

# PostGIS raster, tiled in-db (loaded once).
if [ "$(psql "$DATABASE_URL" -Atc "SELECT to_regclass('bench.biomass30') IS NOT NULL")" != t ]; then
  psql "$DATABASE_URL" -qc "CREATE EXTENSION IF NOT EXISTS postgis_raster SCHEMA public; CREATE SCHEMA IF NOT EXISTS bench" >&2
  raster2pgsql -q -s 3857 -t 256x256 -I "$COG" bench.biomass30 | psql "$DATABASE_URL" -q >/dev/null
fi
poly="$(cat "$WORK/100k.geojson")"
for _ in $(seq 1 "$RUNS"); do
  psql "$DATABASE_URL" -At -v poly="$poly" <<'SQL' | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
\timing on
SELECT (ST_SummaryStatsAgg(ST_Clip(rast, g, true), 1, true)).count
FROM bench.biomass30, (SELECT ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:'poly'), 4326), 3857) AS g) AS p
WHERE ST_Intersects(rast, g);
SQL
done | median > "$WORK/postgis.ms"
count="$(psql "$DATABASE_URL" -At -v poly="$poly" <<'SQL'
SELECT (ST_SummaryStatsAgg(ST_Clip(rast, g, true), 1, true)).count
FROM bench.biomass30, (SELECT ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:'poly'), 4326), 3857) AS g) AS p
WHERE ST_Intersects(rast, g);
SQL
)"
echo "| PostGIS $(psql "$DATABASE_URL" -Atc "SELECT postgis_lib_version()") ST_SummaryStatsAgg(ST_Clip) | count $count | $(cat "$WORK/postgis.ms") |"

VENV="$ROOT/.data/tools/zonal"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import rasterstats, exactextract" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q rasterstats exactextract >&2
fi
"$VENV/bin/python" - "$COG" "$WORK/100k.geojson" "$RUNS" <<'PY'
import json, statistics, sys, time
import rasterio
from rasterio.warp import transform_geom
from rasterstats import zonal_stats
from exactextract import exact_extract
cog, poly_file, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
geom = transform_geom("EPSG:4326", "EPSG:3857", json.load(open(poly_file)))
feature = {"type": "Feature", "properties": {}, "geometry": geom}
def timed(f):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter(); out = f(); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out
ms, out = timed(lambda: zonal_stats([geom], cog, stats=["count", "min", "max", "mean", "sum"])[0])
print(f"| rasterstats (pixel centres) | count {out['count']} | {ms:.1f} |")
ms, out = timed(lambda: exact_extract(cog, [feature], ["count", "min", "max", "mean", "sum"])[0])
print(f"| exactextract (coverage-weighted) | count {out['properties']['count']:.0f} | {ms:.1f} |")
PY

# 2 and 3 through the HTTP API of a running server.
PLANSCAPE_LISTEN=127.0.0.1:18090 RUST_LOG=warn "$BIN" --config tiles/demo.toml serve 2>"$WORK/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do curl -fs -o /dev/null http://127.0.0.1:18090/ready && break; sleep 0.2; done
API=http://127.0.0.1:18090/planscape-backend
token="$(signup_token "$API")"
all="$(catalog_conditions "$API")"
body="{\"region\":\"sierra_nevada\",\"conditions\":$all,\"geometry\":$(cat "$WORK/100k.geojson")}"
for _ in $(seq 1 "$RUNS"); do
  curl -fsS -o /dev/null -w '%{time_total}\n' "$API/conditions/stats" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$body"
done | awk '{ print $1 * 1000 }' | median > "$WORK/api.ms"
echo
echo "| request | conditions | median ms |"
echo "|---|---:|---:|"
echo "| POST /conditions/stats, 100,000 acres | $(echo "$all" | tr ',' '\n' | wc -l) | $(cat "$WORK/api.ms") |"

plan="$(curl -fsS "$API/plans" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"name\":\"bench 500k\",\"region\":\"sierra_nevada\",\"geometry\":$(cat "$WORK/500k.geojson")}")"
plan_id="$(echo "$plan" | sed -n 's/^{"id":\([0-9]*\).*/\1/p')"
priorities="$(echo "$all" | /usr/bin/python3 -c "import json,sys; n=json.load(sys.stdin)[:10]; print(json.dumps([{'condition': c, 'weight': i + 1} for i, c in enumerate(n)]))")"
t0="$(date +%s.%N)"
sid="$(curl -fsS "$API/plans/$plan_id/scenarios" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"name\":\"bench\",\"stand_size_acres\":10,\"max_treatment_share\":0.3,\"max_project_areas\":10,\"priorities\":$priorities}" \
  | sed -n 's/^{"id":\([0-9]*\).*/\1/p')"
while :; do
  s="$(curl -fsS "$API/scenarios/$sid" -H "authorization: Bearer $token")"
  case "$s" in *'"status":"done"'*|*'"status":"failed"'*) break ;; esac
  sleep 0.02
done
t1="$(date +%s.%N)"
echo "$s" | /usr/bin/python3 -c "
import json, sys
s = json.load(sys.stdin)
m = s['summary'] or {}
print(f\"| scenario, 500,000 acres, 10-acre stands, 10 conditions | status {s['status']}, {m.get('stands')} stands, {m.get('project_areas')} project areas | run {m.get('seconds', 0) * 1000:.0f} ms; POST to done $(echo "($t1 - $t0) * 1000" | bc -l | cut -d. -f1) ms |\")"

fi
# 4. (benches/stats.sh RUNS --30m) All 55 conditions at 30 m, the original's resolution:
#    tiles/demo-30m.toml (rasters generated on first use into .data/rasters-30m and
#    .data/conditions-30m, minutes, under nice), 100,000 and 500,000 acres over HTTP.
#    "new area": one server, each request a circle it has not seen (distinct centres
#    along the range, so neither the statistics memo nor GDAL's block cache holds it);
#    "disk cold": the same, but first every 30 m raster's pages are dropped from the
#    page cache (`dd iflag=nocache`), so the request reads what it needs from the disk;
#    "new area" right after it, over the same circle less 2 acres (a new area for the
#    memo and GDAL's block cache, its pages in the page cache); "fresh server": the
#    server started anew before each request (datasets opened by the request itself;
#    the pages cached by an unmeasured request just before); "memo": the same request
#    again.
if [ "${2:-}" = "--30m" ]; then
  CFG30=tiles/demo-30m.toml
  t0="$(date +%s.%N)"
  nice -n 19 "$BIN" --config $CFG30 demo >&2
  t1="$(date +%s.%N)"
  if ! have_30m_rasters; then
    nice -n 19 "$BIN" --config $CFG30 conditions build >&2
  fi
  t2="$(date +%s.%N)"
  echo
  echo "30 m rasters: demo $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s, conditions build $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.0f", b - a }') s (about 0 when already made);" \
    "disk: $(du -sh .data/rasters-30m | cut -f1) metrics, $(du -sh .data/conditions-30m | cut -f1) elements and pillars"
  start30() {
    # A server left on the port would answer instead (and this one fail to start).
    require_free_port 18091
    PLANSCAPE_LISTEN=127.0.0.1:18091 RUST_LOG=warn "$BIN" --config $CFG30 serve 2>>"$WORK/server30.log" &
    PID=$!
    wait_for http://127.0.0.1:18091/ready
  }
  API30=http://127.0.0.1:18091/planscape-backend
  post30() { # body-file -> ms
    curl -fsS -o "$WORK/out30.json" -w '%{time_total}\n' "$API30/conditions/stats" -H "authorization: Bearer $token30" \
      -H 'content-type: application/json' -d "@$1" | awk '{ print $1 * 1000 }'
  }
  body30() { # lon lat acres -> body file
    echo "{\"region\":\"sierra_nevada\",\"conditions\":$all,\"geometry\":$(circle_geojson "$1" "$2" "$3")}" > "$WORK/body30.json"
    echo "$WORK/body30.json"
  }
  start30
  all="$(catalog_conditions "$API30")"
  token30="$(signup_token "$API30" bench30)"
  echo
  echo "| 55 conditions at 30 m, POST /conditions/stats | new area, disk cold, median ms | new area, median ms | fresh server, median ms | memo, median ms | pixels read |"
  echo "|---|---:|---:|---:|---:|---:|"
  for acres in 100000 500000; do
    kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true
    start30
    : > "$WORK/cold.ms"; : > "$WORK/new.ms"; : > "$WORK/memo.ms"
    for k in $(seq 0 $((RUNS - 1))); do
      read -r lon lat <<< "$(range_centre $((k + 1)) "$RUNS")"
      evict_30m_rasters
      post30 "$(body30 "$lon" "$lat" "$((acres + 2))")" >> "$WORK/cold.ms"
      b="$(body30 "$lon" "$lat" "$acres")"
      post30 "$b" >> "$WORK/new.ms"
      post30 "$b" >> "$WORK/memo.ms"
    done
    pixels="$(/usr/bin/python3 -c "import json; print(sum(r['count'] + r['nodata'] for r in json.load(open('$WORK/out30.json'))['results']))")"
    : > "$WORK/fresh.ms"
    for k in $(seq 0 $((RUNS - 1))); do
      read -r lon lat <<< "$(range_centre $((k + 1)) "$RUNS")"
      # The area's pages back in the page cache (the eviction above dropped them).
      post30 "$(body30 "$lon" "$lat" "$((acres + 3))")" > /dev/null
      kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true
      start30
      post30 "$(body30 "$lon" "$lat" "$((acres + 1))")" >> "$WORK/fresh.ms"
    done
    echo "| $acres acres | $(median < "$WORK/cold.ms") | $(median < "$WORK/new.ms") | $(median < "$WORK/fresh.ms") | $(median < "$WORK/memo.ms") | $pixels |"
  done
fi
