//! A unit of work: everything one step of one loan writes, committed atomically. Consuming the
//! message that caused the step happens in the same unit, so a step is applied at most once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::connection::AnyConnection;
use super::loan_update::{UpdateLoanState, UpdateLoanStates};
use super::records::{DeadLetterRow, DocumentRow, LoanRow, NewEventRow, NewOutboxRow, NodeRow, NotificationRow};
use super::schema::{
    dead_letters, documents, idempotency_keys, inbox, loan_events, loans, nodes, notifications, outbox,
};
use crate::domain::{LoanId, MessageId};
use crate::mailbox::Envelope;

/// How the unit acknowledges the message it handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consume {
    /// Embedded mode: the outbox row is the mailbox entry; deleting it is the ack.
    Outbox(MessageId),
    /// Broker mode: record the id so a redelivery is recognised.
    Inbox(MessageId),
}

#[derive(Debug, Clone)]
pub enum LoanWrite {
    Insert(Box<LoanRow>),
    /// Replace the loan's state if its version is still `expected_version`.
    Update {
        row: Box<LoanRow>,
        expected_version: i64,
    },
    /// Change nothing, but only commit if the version is still `expected_version`: a message the
    /// saga ignored was judged against that state (a stale copy on another node must reload).
    Verify {
        id: String,
        expected_version: i64,
    },
}

#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub key: String,
    pub request_hash: String,
}

#[derive(Debug, Clone)]
pub struct UnitOfWork {
    pub loan_id: LoanId,
    pub now: NaiveDateTime,
    pub consumes: Option<Consume>,
    pub idempotency: Option<IdempotencyRecord>,
    pub loan: Option<LoanWrite>,
    pub events: Vec<NewEventRow>,
    pub document: Option<DocumentRow>,
    pub notification: Option<NotificationRow>,
    /// The messages the step sends, as outbox rows (serialised before they reach the writer).
    pub emits: Vec<NewOutboxRow>,
    pub dead_letter: Option<DeadLetterRow>,
    /// Cluster mode: outbox rows the broker confirmed.
    pub mark_published: Vec<MessageId>,
    /// Replay: take this message out of `dead_letters` (its envelope goes in `emits`).
    pub revive: Option<MessageId>,
    /// Cluster mode: this node's heartbeat (replaces its previous one).
    pub heartbeat: Option<NodeRow>,
}

impl UnitOfWork {
    pub fn new(loan_id: LoanId, now: NaiveDateTime, consumes: Option<Consume>) -> Self {
        Self {
            loan_id,
            now,
            consumes,
            idempotency: None,
            loan: None,
            events: Vec::new(),
            document: None,
            notification: None,
            emits: Vec::new(),
            dead_letter: None,
            mark_published: Vec::new(),
            revive: None,
            heartbeat: None,
        }
    }

    /// Send `envelope` once this unit commits (a row in the outbox).
    pub fn emit(&mut self, envelope: &Envelope) {
        self.emits.push(NewOutboxRow::new(envelope, self.now));
    }
}

/// What became of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Written; the ids the events got, in order.
    Committed { event_ids: Vec<i64> },
    /// The consumed message was handled before (or the effect exists): nothing was written.
    Duplicate,
    /// The loan changed since it was read: nothing was written; reload and retry.
    Conflict,
    /// The idempotency key was used before: nothing was written.
    IdempotentReplay { loan_id: String, request_hash: String },
}

