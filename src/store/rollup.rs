//! Hourly rollups: per probe and UTC hour, the counts per status, per
//! quarter hour, and a latency histogram. They let `stats` cover years from
//! ~9 000 small rows per probe and year, and they outlive raw results, which
//! retention deletes.
//!
//! Kept correct by construction: the writer adds each result to a [`Batch`]
//! as it inserts it and [`Batch::flush`]es the batch (one read-modify-write
//! per probe and hour touched, not per result) in the same transaction, so
//! a rollup counts exactly the results that committed, across crashes and
//! restarts. [`rebuild`] recomputes hours from raw results, for databases
//! that had results before rollups existed and for tools that insert raw rows.
//!
//! Encoding of `rollup.data` (unsigned LEB128 varints after a version byte):
//! `1`, a bit mask of the status codes present, their counts in code order,
//! then per quarter hour `results usable failing`, then the number of
//! non-empty latency buckets and for each the gap from the previous bucket
//! and its count. An hour of 120 results takes 40-90 bytes (about 100 on
//! disk with its key): under 1 byte per result.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::result::Status;

const FORMAT: u8 = 1;
/// Status codes a rollup can count (codes are 0..=10 today).
const CODES: usize = 16;
/// Latencies below this are bucketed exactly.
const EXACT: u32 = 32;
/// Sub-buckets per power of two above [`EXACT`]: at most 1/32 (3 %) off.
const SUB_BITS: u32 = 4;
/// Buckets for every `u32` latency.
pub const BUCKETS: usize = EXACT as usize + (32 - 5) * (1 << SUB_BITS);

pub const HOUR_MS: i64 = 3_600_000;
pub const QUARTER_MS: i64 = 900_000;

/// The UTC hour (since the epoch) holding `at_ms`.
pub fn hour_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(HOUR_MS)
}

/// The histogram bucket of a latency.
pub fn bucket(ms: u32) -> usize {
    if ms < EXACT {
        return ms as usize;
    }
    let e = ms.ilog2(); // >= 5
    let sub = (ms >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    EXACT as usize + ((e - 5) << SUB_BITS) as usize + sub as usize
}

/// The latency a bucket stands for: the middle of its range.
pub fn bucket_value(b: usize) -> u32 {
    if b < EXACT as usize {
        return b as u32;
    }
    let i = (b - EXACT as usize) as u32;
    let e = 5 + (i >> SUB_BITS);
    let sub = i & ((1 << SUB_BITS) - 1);
    let width = 1u64 << (e - SUB_BITS);
    let low = (1u64 << e) + u64::from(sub) * width;
    u32::try_from(low + (width - 1) / 2).unwrap_or(u32::MAX)
}

/// Results of one quarter hour: all of them, the usable, the failing.
pub type Quarter = [u64; 3];

/// What one probe did in one hour (or, merged, over any span).
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    counts: [u64; CODES],
    pub quarters: [Quarter; 4],
    latency: Vec<u64>,
}

impl Default for Rollup {
    fn default() -> Self {
        Rollup {
            counts: [0; CODES],
            quarters: [[0; 3]; 4],
            latency: vec![0; BUCKETS],
        }
    }
}

