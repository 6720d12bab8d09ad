//! History benchmark: a year of results for 10 probes, and how fast the CLI
//! answers over it.
//!
//! Unless `--reuse` names an existing database, it first seeds one with the
//! code of `examples/seed_history.rs` (shared through
//! `examples/common/history.rs`): 10 probes every 30 s for 365 days, about
//! 10.5 million results, written through the project's real single writer.
//! That run gives the sustained insert rate (first result handed to the
//! writer until the writer acknowledges that all are committed) and, after a
//! checkpoint, the file size (database plus `-wal`) per stored result.
//!
//! Then it runs the release binary as a user would,
//! `deepseek-watch --config PATH.toml <command>` (the config written next to
//! the database), and times each command from spawn to exit:
//!
//! | command | target |
//! |---|---|
//! | `stats --since 365d --format json` | 300 ms |
//! | `stats --since 365d --by-hour --tz Asia/Shanghai --format json` | 300 ms |
//! | `outages --since 365d --format json` | 50 ms |
//! | `status --json` | 50 ms |
//!
//! Cold runs first evict the database files from the page cache
//! (`dd iflag=nocache`, which asks the kernel to drop the clean cached pages
//! of just those files; the binary stays cached); warm runs follow one
//! untimed run. It reports the median and the maximum of each. The verdict
//! (PASS/MISS) compares the warm median with the target; the insert rate
//! must be at least 50 000 results/s and the size at most 30 bytes per
//! result. A command the binary does not have yet (such as `stats` before it
//! lands) is reported as not available.
//!
//! Build the daemon first, then run:
//!
//! ```text
//! cargo build --release
//! cargo run --release --example bench_history -- [--db PATH] [--reuse] [--quick] \
//!     [--runs 7] [--cold 3] [--seed 1] [--bin target/release/deepseek-watch]
//! ```
//!
//! `--db` defaults to `/tmp/deepseek-watch-bench/history.db` (`quick.db` with
//! `--quick`), which is replaced on each run without `--reuse`; another
//! existing file is only replaced with `--force`. `--quick` seeds 30 days
//! instead of 365 for a fast sanity run. `--reuse` measures an existing
//! database seeded by `seed_history` (its insert rate then comes from the
//! seed report saved next to it). Exit code 0 once the figures are printed
//! (PASS or MISS alike), 1 if something could not be measured, 2 on bad
//! usage or a missing binary.

#[path = "common/history.rs"]
mod history;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use history::{SeedOptions, SeedReport, config_path, db_bytes, print_report, remove_db, seed};

const TARGET_INSERT_RATE: f64 = 50_000.0;
const TARGET_BYTES_PER_RESULT: f64 = 30.0;
const DEFAULT_DIR: &str = "/tmp/deepseek-watch-bench";

/// The timed commands: arguments after `--config PATH`, target, and whether
/// the `stats` command is needed.
const COMMANDS: [(&[&str], u64); 4] = [
    (&["stats", "--since", "365d", "--format", "json"], 300),
    (
        &[
            "stats",
            "--since",
            "365d",
            "--by-hour",
            "--tz",
            "Asia/Shanghai",
            "--format",
            "json",
        ],
        300,
    ),
    (&["outages", "--since", "365d", "--format", "json"], 50),
    (&["status", "--json"], 50),
];

/// Seeds a year of results for 10 probes (or reuses a seeded database) and
/// times the CLI's answers over it.
#[derive(Parser)]
#[command(name = "bench_history")]
struct Options {
    /// The database [default: /tmp/deepseek-watch-bench/history.db, quick.db with --quick]
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Measure an existing database seeded by seed_history instead of seeding one
    #[arg(long)]
    reuse: bool,
    /// Seed 30 days instead of 365 for a fast sanity run
    #[arg(long)]
    quick: bool,
    /// Replace an existing --db other than the default
    #[arg(long)]
    force: bool,
    /// Warm runs per command, after one untimed run (at least 1)
    #[arg(long, value_name = "N", default_value_t = 7)]
    runs: usize,
    /// Cold runs per command, each after evicting the database from the page cache
    #[arg(long, value_name = "N", default_value_t = 3)]
    cold: usize,
    /// Seed of the random history
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// The daemon binary to time
    #[arg(long, value_name = "PATH", default_value_os_t = default_bin())]
    bin: PathBuf,
}

fn default_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/deepseek-watch")
}

/// Parses the command line; exits 2 on bad usage (0 for `--help`).
fn parse_args() -> Options {
    let opts = Options::parse();
    if opts.runs == 0 {
        Options::command()
            .error(
                ErrorKind::ValueValidation,
                "--runs: \"0\" is not a number of at least 1",
            )
            .exit();
    }
    opts
}

