//! The dispatcher: takes due rows from the outbox and delivers them.
//!
//! Deliveries run concurrently across channels, one at a time per channel in
//! event order, so a slow or dead channel never delays another and a
//! subscriber never hears "recovered" before "outage". A failed attempt is
//! retried with exponential backoff (1 s doubling to 5 min) until
//! `give_up_after`; a permanent error gives up at once and says why. Every
//! attempt is recorded. Undelivered rows stay in the database and go out
//! after a restart: no alert is lost because a channel was briefly down.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::email::EmailSender;
use super::{Notification, SendError, webhook};
use crate::config::{Channel, ChannelKind, Config, Secret, WebhookFormat};
use crate::store::outbox::{Attempt, Pending};
use crate::store::writer::Writer;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// A deadline on one attempt, above the channels' own.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(60);
/// With nothing scheduled, look at the outbox this often anyway.
const IDLE_POLL: Duration = Duration::from_secs(60);

/// One configured way of telling people.
pub enum Sender {
    Email {
        smtp: Arc<EmailSender>,
        to: Vec<String>,
    },
    Webhook {
        client: reqwest::Client,
        url: String,
        format: WebhookFormat,
        secret: Option<Secret>,
    },
}

impl Sender {
    pub async fn send(&self, n: &Notification) -> Result<(), SendError> {
        match self {
            Sender::Email { smtp, to } => smtp.send(to, n).await,
            Sender::Webhook {
                client,
                url,
                format,
                secret,
            } => webhook::send(client, url, *format, secret.as_ref(), n).await,
        }
    }
}

/// Builds a sender per configured channel. Fails on an unusable `[smtp]`.
pub fn senders(
    cfg: &Config,
    client: &reqwest::Client,
) -> Result<HashMap<String, Arc<Sender>>, String> {
    let smtp = match &cfg.smtp {
        Some(s) => Some(Arc::new(
            EmailSender::new(s).map_err(|e| format!("[smtp]: {e}"))?,
        )),
        None => None,
    };
    let mut out = HashMap::new();
    for ch in &cfg.channels {
        out.insert(
            ch.name.clone(),
            Arc::new(sender(ch, smtp.as_ref(), client)?),
        );
    }
    Ok(out)
}

fn sender(
    ch: &Channel,
    smtp: Option<&Arc<EmailSender>>,
    client: &reqwest::Client,
) -> Result<Sender, String> {
    Ok(match &ch.kind {
        ChannelKind::Email { to } => Sender::Email {
            smtp: smtp
                .cloned()
                .ok_or_else(|| format!("channel {:?} needs [smtp]", ch.name))?,
            to: to.clone(),
        },
        ChannelKind::Webhook {
            url,
            format,
            secret,
        } => Sender::Webhook {
            client: client.clone(),
            url: url.clone(),
            format: *format,
            secret: secret.clone(),
        },
    })
}

/// What to do after an attempt. Pure, so the policy is tested on its own.
pub fn decide(
    delivery_id: &str,
    attempts_before: u32,
    created_ms: i64,
    now_ms: i64,
    give_up_after: Duration,
    outcome: &Result<(), SendError>,
) -> Attempt {
    let (error, retry_at_ms) = match outcome {
        Ok(()) => (None, None),
        Err(e) if e.permanent => (
            Some(format!("gave up, permanent error: {}", e.message)),
            None,
        ),
        Err(e) => {
            let backoff = FIRST_RETRY
                .saturating_mul(2u32.saturating_pow(attempts_before.min(16)))
                .min(MAX_RETRY);
            let retry_at = now_ms + i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX);
            let limit = created_ms + i64::try_from(give_up_after.as_millis()).unwrap_or(i64::MAX);
            if retry_at > limit {
                (
                    Some(format!(
                        "gave up after {}: {}",
                        humantime::format_duration(give_up_after),
                        e.message
                    )),
                    None,
                )
            } else {
                (Some(e.message.clone()), Some(retry_at))
            }
        }
    };
    Attempt {
        delivery_id: delivery_id.to_string(),
        at_ms: now_ms,
        error,
        retry_at_ms,
    }
}

/// The channels and retry limit in force; replaced whole on reload.
pub struct Channels {
    pub senders: HashMap<String, Arc<Sender>>,
    pub give_up_after: Duration,
}

pub struct Dispatcher {
    writer: Writer,
    channels: watch::Receiver<Arc<Channels>>,
}

impl Dispatcher {
    /// `channels` may change while running (SIGHUP); each delivery uses the
    /// channels in force when it starts.
    pub fn new(writer: Writer, channels: watch::Receiver<Arc<Channels>>) -> Dispatcher {
        Dispatcher { writer, channels }
    }

