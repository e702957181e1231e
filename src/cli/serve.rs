//! `planscape serve`: start the server and serve until SIGINT or SIGTERM.

use crate::config::Config;

use super::BoxError;

/// Runs `planscape serve`.
pub async fn run(config: Config) -> Result<(), BoxError> {
    let server = crate::server::start(config).await?;
    server.run(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
