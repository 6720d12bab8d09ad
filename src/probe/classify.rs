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
    /// What the run concluded.
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
    /// The probe's deadline passed before an answer.
    Timeout,
    /// The host name did not resolve.
    Dns(String),
    /// No connection (refused, unreachable).
    Connect(String),
    /// The TLS handshake or certificate check failed.
    Tls(String),
    /// The connection was reset or closed early.
    Reset(String),
    /// Anything else the client reported.
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
    /// The HTTP status code.
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
    if let Some(wanted) = wanted_model.filter(|w| !ids.contains(w)) {
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
    let below = min_balance
        .filter(|min| !amounts.is_empty() && amounts.iter().all(|(value, _)| value < min));
    if let Some(min) = below {
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
            if self.finish_reason.is_none() {
                self.finish_reason = choice
                    .get("finish_reason")
                    .and_then(Value::as_str)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::sse::SseParser;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ans(status: u16, body: &str) -> Answer<'_> {
        Answer {
            status,
            cf_mitigated: None,
            body: body.as_bytes(),
        }
    }

    fn err(v: &Verdict) -> &str {
        v.error.as_deref().unwrap_or_default()
    }

    // Real DeepSeek error bodies.
    const AUTH_401: &str = r#"{"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid","type":"authentication_error","param":null,"code":"invalid_request_error"}}"#;
    const BALANCE_402: &str = r#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#;
    const MODEL_400: &str = r#"{"error":{"message":"Model Not Exist","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#;
    const DESER_422: &str = r#"{"error":{"message":"Failed to deserialize the JSON body into the target type: messages[0]: missing field `content` at line 1 column 27","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#;
    const RATE_429: &str = r#"{"error":{"message":"Rate Limit Reached","type":"rate_limit_error","param":null,"code":"invalid_request_error"}}"#;
    const INTERNAL_500: &str = r#"{"error":{"message":"Internal Server Error","type":"internal_error","param":null,"code":"invalid_request_error"}}"#;
    const OVERLOAD_503: &str = r#"{"error":{"message":"Server overloaded, please try again later.","type":"server_overloaded","param":null,"code":"invalid_request_error"}}"#;
    const PROXY_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    const CF_CHALLENGE: &str = r#"<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head><body><noscript>Enable JavaScript and cookies to continue</noscript><script>(function(){window._cf_chl_opt={cvId: '3',cZone: "chat.deepseek.com",cType: 'managed'};var cpo=document.createElement('script');cpo.src='/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=8f1c';}());</script></body></html>"#;
    const CF_BLOCK: &str = "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>Sorry, you have been blocked</body></html>";
    const NORMAL_PAGE: &str = r#"<!DOCTYPE html><html><head><title>DeepSeek - Into the Unknown</title></head><body><div id="root"></div><script>(function(){var a=document.createElement('script');a.src='/cdn-cgi/challenge-platform/h/g/scripts/jsd/4c1a/main.js';document.getElementsByTagName('head')[0].appendChild(a);})();</script></body></html>"#;

    // ---- transport -------------------------------------------------------

    #[test]
    fn transport_failures() {
        let cases = [
            (
                TransportFailure::Timeout,
                Status::Timeout,
                "no answer within the timeout",
            ),
            (
                TransportFailure::Dns("no such host api.deepseek.com".into()),
                Status::Down,
                "DNS lookup failed: no such host api.deepseek.com",
            ),
            (
                TransportFailure::Connect("Connection refused (os error 111)".into()),
                Status::Down,
                "connection failed: Connection refused (os error 111)",
            ),
            (
                TransportFailure::Tls("invalid peer certificate: Expired".into()),
                Status::Down,
                "TLS handshake failed: invalid peer certificate: Expired",
            ),
            (
                TransportFailure::Reset("connection reset by peer".into()),
                Status::Down,
                "connection reset: connection reset by peer",
            ),
            (
                TransportFailure::Other("  ".into()),
                Status::Down,
                "request failed",
            ),
        ];
        for (f, status, error) in cases {
            let v = transport(&f);
            assert_eq!((v.status, err(&v)), (status, error), "{f:?}");
            assert_eq!(v.detail, None);
        }
        let long = transport(&TransportFailure::Other("x".repeat(500)));
        assert_eq!(err(&long).chars().count(), ERROR_MAX_CHARS);
    }

    // ---- challenge / usable ---------------------------------------------

    #[test]
    fn challenges_are_recognised() {
        for status in [200, 403, 503] {
            for header in ["challenge", "Challenge", " CHALLENGE "] {
                let a = Answer {
                    status,
                    cf_mitigated: Some(header),
                    body: b"",
                };
                assert!(is_challenge(&a), "{status} {header}");
            }
        }
        assert!(is_challenge(&ans(403, CF_CHALLENGE)));
        assert!(is_challenge(&ans(403, CF_BLOCK)));
        assert!(is_challenge(&ans(200, "<TITLE>Just a moment...</TITLE>")));
        assert!(is_challenge(&ans(
            403,
            "<script>window._cf_chl_opt={}</script>"
        )));
        assert!(
            !is_challenge(&ans(200, NORMAL_PAGE)),
            "the jsd script is on normal pages"
        );
        assert!(!is_challenge(&ans(503, OVERLOAD_503)));
        let other = Answer {
            status: 200,
            cf_mitigated: Some("block"),
            body: b"ok",
        };
        assert!(!is_challenge(&other));
    }

    #[test]
    fn usable_is_up_or_slow() {
        assert_eq!(usable(ms(500), secs(10)), Status::Up);
        assert_eq!(usable(secs(10), secs(10)), Status::Up);
        assert_eq!(usable(ms(10_001), secs(10)), Status::Slow);
    }

    // ---- http_page ---------------------------------------------------------

    fn page(a: &Answer) -> Verdict {
        let markers = [
            "server is busy".to_string(),
            "服务器繁忙".to_string(),
            "  ".to_string(),
        ];
        http_page(a, (200, 399), &markers, secs(1), secs(10))
    }

    #[test]
    fn http_page_rules() {
        let challenge = Answer {
            status: 403,
            cf_mitigated: Some("challenge"),
            body: CF_CHALLENGE.as_bytes(),
        };
        let cases: Vec<(Answer, Status, Option<&str>)> = vec![
            (
                challenge,
                Status::Blocked,
                Some("Cloudflare challenge (cf-mitigated: challenge)"),
            ),
            (
                ans(403, CF_CHALLENGE),
                Status::Blocked,
                Some("Cloudflare challenge page (Just a moment...)"),
            ),
            (
                ans(200, CF_BLOCK),
                Status::Blocked,
                Some("Cloudflare block page (Attention Required!)"),
            ),
            (
                ans(503, "<html>Service Unavailable</html>"),
                Status::Busy,
                Some("HTTP 503 (service unavailable)"),
            ),
            (
                ans(429, ""),
                Status::RateLimited,
                Some("HTTP 429 (too many requests)"),
            ),
            (
                ans(200, "<p>The Server is Busy, please retry</p>"),
                Status::Busy,
                Some("busy marker \"server is busy\" in the page"),
            ),
            (
                ans(200, "<p>服务器繁忙，请稍后再试。</p>"),
                Status::Busy,
                Some("busy marker \"服务器繁忙\" in the page"),
            ),
            (
                ans(500, "服务器繁忙"),
                Status::Busy,
                Some("busy marker \"服务器繁忙\" in the page"),
            ),
            (
                ans(200, " \r\n\n\t "),
                Status::Busy,
                Some("200 with an empty body"),
            ),
            (ans(200, NORMAL_PAGE), Status::Up, None),
            (ans(200, ""), Status::Up, None),
            (ans(302, ""), Status::Up, None),
            (
                ans(401, "nope"),
                Status::AuthError,
                Some("HTTP 401, expected 200-399"),
            ),
            (
                ans(403, "<h1>Forbidden</h1>"),
                Status::Blocked,
                Some("HTTP 403, likely a WAF block page (expected 200-399)"),
            ),
            (
                ans(400, ""),
                Status::InvalidRequest,
                Some("HTTP 400, expected 200-399"),
            ),
            (
                ans(422, ""),
                Status::InvalidRequest,
                Some("HTTP 422, expected 200-399"),
            ),
            (
                ans(404, "not found"),
                Status::Down,
                Some("HTTP 404, expected 200-399"),
            ),
            (
                ans(500, "oops"),
                Status::Down,
                Some("HTTP 500, expected 200-399"),
            ),
            (
                ans(502, PROXY_502),
                Status::Down,
                Some("HTTP 502, expected 200-399"),
            ),
            (
                ans(504, ""),
                Status::Down,
                Some("HTTP 504, expected 200-399"),
            ),
        ];
        for (a, status, error) in cases {
            let v = page(&a);
            assert_eq!(
                (v.status, v.error.as_deref()),
                (status, error),
                "{}",
                a.status
            );
        }
    }

    #[test]
    fn http_page_slow_and_custom_expect() {
        let v = http_page(&ans(200, "ok"), (200, 399), &[], secs(11), secs(10));
        assert_eq!(v.status, Status::Slow);
        let v = http_page(&ans(301, "ok"), (200, 200), &[], secs(1), secs(10));
        assert_eq!(
            (v.status, err(&v)),
            (Status::Down, "HTTP 301, expected 200")
        );
        // An expected status wins over the 4xx rows.
        let v = http_page(&ans(401, "login"), (200, 401), &[], secs(1), secs(10));
        assert_eq!(v.status, Status::Up);
        // Busy markers still win over an expected status.
        let m = ["Busy".to_string()];
        let v = http_page(&ans(200, "we are BUSY"), (200, 399), &m, secs(1), secs(10));
        assert_eq!(v.status, Status::Busy);
        // A marker split by the 256 KiB cut does not match, and a cut
        // character does not break the search.
        let m = ["服务器繁忙".to_string()];
        let body = "服务器繁忙".as_bytes();
        let cut = &body[..body.len() - 1];
        let a = Answer {
            status: 200,
            cf_mitigated: None,
            body: cut,
        };
        assert_eq!(
            http_page(&a, (200, 399), &m, secs(1), secs(10)).status,
            Status::Up
        );
    }

    // ---- api_error -----------------------------------------------------------

    #[test]
    fn api_error_real_deepseek_bodies() {
        let cases = [
            (
                401,
                AUTH_401,
                Status::AuthError,
                "Authentication Fails, Your api key: ****abcd is invalid",
            ),
            (
                402,
                BALANCE_402,
                Status::BillingError,
                "Insufficient Balance",
            ),
            (400, MODEL_400, Status::InvalidRequest, "Model Not Exist"),
            (
                422,
                DESER_422,
                Status::InvalidRequest,
                "Failed to deserialize the JSON body into the target type: messages[0]: missing field `content` at line 1 column 27",
            ),
            (429, RATE_429, Status::RateLimited, "Rate Limit Reached"),
            (500, INTERNAL_500, Status::Down, "Internal Server Error"),
            (
                503,
                OVERLOAD_503,
                Status::Busy,
                "Server overloaded, please try again later.",
            ),
            (502, PROXY_502, Status::Down, "HTTP 502"),
        ];
        for (code, body, status, error) in cases {
            let v = api_error(&ans(code, body));
            assert_eq!((v.status, err(&v)), (status, error), "{code}");
            assert_eq!(v.detail, None);
        }
    }

    #[test]
    fn api_error_status_rows() {
        let cases = [
            (503, "", Status::Busy, "HTTP 503"),
            (429, "", Status::RateLimited, "HTTP 429"),
            (401, "", Status::AuthError, "HTTP 401"),
            (
                403,
                r#"{"error":"forbidden"}"#,
                Status::AuthError,
                "forbidden",
            ),
            (402, "", Status::BillingError, "HTTP 402"),
            (400, "", Status::InvalidRequest, "HTTP 400"),
            (422, "", Status::InvalidRequest, "HTTP 422"),
            (408, "", Status::Timeout, "HTTP 408"),
            (
                404,
                "404 page not found",
                Status::InvalidRequest,
                "HTTP 404",
            ),
            (
                405,
                r#"{"message":"Method Not Allowed"}"#,
                Status::InvalidRequest,
                "Method Not Allowed",
            ),
            (500, "", Status::Down, "HTTP 500"),
            (502, "", Status::Down, "HTTP 502"),
            (504, "<h1>Gateway Time-out</h1>", Status::Down, "HTTP 504"),
            (524, "", Status::Down, "HTTP 524"),
            (502, "<h1>Server is busy</h1>", Status::Busy, "HTTP 502"),
            (
                500,
                r#"{"error":{"message":"服务器繁忙，请稍后重试"}}"#,
                Status::Busy,
                "服务器繁忙，请稍后重试",
            ),
            (
                500,
                r#"{"error":{"message":"x","type":"insufficient_system_resource"}}"#,
                Status::Busy,
                "x",
            ),
            (
                504,
                r#"{"message":"Upstream timed out, try again later"}"#,
                Status::Busy,
                "Upstream timed out, try again later",
            ),
            (
                500,
                r#"{"error":{"message":"Server Busy"}}"#,
                Status::Busy,
                "Server Busy",
            ),
            (301, "", Status::Down, "HTTP 301"),
        ];
        for (code, body, status, error) in cases {
            let v = api_error(&ans(code, body));
            assert_eq!((v.status, err(&v)), (status, error), "{code} {body}");
        }
    }

    #[test]
    fn api_error_challenge_first() {
        let a = Answer {
            status: 403,
            cf_mitigated: Some("challenge"),
            body: CF_CHALLENGE.as_bytes(),
        };
        let v = api_error(&a);
        assert_eq!(
            (v.status, err(&v)),
            (
                Status::Blocked,
                "Cloudflare challenge (cf-mitigated: challenge)"
            )
        );
        assert_eq!(api_error(&ans(503, CF_CHALLENGE)).status, Status::Blocked);
    }

    #[test]
    fn api_error_in_a_2xx() {
        let v = api_error(&ans(200, OVERLOAD_503));
        assert_eq!(v.status, Status::Busy);
        let v = api_error(&ans(200, r#"{"error":{"message":"Something broke"}}"#));
        assert_eq!((v.status, err(&v)), (Status::Down, "Something broke"));
        // OpenRouter puts the real status in a numeric `error.code`.
        let v = api_error(&ans(
            200,
            r#"{"error":{"code":429,"message":"Rate limit exceeded"}}"#,
        ));
        assert_eq!(v.status, Status::RateLimited);
        let v = api_error(&ans(
            200,
            r#"{"error":{"code":402,"message":"Insufficient credits"}}"#,
        ));
        assert_eq!(v.status, Status::BillingError);
        let v = api_error(&ans(200, r#"{"error":{}}"#));
        assert_eq!(
            (v.status, err(&v)),
            (Status::Down, "HTTP 200 with an error object")
        );
        // A 4xx/5xx status is not overridden by a code in the body.
        let v = api_error(&ans(503, r#"{"error":{"code":400,"message":"x"}}"#));
        assert_eq!(v.status, Status::Busy);
    }

    #[test]
    fn api_error_messages() {
        let m = |s: &str| api_error_message(s.as_bytes());
        assert_eq!(m(RATE_429).as_deref(), Some("Rate Limit Reached"));
        assert_eq!(
            m(r#"{"error":"  model  not\nfound "}"#).as_deref(),
            Some("model not found")
        );
        assert_eq!(
            m(r#"{"message":"Unauthorized"}"#).as_deref(),
            Some("Unauthorized")
        );
        assert_eq!(
            m(r#"{"error":{"message":"  "},"message":"outer"}"#).as_deref(),
            Some("outer")
        );
        assert_eq!(m(r#"{"error":{"message":""}}"#), None);
        assert_eq!(m(r#"{"error":{"type":"x"}}"#), None);
        assert_eq!(m(r#"{"error":42}"#), None);
        assert_eq!(m(r#"["error"]"#), None);
        assert_eq!(m(PROXY_502), None);
        assert_eq!(m(""), None);
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "é".repeat(300));
        let got = m(&long).unwrap_or_default();
        assert_eq!(got.chars().count(), ERROR_MAX_CHARS);
        assert!(got.ends_with('…'));
    }

    // ---- models ------------------------------------------------------------

    const MODELS: &str = r#"{"object":"list","data":[{"id":"deepseek-flash","object":"model","owned_by":"deepseek"},{"id":"deepseek-v4-pro","object":"model","owned_by":"deepseek"}]}"#;

    #[test]
    fn models_rules() {
        let v = models(&ans(200, MODELS), Some("deepseek-flash"), secs(1), secs(10));
        assert_eq!(
            v,
            Verdict {
                status: Status::Up,
                error: None,
                detail: Some("2 models".into())
            }
        );
        let v = models(&ans(200, MODELS), None, secs(11), secs(10));
        assert_eq!(v.status, Status::Slow);
        let v = models(&ans(200, MODELS), Some("deepseek-chat"), secs(1), secs(10));
        assert_eq!(
            (v.status, err(&v)),
            (
                Status::InvalidRequest,
                "model \"deepseek-chat\" is not offered; available: deepseek-flash, deepseek-v4-pro"
            )
        );
        let one = r#"{"data":[{"id":"m"}]}"#;
        assert_eq!(
            models(&ans(200, one), None, secs(1), secs(10))
                .detail
                .as_deref(),
            Some("1 model")
        );
        let none = r#"{"object":"list","data":[]}"#;
        let v = models(&ans(200, none), Some("m"), secs(1), secs(10));
        assert_eq!(err(&v), "model \"m\" is not offered; available: none");
    }

    #[test]
    fn models_long_list_is_truncated() {
        let ids: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"id":"vendor/model-{i}"}}"#))
            .collect();
        let body = format!(r#"{{"data":[{}]}}"#, ids.join(","));
        let v = models(&ans(200, &body), Some("deepseek-flash"), secs(1), secs(10));
        assert_eq!(v.status, Status::InvalidRequest);
        assert_eq!(err(&v).chars().count(), ERROR_MAX_CHARS);
    }

    #[test]
    fn models_failures() {
        let check = |body: &str, status: Status, error: &str| {
            let v = models(&ans(200, body), Some("deepseek-flash"), secs(1), secs(10));
            assert_eq!((v.status, err(&v)), (status, error), "{body}");
        };
        check("", Status::Busy, "200 with an empty body");
        check("\n\n  \n", Status::Busy, "200 with an empty body");
        check(
            "<html>hello</html>",
            Status::Down,
            "malformed answer: not JSON (expected value at line 1 column 1)",
        );
        check(
            r#"{"object":"list"}"#,
            Status::Down,
            "malformed answer: no \"data\" array",
        );
        check(
            r#"{"data":{}}"#,
            Status::Down,
            "malformed answer: no \"data\" array",
        );
        check(
            OVERLOAD_503,
            Status::Busy,
            "Server overloaded, please try again later.",
        );
        check(
            CF_CHALLENGE,
            Status::Blocked,
            "Cloudflare challenge page (Just a moment...)",
        );
    }

    // ---- balance ---------------------------------------------------------------

    const BALANCE: &str = r#"{"is_available":true,"balance_infos":[{"currency":"CNY","total_balance":"110.00","granted_balance":"10.00","topped_up_balance":"100.00"}]}"#;

    fn bal(body: &str, min: Option<f64>) -> Verdict {
        balance(&ans(200, body), min, secs(1), secs(10))
    }

    #[test]
    fn balance_ok() {
        let v = bal(BALANCE, Some(1.0));
        assert_eq!(
            v,
            Verdict {
                status: Status::Up,
                error: None,
                detail: Some("balance 110.00 CNY".into())
            }
        );
        let v = balance(&ans(200, BALANCE), None, secs(11), secs(10));
        assert_eq!(v.status, Status::Slow);
        let two = r#"{"is_available":true,"balance_infos":[{"currency":"CNY","total_balance":"0.10"},{"currency":"USD","total_balance":12.5}]}"#;
        let v = bal(two, Some(1.0));
        assert_eq!(v.status, Status::Up, "one currency is above the minimum");
        assert_eq!(v.detail.as_deref(), Some("balance 0.10 CNY, 12.50 USD"));
        let equal =
            r#"{"is_available":true,"balance_infos":[{"currency":"USD","total_balance":"1.00"}]}"#;
        assert_eq!(bal(equal, Some(1.0)).status, Status::Up);
        let empty = r#"{"is_available":true,"balance_infos":[]}"#;
        let v = bal(empty, Some(1.0));
        assert_eq!(
            (v.status, v.detail.as_deref()),
            (Status::Up, Some("no balance reported"))
        );
        let no_flag = r#"{"balance_infos":[{"currency":"USD","total_balance":"5"}]}"#;
        assert_eq!(bal(no_flag, None).status, Status::Up);
    }

    #[test]
    fn balance_billing_errors() {
        let unavailable = r#"{"is_available":false,"balance_infos":[{"currency":"CNY","total_balance":"0.00","granted_balance":"0.00","topped_up_balance":"0.00"}]}"#;
        let v = bal(unavailable, None);
        assert_eq!(
            (v.status, err(&v), v.detail.as_deref()),
            (
                Status::BillingError,
                "balance not available for API calls",
                Some("balance 0.00 CNY")
            )
        );
        let low =
            r#"{"is_available":true,"balance_infos":[{"currency":"USD","total_balance":"0.50"}]}"#;
        let v = bal(low, Some(1.0));
        assert_eq!(
            (v.status, err(&v), v.detail.as_deref()),
            (
                Status::BillingError,
                "balance 0.50 USD is below min_balance 1.00",
                Some("balance 0.50 USD")
            )
        );
        let both_low = r#"{"is_available":true,"balance_infos":[{"currency":"CNY","total_balance":"0.10"},{"currency":"USD","total_balance":0.2}]}"#;
        let v = bal(both_low, Some(1.0));
        assert_eq!(
            (v.status, err(&v)),
            (
                Status::BillingError,
                "balance 0.10 CNY, 0.20 USD is below min_balance 1.00"
            )
        );
    }

    #[test]
    fn balance_failures() {
        let check = |body: &str, status: Status, error: &str| {
            let v = bal(body, Some(1.0));
            assert_eq!((v.status, err(&v)), (status, error), "{body}");
        };
        check(" \n", Status::Busy, "200 with an empty body");
        check(
            "not json",
            Status::Down,
            "malformed answer: not JSON (expected ident at line 1 column 2)",
        );
        check(
            r#"{"is_available":true}"#,
            Status::Down,
            "malformed answer: no \"balance_infos\" array",
        );
        check(
            r#"{"balance_infos":[{"total_balance":"1.00"}]}"#,
            Status::Down,
            "malformed answer: a balance without currency or total_balance",
        );
        check(
            r#"{"balance_infos":[{"currency":"USD","total_balance":"lots"}]}"#,
            Status::Down,
            "malformed answer: a balance without currency or total_balance",
        );
        check(
            AUTH_401,
            Status::Down,
            "Authentication Fails, Your api key: ****abcd is invalid",
        );
        check(
            CF_BLOCK,
            Status::Blocked,
            "Cloudflare block page (Attention Required!)",
        );
    }

    // ---- chat streams ------------------------------------------------------------

    /// One chunk JSON with a content delta.
    fn chunk(content: &str) -> String {
        format!(
            r#"{{"id":"1","object":"chat.completion.chunk","created":1,"model":"deepseek-flash","choices":[{{"index":0,"delta":{{"content":{}}},"logprobs":null,"finish_reason":null}}]}}"#,
            serde_json::Value::String(content.to_string())
        )
    }

    fn finish_chunk(reason: &str, completion_tokens: Option<u64>) -> String {
        let usage = completion_tokens.map_or("null".to_string(), |n| {
            format!(
                r#"{{"prompt_tokens":9,"completion_tokens":{n},"total_tokens":{}}}"#,
                n + 9
            )
        });
        format!(
            r#"{{"id":"1","object":"chat.completion.chunk","created":1,"model":"deepseek-flash","choices":[{{"index":0,"delta":{{"content":""}},"logprobs":null,"finish_reason":"{reason}"}}],"usage":{usage}}}"#
        )
    }

    const ROLE_ONLY: &str = r#"{"id":"1","object":"chat.completion.chunk","created":1,"model":"deepseek-flash","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#;

    /// Builds an SSE body: `None` is a `: keep-alive` comment.
    fn sse(items: &[Option<&str>]) -> String {
        items
            .iter()
            .map(|i| match i {
                Some(data) => format!("data: {data}\n\n"),
                None => ": keep-alive\n\n".to_string(),
            })
            .collect()
    }

    /// Runs `body` through the SSE parser in `chunks` pieces; event `i`
    /// arrives at 1000 + 50·i ms. Returns the stream and the keep-alives.
    fn run(chunks: &[&[u8]]) -> (ChatStream, u64) {
        let mut p = SseParser::new();
        let mut s = ChatStream::new("deepseek-flash");
        let mut events = Vec::new();
        let mut n = 0u64;
        for c in chunks {
            p.feed(c, &mut events);
            for ev in events.drain(..) {
                s.on_event(&ev, ms(1000 + 50 * n));
                n += 1;
            }
        }
        p.finish(&mut events);
        assert!(events.is_empty());
        (s, p.comments() + p.blank_lines())
    }

    fn run_str(body: &str) -> (ChatStream, u64) {
        run(&[body.as_bytes()])
    }

    fn verdict(body: &str, end: StreamEnd) -> Verdict {
        let (s, k) = run_str(body);
        s.finish(end, secs(3), secs(10), k)
    }

    fn deepseek_body() -> String {
        sse(&[
            None,
            None,
            Some(ROLE_ONLY),
            Some(&chunk("你好")),
            Some(&chunk("！")),
            Some(&finish_chunk("stop", Some(2))),
            Some("[DONE]"),
        ])
    }

    #[test]
    fn chat_success() {
        let (s, k) = run_str(&deepseek_body());
        assert!(s.got_token() && s.is_finished() && s.saw_done());
        assert_eq!(
            s.first_token_at(),
            Some(ms(1050)),
            "the role-only delta is not a token"
        );
        assert_eq!(k, 4);
        // 2 tokens over 1050 -> 1200 ms.
        let v = s.finish(StreamEnd::Eof, secs(2), secs(10), k);
        assert_eq!(
            v,
            Verdict {
                status: Status::Up,
                error: None,
                detail: Some("deepseek-flash 2 tokens 13 tok/s".into())
            }
        );
    }

    #[test]
    fn chat_slowness_is_judged_on_ttft() {
        let (s, k) = run_str(&deepseek_body());
        // ttft 1.05s: slow above a 1s threshold, whatever the total time.
        assert_eq!(
            s.finish(StreamEnd::Eof, secs(2), secs(1), k).status,
            Status::Slow
        );
        assert_eq!(
            s.finish(StreamEnd::Eof, secs(60), secs(2), k).status,
            Status::Up
        );
    }

    #[test]
    fn chat_stream_split_at_every_offset() {
        for body in [
            deepseek_body(),
            deepseek_body().replace('\n', "\r\n"),
            deepseek_body().replace('\n', "\r"),
        ] {
            let bytes = body.as_bytes();
            let (whole, k) = run(&[bytes]);
            let expected = whole.finish(StreamEnd::Eof, secs(2), secs(10), k);
            assert_eq!(expected.status, Status::Up);
            for i in 0..=bytes.len() {
                let (a, b) = bytes.split_at(i);
                let (s, k2) = run(&[a, b]);
                assert_eq!(s, whole, "split at {i}");
                assert_eq!(
                    s.finish(StreamEnd::Eof, secs(2), secs(10), k2),
                    expected,
                    "split at {i}"
                );
            }
            let single: Vec<&[u8]> = bytes.chunks(1).collect();
            let (s, _) = run(&single);
            assert_eq!(s, whole);
        }
    }

    #[test]
    fn chat_finish_then_transport_trouble_is_still_usable() {
        let body = sse(&[Some(&chunk("Hi")), Some(&finish_chunk("stop", None))]);
        let (s, k) = run_str(&body);
        assert!(s.is_finished() && !s.saw_done());
        for end in [
            StreamEnd::Eof,
            StreamEnd::TimedOut,
            StreamEnd::Cut("reset".into()),
        ] {
            let v = s.finish(end, secs(3), secs(10), k);
            assert_eq!((v.status, v.error), (Status::Up, None));
            assert_eq!(v.detail.as_deref(), Some("deepseek-flash 1 token 20 tok/s"));
        }
    }

    #[test]
    fn chat_done_without_finish_reason_is_usable_with_a_token() {
        let body = sse(&[Some(&chunk("Hi")), Some(&chunk(" there")), Some("[DONE]")]);
        let v = verdict(&body, StreamEnd::Eof);
        assert_eq!(v.status, Status::Up);
        assert_eq!(
            v.detail.as_deref(),
            Some("deepseek-flash 2 tokens 20 tok/s")
        );
    }

    #[test]
    fn chat_rate_is_omitted_for_a_zero_span() {
        let mut s = ChatStream::new("deepseek-flash");
        let ev = |d: &str| SseEvent {
            event: None,
            data: d.to_string(),
        };
        s.on_event(&ev(&chunk("a")), secs(1));
        s.on_event(&ev(&finish_chunk("stop", Some(1))), secs(1));
        let v = s.finish(StreamEnd::Eof, secs(1), secs(10), 0);
        assert_eq!(v.detail.as_deref(), Some("deepseek-flash 1 token"));
    }

    #[test]
    fn chat_reasoning_content_counts_as_a_token() {
        let reasoning = r#"{"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Hmm"},"finish_reason":null}]}"#;
        let body = sse(&[
            Some(reasoning),
            Some(&finish_chunk("length", Some(8))),
            Some("[DONE]"),
        ]);
        let v = verdict(&body, StreamEnd::Eof);
        assert_eq!(v.status, Status::Up);
        assert_eq!(
            v.detail.as_deref(),
            Some("deepseek-flash 8 tokens 80 tok/s")
        );
    }

    #[test]
    fn chat_non_tokens() {
        let mut s = ChatStream::new("m");
        let ev = |d: &str| SseEvent {
            event: None,
            data: d.to_string(),
        };
        for d in [
            ROLE_ONLY,
            r#"{"choices":[{"delta":{"content":null,"reasoning_content":null}}]}"#,
            r#"{"choices":[{"delta":{}}]}"#,
            r#"{"choices":[]}"#,
            r#"{"choices":null,"usage":null}"#,
            "",
        ] {
            s.on_event(&ev(d), secs(1));
        }
        assert!(!s.got_token() && !s.is_finished());
        assert_eq!(s.finish(StreamEnd::Eof, secs(1), secs(10), 0).detail, None);
    }

    #[test]
    fn chat_keep_alives_then_stall_is_busy() {
        let body = sse(&[None; 5]);
        let v = verdict(&body, StreamEnd::Stalled(secs(20)));
        assert_eq!(
            (v.status, err(&v), v.detail.as_deref()),
            (
                Status::Busy,
                "stalled 20s without a token (10 keep-alives)",
                None
            )
        );
        let v = verdict(&body, StreamEnd::Stalled(ms(1500)));
        assert_eq!(err(&v), "stalled 1.5s without a token (10 keep-alives)");
    }

    #[test]
    fn chat_stall_after_a_token_is_busy() {
        let body = sse(&[Some(&chunk("Hi")), None]);
        let v = verdict(&body, StreamEnd::Stalled(secs(20)));
        assert_eq!(
            (v.status, err(&v), v.detail.as_deref()),
            (
                Status::Busy,
                "stalled 20s after 1 token (2 keep-alives)",
                Some("deepseek-flash 1 token")
            )
        );
    }

    #[test]
    fn chat_keep_alives_then_end_is_busy() {
        let v = verdict(&sse(&[None, None]), StreamEnd::Eof);
        assert_eq!(
            (v.status, err(&v)),
            (
                Status::Busy,
                "200 with only keep-alives, no token (4 keep-alives)"
            )
        );
        let v = verdict(
            &sse(&[None, Some(ROLE_ONLY), Some("[DONE]")]),
            StreamEnd::Eof,
        );
        assert_eq!(
            (v.status, err(&v)),
            (
                Status::Busy,
                "200 with only keep-alives, no token (2 keep-alives)"
            )
        );
        let v = verdict("", StreamEnd::Eof);
        assert_eq!(
            (v.status, err(&v)),
            (Status::Busy, "200 with an empty stream, no token")
        );
        let v = verdict("\n\n\n", StreamEnd::Eof);
        assert_eq!(
            (v.status, err(&v)),
            (
                Status::Busy,
                "200 with only keep-alives, no token (3 keep-alives)"
            )
        );
    }

    #[test]
    fn chat_cut_streams_are_down() {
        let partial = sse(&[Some(&chunk("Hel")), Some(&chunk("lo"))]);
        let v = verdict(&partial, StreamEnd::Eof);
        assert_eq!(
            (v.status, err(&v), v.detail.as_deref()),
            (
                Status::Down,
                "stream cut after 2 tokens",
                Some("deepseek-flash 2 tokens 40 tok/s")
            )
        );
        let v = verdict(&partial, StreamEnd::Cut("connection reset by peer".into()));
        assert_eq!(
            (v.status, err(&v)),
            (
                Status::Down,
                "stream cut after 2 tokens: connection reset by peer"
            )
        );
        let v = verdict(
            &sse(&[None]),
            StreamEnd::Cut("error decoding response body".into()),
        );
        assert_eq!(
            (v.status, err(&v)),
            (Status::Down, "stream cut: error decoding response body")
        );
        // An event missing its blank line at the cut is discarded.
        let v = verdict(&format!("data: {}\n", chunk("x")), StreamEnd::Eof);
        assert_eq!(v.status, Status::Busy);
    }

    #[test]
    fn chat_timeout_and_too_large() {
        let v = verdict(&sse(&[None]), StreamEnd::TimedOut);
        assert_eq!(
            (v.status, err(&v)),
            (
                Status::Timeout,
                "no complete answer within the timeout (3s)"
            )
        );
        let v = verdict(&sse(&[Some(&chunk("a"))]), StreamEnd::TimedOut);
        assert_eq!(v.status, Status::Timeout);
        let v = verdict(&sse(&[None]), StreamEnd::TooLarge);
        assert_eq!(
            (v.status, err(&v)),
            (Status::Down, "stream larger than the read limit")
        );
    }

    #[test]
    fn chat_insufficient_system_resource_is_busy() {
        for items in [
            vec![Some(finish_chunk("insufficient_system_resource", Some(0)))],
            vec![
                Some(chunk("a")),
                Some(finish_chunk("insufficient_system_resource", Some(1))),
                Some("[DONE]".to_string()),
            ],
        ] {
            let items: Vec<Option<&str>> = items.iter().map(|i| i.as_deref()).collect();
            let v = verdict(&sse(&items), StreamEnd::Eof);
            assert_eq!(
                (v.status, err(&v)),
                (
                    Status::Busy,
                    "server out of resources (finish_reason insufficient_system_resource)"
                )
            );
        }
    }

    #[test]
    fn chat_finished_without_a_token_is_down() {
        let body = sse(&[
            Some(ROLE_ONLY),
            Some(&finish_chunk("stop", Some(0))),
            Some("[DONE]"),
        ]);
        let v = verdict(&body, StreamEnd::Eof);
        assert_eq!(
            (v.status, err(&v), v.detail.as_deref()),
            (
                Status::Down,
                "finished without a token (finish_reason stop)",
                Some("deepseek-flash 0 tokens")
            )
        );
    }

    #[test]
    fn chat_mid_stream_errors() {
        let overloaded = r#"{"error":{"message":"Server overloaded, please try again later.","type":"server_overloaded"}}"#;
        let body = sse(&[
            Some(&chunk("a")),
            Some(overloaded),
            Some(&finish_chunk("stop", Some(1))),
        ]);
        let v = verdict(&body, StreamEnd::Eof);
        assert_eq!(
            (v.status, err(&v)),
            (Status::Busy, "Server overloaded, please try again later.")
        );
        let internal = r#"{"error":{"message":"Internal Server Error","type":"internal_error"}}"#;
        let v = verdict(&sse(&[Some(internal)]), StreamEnd::Eof);
        assert_eq!((v.status, err(&v)), (Status::Down, "Internal Server Error"));
        // OpenRouter: numeric code and finish_reason "error".
        let openrouter = r#"{"id":"x","error":{"code":429,"message":"Provider returned error"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}"#;
        let v = verdict(&sse(&[Some(openrouter)]), StreamEnd::Eof);
        assert_eq!(
            (v.status, err(&v)),
            (Status::RateLimited, "Provider returned error")
        );
        // `event: error` with plain text.
        let v = verdict(
            "event: error\ndata: upstream server busy\n\n",
            StreamEnd::Eof,
        );
        assert_eq!((v.status, err(&v)), (Status::Busy, "upstream server busy"));
        let v = verdict(
            "event: error\ndata: {\"error\":\"boom\"}\n\n",
            StreamEnd::Eof,
        );
        assert_eq!((v.status, err(&v)), (Status::Down, "boom"));
        // Unknown named events are ignored.
        let v = verdict("event: ping\ndata: nonsense\n\n", StreamEnd::Eof);
        assert_eq!(v.status, Status::Busy);
    }

    #[test]
    fn chat_malformed_events_are_down() {
        let body = sse(&[
            Some(&chunk("a")),
            Some("{not json"),
            Some(&finish_chunk("stop", Some(1))),
            Some("[DONE]"),
        ]);
        let v = verdict(&body, StreamEnd::Eof);
        assert_eq!(
            (v.status, err(&v)),
            (Status::Down, "malformed stream event: {not json")
        );
        let v = verdict(&sse(&[Some("[1,2]")]), StreamEnd::Eof);
        assert_eq!(
            (v.status, err(&v)),
            (Status::Down, "malformed stream event: [1,2]")
        );
        let long = format!("<html>{}</html>", "x".repeat(500));
        let v = verdict(&sse(&[Some(&long)]), StreamEnd::Eof);
        assert_eq!(
            err(&v).chars().count(),
            "malformed stream event: ".len() + SNIPPET_CHARS
        );
    }

    #[test]
    fn chat_token_count_falls_back_to_deltas() {
        let body = sse(&[
            Some(&chunk("a")),
            Some(&chunk("b")),
            Some(&chunk("c")),
            Some(&finish_chunk("length", None)),
        ]);
        let v = verdict(&body, StreamEnd::Eof);
        assert_eq!(
            v.detail.as_deref(),
            Some("deepseek-flash 3 tokens 20 tok/s")
        );
    }

    #[test]
    fn chat_usage_only_chunk_after_finish() {
        let usage = r#"{"id":"1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}"#;
        let body = sse(&[
            Some(&chunk("a")),
            Some(&finish_chunk("stop", None)),
            Some(usage),
            Some("[DONE]"),
        ]);
        let v = verdict(&body, StreamEnd::Eof);
        assert_eq!(
            v.detail.as_deref(),
            Some("deepseek-flash 5 tokens 33 tok/s")
        );
    }

    #[test]
    fn fmt_secs_is_readable() {
        assert_eq!(fmt_secs(secs(20)), "20s");
        assert_eq!(fmt_secs(ms(30_002)), "30s");
        assert_eq!(fmt_secs(ms(1500)), "1.5s");
        assert_eq!(fmt_secs(secs(2)), "2s");
        assert_eq!(fmt_secs(ms(300)), "0.3s");
    }
}
