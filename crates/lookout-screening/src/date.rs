//! Partial calendar dates (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`), as found on
//! watch-list records where only a birth year or year and month is known.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string or a set of fields is not a valid [`PartialDate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// The text is not `YYYY`, `YYYY-MM` or `YYYY-MM-DD` with ASCII digits.
    #[error("date {0:?} is not in the form YYYY, YYYY-MM or YYYY-MM-DD")]
    Format(String),
    /// Year 0 is not a calendar year.
    #[error("year {0} is out of range (1..=9999)")]
    Year(u16),
    /// Month outside 1..=12.
    #[error("month {0} is out of range (1..=12)")]
    Month(u8),
    /// Day outside the month (leap years respected).
    #[error("day {day} does not exist in {year:04}-{month:02}")]
    Day {
        /// Year of the rejected date.
        year: u16,
        /// Month of the rejected date.
        month: u8,
        /// The rejected day.
        day: u8,
    },
    /// A day was given without a month.
    #[error("a day requires a month")]
    DayWithoutMonth,
}

/// A date of which at least the year is known. Invariants (checked by
/// [`PartialDate::new`], [`PartialDate::parse`] and deserialisation):
/// `1 <= year <= 9999`; `day` only with `month`; month 1..=12; the day exists
/// in that month of that year (Gregorian leap years).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "PartialDateFields")]
pub struct PartialDate {
    /// Year, 1..=9999.
    pub year: u16,
    /// Month, 1..=12, if known.
    pub month: Option<u8>,
    /// Day of month, if known (only with a month).
    pub day: Option<u8>,
}

/// Unvalidated mirror used only to validate on deserialisation.
#[derive(Deserialize)]
struct PartialDateFields {
    year: u16,
    month: Option<u8>,
    day: Option<u8>,
}

impl TryFrom<PartialDateFields> for PartialDate {
    type Error = DateError;
    fn try_from(f: PartialDateFields) -> Result<Self, Self::Error> {
        PartialDate::new(f.year, f.month, f.day)
    }
}

/// Gregorian leap-year rule.
pub fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Number of days in `month` (1..=12) of `year`; 0 for an invalid month.
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl PartialDate {
    /// Builds a validated date.
    pub fn new(year: u16, month: Option<u8>, day: Option<u8>) -> Result<Self, DateError> {
        if !(1..=9999).contains(&year) {
            return Err(DateError::Year(year));
        }
        match (month, day) {
            (None, Some(_)) => return Err(DateError::DayWithoutMonth),
            (Some(m), _) if !(1..=12).contains(&m) => return Err(DateError::Month(m)),
            (Some(m), Some(d)) if d == 0 || d > days_in_month(year, m) => {
                return Err(DateError::Day {
                    year,
                    month: m,
                    day: d,
                });
            }
            _ => {}
        }
        Ok(PartialDate { year, month, day })
    }

    /// A year-only date.
    pub fn year_only(year: u16) -> Result<Self, DateError> {
        Self::new(year, None, None)
    }

    /// A full date.
    pub fn ymd(year: u16, month: u8, day: u8) -> Result<Self, DateError> {
        Self::new(year, Some(month), Some(day))
    }

    /// Parses exactly `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (ASCII digits, fixed
    /// widths, no surrounding whitespace). Never panics.
    pub fn parse(text: &str) -> Result<Self, DateError> {
        let format_err = || DateError::Format(text.to_string());
        let parts: Vec<&str> = text.split('-').collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err(format_err());
        }
        let widths = [4usize, 2, 2];
        let mut nums = [0u16; 3];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != widths[i] || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format_err());
            }
            nums[i] = p
                .bytes()
                .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
        }
        // Widths guarantee month/day fit in u8 (at most 99).
        let month = (parts.len() >= 2).then_some(nums[1] as u8);
        let day = (parts.len() == 3).then_some(nums[2] as u8);
        Self::new(nums[0], month, day)
    }

    /// True when month and day are both known.
    pub fn is_full(&self) -> bool {
        self.month.is_some() && self.day.is_some()
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
            if let Some(d) = self.day {
                write!(f, "-{d:02}")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for PartialDate {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PartialDate::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_precisions() {
        assert_eq!(
            PartialDate::parse("1980").unwrap(),
            PartialDate {
                year: 1980,
                month: None,
                day: None
            }
        );
        assert_eq!(
            PartialDate::parse("1980-07").unwrap(),
            PartialDate {
                year: 1980,
                month: Some(7),
                day: None
            }
        );
        assert_eq!(
            PartialDate::parse("1980-07-14").unwrap(),
            PartialDate {
                year: 1980,
                month: Some(7),
                day: Some(14)
            }
        );
        for s in ["1980", "1980-07", "1980-07-14", "0001-01-01", "9999-12-31"] {
            assert_eq!(PartialDate::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn leap_years() {
        assert!(PartialDate::parse("2000-02-29").is_ok()); // divisible by 400
        assert!(PartialDate::parse("2024-02-29").is_ok());
        assert_eq!(
            PartialDate::parse("1900-02-29").unwrap_err(),
            DateError::Day {
                year: 1900,
                month: 2,
                day: 29
            }
        );
        assert!(PartialDate::parse("2023-02-29").is_err());
        assert!(PartialDate::parse("2023-02-28").is_ok());
        assert!(PartialDate::parse("2023-04-31").is_err());
        assert!(PartialDate::parse("2023-12-31").is_ok());
        assert!(PartialDate::parse("2023-01-00").is_err());
    }

    #[test]
    fn rejects_bad_shapes_with_clear_errors() {
        for s in [
            "",
            "80",
            "19800",
            "1980-7",
            "1980-07-1",
            "1980/07/14",
            " 1980",
            "1980-",
            "1980-07-14-01",
            "１９８０",
            "+980",
        ] {
            assert_eq!(
                PartialDate::parse(s),
                Err(DateError::Format(s.to_string())),
                "{s:?}"
            );
        }
        assert_eq!(PartialDate::parse("1980-13"), Err(DateError::Month(13)));
        assert_eq!(PartialDate::parse("1980-00"), Err(DateError::Month(0)));
        assert_eq!(PartialDate::parse("0000"), Err(DateError::Year(0)));
        assert_eq!(
            PartialDate::new(1980, None, Some(3)),
            Err(DateError::DayWithoutMonth)
        );
        assert!(
            PartialDate::parse("1980-02-30")
                .unwrap_err()
                .to_string()
                .contains("1980-02")
        );
    }

    #[test]
    fn deserialisation_validates() {
        let ok: PartialDate = serde_json::from_str(r#"{"year":1980,"month":2,"day":29}"#).unwrap();
        assert_eq!(ok.to_string(), "1980-02-29");
        assert!(
            serde_json::from_str::<PartialDate>(r#"{"year":1981,"month":2,"day":29}"#).is_err()
        );
        assert!(
            serde_json::from_str::<PartialDate>(r#"{"year":1981,"month":null,"day":2}"#).is_err()
        );
    }
}
