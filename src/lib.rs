//! Planscape server: vector (MVT) tiles from PostGIS, served over HTTP with a byte-weighted
//! in-process cache that follows data changes.
//!
//! The request path, following module names: [`http`] parses and validates the request,
//! [`cache`] answers or single-flights a render, [`source`] renders from PostGIS, and
//! [`changes`] keeps cache keys current when the data changes. [`config`] and [`db`] set
//! things up; [`demo`] generates the demo data.

pub mod accounts;
pub mod cache;
pub mod changes;
pub mod cli;
pub mod config;
pub mod coverage;
pub mod db;
pub mod demo;
pub mod http;
pub mod import;
pub mod planning;
pub mod seed;
pub mod server;
pub mod source;
pub mod store;
pub mod style;
pub mod telemetry;
pub mod tile;

/// Layer names the URL space keeps for other uses.
pub const RESERVED_LAYER_NAMES: &[&str] = &["plans", "legend"];
