#!/usr/bin/python3
"""Fidelity, size and single-client cost of a vector layer's tiles, per zoom.

For each tile, the served MVT (fetched from a running server, decoded by GDAL's MVT
driver) and the exact, unsimplified geometry of the same tile (read from PostGIS,
`ST_Transform` to EPSG:3857, clipped to the tile) are both rasterized by feature id
into a 256 x 256 grid over the tile's EPSG:3857 bounds (`gdal.Rasterize`, pixel centres,
features burnt in id order). Agreement = pixels with the same id / pixels covered in
either. Prints, per zoom: tiles, agreement %, worst tile, mean and max bytes
(identity) and the largest tile gzipped (level 6, as a client would receive it).

With --timing N it also times the first N tiles of each zoom of `benches/tile_list.py`
(one client, one request at a time; run the server with its cache off for cold costs).

Standard library and GDAL's Python bindings only: run with /usr/bin/python3.

    benches/fidelity.py --server http://127.0.0.1:8080 \\
        --db "host=127.0.0.1 port=54329 dbname=planscape user=planscape" \\
        --zooms 5-12 --per-zoom 14 --timing 3
"""
import argparse
import gzip
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array

from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()

HALF = 20037508.342789244
SIZE = 256
HERE = os.path.dirname(os.path.abspath(__file__))


def bounds(z, x, y):
    """EPSG:3857 bounds (xmin, ymin, xmax, ymax) of a tile."""
    span = 2 * HALF / 2 ** z
    return (-HALF + x * span, HALF - (y + 1) * span, -HALF + (x + 1) * span, HALF - y * span)


def tile_list(n, zmin, zmax):
    """The bench's deterministic tile list (z, x, y), in its order."""
    out = subprocess.run([sys.executable, os.path.join(HERE, "tile_list.py"), str(n), str(zmin), str(zmax)],
                         check=True, capture_output=True, text=True).stdout
    return [tuple(int(v) for v in line.split("/")) for line in out.split()]


def fetch(server, layer, z, x, y):
    """(bytes, seconds) of one tile as served (identity encoding)."""
    req = urllib.request.Request(f"{server}/tiles/{layer}/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as resp:
        body = resp.read()
    return body, time.perf_counter() - started


def blank(z, x, y):
    """A 256 x 256 Int32 MEM raster over the tile, zero-filled."""
    xmin, ymin, xmax, ymax = bounds(z, x, y)
    ds = gdal.GetDriverByName("MEM").Create("", SIZE, SIZE, 1, gdal.GDT_Int32)
    ds.SetGeoTransform((xmin, (xmax - xmin) / SIZE, 0, ymax, 0, -(ymax - ymin) / SIZE))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3857)
    ds.SetProjection(srs.ExportToWkt())
    return ds


def burn(z, x, y, features):
    """Rasterizes (id, ogr.Geometry) pairs by id, in id order; returns the pixels."""
    mem = ogr.GetDriverByName("Memory").CreateDataSource("")
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3857)
    layer = mem.CreateLayer("f", srs=srs, geom_type=ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn("fid_", ogr.OFTInteger64))
    for fid, geom in sorted(features, key=lambda f: f[0]):
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("fid_", fid)
        f.SetGeometry(geom)
        layer.CreateFeature(f)
    ds = blank(z, x, y)
    gdal.RasterizeLayer(ds, [1], layer, options=["ATTRIBUTE=fid_"])
    return array("i", ds.GetRasterBand(1).ReadRaster(buf_type=gdal.GDT_Int32))


def served_features(body, z, x, y):
    """Decodes an MVT with GDAL's driver: (id, geometry in EPSG:3857) pairs."""
    if not body:
        return []
    path = os.path.join(tempfile.gettempdir(), f"fidelity-{os.getpid()}.mvt")
    with open(path, "wb") as f:
        f.write(body)
    ds = gdal.OpenEx(path, gdal.OF_VECTOR, allowed_drivers=["MVT"],
                     open_options=[f"Z={z}", f"X={x}", f"Y={y}", "CLIP=NO"])
    out = []
    for i in range(ds.GetLayerCount()):
        for feat in ds.GetLayer(i):
            g = feat.GetGeometryRef()
            if g is not None:
                fid = feat.GetField("mvt_id") if "mvt_id" in feat.keys() else None
                if fid is not None:
                    out.append((int(fid), g.Clone()))
    ds = None
    os.unlink(path)
    return out


