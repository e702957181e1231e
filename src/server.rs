//! Start-up: bind the socket, wait for the database, migrate, open the layers, install
//! change triggers, then serve until shut down, with a bounded grace for in-flight
//! requests.
//!
//! While starting, the socket already answers ([`health::starting_router`]): 503
//! `starting` to everything, `/health` included. A database that is unreachable for a
//! while at start therefore neither ends the process nor makes it look dead to a check
//! that only asks for an answer; errors no retry can mend (the URL, TLS set up wrong)
//! still end it at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use tokio::net::TcpListener;

use crate::cache::TileCache;
use crate::cache::shared::SharedTiles;
use crate::changes;
use crate::config::Config;
use crate::db::{self, DbError};
use crate::http::connection_timeouts::{MakeTracked, TimedListener, Timeouts};
use crate::http::{self, AppState, health};
use crate::planning::condition_layers;
use crate::shared_store::SharedStore;
use crate::store::{StoreError, TileStore};
use crate::tiles::{Catalog, TileService};

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database never became reachable, or migrating failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The conditions catalog is invalid.
    #[error("{0}")]
    Conditions(String),
    /// A setting cannot be used (checked with the configuration; or no randomness).
    #[error("{0}")]
    Config(String),
    /// The store URL is invalid.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mail settings are unusable.
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
}

/// A server that is listening.
pub struct Server {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Shared state (tests inspect the cache and catalog).
    pub state: Arc<AppState>,
    listener: TcpListener,
    change_listener: tokio::task::JoinHandle<()>,
    run_sweeper: tokio::task::JoinHandle<()>,
    metrics_upkeep: tokio::task::JoinHandle<()>,
    allocator_trim: Option<tokio::task::JoinHandle<()>>,
}

/// Prepares everything and binds the socket; call [`Server::run`] to serve.
pub async fn start(config: Config) -> Result<Server, StartError> {
    // Install the metrics recorder before anything records.
    crate::telemetry::handle();
    let listen = config.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: listen,
        source,
    })?;
    let (listener, starting) =
        StartingServer::spawn(listener).map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    wait_for_database(&config).await?;
    let applied = db::migrate(&config.database).await?;
    if applied > 0 {
        tracing::info!(applied, "migrations applied");
    }
    let conditions = condition_layers::load_conditions(&config)
        .map_err(|e| StartError::Conditions(e.to_string()))?;
    let layers = condition_layers::tile_layers(&config, conditions.as_ref());
    let client = db::connect(&config.database).await?;
    // Scenario runs left by stopped servers end as failed (live servers' are spared:
    // their heartbeats are fresh).
    crate::planning::runs::sweep(&client).await;
    let catalog = Catalog::open(&layers, &config.styles_dir, Some(&client)).await;
    changes::install_triggers(&client, &catalog.tables()).await;
    drop(client);
    let pool = db::create_pool(&config.database).await?;
    let cache_bytes = config.cache.size_mb.saturating_mul(1024 * 1024);
    let cache = if config.cache.sendfile {
        TileCache::with_body_arena(cache_bytes)
    } else {
        TileCache::new(cache_bytes)
    };
    // Validated in `Config::validate`.
    let cache_control = HeaderValue::from_str(&config.http.cache_control)
        .unwrap_or_else(|_| HeaderValue::from_static("no-cache"));
    let store = if config.admin_token.is_some() || catalog.any_pregenerated() {
        Some(Arc::new(open_store(&config).await?))
    } else {
        None
    };
    // The shared level and shared limits (no connection is awaited: a shared server
    // that is down at start-up only means serving without it).
    let shared_store =
        SharedStore::open(&config.cache.shared).map_err(|e| StartError::Config(e.to_string()))?;
    let shared_tiles = shared_store
        .as_ref()
        .map(|s| Arc::new(SharedTiles::new(Arc::clone(s), &config.cache.shared)));
    let tiles = Arc::new(
        TileService::new(
            catalog,
            Some(pool.clone()),
            cache,
            store,
            config.http.cache_control.clone(),
        )
        .with_shared(shared_tiles),
    );
    let plan_source =
        open_private_source(&config, "plans", "id", &["name", "region", "area_acres"]).await;
    let project_area_source = open_private_source(
        &config,
        "project_areas",
        "scenario_id",
        &["rank", "score", "area_acres", "stand_count"],
    )
    .await;
    let login_limiter = crate::accounts::limiter::Limiter::new(
        config.accounts.login_max_failures,
        Duration::from_secs(config.accounts.login_window_s),
    )
    .with_shared(shared_store.filter(|_| config.cache.shared.limits));
    let trusted_proxies =
        crate::http::client_ip::TrustedProxies::parse(&config.http.trusted_proxies)
            .map_err(StartError::Config)?;
    let devices = crate::accounts::device::DeviceCookies::new(
        config.accounts.signing_key.as_deref().map(str::as_bytes),
    )
    .map_err(StartError::Config)?;
    let mailer = crate::mail::Mailer::from_config(&config.mail)?.map(Arc::new);
    if mailer.is_none() {
        tracing::warn!(
            "no SMTP server configured (PLANSCAPE_SMTP_HOST): password-reset mail is not sent"
        );
    }
    let analytics = crate::analytics::Analytics::start(pool.clone(), &config.analytics);
    let stats_memo_mb = config.accounts.stats_memo_mb;
    let state = Arc::new(AppState {
        config,
        tiles: Arc::clone(&tiles),
        pool,
        cache_control,
        login_limiter,
        trusted_proxies,
        devices,
        mailer,
        plan_source,
        project_area_source,
        conditions: conditions.map(Arc::new),
        analytics,
        stats_memo: crate::planning::stats_memo::StatsMemo::new(
            stats_memo_mb.saturating_mul(1024 * 1024),
        ),
    });
    if let Some(conditions) = &state.conditions {
        tokio::spawn(crate::planning::warm_up::warm_up(Arc::clone(conditions)));
    }
    let change_listener = changes::spawn_listener(state.config.database.clone(), tiles);
    let run_sweeper = crate::planning::runs::spawn_sweeper(state.pool.clone());
    let metrics_upkeep = crate::telemetry::spawn_upkeep();
    let allocator_trim = crate::memory::spawn_trim(state.config.memory.trim_interval_s);
    starting.finish().await;
    Ok(Server {
        addr,
        state,
        listener,
        change_listener,
        run_sweeper,
        metrics_upkeep,
        allocator_trim,
    })
}

