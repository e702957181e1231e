//! Usage analytics without third parties: events the server sees (sign-ups, sign-ins,
//! plans, scores, scenario runs, exports, page-view beacons) and tile demand per layer,
//! zoom and day, stored in PostGIS (`planscape.analytics_*`) and read by the admin API.
//!
//! Recording never blocks or fails a request: an event goes into a bounded queue
//! ([`Analytics::record`], dropped and counted when the queue is full), and a writer
//! task ([`writer`]) inserts the queue in batches; tile requests add to in-memory
//! atomics ([`tile_counts`]) written in the same batches. Raw events are kept
//! `analytics.raw_retention_days`, rolled up per day ([`rollup`]) for good. No IP
//! address is stored: page views carry at most a salted, daily-rotating hash
//! ([`visitor`]); users appear by id.

pub mod latency;
pub mod report;
pub mod rollup;
pub mod tile_counts;
pub mod visitor;
pub mod writer;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use crate::config::AnalyticsConfig;
use tile_counts::TileCounter;
use visitor::VisitorHasher;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An account was created.
    Signup,
    /// A user signed in.
    Signin,
    /// A plan was drawn or uploaded (`detail`: `drawn` or `uploaded`).
    PlanCreated,
    /// A plan was renamed or redrawn.
    PlanChanged,
    /// A plan's owner invited someone (`detail`: the role).
    PlanShared,
    /// A plan's scores (or an area's statistics, `detail` `area`) were read.
    ScoresRead,
    /// A scenario run ended (`detail`: `done` or `failed`; with its duration).
    ScenarioRun,
    /// A scenario was exported (`detail`: the format).
    Export,
    /// The web app showed a page (`detail`: which).
    PageView,
}

impl EventKind {
    /// Every kind, in the order the database's check lists them.
    pub const ALL: [EventKind; 9] = [
        Self::Signup,
        Self::Signin,
        Self::PlanCreated,
        Self::PlanChanged,
        Self::PlanShared,
        Self::ScoresRead,
        Self::ScenarioRun,
        Self::Export,
        Self::PageView,
    ];

    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Signin => "signin",
            Self::PlanCreated => "plan_created",
            Self::PlanChanged => "plan_changed",
            Self::PlanShared => "plan_shared",
            Self::ScoresRead => "scores_read",
            Self::ScenarioRun => "scenario_run",
            Self::Export => "export",
            Self::PageView => "page_view",
        }
    }
}

/// One event as queued for the writer.
#[derive(Debug, Clone)]
pub struct Event {
    /// When.
    pub at: SystemTime,
    /// What.
    pub kind: EventKind,
    /// Who (signed in).
    pub user_id: Option<i64>,
    /// The day's visitor hash (page views).
    pub visitor: Option<i64>,
    /// The plan concerned.
    pub plan_id: Option<i64>,
    /// The scenario concerned.
    pub scenario_id: Option<i64>,
    /// A bounded label (outcome, format, page): never free text from a client.
    pub detail: Option<&'static str>,
    /// How long it took (scenario runs).
    pub duration: Option<Duration>,
}

impl Event {
    /// An event of `kind` now, by `user_id`.
    pub fn new(kind: EventKind, user_id: Option<i64>) -> Self {
        Self {
            at: SystemTime::now(),
            kind,
            user_id,
            visitor: None,
            plan_id: None,
            scenario_id: None,
            detail: None,
            duration: None,
        }
    }

    /// With the plan it concerns.
    pub fn plan(mut self, id: i64) -> Self {
        self.plan_id = Some(id);
        self
    }

    /// With the scenario it concerns.
    pub fn scenario(mut self, id: i64) -> Self {
        self.scenario_id = Some(id);
        self
    }

    /// With a label.
    pub fn detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// What the writer task is asked to do.
pub(crate) enum Command {
    /// Store an event.
    Event(Event),
    /// Write everything queued before this and the tile counters, refresh yesterday's
    /// and today's roll-ups when asked, then answer.
    Flush {
        /// Roll up too.
        roll_up: bool,
        /// Answered when done.
        done: oneshot::Sender<()>,
    },
}

/// The handle request handlers record through (cheap to share).
pub struct Analytics {
    enabled: bool,
    sender: mpsc::Sender<Command>,
    tiles: Arc<TileCounter>,
    visitors: VisitorHasher,
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    last_refresh: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    flush_interval: Duration,
}

impl Analytics {
    /// Starts the writer task over `pool` (must be called inside a Tokio runtime).
    pub fn start(pool: Pool, config: &AnalyticsConfig) -> Arc<Self> {
        let (sender, receiver) = mpsc::channel(config.queue_size);
        let tiles = Arc::new(TileCounter::default());
        let task = writer::spawn(pool, receiver, Arc::clone(&tiles), config.clone());
        Arc::new(Self {
            enabled: config.enabled,
            sender,
            tiles,
            visitors: VisitorHasher::default(),
            writer: std::sync::Mutex::new(Some(task)),
            last_refresh: tokio::sync::Mutex::new(None),
            flush_interval: Duration::from_secs(config.flush_interval_s),
        })
    }

    /// Whether anything is recorded.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Queues an event; never waits. A full queue drops it (counted in
    /// `analytics_events_dropped_total`).
    pub fn record(&self, event: Event) {
        if !self.enabled {
            return;
        }
        if self.sender.try_send(Command::Event(event)).is_err() {
            metrics::counter!("analytics_events_dropped_total").increment(1);
        }
    }

    /// Counts a tile request of `layer` at zoom `z`.
    pub fn count_tile(&self, layer: &str, z: u8) {
        if self.enabled {
            self.tiles.count(layer, z);
        }
    }

    /// The visitor hash of a client today (see [`visitor`]).
    pub fn visitor(&self, address: &str, user_agent: &str) -> Option<i64> {
        self.visitors
            .hash(tile_counts::today(), address, user_agent)
    }

    /// Writes everything recorded so far (events queued, tile counters) and refreshes
    /// today's roll-ups; returns when done (or when the writer is gone).
    pub async fn flush(&self) {
        self.flush_and(true).await;
    }

    async fn flush_and(&self, roll_up: bool) {
        let (done, rx) = oneshot::channel();
        if self
            .sender
            .send(Command::Flush { roll_up, done })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Brings today's roll-ups up to date for a reader, at most once per flush interval
    /// (the admin API calls it before answering).
    pub async fn refresh_for_reading(&self) {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.flush_interval) {
            return;
        }
        self.flush().await;
        *last = Some(tokio::time::Instant::now());
    }

    /// At shutdown: writes what is left (the next start rolls it up), then stops the
    /// writer (waiting at most `timeout`).
    pub async fn shutdown(&self, timeout: Duration) {
        if tokio::time::timeout(timeout, self.flush_and(false))
            .await
            .is_err()
        {
            tracing::warn!("analytics: the last write did not finish in time");
        }
        let task = self.writer.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
        }
    }
}
