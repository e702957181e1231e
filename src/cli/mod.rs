//! The `planscape` command line: the clap types, loading the configuration, and the
//! dispatch to one module per subcommand. Each subcommand turns its arguments into calls
//! of the library's services and prints the outcome; `main.rs` only parses and runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;

mod check_config;
mod conditions;
mod demo;
mod import;
mod migrate;
mod purge;
mod seed;
mod serve;
mod user;

/// What a subcommand fails with: printed as `error: …`, exit status 1.
type BoxError = Box<dyn std::error::Error>;

/// Planscape server: vector tiles from PostGIS for wildfire-resilience planning.
#[derive(Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// Configuration file. Without it, `planscape.toml` is read when present, else the
    /// built-in defaults (embedded database, no layers).
    #[arg(long, short, global = true, env = "PLANSCAPE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "PLANSCAPE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (to standard error).
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Apply migrations, open the layers and serve tiles over HTTP until SIGINT/SIGTERM.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Generate the demo data (Sierra Nevada region and watersheds) into PostGIS.
    Demo(demo::DemoArgs),
    /// Pregenerate tiles of layers into the tile store (a folder or S3).
    Seed(seed::SeedArgs),
    /// Delete a layer's stored tiles (a zoom range, optionally a bbox) and tell running
    /// servers to drop their cached copies.
    Purge(purge::PurgeArgs),
    /// The conditions catalog.
    Conditions {
        #[command(subcommand)]
        what: conditions::ConditionsCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        what: user::UserCommand,
    },
    /// Print the effective configuration (after environment overrides) and exit.
    CheckConfig,
    /// Import data to serve.
    Import {
        #[command(subcommand)]
        what: import::ImportCommand,
    },
}

/// Installs the log subscriber (`RUST_LOG` filters; default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads the configuration and runs the subcommand. Exit status 2 for a configuration
/// that cannot be loaded, 1 for a failed command.
pub async fn run(cli: Cli) -> ExitCode {
    let path = cli.config.clone().or_else(|| {
        let default = PathBuf::from("planscape.toml");
        default.exists().then_some(default)
    });
    // `import` may name a config file it is about to create.
    let creating =
        matches!(cli.command, Command::Import { .. }) && path.as_ref().is_some_and(|p| !p.exists());
    let existing = if creating { None } else { path.as_deref() };
    let config = match Config::load(existing, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The store parses its own URL; a bad one is a configuration error all the same.
    if let Err(e) = crate::store::StoreUrl::parse(&config.store.url) {
        eprintln!("error: invalid config key `store.url`: {e}");
        return ExitCode::from(2);
    }
    crate::memory::apply(&config.memory);
    let config_path = path.unwrap_or_else(|| PathBuf::from("planscape.toml"));
    match dispatch(cli.command, config, config_path).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, config: Config, config_path: PathBuf) -> Result<(), BoxError> {
    match command {
        Command::Serve => serve::run(config).await,
        Command::Migrate => migrate::run(&config).await,
        Command::Demo(args) => demo::run(&config, args).await,
        Command::Seed(args) => seed::run(&config, args).await,
        Command::Purge(args) => purge::run(&config, args).await,
        Command::Conditions { what } => conditions::run(&config, what).await,
        Command::User { what } => user::run(&config, what).await,
        Command::CheckConfig => check_config::run(&config),
        Command::Import { what } => import::run(&config, config_path, what).await,
    }
}