/// A `rollup.data` value this version cannot read.
#[derive(Debug, thiserror::Error)]
#[error(
    "unreadable rollup data ({0}); the database may be damaged: run `PRAGMA integrity_check` on it"
)]
pub struct DecodeError(&'static str);

impl Rollup {
    /// Counts one result. Only usable results enter the latency histogram:
    /// a 503 answers fast and would make a bad hour look quick.
    pub fn add(&mut self, at_ms: i64, status: Status, latency_ms: Option<u32>) {
        self.counts[usize::from(status.code())] += 1;
        let q = &mut self.quarters[at_ms.rem_euclid(HOUR_MS).div_euclid(QUARTER_MS) as usize];
        q[0] += 1;
        if status.is_usable() {
            q[1] += 1;
            if let Some(ms) = latency_ms {
                self.latency[bucket(ms)] += 1;
            }
        } else if status.counts_toward_outage() {
            q[2] += 1;
        }
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &Rollup) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        for (qa, qb) in self.quarters.iter_mut().zip(other.quarters) {
            for (a, b) in qa.iter_mut().zip(qb) {
                *a += b;
            }
        }
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
    }

    /// Every result counted.
    pub fn results(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn count(&self, s: Status) -> u64 {
        self.counts[usize::from(s.code())]
    }

    /// The results that said DeepSeek worked, and those that said it did not.
    pub fn usable_failing(&self) -> (u64, u64) {
        Status::ALL.iter().fold((0, 0), |(u, f), s| {
            if s.is_usable() {
                (u + self.count(*s), f)
            } else if s.counts_toward_outage() {
                (u, f + self.count(*s))
            } else {
                (u, f)
            }
        })
    }

    /// The nearest-rank `p`-th percentile (0 < p <= 100) of the usable
    /// results' latencies, to the histogram's precision; `None` without any.
    pub fn percentile(&self, p: f64) -> Option<u32> {
        let n: u64 = self.latency.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0 * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (b, c) in self.latency.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_value(b));
            }
        }
        None
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        let mask = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .fold(0u64, |m, (i, _)| m | 1 << i);
        put(&mut out, mask);
        for c in self.counts.iter().filter(|c| **c > 0) {
            put(&mut out, *c);
        }
        for q in &self.quarters {
            for v in q {
                put(&mut out, *v);
            }
        }
        let used: Vec<(usize, u64)> = self
            .latency
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, c)| (b, *c))
            .collect();
        put(&mut out, used.len() as u64);
        let mut next = 0;
        for (b, c) in used {
            put(&mut out, (b - next) as u64);
            put(&mut out, c);
            next = b + 1;
        }
        out
    }

    /// Adds an encoded rollup to `self` and returns its quarter hours (which
    /// a caller maps to local hours of the day).
    pub fn add_encoded(&mut self, data: &[u8]) -> Result<[Quarter; 4], DecodeError> {
        let mut r = Reader { data, at: 0 };
        if r.byte()? != FORMAT {
            return Err(DecodeError("unknown format version"));
        }
        let mask = r.varint()?;
        for (i, c) in self.counts.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *c += r.varint()?;
            }
        }
        if mask >> CODES != 0 {
            return Err(DecodeError("unknown status code"));
        }
        let mut quarters = [[0; 3]; 4];
        for (q, mine) in quarters.iter_mut().zip(self.quarters.iter_mut()) {
            for (v, m) in q.iter_mut().zip(mine.iter_mut()) {
                *v = r.varint()?;
                *m += *v;
            }
        }
        let used = r.varint()?;
        let mut next = 0usize;
        for _ in 0..used {
            let b = next + usize::try_from(r.varint()?).map_err(|_| DecodeError("bucket"))?;
            let slot = self
                .latency
                .get_mut(b)
                .ok_or(DecodeError("latency bucket out of range"))?;
            *slot += r.varint()?;
            next = b + 1;
        }
        Ok(quarters)
    }

    pub fn decode(data: &[u8]) -> Result<Rollup, DecodeError> {
        let mut r = Rollup::default();
        r.add_encoded(data)?;
        Ok(r)
    }
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.data.get(self.at).ok_or(DecodeError("truncated"))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long"))
    }
}

/// How many results of `status` an encoded rollup counts, reading only
/// its first bytes.
pub fn count_in(data: &[u8], status: Status) -> Result<u64, DecodeError> {
    let mut r = Reader { data, at: 0 };
    if r.byte()? != FORMAT {
        return Err(DecodeError("unknown format version"));
    }
    let mask = r.varint()?;
    let code = u32::from(status.code());
    if mask & (1 << code) == 0 {
        return Ok(0);
    }
    for _ in 0..(mask & ((1 << code) - 1)).count_ones() {
        r.varint()?;
    }
    r.varint()
}

/// A decode error as SQLite's, so it travels through `rusqlite::Result`.
pub fn sql_error(e: DecodeError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
}

/// Reads the stored rollup of one probe and hour.
pub fn load(conn: &Connection, probe_id: i64, hour: i64) -> rusqlite::Result<Option<Rollup>> {
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM rollup WHERE probe_id = ?1 AND hour = ?2")?
        .query_row(params![probe_id, hour], |r| r.get(0))
        .optional()?;
    data.map(|d| Rollup::decode(&d).map_err(sql_error))
        .transpose()
}

fn store(conn: &Connection, probe_id: i64, hour: i64, r: &Rollup) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO rollup (probe_id, hour, results, data) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(probe_id, hour) DO UPDATE SET results = excluded.results, data = excluded.data",
    )?
    .execute(params![
        probe_id,
        hour,
        i64::try_from(r.results()).unwrap_or(i64::MAX),
        r.encode()
    ])?;
    Ok(())
}

/// The results of one write transaction, summed per probe and hour in
/// memory, so a batch of thousands costs one upsert per hour touched.
#[derive(Debug, Default)]
pub struct Batch(HashMap<(i64, i64), Rollup>);

