//! Planscape server: vector (MVT) tiles from PostGIS and raster tiles through GDAL, a
//! tile store of pregenerated tiles (a folder or S3), and the planning API (accounts,
//! plans, conditions, statistics, scenarios) on one HTTP server.
//!
//! Modules sit on four floors; each imports only its own floor or lower ones.
//! - Ground: [`config`] (every setting as a typed, validated value; imports nothing of
//!   the crate), [`tile`] (tile ids, Web Mercator, formats, the encoded tile), [`style`]
//!   (colormaps), [`coverage`] (which tiles an area touches), [`telemetry`],
//!   [`raster_threads`] (the fixed threads GDAL work runs on).
//! - Parts: [`db`] (the pool, migrations), [`source`] (renderers: [`source::vector`] from
//!   PostGIS, [`source::raster`] through GDAL), [`store`] (folder or S3 objects),
//!   [`cache`] (the in-process tile cache and the shared level behind it),
//!   [`shared_store`] (the connection to the shared Redis/Valkey: timeout, breaker),
//!   [`mail`] (SMTP).
//! - Services: [`tiles`] — the [`tiles::TileService`], owning the layer catalog, layer
//!   versions, the cache, the store and the render policy; [`planning`] (plans,
//!   conditions, statistics, stands, scenarios: repositories owning their SQL beside pure
//!   kernels); [`accounts`]; [`analytics`] (usage events, tile demand, roll-ups); [`import`] (rasters into COGs).
//! - Edges: [`http`] (routers, extractors, the one error-to-response mapping),
//!   [`seed`] (batch pregeneration through the tile service), [`changes`] (PostgreSQL
//!   LISTEN/NOTIFY into the tile service), [`server`] (start-up), [`cli`] (one module per
//!   subcommand) and [`demo`].
//!
//! The request path of a tile: [`http`] parses `/tiles/{layer}/{z}/{x}/{y}.{ext}` and asks
//! [`tiles::TileService::tile`], which checks the layer's format and zooms, answers from
//! [`cache`] (one render per key at a time), else reads [`store`] for a pregenerated
//! layer, else renders through [`source`] off the async threads; [`http`] then answers
//! with ETag/304, gzip negotiation and 204 for empty tiles.

pub mod accounts;
pub mod analytics;
pub mod cache;
pub mod changes;
pub mod cli;
pub mod config;
pub mod coverage;
pub mod dataset_pool;
pub mod db;
pub mod demo;
pub mod http;
pub mod import;
pub mod io_threads;
pub mod mail;
pub mod memory;
pub mod planning;
pub mod raster_threads;
pub mod seed;
pub mod server;
pub mod shared_store;
pub mod source;
pub mod store;
pub mod style;
pub mod telemetry;
pub mod tile;
pub mod tiles;
