//! The durable timers' rows: claiming one as it fires, and the reads of the timer component
//! (the next ones due, in pages by `due_at`), of the admin listing and of the escalation sweep.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::connection::AnyConnection;
use super::records::TimerRow;
use super::schema::{loan_events, loans, outbox, timers};
use super::StoreError;
use crate::domain::MessageId;

/// Where a page of timers (in `due_at`, `id` order) starts: after this one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey {
    pub due_at: NaiveDateTime,
    pub id: String,
}

impl TimerRow {
    pub fn key(&self) -> TimerKey {
        TimerKey { due_at: self.due_at, id: self.id.clone() }
    }
}

/// Take timer `id` (delete its row) inside the unit that fires it: false if it is gone (fired
/// already) or, on PostgreSQL, held by another transaction firing it now (`SKIP LOCKED`: this
/// one never waits for it; should that other one fail, the row is due and fires again). SQLite
/// has one writer: nothing else holds the row.
pub(super) fn claim(conn: &mut AnyConnection, id: MessageId) -> diesel::QueryResult<bool> {
    let id = id.to_string();
    let deleted = match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(
            "DELETE FROM timers WHERE id = (SELECT id FROM timers WHERE id = $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind::<diesel::sql_types::Text, _>(id)
        .execute(c)?,
        AnyConnection::Sqlite(c) => diesel::delete(timers::table.find(id)).execute(c)?,
    };
    Ok(deleted == 1)
}

/// Delete the timers of `requests` (of loan `loan_id`): they no longer apply.
pub(super) fn drop_requests(
    conn: &mut AnyConnection,
    loan_id: &str,
    requests: &[String],
) -> diesel::QueryResult<usize> {
    let mut dropped = 0;
    for request in requests {
        dropped +=
            diesel::delete(timers::table.filter(timers::request_id.eq(request)).filter(timers::loan_id.eq(loan_id)))
                .execute(conn)?;
    }
    Ok(dropped)
}

/// Where a read of the timers in due order starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// From the first.
    Start,
    /// After every timer due at or before this time.
    Time(NaiveDateTime),
    /// After this timer.
    Key(TimerKey),
}

/// The timers due at or before `until`, from `after`, in due order; at most `limit`.
pub fn due_until(
    conn: &mut AnyConnection,
    after: After,
    until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<TimerRow>, StoreError> {
    in_due_order(conn, after, Some(until), limit)
}

/// Every pending timer from `after`, in due order; at most `limit`.
pub fn pending(conn: &mut AnyConnection, after: After, limit: i64) -> Result<Vec<TimerRow>, StoreError> {
    in_due_order(conn, after, None, limit)
}

fn in_due_order(
    conn: &mut AnyConnection,
    after: After,
    until: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<TimerRow>, StoreError> {
    let mut query = timers::table
        .order((timers::due_at.asc(), timers::id.asc()))
        .limit(limit)
        .select(TimerRow::as_select())
        .into_boxed();
    if let Some(until) = until {
        query = query.filter(timers::due_at.le(until));
    }
    match after {
        After::Start => {}
        After::Time(due_at) => query = query.filter(timers::due_at.gt(due_at)),
        After::Key(TimerKey { due_at, id }) => {
            query = query.filter(timers::due_at.gt(due_at).or(timers::due_at.eq(due_at).and(timers::id.gt(id))));
        }
    }
    Ok(query.load(conn)?)
}

/// Loans waiting on `step` since before `since`, for which no event `escalated` is recorded and
/// no message of kind `message_kind` waits in the outbox: the loans an escalation sweep sends
/// that message to. Oldest first, at most `limit`.
pub fn waiting_unescalated(
    conn: &mut AnyConnection,
    step: &str,
    since: NaiveDateTime,
    escalated: &str,
    message_kind: &str,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let recorded = loan_events::table
        .filter(loan_events::loan_id.eq(loans::id))
        .filter(loan_events::event_type.eq(escalated.to_owned()));
    let pending = outbox::table.filter(outbox::loan_id.eq(loans::id)).filter(outbox::kind.eq(message_kind.to_owned()));
    // `step` is one a loan may wait on for long: the `loans_waiting` index serves it.
    Ok(loans::table
        .filter(super::queries::waiting_long())
        .filter(loans::waiting_on.eq(step.to_owned()))
        .filter(loans::waiting_since.lt(since))
        .filter(diesel::dsl::not(diesel::dsl::exists(recorded)))
        .filter(diesel::dsl::not(diesel::dsl::exists(pending)))
        .order(loans::waiting_since.asc())
        .limit(limit)
        .select(loans::id)
        .load(conn)?)
}

#[cfg(test)]
#[path = "timers_tests.rs"]
mod tests;