def exact_features(pg, args, z, x, y):
    """The exact geometry of the tile's rows from PostGIS, clipped to the tile."""
    xmin, ymin, xmax, ymax = bounds(z, x, y)
    env = f"ST_MakeEnvelope({xmin!r}, {ymin!r}, {xmax!r}, {ymax!r}, 3857)"
    sql = (f"SELECT {args.id} AS fid_, ST_Intersection(ST_Transform({args.geom}, 3857), {env}) AS g "
           f"FROM {args.table} WHERE {args.geom} && ST_Transform({env}, ST_SRID({args.geom})) "
           f"AND ST_Intersects(ST_Transform({args.geom}, 3857), {env})")
    lyr = pg.ExecuteSQL(sql)
    out = []
    for feat in lyr:
        g = feat.GetGeometryRef()
        if g is not None and not g.IsEmpty():
            out.append((feat.GetFieldAsInteger64("fid_"), g.Clone()))
    pg.ReleaseResultSet(lyr)
    return out


def agreement(a, b):
    """(same id over covered-in-either, covered-in-either) of two grids."""
    covered = same = 0
    for p, q in zip(a, b):
        if p or q:
            covered += 1
            if p == q:
                same += 1
    return same, covered


def zoom_range(text):
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--db", default="host=127.0.0.1 port=54329 dbname=planscape user=planscape",
                    help="libpq connection string of the layer's database")
    ap.add_argument("--layer", default="watersheds")
    ap.add_argument("--table", default="demo.watersheds")
    ap.add_argument("--id", default="id")
    ap.add_argument("--geom", default="geom")
    ap.add_argument("--zooms", default="5-12", help="MIN-MAX")
    ap.add_argument("--per-zoom", type=int, default=14, help="tiles per zoom for fidelity (0: skip)")
    ap.add_argument("--timing", type=int, default=0, help="time the first N tiles of each zoom")
    ap.add_argument("--label", default="", help="printed in the table headings")
    args = ap.parse_args()
    zmin, zmax = zoom_range(args.zooms)
    tiles = tile_list(2000, 5, 12)
    by_zoom = {z: [t for t in tiles if t[0] == z] for z in range(zmin, zmax + 1)}

    if args.per_zoom > 0:
        pg = ogr.Open(f"PG:{args.db}")
        print(f"\n| zoom | tiles | agreement | worst tile | mean bytes | max bytes | max gzip bytes |{args.label}")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for z, zt in by_zoom.items():
            same = covered = 0
            worst = (2.0, None)
            sizes, gz = [], []
            for (tz, tx, ty) in zt[:args.per_zoom]:
                body, _ = fetch(args.server, args.layer, tz, tx, ty)
                sizes.append(len(body))
                gz.append(len(gzip.compress(body, 6)))
                a = burn(tz, tx, ty, served_features(body, tz, tx, ty))
                b = burn(tz, tx, ty, exact_features(pg, args, tz, tx, ty))
                s, c = agreement(a, b)
                same += s
                covered += c
                if c and s / c < worst[0]:
                    worst = (s / c, f"{tz}/{tx}/{ty}")
            pct = 100.0 * same / covered if covered else float("nan")
            wtxt = f"{100 * worst[0]:.1f} % ({worst[1]})" if worst[1] else "-"
            print(f"| z{z} | {len(sizes)} | {pct:.2f} % | {wtxt} | {sum(sizes) / len(sizes):,.0f} | {max(sizes):,} | {max(gz):,} |",
                  flush=True)

    if args.timing > 0:
        print(f"\n| zoom | tiles | mean ms | max ms | mean bytes |{args.label}")
        print("| --- | --- | --- | --- | --- |")
        for z, zt in by_zoom.items():
            times, sizes = [], []
            for (tz, tx, ty) in zt[:args.timing]:
                body, secs = fetch(args.server, args.layer, tz, tx, ty)
                times.append(secs * 1e3)
                sizes.append(len(body))
            print(f"| z{z} | {len(times)} | {sum(times) / len(times):.1f} | {max(times):.1f} | "
                  f"{sum(sizes) / len(sizes):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
