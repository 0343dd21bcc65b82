//! The history side of the streams: where "now" is in the global event sequence, and the events
//! after a given id, turned into the same [`LiveEvent`]s the writer publishes.

use diesel::prelude::*;

use super::Scope;
use crate::domain::rfc3339;
use crate::http::audit;
use crate::messages::LiveEvent;
use crate::persistence::{queries, AnyConnection, EventRow, StoreError};

/// Events read from the history per query while a stream catches up.
pub const PAGE: i64 = 500;

/// The one column of `loan_events` the streams need beyond `queries`: the persistence schema is
/// private to its module, so this read-only mirror names just the id.
mod mirror {
    diesel::table! {
        loan_events (id) {
            id -> BigInt,
        }
    }
}

/// The newest event id in the history, 0 when there is none.
pub fn latest_event_id(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    use mirror::loan_events;
    let newest: Option<i64> = loan_events::table.select(diesel::dsl::max(loan_events::id)).first(conn)?;
    Ok(newest.unwrap_or(0))
}

/// The next events of `scope` after `after`, oldest first, and whether more may follow.
///
/// A page of the global history never ends inside a unit of work: the status of an event is only
/// known once the unit's last event is read (see [`with_unit_status`]), so the trailing unit of a
/// full page is left for the next page.
pub fn page_after(conn: &mut AnyConnection, scope: &Scope, after: i64) -> Result<(Vec<LiveEvent>, bool), StoreError> {
    match scope {
        Scope::Loan { id, .. } => {
            let rows = queries::events_of(conn, *id)?.into_iter().filter(|row| row.id > after).collect();
            Ok((with_unit_status(rows), false))
        }
        Scope::All => {
            let mut rows = queries::events_after(conn, after, PAGE)?;
            let full = rows.len() as i64 == PAGE;
            if full {
                drop_trailing_unit(&mut rows);
            }
            Ok((with_unit_status(rows), full))
        }
    }
}

/// Events of one unit of work share their loan and their timestamp, and their ids are
/// consecutive (one writer applies units one after the other).
fn same_unit(a: &EventRow, b: &EventRow) -> bool {
    a.loan_id == b.loan_id && a.at == b.at
}

/// Drop the last unit of a page, unless the page holds nothing else (then it is kept whole).
fn drop_trailing_unit(rows: &mut Vec<EventRow>) {
    let Some(last) = rows.last() else { return };
    let keep = rows.iter().rposition(|row| !same_unit(row, last)).map_or(rows.len(), |i| i + 1);
    rows.truncate(keep);
}

/// The status a loan has after the unit of work that recorded an event of this type. The writer
/// publishes the unit's status with each live event; history rows do not store it, but the last
/// event of a unit implies it.
fn implied_status(kind: &str, data: &serde_json::Value) -> String {
    if audit::is_staff_action(kind) {
        // Recorded with the status the loan had when staff acted.
        return data.get("status").and_then(|s| s.as_str()).unwrap_or("evaluating").to_owned();
    }
    let status = match kind {
        // A submission starts its loan in the same unit.
        "LoanSubmitted" => "evaluating",
        "LoanApproved" | "ScheduleGenerated" => "approved",
        "LoanRejected" => "rejected",
        "LoanCancelled" => "cancelled",
        "ApplicantNotified" => data.get("status").and_then(|s| s.as_str()).unwrap_or("evaluating"),
        // The human steps. A claim may also come while the applicant is asked, and a notice's
        // confirmation after an answer or a closing: the status they nearly always come with.
        "LoanReferred" | "ReviewEscalated" | "InformationProvided" | "ReviewClaimed" => "under_review",
        "InformationRequested"
        | "InformationRequestSent"
        | "InformationReminderSent"
        | "InformationDeadlineExtended" => "awaiting_information",
        _ => "evaluating",
    };
    status.to_owned()
}

