#!/usr/bin/env bash
# Bytes on disk against decoding time for the codecs a 30 m Float32 condition raster could
# be written with: the same raster re-encoded as a COG (256 px blocks, no overviews) with
# ZSTD level 1 (what `planscape import --codec fast-decode` and the 30 m demo write), ZSTD
# level 9, and ZSTD level 1 with the horizontal (PREDICTOR=2) and floating-point
# (PREDICTOR=3) predictors; then one thread reads 1,500 x 1,500 px windows (~500,000
# acres at 30 m) at three places, three rounds, GDAL's block cache dropped between rounds
# and the files in the page cache, so the figure is decoding, not the disk.
#
#   benches/codec_trade.sh [RASTER]
#
# RASTER defaults to one of the 30 m demo's metrics, made by
# `planscape --config tiles/demo-30m.toml demo` (about 20 s a metric).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RASTER="${1:-.data/rasters-30m/high_severity_potential_smoke_emissions.tif}"
WORK="$ROOT/.data/bench/codec"
if [ ! -f "$RASTER" ]; then
  echo "no $RASTER: make the 30 m rasters first (planscape --config tiles/demo-30m.toml demo)" >&2
  exit 1
fi
scripts/setup-debian.sh >&2
mkdir -p "$WORK"

variants=(
  "zstd1|-co COMPRESS=ZSTD -co LEVEL=1"
  "zstd9|-co COMPRESS=ZSTD -co LEVEL=9"
  "zstd1-predictor2|-co COMPRESS=ZSTD -co LEVEL=1 -co PREDICTOR=STANDARD"
  "zstd1-predictor3|-co COMPRESS=ZSTD -co LEVEL=1 -co PREDICTOR=FLOATING_POINT"
)
files=()
for variant in "${variants[@]}"; do
  name="${variant%%|*}"
  read -r -a options <<< "${variant#*|}"
  gdal_translate -q -of COG -co BLOCKSIZE=256 -co OVERVIEWS=NONE "${options[@]}" "$RASTER" "$WORK/$name.tif"
  cat "$WORK/$name.tif" > /dev/null
  files+=("$WORK/$name.tif")
done

echo "raster: $RASTER"
echo
echo "| codec | MB | decode ms per 1,500^2 px window, median (min) |"
echo "| --- | ---: | ---: |"
/usr/bin/python3 - "${files[@]}" <<'PY'
import os
import sys
import time

from osgeo import gdal

gdal.UseExceptions()
gdal.SetCacheMax(64 * 1024 * 1024)
gdal.SetConfigOption("GDAL_NUM_THREADS", "1")
places = ((3000, 8000), (5000, 10000), (4000, 12000))
for path in sys.argv[1:]:
    dataset = gdal.Open(path)
    band = dataset.GetRasterBand(1)
    times = []
    for _ in range(3):
        for x, y in places:
            start = time.perf_counter()
            band.ReadRaster(x, y, 1500, 1500)
            times.append(time.perf_counter() - start)
        dataset.FlushCache()
    times.sort()
    name = os.path.basename(path)[:-4]
    mb = os.path.getsize(path) / 1e6
    print(f"| {name} | {mb:.1f} | {times[len(times) // 2] * 1e3:.1f} ({times[0] * 1e3:.1f}) |")
PY
