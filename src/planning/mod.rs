//! Planning: plans (planning areas) and their members, the conditions catalog, zonal
//! statistics and plan scores, stands and scenarios. Each repository owns its SQL and
//! reports [`crate::db::DbError`] (or its own error wrapping it); the raster kernels
//! share one scan line ([`scan`]); a fresh server reads its condition rasters once
//! ([`warm_up`]).

pub mod condition_layers;
pub mod conditions;
pub mod geometry;
pub mod invitations;
pub mod plans;
pub mod readahead;
pub mod runs;
pub mod scan;
pub mod scenarios;
pub mod scores;
pub mod stands;
pub mod stats;
pub mod stats_memo;
pub mod units;
pub mod upload;
pub mod warm_up;
