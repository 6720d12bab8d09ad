//! The words of every notification. Pure: values in, text out.
//!
//! A message is one line a person can act on from a phone's lock screen
//! ("api-flash recovered after 12m 34s (was busy)"); the details say what was
//! seen, when, and what the latest answer looked like.

use chrono::{DateTime, Utc};

use super::OutageInfo;
use crate::result::{ProbeResult, Status, format_time};

/// The probe an event is about.
pub struct ProbeRef<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub target: &'a str,
}

/// "12m 34s", "3h 5m", "2d 4h": the two largest units, like a person says it.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m, sec) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) if sec == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// A configured duration the way the config writes it: "90d", "30s",
/// "1h 30m" (humantime would say "2months 29days 2h 52m 48s" for 90 days);
/// milliseconds only when there are any.
pub fn span(d: std::time::Duration) -> String {
    if d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    duration(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What an answer looked like, briefly: "503 Server overloaded…", "stalled 20s
/// without a token", "connection refused: …".
pub fn seen(r: &ProbeResult) -> String {
    match (r.http_status, r.error.as_deref()) {
        (Some(code), Some(e)) if !e.contains(&code.to_string()) => format!("{code} {e}"),
        (_, Some(e)) => e.to_string(),
        (Some(code), None) => format!("HTTP {code}"),
        (None, None) => r.status.to_string(),
    }
}

/// One line about a result: "up, HTTP 200, latency 312 ms, TTFT 540 ms, …".
pub fn describe(r: &ProbeResult) -> String {
    let mut parts = vec![r.status.to_string()];
    if let Some(c) = r.http_status {
        parts.push(format!("HTTP {c}"));
    }
    if let Some(l) = r.latency_ms {
        parts.push(format!("latency {l} ms"));
    }
    if let Some(t) = r.ttft_ms {
        parts.push(format!("TTFT {t} ms"));
    }
    if let Some(e) = &r.error {
        parts.push(e.clone());
    }
    if let Some(d) = &r.detail {
        parts.push(d.clone());
    }
    parts.join(", ")
}

fn clock(t: &DateTime<Utc>) -> String {
    t.format("%H:%M UTC").to_string()
}

fn header(p: &ProbeRef<'_>) -> Vec<String> {
    vec![
        format!("Probe: {} ({})", p.name, p.kind),
        format!("Target: {}", p.target),
    ]
}

fn outage_lines(o: &OutageInfo) -> Vec<String> {
    let mut lines = vec![format!("Started: {}", format_time(&o.started_at))];
    if let Some(end) = &o.ended_at {
        lines.push(format!("Ended: {}", format_time(end)));
    }
    if let Some(d) = o.duration_secs {
        lines.push(format!("Duration: {}", duration(d)));
    }
    lines.push(format!("Cause: {}", o.cause));
    lines
}

/// What the probe's own history says about an outage like this one: the
/// answer to "how long will it last?" that nobody else gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Lengths (seconds) of this probe's other outages that started in the
    /// 30 days before this one.
    pub recent_secs: Vec<i64>,
    /// The UTC hour of day this outage started in.
    pub hour: u32,
    /// Of the last 28 days on which the probe ran in that hour, how many had
    /// an outage during it.
    pub hour_busy_days: u32,
    pub hour_days: u32,
}

/// Below this many past outages a median says little: the details still
/// give it, the one-line message does not.
const MEDIAN_IN_MESSAGE: usize = 3;

impl History {
    pub fn median_secs(&self) -> Option<i64> {
        let mut v = self.recent_secs.clone();
        v.sort_unstable();
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
        }
    }

    /// "Outages in the last 30 days: 7, median 14m, longest 2h 5m".
    fn length_line(&self) -> Option<String> {
        let median = self.median_secs()?;
        let longest = self.recent_secs.iter().copied().max().unwrap_or(median);
        Some(format!(
            "Outages in the last 30 days: {}, median {}, longest {}",
            self.recent_secs.len(),
            duration(median),
            duration(longest)
        ))
    }

    /// "14:00-15:00 UTC was busy on 9 of the last 28 days".
    fn hour_line(&self) -> Option<String> {
        (self.hour_days > 0).then(|| {
            format!(
                "{:02}:00-{:02}:00 UTC was busy on {} of the last {} days",
                self.hour,
                (self.hour + 1) % 24,
                self.hour_busy_days,
                self.hour_days
            )
        })
    }

    /// How an outage of `secs` compares with the recent ones.
    fn comparison_line(&self, secs: i64) -> Option<String> {
        let median = self.median_secs()?;
        let n = self.recent_secs.len();
        let shorter = self.recent_secs.iter().filter(|&&d| d < secs).count();
        let verdict = match secs.cmp(&median) {
            std::cmp::Ordering::Less => "shorter than",
            std::cmp::Ordering::Equal => "as long as",
            std::cmp::Ordering::Greater => "longer than",
        };
        Some(format!(
            "This outage was {verdict} the 30-day median of {}: longer than {shorter} of the {n} before it",
            duration(median)
        ))
    }
}

