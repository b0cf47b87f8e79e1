//! Calendar helpers shared by every layer: the ISO week (`YYYY-Www`, Monday to
//! Sunday, UTC dates) that reports and the daemon are organised by, and days since the
//! Unix epoch (polars' `Date` representation).
//! Invariant: pure functions of their arguments; no clock.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use crate::error::ReportError;

/// Milliseconds in an hour, a day and a week (observation times are ms since the epoch).
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
pub const WEEK_MS: i64 = 7 * DAY_MS;
/// 1970-01-05, the first Monday after the Unix epoch: ISO weeks in ms start from it.
pub const FIRST_MONDAY_MS: i64 = 4 * DAY_MS;

/// The years an observation time may fall in. GPU rental price lists start after
/// 2000, and a store of this century's prices has nothing dated 2100 or later, so a
/// year outside is a typo (`1024` for `2024`); taken as given it would make the
/// rollups cover every ISO week in between (tens of thousands of files).
pub const OBSERVATION_YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

/// `d` is in [`OBSERVATION_YEARS`].
pub fn plausible(d: NaiveDate) -> bool {
    OBSERVATION_YEARS.contains(&d.year())
}

/// Why `d` cannot be an observation date, for a message after what gave it.
pub fn implausible_why(d: NaiveDate) -> String {
    format!(
        "year {} is outside the years {} to {} an observation may have (a typo?)",
        d.year(),
        OBSERVATION_YEARS.start(),
        OBSERVATION_YEARS.end()
    )
}

/// Days since 1970-01-01 (polars' Date representation).
pub fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")).num_days() as i32
}

/// An ISO week: `YYYY-Www`, Monday to Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsoWeek {
    pub year: i32,
    pub week: u32,
}

impl IsoWeek {
    pub fn parse(s: &str) -> Result<Self, ReportError> {
        let bad = || {
            ReportError::Invalid(format!(
                "week {s:?} is not of the form YYYY-Www (e.g. 2024-W07)"
            ))
        };
        let (y, w) = s.split_once("-W").ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let week: u32 = w.parse().map_err(|_| bad())?;
        if w.len() != 2 || NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).is_none() {
            return Err(bad());
        }
        Ok(Self { year, week })
    }
    pub fn of(d: NaiveDate) -> Self {
        let iw = d.iso_week();
        Self {
            year: iw.year(),
            week: iw.week(),
        }
    }
    pub fn monday(&self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon).expect("validated week")
    }
    pub fn sunday(&self) -> NaiveDate {
        self.monday() + Duration::days(6)
    }
    pub fn prev(&self) -> Self {
        Self::of(self.monday() - Duration::days(7))
    }
    pub fn label(&self) -> String {
        format!("{}-W{:02}", self.year, self.week)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A date → whether it may be an observation's.
    fn check(date: &str, expected: bool) {
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        assert_eq!(plausible(d), expected, "{date}");
    }

    #[test]
    fn observation_years_are_this_century() {
        check("2000-01-01", true);
        check("2024-10-07", true);
        check("2099-12-31", true);
        check("1999-12-31", false);
        check("1024-10-07", false);
        check("0000-01-01", false);
        check("2100-01-01", false);
        check("9999-12-31", false);
    }
}