/// Wall times of one command, or why it has none.
enum Timing {
    Measured {
        cold: Vec<Duration>,
        warm: Vec<Duration>,
        /// A fact from the answer showing it covered the data.
        note: String,
    },
    Unavailable(String),
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut s = v.to_vec();
    s.sort();
    match s.len() {
        0 => None,
        n if n % 2 == 1 => Some(s[n / 2]),
        n => Some((s[n / 2 - 1] + s[n / 2]) / 2),
    }
}

fn max(v: &[Duration]) -> Option<Duration> {
    v.iter().max().copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_string(),
        |d| format!("{:.1}", d.as_secs_f64() * 1000.0),
    )
}

/// Asks the kernel to drop the cached pages of the database files.
fn evict(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = history::sibling(db, suffix);
        if !p.exists() {
            continue;
        }
        // Dirty pages cannot be dropped: write them first.
        std::fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", p.display()))?;
        let status = Command::new("dd")
            .arg(format!("if={}", p.display()))
            .args(["iflag=nocache", "count=0", "status=none"])
            .status()
            .context("cannot run dd to evict the database from the page cache")?;
        if !status.success() {
            bail!("dd iflag=nocache failed on {}", p.display());
        }
    }
    Ok(())
}

/// Runs the binary once; returns its wall time and stdout, or an error
/// naming its exit status and stderr.
fn run_once(bin: &Path, config: &Path, args: &[&str]) -> anyhow::Result<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let took = start.elapsed();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "exit {}: {}",
            out.status.code().unwrap_or(-1),
            err.lines().next().unwrap_or("").trim()
        );
    }
    Ok((took, out.stdout))
}

/// What the answer says about the data it covered.
fn describe(args: &[&str], stdout: &[u8]) -> anyhow::Result<String> {
    let v: serde_json::Value = serde_json::from_slice(stdout).context("the answer is not JSON")?;
    Ok(match args[0] {
        "stats" => {
            let probes = v["probes"].as_array().map_or(&[][..], Vec::as_slice);
            let results: u64 = probes.iter().filter_map(|p| p["results"].as_u64()).sum();
            let hours = probes
                .first()
                .and_then(|p| p["by_hour"].as_array())
                .map_or(0, Vec::len);
            if args.contains(&"--by-hour") {
                format!(
                    "{} probes, {results} results, {hours} hour rows each",
                    probes.len()
                )
            } else {
                format!("{} probes, {results} results", probes.len())
            }
        }
        "outages" => format!("{} outages", v.as_array().map_or(0, Vec::len)),
        "status" => {
            let probes = v["probes"].as_array().map_or(&[][..], Vec::as_slice);
            format!("{} probes", probes.len())
        }
        _ => String::new(),
    })
}

fn measure(o: &Options, db: &Path, config: &Path, args: &[&str]) -> anyhow::Result<Timing> {
    if args[0] == "stats" {
        // Not every build has `stats` yet: ask its help before timing.
        if let Err(e) = run_once(&o.bin, config, &["stats", "--help"]) {
            return Ok(Timing::Unavailable(format!("`stats` not available ({e})")));
        }
    }
    let mut cold = Vec::new();
    for _ in 0..o.cold {
        evict(db)?;
        match run_once(&o.bin, config, args) {
            Ok((d, _)) => cold.push(d),
            Err(e) => return Ok(Timing::Unavailable(format!("failed: {e}"))),
        }
    }
    // One untimed run warms the cache and checks the answer.
    let note = match run_once(&o.bin, config, args) {
        Ok((_, out)) => describe(args, &out).unwrap_or_else(|e| format!("unexpected answer: {e}")),
        Err(e) => return Ok(Timing::Unavailable(format!("failed: {e}"))),
    };
    let mut warm = Vec::new();
    for _ in 0..o.runs {
        let (d, _) = run_once(&o.bin, config, args)?;
        warm.push(d);
    }
    Ok(Timing::Measured { cold, warm, note })
}

fn result_count(db: &Path) -> anyhow::Result<u64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open {}", db.display()))?;
    let n: i64 = conn.query_row("SELECT count(*) FROM result", [], |r| r.get(0))?;
    Ok(n as u64)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews
