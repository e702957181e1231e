#!/usr/bin/env bash
# A copy of the 30 m demo's rasters (metrics and built conditions) written with another
# codec, and a configuration that serves it, to measure a codec on whole requests:
#
#   benches/recode_30m.sh NAME GDAL_COG_OPTIONS...
#   e.g. benches/recode_30m.sh p2 -co COMPRESS=ZSTD -co LEVEL=1 -co PREDICTOR=STANDARD
#   then CONFIG_B=.data/bench/recode/demo-30m-p2.toml benches/stats_cold.sh BIN BIN
#
# Writes .data/rasters-30m-NAME/ and .data/conditions-30m-NAME/ (COGs with the demo's
# 128 px blocks, COG_BLOCK_SIZE, unless the options give -co BLOCKSIZE=...; the source's
# overviews kept, same values) and .data/bench/recode/demo-30m-NAME.toml (tiles/demo-30m.toml
# reading them). Files already written are kept.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME="${1:?usage: benches/recode_30m.sh NAME GDAL_COG_OPTIONS...}"
shift
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
require_30m_rasters
# GDAL takes the first of repeated creation options: the default block size only when
# none is given.
block=(-co BLOCKSIZE=128)
case " $* " in *" BLOCKSIZE="*) block=() ;; esac
WORK="$ROOT/.data/bench/recode"
mkdir -p "$WORK"
for folder in rasters-30m conditions-30m; do
  from=".data/$folder"
  to=".data/$folder-$NAME"
  # The same tree (built conditions sit in a folder per region); markers beside the
  # rasters (the resolution the demo made them at) come along.
  (cd "$from" && find . -type d) | while read -r dir; do mkdir -p "$to/$dir"; done
  (cd "$from" && find . -type f ! -name '*.tif') | while read -r file; do cp -p "$from/$file" "$to/$file"; done
  (cd "$from" && find . -type f -name '*.tif') | while read -r tif; do
    out="$to/$tif"
    if [ -f "$out" ]; then continue; fi
    gdal_translate -q -of COG "${block[@]}" -co NUM_THREADS=ALL_CPUS "$@" "$from/$tif" "$out.partial.tif"
    mv "$out.partial.tif" "$out"
  done
  echo "$to: $(du -sh "$to" | cut -f1) (from $(du -sh "$from" | cut -f1))"
done
sed -e "s|^rasters = \".data/rasters-30m\"|rasters = \".data/rasters-30m-$NAME\"|" \
  -e "s|^dir = \".data/conditions-30m\"|dir = \".data/conditions-30m-$NAME\"|" \
  tiles/demo-30m.toml > "$WORK/demo-30m-$NAME.toml"
grep -q "rasters-30m-$NAME" "$WORK/demo-30m-$NAME.toml"
grep -q "conditions-30m-$NAME" "$WORK/demo-30m-$NAME.toml"
echo "$WORK/demo-30m-$NAME.toml"
