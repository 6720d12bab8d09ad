//! Running one probe: the network I/O at the edge. Each kind has its file;
//! deciding what an answer means is left to the pure [`classify`] module.
//!
//! Every probe has a hard deadline (`timeout`) and reads a bounded number of
//! body bytes. A failure that could be our own network's (no HTTP answer at
//! all) is cross-checked against the [`canary`]s before it is recorded.

pub mod balance;
pub mod canary;
pub mod chat;
pub mod classify;
pub mod http;
pub mod models;
pub mod sse;

use std::time::Duration;

use chrono::Utc;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use tokio::time::Instant;

use crate::config::{ProbeConfig, ProbeKind, Secret};
use crate::result::{ProbeResult, Status};
use classify::{Answer, TransportFailure, Verdict};

pub use canary::Canaries;

/// The User-Agent every request carries, so server operators can tell what we are.
pub const USER_AGENT: &str = concat!("deepseek-watch/", env!("CARGO_PKG_VERSION"));

/// What a probe measured, before it becomes a [`ProbeResult`].
pub struct Outcome {
    pub verdict: Verdict,
    pub latency: Option<Duration>,
    pub ttft: Option<Duration>,
    pub http_status: Option<u16>,
}

impl Outcome {
    fn failed(f: &TransportFailure) -> Outcome {
        Outcome {
            verdict: classify::transport(f),
            latency: None,
            ttft: None,
            http_status: None,
        }
    }
}

/// Runs probes. One HTTP client (one connection pool, one TLS config) serves
/// every probe: a probe costs a request, not a client.
pub struct Prober {
    client: reqwest::Client,
    canaries: Canaries,
}

impl Prober {
    pub fn new(canaries: Vec<String>) -> Result<Prober, reqwest::Error> {
        let client = build_client()?;
        Ok(Prober {
            canaries: Canaries::new(client.clone(), canaries),
            client,
        })
    }

    /// Runs `probe` once. Never fails: every way it can go wrong is a status.
    pub async fn run(&self, probe: &ProbeConfig) -> ProbeResult {
        let at = Utc::now();
        let start = Instant::now();
        let deadline = start + probe.timeout;
        let outcome = match &probe.kind {
            ProbeKind::Http {
                url,
                busy_markers,
                expect_status,
            } => {
                http::run(
                    &self.client,
                    probe,
                    url,
                    busy_markers,
                    *expect_status,
                    start,
                    deadline,
                )
                .await
            }
            ProbeKind::Chat {
                base_url,
                model,
                api_key,
            } => {
                chat::run(
                    &self.client,
                    probe,
                    base_url,
                    model,
                    api_key.as_ref(),
                    start,
                    deadline,
                )
                .await
            }
            ProbeKind::Models {
                base_url,
                model,
                api_key,
            } => {
                models::run(
                    &self.client,
                    probe,
                    base_url,
                    model.as_deref(),
                    api_key.as_ref(),
                    start,
                    deadline,
                )
                .await
            }
            ProbeKind::Balance {
                base_url,
                min_balance,
                api_key,
            } => {
                balance::run(
                    &self.client,
                    probe,
                    base_url,
                    *min_balance,
                    api_key.as_ref(),
                    start,
                    deadline,
                )
                .await
            }
        };
        let mut verdict = outcome.verdict;
        // No HTTP answer at all: maybe it is us, not DeepSeek.
        if verdict.status.counts_toward_outage()
            && outcome.http_status.is_none()
            && !self.canaries.network_up().await
        {
            verdict.status = Status::Offline;
            verdict.error = Some(crate::result::truncate_chars(
                &format!(
                    "{}; every connectivity canary failed too, so this host looks offline",
                    verdict.error.as_deref().unwrap_or("no answer")
                ),
                crate::result::ERROR_MAX_CHARS,
            ));
        }
        ProbeResult {
            probe: probe.name.clone(),
            at,
            status: verdict.status,
            latency_ms: outcome.latency.map(millis),
            ttft_ms: outcome.ttft.map(millis),
            http_status: outcome.http_status,
            error: verdict.error,
            detail: verdict.detail,
        }
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The shared client: rustls (ring), bounded redirects, gzip, keep-alive pool.
/// Per-request deadlines are set by each probe, not here.
pub fn build_client() -> Result<reqwest::Client, reqwest::Error> {
    // Idempotent: installs the ring provider the first time, then no-ops.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(4)
        .build()
}

/// `Authorization: Bearer …`, marked sensitive so no debug output shows it.
fn bearer(key: Option<&Secret>) -> Option<HeaderValue> {
    let key = key?;
    let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose())).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Adds the API key to a request, when there is one.
fn with_auth(req: reqwest::RequestBuilder, key: Option<&Secret>) -> reqwest::RequestBuilder {
    match bearer(key) {
        Some(v) => req.header(AUTHORIZATION, v),
        None => req,
    }
}

/// A response read up to `cap` bytes before `deadline`.
pub struct Fetched {
    pub status: u16,
    pub cf_mitigated: Option<String>,
    pub body: Vec<u8>,
    pub latency: Duration,
    pub elapsed: Duration,
}

impl Fetched {
    pub fn answer(&self) -> Answer<'_> {
        Answer {
            status: self.status,
            cf_mitigated: self.cf_mitigated.as_deref(),
            body: &self.body,
        }
    }
}

