//! Webhooks: puts one [`Notification`] on the wire as an HTTP POST.
//!
//! Owns the four body formats (design.md's `json`, and Slack's, Discord's
//! and ntfy's own shapes within each service's limits), the
//! `X-DeepSeek-Watch-*` headers and the HMAC-SHA256 body signature, and the
//! sorting of answers into delivered, transient and permanent failures.
//!
//! Webhook URLs often carry their credential in the path (Slack, Discord) or
//! query (ntfy `?auth=`), so errors name only the URL's host.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Notification, OutageInfo, SendError};
use crate::config::{Secret, WebhookFormat};
use crate::event::EventKind;
use crate::probe::classify::TransportFailure;
use crate::result::{format_time, truncate_chars};

/// The whole request, answer included, must finish in this.
const SEND_DEADLINE: Duration = Duration::from_secs(10);
/// How much of an answer is read; the rest is never downloaded.
const RESPONSE_MAX_BYTES: usize = 64 * 1024;
/// How much of an answer goes into an error message.
const RESPONSE_SNIPPET_CHARS: usize = 200;

/// Slack: a section's text holds at most 3000 characters.
const SLACK_TEXT_MAX: usize = 3000;
/// Discord: message content, embed title, description and footer limits; all
/// embed text together stays under 6000.
const DISCORD_CONTENT_MAX: usize = 2000;
const DISCORD_TITLE_MAX: usize = 256;
const DISCORD_DESCRIPTION_MAX: usize = 4096;
const DISCORD_FOOTER_MAX: usize = 1000;
/// ntfy: a longer body is turned into an attachment instead of a message.
const NTFY_MESSAGE_MAX_BYTES: usize = 4096;
/// ntfy shows about this much of a title; the rest is noise.
const NTFY_TITLE_MAX: usize = 250;

/// The event name, so a receiver can route without parsing the body.
pub const EVENT_HEADER: &str = "X-DeepSeek-Watch-Event";
/// The `delivery_id`, stable across retries: receivers drop duplicates by it.
pub const DELIVERY_HEADER: &str = "X-DeepSeek-Watch-Delivery";
/// `sha256=<hex HMAC>` of the exact body, sent when the channel has a secret.
pub const SIGNATURE_HEADER: &str = "X-DeepSeek-Watch-Signature";

/// What goes on the wire for one format: content type, body bytes, extra
/// headers. Pure data, so every format can be tested without a network.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// The `json` format, in design.md's field order.
#[derive(Serialize)]
struct JsonBody<'a> {
    event: EventKind,
    probe: Option<&'a str>,
    kind: Option<&'a str>,
    target: Option<&'a str>,
    outage: Option<&'a OutageInfo>,
    message: &'a str,
    delivery_id: &'a str,
    sent_at: String,
}

/// Renders `n` for `format`, stamped with `sent_at`. Pure: the signature is
/// added by [`send`], which holds the secret.
pub fn payload(format: WebhookFormat, n: &Notification, sent_at: DateTime<Utc>) -> Payload {
    let mut headers = vec![
        (EVENT_HEADER, n.event.as_str().to_string()),
        (DELIVERY_HEADER, header_safe(&n.delivery_id)),
    ];
    let (content_type, body) = match format {
        WebhookFormat::Json => {
            let body = JsonBody {
                event: n.event,
                probe: n.probe.as_deref(),
                kind: n.kind.as_deref(),
                target: n.target.as_deref(),
                outage: n.outage.as_ref(),
                message: &n.message,
                delivery_id: &n.delivery_id,
                sent_at: format_time(&sent_at),
            };
            ("application/json", to_json(&body))
        }
        WebhookFormat::Slack => ("application/json", to_json(&slack(n))),
        WebhookFormat::Discord => ("application/json", to_json(&discord(n))),
        WebhookFormat::Ntfy => {
            let (body, ntfy_headers) = ntfy(n);
            headers.extend(ntfy_headers);
            ("text/plain; charset=utf-8", body.into_bytes())
        }
    };
    Payload {
        content_type,
        body,
        headers,
    }
}

