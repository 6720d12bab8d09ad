//! `stats`: per probe, uptime, counts per status, latency percentiles and
//! outages over a window; with `--by-hour`, how often each hour of the day
//! (in `--tz`) was unavailable. JSON follows design.md (`by_hour` is `null`
//! without `--by-hour`); CSV has one row per probe, or with `--by-hour` one
//! row per probe and hour of the day.

use anyhow::Context;
use chrono::Utc;

use super::output::{self, Cell, Format};
use super::{EXIT_OK, StatsArgs, UsageError, when};
use crate::config::Config;
use crate::notify::message;
use crate::result::{Status, format_time};
use crate::store::{self, stats};
use crate::tz::Zone;

pub fn run(cfg: &Config, args: &StatsArgs) -> anyhow::Result<u8> {
    let now = Utc::now();
    let since = args
        .since
        .as_deref()
        .map(|v| when::parse("--since", v, now))
        .transpose()?;
    let zone = if args.by_hour {
        Some(Zone::load(&args.tz).map_err(|e| UsageError(format!("--tz: {e}")))?)
    } else {
        None
    };
    let conn = store::open_reader(&cfg.storage.path)?;
    if !stats::ready(&conn).context("reading the schema version")? {
        anyhow::bail!(
            "the database {} predates `stats`: start the daemon once (`deepseek-watch run`) to upgrade it, then retry",
            cfg.storage.path.display()
        );
    }
    let q = stats::StatsQuery {
        probe: args.probe.clone(),
        since_ms: since.map(|t| t.timestamp_millis()),
        until_ms: now.timestamp_millis(),
        by_hour: zone.as_ref(),
    };
    let s = stats::stats(&conn, &q).context("computing stats")?;
    if let (Some(p), true) = (&args.probe, s.probes.is_empty()) {
        let known = stats::probe_names(&conn).context("listing probes")?;
        return Err(UsageError(format!(
            "--probe {p:?}: no history for that probe; probes with history: {}",
            if known.is_empty() {
                "none yet".to_string()
            } else {
                known.join(", ")
            }
        ))
        .into());
    }
    let out = match args.format {
        Format::Json => output::json(&s),
        Format::Csv if args.by_hour => csv_by_hour(&s),
        Format::Csv => csv(&s),
        Format::Table => table(&s, zone.as_ref()),
    };
    print!("{out}");
    Ok(EXIT_OK)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn percent(r: Option<f64>) -> String {
    r.map_or("-".to_string(), |r| format!("{:.2}%", r * 100.0))
}

fn csv(s: &stats::Stats) -> String {
    let mut head = vec!["probe".to_string(), "results".into(), "uptime_ratio".into()];
    head.extend(Status::ALL.map(|st| st.as_str().to_string()));
    head.extend(
        [
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "outages",
            "median_outage_secs",
        ]
        .map(String::from),
    );
    let mut out = output::csv_line(&head);
    for p in &s.probes {
        let mut row = vec![p.name.clone(), p.results.to_string(), opt(p.uptime_ratio)];
        row.extend(Status::ALL.map(|st| p.status_counts.get(st).to_string()));
        row.extend([
            opt(p.latency_ms.p50),
            opt(p.latency_ms.p95),
            opt(p.latency_ms.p99),
            p.outages.to_string(),
            opt(p.median_outage_secs),
        ]);
        out.push_str(&output::csv_line(&row));
    }
    out
}

fn csv_by_hour(s: &stats::Stats) -> String {
    let mut out =
        output::csv_line(&["probe", "hour", "results", "unavailable_ratio"].map(String::from));
    for p in &s.probes {
        for h in p.by_hour.iter().flatten() {
            out.push_str(&output::csv_line(&[
                p.name.clone(),
                h.hour.to_string(),
                h.results.to_string(),
                opt(h.unavailable_ratio),
            ]));
        }
    }
    out
}

fn ms(v: Option<u32>) -> String {
    v.map_or("-".to_string(), |v| format!("{v} ms"))
}

fn table(s: &stats::Stats, zone: Option<&Zone>) -> String {
    let color = output::color_enabled();
    let mut out = format!(
        "{} to {} (UTC)\n",
        s.since.as_ref().map_or("start".to_string(), format_time),
        format_time(&s.until)
    );
    if s.probes.is_empty() {
        out.push_str("no probes have history yet\n");
        return out;
    }
    let rows = s
        .probes
        .iter()
        .map(|p| {
            let counts = Status::ALL
                .iter()
                .filter(|st| p.status_counts.get(**st) > 0)
                .map(|st| format!("{st} {}", p.status_counts.get(*st)))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                Cell::plain(&p.name),
                Cell::plain(p.results.to_string()),
                Cell::plain(percent(p.uptime_ratio)),
                Cell::plain(ms(p.latency_ms.p50)),
                Cell::plain(ms(p.latency_ms.p95)),
                Cell::plain(ms(p.latency_ms.p99)),
                Cell::plain(p.outages.to_string()),
                Cell::plain(
                    p.median_outage_secs
                        .map_or("-".to_string(), message::duration),
                ),
                Cell::plain(counts),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &[
            "PROBE",
            "RESULTS",
            "UPTIME",
            "P50",
            "P95",
            "P99",
            "OUTAGES",
            "MEDIAN OUTAGE",
            "STATUSES",
        ],
        rows,
        color,
    ));
    let Some(zone) = zone else {
        return out;
    };
    for p in &s.probes {
        let hours = p.by_hour.as_deref().unwrap_or_default();
        let worst = hours
            .iter()
            .filter_map(|h| h.unavailable_ratio)
            .fold(0.0, f64::max);
        out.push_str(&format!("\n{} by hour of day ({}):\n", p.name, zone.name()));
        let rows = hours
            .iter()
            .map(|h| {
                let bar = h
                    .unavailable_ratio
                    .filter(|_| worst > 0.0)
                    .map_or(0, |r| (r / worst * 30.0).round() as usize);
                vec![
                    Cell::plain(format!("{:02}:00", h.hour)),
                    Cell::plain(h.results.to_string()),
                    Cell::plain(percent(h.unavailable_ratio)),
                    Cell::colored("#".repeat(bar), "31"),
                ]
            })
            .collect();
        out.push_str(&output::table(
            &["HOUR", "RESULTS", "UNAVAILABLE", "VS WORST HOUR"],
            rows,
            color,
        ));
    }
    out
}