/// Opens the tile store (needed when a layer is pregenerated or the admin API, purge,
/// is on). An unreachable store does not stop the server (live layers keep serving);
/// `/ready` reports it.
async fn open_store(config: &Config) -> Result<TileStore, StoreError> {
    let store = TileStore::open_url(&config.store.url, &config.store).await?;
    match store.check().await {
        Ok(()) => tracing::info!(store = %config.store.url, "tile store ready"),
        Err(e) => tracing::error!(store = %config.store.url, error = %e, "tile store unreachable"),
    }
    Ok(store)
}

/// A vector source over one of the server's own tables (`planscape.{table}`), rendered
/// one plan or scenario at a time (rows where `filter` equals the requested id).
async fn open_private_source(
    config: &Config,
    table: &str,
    filter: &str,
    properties: &[&str],
) -> Option<Arc<crate::source::vector::VectorSource>> {
    let cfg = crate::config::VectorLayerConfig {
        table: format!("planscape.{table}"),
        geometry: "geom".into(),
        id: Some("id".into()),
        properties: properties.iter().map(|p| (*p).to_owned()).collect(),
        minzoom: 0,
        maxzoom: 18,
        description: None,
        attribution: None,
        pregenerated: None,
        lowzoom_maxzoom: None,
        lowzoom_properties: None,
    };
    let client = db::connect(&config.database).await.ok()?;
    match crate::source::vector::VectorSource::inspect_filtered(&client, table, &cfg, Some(filter))
        .await
    {
        Ok(source) => Some(Arc::new(source)),
        Err(e) => {
            tracing::error!(table, error = %e, "private tiles unavailable");
            None
        }
    }
}

