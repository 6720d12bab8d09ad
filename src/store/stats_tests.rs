//! `stats` against hand-computed values, across the retention boundary and
//! across summer-time changes.

use std::time::Duration;

use rusqlite::Connection;

use super::*;
use crate::store::fixture::{self, ms};
use crate::store::{query, retention};
use crate::tz::Zone;

const DAY: i64 = 86_400_000;

fn run(conn: &Connection, probe: &str, since: Option<i64>, until: i64) -> ProbeStats {
    let q = StatsQuery {
        probe: Some(probe.into()),
        since_ms: since,
        until_ms: until,
        by_hour: None,
    };
    stats(conn, &q).unwrap().probes.remove(0)
}

fn by_hour(conn: &Connection, zone: &Zone, since: Option<i64>, until: i64) -> Vec<HourStats> {
    let q = StatsQuery {
        probe: None,
        since_ms: since,
        until_ms: until,
        by_hour: Some(zone),
    };
    stats(conn, &q).unwrap().probes.remove(0).by_hour.unwrap()
}

#[test]
fn counts_ratios_percentiles_and_outages_match_hand_computed_values() {
    let (_dir, mut conn) = fixture::db();
    let h0 = ms(2026, 5, 4, 10, 0, 0);
    let mut rows = Vec::new();
    let mut add =
        |st: Status, lat: Option<u32>| rows.push((h0 + rows.len() as i64 * 60_000, st, lat));
    for lat in [5, 7, 9, 11, 13] {
        add(Status::Up, Some(lat));
    }
    add(Status::Slow, Some(30));
    add(Status::Slow, Some(31));
    add(Status::Busy, Some(1)); // failing: not a latency sample
    add(Status::Busy, Some(1));
    add(Status::Timeout, None);
    add(Status::Offline, None);
    add(Status::AuthError, Some(2));
    fixture::write(&mut conn, "api", &rows);
    fixture::outage(&conn, "api", h0 - 10 * DAY, Some(h0 - 9 * DAY)); // before the window
    fixture::outage(&conn, "api", h0 - DAY, Some(h0 - DAY + 60_000));
    fixture::outage(&conn, "api", h0 - DAY / 2, Some(h0 - DAY / 2 + 120_500));
    fixture::outage(&conn, "api", h0 - 3_600_000, Some(h0 - 3_300_000));
    fixture::outage(&conn, "api", h0 + 1_800_000, None);

    let p = run(&conn, "api", Some(h0 - 2 * DAY), h0 + 3_600_000);
    assert_eq!(p.results, 12);
    // usable 7 / (usable 7 + failing 3); offline and auth_error say nothing.
    assert_eq!(p.uptime_ratio, Some(0.7));
    assert_eq!(p.status_counts.get(Status::Up), 5);
    assert_eq!(p.status_counts.get(Status::Busy), 2);
    assert_eq!(p.status_counts.get(Status::RateLimited), 0);
    // Nearest rank over [5 7 9 11 13 30 31]: ranks 4, 7, 7.
    assert_eq!(
        p.latency_ms,
        Percentiles {
            p50: Some(11),
            p95: Some(31),
            p99: Some(31)
        }
    );
    // Four overlap the window; the median of 60 s, 120.5 s and 300 s.
    assert_eq!(p.outages, 4);
    assert_eq!(p.median_outage_secs, Some(120));
    assert!(p.by_hour.is_none());

    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["status_counts"].as_object().unwrap().len(), 11);
    assert_eq!(json["status_counts"]["rate_limited"], 0);
    assert_eq!(json["latency_ms"]["p50"], 11);
    assert!(json["by_hour"].is_null());

    // The same window read as one partial hour from raw rows.
    let p = run(&conn, "api", Some(h0 + 60_000), h0 + 7 * 60_000);
    assert_eq!(p.results, 6);
    assert_eq!(p.latency_ms.p50, Some(11));
}

