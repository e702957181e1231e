//! Units of ground measure shared by planning, demo data and benches.

/// Square metres in an international acre.
pub const M2_PER_ACRE: f64 = 4_046.856_422_4;