/// A response whose headers have arrived; the body is still to be read.
pub struct Head {
    pub resp: reqwest::Response,
    pub status: u16,
    pub cf_mitigated: Option<String>,
    /// To the response headers.
    pub latency: Duration,
}

/// Sends `req` and waits for the response headers, before `deadline`.
pub async fn send(
    req: reqwest::RequestBuilder,
    start: Instant,
    deadline: Instant,
) -> Result<Head, TransportFailure> {
    let resp = match tokio::time::timeout_at(deadline, req.send()).await {
        Err(_) => return Err(TransportFailure::Timeout),
        Ok(Err(e)) => return Err(transport_failure(&e)),
        Ok(Ok(r)) => r,
    };
    let cf_mitigated = resp
        .headers()
        .get("cf-mitigated")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(Head {
        status: resp.status().as_u16(),
        cf_mitigated,
        latency: start.elapsed(),
        resp,
    })
}

/// Sends `req` and reads at most `cap` body bytes, all before `deadline`.
/// Reading stops quietly at the cap: a prefix is all the classifier needs.
pub async fn fetch(
    req: reqwest::RequestBuilder,
    start: Instant,
    deadline: Instant,
    cap: usize,
) -> Result<Fetched, TransportFailure> {
    let Head {
        mut resp,
        status,
        cf_mitigated,
        latency,
    } = send(req, start, deadline).await?;
    let mut body = Vec::new();
    while body.len() < cap {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return Err(TransportFailure::Timeout),
            Ok(Err(e)) => return Err(transport_failure(&e)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => {
                let room = cap - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
        }
    }
    Ok(Fetched {
        status,
        cf_mitigated,
        body,
        latency,
        elapsed: start.elapsed(),
    })
}

/// The `models` and `balance` probes: GET an API endpoint with the key;
/// a 2xx answer is judged by `judge` (given the answer and the time it took),
/// anything else is the API's error.
pub async fn api_get(
    req: reqwest::RequestBuilder,
    api_key: Option<&Secret>,
    start: Instant,
    deadline: Instant,
    cap: usize,
    judge: impl FnOnce(&Answer<'_>, Duration) -> Verdict,
) -> Outcome {
    match fetch(with_auth(req, api_key), start, deadline, cap).await {
        Err(f) => Outcome::failed(&f),
        Ok(got) => {
            let answer = got.answer();
            let verdict = if (200..300).contains(&got.status) {
                judge(&answer, got.elapsed)
            } else {
                classify::api_error(&answer)
            };
            Outcome {
                verdict,
                latency: Some(got.latency),
                ttft: None,
                http_status: Some(got.status),
            }
        }
    }
}

/// Sorts a reqwest error into the failure kinds the classifier knows, by
/// walking its source chain (the useful part is usually a few levels down).
pub fn transport_failure(e: &reqwest::Error) -> TransportFailure {
    if e.is_timeout() {
        return TransportFailure::Timeout;
    }
    let mut chain = Vec::new();
    let mut io_kind = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        chain.push(err.to_string());
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        cur = err.source();
    }
    let text = chain.last().cloned().unwrap_or_else(|| e.to_string());
    let all = chain.join(": ").to_lowercase();
    use std::io::ErrorKind as K;
    if all.contains("dns error")
        || all.contains("failed to lookup")
        || all.contains("name or service not known")
    {
        TransportFailure::Dns(text)
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        TransportFailure::Tls(text)
    } else if matches!(
        io_kind,
        Some(K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof)
    ) || all.contains("connection reset")
        || all.contains("connection closed")
        || all.contains("incomplete message")
    {
        TransportFailure::Reset(text)
    } else if e.is_connect() || matches!(io_kind, Some(K::ConnectionRefused)) {
        TransportFailure::Connect(text)
    } else {
        TransportFailure::Other(text)
    }
}
