#!/usr/bin/env bash
# Batch pregeneration, side by side with the tools the original used or that peers ship:
#   raster: `planscape seed` of the 30 m demo COG (viridis over [0, 300]) z7-z13 into the
#           folder store and into S3 (moto on loopback), against gdal2tiles.py --xyz on
#           the same input, zooms and colors (gdaldem color-relief VRT, 2 processes);
#   vector: `planscape seed` of the demo watersheds z0-z12 into the folder store, against
#           martin-cp 1.14.0 (MBTiles output) on the same table and zooms.
#   benches/seed.sh [raster|vector|all]
# Sets up what it needs (packages, embedded PostGIS, demo data incl. the large raster,
# release build, moto, martin-cp under .data/tools). Prints a Markdown table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHAT="${1:-all}"
WORK="$ROOT/.data/bench/seed"
COG="$ROOT/.data/rasters/aboveground_biomass_30m.tif"
CORES="$(nproc)"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

bench_setup gdal-bin python3-gdal bc
"$BIN" --config tiles/demo.toml demo --large-raster >&2

cat > "$WORK/bench.toml" <<TOML
styles_dir = "$ROOT/styles"
[store]
url = "file://$WORK/planscape-fs"
endpoint = "http://127.0.0.1:54330"
path_style = true
region = "us-east-1"
[regions]
table = "demo.regions"
[layers.biomass30]
type = "raster"
path = "$COG"
style = "viridis"
range = [0, 300]
maxzoom = 18
[layers.watersheds]
type = "vector"
table = "demo.watersheds"
id = "id"
properties = ["huc12", "name", "area_acres", "elevation_m", "fire_risk"]
TOML

# Seconds of wall time of a command (its output to a log).
timed() { # log command...
  local log="$1"; shift
  local t0 t1
  t0="$(date +%s.%N)"
  "$@" >"$log" 2>&1
  t1="$(date +%s.%N)"
  echo "$t1 - $t0" | bc -l
}
count_files() { find "$1" -type f -name "*.$2" | wc -l; }
row() { # tool what tiles seconds
  printf '| %s | %s | %s | %.1f | %.0f |\n' "$1" "$2" "$3" "$4" "$(echo "$3 / $4" | bc -l)"
}

echo "| tool | run | tiles written | seconds | tiles/s |"
echo "|---|---|---:|---:|---:|"

if [ "$WHAT" = raster ] || [ "$WHAT" = all ]; then
  cat "$COG" > /dev/null   # same page-cache state for every tool
  rm -rf "$WORK/planscape-fs" "$WORK/g2t"
  s="$(timed "$WORK/seed-fs.log" "$BIN" --config "$WORK/bench.toml" seed biomass30 --zoom 7-13 --concurrency "$((CORES * 2))")"
  row "planscape seed" "raster z7-13, folder" "$(count_files "$WORK/planscape-fs/biomass30" png)" "$s"

  rm -rf "$WORK/planscape-fs"
  s="$(timed "$WORK/seed-region.log" "$BIN" --config "$WORK/bench.toml" seed biomass30 --zoom 7-13 --region sierra_nevada --concurrency "$((CORES * 2))")"
  row "planscape seed" "raster z7-13, Sierra Nevada polygon, folder" "$(count_files "$WORK/planscape-fs/biomass30" png)" "$s"

  scripts/s3.sh start >&2
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
  bucket="bench-$(date +%s)"
  curl -fsS -X PUT "http://127.0.0.1:54330/$bucket" -o /dev/null
  s="$(timed "$WORK/seed-s3.log" "$BIN" --config "$WORK/bench.toml" seed biomass30 --zoom 7-13 --to "s3://$bucket/tiles" --concurrency 16 --json)"
  row "planscape seed" "raster z7-13, S3 (moto)" "$(tail -1 "$WORK/seed-s3.log" | sed -n 's/.*"written":\([0-9]*\).*/\1/p')" "$s"

  # gdal2tiles on the same input and colors: a color-relief VRT (colors applied on read).
  /usr/bin/python3 - "$ROOT/styles/viridis.json" > "$WORK/viridis.txt" <<'PY'
import json, sys
style = json.load(open(sys.argv[1]))
lo, hi = 0.0, 300.0
for stop in style["stops"]:
    c = stop["color"].lstrip("#")
    r, g, b = (int(c[i:i + 2], 16) for i in (0, 2, 4))
    print(lo + stop["fraction"] * (hi - lo), r, g, b, 255)
print("nv 0 0 0 0")
PY
  gdaldem color-relief -q -alpha -of VRT "$COG" "$WORK/viridis.txt" "$WORK/colored.vrt"
  s="$(timed "$WORK/g2t.log" gdal2tiles.py --xyz -z 7-13 --processes="$CORES" -r near -w none -q "$WORK/colored.vrt" "$WORK/g2t")"
  row "gdal2tiles.py $(gdalinfo --version | awk '{print $2}' | tr -d ,)" "raster z7-13, $CORES processes" "$(count_files "$WORK/g2t" png)" "$s"
fi

if [ "$WHAT" = vector ] || [ "$WHAT" = all ]; then
  rm -rf "$WORK/planscape-fs/watersheds"
  s="$(timed "$WORK/seed-vector.log" "$BIN" --config "$WORK/bench.toml" seed watersheds --zoom 0-12 --concurrency "$((CORES * 4))" --json)"
  row "planscape seed" "vector z0-12, folder" "$(count_files "$WORK/planscape-fs/watersheds" mvt)" "$s"
  MARTIN_CP="${MARTIN_CP:-$ROOT/.data/tools/bin/martin-cp}"
  if [ ! -x "$MARTIN_CP" ]; then
    echo "installing martin-cp 1.14.0 (once, several minutes)" >&2
    cargo install martin@1.14.0 --locked --no-default-features --features postgres,mbtiles \
      --bin martin-cp --root "$ROOT/.data/tools" >&2
  fi
  cat > "$WORK/martin.yaml" <<YAML
postgres:
  connection_string: "$DATABASE_URL"
  auto_publish: false
  tables:
    watersheds:
      schema: demo
      table: watersheds
      srid: 4326
      geometry_column: geom
      id_column: id
      geometry_type: MULTIPOLYGON
      properties:
        huc12: text
        name: text
        area_acres: float8
        elevation_m: float8
        fire_risk: float8
YAML
  # The same area as planscape's default (the layer's extent).
  bbox="$(psql "$DATABASE_URL" -Atc "SELECT concat_ws(',', ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)) FROM (SELECT ST_Extent(geom) e FROM demo.watersheds) s")"
  rm -f "$WORK/martin.mbtiles"
  s="$(timed "$WORK/martin-cp.log" "$MARTIN_CP" --config "$WORK/martin.yaml" --source watersheds \
        --output-file "$WORK/martin.mbtiles" --min-zoom 0 --max-zoom 12 --bbox="$bbox" \
        --concurrency "$((CORES * 4))" --skip-agg-tiles-hash)"
  n="$(/usr/bin/python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from tiles').fetchone()[0])" "$WORK/martin.mbtiles")"
  row "martin-cp 1.14.0" "vector z0-12, MBTiles" "$n" "$s"
fi
