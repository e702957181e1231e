//! The `planscape` command line.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use planscape::config::Config;
use planscape::demo::{self, DemoOptions, DemoOutcome};

mod seed_cmd;

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
        /// Folder of the demo condition rasters (COGs).
        #[arg(long, default_value = ".data/rasters")]
        rasters: PathBuf,
        /// Pixel size of the demo rasters, metres.
        #[arg(long, default_value_t = 250.0)]
        raster_resolution: f64,
        /// Also make the large 30 m raster for benchmarks (about 11,700 x 21,700 pixels).
        #[arg(long)]
        large_raster: bool,
    },
    /// Pregenerate tiles of layers into the tile store (a folder or S3).
    Seed(seed_cmd::SeedArgs),
    /// Delete a layer's stored tiles (a zoom range, optionally a bbox) and tell running
    /// servers to drop their cached copies.
    Purge {
        /// The layer.
        layer: String,
        /// Zoom range `MIN-MAX` (default: all of the layer's zooms).
        #[arg(long, short, value_parser = planscape::tile::parse_zooms)]
        zoom: Option<RangeInclusive<u8>>,
        /// Only tiles touching `WEST,SOUTH,EAST,NORTH` (lon/lat).
        #[arg(long, allow_hyphen_values = true)]
        bbox: Option<String>,
        /// Store: `file://FOLDER` or `s3://BUCKET/PREFIX` (default: `store.url`).
        #[arg(long)]
        to: Option<String>,
    },
    /// The conditions catalog.
    Conditions {
        #[command(subcommand)]
        what: ConditionsCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        what: UserCommand,
    },
    /// Print the effective configuration (after environment overrides) and exit.
    CheckConfig,
    /// Import data to serve.
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
}

