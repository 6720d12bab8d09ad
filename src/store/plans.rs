//! Query plans: every statement the history commands run is captured as it
//! runs and explained, and none may read `result` or `rollup` from end to
//! end. A full scan is harmless on a test database and takes seconds on a
//! year of results, so this is the test that keeps queries fast.

use std::cell::RefCell;
use std::collections::BTreeSet;

use rusqlite::Connection;
use rusqlite::trace::{TraceEvent, TraceEventCodes};

use super::fixture::{self, ms};
use super::{note, query, record, retention, rollup, stats};
use crate::result::Status;

thread_local! {
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn seen(ev: TraceEvent<'_>) {
    if let TraceEvent::Stmt(stmt, sql) = ev {
        let sql = stmt.expanded_sql().unwrap_or_else(|| sql.to_string());
        SEEN.with(|s| s.borrow_mut().push(sql));
    }
}

/// Every distinct statement `f` runs on `conn`, with its parameters
/// expanded in place.
fn capture(conn: &mut Connection, f: impl FnOnce(&Connection)) -> BTreeSet<String> {
    SEEN.with(|s| s.borrow_mut().clear());
    conn.trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(seen));
    f(conn);
    conn.trace_v2(TraceEventCodes::empty(), None);
    SEEN.with(|s| s.borrow_mut().drain(..).collect())
}

/// The plan's lines for one statement.
fn plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    stmt.query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// A full scan of a big table: `SCAN result`, `SCAN r` (its alias), or the
/// same of `rollup` or `note`, with or without a covering index.
fn full_scan(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("SCAN ") else {
        return false;
    };
    let table = rest.split_whitespace().next().unwrap_or("");
    matches!(table, "result" | "r" | "rollup" | "ru" | "note" | "n")
}

fn populated() -> (tempfile::TempDir, Connection) {
    let (dir, mut conn) = fixture::db();
    let t0 = ms(2026, 3, 1, 0, 0, 0);
    for name in ["web", "api", "balance"] {
        let rows: Vec<_> = (0..2000)
            .map(|i| {
                let st = if i % 50 < 3 { Status::Busy } else { Status::Up };
                (t0 + i * 30_000, st, Some(200 + (i % 300) as u32))
            })
            .collect();
        fixture::write(&mut conn, name, &rows);
        fixture::outage(&conn, name, t0 + 3_600_000, Some(t0 + 4_000_000));
        fixture::outage(&conn, name, t0 + 50_000_000, None);
    }
    (dir, conn)
}

#[test]
fn history_queries_never_scan_results_or_rollups() {
    let (_dir, mut conn) = populated();
    let t0 = ms(2026, 3, 1, 0, 0, 0);
    let now = t0 + 2000 * 30_000;
    let mut sqls = BTreeSet::new();
    let zone = crate::tz::Zone::utc();
    for probe in [None, Some("api".to_string())] {
        for since in [None, Some(t0 + 1_234_567)] {
            for until in [None, Some(now - 777_777)] {
                for status in [None, Some(Status::Busy)] {
                    for limit in [None, Some(100)] {
                        let f = query::ResultFilter {
                            probe: probe.clone(),
                            since_ms: since,
                            until_ms: until,
                            status,
                            limit,
                        };
                        sqls.extend(capture(&mut conn, |c| {
                            query::results(c, &f).unwrap();
                        }));
                    }
                }
                for open_only in [false, true] {
                    let f = query::OutageFilter {
                        probe: probe.clone(),
                        since_ms: since,
                        until_ms: until,
                        open_only,
                    };
                    sqls.extend(capture(&mut conn, |c| {
                        query::outages(c, &f).unwrap();
                    }));
                }
            }
            for by_hour in [None, Some(&zone)] {
                let q = stats::StatsQuery {
                    probe: probe.clone(),
                    since_ms: since,
                    until_ms: now,
                    by_hour,
                };
                sqls.extend(capture(&mut conn, |c| {
                    stats::stats(c, &q).unwrap();
                }));
            }
        }
    }
    let described = [query::Described {
        name: "api",
        kind: "http",
        target: "x".into(),
    }];
    sqls.extend(capture(&mut conn, |c| {
        query::status(c, &described, now).unwrap();
    }));
    sqls.extend(capture(&mut conn, |c| {
        retention::delete_batch(c, 1, t0 + 3_600_000).unwrap();
    }));
    // The writer's statements that read: a result's note, found or added.
    sqls.extend(capture(&mut conn, |c| {
        let tx = c.unchecked_transaction().unwrap();
        let mut batch = rollup::Batch::default();
        let mut notes = note::Notes::default();
        for (i, (error, detail)) in [(None, Some("2 models")), (Some("busy"), None)]
            .into_iter()
            .enumerate()
        {
            let rec = record::Recorded {
                result: crate::result::ProbeResult {
                    probe: "api".into(),
                    at: query::from_ms(now + i as i64),
                    status: Status::Up,
                    latency_ms: Some(100),
                    ttft_ms: None,
                    http_status: Some(200),
                    error: error.map(String::from),
                    detail: detail.map(String::from),
                },
                state: Default::default(),
                changes: vec![],
            };
            record::write(&tx, 2, &rec, &Default::default(), &mut batch, &mut notes).unwrap();
        }
        batch.flush(&tx).unwrap();
        tx.commit().unwrap();
    }));

    let mut bad = Vec::new();
    let mut explained = 0;
    for sql in &sqls {
        let head = sql.trim_start().to_ascii_uppercase();
        if !(head.starts_with("SELECT") || head.starts_with("DELETE")) {
            continue;
        }
        explained += 1;
        let lines = plan(&conn, sql);
        if lines.iter().any(|l| full_scan(l)) {
            bad.push(format!("{sql}\n    {}", lines.join("\n    ")));
        }
    }
    if std::env::var_os("SHOW_PLANS").is_some() {
        for sql in &sqls {
            eprintln!("{sql}\n    {}", plan(&conn, sql).join("\n    "));
        }
    }
    assert!(explained >= 10, "only {explained} statements seen");
    assert!(bad.is_empty(), "full scans:\n{}", bad.join("\n"));
}

#[test]
fn the_scan_detector_recognises_scans() {
    assert!(full_scan("SCAN result"));
    assert!(full_scan("SCAN r USING COVERING INDEX x"));
    assert!(!full_scan(
        "SEARCH r USING PRIMARY KEY (probe_id=? AND at>?)"
    ));
    assert!(!full_scan("SCAN p"));
}
