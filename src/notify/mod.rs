//! Telling people: events become notifications, each delivered to every
//! subscribed channel through the durable outbox.
//!
//! The outbox rows are written in the same transaction as the state change
//! that caused them (see `store`); the dispatcher delivers them with retries;
//! `email` and `webhook` put one notification on the wire.

pub mod dispatch;
pub mod email;
pub mod message;
pub mod webhook;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::EventKind;

/// The outage an event is about, in design.md's `outages` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageInfo {
    pub id: i64,
    #[serde(with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "rfc3339_opt")]
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_secs: Option<i64>,
    pub cause: String,
}

/// One event as it goes to one channel. Everything a channel needs to render
/// it; built once when the event is created and stored as JSON in the outbox,
/// so a retry after a restart sends exactly the same words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable across retries: receivers drop duplicates by it.
    pub delivery_id: String,
    pub event: EventKind,
    /// `None` only for `test` events.
    pub probe: Option<String>,
    pub kind: Option<String>,
    pub target: Option<String>,
    pub outage: Option<OutageInfo>,
    /// One line, e.g. "api-flash recovered after 12m 34s (was busy)".
    pub message: String,
    /// Further lines for bodies that have room (email, ntfy): start, end,
    /// duration, cause, the latest result.
    pub details: Vec<String>,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// Why a delivery attempt failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// A rejected recipient or a 4xx other than 408/429: retrying cannot help.
    pub permanent: bool,
    pub message: String,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            permanent: false,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            permanent: true,
            message: message.into(),
        }
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EventKind::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown event {s:?}")))
    }
}

mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        crate::result::rfc3339(t, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

mod rfc3339_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => crate::result::rfc3339(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
