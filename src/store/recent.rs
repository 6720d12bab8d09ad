//! The probe's recent past, read when an outage opens or closes so that its
//! alert can say how long outages usually last and how often this hour of
//! the day is busy (`notify::message::History`).
//!
//! Read inside the writer's transaction: a handful of index seeks, cheap
//! enough to run on every outage event.

use rusqlite::{Connection, OptionalExtension, params};

use crate::notify::message::History;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// "How long do outages usually last" looks this far back.
const LENGTH_WINDOW_MS: i64 = 30 * DAY_MS;
/// "How often is this hour busy" looks at this many days before today.
const HOUR_DAYS: i64 = 28;

/// The history for an outage of `probe_id` that started at `started_ms`;
/// `this_outage` is left out of the lengths.
pub fn history(
    conn: &Connection,
    probe_id: i64,
    started_ms: i64,
    this_outage: Option<i64>,
) -> rusqlite::Result<History> {
    let recent_secs = conn
        .prepare_cached(
            "SELECT (ended_at - started_at) / 1000 FROM outage \
             WHERE probe_id = ?1 AND started_at >= ?2 AND started_at < ?3 \
               AND ended_at IS NOT NULL AND id IS NOT ?4",
        )?
        .query_map(
            params![
                probe_id,
                started_ms - LENGTH_WINDOW_MS,
                started_ms,
                this_outage
            ],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<Vec<i64>>>()?;

    let hour_start = started_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let windows: Vec<i64> = (1..=HOUR_DAYS).map(|d| hour_start - d * DAY_MS).collect();
    let from = hour_start - HOUR_DAYS * DAY_MS;

    // The hourly rollups say whether the probe ran in an hour, and they
    // outlive the raw results (a retention shorter than 28 days).
    let mut ran = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM rollup WHERE probe_id = ?1 AND hour = ?2 AND results > 0)",
    )?;
    let mut observed = Vec::with_capacity(windows.len());
    for &w in &windows {
        observed.push(ran.query_row(params![probe_id, w / HOUR_MS], |r| r.get::<_, bool>(0))?);
    }

    // Outages of one probe never overlap, so besides those that started in
    // the window only the last one before it can reach into it.
    let mut spans = conn
        .prepare_cached(
            "SELECT started_at, ended_at FROM outage \
             WHERE probe_id = ?1 AND started_at >= ?2 AND started_at < ?3",
        )?
        .query_map(params![probe_id, from, hour_start], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let before = conn
        .prepare_cached(
            "SELECT started_at, ended_at FROM outage \
             WHERE probe_id = ?1 AND started_at < ?2 ORDER BY started_at DESC LIMIT 1",
        )?
        .query_row(params![probe_id, from], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
        })
        .optional()?;
    spans.extend(before);
    let spans: Vec<(i64, i64)> = spans
        .into_iter()
        .map(|(s, e)| (s, e.unwrap_or(started_ms)))
        .collect();

    let (hour_busy_days, hour_days) = busy_days(&windows, &observed, &spans);
    Ok(History {
        recent_secs,
        hour: u32::try_from(hour_start.div_euclid(HOUR_MS).rem_euclid(24)).unwrap_or(0),
        hour_busy_days,
        hour_days,
    })
}

/// Of the hour-long `windows` in which the probe ran (`observed`), how many
/// overlap an outage span `[start, end)`; and how many were observed.
fn busy_days(windows: &[i64], observed: &[bool], spans: &[(i64, i64)]) -> (u32, u32) {
    let mut busy = 0;
    let mut days = 0;
    for (&w, &seen) in windows.iter().zip(observed) {
        if !seen {
            continue;
        }
        days += 1;
        if spans.iter().any(|&(s, e)| s < w + HOUR_MS && e > w) {
            busy += 1;
        }
    }
    (busy, days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::Status;
    use crate::store::fixture::{self, ms};

    #[test]
    fn reads_lengths_and_busy_hours_from_the_database() {
        let (_dir, mut conn) = fixture::db();
        let now = ms(2026, 12, 4, 14, 5, 0);
        // The probe ran at 14:xx on days 1..=10 before; outages overlapped
        // 14:xx on days 2 and 5 (the second one only by reaching into it).
        let rows: Vec<_> = (1..=10)
            .map(|d| (now - d * DAY_MS, Status::Up, Some(100)))
            .collect();
        fixture::write(&mut conn, "api", &rows);
        let id = fixture::probe(&conn, "api");
        fixture::outage(
            &conn,
            "api",
            now - 2 * DAY_MS - 60_000,
            Some(now - 2 * DAY_MS + 600_000),
        );
        fixture::outage(
            &conn,
            "api",
            now - 5 * DAY_MS - 2 * HOUR_MS,
            Some(now - 5 * DAY_MS - 300_000 + 60_000),
        );
        // Too old for the 30-day lengths.
        fixture::outage(
            &conn,
            "api",
            now - 40 * DAY_MS,
            Some(now - 40 * DAY_MS + 1000),
        );
        // The outage this alert is about: still open, not a past length.
        fixture::outage(&conn, "api", now, None);

        let h = history(&conn, id, now, None).unwrap();
        let mut lengths = h.recent_secs.clone();
        lengths.sort_unstable();
        assert_eq!(lengths, vec![660, 2 * 3600 - 240]);
        assert_eq!(h.hour, 14);
        assert_eq!((h.hour_busy_days, h.hour_days), (2, 10));
    }

    #[test]
    fn counts_only_observed_days_and_overlapping_spans() {
        let windows = [10 * DAY_MS, 9 * DAY_MS, 8 * DAY_MS, 7 * DAY_MS];
        let observed = [true, true, false, true];
        let spans = [
            // Ends exactly when the first window starts: no overlap.
            (10 * DAY_MS - HOUR_MS, 10 * DAY_MS),
            // Reaches one minute into the second window.
            (9 * DAY_MS - HOUR_MS, 9 * DAY_MS + 60_000),
            // Inside the unobserved third window: not counted.
            (8 * DAY_MS + 1, 8 * DAY_MS + 2),
            // Covers the fourth window whole.
            (7 * DAY_MS - DAY_MS, 7 * DAY_MS + DAY_MS),
        ];
        assert_eq!(busy_days(&windows, &observed, &spans), (2, 3));
        assert_eq!(busy_days(&windows, &[false; 4], &spans), (0, 0));
        assert_eq!(busy_days(&windows, &observed, &[]), (0, 3));
    }
}
