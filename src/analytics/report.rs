//! What the admin API reads: daily counts over a date range, tile requests by layer and
//! zoom, and plans per hexagon (the heat map). Dates are UTC days.

use std::collections::BTreeMap;

use deadpool_postgres::Pool;
use serde::Serialize;

use crate::db::DbError;

/// A date range of whole UTC days, both ends included (days since 1970-01-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    /// First day.
    pub from: i64,
    /// Last day.
    pub to: i64,
}

impl DayRange {
    /// Every day of the range.
    pub fn days(self) -> impl Iterator<Item = i64> {
        self.from..=self.to
    }

    fn sql(self) -> (i32, i32) {
        (
            i32::try_from(self.from).unwrap_or(0),
            i32::try_from(self.to).unwrap_or(0),
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (days since 1970-01-01).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` of a day number.
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD` (a real date of the years 2000 to 2999) into a day number.
pub fn parse_day(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |s: &str| -> Option<u32> {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, m, d) = (
        digits(text.get(0..4)?)?,
        digits(text.get(5..7)?)?,
        digits(text.get(8..10)?)?,
    );
    if !(2000..=2999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let day = days_from_civil(i64::from(y), m, d);
    // 31 February and the like do not come back as themselves.
    (civil_from_days(day) == (i64::from(y), m, d)).then_some(day)
}

/// The daily counts of one day: `(metric, key) -> value`.
pub type DayCounts = BTreeMap<(String, String), i64>;

/// The roll-ups of every day of the range (days without any are empty maps).
pub async fn daily(pool: &Pool, range: DayRange) -> Result<Vec<(i64, DayCounts)>, DbError> {
    let (from, to) = range.sql();
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT (day - date '1970-01-01') AS day, metric, key, value FROM planscape.analytics_daily \
             WHERE day BETWEEN date '1970-01-01' + $1::int4 AND date '1970-01-01' + $2::int4",
            &[&from, &to],
        )
        .await?;
    let mut by_day: BTreeMap<i64, DayCounts> =
        range.days().map(|d| (d, DayCounts::new())).collect();
    for r in rows {
        let day = i64::from(r.get::<_, i32>("day"));
        by_day
            .entry(day)
            .or_default()
            .insert((r.get("metric"), r.get("key")), r.get("value"));
    }
    Ok(by_day.into_iter().collect())
}

/// Tile requests of one layer at one zoom over a range.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TileRequests {
    /// The layer.
    pub layer: String,
    /// The zoom.
    pub zoom: u8,
    /// Requests.
    pub requests: i64,
}

/// Tile requests by layer and zoom over the range, most requested first.
pub async fn tiles(pool: &Pool, range: DayRange) -> Result<Vec<TileRequests>, DbError> {
    let (from, to) = range.sql();
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT layer, zoom, sum(requests)::int8 AS requests FROM planscape.analytics_tiles \
             WHERE day BETWEEN date '1970-01-01' + $1::int4 AND date '1970-01-01' + $2::int4 \
             GROUP BY layer, zoom ORDER BY requests DESC, layer, zoom",
            &[&from, &to],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TileRequests {
            layer: r.get("layer"),
            zoom: u8::try_from(r.get::<_, i16>("zoom")).unwrap_or(0),
            requests: r.get("requests"),
        })
        .collect())
}

/// A hexagon of the heat map with the plans created in it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCell {
    /// Column of the hexagon grid (EPSG:3310, origin 0,0).
    pub i: i32,
    /// Row of the hexagon grid.
    pub j: i32,
    /// Plans created in it over the range.
    pub plans: i64,
    /// Its centre, longitude.
    pub lon: f64,
    /// Its centre, latitude.
    pub lat: f64,
    /// Its outline (GeoJSON Polygon, EPSG:4326).
    pub geometry: serde_json::Value,
}

/// Plans created over the range per hexagon of `size_m` metres (side) in California
/// Albers (EPSG:3310, equal-area), most plans first.
pub async fn plan_cells(
    pool: &Pool,
    range: DayRange,
    size_m: f64,
) -> Result<Vec<PlanCell>, DbError> {
    let (from, to) = range.sql();
    let client = pool.get().await?;
    let rows = client
        .query(
            "WITH pts AS ( \
               SELECT ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), 3310) AS pt, sum(plans) AS plans \
               FROM planscape.analytics_plan_points \
               WHERE day BETWEEN date '1970-01-01' + $1::int4 AND date '1970-01-01' + $2::int4 \
               GROUP BY lon, lat), \
             cells AS ( \
               SELECT c.i, c.j, sum(p.plans)::int8 AS plans FROM pts p \
               CROSS JOIN LATERAL ( \
                 SELECT h.i, h.j FROM ST_HexagonGrid($3, p.pt) h \
                 WHERE ST_Intersects(h.geom, p.pt) ORDER BY h.i, h.j LIMIT 1) c \
               GROUP BY c.i, c.j), \
             shapes AS ( \
               SELECT i, j, plans, ST_Transform(ST_SetSRID(ST_Hexagon($3, i, j), 3310), 4326) AS g FROM cells) \
             SELECT i, j, plans, ST_X(ST_Centroid(g)) AS lon, ST_Y(ST_Centroid(g)) AS lat, \
                    ST_AsGeoJSON(g, 5) AS geojson \
             FROM shapes ORDER BY plans DESC, i, j",
            &[&from, &to, &size_m],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| PlanCell {
            i: r.get("i"),
            j: r.get("j"),
            plans: r.get("plans"),
            lon: r.get("lon"),
            lat: r.get("lat"),
            geometry: serde_json::from_str(r.get::<_, &str>("geojson"))
                .unwrap_or(serde_json::Value::Null),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_day("2000-01-01"), Some(10_957));
        assert_eq!(format_day(10_957), "2000-01-01");
        for day in (10_957..11_957).step_by(7) {
            assert_eq!(parse_day(&format_day(day)), Some(day));
        }
        assert_eq!(format_day(parse_day("2024-02-29").unwrap()), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "1999-12-31",
            "2024-01-32",
            "2024-01-0a",
            "+024-01-01",
            "",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}
