//! POSIX TZ rules (`EST5EDT,M3.2.0,M11.1.0`): the footer of a TZif file,
//! which gives a zone's offsets after its last listed transition.

use chrono::{Datelike, NaiveDate};

/// A POSIX TZ rule: standard offset, and optionally summer time with the
/// dates it starts and ends each year.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Rule {
    /// Seconds east of UTC.
    pub(super) std: i32,
    dst: Option<(i32, When, When)>,
}

/// A day of the year and a local time of day (seconds, may be negative or
/// past 24 h).
#[derive(Debug, Clone, Copy, PartialEq)]
struct When {
    day: Day,
    secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Day {
    /// `Jn`: 1..=365, February 29 never counted.
    Julian1(u16),
    /// `n`: 0..=365, counting February 29.
    Julian0(u16),
    /// `Mm.w.d`: weekday d (0 = Sunday) of week w (5 = last) of month m.
    Month(u8, u8, u8),
}

impl Rule {
    pub(super) fn parse(s: &str) -> Option<Rule> {
        let mut p = Parser { s: s.as_bytes() };
        p.name()?;
        let std = -p.offset()?;
        if p.s.is_empty() {
            return Some(Rule { std, dst: None });
        }
        p.name()?;
        let dst = if p.s.first().is_some_and(|c| *c != b',') {
            -p.offset()?
        } else {
            std + 3600
        };
        // No dates: the US rules, as POSIX says the default is up to the
        // implementation and every TZif footer spells them out anyway.
        if !p.eat(b',') {
            return None;
        }
        let start = p.when()?;
        if !p.eat(b',') {
            return None;
        }
        let end = p.when()?;
        p.s.is_empty().then_some(Rule {
            std,
            dst: Some((dst, start, end)),
        })
    }

    /// The UTC instants summer time starts and ends in `year`.
    fn changes(&self, year: i32) -> Option<(i64, i64, i32)> {
        let (dst, start, end) = self.dst?;
        let s = start.day.date(year)? + start.secs - i64::from(self.std);
        let e = end.day.date(year)? + end.secs - i64::from(dst);
        Some((s, e, dst))
    }

    pub(super) fn span_at(&self, utc: i64, floor: i64) -> (i32, i64, i64) {
        let Some(year) = chrono::DateTime::from_timestamp(utc, 0).map(|t| t.year()) else {
            return (self.std, floor, i64::MAX);
        };
        let mut points: Vec<(i64, i32)> = Vec::with_capacity(6);
        for y in year - 1..=year + 1 {
            if let Some((s, e, dst)) = self.changes(y) {
                points.push((s, dst));
                points.push((e, self.std));
            }
        }
        if points.is_empty() {
            return (self.std, floor, i64::MAX);
        }
        points.sort_unstable();
        let i = points.partition_point(|(t, _)| *t <= utc);
        let (from, offset) = if i == 0 {
            let before = match self.dst {
                Some((dst, ..)) if points[0].1 == self.std => dst,
                _ => self.std,
            };
            (floor, before)
        } else {
            points[i - 1]
        };
        let until = points.get(i).map_or(i64::MAX, |p| p.0);
        (offset, from.max(floor), until)
    }
}

impl Day {
    /// Unix seconds of local midnight of this day in `year` (as if UTC).
    fn date(self, year: i32) -> Option<i64> {
        let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
        let d = match self {
            Day::Julian1(n) => {
                let leap = NaiveDate::from_ymd_opt(year, 2, 29).is_some();
                let n = i64::from(n) - 1 + i64::from(leap && n >= 60);
                jan1 + chrono::Duration::days(n)
            }
            Day::Julian0(n) => jan1 + chrono::Duration::days(i64::from(n)),
            Day::Month(m, w, wd) => {
                let first = NaiveDate::from_ymd_opt(year, u32::from(m), 1)?;
                let shift = (i64::from(wd) - i64::from(first.weekday().num_days_from_sunday()))
                    .rem_euclid(7);
                let mut d = first + chrono::Duration::days(shift + 7 * (i64::from(w) - 1));
                while d.month() != u32::from(m) {
                    d -= chrono::Duration::days(7);
                }
                d
            }
        };
        Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
    }
}

struct Parser<'a> {
    s: &'a [u8],
}

impl Parser<'_> {
    fn eat(&mut self, c: u8) -> bool {
        if self.s.first() == Some(&c) {
            self.s = &self.s[1..];
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Option<()> {
        let n = if self.eat(b'<') {
            let n = self.s.iter().position(|c| *c == b'>')?;
            self.s = &self.s[n + 1..];
            n
        } else {
            let n = self
                .s
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            self.s = &self.s[n..];
            n
        };
        (n >= 3).then_some(())
    }

    fn number(&mut self) -> Option<i64> {
        let n = self.s.iter().take_while(|c| c.is_ascii_digit()).count();
        let v = std::str::from_utf8(&self.s[..n]).ok()?.parse().ok()?;
        self.s = &self.s[n..];
        Some(v)
    }

    /// `[+-]hh[:mm[:ss]]` as seconds.
    fn offset(&mut self) -> Option<i32> {
        let sign = if self.eat(b'-') {
            -1
        } else {
            self.eat(b'+');
            1
        };
        let mut secs = self.number()? * 3600;
        if self.eat(b':') {
            secs += self.number()? * 60;
            if self.eat(b':') {
                secs += self.number()?;
            }
        }
        i32::try_from(sign * secs).ok()
    }

    fn when(&mut self) -> Option<When> {
        let day = if self.eat(b'M') {
            let m = self.number()?;
            self.eat(b'.').then_some(())?;
            let w = self.number()?;
            self.eat(b'.').then_some(())?;
            let d = self.number()?;
            ((1..=12).contains(&m) && (1..=5).contains(&w) && (0..=6).contains(&d))
                .then_some(Day::Month(m as u8, w as u8, d as u8))?
        } else if self.eat(b'J') {
            let n = self.number()?;
            (1..=365).contains(&n).then_some(Day::Julian1(n as u16))?
        } else {
            let n = self.number()?;
            (0..=365).contains(&n).then_some(Day::Julian0(n as u16))?
        };
        let secs = if self.eat(b'/') {
            i64::from(self.offset()?)
        } else {
            7200
        };
        Some(When { day, secs })
    }
}
