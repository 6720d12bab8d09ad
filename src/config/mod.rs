//! Configuration: find the file, parse it, and validate it into [`Config`].
//!
//! A `Config` that exists is a config that is valid: every duration parsed,
//! every secret resolved, every cross-reference checked. Errors name the file,
//! the key and what to write instead; the daemon refuses to start on them.

mod raw;
pub mod secret;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::event::EventKind;
use crate::schedule::Schedule;
pub use secret::Secret;

use raw::{RawChannel, RawConfig, RawProbe, RawSmtp, RawTiming};

/// Where a config file is looked for when neither `--config` nor
/// `$DEEPSEEK_WATCH_CONFIG` names one.
pub const SYSTEM_CONFIG: &str = "/etc/deepseek-watch/config.toml";
pub const DEFAULT_BASE_URL: &str = "https://api.deepseek.com";
pub const DEFAULT_WEB_URL: &str = "https://chat.deepseek.com/";
/// The model the built-in default config probes; users set theirs in config.
pub const DEFAULT_MODEL: &str = "deepseek-flash";
pub const DEFAULT_CANARIES: [&str; 2] = [
    "https://www.cloudflare.com/cdn-cgi/trace",
    "https://www.google.com/generate_204",
];

/// A config problem, pinned to a file and a key.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from; `None` for the built-in default.
    pub source: Option<PathBuf>,
    pub storage: Storage,
    pub canaries: Vec<String>,
    pub probes: Vec<ProbeConfig>,
    pub smtp: Option<Smtp>,
    pub channels: Vec<Channel>,
    pub give_up_after: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    pub path: PathBuf,
    pub retention: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    pub name: String,
    pub kind: ProbeKind,
    pub schedule: Schedule,
    pub timeout: Duration,
    pub stall_timeout: Duration,
    pub slow_threshold: Duration,
    pub outage_interval: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub reminder_every: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeKind {
    Http {
        url: String,
        busy_markers: Vec<String>,
        /// Inclusive range of statuses that count as a good answer.
        expect_status: (u16, u16),
    },
    Chat {
        base_url: String,
        model: String,
        api_key: Option<Secret>,
    },
    Models {
        base_url: String,
        /// When set, the list must contain it (how a retired model shows up).
        model: Option<String>,
        api_key: Option<Secret>,
    },
    Balance {
        base_url: String,
        min_balance: Option<f64>,
        api_key: Option<Secret>,
    },
}

impl ProbeConfig {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ProbeKind::Http { .. } => "http",
            ProbeKind::Chat { .. } => "chat",
            ProbeKind::Models { .. } => "models",
            ProbeKind::Balance { .. } => "balance",
        }
    }

    /// What is probed, for people: the URL or the API base.
    pub fn target(&self) -> String {
        match &self.kind {
            ProbeKind::Http { url, .. } => url.clone(),
            ProbeKind::Chat {
                base_url, model, ..
            } => format!("{base_url} ({model})"),
            ProbeKind::Models { base_url, .. } | ProbeKind::Balance { base_url, .. } => {
                base_url.clone()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Json,
    Slack,
    Discord,
    Ntfy,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChannelKind {
    Email {
        to: Vec<String>,
    },
    Webhook {
        url: String,
        format: WebhookFormat,
        secret: Option<Secret>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub events: Vec<EventKind>,
    /// `None`: every probe.
    pub probes: Option<Vec<String>>,
}

/// Where the config comes from, in the order design.md gives.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigSource {
    /// `--config` or `$DEEPSEEK_WATCH_CONFIG`: must exist.
    Explicit(PathBuf),
    /// The system path: used when it exists, else the built-in default.
    System,
}

/// Loads the config from `source`. An explicitly named file that is missing is
/// an error (a typo in a path must not silently monitor the defaults); the
/// system path falling back to the built-in default is not.
pub fn load(source: &ConfigSource) -> Result<Config, ConfigError> {
    load_with(source, Secrets::Read)
}

/// Whether loading follows secret references or only checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Read,
    /// For the history commands: they read the database, never a secret.
    /// Secrets come out empty.
    Skip,
}

pub fn load_with(source: &ConfigSource, secrets: Secrets) -> Result<Config, ConfigError> {
    match source {
        ConfigSource::Explicit(path) => load_file_with(path, secrets),
        ConfigSource::System => {
            let path = Path::new(SYSTEM_CONFIG);
            if path.exists() {
                load_file_with(path, secrets)
            } else {
                builtin_default()
            }
        }
    }
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with(path, Secrets::Read)
}

fn load_file_with(path: &Path, secrets: Secrets) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        key: "(file)".into(),
        message: format!(
            "cannot read the config file: {e}; check the path given to --config or $DEEPSEEK_WATCH_CONFIG"
        ),
    })?;
    parse_with(&text, Some(path), secrets)
}