#[test]
fn median_of_odd_and_even_counts() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [5]), Some(5));
    assert_eq!(median(&mut [9, 1, 5]), Some(5));
    assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
}

/// Three days of 30 s results with a mix of statuses and latencies.
fn three_days(conn: &mut Connection, t0: i64) -> Vec<(i64, Status, Option<u32>)> {
    let rows: Vec<_> = (0..3 * 2880)
        .map(|i: i64| {
            let st = if i % 17 == 0 {
                Status::Busy
            } else if i % 101 == 0 {
                Status::Timeout
            } else if i % 89 == 0 {
                Status::Slow
            } else {
                Status::Up
            };
            let lat = (!matches!(st, Status::Timeout)).then(|| 100 + (i * 7919 % 2000) as u32);
            (t0 + i * 30_000, st, lat)
        })
        .collect();
    fixture::write(conn, "web", &rows);
    rows
}

/// Exact nearest-rank percentile of `v`.
fn exact(v: &mut [u32], p: f64) -> u32 {
    v.sort_unstable();
    v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

#[test]
fn stats_across_the_retention_boundary_agree_with_raw_results() {
    let (_dir, mut conn) = fixture::db();
    let t0 = ms(2026, 1, 10, 0, 0, 0);
    let now = t0 + 3 * DAY;
    let rows = three_days(&mut conn, t0);
    let aligned = t0 + 5 * 3_600_000;
    let unaligned = aligned + 20 * 60_000;
    let kept = t0 + 2 * DAY + 7 * 3_600_000 + 10 * 60_000;
    let before: Vec<_> = [None, Some(aligned), Some(unaligned), Some(kept)]
        .map(|s| run(&conn, "web", s, now))
        .into();

    // What the raw results say, computed here by brute force.
    for (since, got) in [
        (t0, &before[0]),
        (unaligned, &before[2]),
        (kept, &before[3]),
    ] {
        let window: Vec<_> = rows.iter().filter(|r| r.0 >= since && r.0 < now).collect();
        assert_eq!(got.results, window.len() as u64);
        let busy = window.iter().filter(|r| r.1 == Status::Busy).count() as u64;
        assert_eq!(got.status_counts.get(Status::Busy), busy);
        let mut lats: Vec<u32> = window
            .iter()
            .filter(|r| r.1.is_usable())
            .filter_map(|r| r.2)
            .collect();
        for (p, v) in [(50.0, got.latency_ms.p50), (99.0, got.latency_ms.p99)] {
            let want = f64::from(exact(&mut lats, p));
            let v = f64::from(v.unwrap());
            assert!((v - want).abs() <= want / 32.0, "p{p}: {v} vs {want}");
        }
    }

    let deleted = retention::purge(&conn, Duration::from_secs(86_400), now).unwrap();
    assert_eq!(deleted, 2 * 2880);
    let raw: i64 = conn
        .query_row("SELECT count(*) FROM result", [], |r| r.get(0))
        .unwrap();
    assert_eq!(raw, 2880);

    let after: Vec<_> = [None, Some(aligned), Some(unaligned), Some(kept)]
        .map(|s| run(&conn, "web", s, now))
        .into();
    for i in [0, 1, 3] {
        assert_eq!(
            serde_json::to_value(&after[i]).unwrap(),
            serde_json::to_value(&before[i]).unwrap()
        );
    }
    // --since inside an hour whose raw rows are gone: the whole hour counts,
    // and the reported since says so.
    assert_eq!(after[2].results, before[2].results + 40);
    let q = StatsQuery {
        probe: None,
        since_ms: Some(unaligned),
        until_ms: now,
        by_hour: None,
    };
    assert_eq!(stats(&conn, &q).unwrap().since, Some(from_ms(aligned)));
}

#[test]
fn retention_keeps_an_open_outage_and_a_failure_streak() {
    let (_dir, mut conn) = fixture::db();
    let t0 = ms(2026, 1, 10, 0, 0, 0);
    let now = t0 + 3 * DAY;
    three_days(&mut conn, t0);
    let rows: Vec<_> = (0..3 * 288)
        .map(|i| (t0 + i * 300_000, Status::Busy, None))
        .collect();
    fixture::write(&mut conn, "api", &rows);
    fixture::write(&mut conn, "balance", &rows);
    let outage_start = t0 + DAY + 3 * 3_600_000 + 150_000;
    fixture::outage(&conn, "web", outage_start, None);
    fixture::outage(&conn, "api", t0 + 600_000, Some(t0 + 900_000)); // closed: no protection
    let streak = crate::outage::TrackerState {
        fail_streak: 2,
        fail_started_ms: Some(t0 + DAY / 2),
        ..Default::default()
    };
    conn.execute(
        "INSERT OR REPLACE INTO tracker (probe_id, state) VALUES (?1, ?2)",
        rusqlite::params![
            fixture::probe(&conn, "balance"),
            serde_json::to_string(&streak).unwrap()
        ],
    )
    .unwrap();
    let pages_before: i64 = conn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();

    retention::purge(&conn, Duration::from_secs(3600), now).unwrap();
    let oldest = |name: &str| -> i64 {
        conn.query_row(
            "SELECT min(at) FROM result WHERE probe_id = (SELECT id FROM probe WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(oldest("web"), outage_start);
    assert_eq!(oldest("balance"), t0 + DAY / 2);
    assert_eq!(oldest("api"), now - 3_600_000);
    // Rollups are never deleted.
    assert_eq!(run(&conn, "web", None, now).results, 3 * 2880);
    // Freed pages went back to the file system.
    let free: i64 = conn
        .pragma_query_value(None, "freelist_count", |r| r.get(0))
        .unwrap();
    let pages_after: i64 = conn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0);
    assert!(
        pages_after < pages_before,
        "{pages_after} >= {pages_before}"
    );
}

#[test]
fn retention_deletes_in_small_batches() {
    let (_dir, mut conn) = fixture::db();
    let t0 = ms(2026, 1, 10, 0, 0, 0);
    three_days(&mut conn, t0);
    let id = fixture::probe(&conn, "web");
    assert_eq!(
        retention::delete_batch(&conn, id, t0 + 3 * DAY).unwrap() as i64,
        retention::BATCH_ROWS
    );
    let mut r = retention::Retention::new(Duration::from_secs(86_400), t0 + 3 * DAY);
    let mut steps = 0;
    loop {
        r.step(&conn, t0 + 3 * DAY);
        steps += 1;
        if !r.due(t0 + 3 * DAY) {
            break;
        }
    }
    assert!(steps >= 2, "{steps}");
    // Not due again within the hour.
    assert!(!r.due(t0 + 3 * DAY + 60_000));
    assert!(r.due(t0 + 3 * DAY + 3_600_000));
}

#[test]
fn by_hour_follows_summer_time_in_new_york() {
    let (_dir, mut conn) = fixture::db();
    let mut rows = Vec::new();
    // Every 15 minutes: 7 March (EST, UTC-5), 8 March (spring forward at
    // 07:00 UTC), 9 March (EDT, UTC-4), 1 November (fall back at 06:00 UTC).
    for (d, m, hours) in [(7, 3, 10..16), (8, 3, 5..9), (9, 3, 10..16), (1, 11, 4..7)] {
        for h in hours {
            for q in 0..4 {
                let busy = m == 3 && d != 8 && h == 12;
                let st = if busy { Status::Busy } else { Status::Up };
                rows.push((ms(2026, m, d, h, q * 15, 0), st, Some(100)));
            }
        }
    }
    fixture::write(&mut conn, "api", &rows);
    let until = ms(2026, 12, 1, 0, 0, 0);
    let ny = Zone::from_posix("America/New_York", "EST5EDT,M3.2.0,M11.1.0").unwrap();
    let check = |hours: &[HourStats]| {
        // 12:00 UTC is 07:00 on 7 March and 08:00 on 9 March.
        assert_eq!(hours[7].results, 8);
        assert_eq!(hours[7].unavailable_ratio, Some(0.5));
        assert_eq!(hours[8].unavailable_ratio, Some(0.5));
        assert_eq!(hours[6].unavailable_ratio, Some(0.0));
        // 02:00 never happened on 8 March; 01:00 happened twice on 1 November,
        // plus 01:00 EST on 8 March.
        assert_eq!(hours[2].results, 0);
        assert_eq!(hours[2].unavailable_ratio, None);
        assert_eq!(hours[1].results, 12);
        assert_eq!(hours[3].results, 4);
    };
    check(&by_hour(&conn, &ny, None, until));
    if let Ok(system) = Zone::load("America/New_York") {
        check(&by_hour(&conn, &system, None, until));
    }
    // In UTC, all the trouble is at 12:00.
    let utc = by_hour(&conn, &Zone::utc(), None, until);
    assert_eq!(utc[12].unavailable_ratio, Some(1.0));
    // Partial edge hours are read from raw rows, each at its own local hour.
    let edge = by_hour(&conn, &ny, Some(ms(2026, 3, 7, 12, 30, 0)), until);
    assert_eq!(edge[7].results, 2 + 4);
    assert_eq!(edge[7].unavailable_ratio, Some(2.0 / 6.0));
}

#[test]
fn by_hour_is_exact_in_half_hour_zones() {
    let (_dir, mut conn) = fixture::db();
    // 00:00-01:00 UTC is 05:30-06:30 in Kolkata: busy for its first half.
    let rows: Vec<_> = (0..12)
        .map(|i| {
            let st = if i < 6 { Status::Busy } else { Status::Up };
            (ms(2026, 7, 15, 0, i * 5, 0), st, Some(50))
        })
        .collect();
    fixture::write(&mut conn, "api", &rows);
    let kolkata = Zone::from_posix("Asia/Kolkata", "IST-5:30").unwrap();
    let until = ms(2026, 7, 16, 0, 0, 0);
    for (since, first) in [(None, 6), (Some(ms(2026, 7, 15, 0, 0, 1)), 5)] {
        let hours = by_hour(&conn, &kolkata, since, until);
        assert_eq!(hours[5].results, first);
        assert_eq!(hours[5].unavailable_ratio, Some(1.0));
        assert_eq!(hours[6].results, 6);
        assert_eq!(hours[6].unavailable_ratio, Some(0.0));
    }
}

#[test]
fn results_with_a_status_filter_read_only_hours_that_hold_it() {
    let (_dir, mut conn) = fixture::db();
    let t0 = ms(2026, 1, 10, 0, 0, 0);
    let rows = three_days(&mut conn, t0);
    let other: Vec<_> = rows.iter().map(|r| (r.0 + 1, r.1, r.2)).collect();
    fixture::write(&mut conn, "api", &other);
    for status in [Status::Busy, Status::Timeout, Status::BillingError] {
        for (since, limit) in [(None, None), (Some(t0 + DAY + 1234), Some(7))] {
            let f = query::ResultFilter {
                status: Some(status),
                since_ms: since,
                limit,
                ..Default::default()
            };
            let got = query::results(&conn, &f).unwrap();
            let mut want: Vec<i64> = rows
                .iter()
                .chain(&other)
                .filter(|r| r.1 == status && since.is_none_or(|s| r.0 >= s))
                .map(|r| r.0)
                .collect();
            want.sort_unstable();
            if let Some(n) = limit {
                want.drain(..want.len().saturating_sub(n));
            }
            let got: Vec<i64> = got.iter().map(|r| r.at.timestamp_millis()).collect();
            assert_eq!(got, want, "{status} since {since:?} limit {limit:?}");
        }
    }
}
