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
        // 28 December is always in the last ISO week of its year.
        let weeks = NaiveDate::from_ymd_opt(year, 12, 28).map(|d| d.iso_week().week());
        let (true, Some(weeks)) = (w.len() == 2, weeks) else {
            return Err(bad());
        };
        if !(1..=weeks).contains(&week) {
            return Err(ReportError::Invalid(format!(
                "week {s:?} does not exist: {year} has ISO weeks 01 to {weeks}"
            )));
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

    /// A `--week` as typed → the week's label, or an error containing the text.
    fn check_week(input: &str, expected: Result<&str, &str>) {
        let got = IsoWeek::parse(input)
            .map(|w| w.label())
            .map_err(|e| e.to_string());
        match (&got, expected) {
            (Ok(l), Ok(want)) => assert_eq!(l, want, "{input}"),
            (Err(e), Err(want)) => assert!(e.contains(want), "{input}: {e}"),
            _ => panic!("{input}: {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn weeks_parse_and_a_missing_week_53_is_not_a_bad_form() {
        let form = Err("is not of the form YYYY-Www");
        check_week("2024-W07", Ok("2024-W07"));
        check_week("2024-W52", Ok("2024-W52"));
        check_week("2020-W53", Ok("2020-W53"));
        check_week("2026-W53", Ok("2026-W53"));
        check_week(
            "2024-W53",
            Err("week \"2024-W53\" does not exist: 2024 has ISO weeks 01 to 52"),
        );
        check_week("2024-W00", Err("2024 has ISO weeks 01 to 52"));
        check_week("2020-W54", Err("2020 has ISO weeks 01 to 53"));
        check_week("2024-W7", form);
        check_week("2024-07", form);
        check_week("2024-Wxx", form);
        check_week("999999-W01", form);
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
