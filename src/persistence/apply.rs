//! Writing units of work inside the writer's transaction: one unit at a time (in a savepoint),
//! or the statements a batch's units share (one DELETE of the messages they consume, one
//! multi-row INSERT per table, on PostgreSQL one UPDATE of the loans).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::connection::AnyConnection;
use super::loan_update::{UpdateLoanState, UpdateLoanStates};
use super::records::{DocumentRow, LoanRow, NewEventRow, NewOutboxRow, NotificationRow, TimerRow};
use super::schema::{dead_letters, documents, idempotency_keys, loan_events, loans, notifications, outbox};
use super::unit_of_work::{CommitOutcome, IdempotencyRecord, StaffChange, Step, StepChange, UnitOfWork};
use super::{erasure, timers, tokens};
use crate::domain::{LoanId, MessageId};

/// Inside a savepoint: `Skip` rolls the unit back without failing the batch.
#[derive(Debug)]
pub(super) enum ApplyError {
    Skip(CommitOutcome),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for ApplyError {
    fn from(err: diesel::result::Error) -> Self {
        ApplyError::Db(err)
    }
}

/// Everything of a unit but its events (see [`insert_events`]).
pub(super) fn apply_unit(conn: &mut AnyConnection, unit: &UnitOfWork) -> Result<(), ApplyError> {
    if let Some(id) = unit.consumes() {
        let deleted = diesel::delete(outbox::table.filter(outbox::message_id.eq(id.to_string()))).execute(conn)?;
        if deleted == 0 {
            return Err(ApplyError::Skip(CommitOutcome::Duplicate));
        }
    }
    apply_state(conn, unit, false)?;
    insert_rows(conn, &[unit])?;
    Ok(())
}

/// Everything of a unit but consuming its message, the rows it inserts and its events, and its
/// loan update if `loan_update_batched`: a batch does those for all its units at once
/// ([`consume_all`], [`update_loans`], [`insert_rows`], [`insert_events`]).
pub(super) fn apply_state(
    conn: &mut AnyConnection,
    unit: &UnitOfWork,
    loan_update_batched: bool,
) -> Result<(), ApplyError> {
    match unit {
        UnitOfWork::Step(Step { loan_id, change, .. }) => match change {
            StepChange::Applied { .. } if loan_update_batched => {}
            StepChange::Applied { row, expected_version, .. } => {
                let updated = UpdateLoanState { row, expected_version: *expected_version }.execute(conn)?;
                if updated == 0 {
                    return Err(ApplyError::Skip(CommitOutcome::Conflict));
                }
            }
            StepChange::Ignored { expected_version } => {
                let current: Option<i64> =
                    loans::table.find(loan_id.to_string()).select(loans::version).first(conn).optional()?;
                if current != Some(*expected_version) {
                    return Err(ApplyError::Skip(CommitOutcome::Conflict));
                }
            }
        },
        // The loan is inserted with the other new rows (`insert_rows`).
        UnitOfWork::Submission(submission) => {
            if let Some(record) = &submission.idempotency {
                claim_idempotency_key(conn, submission.loan_id, record)?;
            }
        }
        // Always its own UPDATE (`update_loans` batches steps only): a person's input is rare.
        UnitOfWork::Input(input) => {
            if let Some(record) = &input.idempotency {
                claim_idempotency_key(conn, input.loan_id, record)?;
            }
            let updated =
                UpdateLoanState { row: &input.row, expected_version: input.expected_version }.execute(conn)?;
            if updated == 0 {
                return Err(ApplyError::Skip(CommitOutcome::Conflict));
            }
        }
        UnitOfWork::DeadLetter { row, .. } => {
            diesel::insert_into(dead_letters::table).values(row).execute(conn)?;
        }
        UnitOfWork::Replay { message_id, .. } => {
            let removed =
                diesel::delete(dead_letters::table.filter(dead_letters::message_id.eq(message_id.to_string())))
                    .execute(conn)?;
            if removed == 0 {
                return Err(ApplyError::Skip(CommitOutcome::Duplicate));
            }
        }
        UnitOfWork::MarkPublished { ids, at, .. } => {
            mark_published(conn, ids, *at)?;
        }
        UnitOfWork::RecordAttempt { message_id, envelope, .. } => {
            let updated = diesel::update(outbox::table.filter(outbox::message_id.eq(message_id.to_string())))
                .set(outbox::envelope.eq(envelope))
                .execute(conn)?;
            if updated == 0 {
                // Consumed meanwhile: nothing left to count.
                return Err(ApplyError::Skip(CommitOutcome::Duplicate));
            }
        }
        UnitOfWork::Fire { claims: Some(timer), .. } => {
            if !timers::claim(conn, *timer)? {
                // Fired already, or being fired by another node right now.
                return Err(ApplyError::Skip(CommitOutcome::Duplicate));
            }
        }
        // The message goes in with the other new rows (`insert_rows`).
        UnitOfWork::Fire { claims: None, .. } => {}
        UnitOfWork::StaffAction { change: StaffChange::Nothing, .. } => {}
        UnitOfWork::StaffAction { loan_id, change: StaffChange::RevokeToken { from, to }, .. } => {
            if !tokens::advance(conn, &loan_id.to_string(), *from, *to)? {
                return Err(ApplyError::Skip(CommitOutcome::Conflict));
            }
        }
        UnitOfWork::StaffAction { loan_id, change: StaffChange::ErasePersonalData, record } => {
            if !erasure::erase(conn, *loan_id, record.event.at)? {
                return Err(ApplyError::Skip(CommitOutcome::Conflict));
            }
        }
    }
    // Before any unit's new rows (`insert_rows`): a timer the unit re-arms for the same request
    // goes in after its old ones went.
    if let Some(effects) = unit.effects().filter(|effects| !effects.dropped_timers.is_empty()) {
        timers::drop_requests(conn, &unit.loan_id().to_string(), &effects.dropped_timers)?;
    }
    Ok(())
}

/// Rows per multi-row statement: under both backends' limits on bound parameters (SQLite
/// 32,766, PostgreSQL 65,535) with up to 20 columns a row (a new loan).
const ROWS_PER_INSERT: usize = 1_000;

/// `rows` into `table` in as few INSERT statements as possible (one per `ROWS_PER_INSERT`).
macro_rules! insert_in_chunks {
    ($conn:expr, $table:expr, $rows:expr) => {
        for chunk in $rows.chunks(ROWS_PER_INSERT) {
            match &mut *$conn {
                AnyConnection::Postgresql(c) => diesel::insert_into($table).values(chunk.to_vec()).execute(c)?,
                AnyConnection::Sqlite(c) => diesel::insert_into($table).values(chunk.to_vec()).execute(c)?,
            };
        }
    };
}

/// The new loans, documents, notifications, outbox rows and timers of `units`, one multi-row
/// INSERT per table: one statement per row was a large part of the writer's time (docs/benchmarks.md).
pub(super) fn insert_rows(conn: &mut AnyConnection, units: &[&UnitOfWork]) -> diesel::QueryResult<()> {
    let new_loans: Vec<&LoanRow> = units
        .iter()
        .filter_map(|unit| match unit {
            UnitOfWork::Submission(submission) => Some(submission.loan.as_ref()),
            _ => None,
        })
        .collect();
    insert_in_chunks!(conn, loans::table, new_loans);
    let effects = || units.iter().filter_map(|unit| unit.effects());
    let documents: Vec<&DocumentRow> = effects().filter_map(|effects| effects.document.as_ref()).collect();
    let notifications: Vec<&NotificationRow> = effects().filter_map(|effects| effects.notification.as_ref()).collect();
    let emits: Vec<&NewOutboxRow> = units.iter().flat_map(|unit| unit.emits()).collect();
    let timers: Vec<&TimerRow> = units.iter().flat_map(|unit| unit.timers()).collect();
    insert_in_chunks!(conn, documents::table, documents);
    insert_in_chunks!(conn, notifications::table, notifications);
    insert_in_chunks!(conn, outbox::table, emits);
    insert_in_chunks!(conn, super::schema::timers::table, timers);
    Ok(())
}

/// PostgreSQL: the loan updates of `units` in one statement per `ROWS_PER_INSERT`; true if
/// every loan still had its expected version (else the batch must isolate its units).
pub(super) fn update_loans(conn: &mut AnyConnection, units: &[&UnitOfWork]) -> diesel::QueryResult<bool> {
    let rows: Vec<(&LoanRow, i64)> = units
        .iter()
        .filter_map(|unit| match unit {
            UnitOfWork::Step(Step { change: StepChange::Applied { row, expected_version, .. }, .. }) => {
                Some((row.as_ref(), *expected_version))
            }
            _ => None,
        })
        .collect();
    let AnyConnection::Postgresql(c) = conn else { return Ok(rows.is_empty()) };
    let mut updated = 0;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        updated += UpdateLoanStates { rows: chunk.to_vec() }.execute(c)?;
    }
    Ok(updated == rows.len())
}

