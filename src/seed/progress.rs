//! Seed progress: a bar with rate and ETA on a terminal, a log line every few seconds
//! otherwise (batch jobs, CI, `kubectl logs`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Seconds between log lines when there is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Reports how far a seed has got.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    state: Mutex<(u64, Instant)>,
    started: Instant,
}

impl Progress {
    /// Progress over `total` tiles: a bar when `terminal`, log lines otherwise.
    pub fn new(total: u64, terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} tiles  {per_sec}  ETA {eta}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            total,
            state: Mutex::new((0, now)),
            started: now,
        }
    }

    /// `n` more tiles are done.
    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.0 += n;
        if state.1.elapsed() >= LOG_EVERY {
            state.1 = Instant::now();
            let done = state.0;
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            let rate = done as f64 / secs;
            let eta = if rate > 0.0 {
                (self.total.saturating_sub(done)) as f64 / rate
            } else {
                f64::NAN
            };
            tracing::info!(
                done,
                total = self.total,
                percent = format!("{:.1}", 100.0 * done as f64 / self.total.max(1) as f64),
                tiles_per_s = format!("{rate:.0}"),
                eta_s = format!("{eta:.0}"),
                "seeding"
            );
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
