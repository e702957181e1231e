//! Planning: plans (planning areas) and their members.

pub mod geometry;
pub mod plans;