pub fn opened(
    p: &ProbeRef<'_>,
    o: &OutageInfo,
    latest: &ProbeResult,
    failed_results: u32,
    history: &History,
) -> (String, Vec<String>) {
    let mut message = format!(
        "{} is unavailable: {} since {} ({})",
        p.name,
        o.cause,
        clock(&o.started_at),
        seen(latest)
    );
    if history.recent_secs.len() >= MEDIAN_IN_MESSAGE {
        if let Some(m) = history.median_secs() {
            message.push_str(&format!("; outages usually last {}", duration(m)));
        }
    }
    let mut details = header(p);
    details.extend(outage_lines(o));
    details.push(format!("Failed results so far: {failed_results}"));
    details.push(format!("Latest result: {}", describe(latest)));
    details.extend(history.length_line());
    details.extend(history.hour_line());
    (message, details)
}

pub fn recovered(
    p: &ProbeRef<'_>,
    o: &OutageInfo,
    latest: &ProbeResult,
    failed_results: u32,
    history: &History,
) -> (String, Vec<String>) {
    let took = o
        .duration_secs
        .map_or_else(String::new, |d| format!(" after {}", duration(d)));
    let message = format!("{} recovered{took} (was {})", p.name, o.cause);
    let mut details = header(p);
    details.extend(outage_lines(o));
    details.push(format!(
        "Failed results during the outage: {failed_results}"
    ));
    details.push(format!("Latest result: {}", describe(latest)));
    if let Some(d) = o.duration_secs {
        details.extend(history.comparison_line(d));
    }
    (message, details)
}

pub fn reminder(
    p: &ProbeRef<'_>,
    o: &OutageInfo,
    latest: &ProbeResult,
    now: DateTime<Utc>,
) -> (String, Vec<String>) {
    let so_far = (now - o.started_at).num_seconds();
    let message = format!(
        "{} still unavailable after {} ({}: {})",
        p.name,
        duration(so_far),
        o.cause,
        seen(latest)
    );
    let mut details = header(p);
    details.extend(outage_lines(o));
    details.push(format!("Latest result: {}", describe(latest)));
    (message, details)
}

pub fn action_needed(
    p: &ProbeRef<'_>,
    status: Status,
    latest: &ProbeResult,
) -> (String, Vec<String>) {
    let message = format!(
        "{} needs your attention: {} ({})",
        p.name,
        status,
        seen(latest)
    );
    let hint = match status {
        Status::AuthError => {
            "The API key was refused: check api_key in the config (and that the key is still active)."
        }
        Status::BillingError => "The account cannot pay for API calls: top up the balance.",
        Status::InvalidRequest => {
            "The probe's request was rejected as invalid: check model and base_url (a retired model name looks like this)."
        }
        Status::Blocked => {
            "A bot challenge or WAF page answered instead of the service: this host is being blocked, so its results say nothing about DeepSeek."
        }
        _ => "",
    };
    let mut details = header(p);
    if !hint.is_empty() {
        details.push(hint.to_string());
    }
    details.push(format!("Latest result: {}", describe(latest)));
    (message, details)
}

