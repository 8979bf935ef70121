//! KPI periods on the tenant's local clock: which 15-minute, hourly and daily
//! period an instant falls in, and how a span of time splits across them.
//!
//! A period is named by the instant it starts (milliseconds since the Unix
//! epoch), so the two 01:00 hours of a fall-back night are two periods and a
//! spring-forward day is a 23-hour period.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Longest span of agent time split across periods at once: an agent who
/// stayed in one state longer is counted for the last week of it.
pub const MAX_SPLIT_SPAN_MS: i64 = 7 * 24 * 3_600_000;

/// A period length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// 15 minutes.
    QuarterHour,
    /// One hour.
    Hour,
    /// Midnight to midnight, local time.
    Day,
}

impl Period {
    /// Every period length, shortest first.
    pub const ALL: [Period; 3] = [Period::QuarterHour, Period::Hour, Period::Day];

    /// The short name used in Redis keys.
    pub fn code(self) -> &'static str {
        match self {
            Period::QuarterHour => "q",
            Period::Hour => "h",
            Period::Day => "d",
        }
    }

    /// Start of the period containing `at_ms`, in milliseconds since the epoch.
    pub fn start_ms(self, tz: Tz, at_ms: i64) -> i64 {
        let at = utc(at_ms).with_timezone(&tz);
        match self {
            // Truncated on the local clock with the offset in force at `at`:
            // right for zones whose offset is not a whole hour too.
            Period::QuarterHour | Period::Hour => {
                let local = at.naive_local();
                let minute = match self {
                    Period::QuarterHour => local.minute() - local.minute() % 15,
                    _ => 0,
                };
                let start = local
                    .date()
                    .and_time(NaiveTime::from_hms_opt(local.hour(), minute, 0).expect("valid"));
                let offset_ms = (at.naive_local() - at.naive_utc()).num_milliseconds();
                start.and_utc().timestamp_millis() - offset_ms
            }
            Period::Day => day_start(tz, at.date_naive()),
        }
    }

    /// Start of the period after the one starting at `start_ms`.
    pub fn next_start_ms(self, tz: Tz, start_ms: i64) -> i64 {
        match self {
            Period::QuarterHour => start_ms + 15 * 60_000,
            Period::Hour => start_ms + 3_600_000,
            Period::Day => {
                let date = utc(start_ms).with_timezone(&tz).date_naive();
                day_start(tz, date + Duration::days(1))
            }
        }
    }
}

/// The local start of `date`: midnight, or the first instant of the day where
/// midnight does not exist (a zone that springs forward at midnight).
fn day_start(tz: Tz, date: chrono::NaiveDate) -> i64 {
    let mut time = date.and_time(NaiveTime::MIN);
    loop {
        if let Some(start) = tz.from_local_datetime(&time).earliest() {
            return start.timestamp_millis();
        }
        time += Duration::minutes(15);
    }
}

fn utc(at_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at_ms).unwrap_or_default()
}

/// The start of `start_ms` as local time with its offset (RFC 3339).
pub fn local_label(tz: Tz, start_ms: i64) -> String {
    utc(start_ms).with_timezone(&tz).to_rfc3339()
}

/// A period: its length and start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bucket {
    pub period: Period,
    pub start_ms: i64,
}

impl Bucket {
    /// `<period code>:<start ms>`, the period's part of a Redis key.
    pub fn key(self) -> String {
        format!("{}:{}", self.period.code(), self.start_ms)
    }
}

/// The three periods (15 min, hour, day) `at_ms` falls in.
pub fn buckets_at(tz: Tz, at_ms: i64) -> [Bucket; 3] {
    Period::ALL.map(|period| Bucket {
        period,
        start_ms: period.start_ms(tz, at_ms),
    })
}

/// How `[from_ms, to_ms)` splits across the periods of every length: each
/// period it overlaps and the milliseconds of the overlap. A span longer than
/// [`MAX_SPLIT_SPAN_MS`] keeps only its end.
pub fn split(tz: Tz, from_ms: i64, to_ms: i64) -> Vec<(Bucket, i64)> {
    let from_ms = from_ms.max(to_ms - MAX_SPLIT_SPAN_MS);
    let mut parts = Vec::new();
    if from_ms >= to_ms {
        return parts;
    }
    for period in Period::ALL {
        let mut start = period.start_ms(tz, from_ms);
        while start < to_ms {
            let next = period.next_start_ms(tz, start);
            let overlap = next.min(to_ms) - start.max(from_ms);
            if overlap > 0 {
                parts.push((
                    Bucket {
                        period,
                        start_ms: start,
                    },
                    overlap,
                ));
            }
            start = next;
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const NY: Tz = chrono_tz::America::New_York;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn periods_start_on_the_local_clock() {
        let at = ms("2026-06-10T13:52:10-04:00");
        assert_eq!(
            Period::QuarterHour.start_ms(NY, at),
            ms("2026-06-10T13:45:00-04:00")
        );
        assert_eq!(
            Period::Hour.start_ms(NY, at),
            ms("2026-06-10T13:00:00-04:00")
        );
        assert_eq!(
            Period::Day.start_ms(NY, at),
            ms("2026-06-10T00:00:00-04:00")
        );
        let kolkata = chrono_tz::Asia::Kolkata;
        let at = ms("2026-06-10T13:52:10+05:30");
        assert_eq!(
            Period::Hour.start_ms(kolkata, at),
            ms("2026-06-10T13:00:00+05:30")
        );
    }

    #[test]
    fn spring_forward_day_lasts_23_hours_and_fall_back_hours_are_distinct() {
        let day = Period::Day.start_ms(NY, ms("2026-03-08T12:00:00-04:00"));
        assert_eq!(day, ms("2026-03-08T00:00:00-05:00"));
        assert_eq!(Period::Day.next_start_ms(NY, day) - day, 23 * 3_600_000);
        let first = Period::Hour.start_ms(NY, ms("2026-11-01T01:30:00-04:00"));
        let second = Period::Hour.start_ms(NY, ms("2026-11-01T01:30:00-05:00"));
        assert_eq!(second - first, 3_600_000);
        let fall_day = Period::Day.start_ms(NY, first);
        assert_eq!(
            Period::Day.next_start_ms(NY, fall_day) - fall_day,
            25 * 3_600_000
        );
    }

    #[test]
    fn a_span_across_local_midnight_splits_between_the_two_days() {
        let from = ms("2026-03-07T23:50:00-05:00");
        let to = ms("2026-03-08T00:20:00-05:00");
        let parts = split(NY, from, to);
        let days: Vec<_> = parts
            .iter()
            .filter(|(b, _)| b.period == Period::Day)
            .map(|(_, ms)| *ms)
            .collect();
        assert_eq!(days, vec![10 * 60_000, 20 * 60_000]);
        let quarters: i64 = parts
            .iter()
            .filter(|(b, _)| b.period == Period::QuarterHour)
            .map(|(_, ms)| *ms)
            .sum();
        assert_eq!(quarters, to - from);
        assert_eq!(
            parts
                .iter()
                .filter(|(b, _)| b.period == Period::QuarterHour)
                .count(),
            3
        );
    }

    #[test]
    fn a_very_long_span_keeps_only_its_last_week() {
        let to = ms("2026-06-10T12:00:00-04:00");
        let parts = split(NY, to - 30 * 24 * 3_600_000, to);
        let hours: i64 = parts
            .iter()
            .filter(|(b, _)| b.period == Period::Hour)
            .map(|(_, ms)| *ms)
            .sum();
        assert_eq!(hours, MAX_SPLIT_SPAN_MS);
    }
}
