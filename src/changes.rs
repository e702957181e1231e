//! Data-change notifications: a statement-level trigger on each vector layer's table
//! calls `pg_notify('planscape_table_change', 'schema.table')`; a dedicated connection
//! LISTENs and tells the [`TileService`], which bumps the versions of the layers reading
//! that table, so the next request renders fresh data. Purges elsewhere arrive on
//! [`LAYER_CHANNEL`]. After the listening connection is lost (and notifications may have
//! been missed), every layer's version is bumped on reconnect. Layers with low-zoom
//! copies ([`crate::source::vector::lowzoom`]) have them built at start and refreshed
//! on each change of their table.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use crate::config::DatabaseConfig;
use crate::db::{self, quote_ident};
use crate::source::vector::lowzoom::Generalizer;
use crate::tiles::{LAYER_CHANNEL, TileService};

/// The notification channel.
pub const CHANNEL: &str = "planscape_table_change";

/// Attaches the change trigger to every layer table. A failure (e.g. the server's role
/// does not own the table) is logged and returned; tiles of that table then change
/// only when purged or when the cache entry expires.
pub async fn install_triggers(
    client: &tokio_postgres::Client,
    tables: &[String],
) -> Vec<(String, String)> {
    let mut failures = Vec::new();
    for table in tables {
        let sql = format!(
            "CREATE OR REPLACE TRIGGER planscape_notify_change \
             AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} \
             FOR EACH STATEMENT EXECUTE FUNCTION planscape.notify_table_change()",
            quote_ident(table)
        );
        if let Err(e) = client.batch_execute(&sql).await {
            tracing::warn!(%table, error = %e, "cannot install the change trigger; cached tiles of this table will not be invalidated on change");
            failures.push((table.clone(), e.to_string()));
        }
    }
    failures
}

fn dispatch(tiles: &TileService, low: Option<&Generalizer>, n: &tokio_postgres::Notification) {
    if n.channel() == LAYER_CHANNEL {
        tiles.layer_changed(n.payload());
    } else {
        tiles.table_changed(n.payload());
        if let Some(low) = low {
            low.table_changed(n.payload());
        }
    }
}

/// Runs the LISTEN loop until the process ends, reconnecting with backoff.
pub fn spawn_listener(db: DatabaseConfig, tiles: Arc<TileService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let low = Generalizer::spawn(db.clone(), Arc::clone(&tiles));
        let mut connected_before = false;
        let mut backoff = Duration::from_millis(250);
        loop {
            match listen_once(&db, &tiles, low.as_ref(), connected_before).await {
                Ok(()) => {
                    connected_before = true;
                    backoff = Duration::from_millis(250);
                    tracing::warn!("change listener disconnected; reconnecting");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "change listener cannot connect");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            tokio::time::sleep(backoff).await;
        }
    })
}

async fn listen_once(
    db: &DatabaseConfig,
    tiles: &TileService,
    low: Option<&Generalizer>,
    reconnect: bool,
) -> Result<(), String> {
    let (client, mut connection) = db::open(db).await.map_err(|e| {
        if !e.is_transient() {
            // A certificate or TLS setting, not an outage: say so where operators look.
            tracing::error!(error = %e, "change listener cannot connect");
        }
        e.to_string()
    })?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let listen_sql = format!("LISTEN {CHANNEL}; LISTEN {LAYER_CHANNEL};");
    let listen = client.batch_execute(&listen_sql);
    // The connection must be polled for LISTEN to complete.
    tokio::pin!(listen);
    loop {
        tokio::select! {
            result = &mut listen => { result.map_err(|e| e.to_string())?; break; }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) => dispatch(tiles, low, &n),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("connection closed".into()),
            }
        }
    }
    if reconnect {
        tiles.all_changed();
        if let Some(low) = low {
            low.all_changed();
        }
    }
    tracing::info!("listening for data changes");
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(n)) => dispatch(tiles, low, &n),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "change listener connection error");
                break;
            }
        }
    }
    Ok(())
}
