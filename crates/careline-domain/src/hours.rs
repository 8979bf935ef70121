//! Business hours: when a tenant's contact center is open.
//!
//! Closed hours change what intake does (an after-hours answer for email and
//! chat, a refusal with the hours for voice), so the rule lives here once.
//! Times are wall-clock times in the tenant's IANA zone, which keeps windows
//! right across daylight-saving changes.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use crate::Error;
use crate::tenant::{OpeningHours, TenantConfig};

/// One opening window: from `open` on each of `days` until `close`, which is
/// on the next day when `close <= open` (overnight; `00:00-00:00` is 24 hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Days the window starts on.
    pub days: Vec<Weekday>,
    /// Local opening time.
    pub open: NaiveTime,
    /// Local closing time.
    pub close: NaiveTime,
}

impl Window {
    fn is_overnight(&self) -> bool {
        self.close <= self.open
    }
}

/// A tenant's opening windows, holidays and time zone.
///
/// With no windows the center is open around the clock, except on holidays.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    /// The tenant's time zone.
    pub time_zone: Tz,
    /// Opening windows.
    pub windows: Vec<Window>,
    /// Local dates closed all day (a window starting on one does not open).
    pub holidays: BTreeSet<NaiveDate>,
}

impl BusinessHours {
    /// Builds the hours of `config`, failing on an unknown zone or a bad time.
    pub fn from_config(config: &TenantConfig) -> Result<Self, Error> {
        Ok(BusinessHours {
            time_zone: parse_time_zone(&config.time_zone)?,
            windows: windows(&config.hours)?,
            holidays: config.holidays.iter().copied().collect(),
        })
    }

    /// Whether the center is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.time_zone).naive_local();
        let (today, now) = (local.date(), local.time());
        if self.windows.is_empty() {
            return !self.holidays.contains(&today);
        }
        let yesterday = today.checked_sub_days(Days::new(1));
        self.windows.iter().any(|w| {
            let starts_on = |date: NaiveDate| {
                w.days.contains(&date.weekday()) && !self.holidays.contains(&date)
            };
            if w.is_overnight() {
                (starts_on(today) && now >= w.open)
                    || (yesterday.is_some_and(starts_on) && now < w.close)
            } else {
                starts_on(today) && w.open <= now && now < w.close
            }
        })
    }

    /// The hours for people, e.g. `Mon-Fri 07:00-19:00 America/Denver`.
    pub fn describe(&self) -> String {
        if self.windows.is_empty() {
            return format!("24/7 {}", self.time_zone.name());
        }
        let mut out = String::new();
        for (i, w) in self.windows.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(
                out,
                "{} {}-{}",
                describe_days(&w.days),
                w.open.format("%H:%M"),
                w.close.format("%H:%M")
            );
        }
        let _ = write!(out, " {}", self.time_zone.name());
        out
    }
}

/// The windows of configured opening `hours`, failing on a bad time.
pub fn windows(hours: &[OpeningHours]) -> Result<Vec<Window>, Error> {
    hours
        .iter()
        .map(|h| {
            Ok(Window {
                days: h.days.clone(),
                open: parse_time_of_day(&h.open)?,
                close: parse_time_of_day(&h.close)?,
            })
        })
        .collect()
}

/// Parses a strict `HH:MM` (24-hour clock, two digits each).
pub fn parse_time_of_day(text: &str) -> Result<NaiveTime, Error> {
    let bad = || Error::InvalidTimeOfDay(text.to_string());
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return Err(bad());
    }
    let hour = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let minute = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(bad)
}

/// Parses an IANA time zone name such as `America/Denver`.
pub fn parse_time_zone(name: &str) -> Result<Tz, Error> {
    Tz::from_str(name).map_err(|_| Error::UnknownTimeZone(name.to_string()))
}