/// Serializes a body. The types here (strings, numbers, options, timestamps)
/// cannot fail to serialize; an empty body would be refused by the receiver
/// rather than crash the daemon.
fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// `sha256=<lowercase hex HMAC-SHA256 of body>`, what a receiver recomputes
/// with the shared secret to know the body came from us, unchanged.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&hmac_key(secret.expose().as_bytes()));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// RFC 2104's block-sized key: a longer key is hashed first, then zero-padded.
/// Building it here makes the HMAC constructor infallible.
fn hmac_key(key: &[u8]) -> hmac::digest::Key<Hmac<Sha256>> {
    let mut block = hmac::digest::Key::<Hmac<Sha256>>::default();
    if key.len() > block.len() {
        let hashed = Sha256::digest(key);
        block[..hashed.len()].copy_from_slice(&hashed);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    block
}

/// POSTs `n` to `url` with a 10 s deadline. 2xx is delivered; 408, 429, 5xx
/// and network failures are transient; any other answer is permanent (the
/// message has the status and the start of the answer). Reads at most 64 KiB
/// of the answer.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    format: WebhookFormat,
    secret: Option<&Secret>,
    n: &Notification,
) -> Result<(), SendError> {
    send_within(client, url, format, secret, n, SEND_DEADLINE).await
}

async fn send_within(
    client: &reqwest::Client,
    url: &str,
    format: WebhookFormat,
    secret: Option<&Secret>,
    n: &Notification,
    deadline: Duration,
) -> Result<(), SendError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| SendError::permanent(format!("webhook URL is not valid: {e}")))?;
    let host = host_of(&parsed);
    let p = payload(format, n, Utc::now());
    let mut req = client
        .post(parsed.clone())
        .header(reqwest::header::CONTENT_TYPE, p.content_type);
    for (name, value) in &p.headers {
        req = req.header(*name, value.as_str());
    }
    if let Some(secret) = secret {
        req = req.header(SIGNATURE_HEADER, signature(secret, &p.body));
    }
    let req = req.body(p.body);

    let end = tokio::time::Instant::now() + deadline;
    let mut resp = match tokio::time::timeout_at(end, req.send()).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => return Err(network_error(&host, &e)),
        Err(_) => {
            return Err(SendError::transient(format!(
                "webhook {host}: no answer within {}s",
                deadline.as_secs_f32()
            )));
        }
    };
    let status = resp.status();
    let redirected = resp.url() != &parsed;
    // The status decides; the answer is only read (within the same deadline)
    // to quote it in an error and to let the connection be reused. A 2xx
    // whose answer is slow or breaks off was still accepted.
    let mut answer = Vec::new();
    while answer.len() < RESPONSE_MAX_BYTES {
        match tokio::time::timeout_at(end, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = RESPONSE_MAX_BYTES - answer.len();
                answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(Ok(None) | Err(_)) | Err(_) => break,
        }
    }
    judge(&host, status, redirected, &answer)
}

/// What an HTTP answer means for the delivery.
fn judge(
    host: &str,
    status: reqwest::StatusCode,
    redirected: bool,
    answer: &[u8],
) -> Result<(), SendError> {
    let code = status.as_u16();
    if status.is_success() && redirected {
        // reqwest turns a POST into a GET on 301/302/303, so a 2xx after a
        // redirect may not mean the notification arrived.
        return Err(SendError::permanent(format!(
            "webhook {host}: the URL redirects, so the notification may not have arrived; \
             put the final URL in the config"
        )));
    }
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(answer);
    let snippet = truncate_chars(
        &text.split_whitespace().collect::<Vec<_>>().join(" "),
        RESPONSE_SNIPPET_CHARS,
    );
    let reason = status.canonical_reason().unwrap_or("");
    let mut message = format!("webhook {host}: HTTP {code} {reason}")
        .trim_end()
        .to_string();
    if !snippet.is_empty() {
        message.push_str(": ");
        message.push_str(&snippet);
    }
    let transient = code == 408 || code == 429 || status.is_server_error();
    if status.is_client_error() && !transient {
        Err(SendError::permanent(message))
    } else {
        // 5xx, 408, 429, and anything unexpected (1xx, 3xx): retry.
        Err(SendError::transient(message))
    }
}

