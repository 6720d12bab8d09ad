//! Turning what a probe observed into a [`Status`] (design.md, "Result statuses").
//!
//! This module owns every rule that maps an HTTP answer, a transport failure
//! or a chat stream to `up`, `busy`, `down`, … together with the short `error`
//! and `detail` texts people read in notifications. It is pure: no I/O, no
//! async, no clock; times come in as [`Duration`]s measured by the caller.

use std::time::Duration;

use serde_json::Value;

use crate::probe::sse::SseEvent;
use crate::result::{ERROR_MAX_CHARS, Status, truncate_chars};

/// Substrings (lower case) that mean "the server is overloaded" in an error
/// message or body. DeepSeek says "Server overloaded, please try again later."
/// on the API and "服务器繁忙" on the web.
const OVERLOAD_MARKERS: [&str; 7] = [
    "overload",
    "server is busy",
    "server busy",
    "服务器繁忙",
    "insufficient_system_resource",
    "insufficient system resource",
    "try again later",
];

/// Body substrings (lower case) that only appear on Cloudflare challenge or
/// block pages, with the reason reported. Cloudflare also injects
/// `/cdn-cgi/challenge-platform/…/jsd/main.js` into normal pages, so that path
/// alone is deliberately not a marker.
const CHALLENGE_MARKERS: [(&str, &str); 7] = [
    (
        "<title>just a moment",
        "Cloudflare challenge page (Just a moment...)",
    ),
    (
        "attention required! | cloudflare",
        "Cloudflare block page (Attention Required!)",
    ),
    ("_cf_chl_opt", "Cloudflare challenge page"),
    ("cf-browser-verification", "Cloudflare challenge page"),
    ("orchestrate/chl_page", "Cloudflare challenge page"),
    ("orchestrate/managed", "Cloudflare challenge page"),
    ("orchestrate/jsch", "Cloudflare challenge page"),
];

/// How long a snippet of a malformed stream event is quoted in `error`.
const SNIPPET_CHARS: usize = 60;

/// The classifier's conclusion: what [`crate::result::ProbeResult`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    /// A short reason, at most [`ERROR_MAX_CHARS`] characters.
    pub error: Option<String>,
    /// A short fact, e.g. `balance 110.00 CNY` or `deepseek-flash 2 tokens 41 tok/s`.
    pub detail: Option<String>,
}

impl Verdict {
    fn ok(status: Status) -> Self {
        Verdict {
            status,
            error: None,
            detail: None,
        }
    }

    fn fail(status: Status, error: impl AsRef<str>) -> Self {
        Verdict {
            status,
            error: Some(truncate_chars(error.as_ref(), ERROR_MAX_CHARS)),
            detail: None,
        }
    }

    fn with_detail(mut self, detail: Option<String>) -> Self {
        self.detail = detail;
        self
    }
}

/// Network failures before or while reading a response, as the HTTP client
/// reports them (the text is the client's own description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    Timeout,
    Dns(String),
    Connect(String),
    Tls(String),
    Reset(String),
    Other(String),
}

/// A failure to get any answer: `timeout` for the deadline, `down` otherwise.
pub fn transport(f: &TransportFailure) -> Verdict {
    let (status, what, text) = match f {
        TransportFailure::Timeout => {
            return Verdict::fail(Status::Timeout, "no answer within the timeout");
        }
        TransportFailure::Dns(e) => (Status::Down, "DNS lookup failed", e),
        TransportFailure::Connect(e) => (Status::Down, "connection failed", e),
        TransportFailure::Tls(e) => (Status::Down, "TLS handshake failed", e),
        TransportFailure::Reset(e) => (Status::Down, "connection reset", e),
        TransportFailure::Other(e) => (Status::Down, "request failed", e),
    };
    let text = one_line(text);
    if text.is_empty() {
        Verdict::fail(status, what)
    } else {
        Verdict::fail(status, format!("{what}: {text}"))
    }
}

/// An HTTP answer as observed: enough to classify without the client types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    pub status: u16,
    /// The `cf-mitigated` response header, if present.
    pub cf_mitigated: Option<&'a str>,
    /// The first bytes of the body (the caller reads at most 256 KiB).
    pub body: &'a [u8],
}

