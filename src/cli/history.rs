//! `status` and `results`: read the history the daemon writes, read-only,
//! while it runs.

use anyhow::Context;
use chrono::Utc;

use super::output::{self, Cell};
use super::{EXIT_OK, ResultsArgs, UsageError, when};
use crate::config::Config;
use crate::result::Status;
use crate::store::{self, query};

fn open(cfg: &Config) -> anyhow::Result<rusqlite::Connection> {
    Ok(store::open_reader(&cfg.storage.path)?)
}

pub fn results(cfg: &Config, args: &ResultsArgs) -> anyhow::Result<u8> {
    let now = Utc::now();
    let status = match &args.status {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            UsageError(format!(
                "--status {s:?} is not a status; use one of: {}",
                Status::ALL.map(Status::as_str).join(", ")
            ))
        })?),
    };
    let since = args
        .since
        .as_deref()
        .map(|v| when::parse("--since", v, now))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|v| when::parse("--until", v, now))
        .transpose()?;
    let filter = query::ResultFilter {
        probe: args.probe.clone(),
        since_ms: since.map(|t| t.timestamp_millis()),
        until_ms: until.map(|t| t.timestamp_millis()),
        status,
        limit: (args.limit > 0).then_some(args.limit),
    };
    let conn = open(cfg)?;
    let rows = query::results(&conn, &filter).context("reading results")?;
    print!("{}", output::results(&rows, args.format));
    Ok(EXIT_OK)
}

pub fn status(cfg: &Config, json: bool) -> anyhow::Result<u8> {
    let conn = open(cfg)?;
    let described: Vec<query::Described<'_>> = cfg
        .probes
        .iter()
        .map(|p| query::Described {
            name: &p.name,
            kind: p.kind_name(),
            target: p.target(),
        })
        .collect();
    let now = Utc::now();
    let probes =
        query::status(&conn, &described, now.timestamp_millis()).context("reading status")?;
    if json {
        print!("{}", output::json(&serde_json::json!({ "probes": probes })));
        return Ok(EXIT_OK);
    }
    let rows = probes
        .iter()
        .map(|p| {
            let state = match p.state {
                "operational" => Cell::colored(p.state, "32"),
                "outage" => Cell::colored(p.state, "31"),
                "action_needed" => Cell::colored(p.state, "35"),
                _ => Cell::plain(p.state),
            };
            let (last, age, note) = match &p.last_result {
                Some(r) => (
                    Cell::status(r.status),
                    Cell::plain(ago(now - r.at)),
                    Cell::plain(output::note(r)),
                ),
                None => (Cell::plain("-"), Cell::plain("never"), Cell::plain("")),
            };
            vec![
                Cell::plain(&p.name),
                Cell::plain(&p.kind),
                state,
                last,
                age,
                Cell::plain(
                    p.uptime_24h
                        .map_or("-".to_string(), |u| format!("{:.2}%", u * 100.0)),
                ),
                Cell::plain(&p.target),
                note,
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(
            &[
                "PROBE",
                "KIND",
                "STATE",
                "LAST",
                "AGE",
                "UPTIME 24H",
                "TARGET",
                "NOTE"
            ],
            rows,
            output::color_enabled()
        )
    );
    Ok(EXIT_OK)
}

/// "42s ago", "3m ago", "5h ago", "2d ago".
fn ago(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}