    /// Delivers until `stop` fires; then keeps going for at most `drain`
    /// while deliveries are due or in flight, so a recovery noticed just
    /// before shutdown still goes out. What is left goes out after restart.
    pub async fn run(self, stop: CancellationToken, drain: Duration) {
        let signal = self.writer.outbox_signal();
        let mut in_flight: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<String> = JoinSet::new();
        let mut deadline: Option<Instant> = None;
        loop {
            if deadline.is_none() && stop.is_cancelled() {
                deadline = Some(Instant::now() + drain);
            }
            let now_ms = chrono::Utc::now().timestamp_millis();
            let due = match self.writer.due(now_ms).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    if stop.is_cancelled() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut started = 0;
            let channels = self.channels.borrow().clone();
            for p in due.ready {
                if in_flight.contains(&p.channel) {
                    continue;
                }
                in_flight.insert(p.channel.clone());
                started += 1;
                let sender = channels.senders.get(&p.channel).cloned();
                let writer = self.writer.clone();
                let give_up = channels.give_up_after;
                tasks.spawn(deliver(p, sender, writer, give_up));
            }
            if let Some(d) = deadline {
                if tasks.is_empty() && started == 0 {
                    break;
                }
                if Instant::now() >= d {
                    tracing::warn!(
                        in_flight = tasks.len(),
                        "shutdown: leaving undelivered notifications for the next start"
                    );
                    tasks.abort_all();
                    break;
                }
            }
            let wake = due
                .next_at_ms
                .map(|at| Duration::from_millis(u64::try_from(at - now_ms).unwrap_or(0)))
                .unwrap_or(IDLE_POLL)
                .min(IDLE_POLL);
            let mut wake_at = Instant::now() + wake;
            if let Some(d) = deadline {
                wake_at = wake_at.min(d);
            }
            tokio::select! {
                _ = stop.cancelled(), if deadline.is_none() => {}
                _ = signal.notified() => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(channel) = done {
                        in_flight.remove(&channel);
                    } else {
                        in_flight.clear();
                    }
                }
            }
            // Reap every finished task, not just one.
            while let Some(done) = tasks.try_join_next() {
                match done {
                    Ok(channel) => {
                        in_flight.remove(&channel);
                    }
                    Err(_) => in_flight.clear(),
                }
            }
        }
    }
}

/// One attempt at one delivery, recorded. Returns the channel, now free.
async fn deliver(
    p: Pending,
    sender: Option<Arc<Sender>>,
    writer: Writer,
    give_up_after: Duration,
) -> String {
    let outcome = match sender {
        None => Err(SendError::permanent(format!(
            "channel {:?} is no longer configured",
            p.channel
        ))),
        Some(s) => match tokio::time::timeout(ATTEMPT_DEADLINE, s.send(&p.notification)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::transient("no answer within 60 s")),
        },
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let attempt = decide(
        &p.delivery_id,
        p.attempts,
        p.created_ms,
        now_ms,
        give_up_after,
        &outcome,
    );
    match (&attempt.error, attempt.retry_at_ms) {
        (None, _) => {
            tracing::info!(channel = %p.channel, event = %p.notification.event, delivery = %p.delivery_id, "delivered")
        }
        (Some(e), Some(_)) => {
            tracing::warn!(channel = %p.channel, delivery = %p.delivery_id, attempt = p.attempts + 1, error = %e, "delivery failed; will retry")
        }
        (Some(e), None) => {
            tracing::error!(channel = %p.channel, delivery = %p.delivery_id, error = %e, "delivery failed for good")
        }
    }
    if let Err(e) = writer.attempted(attempt).await {
        tracing::error!(error = %e, "cannot record a delivery attempt");
    }
    p.channel
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn success_is_delivered() {
        let a = decide("d", 0, 0, 5, DAY, &Ok(()));
        assert_eq!((a.error, a.retry_at_ms), (None, None));
    }

    #[test]
    fn transient_errors_back_off_exponentially_to_five_minutes() {
        let err = Err(SendError::transient("503"));
        let waits: Vec<i64> = (0..12)
            .map(|n| decide("d", n, 0, 1000, DAY, &err).retry_at_ms.unwrap() - 1000)
            .collect();
        assert_eq!(&waits[..5], &[1000, 2000, 4000, 8000, 16000]);
        assert_eq!(waits[9], 300_000);
        assert_eq!(waits[11], 300_000);
    }

    #[test]
    fn gives_up_after_the_limit() {
        let err = Err(SendError::transient("connection refused"));
        let now = 86_400_000 - 500;
        let a = decide("d", 3, 0, now, DAY, &err);
        assert_eq!(a.retry_at_ms, None);
        assert!(a.error.unwrap().starts_with("gave up after 1day"));
    }

    #[test]
    fn permanent_errors_give_up_at_once_saying_why() {
        let a = decide(
            "d",
            0,
            0,
            10,
            DAY,
            &Err(SendError::permanent("HTTP 404 Not Found")),
        );
        assert_eq!(a.retry_at_ms, None);
        assert_eq!(
            a.error.as_deref(),
            Some("gave up, permanent error: HTTP 404 Not Found")
        );
    }
}
