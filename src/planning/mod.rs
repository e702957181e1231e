//! Planning: plans (planning areas) and their members, zonal statistics of conditions.

pub mod conditions;
pub mod geometry;
pub mod plans;
pub mod runs;
pub mod scan;
pub mod scenarios;
pub mod stands;
pub mod stats;
pub mod units;
