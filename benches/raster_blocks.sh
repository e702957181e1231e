#!/usr/bin/env bash
# Raster tiles from the same 30 m raster written with two block sizes: one server, two
# layers (the demo's 30 m raster and its copy by benches/recode_30m.sh), cache off, the
# same distinct z7-z13 tiles, wrk taking turns for ROUNDS rounds. Answers what a block
# size chosen for statistics costs the map.
#
#   benches/raster_blocks.sh NAME [RASTER] [DURATION_SECONDS] [ROUNDS]
#   e.g. benches/recode_30m.sh b128 -co BLOCKSIZE=128 -co COMPRESS=ZSTD -co LEVEL=1
#        benches/raster_blocks.sh b128 pacific_fisher_normalized.tif
#
# RASTER is a file name of .data/rasters-30m (a normalized metric by default, drawn with
# the catalog's normalized style over [-1, 1]).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME="${1:?usage: benches/raster_blocks.sh NAME [RASTER] [DURATION_SECONDS] [ROUNDS]}"
RASTER="${2:-pacific_fisher_normalized.tif}"
DURATION="${3:-15}"
ROUNDS="${4:-3}"
CONNECTIONS="${CONNECTIONS:-8}"
TILES="${TILES:-2000}"
WORK="$ROOT/.data/bench/raster_blocks"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
A=".data/rasters-30m/$RASTER"
B=".data/rasters-30m-$NAME/$RASTER"
for f in "$A" "$B"; do
  if [ ! -f "$f" ]; then echo "$f is missing (benches/recode_30m.sh $NAME ...)" >&2; exit 1; fi
done
bench_setup wrk
require_free_port 18097

layer() { # name path
  cat <<TOML
[layers.$1]
type = "raster"
path = "$ROOT/$2"
style = "normalized"
range = [-1, 1]
minzoom = 0
maxzoom = 18
TOML
}
{
  echo 'listen = "127.0.0.1:18097"'
  echo "styles_dir = \"$ROOT/styles\""
  printf '[cache]\nsize_mb = 0\n'
  layer a "$A"
  layer b "$B"
} > "$WORK/blocks.toml"
/usr/bin/python3 benches/tile_list.py "$TILES" 7 13 > "$WORK/tiles.txt"
for l in a b; do sed "s|^|/tiles/$l/|; s|\$|.png|" "$WORK/tiles.txt" > "$WORK/$l.txt"; done
RUST_LOG=warn "$BIN" --config "$WORK/blocks.toml" serve 2> "$WORK/server.log" &
PID=$!
wait_for http://127.0.0.1:18097/ready
block() { gdalinfo "$1" | sed -n 's/.*Block=\([0-9x]*\).*/\1/p' | head -1; }
echo "| round | layout | blocks | file | req/s | p50 | p99 | transfer/s |"
echo "| --- | --- | --- | ---: | --- | --- | --- | --- |"
for round in $(seq 1 "$ROUNDS"); do
  # Taking turns at going first.
  order="a b"; if [ $((round % 2)) = 0 ]; then order="b a"; fi
  for l in $order; do
    f="$A"; if [ "$l" = b ]; then f="$B"; fi
    echo "| $round | $l | $(block "$f") | $(du -h "$f" | cut -f1) | $(run_wrk http://127.0.0.1:18097 "$WORK/$l.txt") |"
  done
done