/// Parses and validates config text. `path` names the file in errors and
/// anchors relative secret files.
pub fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    parse_with(text, path, Secrets::Read)
}

fn parse_with(text: &str, path: Option<&Path>, secrets: Secrets) -> Result<Config, ConfigError> {
    let file = path.map_or_else(|| "(config)".to_string(), |p| p.display().to_string());
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
        file: file.clone(),
        key: toml_error_key(&e),
        message: format!(
            "{}\nCompare with config.example.toml: every key is listed there.",
            e.to_string().trim_end()
        ),
    })?;
    Validator {
        file,
        dir: path.and_then(Path::parent).map(Path::to_path_buf),
        read_secrets: secrets == Secrets::Read,
    }
    .config(raw, path.map(Path::to_path_buf))
}

/// The key a TOML error is about, when the parser says.
fn toml_error_key(e: &toml::de::Error) -> String {
    let msg = e.message();
    match msg.split('`').nth(1) {
        Some(k) if msg.starts_with("unknown field") => k.to_string(),
        _ => "(syntax)".to_string(),
    }
}

/// The config used when no file exists: the web chat, plus the API when
/// `DEEPSEEK_API_KEY` is set.
pub fn builtin_default() -> Result<Config, ConfigError> {
    let mut text = format!(
        "[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"{DEFAULT_WEB_URL}\"\n\
         busy_markers = [\"server is busy\", \"服务器繁忙\"]\n"
    );
    if std::env::var_os("DEEPSEEK_API_KEY").is_some() {
        text.push_str(&format!(
            "\n[[probe]]\nname = \"api\"\nkind = \"chat\"\nmodel = \"{DEFAULT_MODEL}\"\n\
             api_key = {{ env = \"DEEPSEEK_API_KEY\" }}\n\
             \n[[probe]]\nname = \"models\"\nkind = \"models\"\nmodel = \"{DEFAULT_MODEL}\"\n\
             interval = \"5m\"\napi_key = {{ env = \"DEEPSEEK_API_KEY\" }}\n\
             \n[[probe]]\nname = \"balance\"\nkind = \"balance\"\ninterval = \"1h\"\n\
             api_key = {{ env = \"DEEPSEEK_API_KEY\" }}\n"
        ));
    }
    let mut cfg = parse(&text, None).map_err(|mut e| {
        e.file = "built-in default config".into();
        e
    })?;
    cfg.source = None;
    Ok(cfg)
}

/// Built-in defaults for timing keys not set in `[defaults]` or the probe.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_STALL: Duration = Duration::from_secs(20);
const DEFAULT_SLOW: Duration = Duration::from_secs(10);
const DEFAULT_OUTAGE_INTERVAL: Duration = Duration::from_secs(15);
const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);
const DEFAULT_GIVE_UP: Duration = Duration::from_secs(86_400);

/// The resolved timing keys of one probe.
struct Timing {
    schedule: Schedule,
    timeout: Duration,
    stall_timeout: Duration,
    slow_threshold: Duration,
    outage_interval: Duration,
    failure_threshold: u32,
    success_threshold: u32,
    reminder_every: Duration,
}

