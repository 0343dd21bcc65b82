//! The JSON shapes the API returns, each with its OpenAPI schema (`ToSchema`), and the schema of
//! the one body it takes. Views of the admin routes, the dead letters, health and the streams
//! sit next to their handlers.

mod application;
mod domain;
mod loan;
mod schedule;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

pub use application::LoanApplicationRequest;
pub use loan::{ApplicantView, EventView, LoanPage, LoanStats, LoanView, PropertyView};
pub use schedule::{ScheduleLineView, ScheduleView};

/// RFC 3339 in UTC with microseconds, e.g. `2026-11-29T05:12:42.123456Z`.
pub fn rfc3339(t: NaiveDateTime) -> String {
    DateTime::<Utc>::from_naive_utc_and_offset(t, Utc).to_rfc3339_opts(SecondsFormat::Micros, true)
}
