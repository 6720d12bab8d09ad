//! Writing one probe result and everything it caused, inside the writer's
//! transaction: the result row, the tracker state, outage rows, events and
//! one outbox row per subscribed channel. All or nothing.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, params};

use super::note::Notes;
use super::recent;
use super::rollup;
use super::writer::ProbeMeta;
use crate::event::EventKind;
use crate::notify::message::{self, ProbeRef};
use crate::notify::{Notification, OutageInfo};
use crate::outage::{Change, TrackerState};
use crate::result::{ProbeResult, Status};
use crate::store::query::from_ms;

/// A result with the tracker's verdict on it, as the probe task hands it over.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub result: ProbeResult,
    pub state: TrackerState,
    pub changes: Vec<Change>,
}

/// Which channel hears about which events of which probes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRoute {
    pub name: String,
    pub events: Vec<EventKind>,
    /// `None`: every probe.
    pub probes: Option<Vec<String>>,
}

impl ChannelRoute {
    pub fn wants(&self, kind: EventKind, probe: &str) -> bool {
        self.events.contains(&kind)
            && self
                .probes
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| p == probe))
    }
}

/// What the writer needs to know to route events.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    pub probes: HashMap<String, ProbeMeta>,
    pub channels: Vec<ChannelRoute>,
}

/// Writes `rec` for probe `probe_id` and counts it in `rollups` (which the
/// caller flushes in the same transaction); its error and detail go in a
/// note (see [`super::note`]). Returns how many outbox rows it added.
pub fn write(
    tx: &Transaction<'_>,
    probe_id: i64,
    rec: &Recorded,
    routing: &Routing,
    rollups: &mut rollup::Batch,
    notes: &mut Notes,
) -> rusqlite::Result<usize> {
    let r = &rec.result;
    let note_id = notes.id(tx, r.error.as_deref(), r.detail.as_deref())?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO result (probe_id, at, status, latency_ms, ttft_ms, http_status, note_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(probe_id, at) DO NOTHING",
    )?;
    // Two results of one probe in the same millisecond (a clock stepped
    // back): move the later one along rather than lose it.
    let mut at = r.at.timestamp_millis();
    while insert.execute(params![
        probe_id,
        at,
        r.status.code(),
        r.latency_ms,
        r.ttft_ms,
        r.http_status,
        note_id
    ])? == 0
    {
        at += 1;
    }
    rollups.add(probe_id, at, r.status, r.latency_ms);
    let state = serde_json::to_string(&rec.state)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached(
        "INSERT INTO tracker (probe_id, state) VALUES (?1, ?2) ON CONFLICT(probe_id) DO UPDATE SET state = excluded.state",
    )?
    .execute(params![probe_id, state])?;

    let mut queued = 0;
    for change in &rec.changes {
        queued += apply(tx, probe_id, rec, change, routing)?;
    }
    Ok(queued)
}

fn open_outage_id(tx: &Transaction<'_>, probe_id: i64) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT id FROM outage WHERE probe_id = ?1 AND ended_at IS NULL")?
        .query_row([probe_id], |r| r.get(0))
        .optional()
}