/// The stand-in server of the start-up: answers on a second handle of the bound socket
/// until [`StartingServer::finish`] (or drop), then the real server accepts on the same
/// socket; connections waiting in its backlog meanwhile are not lost.
struct StartingServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl StartingServer {
    /// Starts answering on a duplicate of `listener`; returns the listener for the real
    /// server.
    fn spawn(listener: TcpListener) -> std::io::Result<(TcpListener, Self)> {
        let socket = listener.into_std()?;
        let duplicate = TcpListener::from_std(socket.try_clone()?)?;
        let listener = TcpListener::from_std(socket)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve =
                axum::serve(duplicate, health::starting_router()).with_graceful_shutdown(async {
                    let _ = stopped.await;
                });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "start-up health endpoint failed");
            }
        });
        Ok((
            listener,
            Self {
                stop: Some(stop),
                task: Some(task),
            },
        ))
    }

    /// Stops answering (requests under way finish) and closes the duplicate handle.
    async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for StartingServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Server {
    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish for at most `shutdown_grace_s` seconds; returns then (requests still under
    /// way are dropped, their connections closed when the process exits). Connections
    /// that do not send a request head in time, or stay idle, are closed
    /// ([`connection_timeouts`](crate::http::connection_timeouts)).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = http::App::new(Arc::clone(&self.state));
        tracing::info!(addr = %self.addr, layers = self.state.tiles.catalog().len(), "serving");
        let http = &self.state.config.http;
        let timeouts = Timeouts {
            header_read: Duration::from_secs(http.header_read_timeout_s),
            idle: Duration::from_secs(http.idle_timeout_s),
        };
        // Cached bodies kept in the cache's memory file go out with `sendfile`.
        let arena = self.state.tiles.cache().arena().cloned();
        let grace = Duration::from_secs(self.state.config.shutdown_grace_s);
        let announce = move || {
            tracing::info!(
                grace_s = grace.as_secs(),
                "shutting down: no new connections; finishing requests under way"
            );
        };
        let grace_over = || async move {
            tokio::time::sleep(grace).await;
            tracing::warn!(
                grace_s = grace.as_secs(),
                "shutdown grace over; dropping requests still under way"
            );
        };
        let result = if http.io_threads > 0 {
            // Single-threaded runtimes, one per I/O thread (crate::io_threads).
            // Checked by `main` before the runtime started.
            let blocking = crate::memory::blocking_threads_from_env()
                .unwrap_or(crate::memory::DEFAULT_BLOCKING_THREADS);
            let mut threads = crate::io_threads::IoThreads::start(
                self.listener,
                app,
                timeouts,
                arena,
                http.io_threads,
                blocking,
            )?;
            tokio::select! {
                result = threads.finished() => result,
                () = shutdown => {
                    announce();
                    threads.stop();
                    tokio::select! {
                        result = threads.finished() => result,
                        () = grace_over() => Ok(()),
                    }
                }
            }
        } else {
            let listener = TimedListener::new(self.listener, timeouts).sending_from(arena);
            let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
            let serve =
                axum::serve(listener, MakeTracked::new(app)).with_graceful_shutdown(async move {
                    shutdown.await;
                    announce();
                    let _ = signalled.send(());
                });
            let grace_over = async {
                if on_signal.await.is_ok() {
                    grace_over().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                result = serve.into_future() => result,
                () = grace_over => Ok(()),
            }
        };
        self.change_listener.abort();
        self.run_sweeper.abort();
        self.metrics_upkeep.abort();
        if let Some(trim) = &self.allocator_trim {
            trim.abort();
        }
        // Queued events and tile counts are written before the process ends (3 s at most:
        // the default grace of 25 s plus this stays below ECS's 30 s stop timeout).
        self.state.analytics.shutdown(Duration::from_secs(3)).await;
        result
    }
}

/// Retries the first connection until it succeeds (1 s apart, backing off to 10 s), so a
/// server started beside its database (compose, ECS), or while the database is briefly
/// away, does not crash-loop: meanwhile the socket answers 503 `starting`
/// ([`StartingServer`]), and SIGTERM ends the wait (`planscape serve`). Errors no
/// retry can mend (the URL, `sslrootcert`, a refused certificate, TLS required by one
/// side) end it at once.
async fn wait_for_database(config: &Config) -> Result<(), DbError> {
    let mut pause = Duration::from_secs(1);
    loop {
        match db::connect(&config.database).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in_s = pause.as_secs(), "database not reachable yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}