struct Validator {
    file: String,
    dir: Option<PathBuf>,
    read_secrets: bool,
}

impl Validator {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        key: &str,
        value: Option<&String>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(text) = value else {
            return Ok(default);
        };
        humantime::parse_duration(text.trim()).map_err(|e| {
            self.err(
                key,
                format!(
                    "{text:?} is not a duration ({e}); write e.g. \"30s\", \"5m\", \"1h\" or \"7d\""
                ),
            )
        })
    }

    fn secret(&self, key: &str, value: &toml::Value) -> Result<Secret, ConfigError> {
        secret::resolve(value, self.dir.as_deref(), self.read_secrets).map_err(|m| self.err(key, m))
    }

    fn url(&self, key: &str, value: &str) -> Result<String, ConfigError> {
        match reqwest::Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(value.to_string())
            }
            Ok(u) => Err(self.err(
                key,
                format!(
                    "{value:?} is a {} URL; write an http:// or https:// URL",
                    u.scheme()
                ),
            )),
            Err(e) => Err(self.err(
                key,
                format!("{value:?} is not a URL ({e}); write e.g. \"https://chat.deepseek.com/\""),
            )),
        }
    }

    fn config(&self, raw: RawConfig, source: Option<PathBuf>) -> Result<Config, ConfigError> {
        let storage = Storage {
            path: match raw.storage.path.as_deref() {
                Some("") => return Err(self.err("storage.path", "is empty; write a file path")),
                Some(p) => PathBuf::from(p),
                None => default_db_path(),
            },
            retention: self.duration(
                "storage.retention",
                raw.storage.retention.as_ref(),
                DEFAULT_RETENTION,
            )?,
        };
        if storage.retention < Duration::from_secs(3600) {
            return Err(self.err(
                "storage.retention",
                "must be at least 1h; raw results are kept this long",
            ));
        }

        let canaries = match raw.connectivity.canaries {
            Some(list) => list
                .iter()
                .map(|u| self.url("connectivity.canaries", u))
                .collect::<Result<Vec<_>, _>>()?,
            None => DEFAULT_CANARIES.iter().map(|s| s.to_string()).collect(),
        };

        if raw.probe.is_empty() {
            return Err(self.err(
                "probe",
                "no [[probe]] is configured; add at least one, e.g. [[probe]] name = \"web\" kind = \"http\" url = \"https://chat.deepseek.com/\"",
            ));
        }
        let mut names = HashSet::new();
        let mut probes = Vec::new();
        for (i, p) in raw.probe.iter().enumerate() {
            let probe = self.probe(i, p, &raw.defaults)?;
            if !names.insert(probe.name.clone()) {
                return Err(self.err(
                    format!("probe \"{}\".name", probe.name),
                    "another probe has the same name; give each [[probe]] its own name",
                ));
            }
            probes.push(probe);
        }

        let smtp = raw.smtp.as_ref().map(|s| self.smtp(s)).transpose()?;
        let mut channel_names = HashSet::new();
        let mut channels = Vec::new();
        for (i, c) in raw.channel.iter().enumerate() {
            let ch = self.channel(i, c, &names, smtp.is_some())?;
            if !channel_names.insert(ch.name.clone()) {
                return Err(self.err(
                    format!("channel \"{}\".name", ch.name),
                    "another channel has the same name; give each [[channel]] its own name",
                ));
            }
            channels.push(ch);
        }
        let give_up_after = self.duration(
            "notify.give_up_after",
            raw.notify.give_up_after.as_ref(),
            DEFAULT_GIVE_UP,
        )?;
        if give_up_after.is_zero() {
            return Err(self.err("notify.give_up_after", "must be more than 0s, e.g. \"24h\""));
        }

        Ok(Config {
            source,
            storage,
            canaries,
            probes,
            smtp,
            channels,
            give_up_after,
        })
    }

    fn probe(
        &self,
        index: usize,
        p: &RawProbe,
        defaults: &RawTiming,
    ) -> Result<ProbeConfig, ConfigError> {
        let name = match p.name.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(self.err(
                    format!("probe #{}.name", index + 1),
                    "missing; give the probe a name such as name = \"web\"",
                ));
            }
            Some(n) => n.to_string(),
        };
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.".contains(c))
        {
            return Err(self.err(
                format!("probe \"{name}\".name"),
                "use letters, digits, '-', '_' and '.' only (it is typed on the command line)",
            ));
        }
        let key = |k: &str| format!("probe \"{name}\".{k}");
        let kind_name = p.kind.as_deref().unwrap_or("");
        let not_for = |k: &str, set: bool| -> Result<(), ConfigError> {
            if set {
                Err(self.err(
                    key(k),
                    format!("does not apply to kind = \"{kind_name}\"; remove it"),
                ))
            } else {
                Ok(())
            }
        };
        let base_url = |s: &Self| -> Result<String, ConfigError> {
            let url = p.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
            Ok(s.url(&key("base_url"), url)?
                .trim_end_matches('/')
                .to_string())
        };
        let api_key = |s: &Self, base: &str| -> Result<Option<Secret>, ConfigError> {
            match &p.api_key {
                Some(v) => s.secret(&key("api_key"), v).map(Some),
                None if base == DEFAULT_BASE_URL => Err(s.err(
                    key("api_key"),
                    "missing; the DeepSeek API needs a key: api_key = { env = \"DEEPSEEK_API_KEY\" }",
                )),
                None => Ok(None),
            }
        };
        let kind = match kind_name {
            "http" => {
                not_for("base_url", p.base_url.is_some())?;
                not_for("model", p.model.is_some())?;
                not_for("api_key", p.api_key.is_some())?;
                not_for("min_balance", p.min_balance.is_some())?;
                let url = match &p.url {
                    Some(u) => self.url(&key("url"), u)?,
                    None => {
                        return Err(self.err(
                            key("url"),
                            "missing; an http probe needs url = \"https://chat.deepseek.com/\"",
                        ));
                    }
                };
                let busy_markers = p.busy_markers.clone().unwrap_or_default();
                if busy_markers.iter().any(|m| m.trim().is_empty()) {
                    return Err(self.err(
                        key("busy_markers"),
                        "contains an empty marker, which would match every page; remove it",
                    ));
                }
                let expect_status = match &p.expect_status {
                    Some(v) => self.expect_status(&key("expect_status"), v)?,
                    None => (200, 399),
                };
                ProbeKind::Http {
                    url,
                    busy_markers,
                    expect_status,
                }
            }
            "chat" | "models" | "balance" => {
                not_for("url", p.url.is_some())?;
                not_for("busy_markers", p.busy_markers.is_some())?;
                not_for("expect_status", p.expect_status.is_some())?;
                let base = base_url(self)?;
                let api_key = api_key(self, &base)?;
                let model = p
                    .model
                    .as_deref()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string);
                match kind_name {
                    "chat" => {
                        not_for("min_balance", p.min_balance.is_some())?;
                        let Some(model) = model else {
                            return Err(self.err(
                                key("model"),
                                format!("missing; a chat probe needs a model, e.g. model = \"{DEFAULT_MODEL}\""),
                            ));
                        };
                        ProbeKind::Chat {
                            base_url: base,
                            model,
                            api_key,
                        }
                    }
                    "models" => {
                        not_for("min_balance", p.min_balance.is_some())?;
                        ProbeKind::Models {
                            base_url: base,
                            model,
                            api_key,
                        }
                    }
                    _ => {
                        not_for("model", model.is_some())?;
                        if let Some(m) = p.min_balance {
                            if !(m.is_finite() && m >= 0.0) {
                                return Err(self.err(
                                    key("min_balance"),
                                    "must be a number of 0 or more, e.g. 1.0",
                                ));
                            }
                        }
                        ProbeKind::Balance {
                            base_url: base,
                            min_balance: p.min_balance,
                            api_key,
                        }
                    }
                }
            }
            "" => {
                return Err(self.err(
                    key("kind"),
                    "missing; write kind = \"http\", \"chat\", \"models\" or \"balance\"",
                ));
            }
            other => {
                return Err(self.err(
                    key("kind"),
                    format!(
                        "unknown kind {other:?}; use \"http\", \"chat\", \"models\" or \"balance\""
                    ),
                ));
            }
        };
        let t = self.timing(&name, &p.timing(), defaults)?;
        Ok(ProbeConfig {
            name,
            kind,
            schedule: t.schedule,
            timeout: t.timeout,
            stall_timeout: t.stall_timeout,
            slow_threshold: t.slow_threshold,
            outage_interval: t.outage_interval,
            failure_threshold: t.failure_threshold,
            success_threshold: t.success_threshold,
            reminder_every: t.reminder_every,
        })
    }

    fn timing(
        &self,
        name: &str,
        own: &RawTiming,
        defaults: &RawTiming,
    ) -> Result<Timing, ConfigError> {
        // A key set on the probe wins; else `[defaults]`; else the built-in value.
        let pick =
            |k: &str, own_v: &Option<String>, def_v: &Option<String>| -> (String, Option<String>) {
                match (own_v, def_v) {
                    (Some(v), _) => (format!("probe \"{name}\".{k}"), Some(v.clone())),
                    (None, Some(v)) => (format!("defaults.{k}"), Some(v.clone())),
                    (None, None) => (format!("probe \"{name}\".{k}"), None),
                }
            };
        let dur = |k: &str, own_v: &Option<String>, def_v: &Option<String>, d: Duration| {
            let (key, v) = pick(k, own_v, def_v);
            self.duration(&key, v.as_ref(), d).map(|v| (key, v))
        };

        if own.interval.is_some() && own.schedule.is_some() {
            return Err(self.err(
                format!("probe \"{name}\""),
                "sets both interval and schedule; keep one",
            ));
        }
        if defaults.interval.is_some() && defaults.schedule.is_some() {
            return Err(self.err("defaults", "sets both interval and schedule; keep one"));
        }
        // The probe's own choice of interval or schedule overrides either default.
        let schedule = if let Some(expr) = &own.schedule {
            Schedule::cron(expr).map_err(|e| self.err(format!("probe \"{name}\".schedule"), e))?
        } else if own.interval.is_none() && defaults.schedule.is_some() {
            let expr = defaults.schedule.as_deref().unwrap_or_default();
            Schedule::cron(expr).map_err(|e| self.err("defaults.schedule", e))?
        } else {
            let (key, every) = dur(
                "interval",
                &own.interval,
                &defaults.interval,
                DEFAULT_INTERVAL,
            )?;
            if every < Duration::from_secs(1) {
                return Err(self.err(key, "must be at least 1s"));
            }
            Schedule::Every(every)
        };
        let (tkey, timeout) = dur("timeout", &own.timeout, &defaults.timeout, DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(self.err(tkey, "must be more than 0s, e.g. \"30s\""));
        }
        let (skey, stall) = dur(
            "stall_timeout",
            &own.stall_timeout,
            &defaults.stall_timeout,
            DEFAULT_STALL,
        )?;
        if stall.is_zero() {
            return Err(self.err(skey, "must be more than 0s, e.g. \"20s\""));
        }
        let (_, slow) = dur(
            "slow_threshold",
            &own.slow_threshold,
            &defaults.slow_threshold,
            DEFAULT_SLOW,
        )?;
        let (okey, outage_interval) = dur(
            "outage_interval",
            &own.outage_interval,
            &defaults.outage_interval,
            DEFAULT_OUTAGE_INTERVAL,
        )?;
        if outage_interval < Duration::from_secs(1) {
            return Err(self.err(okey, "must be at least 1s"));
        }
        let (_, reminder) = dur(
            "reminder_every",
            &own.reminder_every,
            &defaults.reminder_every,
            Duration::ZERO,
        )?;
        let threshold =
            |k: &str, own_v: Option<i64>, def_v: Option<i64>, d: u32| -> Result<u32, ConfigError> {
                let (key, v) = match (own_v, def_v) {
                    (Some(v), _) => (format!("probe \"{name}\".{k}"), v),
                    (None, Some(v)) => (format!("defaults.{k}"), v),
                    (None, None) => return Ok(d),
                };
                u32::try_from(v)
                    .ok()
                    .filter(|v| (1..=1000).contains(v))
                    .ok_or_else(|| {
                        self.err(
                            key,
                            format!("{v} is out of range; write a whole number from 1 to 1000"),
                        )
                    })
            };
        let failure = threshold(
            "failure_threshold",
            own.failure_threshold,
            defaults.failure_threshold,
            3,
        )?;
        let success = threshold(
            "success_threshold",
            own.success_threshold,
            defaults.success_threshold,
            2,
        )?;
        Ok(Timing {
            schedule,
            timeout,
            stall_timeout: stall,
            slow_threshold: slow,
            outage_interval,
            failure_threshold: failure,
            success_threshold: success,
            reminder_every: reminder,
        })
    }

    fn expect_status(&self, key: &str, v: &toml::Value) -> Result<(u16, u16), ConfigError> {
        let bad = || {
            self.err(
                key,
                "write one status such as 200, or a range such as \"200-399\" (100 to 599)",
            )
        };
        let code = |n: i64| u16::try_from(n).ok().filter(|c| (100..=599).contains(c));
        let (lo, hi) = match v {
            toml::Value::Integer(n) => {
                let c = code(*n).ok_or_else(bad)?;
                (c, c)
            }
            toml::Value::String(s) => {
                let (a, b) = s.split_once('-').unwrap_or((s, s));
                let p = |x: &str| x.trim().parse::<i64>().ok().and_then(code);
                (p(a).ok_or_else(bad)?, p(b).ok_or_else(bad)?)
            }
            _ => return Err(bad()),
        };
        if lo > hi {
            return Err(bad());
        }
        Ok((lo, hi))
    }

    fn smtp(&self, s: &RawSmtp) -> Result<Smtp, ConfigError> {
        let host = s
            .host
            .clone()
            .filter(|h| !h.trim().is_empty())
            .ok_or_else(|| self.err("smtp.host", "missing; write host = \"smtp.example.com\""))?;
        let security = match s.security.as_deref().unwrap_or("starttls") {
            "starttls" => SmtpSecurity::StartTls,
            "tls" => SmtpSecurity::Tls,
            "none" => SmtpSecurity::None,
            other => {
                return Err(self.err(
                    "smtp.security",
                    format!("unknown value {other:?}; use \"starttls\", \"tls\" or \"none\""),
                ));
            }
        };
        let port = match s.port {
            None => match security {
                SmtpSecurity::StartTls => 587,
                SmtpSecurity::Tls => 465,
                SmtpSecurity::None => 25,
            },
            Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                self.err("smtp.port", format!("{p} is not a port; write e.g. 587"))
            })?,
        };
        let password = s
            .password
            .as_ref()
            .map(|v| self.secret("smtp.password", v))
            .transpose()?;
        if password.is_some() != s.username.is_some() {
            return Err(self.err(
                "smtp",
                "username and password go together; set both for an authenticated server, or neither",
            ));
        }
        let from = s.from.clone().filter(|f| f.contains('@')).ok_or_else(|| {
            self.err(
                "smtp.from",
                "missing or not an address; write from = \"deepseek-watch <alerts@example.com>\"",
            )
        })?;
        Ok(Smtp {
            host,
            port,
            security,
            username: s.username.clone(),
            password,
            from,
        })
    }

    fn channel(
        &self,
        index: usize,
        c: &RawChannel,
        probes: &HashSet<String>,
        have_smtp: bool,
    ) -> Result<Channel, ConfigError> {
        let name = match c.name.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(self.err(
                    format!("channel #{}.name", index + 1),
                    "missing; give the channel a name such as name = \"me\"",
                ));
            }
            Some(n) => n.to_string(),
        };
        let key = |k: &str| format!("channel \"{name}\".{k}");
        let kind = match c.kind.as_deref() {
            Some("email") => {
                if c.url.is_some() || c.format.is_some() || c.secret.is_some() {
                    return Err(self.err(
                        key("url"),
                        "url, format and secret apply to webhook channels; remove them",
                    ));
                }
                if !have_smtp {
                    return Err(self.err(
                        key("kind"),
                        "an email channel needs an [smtp] section with host and from",
                    ));
                }
                let to = c.to.clone().unwrap_or_default();
                if to.is_empty() {
                    return Err(self.err(key("to"), "missing; write to = [\"me@example.com\"]"));
                }
                if let Some(bad) = to.iter().find(|a| !a.contains('@')) {
                    return Err(self.err(key("to"), format!("{bad:?} is not an email address")));
                }
                ChannelKind::Email { to }
            }
            Some("webhook") => {
                if c.to.is_some() {
                    return Err(self.err(key("to"), "applies to email channels; remove it"));
                }
                let url = match &c.url {
                    Some(u) => self.url(&key("url"), u)?,
                    None => {
                        return Err(self.err(
                            key("url"),
                            "missing; write url = \"https://example.com/hook\"",
                        ));
                    }
                };
                let format = match c.format.as_deref().unwrap_or("json") {
                    "json" => WebhookFormat::Json,
                    "slack" => WebhookFormat::Slack,
                    "discord" => WebhookFormat::Discord,
                    "ntfy" => WebhookFormat::Ntfy,
                    other => {
                        return Err(self.err(
                            key("format"),
                            format!("unknown format {other:?}; use \"json\", \"slack\", \"discord\" or \"ntfy\""),
                        ));
                    }
                };
                let secret = c
                    .secret
                    .as_ref()
                    .map(|v| self.secret(&key("secret"), v))
                    .transpose()?;
                ChannelKind::Webhook {
                    url,
                    format,
                    secret,
                }
            }
            Some(other) => {
                return Err(self.err(
                    key("kind"),
                    format!("unknown kind {other:?}; use \"email\" or \"webhook\""),
                ));
            }
            None => {
                return Err(self.err(
                    key("kind"),
                    "missing; write kind = \"email\" or kind = \"webhook\"",
                ));
            }
        };
        let events = match &c.events {
            None => vec![EventKind::Recovered],
            Some(list) => list
                .iter()
                .map(|e| {
                    EventKind::parse(e).ok_or_else(|| {
                        self.err(
                            key("events"),
                            format!("unknown event {e:?}; use outage, recovered, action_needed, reminder or test"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if let Some(list) = &c.probes {
            if let Some(unknown) = list.iter().find(|p| !probes.contains(*p)) {
                let mut known: Vec<_> = probes.iter().map(String::as_str).collect();
                known.sort_unstable();
                return Err(self.err(
                    key("probes"),
                    format!(
                        "names probe {unknown:?}, which is not configured; known probes: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(Channel {
            name,
            kind,
            events,
            probes: c.probes.clone(),
        })
    }
}

/// `$STATE_DIRECTORY/history.db` under systemd, else `./deepseek-watch.db`.
fn default_db_path() -> PathBuf {
    db_path_in(std::env::var_os("STATE_DIRECTORY").as_deref())
}

/// The default database path given `$STATE_DIRECTORY` (set by systemd for
/// `StateDirectory=`); apart from [`default_db_path`] so it can be tested
/// without changing the process environment.
fn db_path_in(state_directory: Option<&std::ffi::OsStr>) -> PathBuf {
    let dirs = state_directory.map(|d| d.to_string_lossy().to_string());
    // systemd passes several directories separated by ':' when the unit
    // names several; the first is ours. An empty value is no directory.
    match dirs.as_deref().and_then(|d| d.split(':').next()) {
        Some(first) if !first.is_empty() => PathBuf::from(first).join("history.db"),
        _ => PathBuf::from("./deepseek-watch.db"),
    }
}

#[cfg(test)]
mod tests;
