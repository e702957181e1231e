//! `planscape demo`: generates the demo data and loads it into PostGIS.
//!
//! Deterministic: the same options give byte-identical tables on every machine. The
//! layers that serve it are declared in `tiles/demo.toml`.

pub mod noise;
pub mod rasters;
pub mod region;
pub mod watersheds;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;

use crate::config::{DatabaseConfig, is_identifier};
use crate::db::{self, DbError};
use region::SIERRA_NEVADA;
use watersheds::Watershed;

/// Bumped whenever generation changes, so `planscape demo` reloads stale data.
pub const GENERATOR_VERSION: &str = "2";

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Target schema.
    pub schema: String,
    /// About how many watershed polygons.
    pub watersheds: usize,
    /// Reload even when the data is current.
    pub force: bool,
}

/// A failure of the demo loader.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Bad option.
    #[error("{0}")]
    Invalid(String),
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A statement failed.
    #[error("loading the demo data failed: {0}")]
    Sql(#[from] tokio_postgres::Error),
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoOutcome {
    /// Data was (re)generated.
    Loaded {
        /// Watershed rows.
        watersheds: usize,
    },
    /// The data was already current.
    UpToDate,
}

/// Generates and loads the demo tables `{schema}.regions` and `{schema}.watersheds`.
pub async fn run(db_config: &DatabaseConfig, opts: &DemoOptions) -> Result<DemoOutcome, DemoError> {
    if !is_identifier(&opts.schema) {
        return Err(DemoError::Invalid(format!(
            "`{}` is not a valid schema name",
            opts.schema
        )));
    }
    if !(1..=2_000_000).contains(&opts.watersheds) {
        return Err(DemoError::Invalid(
            "--watersheds must be between 1 and 2000000".into(),
        ));
    }
    db::migrate(db_config).await?;
    let client = db::connect(db_config).await?;
    let schema = db::quote_ident(&opts.schema);
    let stamp = format!("{GENERATOR_VERSION}:{}", opts.watersheds);
    if !opts.force {
        let current = client
            .query_opt(
                "SELECT obj_description(n.oid, 'pg_namespace') FROM pg_namespace n \
                 WHERE n.nspname = $1 AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL",
                &[&opts.schema, &format!("{schema}.watersheds"), &format!("{schema}.regions")],
            )
            .await?
            .and_then(|r| r.get::<_, Option<String>>(0));
        if current.as_deref() == Some(format!("planscape demo {stamp}").as_str()) {
            return Ok(DemoOutcome::UpToDate);
        }
    }
    let generated = tokio::task::spawn_blocking({
        let n = opts.watersheds;
        move || watersheds::generate(SIERRA_NEVADA, n)
    })
    .await
    .map_err(|e| DemoError::Invalid(format!("generation failed: {e}")))?;
    tracing::info!(count = generated.len(), "generated watersheds");

    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             DROP TABLE IF EXISTS {schema}.watersheds, {schema}.regions;
             CREATE TABLE {schema}.regions (
                 id integer PRIMARY KEY, name text NOT NULL, slug text NOT NULL,
                 geom geometry(MultiPolygon, 4269) NOT NULL);
             CREATE TABLE {schema}.watersheds (
                 id bigint PRIMARY KEY, huc12 text NOT NULL, name text NOT NULL,
                 area_acres double precision NOT NULL, elevation_m double precision NOT NULL,
                 fire_risk double precision NOT NULL,
                 geom geometry(MultiPolygon, 4326) NOT NULL);"
        ))
        .await?;
    let region_wkb = hex(&multipolygon_ewkb(4269, SIERRA_NEVADA));
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.regions VALUES (1, 'Sierra Nevada', 'sierra_nevada', $1::text::geometry)"
            ),
            &[&region_wkb],
        )
        .await?;

    let sink = client
        .copy_in(&format!(
            "COPY {schema}.watersheds (id, huc12, name, area_acres, elevation_m, fire_risk, geom) FROM STDIN"
        ))
        .await?;
    let mut sink = Box::pin(sink);
    let mut buf = BytesMut::with_capacity(1 << 20);
    for w in &generated {
        copy_row(&mut buf, w);
        if buf.len() > (1 << 20) {
            sink.send(buf.split().freeze()).await?;
        }
    }
    sink.send(Bytes::from(buf)).await?;
    sink.as_mut().finish().await?;

    client
        .batch_execute(&format!(
            "UPDATE {schema}.watersheds
                SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3))
              WHERE NOT ST_IsValid(geom);
             CREATE INDEX ON {schema}.watersheds USING gist (geom);
             CREATE INDEX ON {schema}.regions USING gist (geom);
             ANALYZE {schema}.watersheds;
             ANALYZE {schema}.regions;
             COMMENT ON SCHEMA {schema} IS 'planscape demo {stamp}';"
        ))
        .await?;
    Ok(DemoOutcome::Loaded {
        watersheds: generated.len(),
    })
}

/// One line of COPY text format.
fn copy_row(buf: &mut BytesMut, w: &Watershed) {
    use std::fmt::Write;
    let _ = write!(
        buf,
        "{}\t{}\t{}\t{:.3}\t{}\t{}\t",
        w.id, w.huc12, w.name, w.area_acres, w.elevation_m, w.fire_risk
    );
    buf.put_slice(hex(&multipolygon_ewkb(4326, &w.ring)).as_bytes());
    buf.put_u8(b'\n');
}

/// EWKB (little endian, with SRID) of a one-polygon MultiPolygon with one ring.
pub fn multipolygon_ewkb(srid: u32, ring: &[(f64, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + ring.len() * 16);
    out.push(1);
    out.extend_from_slice(&(6u32 | 0x2000_0000).to_le_bytes());
    out.extend_from_slice(&srid.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.push(1);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(ring.len() as u32).to_le_bytes());
    for &(x, y) in ring {
        out.extend_from_slice(&x.to_le_bytes());
        out.extend_from_slice(&y.to_le_bytes());
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}
