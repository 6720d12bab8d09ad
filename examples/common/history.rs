//! Synthetic but realistic probe history, written through the project's own
//! store: the shared core of `examples/seed_history.rs` and
//! `examples/bench_history.rs` (included by both with `#[path]`).
//!
//! Nothing here writes SQL. Every result goes the way the daemon sends it:
//! [`outage::step`] decides what the result changed, and the real single
//! writer ([`Writer`]) stores the result, the tracker state, outage rows,
//! events and outbox rows in its own transactions (and whatever else it
//! maintains, such as rollups). The probes come from a config parsed by the
//! project's config parser, so names, kinds, targets and thresholds are what
//! a user's config would give.
//!
//! The model of DeepSeek behind the numbers, all driven by one seeded PRNG:
//!
//! - Load follows the Beijing day (UTC+8, no DST): peaks around 10:00–12:00
//!   and 20:00–23:00, a smaller one mid-afternoon, quiet nights, lighter
//!   weekends; each day has its own log-normal factor and a few "launch
//!   weeks" a year are much busier.
//! - Busy waves start more often the higher the load: minutes long mostly,
//!   sometimes several hours. A wave hits the whole API, one model, the web
//!   chat, or everything, with its own severity, so results flap inside it.
//!   Cheap endpoints (models, balance) and a third-party relay suffer less.
//! - A few major outages (`down`/`timeout`) a year, rate-limit waves,
//!   isolated failures that rarely reach the failure threshold, and rare
//!   user-side episodes: a revoked key (`auth_error`), a Cloudflare challenge
//!   on the web chat (`blocked`), a retired model (`invalid_request`), a
//!   balance that dips below `min_balance` (`billing_error`), and this host
//!   losing its network (`offline`).
//! - Latency is log-normal with a long tail and grows with load; chat probes
//!   also get a time to first token; answers slower than `slow_threshold`
//!   are `slow`. Errors and details use the texts the classifier writes.
//! - While a probe is in outage it runs every `outage_interval`, keeping its
//!   regular phase, as the scheduler does.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;

use deepseek_watch::config::{self, Config, ProbeConfig};
use deepseek_watch::daemon::{probe_meta, routes};
use deepseek_watch::outage::{self, Change, Thresholds, TrackerState};
use deepseek_watch::result::{ERROR_MAX_CHARS, ProbeResult, Status, truncate_chars};
use deepseek_watch::schedule::Schedule;
use deepseek_watch::scheduler::first_offset;
use deepseek_watch::store::{self, record::Recorded, writer::Writer};

/// Raw results are kept this long by the generated config, so a year of
/// history is never trimmed by retention while it is seeded or measured.
pub const RETENTION: &str = "3650d";

/// Results handed to the writer between two flush markers.
const CHUNK: usize = 16_384;
/// Flush markers not yet acknowledged before the producer waits: bounds the
/// writer's (unbounded) queue to a few chunks while keeping it busy.
const IN_FLIGHT: usize = 3;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// Asia/Shanghai is UTC+8 all year.
const BEIJING: i64 = 8 * HOUR;

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub db: PathBuf,
    pub probes: usize,
    pub days: f64,
    pub interval: Duration,
    pub seed: u64,
    pub end: DateTime<Utc>,
    /// Print progress lines while seeding.
    pub progress: bool,
}

/// What seeding did and how fast.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SeedReport {
    pub db: String,
    pub config: String,
    pub probes: usize,
    pub days: f64,
    pub interval_secs: f64,
    pub seed: u64,
    pub start: String,
    pub end: String,
    pub results: u64,
    /// Outages opened (as the tracker decided).
    pub outages: u64,
    /// Events written (outage, recovered, action_needed, reminder).
    pub events: u64,
    pub status_counts: Vec<(String, u64)>,
    /// First result handed to the writer until the writer acknowledged that
    /// everything is committed.
    pub insert_secs: f64,
    pub results_per_sec: f64,
    /// Database plus `-wal` after a checkpoint.
    pub file_bytes: u64,
    pub bytes_per_result: f64,
    /// Bytes per table and index, from SQLite's `dbstat` (empty if the
    /// bundled SQLite lacks it).
    pub tables: Vec<(String, u64)>,
}

impl SeedReport {
    /// Where the report of a seeded database is kept, next to it.
    pub fn path_for(db: &Path) -> PathBuf {
        sibling(db, ".seed.json")
    }

    pub fn load(db: &Path) -> anyhow::Result<SeedReport> {
        let path = SeedReport::path_for(db);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a seed report", path.display()))
    }
}

/// `db` with `suffix` appended to its file name: `h.db` -> `h.db.toml`.
pub fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The config written next to a seeded database, for the CLI.
pub fn config_path(db: &Path) -> PathBuf {
    sibling(db, ".toml")
}

/// Removes a database and its `-wal`/`-shm` files (and our side files).
pub fn remove_db(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", ".toml", ".key", ".seed.json"] {
        let p = sibling(db, suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }
    Ok(())
}