impl Batch {
    /// Counts a result as stored (`at_ms` is the stored key, after any
    /// same-millisecond nudge).
    pub fn add(&mut self, probe_id: i64, at_ms: i64, status: Status, latency_ms: Option<u32>) {
        self.0
            .entry((probe_id, hour_of(at_ms)))
            .or_default()
            .add(at_ms, status, latency_ms);
    }

    /// Adds the batch to the stored rollups. Call inside the transaction
    /// that inserted the results.
    pub fn flush(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        for ((probe_id, hour), add) in self.0 {
            let mut r = load(tx, probe_id, hour)?.unwrap_or_default();
            r.merge(&add);
            store(tx, probe_id, hour, &r)?;
        }
        Ok(())
    }
}

/// Recomputes the rollups of `probe_id` for hours `from_hour..to_hour` from
/// the raw results. Only correct for hours whose raw results are all still
/// there (not yet reached by retention).
pub fn rebuild(
    conn: &Connection,
    probe_id: i64,
    from_hour: i64,
    to_hour: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM rollup WHERE probe_id = ?1 AND hour >= ?2 AND hour < ?3")?
        .execute(params![probe_id, from_hour, to_hour])?;
    let mut stmt = conn.prepare_cached(
        "SELECT at, status, latency_ms FROM result WHERE probe_id = ?1 AND at >= ?2 AND at < ?3 ORDER BY at",
    )?;
    let mut rows = stmt.query(params![
        probe_id,
        from_hour.saturating_mul(HOUR_MS),
        to_hour.saturating_mul(HOUR_MS)
    ])?;
    let mut current: Option<(i64, Rollup)> = None;
    while let Some(row) = rows.next()? {
        let at: i64 = row.get(0)?;
        let Some(status) = Status::from_code(row.get(1)?) else {
            continue;
        };
        let hour = hour_of(at);
        match &mut current {
            Some((h, r)) if *h == hour => r.add(at, status, row.get(2)?),
            _ => {
                if let Some((h, r)) = current.take() {
                    store(conn, probe_id, h, &r)?;
                }
                let mut r = Rollup::default();
                r.add(at, status, row.get(2)?);
                current = Some((hour, r));
            }
        }
    }
    if let Some((h, r)) = current {
        store(conn, probe_id, h, &r)?;
    }
    Ok(())
}

/// Builds every rollup from raw results: the hook of the migration that
/// adds the table, so an upgraded database starts with complete rollups.
pub fn rebuild_all(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let ids: Vec<i64> = tx
        .prepare("SELECT id FROM probe")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        rebuild(tx, id, i64::MIN / HOUR_MS, i64::MAX / HOUR_MS)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_within_three_percent() {
        let mut last = 0;
        for ms in (0..5000).chain([65_535, 1_000_000, u32::MAX - 1, u32::MAX]) {
            let b = bucket(ms);
            assert!(b >= last && b < BUCKETS, "{ms}");
            last = b;
            let v = f64::from(bucket_value(b));
            assert!(
                (v - f64::from(ms)).abs() <= f64::from(ms) / 32.0,
                "{ms} -> {v}"
            );
        }
        for ms in 0..EXACT {
            assert_eq!(bucket_value(bucket(ms)), ms);
        }
        assert_eq!(bucket(u32::MAX), BUCKETS - 1);
    }

    #[test]
    fn encoding_round_trips_and_is_small() {
        let mut r = Rollup::default();
        let base = 1_780_000_000_000 / HOUR_MS * HOUR_MS;
        for i in 0..120 {
            let status = match i % 40 {
                0 => Status::Busy,
                1 => Status::Offline,
                _ => Status::Up,
            };
            r.add(base + i * 30_000, status, Some(800 + (i as u32 * 37) % 900));
        }
        let data = r.encode();
        assert!(data.len() < 100, "{} bytes", data.len());
        assert_eq!(Rollup::decode(&data).unwrap(), r);
        assert_eq!(r.results(), 120);
        assert_eq!(r.usable_failing(), (114, 3));
        assert_eq!(r.quarters[0], [30, 28, 1]);
        assert_eq!(
            Rollup::decode(&Rollup::default().encode()).unwrap(),
            Rollup::default()
        );
        assert!(Rollup::decode(&data[..data.len() - 1]).is_err());
        assert!(Rollup::decode(&[9]).is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut r = Rollup::default();
        for ms in 1..=20 {
            r.add(0, Status::Up, Some(ms));
        }
        // A failing result's latency is not counted.
        r.add(0, Status::Busy, Some(1));
        assert_eq!(r.percentile(50.0), Some(10));
        assert_eq!(r.percentile(95.0), Some(19));
        assert_eq!(r.percentile(99.0), Some(20));
        assert_eq!(Rollup::default().percentile(50.0), None);
    }
}