/// History rows as live events, each carrying the status its unit of work left the loan in.
pub fn with_unit_status(rows: Vec<EventRow>) -> Vec<LiveEvent> {
    let data: Vec<serde_json::Value> =
        rows.iter().map(|row| serde_json::from_str(&row.data).unwrap_or(serde_json::Value::Null)).collect();
    let mut statuses = vec![String::new(); rows.len()];
    for i in (0..rows.len()).rev() {
        let unit_continues = rows.get(i + 1).is_some_and(|next| same_unit(&rows[i], next));
        statuses[i] =
            if unit_continues { statuses[i + 1].clone() } else { implied_status(&rows[i].event_type, &data[i]) };
    }
    rows.into_iter()
        .zip(data)
        .zip(statuses)
        .map(|((row, data), status)| LiveEvent {
            id: row.id,
            kind: row.event_type,
            loan_id: row.loan_id,
            status,
            at: rfc3339(row.at),
            data,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;

    use super::*;

    fn at(second: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(12, 0, second).unwrap()
    }

    fn row(id: i64, loan: &str, kind: &str, second: u32, data: &str) -> EventRow {
        EventRow { id, loan_id: loan.into(), event_type: kind.into(), at: at(second), data: data.into() }
    }

    #[test]
    fn events_of_one_unit_share_the_status_its_last_event_implies() {
        let rows = vec![
            row(1, "a", "LoanSubmitted", 0, "{}"),
            row(2, "a", "CreditChecked", 1, "{}"),
            row(3, "a", "PropertyAppraised", 2, "{}"),
            row(4, "a", "LoanApproved", 2, "{}"),
            row(5, "a", "ScheduleGenerated", 3, "{}"),
            row(6, "a", "ApplicantNotified", 4, r#"{"channel":"email","status":"approved"}"#),
        ];
        let statuses: Vec<String> = with_unit_status(rows).into_iter().map(|e| e.status).collect();
        assert_eq!(statuses, ["evaluating", "evaluating", "approved", "approved", "approved", "approved"]);
    }

    #[test]
    fn compensation_before_a_cancellation_in_the_same_unit_reports_cancelled() {
        let rows = vec![
            row(7, "b", "AppraisalFailed", 5, "{}"),
            row(8, "c", "CreditChecked", 5, "{}"),
            row(9, "b", "CreditCheckReleased", 6, "{}"),
            row(10, "b", "LoanCancelled", 6, "{}"),
            row(11, "b", "ApplicantNotified", 7, r#"{"status":"cancelled"}"#),
        ];
        let statuses: Vec<String> = with_unit_status(rows).into_iter().map(|e| e.status).collect();
        assert_eq!(statuses, ["evaluating", "evaluating", "cancelled", "cancelled", "cancelled"]);
    }

    #[test]
    fn the_human_steps_report_the_status_they_leave_the_loan_in() {
        let rows = vec![
            row(1, "h", "CreditChecked", 1, "{}"),
            row(2, "h", "PropertyAppraised", 2, "{}"),
            row(3, "h", "LoanReferred", 2, "{}"),
            row(4, "h", "ReviewEscalated", 3, "{}"),
            row(5, "h", "InformationRequested", 4, "{}"),
            row(6, "h", "InformationRequestSent", 5, "{}"),
            row(7, "h", "InformationProvided", 6, "{}"),
            row(8, "h", "InformationRequested", 7, "{}"),
            row(9, "h", "InformationRequestExpired", 8, "{}"),
        ];
        let statuses: Vec<String> = with_unit_status(rows).into_iter().map(|e| e.status).collect();
        let expected = [
            "evaluating",
            "under_review",
            "under_review",
            "under_review",
            "awaiting_information",
            "awaiting_information",
            "under_review",
            "awaiting_information",
            "evaluating",
        ];
        assert_eq!(statuses, expected);
    }

    #[test]
    fn a_full_page_leaves_its_trailing_unit_for_the_next_page() {
        let mut rows = vec![
            row(1, "a", "CreditChecked", 1, "{}"),
            row(2, "b", "PropertyAppraised", 2, "{}"),
            row(3, "b", "LoanApproved", 2, "{}"),
        ];
        drop_trailing_unit(&mut rows);
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);

        let mut one_unit = vec![row(2, "b", "PropertyAppraised", 2, "{}"), row(3, "b", "LoanApproved", 2, "{}")];
        drop_trailing_unit(&mut one_unit);
        assert_eq!(one_unit.len(), 2, "a page that is one unit is kept whole");
    }
}
