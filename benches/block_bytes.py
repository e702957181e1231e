#!/usr/bin/python3
"""Bytes of the compressed raster blocks a statistics request over an area must read.

    benches/block_bytes.py AREA.geojson [RASTER ...]

For each raster (default: the 30 m demo's 30 normalized metrics and 25 element and pillar
rasters, the 55 conditions of the catalog), the blocks under the area: per block row,
those between the area's leftmost and rightmost points within the row, as the server's
scan reads them. Sizes are GDAL's (`BLOCK_SIZE_x_y` of the TIFF domain). Prints
"BLOCKS blocks, MB MB". Independent of the server: GDAL's Python bindings and OGR's
geometry operations.
"""
import glob
import sys

from osgeo import gdal, ogr, osr

gdal.UseExceptions()


def main():
    area = ogr.CreateGeometryFromJson(open(sys.argv[1]).read())
    files = sys.argv[2:] or (
        glob.glob(".data/rasters-30m/*normalized*.tif")
        + glob.glob(".data/conditions-30m/*/*.tif")
    )
    lonlat = osr.SpatialReference()
    lonlat.ImportFromEPSG(4326)
    lonlat.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    total = blocks = 0
    for path in files:
        ds = gdal.Open(path)
        band = ds.GetRasterBand(1)
        srs = osr.SpatialReference(wkt=ds.GetProjection())
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        shape = area.Clone()
        shape.Transform(osr.CoordinateTransformation(lonlat, srs))
        gt = ds.GetGeoTransform()
        bw, bh = band.GetBlockSize()
        minx, maxx, miny, maxy = shape.GetEnvelope()
        row0 = max(0, int((maxy - gt[3]) / gt[5]))
        row1 = min(ds.RasterYSize - 1, int((miny - gt[3]) / gt[5]))
        for brow in range(row0 // bh, row1 // bh + 1):
            top, bottom = gt[3] + brow * bh * gt[5], gt[3] + (brow + 1) * bh * gt[5]
            strip = ogr.CreateGeometryFromWkt(
                f"POLYGON(({minx - 1} {bottom},{maxx + 1} {bottom},{maxx + 1} {top},"
                f"{minx - 1} {top},{minx - 1} {bottom}))"
            )
            inside = shape.Intersection(strip)
            if inside is None or inside.IsEmpty():
                continue
            x0, x1, _, _ = inside.GetEnvelope()
            c0 = max(0, int((x0 - gt[0]) / gt[1]))
            c1 = min(ds.RasterXSize - 1, int((x1 - gt[0]) / gt[1]))
            for bcol in range(c0 // bw, c1 // bw + 1):
                size = band.GetMetadataItem(f"BLOCK_SIZE_{bcol}_{brow}", "TIFF")
                if size:
                    total += int(size)
                    blocks += 1
    print(f"{blocks} blocks, {total / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