/// A bot challenge or WAF page: says nothing about DeepSeek's health, so the
/// result is `blocked` (inconclusive) rather than an outage.
pub fn is_challenge(a: &Answer) -> bool {
    challenge_reason(a).is_some()
}

fn challenge_reason(a: &Answer) -> Option<&'static str> {
    if a.cf_mitigated
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("challenge"))
    {
        return Some("Cloudflare challenge (cf-mitigated: challenge)");
    }
    let body = a.body.to_ascii_lowercase();
    CHALLENGE_MARKERS
        .iter()
        .find(|(marker, _)| contains_bytes(&body, marker.as_bytes()))
        .map(|(_, reason)| *reason)
}

/// A correct answer is `up`, or `slow` when it took longer than the threshold.
pub fn usable(elapsed: Duration, slow_threshold: Duration) -> Status {
    if elapsed > slow_threshold {
        Status::Slow
    } else {
        Status::Up
    }
}

/// The `http` probe of a web page. `expect` is the inclusive range of good
/// statuses (the caller defaults it to 200..=399); `busy_markers` are searched
/// case-insensitively in the body.
pub fn http_page(
    a: &Answer,
    expect: (u16, u16),
    busy_markers: &[String],
    elapsed: Duration,
    slow_threshold: Duration,
) -> Verdict {
    if let Some(reason) = challenge_reason(a) {
        return Verdict::fail(Status::Blocked, reason);
    }
    match a.status {
        503 => return Verdict::fail(Status::Busy, "HTTP 503 (service unavailable)"),
        429 => return Verdict::fail(Status::RateLimited, "HTTP 429 (too many requests)"),
        _ => {}
    }
    if let Some(marker) = find_busy_marker(a.body, busy_markers) {
        return Verdict::fail(
            Status::Busy,
            format!("busy marker \"{marker}\" in the page"),
        );
    }
    if (200..=299).contains(&a.status) && is_blank_nonempty(a.body) {
        return Verdict::fail(Status::Busy, format!("{} with an empty body", a.status));
    }
    let (lo, hi) = expect;
    if (lo..=hi).contains(&a.status) {
        return Verdict::ok(usable(elapsed, slow_threshold));
    }
    let unexpected = format!("HTTP {}, expected {}", a.status, range_text(expect));
    match a.status {
        401 => Verdict::fail(Status::AuthError, unexpected),
        403 => Verdict::fail(
            Status::Blocked,
            format!(
                "HTTP 403, likely a WAF block page (expected {})",
                range_text(expect)
            ),
        ),
        400 | 422 => Verdict::fail(Status::InvalidRequest, unexpected),
        _ => Verdict::fail(Status::Down, unexpected),
    }
}

/// Any non-2xx answer from an API endpoint, or a 2xx whose JSON is an error
/// object. `error` is the API's own message when it gives one.
pub fn api_error(a: &Answer) -> Verdict {
    if let Some(reason) = challenge_reason(a) {
        return Verdict::fail(Status::Blocked, reason);
    }
    let json: Option<Value> = serde_json::from_slice(a.body).ok();
    let message = json.as_ref().and_then(message_from_value);
    let body = String::from_utf8_lossy(a.body);
    let overloaded =
        has_overload_marker(message.as_deref().unwrap_or_default()) || has_overload_marker(&body);
    // A 4xx/5xx speaks for itself; otherwise (an error object in a 2xx, as
    // OpenRouter sends) trust a numeric `error.code` if there is one.
    let code = if (400..=599).contains(&a.status) {
        Some(a.status)
    } else {
        json.as_ref().and_then(error_code)
    };
    let status = match code {
        Some(code) => api_status(code, overloaded),
        None if overloaded => Status::Busy,
        None => Status::Down,
    };
    let error = match message {
        Some(m) => m,
        None if (200..=299).contains(&a.status) => {
            format!("HTTP {} with an error object", a.status)
        }
        None => format!("HTTP {}", a.status),
    };
    Verdict::fail(status, error)
}