pub fn test(host: &str) -> (String, Vec<String>) {
    (
        format!("test notification from deepseek-watch on {host}"),
        vec!["If you can read this, this channel works.".to_string()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn result(status: Status, http: Option<u16>, error: Option<&str>) -> ProbeResult {
        ProbeResult {
            probe: "api-flash".into(),
            at: Utc.with_ymd_and_hms(2026, 12, 4, 14, 14, 45).unwrap(),
            status,
            latency_ms: Some(312),
            ttft_ms: Some(540),
            http_status: http,
            error: error.map(String::from),
            detail: None,
        }
    }

    const P: ProbeRef<'static> = ProbeRef {
        name: "api-flash",
        kind: "chat",
        target: "https://api.deepseek.com (deepseek-flash)",
    };

    fn outage(ended: bool) -> OutageInfo {
        OutageInfo {
            id: 12,
            started_at: Utc.with_ymd_and_hms(2026, 12, 4, 14, 2, 11).unwrap(),
            ended_at: ended.then(|| Utc.with_ymd_and_hms(2026, 12, 4, 14, 14, 45).unwrap()),
            duration_secs: ended.then_some(754),
            cause: "busy".into(),
        }
    }

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(duration(754), "12m 34s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(120), "2m");
        assert_eq!(duration(3600 + 300 + 7), "1h 5m");
        assert_eq!(duration(7200), "2h");
        assert_eq!(duration(2 * 86_400 + 4 * 3600 + 9), "2d 4h");
        assert_eq!(duration(-5), "0s");
    }

    #[test]
    fn recovered_matches_the_design_example() {
        let (m, d) = recovered(
            &P,
            &outage(true),
            &result(Status::Up, Some(200), None),
            51,
            &History::default(),
        );
        assert_eq!(m, "api-flash recovered after 12m 34s (was busy)");
        assert!(
            d.contains(&"Started: 2026-12-04T14:02:11Z".to_string()),
            "{d:?}"
        );
        assert!(d.contains(&"Duration: 12m 34s".to_string()));
        assert!(
            d.iter()
                .any(|l| l == "Latest result: up, HTTP 200, latency 312 ms, TTFT 540 ms"),
            "{d:?}"
        );
    }

    #[test]
    fn outage_says_what_was_seen() {
        let r = result(
            Status::Busy,
            Some(503),
            Some("Server overloaded, please try again later."),
        );
        let (m, _) = opened(&P, &outage(false), &r, 3, &History::default());
        assert_eq!(
            m,
            "api-flash is unavailable: busy since 14:02 UTC (503 Server overloaded, please try again later.)"
        );
        let r = result(
            Status::Busy,
            Some(200),
            Some("stalled 20s without a token (12 keep-alives)"),
        );
        let (m, _) = opened(&P, &outage(false), &r, 3, &History::default());
        assert!(
            m.ends_with("(200 stalled 20s without a token (12 keep-alives))"),
            "{m}"
        );
        let r = result(Status::Down, None, Some("connection refused: x"));
        assert_eq!(seen(&r), "connection refused: x");
        let r = result(Status::Down, Some(502), Some("HTTP 502, expected 200-399"));
        assert_eq!(seen(&r), "HTTP 502, expected 200-399");
    }

    #[test]
    fn alerts_say_how_long_outages_usually_last() {
        let h = History {
            recent_secs: vec![300, 600, 840, 7500],
            hour: 23,
            hour_busy_days: 9,
            hour_days: 28,
        };
        assert_eq!(h.median_secs(), Some(720));
        let r = result(Status::Busy, Some(503), Some("Server busy"));
        let (m, d) = opened(&P, &outage(false), &r, 3, &h);
        assert!(
            m.ends_with("(503 Server busy); outages usually last 12m"),
            "{m}"
        );
        assert!(
            d.contains(&"Outages in the last 30 days: 4, median 12m, longest 2h 5m".to_string()),
            "{d:?}"
        );
        assert!(
            d.contains(&"23:00-00:00 UTC was busy on 9 of the last 28 days".to_string()),
            "{d:?}"
        );

        // Two past outages: the details give the median, the message does not.
        let few = History {
            recent_secs: vec![60, 120],
            ..h.clone()
        };
        let (m, d) = opened(&P, &outage(false), &r, 3, &few);
        assert!(m.ends_with("(503 Server busy)"), "{m}");
        assert!(d.iter().any(|l| l.contains("median 1m 30s")), "{d:?}");

        // The recovery compares: 754 s against a median of 720 s.
        let (m, d) = recovered(
            &P,
            &outage(true),
            &result(Status::Up, Some(200), None),
            51,
            &h,
        );
        assert_eq!(m, "api-flash recovered after 12m 34s (was busy)");
        assert!(
            d.contains(&"This outage was longer than the 30-day median of 12m: longer than 2 of the 4 before it".to_string()),
            "{d:?}"
        );

        // No history: nothing is invented.
        let (_, d) = opened(&P, &outage(false), &r, 3, &History::default());
        assert!(
            !d.iter()
                .any(|l| l.contains("30 days") || l.contains("UTC was busy")),
            "{d:?}"
        );
    }

    #[test]
    fn action_needed_gives_the_next_step() {
        let r = result(Status::AuthError, Some(401), Some("Authentication Fails"));
        let (m, d) = action_needed(&P, Status::AuthError, &r);
        assert_eq!(
            m,
            "api-flash needs your attention: auth_error (401 Authentication Fails)"
        );
        assert!(d.iter().any(|l| l.contains("api_key")));
    }

    #[test]
    fn reminder_counts_from_the_start() {
        let r = result(Status::Busy, Some(503), Some("Server overloaded"));
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 15, 7, 11).unwrap();
        let (m, _) = reminder(&P, &outage(false), &r, now);
        assert_eq!(
            m,
            "api-flash still unavailable after 1h 5m (busy: 503 Server overloaded)"
        );
    }
}