/// every figure here, so they are printed with them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn run(o: &Options) -> anyhow::Result<()> {
    let default_db = o.db.is_none();
    let db = o.db.clone().unwrap_or_else(|| {
        Path::new(DEFAULT_DIR).join(if o.quick { "quick.db" } else { "history.db" })
    });
    let config = config_path(&db);
    let (days, label) = if o.quick {
        (30.0, "30 days (--quick)")
    } else {
        (365.0, "365 days")
    };

    println!("load average at start: {}", load_average());
    let report = if o.reuse && db.exists() {
        if !config.exists() {
            bail!(
                "{} has no config next to it ({}); seed it with seed_history, or drop --reuse",
                db.display(),
                config.display()
            );
        }
        println!("reusing {}", db.display());
        SeedReport::load(&db).ok()
    } else {
        if o.reuse {
            println!("{} does not exist yet: seeding it", db.display());
        }
        if db.exists() {
            if default_db || o.force {
                remove_db(&db)?;
            } else {
                bail!(
                    "{} exists; pass --reuse to measure it, --force to replace it, or another --db",
                    db.display()
                );
            }
        }
        println!("seeding {}: 10 probes every 30s for {label}", db.display());
        let r = seed(&SeedOptions {
            db: db.clone(),
            probes: 10,
            days,
            interval: Duration::from_secs(30),
            seed: o.seed,
            end: chrono::Utc::now(),
            progress: true,
        })?;
        print_report(&r);
        Some(r)
    };

    let results = result_count(&db)?;
    let bytes = db_bytes(&db);
    let per_result = bytes as f64 / results.max(1) as f64;

    println!();
    println!(
        "machine: {} CPUs ({}), load average {}; binary {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        load_average(),
        o.bin.display()
    );
    println!(
        "database: {results} results, {bytes} bytes; cold = after evicting the database from the page cache; \
         {} cold and {} warm runs per command",
        o.cold, o.runs
    );
    println!();

    let mut rows: Vec<[String; 7]> = Vec::new();
    let mut notes = Vec::new();
    let mut failed = false;
    for (args, target_ms) in COMMANDS {
        let name = args.join(" ");
        eprintln!("timing {name}");
        match measure(o, &db, &config, args)? {
            Timing::Measured { cold, warm, note } => {
                let m = median(&warm).unwrap_or_default();
                rows.push([
                    name.clone(),
                    ms(median(&cold)),
                    ms(max(&cold)),
                    ms(Some(m)),
                    ms(max(&warm)),
                    format!("<= {target_ms} ms"),
                    verdict(m <= Duration::from_millis(target_ms)).to_string(),
                ]);
                notes.push(format!("{name}: {note}"));
            }
            Timing::Unavailable(why) => {
                if !why.starts_with("`stats` not available") {
                    failed = true;
                }
                rows.push([
                    name.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("<= {target_ms} ms"),
                    "n/a".into(),
                ]);
                notes.push(format!("{name}: {why}"));
            }
        }
    }
    let dash = || "-".to_string();
    match &report {
        Some(r) => rows.push([
            format!("insert rate, results/s ({} results)", r.results),
            dash(),
            dash(),
            format!("{:.0}", r.results_per_sec),
            dash(),
            format!(">= {TARGET_INSERT_RATE:.0}"),
            verdict(r.results_per_sec >= TARGET_INSERT_RATE).to_string(),
        ]),
        None => rows.push([
            "insert rate, results/s".into(),
            dash(),
            dash(),
            "not measured (no seed report)".into(),
            dash(),
            format!(">= {TARGET_INSERT_RATE:.0}"),
            "n/a".into(),
        ]),
    }
    rows.push([
        "bytes per stored result (db + wal)".into(),
        dash(),
        dash(),
        format!("{per_result:.1}"),
        dash(),
        format!("<= {TARGET_BYTES_PER_RESULT:.0}"),
        verdict(per_result <= TARGET_BYTES_PER_RESULT).to_string(),
    ]);

    let header = [
        "figure", "cold med", "cold max", "warm med", "warm max", "target", "verdict",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        println!("{}", parts.join("  "));
    };
    line(&header);
    for r in &rows {
        line(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    println!(
        "(times in ms, wall clock from spawn to exit; verdict on the warm median; load average now {})",
        load_average()
    );
    println!();
    for n in &notes {
        println!("{n}");
    }
    if let Some(r) = &report {
        println!(
            "insert rate from seeding {} .. {} (seed {}): {} results in {:.2} s",
            r.start, r.end, r.seed, r.results, r.insert_secs
        );
    }
    if failed {
        bail!("a command failed; see above");
    }
    Ok(())
}

fn main() -> ExitCode {
    let opts = parse_args();
    if !opts.bin.exists() {
        eprintln!(
            "bench_history: {} does not exist; build it first with `cargo build --release`, or pass --bin",
            opts.bin.display()
        );
        return ExitCode::from(2);
    }
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_history: {e:#}");
            ExitCode::from(1)
        }
    }
}
