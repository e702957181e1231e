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

from tile_list import REGION, inside  # the same demo outline and point-in-polygon test

views = int(sys.argv[1])
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
rng = random.Random(2026)
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
