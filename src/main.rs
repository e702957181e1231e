//! The `planscape` command line: parse, start logging and the runtime, run the subcommand
//! (see [`planscape::cli`]).

use std::process::ExitCode;

use clap::Parser;
use planscape::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging(cli.log_format);
    let blocking = match planscape::memory::blocking_threads_from_env() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(cli::run(cli));
    // Blocking work still under way (a tile render of a request dropped when the
    // shutdown grace ran out) must not hold the exit: wait for it briefly, not forever.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}