/// The events of a batch's units, last in the transaction: the writer inserts them once every
/// unit of the batch is applied, under a lock held to the commit, so that event ids follow
/// commit order. Returns the ids each unit's events got, in order.
pub(super) fn insert_events(conn: &mut AnyConnection, units: &[&UnitOfWork]) -> diesel::QueryResult<Vec<Vec<i64>>> {
    let rows: Vec<&NewEventRow> = units.iter().flat_map(|unit| unit.events()).collect();
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let chunk = chunk.to_vec();
        let mut chunk_ids: Vec<i64> = match conn {
            AnyConnection::Postgresql(c) => {
                diesel::insert_into(loan_events::table).values(chunk).returning(loan_events::id).get_results(c)?
            }
            AnyConnection::Sqlite(c) => {
                diesel::insert_into(loan_events::table).values(chunk).returning(loan_events::id).get_results(c)?
            }
        };
        // RETURNING promises no order; ids are handed out in row order within one statement
        // (SQLite's single writer, PostgreSQL's sequence under the event-order lock), so the
        // sorted ids are the rows' ids in order.
        chunk_ids.sort_unstable();
        ids.extend(chunk_ids);
    }
    let mut ids = ids.into_iter();
    Ok(units.iter().map(|unit| ids.by_ref().take(unit.events().len()).collect()).collect())
}