/// Size of the database plus its `-wal`, in bytes.
pub fn db_bytes(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(sibling(db, s)).ok())
        .map(|m| m.len())
        .sum()
}

// ---------------------------------------------------------------------------
// The probes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Chat,
    Models,
    Balance,
}

/// Which part of the world a probe looks at: decides which incidents hit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// chat.deepseek.com, platform.deepseek.com.
    Web,
    /// api.deepseek.com.
    Api,
    /// The status page, hosted elsewhere.
    StatusPage,
    /// DeepSeek's models through a third-party relay.
    Relay,
}

struct Spec {
    name: &'static str,
    kind: Kind,
    group: Group,
    /// The model a chat probe asks (its detail names it).
    model: &'static str,
    /// The probe's keys after `name` and `kind`; `{KEY}` is the key file.
    toml: &'static str,
}

/// A config as a DeepSeek user might write it. More probes than these
/// repeat the list with a numeric suffix (`api-flash-2`).
const CATALOGUE: [Spec; 10] = [
    Spec {
        name: "web",
        kind: Kind::Http,
        group: Group::Web,
        model: "",
        toml: "url = \"https://chat.deepseek.com/\"\nbusy_markers = [\"server is busy\", \"服务器繁忙\"]\n",
    },
    Spec {
        name: "api-flash",
        kind: Kind::Chat,
        group: Group::Api,
        model: "deepseek-flash",
        toml: "model = \"deepseek-flash\"\napi_key = { file = \"{KEY}\" }\n",
    },
    Spec {
        name: "api-pro",
        kind: Kind::Chat,
        group: Group::Api,
        model: "deepseek-v4-pro",
        toml: "model = \"deepseek-v4-pro\"\napi_key = { file = \"{KEY}\" }\n",
    },
    Spec {
        name: "models",
        kind: Kind::Models,
        group: Group::Api,
        model: "deepseek-flash",
        toml: "model = \"deepseek-flash\"\napi_key = { file = \"{KEY}\" }\n",
    },
    Spec {
        name: "balance",
        kind: Kind::Balance,
        group: Group::Api,
        model: "",
        toml: "min_balance = 1.0\napi_key = { file = \"{KEY}\" }\n",
    },
    Spec {
        name: "platform",
        kind: Kind::Http,
        group: Group::Web,
        model: "",
        toml: "url = \"https://platform.deepseek.com/\"\n",
    },
    Spec {
        name: "api-pro-beta",
        kind: Kind::Chat,
        group: Group::Api,
        model: "deepseek-v4-pro",
        toml: "model = \"deepseek-v4-pro\"\nbase_url = \"https://api.deepseek.com/beta\"\napi_key = { file = \"{KEY}\" }\n",
    },
    Spec {
        name: "status-page",
        kind: Kind::Http,
        group: Group::StatusPage,
        model: "",
        toml: "url = \"https://status.deepseek.com/\"\n",
    },
    Spec {
        name: "openrouter-flash",
        kind: Kind::Chat,
        group: Group::Relay,
        model: "deepseek/deepseek-flash",
        toml: "model = \"deepseek/deepseek-flash\"\nbase_url = \"https://openrouter.ai/api/v1\"\napi_key = { file = \"{KEY}\" }\n",
    },
    Spec {
        name: "models-pro",
        kind: Kind::Models,
        group: Group::Api,
        model: "deepseek-v4-pro",
        toml: "model = \"deepseek-v4-pro\"\napi_key = { file = \"{KEY}\" }\n",
    },
];

fn spec(i: usize) -> &'static Spec {
    &CATALOGUE[i % CATALOGUE.len()]
}

fn probe_name(i: usize) -> String {
    match i / CATALOGUE.len() {
        0 => spec(i).name.to_string(),
        round => format!("{}-{}", spec(i).name, round + 1),
    }
}

/// The config text for `probes` probes every `interval`, storing into `db`,
/// reading API keys from `key_file`: no canaries, no channels.
pub fn config_text(db: &Path, key_file: &Path, probes: usize, interval: Duration) -> String {
    let mut t = format!(
        "# Written by examples/seed_history.rs for the history it seeded.\n\
         [storage]\npath = {db:?}\nretention = \"{RETENTION}\"\n\n\
         [defaults]\ninterval = \"{}\"\n\n\
         [connectivity]\ncanaries = []\n",
        humantime::format_duration(interval),
        db = db.display().to_string(),
    );
    let key = key_file.display().to_string();
    for i in 0..probes {
        let s = spec(i);
        let kind = match s.kind {
            Kind::Http => "http",
            Kind::Chat => "chat",
            Kind::Models => "models",
            Kind::Balance => "balance",
        };
        t.push_str(&format!(
            "\n[[probe]]\nname = \"{}\"\nkind = \"{kind}\"\n{}",
            probe_name(i),
            s.toml.replace("{KEY}", &key)
        ));
    }
    t
}