fn apply(
    tx: &Transaction<'_>,
    probe_id: i64,
    rec: &Recorded,
    change: &Change,
    routing: &Routing,
) -> rusqlite::Result<usize> {
    let r = &rec.result;
    // The event happened when the result was observed, not when the writer
    // got to it (a backlog, or a history import, must not re-date it).
    let now = r.at;
    let meta = routing
        .probes
        .get(&r.probe)
        .cloned()
        .unwrap_or_else(|| ProbeMeta {
            name: r.probe.clone(),
            kind: String::new(),
            target: String::new(),
        });
    let p = ProbeRef {
        name: &meta.name,
        kind: &meta.kind,
        target: &meta.target,
    };
    let info = |id: i64, started_ms: i64, ended_ms: Option<i64>, cause: Status| OutageInfo {
        id,
        started_at: from_ms(started_ms),
        ended_at: ended_ms.map(from_ms),
        duration_secs: ended_ms.map(|e| (e - started_ms) / 1000),
        cause: cause.to_string(),
    };
    let (kind, outage, (msg, details)) = match change {
        Change::Opened {
            started_ms,
            cause,
            failed_results,
        } => {
            // An outage already open (state and table out of step after a
            // crash mid-way cannot happen in one transaction, but be safe):
            // carry on with it rather than open a second.
            let id = match open_outage_id(tx, probe_id)? {
                Some(id) => id,
                None => {
                    tx.prepare_cached(
                        "INSERT INTO outage (probe_id, started_at, ended_at, cause, failed_results) VALUES (?1, ?2, NULL, ?3, ?4)",
                    )?
                    .execute(params![probe_id, started_ms, cause.code(), failed_results])?;
                    tx.last_insert_rowid()
                }
            };
            let o = info(id, *started_ms, None, *cause);
            let past = recent::history(tx, probe_id, *started_ms, Some(id))?;
            let text = message::opened(&p, &o, r, *failed_results, &past);
            (EventKind::Outage, Some(o), text)
        }
        Change::Extended {
            cause,
            failed_results,
        } => {
            tx.prepare_cached(
                "UPDATE outage SET cause = ?2, failed_results = ?3 WHERE probe_id = ?1 AND ended_at IS NULL",
            )?
            .execute(params![probe_id, cause.code(), failed_results])?;
            return Ok(0);
        }
        Change::Closed {
            started_ms,
            ended_ms,
            cause,
            failed_results,
        } => {
            let Some(id) = open_outage_id(tx, probe_id)? else {
                tracing::warn!(probe = %r.probe, "recovery without an open outage row; recording none");
                return Ok(0);
            };
            tx.prepare_cached(
                "UPDATE outage SET ended_at = ?2, cause = ?3, failed_results = ?4 WHERE id = ?1",
            )?
            .execute(params![id, ended_ms, cause.code(), failed_results])?;
            let o = info(id, *started_ms, Some(*ended_ms), *cause);
            let past = recent::history(tx, probe_id, *started_ms, Some(id))?;
            let text = message::recovered(&p, &o, r, *failed_results, &past);
            (EventKind::Recovered, Some(o), text)
        }
        Change::Reminder { started_ms, cause } => {
            let id = open_outage_id(tx, probe_id)?.unwrap_or_default();
            let o = info(id, *started_ms, None, *cause);
            let text = message::reminder(&p, &o, r, now);
            (EventKind::Reminder, Some(o), text)
        }
        Change::ActionNeeded { status } => (
            EventKind::ActionNeeded,
            None,
            message::action_needed(&p, *status, r),
        ),
    };
    let n = Notification {
        delivery_id: String::new(),
        event: kind,
        probe: Some(meta.name.clone()),
        kind: Some(meta.kind.clone()),
        target: Some(meta.target.clone()),
        outage,
        message: msg,
        details,
        created_at: now,
    };
    let channels: Vec<&str> = routing
        .channels
        .iter()
        .filter(|c| c.wants(kind, &meta.name))
        .map(|c| c.name.as_str())
        .collect();
    match kind {
        EventKind::Recovered => {
            tracing::info!(probe = %meta.name, event = %kind, channels = channels.len(), "{}", n.message)
        }
        _ => {
            tracing::warn!(probe = %meta.name, event = %kind, channels = channels.len(), "{}", n.message)
        }
    }
    insert_event(tx, Some(probe_id), &n, &channels)
}

/// Inserts an event and one pending delivery per channel; returns the count.
pub fn insert_event(
    tx: &Transaction<'_>,
    probe_id: Option<i64>,
    n: &Notification,
    channels: &[&str],
) -> rusqlite::Result<usize> {
    let payload = serde_json::to_string(n)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let created = n.created_at.timestamp_millis();
    tx.prepare_cached(
        "INSERT INTO event (kind, probe_id, outage_id, created_at, message, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        n.event.as_str(),
        probe_id,
        n.outage.as_ref().map(|o| o.id).filter(|id| *id > 0),
        created,
        n.message,
        payload
    ])?;
    let event_id = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO delivery (id, event_id, channel, state, attempts, next_attempt_at) VALUES (?1, ?2, ?3, 'pending', 0, ?4)",
    )?;
    for ch in channels {
        insert.execute(params![
            delivery_id(created, event_id, ch),
            event_id,
            ch,
            created
        ])?;
    }
    Ok(channels.len())
}

/// Stable and unique: when, which event, which channel.
pub fn delivery_id(created_ms: i64, event_id: i64, channel: &str) -> String {
    format!("{created_ms:x}-{event_id}-{channel}")
}

/// The tracker state saved for `probe_id`, or a fresh one.
pub fn load_tracker(conn: &rusqlite::Connection, probe_id: i64) -> rusqlite::Result<TrackerState> {
    let json: Option<String> = conn
        .query_row(
            "SELECT state FROM tracker WHERE probe_id = ?1",
            [probe_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match json {
        // A state from an incompatible version starts afresh rather than
        // blocking the probe; the open outage row, if any, is still there.
        Some(j) => serde_json::from_str(&j).unwrap_or_default(),
        None => TrackerState::default(),
    })
}