/// Rows the broker confirmed. PostgreSQL: rows another transaction holds (a loan consuming its
/// message right now) are skipped, so this never waits and cannot take part in a deadlock; a
/// row left unmarked is published again by the sweep, a duplicate its consumer ignores.
fn mark_published(conn: &mut AnyConnection, ids: &[MessageId], now: NaiveDateTime) -> diesel::QueryResult<usize> {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(
            // The sequence numbers as an array (an InitPlan): the update then takes the primary
            // key index; as a plain `IN (subquery)` it was planned as a scan of the outbox.
            "WITH free AS (SELECT seq FROM outbox WHERE message_id = ANY($2) FOR UPDATE SKIP LOCKED) \
             UPDATE outbox SET published_at = $1 WHERE seq = ANY(ARRAY(SELECT seq FROM free))",
        )
        .bind::<diesel::sql_types::Timestamp, _>(now)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(ids)
        .execute(c),
        AnyConnection::Sqlite(c) => diesel::update(outbox::table.filter(outbox::message_id.eq_any(ids)))
            .set(outbox::published_at.eq(Some(now)))
            .execute(c),
    }
}

/// The messages a batch's units handle, consumed in one statement: true if every one was
/// still there (else some unit is a duplicate and the batch must isolate its units).
pub(super) fn consume_all(conn: &mut AnyConnection, units: &[&UnitOfWork]) -> diesel::QueryResult<bool> {
    let ids: Vec<String> = units.iter().filter_map(|unit| unit.consumes()).map(|id| id.to_string()).collect();
    let mut deleted = 0;
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        deleted += diesel::delete(outbox::table.filter(outbox::message_id.eq_any(chunk))).execute(conn)?;
    }
    Ok(deleted == ids.len())
}

/// Claim `record.key` for `loan_id`, or answer as a replay of the request that claimed it
/// first. The INSERT decides, not a read before it: two nodes that both read "unclaimed" would
/// both insert and one would fail on the primary key. `ON CONFLICT DO NOTHING` instead waits
/// for the other claim's transaction to end and then inserts nothing (or, if that transaction
/// rolled back, claims the key); the claim that won is then visible to the next statement.
fn claim_idempotency_key(
    conn: &mut AnyConnection,
    loan_id: LoanId,
    record: &IdempotencyRecord,
) -> Result<(), ApplyError> {
    if insert_idempotency_key(conn, loan_id, record)? {
        return Ok(());
    }
    let (claimed_by, request_hash, created_at) = read_idempotency_key(conn, &record.key)?;
    if created_at >= record.expired_before {
        return Err(ApplyError::Skip(CommitOutcome::IdempotentReplay { loan_id: claimed_by, request_hash }));
    }
    // An expired key is free again; of two claims racing for it, the first INSERT wins.
    diesel::delete(idempotency_keys::table.find(&record.key)).execute(conn)?;
    if insert_idempotency_key(conn, loan_id, record)? {
        return Ok(());
    }
    let (claimed_by, request_hash, _) = read_idempotency_key(conn, &record.key)?;
    Err(ApplyError::Skip(CommitOutcome::IdempotentReplay { loan_id: claimed_by, request_hash }))
}

/// Whether this INSERT claimed the key (false: another request holds it).
fn insert_idempotency_key(
    conn: &mut AnyConnection,
    loan_id: LoanId,
    record: &IdempotencyRecord,
) -> Result<bool, ApplyError> {
    let row = (
        idempotency_keys::key.eq(&record.key),
        idempotency_keys::request_hash.eq(&record.request_hash),
        idempotency_keys::loan_id.eq(loan_id.to_string()),
        idempotency_keys::created_at.eq(chrono::Utc::now().naive_utc()),
    );
    let insert = diesel::insert_into(idempotency_keys::table).values(row).on_conflict_do_nothing();
    let inserted = match conn {
        AnyConnection::Postgresql(c) => insert.execute(c)?,
        AnyConnection::Sqlite(c) => insert.execute(c)?,
    };
    Ok(inserted == 1)
}

/// The loan, request hash and time of a claimed key.
fn read_idempotency_key(conn: &mut AnyConnection, key: &str) -> Result<(String, String, NaiveDateTime), ApplyError> {
    Ok(idempotency_keys::table
        .filter(idempotency_keys::key.eq(key))
        .select((idempotency_keys::loan_id, idempotency_keys::request_hash, idempotency_keys::created_at))
        .first(conn)?)
}

/// Forget the idempotency keys used before `before` (expired); how many there were.
pub fn expire_idempotency_keys(conn: &mut AnyConnection, before: NaiveDateTime) -> diesel::QueryResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before))).execute(conn)
}