/// Writes the config (and a dummy API key file) next to `db` and parses it
/// with the project's parser.
pub fn write_config(db: &Path, probes: usize, interval: Duration) -> anyhow::Result<Config> {
    let key_file = sibling(db, ".key");
    std::fs::write(&key_file, "sk-seeded-history-not-a-real-key\n")
        .with_context(|| format!("cannot write {}", key_file.display()))?;
    let path = config_path(db);
    std::fs::write(&path, config_text(db, &key_file, probes, interval))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(config::load_file(&path)?)
}

// ---------------------------------------------------------------------------
// Randomness.

/// SplitMix64: tiny, fast, and good enough for synthetic data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform in `lo..=hi`.
    pub fn int(&mut self, lo: u64, hi: u64) -> u64 {
        lo + ((u128::from(self.next_u64()) * u128::from(hi - lo + 1)) >> 64) as u64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Index into `weights`, chosen in proportion to them.
    pub fn pick(&mut self, weights: &[f64]) -> usize {
        let mut x = self.f64() * weights.iter().sum::<f64>();
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------
// The world: load and incidents.

/// What failing results of an incident look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    Busy,
    RateLimited,
    Down,
    Auth,
    Blocked,
    Offline,
    Invalid,
}

#[derive(Debug, Clone, Copy)]
enum Scope {
    /// api.deepseek.com overloaded.
    Api,
    /// One model overloaded.
    Model(&'static str),
    /// The web chat.
    Web,
    /// Web and API alike.
    Everything,
    /// Every probe that uses the DeepSeek API key.
    ApiKey,
    /// This host: every probe.
    All,
    /// One probe.
    One(usize),
}

struct Incident {
    start: i64,
    end: i64,
    mix: Mix,
    /// Per probe: how likely one of its results fails (0: not affected).
    hit: Vec<f64>,
}

fn hit(scope: Scope, severity: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let s = spec(i);
            let f = match (scope, s.group, s.kind) {
                (Scope::All, _, _) => 1.0,
                (Scope::One(p), _, _) => f64::from(u8::from(p == i)),
                (Scope::ApiKey, Group::Api, _) => 1.0,
                (Scope::Api | Scope::Everything, Group::Api, Kind::Chat) => 1.0,
                // Cheap endpoints hold up better than completions, and a
                // relay fails over to other providers.
                (Scope::Api, Group::Api, _) => 0.08,
                (Scope::Everything, Group::Api, _) => 0.3,
                (Scope::Api | Scope::Everything, Group::Relay, _) => 0.15,
                (Scope::Web | Scope::Everything, Group::Web, _) => 1.0,
                (Scope::Model(m), Group::Api, Kind::Chat) if s.model == m => 1.0,
                (Scope::Model(m), Group::Relay, _) if s.model.ends_with(m) => 0.15,
                _ => 0.0,
            };
            (f * severity).min(1.0)
        })
        .collect()
}

/// The day's traffic, the same for every probe.
struct World {
    /// Per Beijing day from `first_day` on: how busy it is overall.
    day_factor: Vec<f64>,
    first_day: i64,
}

/// Relative traffic at a Beijing hour of day (0..24): peaks late morning and
/// evening, a smaller one mid-afternoon, quiet at night. 0.15..1.
fn daily_curve(h: f64) -> f64 {
    let bump = |c: f64, w: f64| {
        let d = (h - c).abs().min(24.0 - (h - c).abs());
        (-(d / w).powi(2) / 2.0).exp()
    };
    0.15 + 0.85
        * bump(11.0, 1.1)
            .max(bump(21.5, 1.4))
            .max(0.55 * bump(15.5, 1.5))
}

impl World {
    fn new(start: i64, end: i64, rng: &mut Rng) -> World {
        let first_day = (start + BEIJING).div_euclid(DAY);
        let last_day = (end + BEIJING).div_euclid(DAY);
        let days = (last_day - first_day + 1) as usize;
        let mut day_factor: Vec<f64> = (0..days).map(|_| rng.lognormal(1.0, 0.45)).collect();
        // Launch weeks: a new model or a viral moment, a few times a year.
        let launches = ((days as f64 / 365.0) * 3.0)
            .round()
            .max(f64::from(u8::from(days >= 20))) as usize;
        for _ in 0..launches {
            let at = rng.int(0, days as u64 - 1) as usize;
            let len = rng.int(4, 10) as usize;
            for f in day_factor.iter_mut().skip(at).take(len) {
                *f *= rng.range(1.8, 2.8);
            }
        }
        World {
            day_factor,
            first_day,
        }
    }

    /// How busy DeepSeek is at `at`: 0.1 on a quiet night, ~1 at a normal
    /// peak, 3+ at a launch-week peak.
    fn pressure(&self, at: i64) -> f64 {
        let local = at + BEIJING;
        let day = local.div_euclid(DAY);
        let hour = local.rem_euclid(DAY) as f64 / HOUR as f64;
        // 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
        let weekend = (day + 3).rem_euclid(7) >= 5;
        let d = self
            .day_factor
            .get((day - self.first_day) as usize)
            .copied()
            .unwrap_or(1.0);
        daily_curve(hour) * if weekend { 0.6 } else { 1.0 } * d
    }
}

