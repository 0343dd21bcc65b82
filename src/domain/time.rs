//! The one timestamp format of the API, the streams and the history.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// The domain's point in time: UTC, without an offset (as the database stores it).
pub type Timestamp = NaiveDateTime;

/// `t` cut to whole microseconds: the precision the database keeps, so a time the saga holds
/// compares equal to the same time read back from a row (a timer's `due_at`).
pub fn to_micros(t: Timestamp) -> Timestamp {
    DateTime::<Utc>::from_timestamp_micros(t.and_utc().timestamp_micros()).map_or(t, |d| d.naive_utc())
}

/// RFC 3339 in UTC with microseconds, e.g. `2026-11-29T05:12:42.123456Z`.
pub fn rfc3339(t: NaiveDateTime) -> String {
    DateTime::<Utc>::from_naive_utc_and_offset(t, Utc).to_rfc3339_opts(SecondsFormat::Micros, true)
}
