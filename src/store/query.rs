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
///
/// Each probe is read on its own along the `(probe, time)` key, newest
/// first, so `--limit` stops early and no query walks the whole table. With
/// a status filter, the rollups name the hours that hold that status, so a
/// rare status over a year reads those hours only.
pub fn results(conn: &Connection, f: &ResultFilter) -> rusqlite::Result<Vec<ProbeResult>> {
    let probes: Vec<(i64, String)> = conn
        .prepare_cached("SELECT id, name FROM probe WHERE ?1 IS NULL OR name = ?1")?
        .query_map([&f.probe], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let since = f.since_ms.unwrap_or(i64::MIN);
    let until = f.until_ms.unwrap_or(i64::MAX);
    let limit = f.limit.unwrap_or(usize::MAX);
    let prune = f.status.is_some() && super::stats::ready(conn)?;
    let (words, join) = words(conn)?;
    let sql = format!(
        "SELECT ?4, r.at, r.status, r.latency_ms, r.ttft_ms, r.http_status, {words} FROM result r{join} \
         WHERE r.probe_id = ?1 AND r.at >= ?2 AND r.at < ?3 AND (?5 IS NULL OR r.status = ?5) \
         ORDER BY r.at DESC LIMIT ?6"
    );
    let mut rows: Vec<ProbeResult> = Vec::new();
    for (id, name) in probes {
        let ranges = match f.status {
            Some(st) if prune => status_ranges(conn, id, st, since, until)?,
            _ => vec![(since, until)],
        };
        let mut got = 0;
        for (lo, hi) in ranges {
            if got >= limit {
                break;
            }
            let left = i64::try_from(limit - got).unwrap_or(i64::MAX);
            let mut stmt = conn.prepare_cached(&sql)?;
            let code = f.status.map(|s| i64::from(s.code()));
            let before = rows.len();
            for row in stmt.query_map(
                rusqlite::params![id, lo, hi, name, code, left],
                row_to_result,
            )? {
                rows.push(row?);
            }
            got += rows.len() - before;
        }
    }
    // Newest first across probes, keep the limit, then oldest first.
    rows.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.probe.cmp(&b.probe)));
    rows.truncate(limit);
    rows.reverse();
    Ok(rows)
}

/// The spans within `[since, until)` whose hours hold results of `status`,
/// newest first, consecutive hours merged.
fn status_ranges(
    conn: &Connection,
    id: i64,
    status: Status,
    since: i64,
    until: i64,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    use super::rollup::{HOUR_MS, hour_of};
    let mut stmt = conn.prepare_cached(
        "SELECT hour, data FROM rollup WHERE probe_id = ?1 AND hour >= ?2 AND hour <= ?3 ORDER BY hour DESC",
    )?;
    let mut rows = stmt.query(rusqlite::params![
        id,
        hour_of(since),
        hour_of(until.saturating_sub(1))
    ])?;
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    while let Some(row) = rows.next()? {
        let hour: i64 = row.get(0)?;
        let data = row.get_ref(1)?.as_blob()?;
        if super::rollup::count_in(data, status).map_err(super::rollup::sql_error)? == 0 {
            continue;
        }
        let (lo, hi) = (hour * HOUR_MS, (hour + 1) * HOUR_MS);
        match ranges.last_mut() {
            Some(last) if last.0 == hi => last.0 = lo,
            _ => ranges.push((lo, hi)),
        }
    }
    Ok(ranges
        .into_iter()
        .map(|(lo, hi)| (lo.max(since), hi.min(until)))
        .collect())
}

/// Where a result's error and detail are read from, as the select list's
/// last two columns and the join they need: its note (schema 4 on), or its
/// own columns in a database the daemon has not upgraded yet (the CLI reads
/// but never migrates). The result table is `r`.
fn words(conn: &Connection) -> rusqlite::Result<(&'static str, &'static str)> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(if v >= 4 {
        ("n.error, n.detail", " LEFT JOIN note n ON n.id = r.note_id")
    } else {
        ("r.error, r.detail", "")
    })
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
    pub outage: Option<OutageRow>,
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
    let words = words(conn)?;
    for p in probes {
        let id: Option<i64> = conn
            .query_row("SELECT id FROM probe WHERE name = ?1", [p.name], |r| {
                r.get(0)
            })
            .optional()?;
        let (last, uptime, outage) = match id {
            None => (None, None, None),
            Some(id) => (
                last_result(conn, words, id, p.name)?,
                uptime(conn, id, now_ms - 86_400_000)?,
                open_outage(conn, id)?,
            ),
        };
        out.push(ProbeStatus {
            name: p.name.to_string(),
            kind: p.kind.to_string(),
            target: p.target.clone(),
            state: state_of(last.as_ref(), outage.is_some()),
            last_result: last,
            outage,
            uptime_24h: uptime,
        });
    }
    Ok(out)
}

/// A probe's state: in outage while the tracker has one open; else what its
/// last conclusive result says. Failures below the threshold are not (yet)
/// an outage: the probe is still operational.
fn state_of(last: Option<&ProbeResult>, in_outage: bool) -> &'static str {
    if in_outage {
        return "outage";
    }
    match last.map(|r| r.status) {
        None | Some(Status::Offline) => "unknown",
        Some(s) if s.needs_action() => "action_needed",
        Some(_) => "operational",
    }
}

