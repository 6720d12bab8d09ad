//! `--since` / `--until` values: a duration back from now (`7d`, `36h`) or
//! an RFC 3339 time.

use chrono::{DateTime, NaiveDate, Utc};

use super::UsageError;

pub fn parse(flag: &str, value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, UsageError> {
    let v = value.trim();
    if let Ok(d) = humantime::parse_duration(v) {
        let back = chrono::Duration::from_std(d).map_err(|_| too_far(flag, value))?;
        return now
            .checked_sub_signed(back)
            .ok_or_else(|| too_far(flag, value));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    // A bare date is midnight UTC: what people type for "since the 1st".
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    Err(UsageError(format!(
        "{flag} {value:?}: write a duration back from now (7d, 36h, 90m) or an RFC 3339 time (2026-12-01T08:00:00Z)"
    )))
}

fn too_far(flag: &str, value: &str) -> UsageError {
    UsageError(format!("{flag} {value:?} reaches too far back"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn durations_rfc3339_and_dates() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        assert_eq!(
            parse("--since", "36h", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap()
        );
        assert_eq!(
            parse("--since", "7d", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
        );
        assert_eq!(
            parse("--since", "2026-12-01T08:00:00+08:00", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            parse("--until", "2026-12-02", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap()
        );
        let e = parse("--since", "yesterday", now).unwrap_err();
        assert!(e.0.contains("--since") && e.0.contains("RFC 3339"), "{e}");
    }
}