/// The status an API error with this HTTP status code means.
fn api_status(code: u16, overloaded: bool) -> Status {
    match code {
        503 => Status::Busy,
        429 => Status::RateLimited,
        401 | 403 => Status::AuthError,
        402 => Status::BillingError,
        408 => Status::Timeout,
        400..=499 => Status::InvalidRequest,
        _ if overloaded => Status::Busy,
        _ => Status::Down,
    }
}

/// The message of an error body: `{"error":{"message":…}}` (DeepSeek,
/// OpenAI), `{"error":"…"}` or `{"message":…}`; whitespace collapsed, at most
/// [`ERROR_MAX_CHARS`] characters. `None` for anything else.
pub fn api_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    message_from_value(&v)
}

fn message_from_value(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    let nested = match obj.get("error") {
        Some(Value::Object(e)) => e.get("message").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    [nested, obj.get("message").and_then(Value::as_str)]
        .into_iter()
        .flatten()
        .map(one_line)
        .find(|m| !m.is_empty())
        .map(|m| truncate_chars(&m, ERROR_MAX_CHARS))
}

/// A numeric `error.code` that is an HTTP error status.
fn error_code(v: &Value) -> Option<u16> {
    let code = v.get("error")?.get("code")?.as_u64()?;
    u16::try_from(code).ok().filter(|c| (400..=599).contains(c))
}

fn is_error_object(v: &Value) -> bool {
    v.get("error").is_some_and(|e| !e.is_null())
}

/// The `models` probe (2xx answers only; the caller routes others to
/// [`api_error`]). A configured model missing from the list is the retired
/// model case: `invalid_request`.
pub fn models(
    a: &Answer,
    wanted_model: Option<&str>,
    elapsed: Duration,
    slow_threshold: Duration,
) -> Verdict {
    let v = match parse_api_json(a) {
        Ok(v) => v,
        Err(verdict) => return verdict,
    };
    let Some(data) = v.get("data").and_then(Value::as_array) else {
        return Verdict::fail(Status::Down, "malformed answer: no \"data\" array");
    };
    let ids: Vec<&str> = data
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .collect();
    if let Some(wanted) = wanted_model
        && !ids.contains(&wanted)
    {
        let available = if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(", ")
        };
        return Verdict::fail(
            Status::InvalidRequest,
            format!("model \"{wanted}\" is not offered; available: {available}"),
        );
    }
    let n = data.len();
    let noun = if n == 1 { "model" } else { "models" };
    Verdict::ok(usable(elapsed, slow_threshold)).with_detail(Some(format!("{n} {noun}")))
}

