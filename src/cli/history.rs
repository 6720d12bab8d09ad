//! `status` and `results`: read the history the daemon writes, read-only,
//! while it runs.

use anyhow::Context;
use chrono::Utc;

use super::output::{self, Cell};
use super::{
    DeliveryState, EXIT_OK, NotificationsArgs, OutagesArgs, ResultsArgs, UsageError, when,
};
use crate::config::Config;
use crate::notify::message;
use crate::result::Status;
use crate::result::format_time;
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
            let state = match &p.outage {
                Some(o) => Cell::colored(
                    format!(
                        "outage ({}, {})",
                        o.cause,
                        message::duration((now - o.started_at).num_seconds())
                    ),
                    "31",
                ),
                None => state,
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

fn window(
    since: &Option<String>,
    until: &Option<String>,
) -> Result<(Option<i64>, Option<i64>), UsageError> {
    let now = Utc::now();
    let since = since
        .as_deref()
        .map(|v| when::parse("--since", v, now))
        .transpose()?;
    let until = until
        .as_deref()
        .map(|v| when::parse("--until", v, now))
        .transpose()?;
    Ok((
        since.map(|t| t.timestamp_millis()),
        until.map(|t| t.timestamp_millis()),
    ))
}

fn opt_time(t: &Option<chrono::DateTime<Utc>>) -> String {
    t.as_ref().map(format_time).unwrap_or_default()
}

pub fn outages(cfg: &Config, args: &OutagesArgs) -> anyhow::Result<u8> {
    let (since_ms, until_ms) = window(&args.since, &args.until)?;
    let filter = query::OutageFilter {
        probe: args.probe.clone(),
        since_ms,
        until_ms,
        open_only: args.open,
    };
    let conn = open(cfg)?;
    let rows = query::outages(&conn, &filter).context("reading outages")?;
    let now = Utc::now();
    let out = match args.format {
        output::Format::Json => output::json(&rows),
        output::Format::Csv => {
            let mut out = output::csv_line(
                &[
                    "id",
                    "probe",
                    "started_at",
                    "ended_at",
                    "duration_secs",
                    "cause",
                    "failed_results",
                ]
                .map(String::from),
            );
            for o in &rows {
                out.push_str(&output::csv_line(&[
                    o.id.to_string(),
                    o.probe.clone(),
                    format_time(&o.started_at),
                    opt_time(&o.ended_at),
                    o.duration_secs.map(|d| d.to_string()).unwrap_or_default(),
                    o.cause.to_string(),
                    o.failed_results.to_string(),
                ]));
            }
            out
        }
        output::Format::Table if rows.is_empty() => "no outages match\n".to_string(),
        output::Format::Table => {
            let body = rows
                .iter()
                .map(|o| {
                    let duration = match o.duration_secs {
                        Some(d) => Cell::plain(message::duration(d)),
                        None => Cell::colored(
                            format!(
                                "ongoing, {} so far",
                                message::duration((now - o.started_at).num_seconds())
                            ),
                            "31",
                        ),
                    };
                    vec![
                        Cell::plain(o.id.to_string()),
                        Cell::plain(&o.probe),
                        Cell::plain(format_time(&o.started_at)),
                        Cell::plain(o.ended_at.as_ref().map_or("-".to_string(), format_time)),
                        duration,
                        Cell::status(o.cause),
                        Cell::plain(o.failed_results.to_string()),
                    ]
                })
                .collect();
            output::table(
                &[
                    "ID",
                    "PROBE",
                    "STARTED (UTC)",
                    "ENDED (UTC)",
                    "DURATION",
                    "CAUSE",
                    "FAILED",
                ],
                body,
                output::color_enabled(),
            )
        }
    };
    print!("{out}");
    Ok(EXIT_OK)
}

pub fn notifications(cfg: &Config, args: &NotificationsArgs) -> anyhow::Result<u8> {
    let (since_ms, _) = window(&args.since, &None)?;
    let filter = query::NotificationFilter {
        since_ms,
        state: args.state.map(|s| {
            match s {
                DeliveryState::Pending => "pending",
                DeliveryState::Delivered => "delivered",
                DeliveryState::Failed => "failed",
            }
            .to_string()
        }),
    };
    let conn = open(cfg)?;
    let rows = query::notifications(&conn, &filter).context("reading notifications")?;
    let out = match args.format {
        output::Format::Json => output::json(&rows),
        output::Format::Csv => {
            let mut out = output::csv_line(
                &[
                    "delivery_id",
                    "event",
                    "probe",
                    "channel",
                    "created_at",
                    "state",
                    "attempts",
                    "delivered_at",
                    "last_error",
                ]
                .map(String::from),
            );
            for n in &rows {
                out.push_str(&output::csv_line(&[
                    n.delivery_id.clone().unwrap_or_default(),
                    n.event.clone(),
                    n.probe.clone().unwrap_or_default(),
                    n.channel.clone().unwrap_or_default(),
                    format_time(&n.created_at),
                    n.state.clone().unwrap_or_default(),
                    n.attempts.to_string(),
                    opt_time(&n.delivered_at),
                    n.last_error.clone().unwrap_or_default(),
                ]));
            }
            out
        }
        output::Format::Table if rows.is_empty() => "no notifications match\n".to_string(),
        output::Format::Table => {
            let body = rows
                .iter()
                .map(|n| {
                    let state = match n.state.as_deref() {
                        Some("delivered") => Cell::colored("delivered", "32"),
                        Some("pending") => Cell::colored("pending", "33"),
                        Some("failed") => Cell::colored("failed", "31"),
                        _ => Cell::plain("log only"),
                    };
                    let note = match &n.last_error {
                        Some(e) if n.state.as_deref() != Some("delivered") => {
                            format!("{}  [last error: {e}]", n.message)
                        }
                        _ => n.message.clone(),
                    };
                    vec![
                        Cell::plain(format_time(&n.created_at)),
                        Cell::plain(&n.event),
                        Cell::plain(n.probe.as_deref().unwrap_or("-")),
                        Cell::plain(n.channel.as_deref().unwrap_or("-")),
                        state,
                        Cell::plain(n.attempts.to_string()),
                        Cell::plain(note),
                    ]
                })
                .collect();
            output::table(
                &[
                    "CREATED (UTC)",
                    "EVENT",
                    "PROBE",
                    "CHANNEL",
                    "STATE",
                    "TRIES",
                    "MESSAGE",
                ],
                body,
                output::color_enabled(),
            )
        }
    };
    print!("{out}");
    Ok(EXIT_OK)
}
