//! The outbox queries the dispatcher needs: what is due, and recording each
//! attempt. Run on the writer thread, like every write.

use rusqlite::{Connection, params};

use crate::notify::Notification;

/// A delivery waiting to go out.
#[derive(Debug, Clone)]
pub struct Pending {
    pub delivery_id: String,
    pub channel: String,
    pub attempts: u32,
    pub created_ms: i64,
    pub notification: Notification,
}

/// Due deliveries (oldest event first) and when the next one not yet due is.
#[derive(Debug, Default)]
pub struct Due {
    pub ready: Vec<Pending>,
    pub next_at_ms: Option<i64>,
}

/// How one attempt ended and what happens next.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub delivery_id: String,
    pub at_ms: i64,
    pub error: Option<String>,
    /// `Some`: retry then. `None` with an error: given up.
    pub retry_at_ms: Option<i64>,
}

pub fn due(conn: &Connection, now_ms: i64, limit: usize) -> rusqlite::Result<Due> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.channel, d.attempts, e.created_at, e.payload FROM delivery d JOIN event e ON e.id = d.event_id \
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 ORDER BY d.event_id, d.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        },
    )?;
    let mut ready = Vec::new();
    for row in rows {
        let (delivery_id, channel, attempts, created_ms, payload) = row?;
        match serde_json::from_str::<Notification>(&payload) {
            Ok(mut n) => {
                n.delivery_id = delivery_id.clone();
                ready.push(Pending {
                    delivery_id,
                    channel,
                    attempts,
                    created_ms,
                    notification: n,
                });
            }
            Err(e) => {
                tracing::error!(delivery = %delivery_id, error = %e, "unreadable outbox payload; skipping")
            }
        }
    }
    let next_at_ms = conn
        .prepare_cached("SELECT min(next_attempt_at) FROM delivery WHERE state = 'pending' AND next_attempt_at > ?1")?
        .query_row([now_ms], |r| r.get(0))?;
    Ok(Due { ready, next_at_ms })
}

pub fn record_attempt(conn: &Connection, a: &Attempt) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.prepare_cached("INSERT INTO attempt (delivery_id, at, ok, error) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![a.delivery_id, a.at_ms, a.error.is_none(), a.error])?;
    let (state, next, delivered) = match (&a.error, a.retry_at_ms) {
        (None, _) => ("delivered", a.at_ms, Some(a.at_ms)),
        (Some(_), Some(retry)) => ("pending", retry, None),
        (Some(_), None) => ("failed", a.at_ms, None),
    };
    tx.prepare_cached(
        "UPDATE delivery SET attempts = attempts + 1, state = ?2, next_attempt_at = ?3, delivered_at = ?4, \
         last_error = coalesce(?5, last_error) WHERE id = ?1",
    )?
    .execute(params![a.delivery_id, state, next, delivered, a.error])?;
    tx.commit()
}
