//! The `stats` query: per probe, over a time window, counts per status,
//! uptime, latency percentiles, outages and (optionally) the unavailable
//! share per local hour of the day.
//!
//! Whole hours come from the hourly rollups, which exist for all of
//! history; a partial hour at either edge of the window comes from raw
//! results when that hour's raw results are all still there. When retention
//! has taken them, the whole hour is counted from its rollup and the
//! reported `since` (or `until`) moves to the hour's edge: the output always
//! says exactly which span it counted. So a year of 30 s results is ~9 000
//! rollup rows per probe, whether or not its raw rows are kept.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::query::from_ms;
use super::rollup::{self, HOUR_MS, QUARTER_MS, Rollup};
use crate::result::Status;
use crate::tz::{Zone, local_hour};

/// What to compute. Times are Unix milliseconds; the window is
/// `[since_ms, until_ms)`.
#[derive(Debug, Clone)]
pub struct StatsQuery<'a> {
    /// Only this probe (by name); `None`: every probe in the database.
    pub probe: Option<String>,
    /// `None`: from the first result on record.
    pub since_ms: Option<i64>,
    pub until_ms: i64,
    /// With a zone: the unavailable share per hour of the day there.
    pub by_hour: Option<&'a Zone>,
}

/// The `stats` JSON shape of design.md.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Start of the span counted; `null` when nothing was recorded.
    #[serde(serialize_with = "rfc3339_opt")]
    pub since: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::result::rfc3339")]
    pub until: DateTime<Utc>,
    pub probes: Vec<ProbeStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeStats {
    pub name: String,
    /// Every result in the window, whatever its status.
    pub results: u64,
    /// usable / (usable + failing), as `status`'s `uptime_24h`: user-side
    /// and `offline` results say nothing about DeepSeek.
    pub uptime_ratio: Option<f64>,
    pub status_counts: StatusCounts,
    /// Time to response headers of the usable results.
    pub latency_ms: Percentiles,
    /// Outages overlapping the window (as `outages --since` lists them).
    pub outages: u64,
    /// Median length of those that ended, whole seconds.
    pub median_outage_secs: Option<i64>,
    /// 24 rows, hour 0 to 23 in the requested zone; `null` without `--by-hour`.
    pub by_hour: Option<Vec<HourStats>>,
}

/// Results per status, every status listed (zeros too) in design.md order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusCounts(pub [u64; Status::ALL.len()]);

impl StatusCounts {
    pub fn get(&self, s: Status) -> u64 {
        self.0[usize::from(s.code())]
    }
}

impl Serialize for StatusCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(Status::ALL.len()))?;
        for st in Status::ALL {
            m.serialize_entry(st.as_str(), &self.get(st))?;
        }
        m.end()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<u32>,
    pub p95: Option<u32>,
    pub p99: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourStats {
    pub hour: u8,
    pub results: u64,
    /// failing / (usable + failing) in that hour of the day.
    pub unavailable_ratio: Option<f64>,
}

fn rfc3339_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => crate::result::rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// Whether the database has rollups (schema 3 or later): an older one is
/// upgraded when the daemon next opens it.
pub fn ready(conn: &Connection) -> rusqlite::Result<bool> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(v >= 3)
}