/// The `balance` probe (2xx answers only). Records the balance in `detail`;
/// unavailable or below `min_balance` (in every currency) is `billing_error`.
pub fn balance(
    a: &Answer,
    min_balance: Option<f64>,
    elapsed: Duration,
    slow_threshold: Duration,
) -> Verdict {
    let v = match parse_api_json(a) {
        Ok(v) => v,
        Err(verdict) => return verdict,
    };
    let Some(infos) = v.get("balance_infos").and_then(Value::as_array) else {
        return Verdict::fail(Status::Down, "malformed answer: no \"balance_infos\" array");
    };
    let mut amounts = Vec::with_capacity(infos.len());
    for info in infos {
        let currency = info.get("currency").and_then(Value::as_str);
        let total = info.get("total_balance").and_then(amount);
        match (currency, total) {
            (Some(c), Some((value, shown))) => amounts.push((value, format!("{shown} {c}"))),
            _ => {
                return Verdict::fail(
                    Status::Down,
                    "malformed answer: a balance without currency or total_balance",
                );
            }
        }
    }
    let shown = amounts
        .iter()
        .map(|(_, s)| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let detail = if amounts.is_empty() {
        Some("no balance reported".to_string())
    } else {
        Some(format!("balance {shown}"))
    };
    // Only an explicit `false` counts: other providers may omit the field.
    if v.get("is_available").and_then(Value::as_bool) == Some(false) {
        return Verdict::fail(Status::BillingError, "balance not available for API calls")
            .with_detail(detail);
    }
    if let Some(min) = min_balance
        && !amounts.is_empty()
        && amounts.iter().all(|(value, _)| *value < min)
    {
        return Verdict::fail(
            Status::BillingError,
            format!("balance {shown} is below min_balance {min:.2}"),
        )
        .with_detail(detail);
    }
    Verdict::ok(usable(elapsed, slow_threshold)).with_detail(detail)
}

/// An amount as DeepSeek sends it (a decimal string) or as a JSON number:
/// its value for comparisons and its text for display.
fn amount(v: &Value) -> Option<(f64, String)> {
    let (value, shown) = match v {
        Value::String(s) => {
            let s = s.trim();
            (s.parse::<f64>().ok()?, s.to_string())
        }
        Value::Number(n) => {
            let x = n.as_f64()?;
            (x, format!("{x:.2}"))
        }
        _ => return None,
    };
    value.is_finite().then_some((value, shown))
}

/// Shared start of the 2xx JSON classifiers: challenge, blank body, not JSON,
/// or an error object in a 2xx. `Err` carries the finished verdict.
fn parse_api_json(a: &Answer) -> Result<Value, Verdict> {
    if let Some(reason) = challenge_reason(a) {
        return Err(Verdict::fail(Status::Blocked, reason));
    }
    if a.body.iter().all(u8::is_ascii_whitespace) {
        return Err(Verdict::fail(
            Status::Busy,
            format!("{} with an empty body", a.status),
        ));
    }
    let v: Value = serde_json::from_slice(a.body)
        .map_err(|e| Verdict::fail(Status::Down, format!("malformed answer: not JSON ({e})")))?;
    if is_error_object(&v) {
        return Err(api_error(a));
    }
    Ok(v)
}

/// How a chat stream stopped being read, as the caller saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The server closed the stream.
    Eof,
    /// Nothing useful arrived for `stall_timeout` (the value given).
    Stalled(Duration),
    /// The probe's overall `timeout` passed.
    TimedOut,
    /// A transport error while reading; the client's error text.
    Cut(String),
    /// The body exceeded the probe's byte limit.
    TooLarge,
}

/// An error reported inside the stream, already classified.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StreamError {
    status: Status,
    message: String,
}

/// Accumulates a `chat/completions` stream event by event. Pure: the caller
/// passes how long after the request each event arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatStream {
    model: String,
    first_token: Option<Duration>,
    last_event: Option<Duration>,
    token_deltas: u64,
    completion_tokens: Option<u64>,
    finish_reason: Option<String>,
    done: bool,
    error: Option<StreamError>,
    malformed: Option<String>,
}

impl ChatStream {
    /// A stream for `model`, which names the answer in `detail`.
    pub fn new(model: &str) -> Self {
        ChatStream {
            model: model.to_string(),
            first_token: None,
            last_event: None,
            token_deltas: 0,
            completion_tokens: None,
            finish_reason: None,
            done: false,
            error: None,
            malformed: None,
        }
    }