/// `host[:port]`: never the path or query, where webhook URLs keep their token.
fn host_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("(no host)");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// A request that got no HTTP answer. reqwest's own message includes the
/// full URL, so only the inner cause is kept.
fn network_error(host: &str, e: &reqwest::Error) -> SendError {
    if e.is_builder() {
        // The innermost cause says what was wrong (a header value, say), never the URL.
        let mut cause = String::new();
        let mut cur = std::error::Error::source(e);
        while let Some(err) = cur {
            cause = err.to_string();
            cur = err.source();
        }
        return SendError::permanent(truncate_chars(
            &format!("webhook {host}: cannot build the request: {cause}"),
            300,
        ));
    }
    let what = match crate::probe::transport_failure(e) {
        TransportFailure::Timeout => "timed out".to_string(),
        TransportFailure::Dns(t) => format!("DNS lookup failed: {t}"),
        TransportFailure::Connect(t) => {
            if t.to_lowercase().contains("refused") {
                "connection refused".to_string()
            } else {
                format!("cannot connect: {t}")
            }
        }
        TransportFailure::Tls(t) => format!("TLS failed: {t}"),
        TransportFailure::Reset(t) => format!("connection closed: {t}"),
        TransportFailure::Other(t) => t,
    };
    // The innermost cause never holds the URL, but be sure.
    let what = match e.url() {
        Some(u) => what.replace(u.as_str(), "(url)"),
        None => what,
    };
    SendError::transient(truncate_chars(&format!("webhook {host}: {what}"), 300))
}

/// A header value on one line (channel names are free text).
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Short words for titles: what happened.
fn label(event: EventKind) -> &'static str {
    match event {
        EventKind::Outage => "outage",
        EventKind::Recovered => "recovered",
        EventKind::ActionNeeded => "needs attention",
        EventKind::Reminder => "still in outage",
        EventKind::Test => "test",
    }
}

/// "api-flash recovered", or "deepseek-watch test" for events without a probe.
fn title(n: &Notification) -> String {
    let who = n.probe.as_deref().unwrap_or("deepseek-watch");
    format!("{who} {}", label(n.event))
}

/// The emoji shortcode Slack and ntfy both know.
fn shortcode(event: EventKind) -> &'static str {
    match event {
        EventKind::Outage => "rotating_light",
        EventKind::Recovered => "white_check_mark",
        EventKind::ActionNeeded => "warning",
        EventKind::Reminder => "hourglass_flowing_sand",
        EventKind::Test => "bell",
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup (`<!channel>` pings everyone).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack incoming webhook: `text` is the notification fallback; blocks show
/// the message in bold, the details, and the delivery ID.
fn slack(n: &Notification) -> serde_json::Value {
    let message = slack_escape(n.message.trim());
    let mut blocks = vec![json!({
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": truncate_chars(&format!(":{}: *{message}*", shortcode(n.event)), SLACK_TEXT_MAX),
        },
    })];
    if !n.details.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": truncate_chars(&slack_escape(&n.details.join("\n")), SLACK_TEXT_MAX),
            },
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": truncate_chars(
                &format!("deepseek-watch · delivery {}", slack_escape(&n.delivery_id)),
                SLACK_TEXT_MAX,
            ),
        }],
    }));
    json!({
        "text": truncate_chars(&message, SLACK_TEXT_MAX),
        "blocks": blocks,
    })
}

/// Discord webhook: the message as content (no mentions parsed, so a probe
/// name cannot ping a server), the details in one coloured embed.
fn discord(n: &Notification) -> serde_json::Value {
    let (emoji, color) = match n.event {
        EventKind::Outage => ("\u{1F6A8}", 0xE7_4C_3C),
        EventKind::Recovered => ("\u{2705}", 0x2E_CC_71),
        EventKind::ActionNeeded => ("\u{26A0}\u{FE0F}", 0xF3_9C_12),
        EventKind::Reminder => ("\u{23F3}", 0xE6_7E_22),
        EventKind::Test => ("\u{1F514}", 0x34_98_DB),
    };
    let mut embed = json!({
        "title": truncate_chars(&title(n), DISCORD_TITLE_MAX),
        "color": color,
        "footer": {
            "text": truncate_chars(&format!("deepseek-watch · delivery {}", n.delivery_id), DISCORD_FOOTER_MAX),
        },
        "timestamp": format_time(&n.created_at),
    });
    if !n.details.is_empty() {
        embed["description"] = json!(truncate_chars(
            &n.details.join("\n"),
            DISCORD_DESCRIPTION_MAX
        ));
    }
    json!({
        "content": truncate_chars(&format!("{emoji} {}", n.message.trim()), DISCORD_CONTENT_MAX),
        "embeds": [embed],
        "allowed_mentions": { "parse": [] },
    })
}