/// Names of every probe with a history, oldest first.
pub fn probe_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached("SELECT name FROM probe ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// Computes the stats of `q`. An unknown `q.probe` gives no probes.
pub fn stats(conn: &Connection, q: &StatsQuery<'_>) -> rusqlite::Result<Stats> {
    let probes: Vec<(i64, String)> = conn
        .prepare_cached("SELECT id, name FROM probe WHERE ?1 IS NULL OR name = ?1 ORDER BY id")?
        .query_map([&q.probe], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut since: Option<i64> = None;
    let mut until = q.until_ms;
    let mut out = Vec::with_capacity(probes.len());
    for (id, name) in probes {
        let mut acc = Acc::new(q.by_hour);
        let span = acc.read(conn, id, q.since_ms, q.until_ms)?;
        if let Some((s, u)) = span {
            since = Some(since.map_or(s, |x| x.min(s)));
            until = until.max(u);
        }
        let (outages, median) = outages(conn, id, q.since_ms, q.until_ms)?;
        out.push(acc.finish(name, outages, median));
    }
    Ok(Stats {
        since: since.or(q.since_ms).map(from_ms),
        until: from_ms(until),
        probes: out,
    })
}

/// One probe's counts as they are read.
struct Acc<'z> {
    total: Rollup,
    zone: Option<OffsetCache<'z>>,
    /// Per local hour of the day: results, usable, failing.
    hours: [[u64; 3]; 24],
}

impl<'z> Acc<'z> {
    fn new(zone: Option<&'z Zone>) -> Self {
        Acc {
            total: Rollup::default(),
            zone: zone.map(OffsetCache::new),
            hours: [[0; 3]; 24],
        }
    }

    /// Reads `[since, until)`; returns the span actually counted (wider
    /// when an edge hour's raw results are gone), `None` if nothing was.
    fn read(
        &mut self,
        conn: &Connection,
        id: i64,
        since: Option<i64>,
        until: i64,
    ) -> rusqlite::Result<Option<(i64, i64)>> {
        let since = match since {
            Some(s) => s,
            None => {
                let first: Option<i64> = conn
                    .prepare_cached("SELECT min(hour) FROM rollup WHERE probe_id = ?1")?
                    .query_row([id], |r| r.get(0))?;
                match first {
                    Some(h) => h * HOUR_MS,
                    None => return Ok(None),
                }
            }
        };
        if since >= until {
            return Ok(Some((since, until)));
        }
        let (first, last) = (rollup::hour_of(since), rollup::hour_of(until - 1));
        let (partial_since, partial_until) = (
            since.rem_euclid(HOUR_MS) != 0,
            until.rem_euclid(HOUR_MS) != 0,
        );
        let (mut lo, mut hi) = (since, until);
        if first == last && (partial_since || partial_until) {
            if !self.edge(conn, id, first, since, until)? {
                (lo, hi) = (first * HOUR_MS, (first + 1) * HOUR_MS);
            }
            return Ok(Some((lo, hi)));
        }
        let (mut whole_from, mut whole_to) = (first, last + 1);
        if partial_since {
            if !self.edge(conn, id, first, since, (first + 1) * HOUR_MS)? {
                lo = first * HOUR_MS;
            }
            whole_from = first + 1;
        }
        if partial_until {
            if !self.edge(conn, id, last, last * HOUR_MS, until)? {
                hi = (last + 1) * HOUR_MS;
            }
            whole_to = last;
        }
        if whole_from < whole_to {
            self.rollups(conn, id, whole_from, whole_to)?;
        }
        Ok(Some((lo, hi)))
    }

    /// Counts `[from, to)` within `hour` from raw results if the hour's raw
    /// results are complete, and returns true; else counts the whole hour
    /// from its rollup and returns false.
    fn edge(
        &mut self,
        conn: &Connection,
        id: i64,
        hour: i64,
        from: i64,
        to: i64,
    ) -> rusqlite::Result<bool> {
        let rolled: i64 = conn
            .prepare_cached("SELECT results FROM rollup WHERE probe_id = ?1 AND hour = ?2")?
            .query_row(params![id, hour], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let raw: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM result WHERE probe_id = ?1 AND at >= ?2 AND at < ?3",
            )?
            .query_row(params![id, hour * HOUR_MS, (hour + 1) * HOUR_MS], |r| {
                r.get(0)
            })?;
        if raw < rolled {
            self.rollups(conn, id, hour, hour + 1)?;
            return Ok(false);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT at, status, latency_ms FROM result WHERE probe_id = ?1 AND at >= ?2 AND at < ?3",
        )?;
        let mut rows = stmt.query(params![id, from, to])?;
        while let Some(row) = rows.next()? {
            let at: i64 = row.get(0)?;
            let Some(status) = Status::from_code(row.get(1)?) else {
                continue;
            };
            self.total.add(at, status, row.get(2)?);
            if let Some(z) = &mut self.zone {
                let h = &mut self.hours[usize::from(z.hour(at))];
                h[0] += 1;
                h[1] += u64::from(status.is_usable());
                h[2] += u64::from(status.counts_toward_outage());
            }
        }
        Ok(true)
    }

    /// Adds the rollups of hours `[from, to)`.
    fn rollups(&mut self, conn: &Connection, id: i64, from: i64, to: i64) -> rusqlite::Result<()> {
        let mut stmt = conn.prepare_cached(
            "SELECT hour, data FROM rollup WHERE probe_id = ?1 AND hour >= ?2 AND hour < ?3",
        )?;
        let mut rows = stmt.query(params![id, from, to])?;
        while let Some(row) = rows.next()? {
            let hour: i64 = row.get(0)?;
            let data = row.get_ref(1)?.as_blob()?;
            let quarters = self.total.add_encoded(data).map_err(rollup::sql_error)?;
            if let Some(z) = &mut self.zone {
                for (i, q) in quarters.iter().enumerate() {
                    // The middle of the quarter hour: exact for every offset
                    // in use (all are whole quarter hours).
                    let mid = hour * HOUR_MS + i as i64 * QUARTER_MS + QUARTER_MS / 2;
                    let h = &mut self.hours[usize::from(z.hour(mid))];
                    for (a, b) in h.iter_mut().zip(q) {
                        *a += b;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self, name: String, outages: u64, median_outage_secs: Option<i64>) -> ProbeStats {
        let mut counts = StatusCounts::default();
        for st in Status::ALL {
            counts.0[usize::from(st.code())] = self.total.count(st);
        }
        let (usable, failing) = self.total.usable_failing();
        ProbeStats {
            name,
            results: self.total.results(),
            uptime_ratio: ratio(usable, usable + failing),
            status_counts: counts,
            latency_ms: Percentiles {
                p50: self.total.percentile(50.0),
                p95: self.total.percentile(95.0),
                p99: self.total.percentile(99.0),
            },
            outages,
            median_outage_secs,
            by_hour: self.zone.map(|_| {
                self.hours
                    .iter()
                    .enumerate()
                    .map(|(h, [n, u, f])| HourStats {
                        hour: h as u8,
                        results: *n,
                        unavailable_ratio: ratio(*f, u + f),
                    })
                    .collect()
            }),
        }
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A zone's offset, looked up again only when time leaves the span it
/// holds for: rollups are read in time order, so that is rare.
struct OffsetCache<'z> {
    zone: &'z Zone,
    span: (i32, i64, i64),
}

impl<'z> OffsetCache<'z> {
    fn new(zone: &'z Zone) -> Self {
        OffsetCache {
            zone,
            span: (0, 0, 0),
        }
    }

    /// The local hour of the day at `ms`.
    fn hour(&mut self, ms: i64) -> u8 {
        let secs = ms.div_euclid(1000);
        if !(self.span.1..self.span.2).contains(&secs) {
            self.span = self.zone.span_at(secs);
        }
        local_hour(secs, self.span.0)
    }
}

/// Outages of `id` overlapping `[since, until)` and the median length of
/// those that ended.
fn outages(
    conn: &Connection,
    id: i64,
    since: Option<i64>,
    until: i64,
) -> rusqlite::Result<(u64, Option<i64>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT started_at, ended_at FROM outage WHERE probe_id = ?1 AND started_at < ?3 \
         AND (ended_at IS NULL OR ended_at >= ?2)",
    )?;
    let rows = stmt.query_map(params![id, since.unwrap_or(i64::MIN), until], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
    })?;
    let mut n = 0;
    let mut lengths = Vec::new();
    for row in rows {
        let (start, end) = row?;
        n += 1;
        if let Some(end) = end {
            lengths.push(end - start);
        }
    }
    Ok((n, median(&mut lengths).map(|ms| ms / 1000)))
}

/// The median; of an even count, the mean of the middle two (rounded down).
pub fn median(v: &mut [i64]) -> Option<i64> {
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some(v[n / 2 - 1] + (v[n / 2] - v[n / 2 - 1]) / 2),
    }
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