    /// Takes one event; `elapsed` is the time since the request was sent.
    pub fn on_event(&mut self, ev: &SseEvent, elapsed: Duration) {
        self.last_event = Some(elapsed);
        let data = ev.data.trim();
        match ev.event.as_deref() {
            None | Some("message") => {}
            Some("error") => {
                self.record_error_event(data);
                return;
            }
            // Named events an OpenAI-style stream does not define: ignore.
            Some(_) => return,
        }
        if data.is_empty() {
            // `data:` with nothing: some servers' keep-alive.
            return;
        }
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let v = match serde_json::from_str::<Value>(data) {
            Ok(v) if v.is_object() => v,
            _ => {
                self.record_malformed(data);
                return;
            }
        };
        if is_error_object(&v) {
            self.record_error(&v, data);
            return;
        }
        for choice in v
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let delta = choice.get("delta").or_else(|| choice.get("message"));
            let is_token = delta.is_some_and(|d| {
                ["content", "reasoning_content"].iter().any(|k| {
                    d.get(k)
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
                })
            });
            if is_token {
                self.token_deltas = self.token_deltas.saturating_add(1);
                self.first_token.get_or_insert(elapsed);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str)
                && !reason.is_empty()
                && self.finish_reason.is_none()
            {
                self.finish_reason = Some(reason.to_string());
            }
        }
        if let Some(n) = v
            .get("usage")
            .and_then(|u| u.get("completion_tokens"))
            .and_then(Value::as_u64)
        {
            self.completion_tokens = Some(n);
        }
    }

    /// Time to first token (ttft): when the first real token arrived.
    pub fn first_token_at(&self) -> Option<Duration> {
        self.first_token
    }

    /// A real token (non-empty `content` or `reasoning_content`) arrived.
    pub fn got_token(&self) -> bool {
        self.first_token.is_some()
    }

    /// A `finish_reason` or `[DONE]` was seen: the caller may stop reading
    /// (at `[DONE]`, or once the usage chunk after the finish arrived).
    pub fn is_finished(&self) -> bool {
        self.finish_reason.is_some() || self.done
    }

    /// `data: [DONE]` was seen.
    pub fn saw_done(&self) -> bool {
        self.done
    }

    /// The verdict once reading stopped for the reason `end`, `elapsed` after
    /// the request. Slowness is judged on time to first token; `keepalives` is
    /// how many keep-alives (comments, blank lines) the stream carried.
    pub fn finish(
        &self,
        end: StreamEnd,
        elapsed: Duration,
        slow_threshold: Duration,
        keepalives: u64,
    ) -> Verdict {
        let (status, error) = self.judge(end, elapsed, slow_threshold, keepalives);
        Verdict {
            status,
            error: error.map(|e| truncate_chars(&e, ERROR_MAX_CHARS)),
            detail: self.detail(),
        }
    }

    fn judge(
        &self,
        end: StreamEnd,
        elapsed: Duration,
        slow_threshold: Duration,
        keepalives: u64,
    ) -> (Status, Option<String>) {
        if let Some(e) = &self.error {
            return (e.status, Some(e.message.clone()));
        }
        if self.finish_reason.as_deref() == Some("insufficient_system_resource") {
            return (
                Status::Busy,
                Some("server out of resources (finish_reason insufficient_system_resource)".into()),
            );
        }
        if let Some(m) = &self.malformed {
            return (Status::Down, Some(m.clone()));
        }
        let tokens = self.token_count();
        match (self.first_token, &self.finish_reason) {
            (Some(ttft), _) if self.is_finished() => return (usable(ttft, slow_threshold), None),
            (None, Some(reason)) => {
                return (
                    Status::Down,
                    Some(format!("finished without a token (finish_reason {reason})")),
                );
            }
            _ => {}
        }
        let got_token = self.got_token();
        let no_token_text = || {
            if keepalives == 0 {
                "200 with an empty stream, no token".to_string()
            } else {
                format!("200 with only keep-alives, no token ({keepalives} keep-alives)")
            }
        };
        if !got_token && self.done {
            return (Status::Busy, Some(no_token_text()));
        }
        match end {
            StreamEnd::Eof if got_token => (
                Status::Down,
                Some(format!("stream cut after {}", plural(tokens, "token"))),
            ),
            StreamEnd::Eof => (Status::Busy, Some(no_token_text())),
            StreamEnd::Stalled(d) if got_token => (
                Status::Busy,
                Some(format!(
                    "stalled {} after {} ({keepalives} keep-alives)",
                    fmt_secs(d),
                    plural(tokens, "token")
                )),
            ),
            StreamEnd::Stalled(d) => (
                Status::Busy,
                Some(format!(
                    "stalled {} without a token ({keepalives} keep-alives)",
                    fmt_secs(d)
                )),
            ),
            StreamEnd::TimedOut => (
                Status::Timeout,
                Some(format!(
                    "no complete answer within the timeout ({})",
                    fmt_secs(elapsed)
                )),
            ),
            StreamEnd::Cut(e) => {
                let e = one_line(&e);
                let what = if got_token {
                    format!("stream cut after {}", plural(tokens, "token"))
                } else {
                    "stream cut".to_string()
                };
                let text = if e.is_empty() {
                    what
                } else {
                    format!("{what}: {e}")
                };
                (Status::Down, Some(text))
            }
            StreamEnd::TooLarge => (
                Status::Down,
                Some("stream larger than the read limit".to_string()),
            ),
        }
    }

    /// Output tokens: the server's usage count, else the token deltas seen.
    fn token_count(&self) -> u64 {
        self.completion_tokens.unwrap_or(self.token_deltas)
    }

    /// `<model> <N> tokens <R> tok/s`, the rate over first token to last event.
    fn detail(&self) -> Option<String> {
        if !self.got_token() && self.completion_tokens.is_none() {
            return None;
        }
        let n = self.token_count();
        let mut text = format!("{} {}", self.model, plural(n, "token"));
        if let (Some(first), Some(last)) = (self.first_token, self.last_event) {
            let span = last.saturating_sub(first);
            if n > 0 && !span.is_zero() {
                let rate = (n as f64 / span.as_secs_f64()).round();
                text.push_str(&format!(" {rate} tok/s"));
            }
        }
        Some(text.trim_start().to_string())
    }

    fn record_error(&mut self, v: &Value, data: &str) {
        if self.error.is_some() {
            return;
        }
        let message = message_from_value(v).unwrap_or_else(|| "error in the stream".to_string());
        let overloaded = has_overload_marker(&message) || has_overload_marker(data);
        let status = match error_code(v) {
            Some(code) => api_status(code, overloaded),
            None if overloaded => Status::Busy,
            None => Status::Down,
        };
        self.error = Some(StreamError { status, message });
    }

    fn record_error_event(&mut self, data: &str) {
        match serde_json::from_str::<Value>(data) {
            Ok(v) if v.is_object() => self.record_error(&v, data),
            _ => {
                if self.error.is_none() {
                    let text = one_line(data);
                    let message = if text.is_empty() {
                        "error in the stream".to_string()
                    } else {
                        truncate_chars(&text, ERROR_MAX_CHARS)
                    };
                    let status = if has_overload_marker(data) {
                        Status::Busy
                    } else {
                        Status::Down
                    };
                    self.error = Some(StreamError { status, message });
                }
            }
        }
    }

    fn record_malformed(&mut self, data: &str) {
        if self.malformed.is_none() {
            self.malformed = Some(format!(
                "malformed stream event: {}",
                truncate_chars(&one_line(data), SNIPPET_CHARS)
            ));
        }
    }
}

