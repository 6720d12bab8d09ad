//! Email: puts one [`Notification`] on the wire over SMTP.
//!
//! Owns the message's shape (subject, plain-text UTF-8 body, a `Message-ID`
//! derived from the `delivery_id` so a repeated delivery is recognisable) and
//! the sorting of SMTP failures into permanent (5xx, bad address) and
//! transient (everything else, retried by the dispatcher). One
//! [`EmailSender`] per `[smtp]` config holds lettre's connection pool.

use std::fmt;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Notification, SendError};
use crate::config::{Smtp, SmtpSecurity};
use crate::result::truncate_chars;

/// The whole send (connect, greet, authenticate, transfer) must finish in this.
const SEND_DEADLINE: Duration = Duration::from_secs(30);

/// How much of a server's reply goes into an error message.
const REPLY_MAX_CHARS: usize = 300;

/// RFC 3834: tells vacation responders and list servers not to answer.
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// Sends notifications through one SMTP server. Built once per `[smtp]`
/// config and reused, so lettre's pool keeps connections warm between sends.
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for error messages.
    server: String,
    security: SmtpSecurity,
    authenticated: bool,
    deadline: Duration,
}

// Written by hand so that no future field can leak the password.
impl fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSender")
            .field("server", &self.server)
            .field("security", &self.security)
            .field("authenticated", &self.authenticated)
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl EmailSender {
    /// Builds the transport for `smtp`. The error names the bad value. Must
    /// run inside the tokio runtime: lettre's pool starts a cleanup task.
    pub fn new(smtp: &Smtp) -> Result<EmailSender, String> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("the email sender must be created inside the tokio runtime".to_string());
        }
        // The TLS relays need a process-wide rustls provider; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let from: Mailbox = smtp.from.parse().map_err(|e| {
            format!(
                "smtp.from {:?} is not a valid address ({e}); write e.g. \"deepseek-watch <alerts@example.com>\"",
                smtp.from
            )
        })?;
        let tls_err = |e: lettre::transport::smtp::Error| {
            format!("smtp.host {:?}: cannot set up TLS: {e}", smtp.host)
        };
        let builder = match smtp.security {
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            }
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(tls_err)?
            }
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(tls_err)?
            }
        }
        .port(smtp.port)
        .timeout(Some(SEND_DEADLINE));
        let (builder, authenticated) = match (&smtp.username, &smtp.password) {
            (Some(user), Some(password)) => (
                builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose().to_string(),
                )),
                true,
            ),
            _ => (builder, false),
        };
        Ok(EmailSender {
            transport: builder.build(),
            from,
            server: format!("{}:{}", smtp.host, smtp.port),
            security: smtp.security,
            authenticated,
            deadline: SEND_DEADLINE,
        })
    }

    /// Sends `n` to `to` (several recipients, one SMTP transaction). A
    /// deadline of 30 s covers the whole send; the error says whether a retry
    /// can help.
    pub async fn send(&self, to: &[String], n: &Notification) -> Result<(), SendError> {
        let message = self.message(to, n)?;
        match tokio::time::timeout(self.deadline, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e, &self.server, to)),
            Err(_) => Err(SendError::transient(format!(
                "SMTP {}: no answer within {}s",
                self.server,
                self.deadline.as_secs()
            ))),
        }
    }

    fn message(&self, to: &[String], n: &Notification) -> Result<Message, SendError> {
        if to.is_empty() {
            return Err(SendError::permanent("no recipients"));
        }
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject(n))
            .message_id(Some(message_id(&n.delivery_id)))
            .date_now()
            .raw_header(HeaderValue::new(
                AUTO_SUBMITTED,
                "auto-generated".to_string(),
            ));
        for addr in to {
            let mailbox: Mailbox = addr.parse().map_err(|e| {
                SendError::permanent(format!("invalid recipient address {addr:?}: {e}"))
            })?;
            builder = builder.to(mailbox);
        }
        builder
            .singlepart(SinglePart::plain(body(n)))
            .map_err(|e| SendError::permanent(format!("cannot build the email: {e}")))
    }
}

/// `[deepseek-watch] <message>`: the one line a person sees in the inbox.
pub fn subject(n: &Notification) -> String {
    format!("[deepseek-watch] {}", one_line(&n.message))
}