#[derive(Subcommand)]
enum ConditionsCommand {
    /// Compute the normalized rasters of every element (from its metrics) and pillar
    /// (from its elements), mean or min per node, into the catalog's `dir`.
    Build,
    /// Statistics of a raster over a GeoJSON polygon (pixel-centre rule), as JSON, with
    /// the time taken (median of `--repeat` runs, the dataset kept open between runs).
    Stats {
        /// The raster.
        raster: PathBuf,
        /// GeoJSON Polygon/MultiPolygon (or a Feature of one), longitude/latitude.
        #[arg(long)]
        geojson: PathBuf,
        /// Band.
        #[arg(long, default_value_t = 1)]
        band: usize,
        /// Runs to time.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
}

#[derive(Subcommand)]
enum UserCommand {
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
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Turn a raster (any GDAL format, any CRS) into a Cloud-Optimized GeoTIFF in
    /// EPSG:3857, keep the original beside it, and register a raster layer in the config.
    Raster {
        /// The input raster.
        input: PathBuf,
        /// Layer name (also the output file name).
        #[arg(long)]
        layer: String,
        /// Output folder.
        #[arg(long, default_value = "data/rasters")]
        dir: PathBuf,
        /// Style of the layer (styles/NAME.json).
        #[arg(long, default_value = "viridis")]
        style: String,
        /// Value range of the style, `MIN,MAX`.
        #[arg(long, value_parser = parse_range)]
        range: Option<[f64; 2]>,
        /// Resampling: nearest (categories), bilinear or average (continuous).
        #[arg(long, default_value = "nearest")]
        resampling: String,
        /// Units of the values.
        #[arg(long)]
        units: Option<String>,
        /// Do not add the layer to the config file.
        #[arg(long)]
        no_register: bool,
    },
}

fn parse_range(s: &str) -> Result<[f64; 2], String> {
    let (a, b) = s.split_once(',').ok_or("expected MIN,MAX")?;
    let (a, b): (f64, f64) = (
        a.trim().parse().map_err(|_| "MIN is not a number")?,
        b.trim().parse().map_err(|_| "MAX is not a number")?,
    );
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err("MIN must be below MAX".into());
    }
    Ok([a, b])
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
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
    if let Err(e) = planscape::store::StoreUrl::parse(&config.store.url) {
        eprintln!("error: invalid config key `store.url`: {e}");
        return ExitCode::from(2);
    }
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
    let config_path = path.unwrap_or_else(|| PathBuf::from("planscape.toml"));
    let result = runtime.block_on(run(cli.command, config, config_path));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    command: Command,
    config: Config,
    config_path: PathBuf,
) -> Result<(), Box<dyn std::error::Error>> {
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
            rasters,
            raster_resolution,
            large_raster,
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
            if !(raster_resolution.is_finite() && raster_resolution >= 10.0) {
                return Err("--raster-resolution must be at least 10 metres".into());
            }
            let catalog = match &config.conditions {
                Some(c) => Some(planscape::planning::conditions::Catalog::load(&c.catalog)?),
                None => None,
            };
            let written = tokio::task::spawn_blocking(move || {
                let mut written =
                    demo::rasters::generate(&rasters, raster_resolution, large_raster)?;
                // Every metric of the configured catalog gets demo rasters too.
                if let Some(catalog) = catalog {
                    written.extend(demo::rasters::generate_catalog(
                        &catalog,
                        raster_resolution,
                    )?);
                }
                Ok::<_, demo::rasters::RasterDemoError>(written)
            })
            .await??;
            println!(
                "demo rasters: {} written (existing ones kept)",
                written.len()
            );
        }
        Command::Import {
            what:
                ImportCommand::Raster {
                    input,
                    layer,
                    dir,
                    style,
                    range,
                    resampling,
                    units,
                    no_register,
                },
        } => {
            let resampling: planscape::config::Resampling =
                serde_json::from_value(serde_json::Value::String(resampling.clone())).map_err(
                    |_| format!("unknown resampling `{resampling}` (nearest, bilinear, average)"),
                )?;
            // Refuse a style the server could not load before doing any work.
            planscape::style::Style::load(&config.styles_dir, &style)?;
            let opts = planscape::import::ImportOptions {
                input,
                layer,
                dir,
                style,
                range,
                resampling,
                units,
                register: (!no_register).then_some(config_path),
                progress: true,
            };
            let imported =
                tokio::task::spawn_blocking(move || planscape::import::import_raster(&opts))
                    .await??;
            println!(
                "imported: {} (original kept as {})",
                imported.cog.display(),
                imported.original.display()
            );
        }
        Command::Seed(args) => seed_cmd::seed(&config, args).await?,
        Command::Purge {
            layer,
            zoom,
            bbox,
            to,
        } => seed_cmd::purge(&config, &layer, zoom, bbox.as_deref(), to.as_deref()).await?,
        Command::Conditions {
            what:
                ConditionsCommand::Stats {
                    raster,
                    geojson,
                    band,
                    repeat,
                },
        } => {
            let text = std::fs::read_to_string(&geojson)?;
            let value: serde_json::Value = serde_json::from_str(&text)?;
            let (bare, _) = planscape::planning::geometry::extract(&value, usize::MAX)?;
            let shape = planscape::planning::geometry::to_multipolygon(&bare)?;
            let (stats, times) = tokio::task::spawn_blocking(move || {
                let mut times = Vec::new();
                let mut last = None;
                for _ in 0..repeat.max(1) {
                    let started = std::time::Instant::now();
                    last = Some(planscape::planning::stats::zonal_stats_pooled(
                        &raster, band, &shape,
                    ));
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                (last, times)
            })
            .await?;
            let stats = stats.ok_or("no run")??;
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            println!(
                "{}",
                serde_json::json!({ "stats": stats, "median_ms": median, "runs": times.len() })
            );
        }
        Command::Conditions {
            what: ConditionsCommand::Build,
        } => {
            let c = config
                .conditions
                .clone()
                .ok_or("no [conditions] catalog in the configuration")?;
            let written = tokio::task::spawn_blocking(move || {
                let catalog = planscape::planning::conditions::Catalog::load(&c.catalog)?;
                planscape::planning::conditions::build(&catalog, &c.dir)
            })
            .await??;
            println!(
                "conditions: {} element and pillar rasters built",
                written.len()
            );
        }
        Command::User {
            what: UserCommand::Create { email, name, admin },
        } => {
            let password = match std::env::var("PLANSCAPE_USER_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            planscape::accounts::password::check_policy(&password)
                .map_err(|m| format!("password {m}"))?;
            let hash =
                tokio::task::spawn_blocking(move || planscape::accounts::password::hash(&password))
                    .await??;
            planscape::db::migrate(&config.database).await?;
            let client = planscape::db::connect(&config.database).await?;
            let user =
                planscape::accounts::create_user(&client, &email, &name, &hash, admin).await?;
            println!(
                "created user {} <{}>{}",
                user.id,
                user.email,
                if user.is_admin { " (admin)" } else { "" }
            );
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
}
