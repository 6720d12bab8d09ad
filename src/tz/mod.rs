//! IANA time zones, read from the system's tz database (`$TZDIR`, else
//! `/usr/share/zoneinfo`, Debian's `tzdata` package): for `stats --by-hour
//! --tz`. A TZif file lists every past change of offset; its footer, a POSIX
//! TZ rule such as `EST5EDT,M3.2.0,M11.1.0`, covers the years after the last
//! one. No crate for this was available offline, and the format is small.

use std::path::PathBuf;

mod posix;

use posix::Rule;

/// Where zone files are looked for when `$TZDIR` is not set.
pub const ZONEINFO: &str = "/usr/share/zoneinfo";

#[derive(Debug, thiserror::Error)]
pub enum TzError {
    #[error(
        "{0:?} is not a time zone name; use an IANA name such as Asia/Shanghai, Europe/Berlin or UTC"
    )]
    BadName(String),
    #[error(
        "unknown time zone {name:?} (no {path}); use an IANA name such as Asia/Shanghai, Europe/Berlin or UTC, \
         and make sure the tz database is installed (Debian: apt-get install tzdata) or $TZDIR points at it"
    )]
    Missing { name: String, path: String },
    #[error("time zone file {path} is not valid TZif data ({why})")]
    Invalid { path: String, why: &'static str },
}

/// A time zone: its offsets from UTC over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    name: String,
    /// Offset (seconds east of UTC) before the first transition.
    initial: i32,
    /// (UTC second, offset from then on), ascending.
    transitions: Vec<(i64, i32)>,
    /// Rule for times after the last transition.
    rule: Option<Rule>,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            initial: 0,
            transitions: Vec::new(),
            rule: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Loads `name` (e.g. `Asia/Shanghai`) from the system tz database.
    pub fn load(name: &str) -> Result<Zone, TzError> {
        if matches!(name, "UTC" | "Etc/UTC" | "Z") {
            return Ok(Zone::utc());
        }
        let ok = !name.is_empty()
            && !name.starts_with('/')
            && name
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != "..")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
        if !ok {
            return Err(TzError::BadName(name.into()));
        }
        let dir = std::env::var_os("TZDIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from(ZONEINFO), PathBuf::from);
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|_| TzError::Missing {
            name: name.into(),
            path: path.display().to_string(),
        })?;
        Zone::from_tzif(name, &bytes).map_err(|why| TzError::Invalid {
            path: path.display().to_string(),
            why,
        })
    }

    /// A zone from a POSIX TZ rule alone (`CET-1CEST,M3.5.0,M10.5.0/3`).
    pub fn from_posix(name: &str, rule: &str) -> Option<Zone> {
        let rule = Rule::parse(rule)?;
        Some(Zone {
            name: name.into(),
            initial: rule.std,
            transitions: Vec::new(),
            rule: Some(rule),
        })
    }

    /// Parses TZif data (RFC 8536), versions 1 to 4.
    pub fn from_tzif(name: &str, b: &[u8]) -> Result<Zone, &'static str> {
        let (header, v1) = Header::read(b, 0, 4)?;
        let (header, body, time_size) = if header.version >= 2 {
            let start = 44 + v1;
            let (h2, _) = Header::read(b, start, 8)?;
            (h2, start + 44, 8)
        } else {
            (header, 44, 4)
        };
        let times = body;
        let idx = times + header.timecnt * time_size;
        let types = idx + header.timecnt;
        let end = types + header.typecnt * 6;
        if b.len() < end || header.typecnt == 0 {
            return Err("truncated");
        }
        let offset_of = |t: usize| -> Result<i32, &'static str> {
            let at = types + t * 6;
            b.get(at..at + 4)
                .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
                .ok_or("bad type index")
        };
        let mut transitions = Vec::with_capacity(header.timecnt);
        for i in 0..header.timecnt {
            let at = times + i * time_size;
            let t = if time_size == 8 {
                i64::from_be_bytes(b[at..at + 8].try_into().map_err(|_| "truncated")?)
            } else {
                i64::from(i32::from_be_bytes(
                    b[at..at + 4].try_into().map_err(|_| "truncated")?,
                ))
            };
            let ty = usize::from(b[idx + i]);
            if ty >= header.typecnt {
                return Err("bad type index");
            }
            transitions.push((t, offset_of(ty)?));
        }
        let rule = if header.version >= 2 {
            let footer_start = end
                + header.charcnt
                + header.leapcnt * (time_size + 4)
                + header.isstdcnt
                + header.isutcnt;
            b.get(footer_start..)
                .and_then(|f| f.strip_prefix(b"\n"))
                .and_then(|f| f.split(|c| *c == b'\n').next())
                .and_then(|f| std::str::from_utf8(f).ok())
                .and_then(Rule::parse)
        } else {
            None
        };
        Ok(Zone {
            name: name.into(),
            initial: offset_of(0)?,
            transitions,
            rule,
        })
    }

    /// Seconds east of UTC at `utc` (Unix seconds).
    pub fn offset_at(&self, utc: i64) -> i32 {
        self.span_at(utc).0
    }

    /// The offset at `utc` and the span `[from, until)` it holds for, so
    /// callers walking time forward can skip most look-ups.
    pub fn span_at(&self, utc: i64) -> (i32, i64, i64) {
        let i = self.transitions.partition_point(|(t, _)| *t <= utc);
        if i == 0 {
            let until = self.transitions.first().map_or(i64::MAX, |t| t.0);
            if self.transitions.is_empty() {
                if let Some(rule) = &self.rule {
                    return rule.span_at(utc, i64::MIN);
                }
            }
            return (self.initial, i64::MIN, until);
        }
        let (from, offset) = self.transitions[i - 1];
        match (self.transitions.get(i), &self.rule) {
            (Some(next), _) => (offset, from, next.0),
            (None, Some(rule)) => rule.span_at(utc, from),
            (None, None) => (offset, from, i64::MAX),
        }
    }

    /// The local hour of the day (0-23) at `utc`.
    pub fn hour_of_day(&self, utc: i64) -> u8 {
        local_hour(utc, self.offset_at(utc))
    }
}

