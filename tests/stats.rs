//! `stats` through the real binary: after `run` recorded results from the
//! DeepSeek stand-in, and on history written through the store API, before
//! and after retention drops the raw results.

mod common;

use std::time::{Duration, Instant};

use chrono::TimeZone;
use common::{Daemon, DeepSeek, Reply, Setup};
use deepseek_watch::outage::TrackerState;
use deepseek_watch::result::{ProbeResult, Status};
use deepseek_watch::store::{self, note, record, retention, rollup};
use serde_json::Value;

fn json(setup: &Setup, args: &[&str]) -> Value {
    let out = setup.cmd().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn probe<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

#[test]
fn stats_after_run_match_the_recorded_results() {
    let ds = DeepSeek::start_in_thread();
    ds.set(
        "/busy/chat/completions",
        Reply::api_error(503, "Server overloaded, please try again later."),
    );
    let setup = Setup::new(&format!(
        "[connectivity]\ncanaries = [\"{web}\"]\n\n[defaults]\ninterval = \"1s\"\noutage_interval = \"1s\"\n\n\
         [[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"{web}\"\n\n\
         [[probe]]\nname = \"api\"\nkind = \"chat\"\nmodel = \"deepseek-flash\"\nbase_url = \"{busy}\"\napi_key = {{ file = \"key\" }}\n",
        web = ds.url("/"),
        busy = ds.url("/busy"),
    ));
    let daemon = Daemon::start(&setup);
    let start = Instant::now();
    loop {
        if setup.db.exists() {
            let s = json(&setup, &["stats", "--format", "json"]);
            let done = ["web", "api"].iter().all(|n| {
                s["probes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == *n && p["results"].as_u64().unwrap_or(0) >= 4)
            });
            if done && probe(&s, "api")["outages"] == 1 {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not enough results after 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _) = daemon.stop(Duration::from_secs(15));
    assert!(status.success());

    let results = json(&setup, &["results", "--limit", "0", "--format", "json"]);
    let count = |name: &str| {
        results
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["probe"] == name)
            .count() as u64
    };
    let s = json(&setup, &["stats", "--format", "json"]);
    assert!(s["since"].is_string() && s["until"].is_string(), "{s}");
    let web = probe(&s, "web");
    for key in [
        "name",
        "results",
        "uptime_ratio",
        "status_counts",
        "latency_ms",
        "outages",
        "median_outage_secs",
        "by_hour",
    ] {
        assert!(web.get(key).is_some(), "stats lacks {key}: {web}");
    }
    assert_eq!(web["results"], count("web"));
    assert_eq!(web["uptime_ratio"], 1.0);
    assert_eq!(web["status_counts"]["up"], count("web"));
    assert!(web["latency_ms"]["p50"].is_u64(), "{web}");
    assert!(web["by_hour"].is_null());
    let api = probe(&s, "api");
    assert_eq!(api["results"], count("api"));
    assert_eq!(api["status_counts"]["busy"], count("api"));
    assert_eq!(api["uptime_ratio"], 0.0);
    assert!(api["latency_ms"]["p50"].is_null());
    assert_eq!(api["outages"], 1);
    assert!(api["median_outage_secs"].is_null(), "still open");

    // By hour of the day in a zone: 24 rows that add up. (Zones come from
    // the system's tz database; without it, only UTC is known.)
    let zone = if std::path::Path::new("/usr/share/zoneinfo/Asia/Shanghai").exists() {
        "Asia/Shanghai"
    } else {
        "UTC"
    };
    let s = json(
        &setup,
        &[
            "stats",
            "--probe",
            "api",
            "--since",
            "1h",
            "--by-hour",
            "--tz",
            zone,
            "--format",
            "json",
        ],
    );
    assert_eq!(s["probes"].as_array().unwrap().len(), 1);
    let hours = s["probes"][0]["by_hour"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let total: u64 = hours.iter().map(|h| h["results"].as_u64().unwrap()).sum();
    assert_eq!(total, count("api"));
    assert!(
        hours
            .iter()
            .filter(|h| h["results"] != 0)
            .all(|h| h["unavailable_ratio"] == 1.0)
    );

    // Table and CSV.
    let out = setup.cmd().args(["stats", "--by-hour"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("PROBE") && table.contains("api by hour of day (UTC)"),
        "{table}"
    );
    let out = setup
        .cmd()
        .args(["stats", "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.starts_with("probe,results,uptime_ratio,up,slow,busy,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // Bad usage: exit 2 with the way out.
    for (args, says) in [
        (&["stats", "--by-hour", "--tz", "Mars/Base"][..], "IANA"),
        (&["stats", "--tz", "Asia/Shanghai"][..], "--by-hour"),
        (&["stats", "--probe", "nope"][..], "web, api"),
        (&["stats", "--since", "yesterday"][..], "RFC 3339"),
    ] {
        let out = setup.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// Writes results the way the daemon's writer does: rows and rollups in one
/// transaction.
fn write(conn: &mut rusqlite::Connection, name: &str, rows: &[(i64, Status, Option<u32>)]) {
    let id: i64 = conn
        .query_row("SELECT id FROM probe WHERE name = ?1", [name], |r| r.get(0))
        .unwrap();
    let tx = conn.transaction().unwrap();
    let mut batch = rollup::Batch::default();
    let mut notes = note::Notes::default();
    for (at, status, latency) in rows {
        let rec = record::Recorded {
            result: ProbeResult {
                probe: name.into(),
                at: chrono::Utc.timestamp_millis_opt(*at).unwrap(),
                status: *status,
                latency_ms: *latency,
                ttft_ms: None,
                http_status: None,
                error: None,
                detail: None,
            },
            state: TrackerState::default(),
            changes: vec![],
        };
        record::write(
            &tx,
            id,
            &rec,
            &record::Routing::default(),
            &mut batch,
            &mut notes,
        )
        .unwrap();
    }
    batch.flush(&tx).unwrap();
    tx.commit().unwrap();
}

#[test]
fn stats_read_rollups_once_retention_dropped_the_raw_results() {
    let setup =
        Setup::new("[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\n");
    let mut conn = store::open_writer(&setup.db).unwrap();
    conn.execute(
        "INSERT INTO probe (name, kind, target) VALUES ('web', 'http', 'x')",
        [],
    )
    .unwrap();
    // Four days, one result a minute: the first of every ten busy, latencies
    // 1..=9 ms for the rest.
    let hour = 3_600_000;
    let now = chrono::Utc::now().timestamp_millis();
    let t0 = (now / hour - 4 * 24) * hour;
    let rows: Vec<_> = (0..4 * 24 * 60)
        .map(|i: i64| {
            let at = t0 + i * 60_000;
            match i % 10 {
                0 => (at, Status::Busy, None),
                k => (at, Status::Up, Some(k as u32)),
            }
        })
        .collect();
    write(&mut conn, "web", &rows);

    let since = chrono::Utc
        .timestamp_millis_opt(t0 + 24 * hour)
        .unwrap()
        .to_rfc3339();
    let args = ["stats", "--since", &since, "--format", "json"];
    let before = json(&setup, &args);
    let web = probe(&before, "web");
    let n = 3 * 24 * 60;
    assert_eq!(web["results"], n);
    assert_eq!(web["status_counts"]["busy"], n / 10);
    assert_eq!(web["uptime_ratio"], 0.9);
    // Of the 9 latencies 1..=9 each equally often: p50 is 5, p95 and p99 are 9.
    assert_eq!(web["latency_ms"]["p50"], 5);
    assert_eq!(web["latency_ms"]["p95"], 9);
    assert_eq!(web["latency_ms"]["p99"], 9);

    // Keep one day of raw results: two of the three days queried are
    // rollups only now, and the answer is the same.
    let deleted = retention::purge(&conn, Duration::from_secs(86_400), now).unwrap();
    assert!(deleted >= 3 * 24 * 60 - 60, "{deleted}");
    drop(conn);
    let after = json(&setup, &args);
    assert_eq!(probe(&after, "web"), probe(&before, "web"));
    assert_eq!(after["since"], before["since"]);
}
