//! Times in microseconds since the epoch: the `since`/`until` a caller gives (an RFC 3339
//! time, or an amount of time ago such as `15m`), and the time at the start of a log file
//! line (RFC 3339 as rsyslog and most programs write it, `YYYY-MM-DD HH:MM:SS` in local
//! time, or the classic syslog `Nov 29 11:19:46` in local time of the current year).

use jiff::{Timestamp, civil, tz::TimeZone};

/// A `since` or `until` that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not a time: give an RFC 3339 time (2026-11-29T10:00:00Z) or an amount ago (90s, 15m, 2h, 3d)"
)]
pub struct BadTime(pub String);

/// `text` as microseconds since the epoch; an amount (`15m`, `-15m`) counts back from `now`.
pub fn parse_bound(text: &str, now: Timestamp) -> Result<i64, BadTime> {
    let trimmed = text.trim();
    if let Some(ago) = amount_ago(trimmed) {
        return Ok(now.as_microsecond() - ago);
    }
    trimmed
        .parse::<Timestamp>()
        .map(|time| time.as_microsecond())
        .map_err(|_| BadTime(text.to_owned()))
}

/// `90s`, `15m`, `2h`, `3d`, `1w` (optionally with a leading `-`) in microseconds.
fn amount_ago(text: &str) -> Option<i64> {
    let text = text.strip_prefix('-').unwrap_or(text);
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(unit_at);
    let count: i64 = digits.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    count.checked_mul(seconds)?.checked_mul(1_000_000)
}

/// Reads the time at the start of log lines; local times are in `zone`.
#[derive(Debug, Clone)]
pub struct LineClock {
    zone: TimeZone,
    now: Timestamp,
}

impl LineClock {
    /// In the system's time zone (UTC when it has none).
    pub fn system(now: Timestamp) -> Self {
        Self::new(TimeZone::try_system().unwrap_or(TimeZone::UTC), now)
    }

    pub fn new(zone: TimeZone, now: Timestamp) -> Self {
        Self { zone, now }
    }

    /// The time a line starts with, if it starts with one.
    pub fn time_of(&self, line: &str) -> Option<i64> {
        let first = line.split_whitespace().next()?;
        if first.starts_with(|c: char| c.is_ascii_digit()) {
            if let Ok(time) = first.parse::<Timestamp>() {
                return Some(time.as_microsecond());
            }
            // `2026-11-29 11:19:46[.123]` in local time.
            let two: String = line
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join("T");
            let civil = two.parse::<civil::DateTime>().ok()?;
            return self.local(civil);
        }
        self.syslog_time(line)
    }

    /// `Nov 29 11:19:46` (day space-padded or not), in the current year, or the last one
    /// when that would be more than a day ahead of now.
    fn syslog_time(&self, line: &str) -> Option<i64> {
        let mut words = line.split_whitespace();
        let name = words.next()?;
        let month = MONTHS.iter().position(|m| *m == name)? + 1;
        let day: i8 = words.next()?.parse().ok()?;
        let time = words.next()?.parse::<civil::Time>().ok()?;
        let year = self.now.to_zoned_datetime(self.zone.clone()).year();
        let at = |year: i16| civil::Date::new(year, i8::try_from(month).ok()?, day).ok();
        let this_year = self.local(at(year)?.to_datetime(time))?;
        if this_year > self.now.as_microsecond() + 86_400_000_000 {
            return self.local(at(year - 1)?.to_datetime(time));
        }
        Some(this_year)
    }

    fn local(&self, civil: civil::DateTime) -> Option<i64> {
        let zoned = civil.to_zoned_datetime(self.zone.clone()).ok()?;
        Some(zoned.timestamp().as_microsecond())
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Microseconds since the epoch as RFC 3339 in UTC, to the second.
pub fn rfc3339(us: i64) -> String {
    Timestamp::from_microsecond(us)
        .map(|time| time.round(jiff::Unit::Second).unwrap_or(time).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn bounds_are_rfc3339_or_an_amount_ago() {
        let now = at("2026-11-29T12:00:00Z");
        let ten_to = at("2026-11-29T11:50:00Z").as_microsecond();
        assert_eq!(parse_bound("10m", now), Ok(ten_to));
        assert_eq!(parse_bound("-10m", now), Ok(ten_to));
        assert_eq!(parse_bound("600s", now), Ok(ten_to));
        assert_eq!(parse_bound("2026-11-29T11:50:00Z", now), Ok(ten_to));
        assert_eq!(parse_bound("2026-11-29T12:50:00+01:00", now), Ok(ten_to));
        for bad in ["yesterday", "10 parsecs", "10x", "", "2026-11-29"] {
            assert!(parse_bound(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_times_in_the_usual_formats() {
        let now = at("2026-11-29T12:00:00Z");
        let clock = LineClock::new(TimeZone::fixed(jiff::tz::offset(1)), now);
        let expected = at("2026-11-29T10:19:46Z").as_microsecond();
        assert_eq!(
            clock.time_of("2026-11-29T11:19:46+01:00 host sshd[1]: hi"),
            Some(expected)
        );
        assert_eq!(clock.time_of("2026-11-29 11:19:46 INFO hi"), Some(expected));
        assert_eq!(
            clock.time_of("Nov 29 11:19:46 host sshd[1]: hi"),
            Some(expected)
        );
        // A December line read in late November is last year's.
        assert_eq!(
            clock.time_of("Dec 24 11:19:46 host x: y"),
            Some(at("2025-12-24T10:19:46Z").as_microsecond())
        );
        for none in ["  continued", "hello world", "42 is a number", ""] {
            assert_eq!(clock.time_of(none), None, "{none}");
        }
    }
}