/// ntfy: the body is the message (then the details), and `Title`, `Tags`,
/// `Priority` headers; the URL is the topic URL.
fn ntfy(n: &Notification) -> (String, Vec<(&'static str, String)>) {
    let mut text = n.message.trim().to_string();
    if !n.details.is_empty() {
        text.push_str("\n\n");
        text.push_str(&n.details.join("\n"));
    }
    let priority = match n.event {
        EventKind::Outage => "high",
        _ => "default",
    };
    let title = truncate_chars(
        &header_safe(&format!("deepseek-watch: {}", title(n))),
        NTFY_TITLE_MAX,
    );
    let headers = vec![
        ("Title", rfc2047(&title)),
        ("Tags", shortcode(n.event).to_string()),
        ("Priority", priority.to_string()),
    ];
    (truncate_bytes(&text, NTFY_MESSAGE_MAX_BYTES), headers)
}

/// An HTTP header carries ASCII reliably; ntfy decodes RFC 2047 encoded
/// words, so a non-ASCII title goes as `=?UTF-8?B?…?=`.
fn rfc2047(s: &str) -> String {
    if s.is_ascii() {
        s.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", base64(s.as_bytes()))
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    const MARK: &str = "…";
    let mut end = max.saturating_sub(MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::Value;
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    fn notification() -> Notification {
        let started = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
        let ended = Utc.with_ymd_and_hms(2026, 1, 5, 9, 12, 34).unwrap();
        Notification {
            delivery_id: "19b8e1a2c00-12-team".to_string(),
            event: EventKind::Recovered,
            probe: Some("api-flash".to_string()),
            kind: Some("chat".to_string()),
            target: Some("https://api.deepseek.com".to_string()),
            outage: Some(OutageInfo {
                id: 12,
                started_at: started,
                ended_at: Some(ended),
                duration_secs: Some(754),
                cause: "busy".to_string(),
            }),
            message: "api-flash recovered after 12m 34s (was busy)".to_string(),
            details: vec![
                "Probe: api-flash (chat)".to_string(),
                "Cause: busy".to_string(),
                "Latest result: busy, HTTP 503, 服务器繁忙 <!channel> & co".to_string(),
            ],
            created_at: ended,
        }
    }

    fn sent_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 9, 13, 0).unwrap()
    }

    fn header<'a>(p: &'a Payload, name: &str) -> Option<&'a str> {
        p.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// One request as the receiver saw it.
    #[derive(Debug)]
    struct Received {
        method: String,
        path: String,
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    /// A tiny HTTP/1.1 receiver on 127.0.0.1: records each request and
    /// answers `status` with `answer`, then closes the connection.
    async fn receiver(
        status: u16,
        answer: impl Into<String>,
    ) -> (String, mpsc::UnboundedReceiver<Received>) {
        let answer: String = answer.into();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let tx = tx.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    let head_end = loop {
                        let n = sock.read(&mut tmp).await.unwrap();
                        assert!(n > 0, "connection closed before the headers ended");
                        buf.extend_from_slice(&tmp[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let request_line = lines.next().unwrap().to_string();
                    let mut parts = request_line.split(' ');
                    let method = parts.next().unwrap().to_string();
                    let path = parts.next().unwrap().to_string();
                    let headers: HashMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                        .collect();
                    let len: usize = headers
                        .get("content-length")
                        .map_or(0, |v| v.parse().unwrap());
                    let mut body = buf[head_end + 4..].to_vec();
                    while body.len() < len {
                        let n = sock.read(&mut tmp).await.unwrap();
                        assert!(n > 0, "connection closed before the body ended");
                        body.extend_from_slice(&tmp[..n]);
                    }
                    tx.send(Received {
                        method,
                        path,
                        headers,
                        body,
                    })
                    .unwrap();
                    let reply = format!(
                        "HTTP/1.1 {status} Whatever\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    sock.write_all(reply.as_bytes()).await.unwrap();
                    let _ = sock.shutdown().await;
                });
            }
        });
        (format!("http://{addr}/hooks/secret-token?auth=abc"), rx)
    }

    fn client() -> reqwest::Client {
        crate::probe::build_client().unwrap()
    }

    #[test]
    fn json_body_is_the_documented_shape() {
        let n = notification();
        let p = payload(WebhookFormat::Json, &n, sent_at());
        assert_eq!(p.content_type, "application/json");
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        let expected = json!({
            "event": "recovered",
            "probe": "api-flash",
            "kind": "chat",
            "target": "https://api.deepseek.com",
            "outage": {
                "id": 12,
                "started_at": "2026-01-05T09:00:00Z",
                "ended_at": "2026-01-05T09:12:34Z",
                "duration_secs": 754,
                "cause": "busy",
            },
            "message": "api-flash recovered after 12m 34s (was busy)",
            "delivery_id": "19b8e1a2c00-12-team",
            "sent_at": "2026-01-05T09:13:00Z",
        });
        assert_eq!(v, expected);
        // Field order as design.md writes it.
        let text = String::from_utf8(p.body.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"event":"recovered","probe":"api-flash","kind":"chat""#),
            "{text}"
        );
        assert_eq!(header(&p, EVENT_HEADER), Some("recovered"));
        assert_eq!(header(&p, DELIVERY_HEADER), Some("19b8e1a2c00-12-team"));

        let mut test = n;
        test.event = EventKind::Test;
        test.probe = None;
        test.kind = None;
        test.target = None;
        test.outage = None;
        let v: Value =
            serde_json::from_slice(&payload(WebhookFormat::Json, &test, sent_at()).body).unwrap();
        assert_eq!(v["outage"], Value::Null);
        assert_eq!(v["probe"], Value::Null);
        assert_eq!(v["event"], "test");
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        let s = Secret::new("Jefe", "test");
        assert_eq!(
            signature(&s, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first: compare with the crate's own path.
        let key = "k".repeat(131);
        let s = Secret::new(key.clone(), "test");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(b"body");
        assert_eq!(
            signature(&s, b"body"),
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert!(!format!("{s:?}").contains("kkk"));
    }

    #[test]
    fn slack_shape() {
        let p = payload(WebhookFormat::Slack, &notification(), sent_at());
        assert_eq!(p.content_type, "application/json");
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(v["text"], "api-flash recovered after 12m 34s (was busy)");
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
        assert_eq!(
            blocks[0]["text"]["text"],
            ":white_check_mark: *api-flash recovered after 12m 34s (was busy)*"
        );
        let details = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(
            details.contains("服务器繁忙 &lt;!channel&gt; &amp; co"),
            "{details}"
        );
        assert_eq!(blocks[2]["type"], "context");
        assert!(
            blocks[2]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .contains("19b8e1a2c00-12-team")
        );

        let mut long = notification();
        long.details = vec!["x".repeat(10_000)];
        let v: Value =
            serde_json::from_slice(&payload(WebhookFormat::Slack, &long, sent_at()).body).unwrap();
        assert!(
            v["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= SLACK_TEXT_MAX
        );
    }

    #[test]
    fn discord_shape() {
        let p = payload(WebhookFormat::Discord, &notification(), sent_at());
        assert_eq!(p.content_type, "application/json");
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(
            v["content"],
            "\u{2705} api-flash recovered after 12m 34s (was busy)"
        );
        assert_eq!(v["allowed_mentions"]["parse"], json!([]));
        let embed = &v["embeds"][0];
        assert_eq!(embed["title"], "api-flash recovered");
        assert!(
            embed["description"]
                .as_str()
                .unwrap()
                .contains("Cause: busy")
        );
        assert_eq!(embed["timestamp"], "2026-01-05T09:12:34Z");
        assert!(
            embed["footer"]["text"]
                .as_str()
                .unwrap()
                .contains("19b8e1a2c00-12-team")
        );
        assert!(embed["color"].is_u64());

        let mut long = notification();
        long.message = "m".repeat(5000);
        long.details = vec!["d".repeat(9000)];
        let v: Value =
            serde_json::from_slice(&payload(WebhookFormat::Discord, &long, sent_at()).body)
                .unwrap();
        assert!(v["content"].as_str().unwrap().chars().count() <= DISCORD_CONTENT_MAX);
        let embed = &v["embeds"][0];
        let total: usize = ["title", "description"]
            .iter()
            .map(|k| embed[*k].as_str().unwrap().chars().count())
            .sum::<usize>()
            + embed["footer"]["text"].as_str().unwrap().chars().count();
        assert!(embed["description"].as_str().unwrap().chars().count() <= DISCORD_DESCRIPTION_MAX);
        assert!(total <= 6000, "{total}");
    }

    #[test]
    fn ntfy_shape() {
        let mut n = notification();
        n.event = EventKind::Outage;
        n.message = "api-flash is unavailable: busy since 09:00 UTC (503)".to_string();
        let p = payload(WebhookFormat::Ntfy, &n, sent_at());
        assert_eq!(p.content_type, "text/plain; charset=utf-8");
        let body = String::from_utf8(p.body.clone()).unwrap();
        assert!(body.starts_with(
            "api-flash is unavailable: busy since 09:00 UTC (503)\n\nProbe: api-flash (chat)\n"
        ));
        assert!(body.contains("服务器繁忙"));
        assert_eq!(
            header(&p, "Title"),
            Some("deepseek-watch: api-flash outage")
        );
        assert_eq!(header(&p, "Tags"), Some("rotating_light"));
        assert_eq!(header(&p, "Priority"), Some("high"));
        assert_eq!(header(&p, EVENT_HEADER), Some("outage"));

        let p = payload(WebhookFormat::Ntfy, &notification(), sent_at());
        assert_eq!(header(&p, "Tags"), Some("white_check_mark"));
        assert_eq!(header(&p, "Priority"), Some("default"));
        let mut a = notification();
        a.event = EventKind::ActionNeeded;
        assert_eq!(
            header(&payload(WebhookFormat::Ntfy, &a, sent_at()), "Tags"),
            Some("warning")
        );

        // Non-ASCII titles are RFC 2047 encoded; long bodies stay under ntfy's limit.
        let mut cn = notification();
        cn.probe = Some("网页".to_string());
        cn.details = vec!["服".repeat(3000)];
        let p = payload(WebhookFormat::Ntfy, &cn, sent_at());
        let t = header(&p, "Title").unwrap();
        assert!(t.starts_with("=?UTF-8?B?") && t.is_ascii(), "{t}");
        assert!(p.body.len() <= NTFY_MESSAGE_MAX_BYTES);
        assert!(String::from_utf8(p.body).unwrap().ends_with('…'));
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[tokio::test]
    async fn posts_json_with_headers_and_a_verifiable_signature() {
        let (url, mut rx) = receiver(204, "").await;
        let secret = Secret::new("whsec-do-not-log", "env WEBHOOK_SECRET");
        let n = notification();
        send(&client(), &url, WebhookFormat::Json, Some(&secret), &n)
            .await
            .unwrap();
        let r = rx.recv().await.unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hooks/secret-token?auth=abc");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["x-deepseek-watch-event"], "recovered");
        assert_eq!(
            r.headers["x-deepseek-watch-delivery"],
            "19b8e1a2c00-12-team"
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["delivery_id"], "19b8e1a2c00-12-team");
        assert_eq!(v["outage"]["duration_secs"], 754);
        assert!(DateTime::parse_from_rfc3339(v["sent_at"].as_str().unwrap()).is_ok());

        // The receiver's side: recompute the HMAC over the exact bytes received.
        let got = r.headers["x-deepseek-watch-signature"].clone();
        let hex_sig = got.strip_prefix("sha256=").unwrap();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"whsec-do-not-log").unwrap();
        mac.update(&r.body);
        mac.verify_slice(&hex::decode(hex_sig).unwrap()).unwrap();
        assert!(!r.headers.values().any(|v| v.contains("whsec")));
    }

    #[tokio::test]
    async fn no_secret_no_signature_and_ntfy_headers_arrive() {
        let (url, mut rx) = receiver(200, "{\"id\":\"x\"}").await;
        send(&client(), &url, WebhookFormat::Ntfy, None, &notification())
            .await
            .unwrap();
        let r = rx.recv().await.unwrap();
        assert!(!r.headers.contains_key("x-deepseek-watch-signature"));
        assert_eq!(r.headers["title"], "deepseek-watch: api-flash recovered");
        assert_eq!(r.headers["tags"], "white_check_mark");
        assert!(String::from_utf8(r.body).unwrap().contains("服务器繁忙"));
    }

    #[tokio::test]
    async fn status_codes_sort_into_transient_and_permanent() {
        for (status, permanent) in [
            (500, false),
            (503, false),
            (429, false),
            (408, false),
            (404, true),
            (400, true),
        ] {
            let (url, _rx) = receiver(status, "no such hook\n  here").await;
            let e = send(&client(), &url, WebhookFormat::Json, None, &notification())
                .await
                .unwrap_err();
            assert_eq!(e.permanent, permanent, "{status}: {e:?}");
            assert!(
                e.message.contains(&format!("HTTP {status}")),
                "{}",
                e.message
            );
            assert!(e.message.contains("no such hook here"), "{}", e.message);
            assert!(
                !e.message.contains("secret-token") && !e.message.contains("auth=abc"),
                "{}",
                e.message
            );
        }
    }

    #[tokio::test]
    async fn a_long_answer_is_cut_in_the_message() {
        let (url, _rx) = receiver(404, "z".repeat(100_000)).await;
        let e = send(&client(), &url, WebhookFormat::Json, None, &notification())
            .await
            .unwrap_err();
        assert!(e.message.chars().count() < 300, "{}", e.message.len());
    }

    #[tokio::test]
    async fn refused_and_silent_receivers_are_transient() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/hooks/secret-token");
        let e = send(&client(), &url, WebhookFormat::Json, None, &notification())
            .await
            .unwrap_err();
        assert!(!e.permanent, "{e:?}");
        assert_eq!(
            e.message,
            format!("webhook 127.0.0.1:{port}: connection refused")
        );

        // Accepts, never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/secret-token", silent.local_addr().unwrap());
        let e = send_within(
            &client(),
            &url,
            WebhookFormat::Json,
            None,
            &notification(),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(!e.permanent, "{e:?}");
        assert!(e.message.contains("no answer within"), "{}", e.message);
        assert!(!e.message.contains("secret-token"), "{}", e.message);
    }

    /// Answers every request with the raw `reply`, then keeps the connection
    /// open without another byte.
    async fn raw_server(reply: String) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = sock.read(&mut tmp).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&tmp[..n]);
                    }
                    sock.write_all(reply.as_bytes()).await.unwrap();
                    tokio::time::sleep(Duration::from_secs(5)).await;
                });
            }
        });
        format!("http://{addr}/hook")
    }

    #[tokio::test]
    async fn a_2xx_with_a_stalled_answer_is_delivered() {
        let url =
            raw_server("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial".to_string()).await;
        let r = send_within(
            &client(),
            &url,
            WebhookFormat::Json,
            None,
            &notification(),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(r, Ok(()));
    }

    #[tokio::test]
    async fn a_followed_redirect_is_not_taken_for_delivery() {
        let (target, mut rx) = receiver(200, "ok").await;
        let url = raw_server(format!(
            "HTTP/1.1 302 Found\r\nlocation: {target}\r\ncontent-length: 0\r\n\r\n"
        ))
        .await;
        let e = send(&client(), &url, WebhookFormat::Json, None, &notification())
            .await
            .unwrap_err();
        assert!(e.permanent && e.message.contains("redirects"), "{e:?}");
        // What arrived after the redirect was a bodiless GET, not the notification.
        let r = rx.recv().await.unwrap();
        assert_eq!(r.method, "GET");
        assert!(r.body.is_empty());
        assert!(!e.message.contains("secret-token"), "{}", e.message);
    }

    #[test]
    fn judge_edges() {
        use reqwest::StatusCode;
        assert!(judge("h", StatusCode::OK, false, b"").is_ok());
        assert!(judge("h", StatusCode::ACCEPTED, false, b"").is_ok());
        let e = judge("h", StatusCode::OK, true, b"").unwrap_err();
        assert!(e.permanent && e.message.contains("redirects"), "{e:?}");
        let e = judge("h", StatusCode::NOT_MODIFIED, false, b"").unwrap_err();
        assert!(!e.permanent, "{e:?}");
        let e = judge("h", StatusCode::GONE, false, b"").unwrap_err();
        assert_eq!(e.message, "webhook h: HTTP 410 Gone");
    }

    #[tokio::test]
    async fn an_invalid_url_is_permanent() {
        let e = send(
            &client(),
            "not a url",
            WebhookFormat::Json,
            None,
            &notification(),
        )
        .await
        .unwrap_err();
        assert!(e.permanent, "{e:?}");
    }
}
