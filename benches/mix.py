#!/usr/bin/env python3
"""Prints a realistic request mix for the load test, one path a line (fixed seed).

Users pan maps: each "view" is a zoom in 7..13 and a centre inside the demo region; it
asks the layer's TileJSON once, then the 4 x 3 tiles of a 1024 x 768 viewport, then pans
by one tile and asks the new column. Layers alternate between the vector watersheds and
a raster condition layer. Usage: mix.py VIEWS [PREFIX]
"""
import math
import random
import sys

views = int(sys.argv[1])
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
rng = random.Random(2026)
REGION = [(-121.60, 40.40), (-121.10, 39.00), (-120.40, 37.80), (-119.40, 36.60), (-118.90, 35.40),
          (-118.70, 35.00), (-118.20, 35.20), (-118.10, 36.50), (-118.80, 37.90), (-119.70, 39.10),
          (-120.30, 40.10), (-121.20, 40.70), (-121.60, 40.40)]


def inside(lon, lat):
    result = False
    for (x1, y1), (x2, y2) in zip(REGION, REGION[1:]):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


def tile(lon, lat, z):
    k = 2 ** z
    return (int((lon + 180.0) / 360.0 * k),
            int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * k))


layers = [("watersheds", "mvt"), ("tree_mortality_normalized", "png"),
          ("watersheds", "mvt"), ("aboveground_biomass", "png")]
for v in range(views):
    while True:
        lon, lat = rng.uniform(-121.6, -117.9), rng.uniform(35.0, 40.7)
        if inside(lon, lat):
            break
    z = rng.randint(7, 13)
    layer, ext = layers[v % len(layers)]
    cx, cy = tile(lon, lat, z)
    print(f"{prefix}/tiles/{layer}")
    for dy in range(-1, 2):
        for dx in range(-2, 2):
            print(f"{prefix}/tiles/{layer}/{z}/{cx + dx}/{cy + dy}.{ext}")
    for dy in range(-1, 2):
        print(f"{prefix}/tiles/{layer}/{z}/{cx + 2}/{cy + dy}.{ext}")
