//! Seeds a realistic probe history into a new database, through the
//! project's own store, and measures the sustained insert rate.
//!
//! Every result goes the daemon's way: the outage tracker
//! ([`deepseek_watch::outage::step`]) decides what it changed and the real
//! single writer stores it with its tracker state, outages, events and
//! outbox rows. Busy waves follow the Beijing day (peaks around 10:00–12:00
//! and 20:00–23:00 Asia/Shanghai, more on weekdays, a few multi-hour waves
//! and launch weeks), with outages of minutes to hours, long-tailed latency
//! (and time to first token for chat probes), occasional `rate_limited`,
//! `timeout` and `down`, and rare user-side episodes. The same `--seed`
//! gives the same history. See `examples/common/history.rs` for the model.
//!
//! ```text
//! cargo run --release --example seed_history -- --db /tmp/dsw/history.db \
//!     [--probes 10] [--days 365] [--interval 30s] [--seed 1] [--end now|RFC3339] \
//!     [--force] [--quiet]
//! ```
//!
//! Next to the database it writes `PATH.toml` (a config for the CLI: the same
//! probes, raw results kept 3650 days, no canaries, no channels), `PATH.key`
//! (a dummy API key the config names) and `PATH.seed.json` (this report). So:
//!
//! ```text
//! target/release/deepseek-watch --config /tmp/dsw/history.db.toml outages --since 30d
//! ```
//!
//! It prints the results written, the insert rate (first result handed to
//! the writer until the writer acknowledges that everything is committed),
//! and the file size after a checkpoint per stored result. Nothing is
//! delivered: no channels are configured. Exit code 0 on success, 1 if
//! seeding failed, 2 on bad usage.

#[path = "common/history.rs"]
mod history;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use history::{SeedOptions, print_report, remove_db, seed};

/// Seeds a realistic probe history into a new database and measures the
/// sustained insert rate.
#[derive(Parser)]
#[command(name = "seed_history")]
struct Cli {
    /// The database to create (a config, key and report are written next to it)
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Number of probes
    #[arg(long, value_name = "N", default_value_t = 10)]
    probes: usize,
    /// Days of history to seed (0 < N <= 36500)
    #[arg(long, value_name = "N", default_value_t = 365.0)]
    days: f64,
    /// Probe interval (at least 1s)
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Seed of the random history: the same seed gives the same history
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// When the history ends: `now` or an RFC 3339 time
    #[arg(long, value_name = "now|RFC3339", default_value = "now", value_parser = parse_end)]
    end: DateTime<Utc>,
    /// Replace the database if it exists
    #[arg(long)]
    force: bool,
    /// No progress output while seeding
    #[arg(long)]
    quiet: bool,
}

/// `now` or an RFC 3339 time.
fn parse_end(v: &str) -> Result<DateTime<Utc>, String> {
    if v == "now" {
        return Ok(Utc::now());
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("write \"now\" or an RFC 3339 time such as 2026-12-01T00:00:00Z ({e})")
        })
}

struct Args {
    opts: SeedOptions,
    force: bool,
}

/// Parses the command line; exits 2 on bad usage (0 for `--help`).
fn parse_args() -> Args {
    let args = Cli::parse();
    let invalid = if args.probes == 0 {
        Some("--probes: \"0\" is not a positive number".to_string())
    } else if !(args.days > 0.0 && args.days <= 36_500.0) {
        Some(format!(
            "--days: \"{}\" is not a number of days (0 < N <= 36500)",
            args.days
        ))
    } else if args.interval < Duration::from_secs(1) {
        Some("--interval must be at least 1s".to_string())
    } else {
        None
    };
    if let Some(e) = invalid {
        Cli::command().error(ErrorKind::ValueValidation, e).exit();
    }
    Args {
        opts: SeedOptions {
            db: args.db,
            probes: args.probes,
            days: args.days,
            interval: args.interval,
            seed: args.seed,
            end: args.end,
            progress: !args.quiet,
        },
        force: args.force,
    }
}

fn main() -> ExitCode {
    let args = parse_args();
    if args.force {
        if let Err(e) = remove_db(&args.opts.db) {
            eprintln!("seed_history: {e:#}");
            return ExitCode::from(1);
        }
    }
    let o = &args.opts;
    eprintln!(
        "seeding {}: {} probes, {} days every {}, seed {}",
        o.db.display(),
        o.probes,
        o.days,
        humantime::format_duration(o.interval),
        o.seed
    );
    match seed(o) {
        Ok(report) => {
            print_report(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seed_history: {e:#}");
            ExitCode::from(1)
        }
    }
}
