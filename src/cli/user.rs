//! `planscape user`: manage accounts from the command line.

use crate::accounts;
use crate::config::Config;

use super::BoxError;

/// `planscape user` subcommands.
#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from `PLANSCAPE_USER_PASSWORD`, else from
    /// the first line of standard input.
    Create {
        /// Email (the login).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Make an existing account an administrator (the admin API and the analytics
    /// dashboard), or with `--revoke` an ordinary user again.
    Admin {
        /// The account's email.
        #[arg(long)]
        email: String,
        /// Take the admin flag away instead.
        #[arg(long)]
        revoke: bool,
    },
}

/// Runs `planscape user …`.
pub async fn run(config: &Config, what: UserCommand) -> Result<(), BoxError> {
    match what {
        UserCommand::Create { email, name, admin } => create(config, &email, &name, admin).await,
        UserCommand::Admin { email, revoke } => set_admin(config, &email, !revoke).await,
    }
}

async fn create(config: &Config, email: &str, name: &str, admin: bool) -> Result<(), BoxError> {
    let password = match std::env::var("PLANSCAPE_USER_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    accounts::password::check_policy(&password).map_err(|m| format!("password {m}"))?;
    let hash = tokio::task::spawn_blocking(move || accounts::password::hash(&password)).await??;
    crate::db::migrate(&config.database).await?;
    let client = crate::db::connect(&config.database).await?;
    let user = accounts::create_user(&client, email, name, &hash, admin).await?;
    println!(
        "created user {} <{}>{}",
        user.id,
        user.email,
        if user.is_admin { " (admin)" } else { "" }
    );
    Ok(())
}

async fn set_admin(config: &Config, email: &str, admin: bool) -> Result<(), BoxError> {
    crate::db::migrate(&config.database).await?;
    let client = crate::db::connect(&config.database).await?;
    let user = accounts::set_admin(&client, email, admin)
        .await?
        .ok_or_else(|| format!("no account with the email {email}"))?;
    println!(
        "{} <{}> is {}",
        user.id,
        user.email,
        if user.is_admin {
            "an administrator"
        } else {
            "not an administrator"
        }
    );
    Ok(())
}
