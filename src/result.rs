//! The outcome of one probe run: a [`Status`] plus the measured facts.
//!
//! A failed probe is data, not an `Err`: every run, whatever happened on the
//! network, produces exactly one [`ProbeResult`] that is stored and reported.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// What one probe run concluded. The names are part of the interface contract
/// (design.md, "Result statuses"): they appear in JSON, CSV, the database and
/// `--status` filters. The numeric codes are what the database stores and must
/// never be renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Up,
    Slow,
    Busy,
    RateLimited,
    Down,
    Timeout,
    AuthError,
    BillingError,
    InvalidRequest,
    Blocked,
    Offline,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Up,
        Status::Slow,
        Status::Busy,
        Status::RateLimited,
        Status::Down,
        Status::Timeout,
        Status::AuthError,
        Status::BillingError,
        Status::InvalidRequest,
        Status::Blocked,
        Status::Offline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Slow => "slow",
            Status::Busy => "busy",
            Status::RateLimited => "rate_limited",
            Status::Down => "down",
            Status::Timeout => "timeout",
            Status::AuthError => "auth_error",
            Status::BillingError => "billing_error",
            Status::InvalidRequest => "invalid_request",
            Status::Blocked => "blocked",
            Status::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Stable code stored in the `result.status` column.
    pub fn code(self) -> u8 {
        match self {
            Status::Up => 0,
            Status::Slow => 1,
            Status::Busy => 2,
            Status::RateLimited => 3,
            Status::Down => 4,
            Status::Timeout => 5,
            Status::AuthError => 6,
            Status::BillingError => 7,
            Status::InvalidRequest => 8,
            Status::Blocked => 9,
            Status::Offline => 10,
        }
    }

    pub fn from_code(code: i64) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|st| i64::from(st.code()) == code)
    }

    /// `up` or `slow`: the service answered correctly. Counts toward recovery.
    pub fn is_usable(self) -> bool {
        matches!(self, Status::Up | Status::Slow)
    }

    /// DeepSeek itself failed: these runs open and extend outages.
    pub fn counts_toward_outage(self) -> bool {
        matches!(
            self,
            Status::Busy | Status::RateLimited | Status::Down | Status::Timeout
        )
    }

    /// The user must act (key, balance, config, bot challenge): `action_needed`.
    pub fn needs_action(self) -> bool {
        matches!(
            self,
            Status::AuthError | Status::BillingError | Status::InvalidRequest | Status::Blocked
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One probe run, in the `results` JSON shape of design.md.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    pub probe: String,
    /// When the run started.
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub status: Status,
    /// Time to response headers.
    pub latency_ms: Option<u32>,
    /// Time to the first real token (chat probes only).
    pub ttft_ms: Option<u32>,
    pub http_status: Option<u16>,
    /// A short reason, at most [`ERROR_MAX_CHARS`] characters.
    pub error: Option<String>,
    /// A short fact such as `balance 12.50 USD`.
    pub detail: Option<String>,
}

/// design.md caps `error` at 200 characters.
pub const ERROR_MAX_CHARS: usize = 200;

/// Shortens `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate_chars(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Timestamps in every output are RFC 3339 UTC with whole seconds.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for st in Status::ALL {
            assert_eq!(Status::from_code(i64::from(st.code())), Some(st));
            assert_eq!(Status::parse(st.as_str()), Some(st));
        }
        assert_eq!(Status::parse("nope"), None);
        assert_eq!(Status::from_code(99), None);
    }

    #[test]
    fn every_status_is_in_exactly_one_class() {
        for st in Status::ALL {
            let classes = [
                st.is_usable(),
                st.counts_toward_outage(),
                st.needs_action(),
                st == Status::Offline,
            ];
            assert_eq!(classes.iter().filter(|c| **c).count(), 1, "{st}");
        }
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_chars("服务器繁忙", 3), "服务…");
        assert_eq!(truncate_chars(" ok ", 10), "ok");
    }
}
