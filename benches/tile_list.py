#!/usr/bin/env python3
"""Prints N distinct tile paths z/x/y over the demo region for zooms MIN..MAX.

Deterministic (fixed seed): only tiles that touch the Sierra Nevada demo outline
(the same ring as src/demo/region.rs), every zoom gets an equal share, low zooms
contribute all the tiles they have, and the remainder is filled from the higher zooms.
"""
import math
import random
import sys

WEST, SOUTH, EAST, NORTH = -121.6, 35.0, -117.9, 40.7
REGION = [(-121.60, 40.40), (-121.30, 39.60), (-121.10, 39.00), (-120.80, 38.40), (-120.40, 37.80),
          (-119.90, 37.20), (-119.40, 36.60), (-119.00, 36.00), (-118.90, 35.40), (-118.70, 35.00),
          (-118.20, 35.20), (-118.00, 35.80), (-118.10, 36.50), (-118.40, 37.20), (-118.80, 37.90),
          (-119.30, 38.50), (-119.70, 39.10), (-120.00, 39.60), (-120.30, 40.10), (-120.70, 40.60),
          (-121.20, 40.70), (-121.60, 40.40)]


def inside(lon, lat):
    result = False
    for (x1, y1), (x2, y2) in zip(REGION, REGION[1:]):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


def lonlat(x, y, z):
    k = 2 ** z
    lon = x / k * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / k))))
    return lon, lat


def touches(z, x, y):
    """Whether the tile touches the region (5x5 samples, or a region vertex inside it)."""
    for i in range(5):
        for j in range(5):
            if inside(*lonlat(x + i / 4, y + j / 4, z)):
                return True
    w, n_ = lonlat(x, y, z)
    e, s_ = lonlat(x + 1, y + 1, z)
    return any(w <= lon <= e and s_ <= lat <= n_ for lon, lat in REGION)


def tile(lon, lat, z):
    k = 2 ** z
    x = int((lon + 180.0) / 360.0 * k)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * k)
    return x, y


def main():
    n, zmin, zmax = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(2026)
    per_zoom = {}
    for z in range(zmin, zmax + 1):
        x0, y0 = tile(WEST, NORTH, z)
        x1, y1 = tile(EAST, SOUTH, z)
        tiles = [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1) if touches(z, x, y)]
        rng.shuffle(tiles)
        per_zoom[z] = tiles

    chosen = []
    zooms = list(range(zmin, zmax + 1))
    while len(chosen) < n and any(per_zoom.values()):
        for z in zooms:
            if per_zoom[z] and len(chosen) < n:
                chosen.append(per_zoom[z].pop())
    rng.shuffle(chosen)
    for z, x, y in chosen:
        print(f"{z}/{x}/{y}")


if __name__ == "__main__":
    main()
