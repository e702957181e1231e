//! `planscape serve`: start the server and serve until SIGINT or SIGTERM; a signal while
//! it starts (waiting for its database, say) ends it at once with success.

use std::future::Future;

use crate::config::Config;

use super::BoxError;

/// Runs `planscape serve`.
pub async fn run(config: Config) -> Result<(), BoxError> {
    let mut shutdown = Box::pin(shutdown_signal());
    let server = tokio::select! {
        server = crate::server::start(config) => server?,
        () = &mut shutdown => {
            tracing::info!("stopped while starting");
            return Ok(());
        }
    };
    server.run(shutdown).await?;
    Ok(())
}

/// Resolves at the first SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so no signal in between is missed.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { () = ctrl_c => {}, () = term => {} }
    }
}
