//! Usage analytics (`[analytics]`): whether events and tile demand are recorded, how long
//! raw events are kept, how often the in-memory counters and queued events are written.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Analytics settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Record events, page views and tile demand (`PLANSCAPE_ANALYTICS_ENABLED`). Off:
    /// nothing is recorded; the admin API still answers from what is stored.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Days raw events are kept (`PLANSCAPE_ANALYTICS_RETENTION_DAYS`, 2 to 3650); the
    /// daily roll-ups made from them are kept for good.
    #[serde(default = "default_retention")]
    pub raw_retention_days: u32,
    /// Seconds between writes of queued events and tile counters
    /// (`PLANSCAPE_ANALYTICS_FLUSH_S`, 1 to 3600); also written at shutdown.
    #[serde(default = "default_flush")]
    pub flush_interval_s: u64,
    /// Events queued for the writer at most (`PLANSCAPE_ANALYTICS_QUEUE`); beyond it new
    /// events are dropped (and counted in `analytics_events_dropped_total`), never the
    /// request.
    #[serde(default = "default_queue")]
    pub queue_size: usize,
}

fn default_enabled() -> bool {
    true
}
fn default_retention() -> u32 {
    30
}
fn default_flush() -> u64 {
    10
}
fn default_queue() -> usize {
    10_000
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            raw_retention_days: default_retention(),
            flush_interval_s: default_flush(),
            queue_size: default_queue(),
        }
    }
}

impl AnalyticsConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("analytics.{key}"),
            message: message.to_owned(),
        };
        if !(2..=3650).contains(&self.raw_retention_days) {
            return Err(invalid(
                "raw_retention_days",
                "must be between 2 and 3650 (a day is rolled up once it is over)",
            ));
        }
        if !(1..=3600).contains(&self.flush_interval_s) {
            return Err(invalid("flush_interval_s", "must be between 1 and 3600"));
        }
        if !(1..=1_000_000).contains(&self.queue_size) {
            return Err(invalid("queue_size", "must be between 1 and 1000000"));
        }
        Ok(())
    }
}