/// The hour of the day at `utc` shifted by `offset` seconds.
pub fn local_hour(utc: i64, offset: i32) -> u8 {
    ((utc + i64::from(offset)).rem_euclid(86_400) / 3600) as u8
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

impl Header {
    /// Reads the header at `at`; returns it and the length of the data
    /// block that follows, for times of `time_size` bytes.
    fn read(b: &[u8], at: usize, time_size: usize) -> Result<(Header, usize), &'static str> {
        let h = b.get(at..at + 44).ok_or("truncated")?;
        if &h[..4] != b"TZif" {
            return Err("no TZif magic");
        }
        let n = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as usize;
        let version = match h[4] {
            0 => 1,
            c @ b'2'..=b'9' => c - b'0',
            _ => return Err("unknown version"),
        };
        let hd = Header {
            version,
            isutcnt: n(20),
            isstdcnt: n(24),
            leapcnt: n(28),
            timecnt: n(32),
            typecnt: n(36),
            charcnt: n(40),
        };
        let len = hd.timecnt * (time_size + 1)
            + hd.typecnt * 6
            + hd.charcnt
            + hd.leapcnt * (time_size + 4)
            + hd.isstdcnt
            + hd.isutcnt;
        Ok((hd, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp()
    }

    #[test]
    fn posix_rules_follow_us_and_eu_summer_time() {
        let ny = Zone::from_posix("America/New_York", "EST5EDT,M3.2.0,M11.1.0").unwrap();
        // 2026: summer time from Sunday 8 March 02:00 EST (07:00 UTC) to
        // Sunday 1 November 02:00 EDT (06:00 UTC).
        assert_eq!(ny.offset_at(at(2026, 3, 8, 6, 59)), -5 * 3600);
        assert_eq!(ny.offset_at(at(2026, 3, 8, 7, 0)), -4 * 3600);
        assert_eq!(ny.offset_at(at(2026, 11, 1, 5, 59)), -4 * 3600);
        assert_eq!(ny.offset_at(at(2026, 11, 1, 6, 0)), -5 * 3600);
        let (off, from, until) = ny.span_at(at(2026, 6, 1, 0, 0));
        assert_eq!(
            (off, from, until),
            (-4 * 3600, at(2026, 3, 8, 7, 0), at(2026, 11, 1, 6, 0))
        );

        let berlin = Zone::from_posix("Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(berlin.offset_at(at(2026, 3, 29, 0, 59)), 3600);
        assert_eq!(berlin.offset_at(at(2026, 3, 29, 1, 0)), 7200);
        assert_eq!(berlin.offset_at(at(2026, 10, 25, 0, 59)), 7200);
        assert_eq!(berlin.offset_at(at(2026, 10, 25, 1, 0)), 3600);

        // Southern hemisphere: summer time spans the new year.
        let syd = Zone::from_posix("Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(syd.offset_at(at(2026, 1, 15, 0, 0)), 11 * 3600);
        assert_eq!(syd.offset_at(at(2026, 7, 15, 0, 0)), 10 * 3600);

        let kolkata = Zone::from_posix("Asia/Kolkata", "IST-5:30").unwrap();
        assert_eq!(kolkata.offset_at(at(2026, 7, 15, 0, 0)), 19_800);
        assert_eq!(kolkata.hour_of_day(at(2026, 7, 15, 0, 29)), 5);
        assert_eq!(kolkata.hour_of_day(at(2026, 7, 15, 0, 30)), 6);
        assert!(Zone::from_posix("x", "<+0330>-3:30").is_some());
        assert!(Zone::from_posix("x", "E").is_none());
    }

    #[test]
    fn system_zone_files_load_when_installed() {
        let Ok(ny) = Zone::load("America/New_York") else {
            eprintln!("no tz database here; skipped");
            return;
        };
        // From the transition table (2026) and from the footer rule (2050).
        assert_eq!(ny.offset_at(at(2026, 3, 8, 6, 59)), -5 * 3600);
        assert_eq!(ny.offset_at(at(2026, 3, 8, 7, 0)), -4 * 3600);
        assert_eq!(ny.offset_at(at(2050, 7, 1, 0, 0)), -4 * 3600);
        assert_eq!(ny.offset_at(at(2050, 12, 1, 0, 0)), -5 * 3600);
        let sh = Zone::load("Asia/Shanghai").unwrap();
        assert_eq!(sh.offset_at(at(2026, 7, 1, 0, 0)), 8 * 3600);
    }

    #[test]
    fn names_are_checked_before_any_file_is_read() {
        assert!(matches!(
            Zone::load("../etc/passwd"),
            Err(TzError::BadName(_))
        ));
        assert!(matches!(Zone::load("/etc/x"), Err(TzError::BadName(_))));
        let e = Zone::load("Mars/Olympus_Mons").unwrap_err().to_string();
        assert!(e.contains("IANA") && e.contains("tzdata"), "{e}");
        assert_eq!(Zone::load("UTC").unwrap(), Zone::utc());
    }
}
