//! A unit of work: everything one step of one loan writes, committed atomically. Consuming the
//! message that caused the step happens in the same unit, so a step is applied at most once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::connection::AnyConnection;
use super::loan_update::UpdateLoanState;
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
    apply_state(conn, unit)?;
    insert_outbox_rows(conn, &unit.emits.iter().collect::<Vec<_>>())?;
    Ok(())
}

/// Everything of a unit but its events and the messages it emits: a batch inserts those of all
/// its units at once ([`insert_outbox_rows`], [`insert_events`]).
pub fn apply_state(conn: &mut AnyConnection, unit: &UnitOfWork) -> Result<(), ApplyError> {
    consume(conn, unit)?;
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
        Some(LoanWrite::Insert(row)) => {
            diesel::insert_into(loans::table).values(row.as_ref()).execute(conn)?;
        }
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
    if let Some(document) = &unit.document {
        diesel::insert_into(documents::table).values(document).execute(conn)?;
    }
    if let Some(notification) = &unit.notification {
        diesel::insert_into(notifications::table).values(notification).execute(conn)?;
    }
    if !unit.mark_published.is_empty() {
        let ids: Vec<String> = unit.mark_published.iter().map(ToString::to_string).collect();
        diesel::update(outbox::table.filter(outbox::message_id.eq_any(ids)))
            .set(outbox::published_at.eq(Some(unit.now)))
            .execute(conn)?;
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

/// Rows per multi-row INSERT: well under both backends' limits on bound parameters (SQLite
/// 32,766, PostgreSQL 65,535) with up to 6 columns a row.
const ROWS_PER_INSERT: usize = 1_000;

/// Outbox rows, as few INSERT statements as possible (one per `ROWS_PER_INSERT` rows): one
/// statement per row was a large part of the writer's time (docs/benchmarks.md).
pub fn insert_outbox_rows(conn: &mut AnyConnection, rows: &[&NewOutboxRow]) -> diesel::QueryResult<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let chunk = chunk.to_vec();
        match conn {
            AnyConnection::Postgresql(c) => diesel::insert_into(outbox::table).values(chunk).execute(c)?,
            AnyConnection::Sqlite(c) => diesel::insert_into(outbox::table).values(chunk).execute(c)?,
        };
    }
    Ok(())
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
