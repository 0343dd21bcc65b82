//! Reads, as plain functions over a connection (run them through `Database::read`).

use diesel::dsl::count_star;
use diesel::prelude::*;

use super::connection::AnyConnection;
use super::records::{DeadLetterRow, DocumentRow, EventRow, LoanRow, OutboxRow};
use super::schema::{dead_letters, documents, idempotency_keys, loan_events, loans, outbox};
use super::StoreError;
use crate::domain::{LoanId, MessageId};
use crate::saga::{IN_FLIGHT_STEPS, PEOPLE_STEPS};

/// The `loans_waiting` index's predicate, word for word (see its migration): SQLite and
/// PostgreSQL read a partial index for a query that repeats it.
const WAITING_LONG: &str = "waiting_on IN ('underwriter', 'applicant', 'schedule', 'notification')";

/// The statuses of a loan waiting on one of [`IN_FLIGHT_STEPS`] (the status index finds them).
const IN_FLIGHT_STATUSES: [&str; 2] = ["submitted", "evaluating"];

/// [`WAITING_LONG`] as a filter.
pub(super) fn waiting_long() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql(WAITING_LONG)
}

pub fn loan(conn: &mut AnyConnection, id: LoanId) -> Result<Option<LoanRow>, StoreError> {
    Ok(loans::table.find(id.to_string()).select(LoanRow::as_select()).first(conn).optional()?)
}

/// A claimed idempotency key: the loan it is for and the hash of the request that claimed it,
/// if it was claimed at or after `not_before` (an older claim has expired).
pub fn idempotency_key(
    conn: &mut AnyConnection,
    key: &str,
    not_before: chrono::NaiveDateTime,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(idempotency_keys::table
        .filter(idempotency_keys::key.eq(key))
        .filter(idempotency_keys::created_at.ge(not_before))
        .select((idempotency_keys::loan_id, idempotency_keys::request_hash))
        .first(conn)
        .optional()?)
}

/// The applicant's email of loan `id` (the notifier reads it when it sends).
pub fn applicant_email(conn: &mut AnyConnection, id: LoanId) -> Result<Option<String>, StoreError> {
    Ok(loans::table.find(id.to_string()).select(loans::applicant_email).first(conn).optional()?)
}

/// Which loans a list shows.
#[derive(Debug, Clone, Default)]
pub struct LoanFilter {
    /// Only loans with this status.
    pub status: Option<String>,
    /// Only loans waiting on this step.
    pub waiting_on: Option<String>,
}

/// Newest first; `before` is the id the previous page ended with (ids are time-ordered v7).
pub fn list_loans(
    conn: &mut AnyConnection,
    filter: LoanFilter,
    before: Option<LoanId>,
    limit: i64,
) -> Result<Vec<LoanRow>, StoreError> {
    let mut query = loans::table.select(LoanRow::as_select()).order(loans::id.desc()).limit(limit).into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(loans::status.eq(status));
    }
    if let Some(step) = filter.waiting_on {
        query = if IN_FLIGHT_STEPS.contains(&step.as_str()) {
            query.filter(loans::status.eq_any(IN_FLIGHT_STATUSES))
        } else {
            query.filter(waiting_long())
        };
        query = query.filter(loans::waiting_on.eq(step));
    }
    if let Some(before) = before {
        query = query.filter(loans::id.lt(before.to_string()));
    }
    Ok(query.load(conn)?)
}

/// Number of loans per status.
pub fn count_by_status(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(loans::table.group_by(loans::status).select((loans::status, count_star())).load(conn)?)
}

/// Per step loans wait on: how many, and since when the oldest waits. One pass over the
/// `loans_waiting` index for the steps a loan may wait on for long, and one over the loans in
/// flight (by status) for the automatic steps.
pub fn waiting_by_step(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, i64, Option<chrono::NaiveDateTime>)>, StoreError> {
    use diesel::dsl::min;
    let columns = (loans::waiting_on, count_star(), min(loans::waiting_since));
    let mut rows: Vec<(Option<String>, i64, Option<chrono::NaiveDateTime>)> =
        loans::table.filter(waiting_long()).group_by(loans::waiting_on).select(columns).load(conn)?;
    rows.extend(
        loans::table
            .filter(loans::status.eq_any(IN_FLIGHT_STATUSES))
            .filter(loans::waiting_on.is_not_null())
            .group_by(loans::waiting_on)
            .select(columns)
            .load::<(Option<String>, i64, Option<chrono::NaiveDateTime>)>(conn)?,
    );
    Ok(rows.into_iter().filter_map(|(step, n, oldest)| Some((step?, n, oldest))).collect())
}

