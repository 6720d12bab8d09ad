//! The `chat` probe: a short streaming chat completion, the way people use
//! the API. It measures time to headers (`latency_ms`) and to the first real
//! token (`ttft_ms`); an overloaded DeepSeek answers 200 and then sends only
//! keep-alives, so a 200 is not `up` until a token arrives.

use serde_json::json;
use tokio::time::Instant;

use super::classify::{self, Answer, ChatStream, StreamEnd};
use super::sse::{SseEvent, SseParser};
use super::{Head, Outcome, send, transport_failure, with_auth};
use crate::config::{ProbeConfig, Secret};

/// A reply of at most 8 tokens plus keep-alives is a few KiB; a stream past
/// this is not what we asked for.
pub const STREAM_CAP: usize = 1024 * 1024;
/// Error bodies are short; read no more than this of one.
pub const ERROR_BODY_CAP: usize = 64 * 1024;

/// The request body: the fields design.md lists, nothing else.
pub fn request_body(model: &str) -> serde_json::Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Reply with the single word: ok"}],
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": 8,
        "temperature": 0,
        "thinking": {"type": "disabled"},
    })
}

pub async fn run(
    client: &reqwest::Client,
    probe: &ProbeConfig,
    base_url: &str,
    model: &str,
    api_key: Option<&Secret>,
    start: Instant,
    deadline: Instant,
) -> Outcome {
    let req = with_auth(client.post(format!("{base_url}/chat/completions")), api_key)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&request_body(model));
    let Head {
        mut resp,
        status,
        cf_mitigated,
        latency,
    } = match send(req, start, deadline).await {
        Ok(head) => head,
        Err(f) => return Outcome::failed(&f),
    };

    if status != 200 {
        let body = read_prefix(&mut resp, deadline, ERROR_BODY_CAP).await;
        let answer = Answer {
            status,
            cf_mitigated: cf_mitigated.as_deref(),
            body: &body,
        };
        return Outcome {
            verdict: classify::api_error(&answer),
            latency: Some(latency),
            ttft: None,
            http_status: Some(status),
        };
    }

    // The stall clock runs from the request, but only bites once headers are
    // in: before that, a hung connection is a timeout, not a busy server.
    let stall_at = start + probe.stall_timeout;
    let mut parser = SseParser::new();
    let mut stream = ChatStream::new(model);
    let mut events: Vec<SseEvent> = Vec::new();
    let mut raw_prefix: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let end = loop {
        let wait_until = if stream.got_token() {
            deadline
        } else {
            deadline.min(stall_at)
        };
        let chunk = tokio::time::timeout_at(wait_until, resp.chunk()).await;
        let elapsed = start.elapsed();
        match chunk {
            Err(_) if !stream.got_token() && stall_at < deadline => {
                break StreamEnd::Stalled(probe.stall_timeout);
            }
            Err(_) => break StreamEnd::TimedOut,
            Ok(Err(e)) => break StreamEnd::Cut(transport_text(&e)),
            Ok(Ok(None)) => {
                parser.finish(&mut events);
                for ev in events.drain(..) {
                    stream.on_event(&ev, elapsed);
                }
                break StreamEnd::Eof;
            }
            Ok(Ok(Some(bytes))) => {
                total += bytes.len();
                if raw_prefix.len() < ERROR_BODY_CAP {
                    let room = ERROR_BODY_CAP - raw_prefix.len();
                    raw_prefix.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
                if total > STREAM_CAP {
                    break StreamEnd::TooLarge;
                }
                parser.feed(&bytes, &mut events);
                for ev in events.drain(..) {
                    stream.on_event(&ev, elapsed);
                }
                if stream.saw_done() {
                    break StreamEnd::Eof;
                }
            }
        }
    };
    let elapsed = start.elapsed();
    // A 200 that is not an event stream but a JSON error object.
    let verdict = if parser.events() == 0 && classify::api_error_message(&raw_prefix).is_some() {
        classify::api_error(&Answer {
            status,
            cf_mitigated: cf_mitigated.as_deref(),
            body: &raw_prefix,
        })
    } else {
        stream.finish(
            end,
            elapsed,
            probe.slow_threshold,
            parser.comments() + parser.blank_lines(),
        )
    };
    Outcome {
        verdict,
        latency: Some(latency),
        ttft: stream.first_token_at(),
        http_status: Some(status),
    }
}

/// Reads up to `cap` bytes of an error body; whatever arrived by the deadline
/// is enough to classify.
async fn read_prefix(resp: &mut reqwest::Response, deadline: Instant, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < cap {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = cap - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

fn transport_text(e: &reqwest::Error) -> String {
    match transport_failure(e) {
        classify::TransportFailure::Timeout => "timed out".to_string(),
        classify::TransportFailure::Dns(t)
        | classify::TransportFailure::Connect(t)
        | classify::TransportFailure::Tls(t)
        | classify::TransportFailure::Reset(t)
        | classify::TransportFailure::Other(t) => t,
    }
}
