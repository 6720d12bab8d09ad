//! Read-only queries behind the CLI's history commands. Every query is
//! shaped to use the `result` primary key (probe, time).

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params_from_iter, types::Value};
use serde::Serialize;

use crate::result::{ProbeResult, Status};

/// Filters of `deepseek-watch results`. Times are Unix milliseconds.
#[derive(Debug, Clone, Default)]
pub struct ResultFilter {
    pub probe: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub status: Option<Status>,
    /// Newest `limit` rows; `None` for all.
    pub limit: Option<usize>,
}

/// Results matching `f`, oldest first.
pub fn results(conn: &Connection, f: &ResultFilter) -> rusqlite::Result<Vec<ProbeResult>> {
    let mut sql = String::from(
        "SELECT p.name, r.at, r.status, r.latency_ms, r.ttft_ms, r.http_status, r.error, r.detail \
         FROM result r JOIN probe p ON p.id = r.probe_id WHERE 1",
    );
    let mut args: Vec<Value> = Vec::new();
    if let Some(name) = &f.probe {
        sql.push_str(" AND r.probe_id = (SELECT id FROM probe WHERE name = ?)");
        args.push(Value::Text(name.clone()));
    }
    if let Some(s) = f.since_ms {
        sql.push_str(" AND r.at >= ?");
        args.push(Value::Integer(s));
    }
    if let Some(u) = f.until_ms {
        sql.push_str(" AND r.at < ?");
        args.push(Value::Integer(u));
    }
    if let Some(st) = f.status {
        sql.push_str(" AND r.status = ?");
        args.push(Value::Integer(i64::from(st.code())));
    }
    sql.push_str(" ORDER BY r.at DESC");
    if let Some(n) = f.limit {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
    }
    let mut stmt = conn.prepare(&sql)?;
    let mut rows: Vec<ProbeResult> = stmt
        .query_map(params_from_iter(args), row_to_result)?
        .collect::<rusqlite::Result<_>>()?;
    rows.reverse();
    Ok(rows)
}

fn row_to_result(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProbeResult> {
    let code: i64 = r.get(2)?;
    Ok(ProbeResult {
        probe: r.get(0)?,
        at: from_ms(r.get(1)?),
        // An unknown code can only come from a newer version; show it as down
        // rather than failing the whole query.
        status: Status::from_code(code).unwrap_or(Status::Down),
        latency_ms: r.get(3)?,
        ttft_ms: r.get(4)?,
        http_status: r.get(5)?,
        error: r.get(6)?,
        detail: r.get(7)?,
    })
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// What `status` says about one probe, in design.md's JSON shape.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeStatus {
    pub name: String,
    pub kind: String,
    pub target: String,
    /// `operational`, `outage`, `action_needed` or `unknown`.
    pub state: &'static str,
    pub last_result: Option<ProbeResult>,
    pub outage: Option<serde_json::Value>,
    /// Share of conclusive results in the last 24 h that were usable.
    pub uptime_24h: Option<f64>,
}

/// A probe to report on, as the config describes it.
pub struct Described<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub target: String,
}

pub fn status(
    conn: &Connection,
    probes: &[Described<'_>],
    now_ms: i64,
) -> rusqlite::Result<Vec<ProbeStatus>> {
    let mut out = Vec::with_capacity(probes.len());
    for p in probes {
        let id: Option<i64> = conn
            .query_row("SELECT id FROM probe WHERE name = ?1", [p.name], |r| {
                r.get(0)
            })
            .optional()?;
        let (last, uptime) = match id {
            None => (None, None),
            Some(id) => (
                last_result(conn, id, p.name)?,
                uptime(conn, id, now_ms - 86_400_000)?,
            ),
        };
        out.push(ProbeStatus {
            name: p.name.to_string(),
            kind: p.kind.to_string(),
            target: p.target.clone(),
            state: state_of(last.as_ref()),
            last_result: last,
            outage: None,
            uptime_24h: uptime,
        });
    }
    Ok(out)
}

/// The state a last result implies.
fn state_of(last: Option<&ProbeResult>) -> &'static str {
    match last.map(|r| r.status) {
        None | Some(Status::Offline) => "unknown",
        Some(s) if s.is_usable() => "operational",
        Some(s) if s.needs_action() => "action_needed",
        Some(_) => "outage",
    }
}

fn last_result(conn: &Connection, id: i64, name: &str) -> rusqlite::Result<Option<ProbeResult>> {
    conn.query_row(
        "SELECT ?2, at, status, latency_ms, ttft_ms, http_status, error, detail \
         FROM result WHERE probe_id = ?1 ORDER BY at DESC LIMIT 1",
        rusqlite::params![id, name],
        row_to_result,
    )
    .optional()
}

/// Usable / (usable + failing) since `since_ms`; user-side and offline
/// results say nothing about DeepSeek and are left out.
fn uptime(conn: &Connection, id: i64, since_ms: i64) -> rusqlite::Result<Option<f64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, count(*) FROM result WHERE probe_id = ?1 AND at >= ?2 GROUP BY status",
    )?;
    let (mut good, mut bad) = (0u64, 0u64);
    for row in stmt.query_map(rusqlite::params![id, since_ms], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (code, n) = row?;
        let n = u64::try_from(n).unwrap_or(0);
        match Status::from_code(code) {
            Some(s) if s.is_usable() => good += n,
            Some(s) if s.counts_toward_outage() => bad += n,
            _ => {}
        }
    }
    Ok((good + bad > 0).then(|| good as f64 / (good + bad) as f64))
}
