#!/usr/bin/env bash
# Load test of raster tiles: Planscape against TiTiler, side by side, on the same 30 m
# Int16 COG (the demo's `aboveground_biomass_30m`, ~11,700 x 21,700 px) with a viridis
# colormap over [0, 300], and the same list of distinct z7-z13 tiles, with wrk.
#
#   benches/load_raster.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Sets up what it needs (packages, embedded PostGIS for the demo command, the large demo
# raster, release build, wrk, TiTiler in a venv under .data/). Runs: Planscape cold
# (cache off), TiTiler (no tile cache; 2 uvicorn workers for the 2 cores), Planscape
# warm (cache primed). Prints a Markdown table. Loopback only, bounded duration.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-20}"
CONNECTIONS="${2:-8}"
TILES="${TILES:-2000}"
WORK="$ROOT/.data/bench"
COG="$ROOT/.data/rasters/aboveground_biomass_30m.tif"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

bench_setup wrk
"$BIN" --config tiles/demo.toml demo --large-raster >&2
VENV="$ROOT/.data/titiler-venv"
if [ ! -x "$VENV/bin/uvicorn" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q titiler.application uvicorn >&2
fi

/usr/bin/python3 benches/tile_list.py "$TILES" 7 13 > "$WORK/raster-tiles.txt"
sed 's|^|/tiles/biomass30/|; s|$|.png|' "$WORK/raster-tiles.txt" > "$WORK/planscape-raster-paths.txt"
sed "s|^|/cog/tiles/WebMercatorQuad/|; s|\$|.png?url=$COG\&rescale=0,300\&colormap_name=viridis|" \
  "$WORK/raster-tiles.txt" > "$WORK/titiler-paths.txt"

start_planscape() { # cache MB
  cat > "$WORK/planscape-raster.toml" <<TOML
listen = "127.0.0.1:18080"
styles_dir = "$ROOT/styles"
[cache]
size_mb = $1
[layers.biomass30]
type = "raster"
path = "$COG"
style = "viridis"
range = [0, 300]
resampling = "nearest"
minzoom = 0
maxzoom = 18
TOML
  RUST_LOG=warn "$BIN" --config "$WORK/planscape-raster.toml" serve 2>"$WORK/planscape.log" &
  PID=$!
  wait_for http://127.0.0.1:18080/ready
}
start_titiler() {
  (cd "$WORK" && exec "$VENV/bin/uvicorn" titiler.application.main:app --host 127.0.0.1 --port 18000 \
     --workers 2 --log-level warning) 2>"$WORK/titiler.log" &
  PID=$!
  wait_for http://127.0.0.1:18000/healthz
}

sed 's|\.png$|.webp|' "$WORK/planscape-raster-paths.txt" > "$WORK/planscape-raster-webp.txt"

echo "| server | run | req/s | p50 | p99 | transfer/s |"
echo "| --- | --- | --- | --- | --- | --- |"
start_planscape 0
echo "| planscape | cold (cache off) | $(run_wrk http://127.0.0.1:18080 "$WORK/planscape-raster-paths.txt") |"
echo "| planscape | cold WebP (cache off) | $(run_wrk http://127.0.0.1:18080 "$WORK/planscape-raster-webp.txt") |"
PLANSCAPE_PNG="$(tile_bytes http://127.0.0.1:18080 "$WORK/planscape-raster-paths.txt")"
PLANSCAPE_WEBP="$(tile_bytes http://127.0.0.1:18080 "$WORK/planscape-raster-webp.txt")"
stop_server
start_titiler
echo "| titiler | cold (no tile cache) | $(run_wrk http://127.0.0.1:18000 "$WORK/titiler-paths.txt") |"
TITILER_PNG="$(tile_bytes http://127.0.0.1:18000 "$WORK/titiler-paths.txt")"
stop_server
start_planscape 2048
prime http://127.0.0.1:18080 "$WORK/planscape-raster-paths.txt"
echo "| planscape | warm | $(run_wrk http://127.0.0.1:18080 "$WORK/planscape-raster-paths.txt") |"
stop_server

echo
echo "| server | format | mean tile size | tiles with data (200) |"
echo "| --- | --- | --- | --- |"
echo "| planscape | PNG | $PLANSCAPE_PNG |"
echo "| planscape | WebP (lossless) | $PLANSCAPE_WEBP |"
echo "| titiler | PNG | $TITILER_PNG |"
