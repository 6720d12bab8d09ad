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

use history::{SeedOptions, parse_end, print_report, remove_db, seed};

const USAGE: &str = "usage: cargo run --release --example seed_history -- --db PATH [--probes N] \
                     [--days N] [--interval DUR] [--seed N] [--end now|RFC3339] [--force] [--quiet]\n\
                     defaults: --probes 10 --days 365 --interval 30s --seed 1 --end now";

struct Args {
    opts: SeedOptions,
    force: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut db = None;
    let mut opts = SeedOptions {
        db: PathBuf::new(),
        probes: 10,
        days: 365.0,
        interval: Duration::from_secs(30),
        seed: 1,
        end: chrono::Utc::now(),
        progress: true,
    };
    let mut force = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--db" => db = Some(PathBuf::from(value()?)),
            "--probes" => {
                let v = value()?;
                opts.probes = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--probes: {v:?} is not a positive number"))?;
            }
            "--days" => {
                let v = value()?;
                opts.days = v
                    .parse()
                    .ok()
                    .filter(|d: &f64| *d > 0.0 && *d <= 36_500.0)
                    .ok_or_else(|| {
                        format!("--days: {v:?} is not a number of days (0 < N <= 36500)")
                    })?;
            }
            "--interval" => {
                let v = value()?;
                opts.interval = humantime::parse_duration(&v)
                    .map_err(|e| format!("--interval: {v:?} is not a duration such as 30s: {e}"))?;
                if opts.interval < Duration::from_secs(1) {
                    return Err("--interval must be at least 1s".to_string());
                }
            }
            "--seed" => {
                let v = value()?;
                opts.seed = v
                    .parse()
                    .map_err(|_| format!("--seed: {v:?} is not a whole number"))?;
            }
            "--end" => opts.end = parse_end(&value()?).map_err(|e| e.to_string())?,
            "--force" => force = true,
            "--quiet" => opts.progress = false,
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    opts.db = db.ok_or("--db PATH is required")?;
    Ok(Args { opts, force })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("seed_history: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
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
