//! When a probe runs: a fixed interval or a cron expression.
//!
//! Users write Unix cron (5 fields, Sunday = 0 or 7). The `cron` crate wants a
//! seconds field first and numbers weekdays 1 = Sunday … 7 = Saturday, so a
//! Unix `1-5` would silently mean Sunday–Thursday there. We translate every
//! expression into an explicit form whose weekdays mean what Unix cron means.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Clone)]
pub enum Schedule {
    Every(Duration),
    Cron {
        /// What the user wrote, for messages.
        expr: String,
        parsed: Box<cron::Schedule>,
    },
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Schedule::Every(a), Schedule::Every(b)) => a == b,
            (Schedule::Cron { expr: a, .. }, Schedule::Cron { expr: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Schedule {
    /// Parses a cron expression: 5 fields (Unix), 6 (seconds first) or 7 (with year),
    /// or a shorthand such as `@hourly`.
    pub fn cron(expr: &str) -> Result<Schedule, String> {
        let translated = translate_cron(expr)?;
        let parsed = cron::Schedule::from_str(&translated)
            .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
        if parsed.upcoming(Utc).next().is_none() {
            return Err(format!("cron expression {expr:?} never fires"));
        }
        Ok(Schedule::Cron {
            expr: expr.trim().to_string(),
            parsed: Box::new(parsed),
        })
    }

    /// The next time the probe is due strictly after `now`, for cron schedules.
    pub fn next_cron_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(_) => None,
            Schedule::Cron { parsed, .. } => parsed.after(&now).next(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(d) => format!("every {}", crate::notify::message::span(*d)),
            Schedule::Cron { expr, .. } => format!("cron \"{expr}\""),
        }
    }
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Rewrites a user's cron expression into the `cron` crate's dialect.
fn translate_cron(expr: &str) -> Result<String, String> {
    let expr = expr.trim();
    if expr.starts_with('@') {
        return Ok(expr.to_string());
    }
    let mut fields: Vec<String> = expr.split_whitespace().map(str::to_string).collect();
    match fields.len() {
        5 => fields.insert(0, "0".to_string()),
        6 | 7 => {}
        n => {
            return Err(format!(
                "cron expression {expr:?} has {n} fields; write 5 (minute hour day month weekday), \
                 or 6/7 with seconds first, e.g. \"*/5 * * * *\" or \"0 */5 * * * *\""
            ));
        }
    }
    fields[5] = translate_weekdays(&fields[5])
        .map_err(|e| format!("cron expression {expr:?}: weekday field: {e}"))?;
    Ok(fields.join(" "))
}

/// Turns a Unix weekday field (0/7 = Sunday … 6 = Saturday, names, ranges,
/// steps, lists) into an explicit list in the crate's numbering (1 = Sunday).
fn translate_weekdays(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".to_string());
    }
    let mut days = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("bad step {s:?}"))?;
                if step == 0 {
                    return Err("a step of 0".to_string());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (weekday(a)?, weekday(b)?)
        } else {
            let d = weekday(range)?;
            // "MON/2" in Unix cron means from Monday on, every second day.
            if step > 1 { (d, 6) } else { (d, d) }
        };
        // Sunday written as 7 at the end of a range (5-7 = Fri..Sun).
        let hi = if hi < lo && hi == 0 { 7 } else { hi };
        if hi < lo {
            return Err(format!("range {range:?} runs backwards"));
        }
        let mut d = lo;
        while d <= hi {
            days[(d % 7) as usize] = true;
            d += step;
        }
    }
    let list: Vec<String> = (0..7)
        .filter(|d| days[*d])
        .map(|d| (d + 1).to_string())
        .collect();
    Ok(list.join(","))
}

/// A Unix weekday: 0–7 (0 and 7 are Sunday) or a three-letter name.
fn weekday(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse::<u32>() {
        return if n <= 7 {
            Ok(if n == 7 { 0 } else { n })
        } else {
            Err(format!(
                "{n} is not a weekday; use 0-7 (0 and 7 are Sunday) or SUN-SAT"
            ))
        };
    }
    let upper = s.to_ascii_uppercase();
    let key = upper.get(..3).unwrap_or(&upper);
    DAY_NAMES
        .iter()
        .position(|n| *n == key)
        .map(|p| p as u32)
        .ok_or_else(|| format!("{s:?} is not a weekday; use 0-7 or SUN-SAT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Weekday};

    fn fires(expr: &str, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let s = Schedule::cron(expr).unwrap();
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..n {
            t = s.next_cron_after(t).unwrap();
            out.push(t);
        }
        out
    }

    #[test]
    fn five_fields_get_a_zero_seconds_field() {
        assert_eq!(translate_cron("*/5 * * * *").unwrap(), "0 */5 * * * *");
        let start = Utc.with_ymd_and_hms(2026, 12, 4, 10, 2, 30).unwrap();
        let t = fires("*/5 * * * *", start, 2);
        assert_eq!(t[0], Utc.with_ymd_and_hms(2026, 12, 4, 10, 5, 0).unwrap());
        assert_eq!(t[1], Utc.with_ymd_and_hms(2026, 12, 4, 10, 10, 0).unwrap());
    }

    #[test]
    fn six_and_seven_fields_pass_through() {
        assert_eq!(translate_cron("*/10 * * * * *").unwrap(), "*/10 * * * * *");
        assert!(Schedule::cron("0 0 * * * * 2030").is_ok());
        assert!(Schedule::cron("@hourly").is_ok());
    }

    #[test]
    fn unix_weekdays_mean_unix_days() {
        // 2026-12-04 is a Friday.
        let fri = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        let wd = |e: &str| {
            fires(e, fri, 7)
                .iter()
                .map(|t| t.weekday())
                .collect::<Vec<_>>()
        };
        // 1-5 = Monday to Friday.
        assert!(
            wd("0 9 * * 1-5")
                .iter()
                .all(|d| !matches!(d, Weekday::Sat | Weekday::Sun))
        );
        assert_eq!(wd("0 9 * * 1")[0], Weekday::Mon);
        assert_eq!(wd("0 9 * * 0")[0], Weekday::Sun);
        assert_eq!(wd("0 9 * * 7")[0], Weekday::Sun);
        assert_eq!(wd("0 9 * * 6")[0], Weekday::Sat);
        assert_eq!(wd("0 9 * * MON")[0], Weekday::Mon);
        // 5-7 = Friday, Saturday, Sunday.
        let weekend: Vec<_> = wd("0 9 * * 5-7").into_iter().take(3).collect();
        assert_eq!(weekend, vec![Weekday::Sat, Weekday::Sun, Weekday::Fri]);
        assert_eq!(translate_weekdays("*/2").unwrap(), "1,3,5,7");
        assert_eq!(translate_weekdays("1-5/2").unwrap(), "2,4,6");
        assert_eq!(translate_weekdays("sat,sun").unwrap(), "1,7");
    }

    #[test]
    fn bad_expressions_explain_themselves() {
        let e = Schedule::cron("* * *").unwrap_err();
        assert!(e.contains("3 fields"), "{e}");
        let e = Schedule::cron("0 9 * * 8").unwrap_err();
        assert!(e.contains("not a weekday"), "{e}");
        assert!(Schedule::cron("0 99 * * *").is_err());
        assert!(Schedule::cron("0 9 * * FOO").is_err());
    }
}
