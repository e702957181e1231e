//! `planscape migrate`: apply pending database migrations.

use crate::config::Config;

use super::BoxError;

/// Runs `planscape migrate`.
pub async fn run(config: &Config) -> Result<(), BoxError> {
    let applied = crate::db::migrate(&config.database).await?;
    println!("{applied} migration(s) applied");
    Ok(())
}