/// `Mon-Fri`, `Sat, Sun`, `Mon, Wed-Fri`: runs of three or more days become ranges.
fn describe_days(days: &[Weekday]) -> String {
    let set: BTreeSet<u32> = days.iter().map(|d| d.num_days_from_monday()).collect();
    let name = |n: u32| {
        Weekday::try_from(n as u8)
            .map(|d| d.to_string())
            .unwrap_or_default()
    };
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for n in set {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => runs.push((n, n)),
        }
    }
    let mut parts = Vec::new();
    for (start, end) in runs {
        if end >= start + 2 {
            parts.push(format!("{}-{}", name(start), name(end)));
        } else {
            parts.extend((start..=end).map(name));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono::Weekday::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Days, open and close of each window.
    type WindowSpecs = &'static [(&'static [Weekday], &'static str, &'static str)];

    fn hours(windows: WindowSpecs, holidays: &[&str]) -> BusinessHours {
        BusinessHours {
            time_zone: chrono_tz::America::Denver,
            windows: windows
                .iter()
                .map(|(days, open, close)| Window {
                    days: days.to_vec(),
                    open: parse_time_of_day(open).unwrap(),
                    close: parse_time_of_day(close).unwrap(),
                })
                .collect(),
            holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    const WEEKDAYS: &[Weekday] = &[Mon, Tue, Wed, Thu, Fri];

    #[test]
    fn weekday_hours_in_denver() {
        let h = hours(
            &[(WEEKDAYS, "07:00", "19:00"), (&[Sun], "10:00", "14:00")],
            &["2026-12-25"],
        );
        let cases = [
            // Winter (MST, -07:00).
            ("2026-01-14T07:00:00-07:00", true, "Wednesday 07:00 opens"),
            ("2026-01-14T06:59:59-07:00", false, "just before opening"),
            ("2026-01-14T18:59:59-07:00", true, "just before closing"),
            ("2026-01-14T19:00:00-07:00", false, "closed at 19:00"),
            ("2026-01-17T12:00:00-07:00", false, "closed Saturday"),
            // Summer (MDT, -06:00).
            ("2026-07-15T07:00:00-06:00", true, "summer opening"),
            (
                "2026-07-15T06:30:00-06:00",
                false,
                "06:30 MDT is 07:30 MST but still closed",
            ),
            // Spring forward Sunday 2026-03-08: 02:00 MST -> 03:00 MDT.
            (
                "2026-03-08T10:00:00-06:00",
                true,
                "DST start Sunday window opens 10:00 MDT",
            ),
            (
                "2026-03-08T09:59:00-06:00",
                false,
                "DST start Sunday before 10:00 MDT",
            ),
            (
                "2026-03-08T13:59:00-06:00",
                true,
                "DST start Sunday before 14:00 MDT",
            ),
            (
                "2026-03-08T14:00:00-06:00",
                false,
                "DST start Sunday closes 14:00 MDT",
            ),
            (
                "2026-03-09T07:01:00-06:00",
                true,
                "Monday after DST start, 07:01 MDT",
            ),
            (
                "2026-03-09T06:59:00-06:00",
                false,
                "Monday after DST start, 06:59 MDT",
            ),
            ("2026-03-09T13:01:00Z", true, "07:01 MDT in UTC"),
            (
                "2026-03-09T12:01:00Z",
                false,
                "06:01 MDT would be open with a fixed -07 offset",
            ),
            // Fall back Sunday 2026-11-01: 02:00 MDT -> 01:00 MST.
            (
                "2026-11-01T10:00:00-07:00",
                true,
                "DST end Sunday window opens 10:00 MST",
            ),
            (
                "2026-11-01T09:59:00-07:00",
                false,
                "DST end Sunday before 10:00 MST",
            ),
            (
                "2026-11-01T14:00:00-07:00",
                false,
                "DST end Sunday closes 14:00 MST",
            ),
            (
                "2026-11-02T07:01:00-07:00",
                true,
                "Monday after DST end, 07:01 MST",
            ),
            (
                "2026-11-02T06:59:00-07:00",
                false,
                "Monday after DST end, 06:59 MST",
            ),
            (
                "2026-11-02T13:30:00Z",
                false,
                "06:30 MST would be open with a fixed -06 offset",
            ),
            ("2026-11-02T14:01:00Z", true, "07:01 MST in UTC"),
            // Holiday: Friday 2026-12-25 closed all day.
            ("2026-12-25T12:00:00-07:00", false, "Christmas noon"),
            ("2026-12-25T07:00:00-07:00", false, "Christmas opening time"),
            (
                "2026-12-24T12:00:00-07:00",
                true,
                "Christmas Eve is a normal Thursday",
            ),
        ];
        for (at, want, why) in cases {
            assert_eq!(h.is_open(utc(at)), want, "{why}: {at}");
        }
    }

    #[test]
    fn overnight_windows_cross_midnight_and_the_week_end() {
        // Fri 22:00 -> Sat 06:00 and Sun 20:00 -> Mon 02:00.
        let h = hours(
            &[(&[Fri], "22:00", "06:00"), (&[Sun], "20:00", "02:00")],
            &["2026-12-18"],
        );
        let cases = [
            ("2026-01-16T21:59:00-07:00", false, "Friday before opening"),
            ("2026-01-16T22:00:00-07:00", true, "Friday 22:00"),
            ("2026-01-17T00:00:00-07:00", true, "Saturday midnight"),
            ("2026-01-17T05:59:00-07:00", true, "Saturday 05:59"),
            ("2026-01-17T06:00:00-07:00", false, "Saturday 06:00 closes"),
            (
                "2026-01-17T22:30:00-07:00",
                false,
                "Saturday night has no window",
            ),
            ("2026-01-18T20:00:00-07:00", true, "Sunday 20:00"),
            (
                "2026-01-19T01:59:00-07:00",
                true,
                "Monday 01:59 across the week end",
            ),
            ("2026-01-19T02:00:00-07:00", false, "Monday 02:00 closes"),
            ("2026-01-15T01:00:00-07:00", false, "Thursday small hours"),
            // Holiday on the Friday the window starts: closed through Saturday morning.
            ("2026-12-18T23:00:00-07:00", false, "holiday Friday night"),
            (
                "2026-12-19T03:00:00-07:00",
                false,
                "Saturday after a holiday Friday",
            ),
        ];
        for (at, want, why) in cases {
            assert_eq!(h.is_open(utc(at)), want, "{why}: {at}");
        }
    }

    #[test]
    fn holiday_after_an_overnight_start_does_not_cut_it_short() {
        let h = hours(&[(&[Thu], "22:00", "06:00")], &["2026-12-25"]);
        assert!(
            h.is_open(utc("2026-12-25T03:00:00-07:00")),
            "window started on Thursday the 24th"
        );
        assert!(h.is_open(utc("2026-12-24T23:00:00-07:00")));
    }

    #[test]
    fn midnight_to_midnight_is_a_full_day() {
        let h = hours(&[(&[Sat], "00:00", "00:00")], &[]);
        let cases = [
            ("2026-01-16T23:59:00-07:00", false),
            ("2026-01-17T00:00:00-07:00", true),
            ("2026-01-17T23:59:59-07:00", true),
            ("2026-01-18T00:00:00-07:00", false),
        ];
        for (at, want) in cases {
            assert_eq!(h.is_open(utc(at)), want, "{at}");
        }
    }

    #[test]
    fn no_windows_means_always_open_except_holidays() {
        let h = hours(&[], &["2026-12-25"]);
        assert!(h.is_open(utc("2026-01-17T03:00:00-07:00")));
        assert!(!h.is_open(utc("2026-12-25T03:00:00-07:00")));
        assert_eq!(h.describe(), "24/7 America/Denver");
    }

    #[test]
    fn describe_reads_like_a_sign_on_the_door() {
        let cases: &[(WindowSpecs, &str)] = &[
            (
                &[(WEEKDAYS, "07:00", "19:00")],
                "Mon-Fri 07:00-19:00 America/Denver",
            ),
            (
                &[
                    (WEEKDAYS, "07:00", "19:00"),
                    (&[Sat, Sun], "09:00", "13:00"),
                ],
                "Mon-Fri 07:00-19:00, Sat, Sun 09:00-13:00 America/Denver",
            ),
            (
                &[(&[Fri, Mon, Wed, Thu], "22:00", "06:00")],
                "Mon, Wed-Fri 22:00-06:00 America/Denver",
            ),
        ];
        for (windows, want) in cases {
            assert_eq!(hours(windows, &[]).describe(), *want);
        }
    }

    #[test]
    fn time_of_day_is_strict_hh_mm() {
        let cases = [
            ("07:00", Some((7, 0))),
            ("00:00", Some((0, 0))),
            ("23:59", Some((23, 59))),
            ("24:00", None),
            ("12:60", None),
            ("7:00", None),
            ("07:00:00", None),
            ("0700", None),
            ("ab:cd", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = parse_time_of_day(text).ok().map(|t| {
                use chrono::Timelike;
                (t.hour(), t.minute())
            });
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn utc_instants_map_to_the_right_local_day() {
        // Friday 23:00 in Denver is already Saturday in UTC.
        let h = hours(&[(&[Fri], "20:00", "23:30")], &[]);
        let at = chrono_tz::America::Denver
            .with_ymd_and_hms(2026, 1, 16, 23, 0, 0)
            .unwrap();
        assert!(h.is_open(at.with_timezone(&Utc)));
    }
}
