//! The `planscape` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use planscape::config::Config;
use planscape::demo::{self, DemoOptions, DemoOutcome};

/// Planscape server: vector tiles from PostGIS for wildfire-resilience planning.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file. Without it, `planscape.toml` is read when present, else the
    /// built-in defaults (embedded database, no layers).
    #[arg(long, short, global = true, env = "PLANSCAPE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "PLANSCAPE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, open the layers and serve tiles over HTTP until SIGINT/SIGTERM.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Generate the demo data (Sierra Nevada region and watersheds) into PostGIS.
    Demo {
        /// Schema to create the demo tables in.
        #[arg(long, default_value = "demo")]
        schema: String,
        /// About how many watershed polygons to generate.
        #[arg(long, default_value_t = 50_000)]
        watersheds: usize,
        /// Regenerate even when the data is current.
        #[arg(long)]
        force: bool,
    },
    /// Print the effective configuration (after environment overrides) and exit.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let path = cli.config.clone().or_else(|| {
        let default = PathBuf::from("planscape.toml");
        default.exists().then_some(default)
    });
    let config = match Config::load(path.as_deref(), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve => {
            let server = planscape::server::start(config).await?;
            server.run(shutdown_signal()).await?;
        }
        Command::Migrate => {
            let applied = planscape::db::migrate(&config.database).await?;
            println!("{applied} migration(s) applied");
        }
        Command::Demo {
            schema,
            watersheds,
            force,
        } => {
            let outcome = demo::run(
                &config.database,
                &DemoOptions {
                    schema,
                    watersheds,
                    force,
                },
            )
            .await?;
            match outcome {
                DemoOutcome::Loaded { watersheds } => {
                    println!("demo data loaded: {watersheds} watersheds")
                }
                DemoOutcome::UpToDate => {
                    println!("demo data already loaded (use --force to regenerate)")
                }
            }
        }
        Command::CheckConfig => {
            let mut shown = config.clone();
            shown.database.url = redact(&shown.database.url);
            println!("{}", toml::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}

/// Hides the password of a URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn init_logging(format: LogFormat) {
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
    tracing::info!("shutting down");
}
