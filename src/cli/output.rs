//! Printing: aligned tables for people, JSON and CSV for scripts. Colour only
//! on a terminal, and never when `NO_COLOR` is set (no-color.org).

use std::io::IsTerminal;

use crate::result::{ProbeResult, Status, format_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Whether to colour what goes to stdout.
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A table cell: its text and an optional ANSI colour.
pub struct Cell {
    text: String,
    color: Option<&'static str>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            color: None,
        }
    }

    pub fn status(s: Status) -> Cell {
        let color = match s {
            Status::Up => "32",
            Status::Slow => "33",
            Status::Offline => "2",
            s if s.needs_action() => "35",
            _ => "31",
        };
        Cell {
            text: s.as_str().to_string(),
            color: Some(color),
        }
    }

    pub fn colored(text: impl Into<String>, color: &'static str) -> Cell {
        Cell {
            text: text.into(),
            color: Some(color),
        }
    }
}

/// Renders rows under headers, columns padded to their widest cell. The last
/// column is not padded, so long messages do not drag trailing spaces.
pub fn table(headers: &[&str], rows: Vec<Vec<Cell>>, color: bool) -> String {
    let cols = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.text.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<(String, Option<&str>)>| {
        let last = cells.len().saturating_sub(1);
        for (i, (text, c)) in cells.into_iter().enumerate() {
            let pad = if i == last {
                0
            } else {
                widths[i] - text.chars().count() + 2
            };
            match c {
                Some(code) if color => out.push_str(&format!("\x1b[{code}m{text}\x1b[0m")),
                _ => out.push_str(&text),
            }
            out.extend(std::iter::repeat_n(' ', pad));
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(
        &mut out,
        headers.iter().map(|h| (h.to_string(), Some("1"))).collect(),
    );
    for row in rows {
        line(
            &mut out,
            row.into_iter().map(|c| (c.text, c.color)).collect(),
        );
    }
    out
}

/// One CSV record (RFC 4180 quoting).
pub fn csv_line(fields: &[String]) -> String {
    let mut out = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    out
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn ms(v: Option<u32>) -> String {
    v.map(|v| format!("{v} ms"))
        .unwrap_or_else(|| "-".to_string())
}

/// Results in the requested format.
pub fn results(rows: &[ProbeResult], format: Format) -> String {
    match format {
        Format::Json => json(&rows),
        Format::Csv => {
            let mut out = csv_line(
                &[
                    "probe",
                    "at",
                    "status",
                    "latency_ms",
                    "ttft_ms",
                    "http_status",
                    "error",
                    "detail",
                ]
                .map(String::from),
            );
            for r in rows {
                out.push_str(&csv_line(&[
                    r.probe.clone(),
                    format_time(&r.at),
                    r.status.to_string(),
                    opt(r.latency_ms),
                    opt(r.ttft_ms),
                    opt(r.http_status),
                    opt(r.error.as_ref()),
                    opt(r.detail.as_ref()),
                ]));
            }
            out
        }
        Format::Table => {
            if rows.is_empty() {
                return "no results match\n".to_string();
            }
            let body = rows
                .iter()
                .map(|r| {
                    vec![
                        Cell::plain(format_time(&r.at)),
                        Cell::plain(&r.probe),
                        Cell::status(r.status),
                        Cell::plain(r.http_status.map_or("-".to_string(), |s| s.to_string())),
                        Cell::plain(ms(r.latency_ms)),
                        Cell::plain(ms(r.ttft_ms)),
                        Cell::plain(note(r)),
                    ]
                })
                .collect();
            table(
                &[
                    "TIME (UTC)",
                    "PROBE",
                    "STATUS",
                    "HTTP",
                    "LATENCY",
                    "TTFT",
                    "NOTE",
                ],
                body,
                color_enabled(),
            )
        }
    }
}

/// The error, else the detail: the one line a person wants to see.
pub fn note(r: &ProbeResult) -> String {
    match (&r.error, &r.detail) {
        (Some(e), Some(d)) => format!("{e} ({d})"),
        (Some(e), None) => e.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => String::new(),
    }
}

/// Pretty JSON with a trailing newline.
pub fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_trims() {
        let t = table(
            &["A", "BB"],
            vec![
                vec![Cell::plain("xxx"), Cell::plain("y")],
                vec![Cell::plain("z"), Cell::plain("")],
            ],
            false,
        );
        assert_eq!(t, "A    BB\nxxx  y\nz\n");
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            csv_line(&["a".into(), "b,c".into(), "say \"hi\"".into()]),
            "a,\"b,c\",\"say \"\"hi\"\"\"\n"
        );
    }
}
