#!/usr/bin/env bash
# Load test: Planscape against Martin, side by side, on the same PostGIS table and the
# same list of distinct tiles (z5-z12 over the demo region), with wrk.
#
#   benches/load.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Sets up what it needs (packages, embedded PostGIS, demo data, release build, wrk, and
# Martin 1.14.0 under .data/tools when not on PATH), runs, for each server:
#   cold  - cache off: every request renders
#   warm  - cache on and primed with every tile of the list
#   warm+gzip - the same with `Accept-Encoding: gzip`
# and prints a Markdown table (req/s, p50, p99, transfer). Bounded: each run is
# DURATION seconds against 127.0.0.1 only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-20}"
CONNECTIONS="${2:-8}"
TILES="${TILES:-2000}"
WORK="$ROOT/.data/bench"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

bench_setup wrk
"$BIN" --config tiles/demo.toml demo >&2

MARTIN="${MARTIN:-$(command -v martin || true)}"
if [ -z "$MARTIN" ]; then
  MARTIN="$ROOT/.data/tools/bin/martin"
  if [ ! -x "$MARTIN" ]; then
    echo "installing martin 1.14.0 (once, several minutes)" >&2
    cargo install martin@1.14.0 --locked --no-default-features --features postgres --root "$ROOT/.data/tools" >&2
  fi
fi

/usr/bin/python3 benches/tile_list.py "$TILES" 5 12 > "$WORK/tiles.txt"
sed 's|^|/tiles/watersheds/|; s|$|.mvt|' "$WORK/tiles.txt" > "$WORK/planscape-paths.txt"
sed 's|^|/watersheds/|' "$WORK/tiles.txt" > "$WORK/martin-paths.txt"

cat > "$WORK/martin.yaml" <<YAML
postgres:
  connection_string: '$DATABASE_URL'
  pool_size: 16
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

start_planscape() { # cache MB
  sed -e "s|^listen = .*|listen = \"127.0.0.1:18080\"|" -e "s|^size_mb = .*|size_mb = $1|" tiles/demo.toml > "$WORK/planscape.toml"
  RUST_LOG=warn "$BIN" --config "$WORK/planscape.toml" serve 2>"$WORK/planscape.log" &
  PID=$!
  wait_for http://127.0.0.1:18080/ready
}

start_martin() { # cache MB
  RUST_LOG=warn "$MARTIN" --config "$WORK/martin.yaml" --listen-addresses 127.0.0.1:13000 --cache-size "$1" 2>"$WORK/martin.log" &
  PID=$!
  wait_for http://127.0.0.1:13000/health
}

echo "| server | run | req/s | p50 | p99 | transfer/s |"
echo "| --- | --- | --- | --- | --- | --- |"
start_planscape 0
echo "| planscape | cold (cache off) | $(run_wrk http://127.0.0.1:18080 "$WORK/planscape-paths.txt") |"
stop_server
start_martin 0
echo "| martin 1.14.0 | cold (cache off) | $(run_wrk http://127.0.0.1:13000 "$WORK/martin-paths.txt") |"
stop_server
start_planscape 2048
prime http://127.0.0.1:18080 "$WORK/planscape-paths.txt"
echo "| planscape | warm | $(run_wrk http://127.0.0.1:18080 "$WORK/planscape-paths.txt") |"
echo "| planscape | warm, gzip | $(run_wrk http://127.0.0.1:18080 "$WORK/planscape-paths.txt" 'Accept-Encoding: gzip') |"
stop_server
start_martin 2048
prime http://127.0.0.1:13000 "$WORK/martin-paths.txt"
echo "| martin 1.14.0 | warm | $(run_wrk http://127.0.0.1:13000 "$WORK/martin-paths.txt") |"
echo "| martin 1.14.0 | warm, gzip | $(run_wrk http://127.0.0.1:13000 "$WORK/martin-paths.txt" 'Accept-Encoding: gzip') |"
stop_server