/// Every incident in `[start, end)`, sorted by start.
fn incidents(world: &World, start: i64, end: i64, n: usize, rng: &mut Rng) -> Vec<Incident> {
    let mut out = Vec::new();
    let add = |out: &mut Vec<Incident>, start: i64, minutes: f64, mix: Mix, hit: Vec<f64>| {
        out.push(Incident {
            start,
            end: start + (minutes * MINUTE as f64) as i64,
            mix,
            hit,
        });
    };
    // Busy waves, hour by hour, likelier under load.
    let mut h = start - start.rem_euclid(HOUR);
    while h < end {
        let p = 0.11 * world.pressure(h + HOUR / 2);
        if rng.chance(p.min(0.9)) {
            let at = h + rng.int(0, (HOUR - 1) as u64) as i64;
            let minutes = if rng.chance(0.07) {
                rng.range(90.0, 300.0)
            } else {
                rng.lognormal(11.0, 0.9).clamp(2.0, 180.0)
            };
            let mix = [Mix::Busy, Mix::RateLimited, Mix::Down][rng.pick(&[0.75, 0.08, 0.17])];
            let scope = [
                Scope::Api,
                Scope::Model("deepseek-flash"),
                Scope::Model("deepseek-v4-pro"),
                Scope::Web,
                Scope::Everything,
            ][rng.pick(&[0.45, 0.10, 0.15, 0.15, 0.15])];
            // Most waves fail nearly every request; some let a fair share
            // through, so the probe flaps between outage and recovery.
            let severity = if rng.chance(0.75) {
                rng.range(0.85, 1.0)
            } else {
                rng.range(0.5, 0.85)
            };
            add(&mut out, at, minutes, mix, hit(scope, severity, n));
        }
        h += HOUR;
    }
    // Rarer episodes: a yearly rate scaled to the span (rounded at random,
    // so a year has about that many, never by luck none), at random times.
    let years = (end - start) as f64 / (365.0 * DAY as f64);
    let times = |per_year: f64, rng: &mut Rng| -> Vec<i64> {
        let x = per_year * years;
        let count = x.floor() as u64 + u64::from(rng.chance(x.fract()));
        (0..count)
            .map(|_| start + rng.int(0, (end - start - 1).max(0) as u64) as i64)
            .collect()
    };
    for t in times(4.0, rng) {
        let severity = rng.range(0.95, 1.0);
        let minutes = rng.range(60.0, 360.0);
        add(
            &mut out,
            t,
            minutes,
            Mix::Down,
            hit(Scope::Everything, severity, n),
        );
    }
    for t in times(2.0, rng) {
        let minutes = rng.range(15.0, 180.0);
        add(&mut out, t, minutes, Mix::Auth, hit(Scope::ApiKey, 1.0, n));
    }
    for t in times(8.0, rng) {
        let minutes = rng.lognormal(12.0, 0.8).clamp(3.0, 120.0);
        add(&mut out, t, minutes, Mix::Blocked, hit(Scope::Web, 0.85, n));
    }
    for t in times(3.0, rng) {
        let minutes = rng.lognormal(6.0, 1.0).clamp(1.0, 120.0);
        add(&mut out, t, minutes, Mix::Offline, hit(Scope::All, 1.0, n));
    }
    let chats: Vec<usize> = (0..n).filter(|i| spec(*i).kind == Kind::Chat).collect();
    if !chats.is_empty() {
        for t in times(1.0, rng) {
            let p = chats[rng.int(0, chats.len() as u64 - 1) as usize];
            let minutes = rng.range(30.0, 240.0);
            add(
                &mut out,
                t,
                minutes,
                Mix::Invalid,
                hit(Scope::One(p), 1.0, n),
            );
        }
    }
    out.sort_by_key(|i| i.start);
    out
}

/// The API account's balance: spent steadily, topped up some days after it
/// runs low (sometimes too late, which `billing_error` shows).
struct Account {
    balance: f64,
    at: i64,
    top_up_at: Option<i64>,
}

impl Account {
    fn balance_at(&mut self, at: i64, rng: &mut Rng) -> f64 {
        let days = (at - self.at).max(0) as f64 / DAY as f64;
        self.balance = (self.balance - days * 0.6 * rng.range(0.5, 1.5)).max(0.0);
        self.at = at;
        if self.balance < 3.0 && self.top_up_at.is_none() {
            let delay = rng.lognormal(2.5, 0.7).min(6.0) * DAY as f64;
            self.top_up_at = Some(at + delay as i64);
        }
        if self.top_up_at.is_some_and(|t| at >= t) {
            self.balance += 100.0;
            self.top_up_at = None;
        }
        self.balance
    }
}

// ---------------------------------------------------------------------------
// One result.

struct Ctx<'a> {
    world: &'a World,
    rng: Rng,
    account: Account,
}

