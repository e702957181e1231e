//! Zonal statistics against an independent reference: PostGIS raster
//! (`ST_SummaryStats(ST_Clip(...))`, whose clip keeps the pixels whose centre is inside,
//! the same rule) on the real `test_raster.tif`, loaded with `ST_FromGDALRaster`.

mod common;

use common::{Scratch, shared_data};
use geozero::ToGeo;
use planscape::planning::stats::zonal_stats;

fn multipolygon(geojson: &str) -> geo_types::MultiPolygon<f64> {
    match geozero::geojson::GeoJson(geojson)
        .to_geo()
        .expect("geojson")
    {
        geo_types::Geometry::Polygon(p) => geo_types::MultiPolygon(vec![p]),
        geo_types::Geometry::MultiPolygon(mp) => mp,
        other => panic!("not a polygon: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_agree_with_postgis_raster() {
    let scratch = Scratch::new().await;
    let path = shared_data("planscape/test_raster.tif");
    let bytes = std::fs::read(&path).expect("raster");
    let s = &scratch.schema;
    scratch
        .client
        .batch_execute(&format!("CREATE EXTENSION IF NOT EXISTS postgis_raster SCHEMA public; CREATE TABLE {s}.r (rast raster)"))
        .await
        .expect("table");
    scratch
        .client
        .execute(
            &format!("INSERT INTO {s}.r VALUES (ST_FromGDALRaster($1, 3857))"),
            &[&bytes],
        )
        .await
        .expect("load raster");
    // Polygons in EPSG:4326, made by PostGIS around the raster's centre.
    let centre = "ST_Transform(ST_Centroid(ST_Envelope((SELECT rast FROM {s}.r))), 4326)";
    let shapes = [
        // A 2 km buffer around the centre.
        format!("ST_Buffer({centre}::geography, 2000)::geometry"),
        // A 6 km buffer minus a 2 km hole.
        format!(
            "ST_Difference(ST_Buffer({centre}::geography, 6000)::geometry, ST_Buffer({centre}::geography, 2000)::geometry)"
        ),
        // A square half outside the raster (its centre on the raster's west edge).
        format!(
            "ST_Transform(ST_Expand(ST_SetSRID(ST_MakePoint(ST_XMin(ST_Envelope((SELECT rast FROM {s}.r))), \
             ST_Y(ST_Centroid(ST_Envelope((SELECT rast FROM {s}.r))))), 3857), 5000), 4326)"
        ),
        // A thin diagonal sliver.
        format!(
            "ST_Transform(ST_SetSRID(ST_MakePolygon(ST_MakeLine(ARRAY[\
               ST_MakePoint(ST_XMin(e), ST_YMin(e)), ST_MakePoint(ST_XMin(e) + 300, ST_YMin(e)), \
               ST_MakePoint(ST_XMax(e), ST_YMax(e)), ST_MakePoint(ST_XMin(e), ST_YMin(e))])), 3857), 4326) \
             FROM (SELECT ST_Envelope((SELECT rast FROM {s}.r)) e) x"
        ),
    ];
    // The same pixels in 64 px blocks (the file itself is in strips of 5 rows): the scan
    // reads block row by block row, from windows that start inside a block, and must
    // add the same pixels in the same order.
    let tiled = std::env::temp_dir().join(format!("{}.tif", common::unique("zonal-tiled")));
    let gtiff = gdal::DriverManager::get_driver_by_name("GTiff").expect("GTiff");
    gdal::Dataset::open(&path)
        .expect("open")
        .create_copy(
            &gtiff,
            &tiled,
            &gdal::raster::RasterCreationOptions::from_iter([
                "TILED=YES",
                "BLOCKXSIZE=64",
                "BLOCKYSIZE=64",
                "COMPRESS=ZSTD",
            ]),
        )
        .expect("tiled copy");
    for shape in &shapes {
        let shape = shape.replace("{s}", s);
        let sql = if shape.contains(" FROM (") {
            format!("SELECT ST_AsGeoJSON(g, 15) FROM (SELECT {shape}) AS q(g)")
        } else {
            format!("SELECT ST_AsGeoJSON({shape}, 15)")
        };
        let geojson: String = scratch
            .client
            .query_one(&sql, &[])
            .await
            .expect("shape")
            .get(0);
        let ours = zonal_stats(&path, 1, &multipolygon(&geojson)).expect("stats");
        let from_blocks = zonal_stats(&tiled, 1, &multipolygon(&geojson)).expect("stats");
        assert_eq!(from_blocks, ours, "64 px blocks: {shape}");
        let row = scratch
            .client
            .query_one(
                &format!(
                    "SELECT (st).count, (st).sum, (st).min, (st).max, (st).mean FROM ( \
                       SELECT ST_SummaryStats(ST_Clip(rast, ST_Transform(ST_GeomFromGeoJSON($1), ST_SRID(rast)), true), 1, true) AS st \
                       FROM {s}.r) AS q"
                ),
                &[&geojson],
            )
            .await
            .expect("postgis stats");
        let count: i64 = row.get(0);
        assert_eq!(ours.count, count as u64, "{shape}");
        assert!(ours.count > 0, "{shape}");
        let (sum, min, max, mean): (f64, f64, f64, f64) =
            (row.get(1), row.get(2), row.get(3), row.get(4));
        assert_eq!(ours.sum, sum, "{shape}");
        assert_eq!((ours.min, ours.max), (Some(min), Some(max)), "{shape}");
        let our_mean = ours.mean.expect("mean");
        assert!(
            ((our_mean - mean) / mean).abs() < 1e-9,
            "{shape}: {our_mean} vs {mean}"
        );
    }

    // A polygon away from the raster: no pixels, null mean (not an error).
    let far = multipolygon(
        r#"{"type":"Polygon","coordinates":[[[-117,33],[-116.9,33],[-116.9,33.1],[-117,33]]]}"#,
    );
    let none = zonal_stats(&path, 1, &far).expect("stats");
    assert_eq!((none.count, none.nodata, none.mean), (0, 0, None));

    // The whole raster: every pixel is either valid or nodata, and the valid ones match
    // the file's own statistics (84.89 % valid, mean 310.967).
    let everything = multipolygon(
        r#"{"type":"Polygon","coordinates":[[[-121,38],[-119.5,38],[-119.5,39],[-121,39],[-121,38]]]}"#,
    );
    let all = zonal_stats(&path, 1, &everything).expect("stats");
    assert_eq!(all.count + all.nodata, 716 * 663);
    assert!((all.mean.expect("mean") - 310.967).abs() < 0.001);
    assert_eq!(zonal_stats(&tiled, 1, &everything).expect("stats"), all);
    let _ = std::fs::remove_file(&tiled);
    scratch.cleanup().await;
}