/// Plain text: the message, a blank line, the details, then a footer with the
/// `delivery_id` so a person can match a duplicate or a log line.
pub fn body(n: &Notification) -> String {
    let mut out = String::new();
    out.push_str(n.message.trim());
    out.push_str("\n\n");
    for line in &n.details {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if !n.details.is_empty() {
        out.push('\n');
    }
    out.push_str("-- \n");
    out.push_str(&format!(
        "Sent by deepseek-watch. Delivery {}: a repeated email with this ID is the same notification.\n",
        n.delivery_id
    ));
    out
}

/// Headers hold one line: a message with a line break must not start a new header.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `<{delivery_id}@deepseek-watch>`, with any character that a Message-ID may
/// not hold percent-encoded (channel names are free text), so the same
/// delivery always gets the same, valid ID.
fn message_id(delivery_id: &str) -> String {
    let mut left = String::with_capacity(delivery_id.len());
    for b in delivery_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            left.push(char::from(b));
        } else {
            left.push_str(&format!("%{b:02X}"));
        }
    }
    if left.is_empty() {
        left.push_str("none");
    }
    format!("<{left}@deepseek-watch>")
}

/// Sorts a lettre error: a 5xx reply is permanent, anything else (4xx,
/// refused, timed out, TLS) may pass on a retry. Never includes credentials:
/// lettre's errors do not carry them.
fn classify(e: &lettre::transport::smtp::Error, server: &str, to: &[String]) -> SendError {
    if let Some(code) = e.status() {
        let text = std::error::Error::source(e)
            .map(|s| one_line(&s.to_string()))
            .unwrap_or_default();
        let reply = truncate_chars(&format!("{code} {text}"), REPLY_MAX_CHARS);
        let code = code.to_string();
        if !e.is_permanent() {
            return SendError::transient(format!("SMTP {server}: temporarily refused: {reply}"));
        }
        if matches!(code.as_str(), "530" | "534" | "535" | "538") {
            return SendError::permanent(format!(
                "SMTP {server}: authentication failed: {reply}; check smtp.username and smtp.password"
            ));
        }
        let lower = text.to_lowercase();
        let named = to.iter().find(|r| {
            let addr = r
                .parse::<Mailbox>()
                .map_or_else(|_| r.to_string(), |m| m.email.to_string());
            lower.contains(&addr.to_lowercase())
        });
        return match named {
            Some(r) => SendError::permanent(format!("SMTP rejected recipient {r}: {reply}")),
            None => SendError::permanent(format!(
                "SMTP {server} rejected the email to {}: {reply}",
                to.join(", ")
            )),
        };
    }
    if e.is_timeout() {
        return SendError::transient(format!("SMTP {server}: timed out"));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return SendError::transient(format!("SMTP {server}: connection refused"));
                }
                std::io::ErrorKind::TimedOut => {
                    return SendError::transient(format!("SMTP {server}: timed out"));
                }
                _ => {}
            }
        }
        source = err.source();
    }
    let what = if e.is_tls() { "TLS failed: " } else { "" };
    SendError::transient(truncate_chars(
        &format!("SMTP {server}: {what}{}", one_line(&e.to_string())),
        REPLY_MAX_CHARS,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::event::EventKind;
    use crate::notify::OutageInfo;
    use chrono::{TimeZone, Utc};
    use std::net::TcpListener;
    use std::sync::mpsc;

    fn notification() -> Notification {
        let started = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
        let ended = Utc.with_ymd_and_hms(2026, 1, 5, 9, 12, 34).unwrap();
        Notification {
            delivery_id: "19b8e1a2c00-12-me".to_string(),
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
                "Started: 2026-01-05T09:00:00Z".to_string(),
                "Cause: busy".to_string(),
                "Latest result: busy, HTTP 503, 服务器繁忙".to_string(),
            ],
            created_at: ended,
        }
    }

    fn smtp(port: u16) -> Smtp {
        Smtp {
            host: "127.0.0.1".to_string(),
            port,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "deepseek-watch <alerts@example.com>".to_string(),
        }
    }

    /// An in-process SMTP server on a free port; received emails arrive on the channel.
    fn mail_server() -> (u16, mpsc::Receiver<mogimail::Email>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = mogimail::SmtpServer::new("test.local").start_with_listener(listener, tx);
        });
        (port, rx)
    }

    /// Decodes quoted-printable as it arrives through mogimail (which drops
    /// the `\r` and joins lines with `\n`).
    fn decode_qp(s: &str) -> String {
        let s = s.replace("=\n", "");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn subject_and_body_have_the_words() {
        let n = notification();
        assert_eq!(
            subject(&n),
            "[deepseek-watch] api-flash recovered after 12m 34s (was busy)"
        );
        let b = body(&n);
        assert!(b.starts_with(
            "api-flash recovered after 12m 34s (was busy)\n\nProbe: api-flash (chat)\n"
        ));
        assert!(b.contains("Latest result: busy, HTTP 503, 服务器繁忙\n"));
        assert!(b.contains("Delivery 19b8e1a2c00-12-me"));
        let mut multi = n.clone();
        multi.message = "line one\r\nSubject: injected".to_string();
        assert_eq!(
            subject(&multi),
            "[deepseek-watch] line one Subject: injected"
        );
    }

    #[test]
    fn message_id_is_stable_and_valid() {
        assert_eq!(
            message_id("19b8e1a2c00-12-me"),
            "<19b8e1a2c00-12-me@deepseek-watch>"
        );
        assert_eq!(
            message_id("1-2-my team@x"),
            "<1-2-my%20team%40x@deepseek-watch>"
        );
        assert_eq!(message_id("1-2-my team@x"), message_id("1-2-my team@x"));
    }

    #[tokio::test]
    async fn new_rejects_a_bad_from_and_debug_hides_the_password() {
        let mut s = smtp(25);
        s.from = "not an address".to_string();
        let e = EmailSender::new(&s).unwrap_err();
        assert!(
            e.contains("smtp.from") && e.contains("not an address"),
            "{e}"
        );

        let mut s = smtp(587);
        s.security = SmtpSecurity::StartTls;
        s.host = "smtp.example.com".to_string();
        s.username = Some("alerts@example.com".to_string());
        s.password = Some(Secret::new("hunter2-very-secret", "env SMTP_PASSWORD"));
        let sender = EmailSender::new(&s).unwrap();
        let dbg = format!("{sender:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("smtp.example.com:587"), "{dbg}");
    }

    #[tokio::test]
    async fn delivers_utf8_plain_text_to_every_recipient() {
        let (port, rx) = mail_server();
        let sender = EmailSender::new(&smtp(port)).unwrap();
        let n = notification();
        let to = vec![
            "me@example.com".to_string(),
            "Ops Team <ops@example.org>".to_string(),
        ];
        sender.send(&to, &n).await.unwrap();

        let email = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(email.from, "alerts@example.com");
        assert_eq!(email.to, vec!["me@example.com", "ops@example.org"]);
        assert_eq!(
            email.get_subject(),
            Some("[deepseek-watch] api-flash recovered after 12m 34s (was busy)")
        );
        let data = &email.data;
        assert!(
            data.contains("Message-ID: <19b8e1a2c00-12-me@deepseek-watch>"),
            "{data}"
        );
        assert!(
            data.contains("Content-Type: text/plain; charset=utf-8"),
            "{data}"
        );
        assert!(data.contains("Date: "), "{data}");
        assert!(data.contains("Auto-Submitted: auto-generated"), "{data}");
        let marker = "Content-Transfer-Encoding: quoted-printable\n";
        let at = data
            .find(marker)
            .unwrap_or_else(|| panic!("not quoted-printable: {data}"));
        let text = decode_qp(&data[at + marker.len()..]);
        assert!(
            text.contains("Latest result: busy, HTTP 503, 服务器繁忙"),
            "{text}"
        );
        assert!(text.contains("Started: 2026-01-05T09:00:00Z"), "{text}");
        assert!(text.contains("Delivery 19b8e1a2c00-12-me"), "{text}");
    }

    #[tokio::test]
    async fn a_rejected_recipient_is_permanent() {
        let (port, _rx) = mail_server();
        let sender = EmailSender::new(&smtp(port)).unwrap();
        // mogimail answers 501 to a domain longer than 64 characters.
        let long = format!("bob@{}.{}.com", "x".repeat(40), "y".repeat(30));
        let to = vec!["me@example.com".to_string(), long];
        let e = sender.send(&to, &notification()).await.unwrap_err();
        assert!(e.permanent, "{e:?}");
        assert!(e.message.contains("501"), "{}", e.message);
    }

    #[tokio::test]
    async fn an_invalid_address_is_permanent() {
        let (port, _rx) = mail_server();
        let sender = EmailSender::new(&smtp(port)).unwrap();
        let e = sender
            .send(&["not-an-address@".to_string()], &notification())
            .await
            .unwrap_err();
        assert!(e.permanent, "{e:?}");
        assert!(e.message.contains("not-an-address@"), "{}", e.message);
    }

    #[tokio::test]
    async fn a_closed_port_is_transient() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let sender = EmailSender::new(&smtp(port)).unwrap();
        let e = sender
            .send(&["me@example.com".to_string()], &notification())
            .await
            .unwrap_err();
        assert!(!e.permanent, "{e:?}");
        assert_eq!(
            e.message,
            format!("SMTP 127.0.0.1:{port}: connection refused")
        );
    }

    #[tokio::test]
    async fn a_silent_server_hits_the_deadline() {
        // Accepts the connection but never greets.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut sender = EmailSender::new(&smtp(port)).unwrap();
        sender.deadline = Duration::from_millis(300);
        let e = sender
            .send(&["me@example.com".to_string()], &notification())
            .await
            .unwrap_err();
        assert!(!e.permanent, "{e:?}");
        assert!(e.message.contains("no answer within"), "{}", e.message);
        drop(listener);
    }
}