/// What a failing result of `mix` is, by status.
fn failing_status(mix: Mix, rng: &mut Rng) -> Status {
    match mix {
        Mix::Busy => {
            [Status::Busy, Status::Timeout, Status::RateLimited][rng.pick(&[0.88, 0.07, 0.05])]
        }
        Mix::RateLimited => [Status::RateLimited, Status::Busy][rng.pick(&[0.85, 0.15])],
        Mix::Down => [Status::Down, Status::Timeout][rng.pick(&[0.75, 0.25])],
        Mix::Auth => Status::AuthError,
        Mix::Blocked => Status::Blocked,
        Mix::Offline => Status::Offline,
        Mix::Invalid => Status::InvalidRequest,
    }
}

/// A generated result plus how long the run took (for the outage rhythm).
struct Run {
    result: ProbeResult,
    took_ms: i64,
}

fn ms(x: f64) -> u32 {
    x.round().clamp(1.0, 4.0e9) as u32
}

const OFFLINE_ERRORS: [&str; 2] = [
    "connection failed: dns error: failed to lookup address information: Temporary failure in name resolution",
    "connection failed: tcp connect error: Network is unreachable (os error 101)",
];

impl Ctx<'_> {
    fn run(&mut self, i: usize, p: &ProbeConfig, at: i64, active: &[&Incident]) -> Run {
        let s = spec(i);
        let rng = &mut self.rng;
        let pressure = self.world.pressure(at);
        let mut failing = None;
        let mut degraded: f64 = 0.0;
        for inc in active {
            let h = inc.hit[i];
            if h <= 0.0 || at < inc.start || at >= inc.end {
                continue;
            }
            if failing.is_none() && rng.chance(h) {
                failing = Some(inc.mix);
            } else if matches!(inc.mix, Mix::Busy | Mix::RateLimited | Mix::Down) {
                degraded = degraded.max(h);
            }
        }
        let mut status = match failing {
            Some(mix) => failing_status(mix, rng),
            None => {
                // Isolated failures, more under load.
                let base = match (s.group, s.kind) {
                    (Group::StatusPage, _) | (_, Kind::Models | Kind::Balance) => 0.0006,
                    (_, Kind::Http) => 0.002,
                    _ => 0.003,
                };
                if rng.chance(base * (0.3 + pressure)) {
                    [
                        Status::Busy,
                        Status::Timeout,
                        Status::Down,
                        Status::RateLimited,
                    ][rng.pick(&[0.45, 0.2, 0.2, 0.15])]
                } else {
                    Status::Up
                }
            }
        };
        let load = match s.group {
            Group::StatusPage => 0.0,
            _ => pressure,
        } * (1.0 + 2.0 * degraded);
        let timeout = p.timeout.as_millis() as f64;
        let slow = p.slow_threshold.as_millis() as f64;
        let stall = p.stall_timeout.as_millis() as f64;
        // Time to response headers, with a long tail.
        let (median, sigma, grow) = match (s.group, s.kind) {
            (Group::StatusPage, _) => (140.0, 0.3, 0.0),
            (_, Kind::Http) => (320.0, 0.35, 0.6),
            (Group::Relay, Kind::Chat) => (520.0, 0.4, 0.8),
            (_, Kind::Chat) => (380.0, 0.35, 0.8),
            (_, Kind::Models) => (170.0, 0.3, 0.3),
            (_, Kind::Balance) => (190.0, 0.3, 0.2),
        };
        let mut latency = rng.lognormal(median, sigma) * (1.0 + grow * load);
        if rng.chance(0.006) {
            latency *= rng.range(3.0, 20.0);
        }
        let mut ttft = None;
        if s.kind == Kind::Chat {
            let gen_median = if s.model.contains("pro") {
                1300.0
            } else {
                550.0
            };
            let mut t = latency + rng.lognormal(gen_median, 0.55) * (1.0 + 1.5 * load);
            if rng.chance(0.012) {
                t *= rng.range(3.0, 15.0);
            }
            ttft = Some(t);
        }
        let answer = ttft.unwrap_or(latency);
        if status == Status::Up {
            if answer >= timeout {
                status = Status::Timeout;
            } else if answer >= slow {
                status = Status::Slow;
            }
        }
        let mut balance = None;
        if s.kind == Kind::Balance {
            // The API reports cents.
            let b = (self.account.balance_at(at, rng) * 100.0).round() / 100.0;
            if status.is_usable() && p_min_balance(p).is_some_and(|m| b < m) {
                status = Status::BillingError;
            }
            balance = Some(b);
        }

        let mut r = ProbeResult {
            probe: p.name.clone(),
            at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
            status,
            latency_ms: Some(ms(latency)),
            ttft_ms: None,
            http_status: Some(200),
            error: None,
            detail: None,
        };
        let mut took = answer;
        let quick = rng.lognormal(median * 0.6, 0.4);
        let fail = |r: &mut ProbeResult, code: Option<u16>, lat: Option<f64>, e: &str| {
            r.http_status = code;
            r.latency_ms = lat.map(ms);
            r.error = Some(truncate_chars(e, ERROR_MAX_CHARS));
        };
        let api = s.kind != Kind::Http;
        match status {
            Status::Up | Status::Slow => {
                r.ttft_ms = ttft.map(ms);
                r.detail = match s.kind {
                    Kind::Http => None,
                    Kind::Chat => {
                        let n = if rng.chance(0.7) { 1 } else { 2 };
                        let rate = rng.lognormal(35.0, 0.35).round();
                        let noun = if n == 1 { "token" } else { "tokens" };
                        Some(format!("{} {n} {noun} {rate} tok/s", s.model))
                    }
                    Kind::Models => Some("2 models".to_string()),
                    Kind::Balance => balance.map(|b| format!("balance {b:.2} CNY")),
                };
            }
            Status::Busy if !api => match rng.pick(&[0.7, 0.3]) {
                0 => fail(
                    &mut r,
                    Some(503),
                    Some(quick),
                    "HTTP 503 (service unavailable)",
                ),
                _ => fail(
                    &mut r,
                    Some(200),
                    Some(latency),
                    "busy marker \"服务器繁忙\" in the page",
                ),
            },
            Status::Busy if s.kind == Kind::Chat => match rng.pick(&[0.35, 0.4, 0.15, 0.1]) {
                0 => fail(
                    &mut r,
                    Some(503),
                    Some(quick),
                    "Server overloaded, please try again later.",
                ),
                1 => {
                    let ka = rng.int(4, 10);
                    let e = format!(
                        "stalled {} without a token ({ka} keep-alives)",
                        humantime::format_duration(p.stall_timeout)
                    );
                    fail(&mut r, Some(200), Some(latency), &e);
                    took = latency + stall;
                }
                2 => {
                    let ka = rng.int(2, 6);
                    let e = format!("200 with only keep-alives, no token ({ka} keep-alives)");
                    fail(&mut r, Some(200), Some(latency), &e);
                    took = latency + rng.range(2000.0, stall);
                }
                _ => fail(
                    &mut r,
                    Some(200),
                    Some(latency),
                    "server out of resources (finish_reason insufficient_system_resource)",
                ),
            },
            Status::Busy => fail(
                &mut r,
                Some(503),
                Some(quick),
                "Server overloaded, please try again later.",
            ),
            Status::RateLimited if api => {
                fail(&mut r, Some(429), Some(quick), "Rate Limit Reached")
            }
            Status::RateLimited => fail(
                &mut r,
                Some(429),
                Some(quick),
                "HTTP 429 (too many requests)",
            ),
            Status::Down => {
                let which = rng.pick(&[0.4, 0.2, 0.25, 0.15]);
                match (which, api) {
                    (0, false) => {
                        fail(&mut r, Some(502), Some(quick), "HTTP 502, expected 200-399")
                    }
                    (1, false) => fail(
                        &mut r,
                        Some(504),
                        Some(rng.range(5000.0, 29000.0)),
                        "HTTP 504, expected 200-399",
                    ),
                    (0, true) => fail(&mut r, Some(500), Some(quick), "Internal Server Error"),
                    (1, true) => fail(&mut r, Some(502), Some(quick), "HTTP 502"),
                    (2, true) if s.kind == Kind::Chat => {
                        fail(
                            &mut r,
                            Some(200),
                            Some(latency),
                            "stream cut after 1 token: connection reset by peer",
                        );
                        r.ttft_ms = ttft.map(ms);
                        r.detail = Some(format!("{} 1 token", s.model));
                    }
                    (2, _) => fail(
                        &mut r,
                        None,
                        None,
                        "connection reset: connection reset by peer",
                    ),
                    _ => fail(
                        &mut r,
                        None,
                        None,
                        "connection failed: tcp connect error: Connection refused (os error 111)",
                    ),
                }
                took = f64::from(r.latency_ms.unwrap_or(50));
            }
            Status::Timeout => {
                if s.kind == Kind::Chat {
                    let e = format!(
                        "no complete answer within the timeout ({})",
                        humantime::format_duration(p.timeout)
                    );
                    fail(&mut r, Some(200), Some(latency.min(timeout - 1.0)), &e);
                } else {
                    fail(&mut r, None, None, "no answer within the timeout");
                }
                took = timeout;
            }
            Status::AuthError => fail(
                &mut r,
                Some(401),
                Some(quick),
                "Authentication Fails, Your api key: ****9f3c is invalid",
            ),
            Status::InvalidRequest => match s.kind {
                Kind::Models => {
                    let e = format!(
                        "model \"{}\" is not offered; available: deepseek-flash",
                        s.model
                    );
                    fail(&mut r, Some(200), Some(latency), &e);
                }
                _ => fail(&mut r, Some(400), Some(quick), "Model Not Exist"),
            },
            Status::BillingError => {
                let b = balance.unwrap_or_default();
                let e = format!(
                    "balance {b:.2} CNY is below min_balance {:.2}",
                    p_min_balance(p).unwrap_or(0.0)
                );
                fail(&mut r, Some(200), Some(latency), &e);
                r.detail = Some(format!("balance {b:.2} CNY"));
            }
            Status::Blocked => fail(
                &mut r,
                Some(403),
                Some(quick),
                "Cloudflare challenge page (Just a moment...)",
            ),
            Status::Offline => {
                let e = format!(
                    "{}; every connectivity canary failed too, so this host looks offline",
                    OFFLINE_ERRORS[rng.int(0, 1) as usize]
                );
                fail(&mut r, None, None, &e);
                took = rng.range(5.0, 3000.0);
            }
        }
        Run {
            result: r,
            took_ms: took as i64,
        }
    }
}