/// Inside a savepoint: `Skip` rolls the unit back without failing the batch.
#[derive(Debug)]
pub enum ApplyError {
    Skip(CommitOutcome),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for ApplyError {
    fn from(err: diesel::result::Error) -> Self {
        ApplyError::Db(err)
    }
}

/// Everything of a unit but its events (see [`insert_events`]).
pub fn apply_unit(conn: &mut AnyConnection, unit: &UnitOfWork) -> Result<(), ApplyError> {
    consume(conn, unit)?;
    apply_state(conn, unit, false)?;
    insert_rows(conn, &[unit])?;
    Ok(())
}

/// Everything of a unit but consuming its message, the rows it inserts and its events, and its
/// loan update if `loan_update_batched`: a batch does those for all its units at once
/// ([`consume_all`], [`update_loans`], [`insert_rows`], [`insert_events`]).
pub fn apply_state(conn: &mut AnyConnection, unit: &UnitOfWork, loan_update_batched: bool) -> Result<(), ApplyError> {
    if let Some(id) = unit.revive {
        let removed =
            diesel::delete(dead_letters::table.filter(dead_letters::message_id.eq(id.to_string()))).execute(conn)?;
        if removed == 0 {
            return Err(ApplyError::Skip(CommitOutcome::Duplicate));
        }
    }
    if let Some(record) = &unit.idempotency {
        claim_idempotency_key(conn, unit, record)?;
    }
    match &unit.loan {
        // Inserted with the other new rows (`insert_rows`).
        Some(LoanWrite::Insert(_)) => {}
        Some(LoanWrite::Update { .. }) if loan_update_batched => {}
        Some(LoanWrite::Update { row, expected_version }) => {
            let updated = UpdateLoanState { row, expected_version: *expected_version }.execute(conn)?;
            if updated == 0 {
                return Err(ApplyError::Skip(CommitOutcome::Conflict));
            }
        }
        Some(LoanWrite::Verify { id, expected_version }) => {
            let current: Option<i64> = loans::table.find(id).select(loans::version).first(conn).optional()?;
            if current != Some(*expected_version) {
                return Err(ApplyError::Skip(CommitOutcome::Conflict));
            }
        }
        None => {}
    }
    if !unit.mark_published.is_empty() {
        mark_published(conn, &unit.mark_published, unit.now)?;
    }
    if let Some(node) = &unit.heartbeat {
        diesel::delete(nodes::table.find(&node.node_id)).execute(conn)?;
        diesel::insert_into(nodes::table).values(node).execute(conn)?;
    }
    if let Some(dead) = &unit.dead_letter {
        diesel::insert_into(dead_letters::table).values(dead).execute(conn)?;
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

/// The new loans, documents, notifications and outbox rows of `units`, one multi-row INSERT per
/// table: one statement per row was a large part of the writer's time (docs/benchmarks.md).
pub fn insert_rows(conn: &mut AnyConnection, units: &[&UnitOfWork]) -> diesel::QueryResult<()> {
    let new_loans: Vec<&LoanRow> = units
        .iter()
        .filter_map(|unit| match &unit.loan {
            Some(LoanWrite::Insert(row)) => Some(row.as_ref()),
            _ => None,
        })
        .collect();
    insert_in_chunks!(conn, loans::table, new_loans);
    let documents: Vec<&DocumentRow> = units.iter().filter_map(|unit| unit.document.as_ref()).collect();
    let notifications: Vec<&NotificationRow> = units.iter().filter_map(|unit| unit.notification.as_ref()).collect();
    let emits: Vec<&NewOutboxRow> = units.iter().flat_map(|unit| &unit.emits).collect();
    insert_in_chunks!(conn, documents::table, documents);
    insert_in_chunks!(conn, notifications::table, notifications);
    insert_in_chunks!(conn, outbox::table, emits);
    Ok(())
}

/// PostgreSQL: the loan updates of `units` in one statement per `ROWS_PER_INSERT`; true if
/// every loan still had its expected version (else the batch must isolate its units).
pub fn update_loans(conn: &mut AnyConnection, units: &[&UnitOfWork]) -> diesel::QueryResult<bool> {
    let rows: Vec<(&LoanRow, i64)> = units
        .iter()
        .filter_map(|unit| match &unit.loan {
            Some(LoanWrite::Update { row, expected_version }) => Some((row.as_ref(), *expected_version)),
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
pub fn insert_events(conn: &mut AnyConnection, units: &[&UnitOfWork]) -> diesel::QueryResult<Vec<Vec<i64>>> {
    let rows: Vec<&NewEventRow> = units.iter().flat_map(|unit| &unit.events).collect();
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
    Ok(units.iter().map(|unit| ids.by_ref().take(unit.events.len()).collect()).collect())
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
pub fn consume_all(conn: &mut AnyConnection, units: &[&UnitOfWork]) -> diesel::QueryResult<bool> {
    let mut ids: Vec<String> = Vec::new();
    for unit in units {
        match unit.consumes {
            None => {}
            Some(Consume::Outbox(id)) => ids.push(id.to_string()),
            // Not batched (and unused by the writers today): the savepoint path handles it.
            Some(Consume::Inbox(_)) => return Ok(false),
        }
    }
    let mut deleted = 0;
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        deleted += diesel::delete(outbox::table.filter(outbox::message_id.eq_any(chunk))).execute(conn)?;
    }
    Ok(deleted == ids.len())
}

fn consume(conn: &mut AnyConnection, unit: &UnitOfWork) -> Result<(), ApplyError> {
    match unit.consumes {
        None => Ok(()),
        Some(Consume::Outbox(id)) => {
            let deleted = diesel::delete(outbox::table.filter(outbox::message_id.eq(id.to_string()))).execute(conn)?;
            if deleted == 0 {
                return Err(ApplyError::Skip(CommitOutcome::Duplicate));
            }
            Ok(())
        }
        Some(Consume::Inbox(id)) => {
            let id = id.to_string();
            let seen: i64 = inbox::table.filter(inbox::message_id.eq(&id)).count().get_result(conn)?;
            if seen > 0 {
                return Err(ApplyError::Skip(CommitOutcome::Duplicate));
            }
            diesel::insert_into(inbox::table)
                .values((inbox::message_id.eq(id), inbox::handled_at.eq(unit.now)))
                .execute(conn)?;
            Ok(())
        }
    }
}

fn claim_idempotency_key(
    conn: &mut AnyConnection,
    unit: &UnitOfWork,
    record: &IdempotencyRecord,
) -> Result<(), ApplyError> {
    let existing: Option<(String, String)> = idempotency_keys::table
        .filter(idempotency_keys::key.eq(&record.key))
        .select((idempotency_keys::loan_id, idempotency_keys::request_hash))
        .first(conn)
        .optional()?;
    if let Some((loan_id, request_hash)) = existing {
        return Err(ApplyError::Skip(CommitOutcome::IdempotentReplay { loan_id, request_hash }));
    }
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::key.eq(&record.key),
            idempotency_keys::request_hash.eq(&record.request_hash),
            idempotency_keys::loan_id.eq(unit.loan_id.to_string()),
            idempotency_keys::created_at.eq(unit.now),
        ))
        .execute(conn)?;
    Ok(())
}
