//! Test fixtures: a fresh database and results written the way the writer
//! writes them (result rows and rollups in one transaction).

use chrono::TimeZone;
use rusqlite::{Connection, params};

use super::note::Notes;
use super::record::{self, Recorded, Routing};
use super::rollup;
use crate::result::{ProbeResult, Status};

/// A migrated database in a temporary directory.
pub fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = super::open_writer(&dir.path().join("h.db")).unwrap();
    (dir, conn)
}

/// The id of probe `name`, registered if new.
pub fn probe(conn: &Connection, name: &str) -> i64 {
    conn.execute(
        "INSERT INTO probe (name, kind, target) VALUES (?1, 'http', 'x') ON CONFLICT(name) DO NOTHING",
        [name],
    )
    .unwrap();
    conn.query_row("SELECT id FROM probe WHERE name = ?1", [name], |r| r.get(0))
        .unwrap()
}

/// Writes `(at_ms, status, latency_ms)` results of `name` in one batch.
pub fn write(conn: &mut Connection, name: &str, rows: &[(i64, Status, Option<u32>)]) {
    let id = probe(conn, name);
    let tx = conn.transaction().unwrap();
    let mut batch = rollup::Batch::default();
    let mut notes = Notes::default();
    for (at, status, latency) in rows {
        let rec = Recorded {
            result: ProbeResult {
                probe: name.into(),
                at: chrono::Utc.timestamp_millis_opt(*at).unwrap(),
                status: *status,
                latency_ms: *latency,
                ttft_ms: None,
                http_status: Some(200),
                error: None,
                detail: None,
            },
            state: Default::default(),
            changes: vec![],
        };
        record::write(&tx, id, &rec, &Routing::default(), &mut batch, &mut notes).unwrap();
    }
    batch.flush(&tx).unwrap();
    tx.commit().unwrap();
}

/// Adds an outage row directly.
pub fn outage(conn: &Connection, name: &str, started_ms: i64, ended_ms: Option<i64>) {
    let id = probe(conn, name);
    conn.execute(
        "INSERT INTO outage (probe_id, started_at, ended_at, cause, failed_results) VALUES (?1, ?2, ?3, 2, 3)",
        params![id, started_ms, ended_ms],
    )
    .unwrap();
}

/// Unix ms of a UTC time.
pub fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    chrono::Utc
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .unwrap()
        .timestamp_millis()
}
