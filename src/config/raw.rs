//! The config file exactly as written: every key optional, durations and
//! secrets as raw values. `deny_unknown_fields` turns a typo into an error
//! instead of a silently ignored key. Validation into [`super::Config`] gives
//! each missing or malformed value a message naming its key.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub defaults: RawTiming,
    #[serde(default)]
    pub connectivity: RawConnectivity,
    #[serde(default)]
    pub probe: Vec<RawProbe>,
    pub smtp: Option<RawSmtp>,
    #[serde(default)]
    pub channel: Vec<RawChannel>,
    #[serde(default)]
    pub notify: RawNotify,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub path: Option<String>,
    pub retention: Option<String>,
}

/// The keys of `[defaults]`, which every probe may also set for itself.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTiming {
    pub interval: Option<String>,
    pub schedule: Option<String>,
    pub timeout: Option<String>,
    pub stall_timeout: Option<String>,
    pub slow_threshold: Option<String>,
    pub outage_interval: Option<String>,
    pub failure_threshold: Option<i64>,
    pub success_threshold: Option<i64>,
    pub reminder_every: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnectivity {
    pub canaries: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub url: Option<String>,
    pub busy_markers: Option<Vec<String>>,
    pub expect_status: Option<toml::Value>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<toml::Value>,
    pub min_balance: Option<f64>,
    // The `[defaults]` keys, repeated here because serde's `flatten` cannot be
    // combined with `deny_unknown_fields`.
    pub interval: Option<String>,
    pub schedule: Option<String>,
    pub timeout: Option<String>,
    pub stall_timeout: Option<String>,
    pub slow_threshold: Option<String>,
    pub outage_interval: Option<String>,
    pub failure_threshold: Option<i64>,
    pub success_threshold: Option<i64>,
    pub reminder_every: Option<String>,
}

impl RawProbe {
    /// This probe's own timing keys, to be laid over `[defaults]`.
    pub fn timing(&self) -> RawTiming {
        RawTiming {
            interval: self.interval.clone(),
            schedule: self.schedule.clone(),
            timeout: self.timeout.clone(),
            stall_timeout: self.stall_timeout.clone(),
            slow_threshold: self.slow_threshold.clone(),
            outage_interval: self.outage_interval.clone(),
            failure_threshold: self.failure_threshold,
            success_threshold: self.success_threshold,
            reminder_every: self.reminder_every.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password: Option<toml::Value>,
    pub from: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub to: Option<Vec<String>>,
    pub url: Option<String>,
    pub format: Option<String>,
    pub secret: Option<toml::Value>,
    pub events: Option<Vec<String>>,
    pub probes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub give_up_after: Option<String>,
}