/// `1 token`, `2 tokens`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `20s`, `1.5s`, `0.3s`: seconds for people; whole seconds from 10s up.
fn fmt_secs(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 10.0 {
        return format!("{}s", secs.round());
    }
    let tenths = (secs * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}s")
    } else {
        format!("{tenths:.1}s")
    }
}

/// `expect` for messages: `200-399`, or `200` for a single status.
fn range_text((lo, hi): (u16, u16)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

/// Whitespace runs (newlines included) collapsed to one space, trimmed.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn has_overload_marker(text: &str) -> bool {
    let lower = text.to_lowercase();
    OVERLOAD_MARKERS.iter().any(|m| lower.contains(m))
}

/// The first configured busy marker in the body (case-insensitive, Unicode
/// aware; a character cut at the 256 KiB limit is harmless).
fn find_busy_marker<'m>(body: &[u8], markers: &'m [String]) -> Option<&'m str> {
    let mut lower: Option<String> = None;
    for marker in markers {
        let m = marker.trim();
        if m.is_empty() {
            continue;
        }
        let hay = lower.get_or_insert_with(|| String::from_utf8_lossy(body).to_lowercase());
        if hay.contains(&m.to_lowercase()) {
            return Some(m);
        }
    }
    None
}

/// A body of only whitespace, but not zero bytes.
fn is_blank_nonempty(body: &[u8]) -> bool {
    !body.is_empty() && body.iter().all(u8::is_ascii_whitespace)
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