fn last_result(
    conn: &Connection,
    (words, join): (&str, &str),
    id: i64,
    name: &str,
) -> rusqlite::Result<Option<ProbeResult>> {
    conn.prepare_cached(&format!(
        "SELECT ?2, r.at, r.status, r.latency_ms, r.ttft_ms, r.http_status, {words} \
         FROM result r{join} WHERE r.probe_id = ?1 ORDER BY r.at DESC LIMIT 1"
    ))?
    .query_row(rusqlite::params![id, name], row_to_result)
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

/// One outage, in design.md's `outages` JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutageRow {
    pub id: i64,
    pub probe: String,
    #[serde(serialize_with = "crate::result::rfc3339")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub ended_at: Option<DateTime<Utc>>,
    /// `null` while the outage is open.
    pub duration_secs: Option<i64>,
    pub cause: Status,
    pub failed_results: i64,
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => crate::result::rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// Filters of `deepseek-watch outages`. An outage matches a time window when
/// it overlaps it.
#[derive(Debug, Clone, Default)]
pub struct OutageFilter {
    pub probe: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub open_only: bool,
}

/// Outages matching `f`, oldest first.
pub fn outages(conn: &Connection, f: &OutageFilter) -> rusqlite::Result<Vec<OutageRow>> {
    let mut sql = String::from(
        "SELECT o.id, p.name, o.started_at, o.ended_at, o.cause, o.failed_results \
         FROM outage o JOIN probe p ON p.id = o.probe_id WHERE 1",
    );
    let mut args: Vec<Value> = Vec::new();
    if let Some(name) = &f.probe {
        sql.push_str(" AND o.probe_id = (SELECT id FROM probe WHERE name = ?)");
        args.push(Value::Text(name.clone()));
    }
    if let Some(s) = f.since_ms {
        sql.push_str(" AND (o.ended_at IS NULL OR o.ended_at >= ?)");
        args.push(Value::Integer(s));
    }
    if let Some(u) = f.until_ms {
        sql.push_str(" AND o.started_at < ?");
        args.push(Value::Integer(u));
    }
    if f.open_only {
        sql.push_str(" AND o.ended_at IS NULL");
    }
    sql.push_str(" ORDER BY o.started_at, o.id");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), row_to_outage)?;
    rows.collect()
}

fn row_to_outage(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutageRow> {
    let started: i64 = r.get(2)?;
    let ended: Option<i64> = r.get(3)?;
    Ok(OutageRow {
        id: r.get(0)?,
        probe: r.get(1)?,
        started_at: from_ms(started),
        ended_at: ended.map(from_ms),
        duration_secs: ended.map(|e| (e - started) / 1000),
        cause: Status::from_code(r.get(4)?).unwrap_or(Status::Down),
        failed_results: r.get(5)?,
    })
}

fn open_outage(conn: &Connection, probe_id: i64) -> rusqlite::Result<Option<OutageRow>> {
    conn.query_row(
        "SELECT o.id, p.name, o.started_at, o.ended_at, o.cause, o.failed_results \
         FROM outage o JOIN probe p ON p.id = o.probe_id WHERE o.probe_id = ?1 AND o.ended_at IS NULL",
        [probe_id],
        row_to_outage,
    )
    .optional()
}

/// One event's delivery to one channel, in design.md's `notifications` shape.
/// An event no channel subscribed to appears once, with `channel` null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationRow {
    pub delivery_id: Option<String>,
    pub event: String,
    pub probe: Option<String>,
    pub channel: Option<String>,
    #[serde(serialize_with = "crate::result::rfc3339")]
    pub created_at: DateTime<Utc>,
    pub state: Option<String>,
    pub attempts: i64,
    #[serde(serialize_with = "rfc3339_opt")]
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The event's one-line message (table only).
    #[serde(skip)]
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub since_ms: Option<i64>,
    /// `pending`, `delivered` or `failed`.
    pub state: Option<String>,
}

pub fn notifications(
    conn: &Connection,
    f: &NotificationFilter,
) -> rusqlite::Result<Vec<NotificationRow>> {
    let mut sql = String::from(
        "SELECT d.id, e.kind, p.name, d.channel, e.created_at, d.state, coalesce(d.attempts, 0), d.delivered_at, \
         d.last_error, e.message FROM event e LEFT JOIN delivery d ON d.event_id = e.id \
         LEFT JOIN probe p ON p.id = e.probe_id WHERE 1",
    );
    let mut args: Vec<Value> = Vec::new();
    if let Some(s) = f.since_ms {
        sql.push_str(" AND e.created_at >= ?");
        args.push(Value::Integer(s));
    }
    if let Some(st) = &f.state {
        sql.push_str(" AND d.state = ?");
        args.push(Value::Text(st.clone()));
    }
    sql.push_str(" ORDER BY e.created_at, e.id, d.channel");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(NotificationRow {
            delivery_id: r.get(0)?,
            event: r.get(1)?,
            probe: r.get(2)?,
            channel: r.get(3)?,
            created_at: from_ms(r.get(4)?),
            state: r.get(5)?,
            attempts: r.get(6)?,
            delivered_at: r.get::<_, Option<i64>>(7)?.map(from_ms),
            last_error: r.get(8)?,
            message: r.get(9)?,
        })
    })?;
    rows.collect()
}