/// A loan's history, oldest first.
pub fn events_of(conn: &mut AnyConnection, id: LoanId) -> Result<Vec<EventRow>, StoreError> {
    Ok(loan_events::table
        .filter(loan_events::loan_id.eq(id.to_string()))
        .order(loan_events::id.asc())
        .select(EventRow::as_select())
        .load(conn)?)
}

/// Every loan's events after a global event id, oldest first.
pub fn events_after(conn: &mut AnyConnection, after: i64, limit: i64) -> Result<Vec<EventRow>, StoreError> {
    Ok(loan_events::table
        .filter(loan_events::id.gt(after))
        .order(loan_events::id.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)?)
}

pub fn document_of(conn: &mut AnyConnection, id: LoanId) -> Result<Option<DocumentRow>, StoreError> {
    Ok(documents::table
        .filter(documents::loan_id.eq(id.to_string()))
        .select(DocumentRow::as_select())
        .first(conn)
        .optional()?)
}

/// Undelivered messages, in the order they were emitted, after `after_seq`.
pub fn outbox_after(conn: &mut AnyConnection, after_seq: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(outbox::table
        .filter(outbox::seq.gt(after_seq))
        .order(outbox::seq.asc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// The stored envelope (JSON) of outbox row `message_id`, if it is still there.
pub fn outbox_envelope(conn: &mut AnyConnection, message_id: MessageId) -> Result<Option<String>, StoreError> {
    Ok(outbox::table
        .filter(outbox::message_id.eq(message_id.to_string()))
        .select(outbox::envelope)
        .first(conn)
        .optional()?)
}

pub fn outbox_len(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(outbox::table.count().get_result(conn)?)
}

/// Cluster mode: outbox rows the broker has not confirmed yet.
pub fn unpublished_count(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(outbox::table.filter(outbox::published_at.is_null()).count().get_result(conn)?)
}

pub fn dead_letters(conn: &mut AnyConnection, limit: i64) -> Result<Vec<DeadLetterRow>, StoreError> {
    Ok(dead_letters::table
        .order(dead_letters::failed_at.desc())
        .limit(limit)
        .select(DeadLetterRow::as_select())
        .load(conn)?)
}

/// Rows per table: operators' overview, and how tests prove a failed request wrote nothing.
pub fn table_counts(conn: &mut AnyConnection) -> Result<Vec<(&'static str, i64)>, StoreError> {
    use super::schema::{idempotency_keys, notifications};
    Ok(vec![
        ("loans", loans::table.count().get_result(conn)?),
        ("loan_events", loan_events::table.count().get_result(conn)?),
        ("documents", documents::table.count().get_result(conn)?),
        ("notifications", notifications::table.count().get_result(conn)?),
        ("outbox", outbox::table.count().get_result(conn)?),
        ("dead_letters", dead_letters::table.count().get_result(conn)?),
        ("idempotency_keys", idempotency_keys::table.count().get_result(conn)?),
        ("timers", super::schema::timers::table.count().get_result(conn)?),
    ])
}

/// Which unfinished loans operators look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// Every one.
    All,
    /// Those waiting on the system: a loan waiting on a person ([`PEOPLE_STEPS`]) is not stuck.
    Stuck,
}

/// Loans without a recorded notification (not finished) submitted before `submitted_before`,
/// oldest first: what operators look at for stuck loans.
pub fn unfinished_loans(
    conn: &mut AnyConnection,
    which: Unfinished,
    submitted_before: chrono::NaiveDateTime,
    limit: i64,
) -> Result<Vec<LoanRow>, StoreError> {
    let mut query = loans::table
        .filter(loans::notified_at.is_null())
        .filter(loans::submitted_at.lt(submitted_before))
        .order((loans::submitted_at.asc(), loans::id.asc()))
        .limit(limit)
        .select(LoanRow::as_select())
        .into_boxed();
    if which == Unfinished::Stuck {
        query = query.filter(loans::waiting_on.is_null().or(loans::waiting_on.ne_all(PEOPLE_STEPS)));
    }
    Ok(query.load(conn)?)
}

/// The outbox rows (messages not yet consumed) of some loans, in emission order, each with its
/// loan id, destination and kind.
pub fn outbox_of_loans(
    conn: &mut AnyConnection,
    loan_ids: &[String],
) -> Result<Vec<(String, String, String, OutboxRow)>, StoreError> {
    Ok(outbox::table
        .filter(outbox::loan_id.eq_any(loan_ids))
        .order(outbox::seq.asc())
        .select((outbox::loan_id, outbox::destination, outbox::kind, OutboxRow::as_select()))
        .load(conn)?)
}

pub fn dead_letter(conn: &mut AnyConnection, id: &str) -> Result<Option<DeadLetterRow>, StoreError> {
    Ok(dead_letters::table.find(id.to_owned()).select(DeadLetterRow::as_select()).first(conn).optional()?)
}
