//! The `deepseek-watch` binary: parse arguments, set up logging, run the
//! command, map the outcome to an exit code. Everything else is the library.

use std::process::ExitCode;

use clap::Parser;
use deepseek_watch::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if matches!(cli.command, Command::Run) {
        "info"
    } else {
        "warn"
    };
    deepseek_watch::logging::init(level);
    // One thread drives every probe: they spend their lives waiting on the
    // network, and a single thread saves the wake-ups and hand-offs between
    // workers (measured by examples/footprint.rs). The database writer has
    // its own thread, so a slow disk never stalls the probes.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deepseek-watch: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_UNAVAILABLE);
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("deepseek-watch: {e:#}");
            ExitCode::from(cli::exit_code_for(&e))
        }
    }
}
