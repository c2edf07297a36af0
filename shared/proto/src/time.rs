//! Dates and times between the contract (`credit.v1.Date`, `google.protobuf.Timestamp`) and
//! chrono, in one place for every service.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::v1::Date;

/// A calendar date as the contract carries it.
pub fn to_date(date: NaiveDate) -> Date {
    Date {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap_or(0),
        day: i32::try_from(date.day()).unwrap_or(0),
    }
}

/// The calendar date a contract `Date` names; `None` when it names none (month 13, 30
/// February, ...).
pub fn from_date(date: &Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        date.year,
        u32::try_from(date.month).ok()?,
        u32::try_from(date.day).ok()?,
    )
}

/// A point in time as the contract carries it.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The point in time a `Timestamp` names (negative nanoseconds read as 0); `None` when it is
/// out of range.
pub fn from_timestamp(time: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_round_trip_and_impossible_dates_are_none() {
        let day = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap_or_default();
        assert_eq!(from_date(&to_date(day)), Some(day));
        assert_eq!(
            from_date(&Date {
                year: 2026,
                month: 2,
                day: 30
            }),
            None
        );
        let now = Utc::now();
        assert_eq!(from_timestamp(&timestamp(now)), Some(now));
    }
}