fn p_min_balance(p: &ProbeConfig) -> Option<f64> {
    match &p.kind {
        config::ProbeKind::Balance { min_balance, .. } => *min_balance,
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Seeding.

/// Per probe: where its schedule stands, as the scheduler keeps it.
struct Rhythm {
    regular: i64,
    every: i64,
    outage_every: i64,
    thresholds: Thresholds,
    tracker: TrackerState,
}

/// The first tick after `now` in the rhythm of `prev` (missed ticks skipped).
fn next_tick(prev: i64, every: i64, now: i64) -> i64 {
    let next = prev + every;
    if next > now {
        next
    } else {
        next + ((now - next) / every + 1) * every
    }
}

/// Seeds `opts.db` (which must not exist yet) and reports.
pub fn seed(opts: &SeedOptions) -> anyhow::Result<SeedReport> {
    if opts.probes == 0 {
        bail!("--probes must be at least 1");
    }
    if opts.interval < Duration::from_secs(1) {
        bail!("--interval must be at least 1s");
    }
    if opts.days.is_nan() || opts.days <= 0.0 {
        bail!("--days must be more than 0");
    }
    if opts.db.exists() {
        bail!(
            "{} already exists; seeding adds a whole history and needs a new file (pass --force to replace it)",
            opts.db.display()
        );
    }
    if let Some(dir) = opts.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Absolute, so the config written next to it works from anywhere.
    let db = std::path::absolute(&opts.db)
        .with_context(|| format!("cannot resolve {}", opts.db.display()))?;
    let cfg = write_config(&db, opts.probes, opts.interval)?;

    let end = opts.end.timestamp_millis();
    let start = end - (opts.days * DAY as f64) as i64;
    let mut rng = Rng::new(opts.seed);
    let world = World::new(start, end, &mut Rng::new(rng.next_u64()));
    let incidents = incidents(
        &world,
        start,
        end,
        cfg.probes.len(),
        &mut Rng::new(rng.next_u64()),
    );
    let mut ctx = Ctx {
        world: &world,
        rng: Rng::new(rng.next_u64()),
        account: Account {
            balance: 50.0,
            at: start,
            top_up_at: None,
        },
    };

    let conn = store::open_writer(&db)?;
    let metas: Vec<_> = cfg.probes.iter().map(probe_meta).collect();
    let (writer, thread) = Writer::spawn(conn, &metas, routes(&cfg)).map_err(anyhow::Error::msg)?;
    // As the daemon does; the config keeps RETENTION, so nothing seeded is
    // old enough to be deleted.
    writer.retain(cfg.storage.retention);

    let mut rhythms: Vec<Rhythm> = cfg
        .probes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let every = match p.schedule {
                Schedule::Every(d) => d,
                Schedule::Cron { .. } => opts.interval,
            };
            Rhythm {
                regular: start + first_offset(i, cfg.probes.len(), &p.schedule).as_millis() as i64,
                every: every.as_millis() as i64,
                outage_every: p.outage_interval.as_millis().min(every.as_millis()) as i64,
                thresholds: Thresholds {
                    failure: p.failure_threshold,
                    success: p.success_threshold,
                    reminder_every: p.reminder_every,
                },
                tracker: TrackerState::default(),
            }
        })
        .collect();
    let mut queue: BinaryHeap<Reverse<(i64, usize)>> = rhythms
        .iter()
        .enumerate()
        .map(|(i, r)| Reverse((r.regular, i)))
        .collect();

    let expected =
        cfg.probes.len() as f64 * (end - start) as f64 / opts.interval.as_millis() as f64;
    let mut counts = [0u64; Status::ALL.len()];
    let (mut results, mut outages, mut events) = (0u64, 0u64, 0u64);
    let mut next_incident = 0;
    let mut active: Vec<&Incident> = Vec::new();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    let began = Instant::now();
    let mut last_progress = began;
    rt.block_on(async {
        let mut pending = VecDeque::new();
        let mut in_chunk = 0;
        while let Some(Reverse((tick, i))) = queue.pop() {
            if tick >= end {
                continue;
            }
            while next_incident < incidents.len() && incidents[next_incident].start <= tick {
                active.push(&incidents[next_incident]);
                next_incident += 1;
            }
            active.retain(|inc| inc.end > tick);

            // The run starts a few milliseconds after its tick.
            let at = tick + ctx.rng.int(0, 3) as i64;
            let p = &cfg.probes[i];
            let run = ctx.run(i, p, at, &active);
            let rh = &mut rhythms[i];
            let (state, changes) = outage::step(&rh.tracker, run.result.status, at, &rh.thresholds);
            for c in &changes {
                match c {
                    Change::Opened { .. } => {
                        outages += 1;
                        events += 1;
                    }
                    Change::Extended { .. } => {}
                    _ => events += 1,
                }
            }
            counts[usize::from(run.result.status.code())] += 1;
            rh.tracker = state.clone();
            writer.record(Recorded {
                result: run.result,
                state,
                changes,
            });
            results += 1;

            // The scheduler's rhythm: regular ticks, faster while in outage.
            let finished = at + run.took_ms;
            if rh.regular <= finished {
                rh.regular = next_tick(rh.regular, rh.every, finished);
            }
            let next = if rh.tracker.in_outage() {
                rh.regular.min(finished + rh.outage_every)
            } else {
                rh.regular
            };
            queue.push(Reverse((next, i)));

            in_chunk += 1;
            if in_chunk == CHUNK {
                in_chunk = 0;
                // Send the marker now (first poll); wait for an older one.
                let mut f = Box::pin(writer.flush());
                let done = (&mut f).now_or_never().is_some();
                pending.push_back((f, done));
                while pending.len() > IN_FLIGHT {
                    if let Some((f, done)) = pending.pop_front() {
                        if !done {
                            f.await;
                        }
                    }
                }
                if opts.progress && last_progress.elapsed() >= Duration::from_secs(2) {
                    last_progress = Instant::now();
                    let secs = began.elapsed().as_secs_f64();
                    eprintln!(
                        "  {:>5.1}%  {} results, {:.0} s, {:.0} results/s",
                        100.0 * results as f64 / expected,
                        results,
                        secs,
                        results as f64 / secs
                    );
                }
            }
        }
        for (f, done) in pending {
            if !done {
                f.await;
            }
        }
        writer.flush().await;
    });
    let insert_secs = began.elapsed().as_secs_f64();
    drop(writer);
    rt.block_on(thread.join());

    // Checkpoint, so the size counts what a long-running database keeps.
    let conn = rusqlite::Connection::open(&db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let tables = table_sizes(&conn);
    drop(conn);
    let file_bytes = db_bytes(&db);

    let report = SeedReport {
        db: db.display().to_string(),
        config: config_path(&db).display().to_string(),
        probes: cfg.probes.len(),
        days: opts.days,
        interval_secs: opts.interval.as_secs_f64(),
        seed: opts.seed,
        start: deepseek_watch::result::format_time(
            &DateTime::from_timestamp_millis(start).unwrap_or_default(),
        ),
        end: deepseek_watch::result::format_time(&opts.end),
        results,
        outages,
        events,
        status_counts: Status::ALL
            .iter()
            .map(|s| (s.to_string(), counts[usize::from(s.code())]))
            .filter(|(_, n)| *n > 0)
            .collect(),
        insert_secs,
        results_per_sec: results as f64 / insert_secs,
        file_bytes,
        bytes_per_result: file_bytes as f64 / results.max(1) as f64,
        tables,
    };
    let path = SeedReport::path_for(&db);
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(report)
}

/// Bytes per table and index, largest first; empty without `dbstat`.
fn table_sizes(conn: &rusqlite::Connection) -> Vec<(String, u64)> {
    let sizes = || -> rusqlite::Result<Vec<(String, u64)>> {
        let mut stmt = conn.prepare(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY sum(pgsize) DESC",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        rows.collect()
    };
    sizes().unwrap_or_default()
}

/// Prints a seed report for people.
pub fn print_report(r: &SeedReport) {
    println!("database       {}", r.db);
    println!("config         {}", r.config);
    println!(
        "history        {} probes, {} days every {}s, {} .. {}, seed {}",
        r.probes, r.days, r.interval_secs, r.start, r.end, r.seed
    );
    println!("results        {}", r.results);
    let counts: Vec<String> = r
        .status_counts
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!("  by status    {}", counts.join(", "));
    println!("outages        {} opened, {} events", r.outages, r.events);
    println!(
        "insert         {} results in {:.2} s = {:.0} results/s (first submit to the writer's flush ack)",
        r.results, r.insert_secs, r.results_per_sec
    );
    println!(
        "size           {} bytes ({:.1} MiB) after a checkpoint = {:.1} bytes/result",
        r.file_bytes,
        r.file_bytes as f64 / 1048576.0,
        r.bytes_per_result
    );
    for (name, bytes) in r.tables.iter().take(8) {
        println!(
            "  {name:<22} {:>10.1} MiB  {:>6.1} bytes/result",
            *bytes as f64 / 1048576.0,
            *bytes as f64 / r.results.max(1) as f64
        );
    }
}
