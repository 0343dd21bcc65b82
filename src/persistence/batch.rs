//! One batch of units of work in one transaction: first with statements shared by its units;
//! a unit found to write nothing (a loan that moved on) is left out and the batch runs again;
//! if a unit's rows are refused (or many are left out), with a savepoint per unit. Event ids
//! are handed out under a lock held to the commit, so they follow commit order.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::apply::{apply_state, apply_unit, consume_all, insert_events, insert_rows, update_loans, ApplyError};
use super::connection::AnyConnection;
use super::unit_of_work::{CommitOutcome, UnitOfWork};
use super::{is_database_fault, StoreError};

/// PostgreSQL: taken (transaction-scoped) before a batch inserts its events (an isolated run:
/// before its first unit); held to the commit, so ids are handed out in commit order by every
/// writer of every node.
const EVENT_ORDER_LOCK: &str = "SELECT pg_advisory_xact_lock(7375718252)";

/// The process-wide side of the same ordering: events are inserted, committed and published by
/// one writer at a time.
static EVENT_ORDER: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(super) type EventOrderGuard = std::sync::MutexGuard<'static, ()>;

/// How a batch keeps one unit's failure from spoiling the others.
#[derive(Clone, Copy)]
pub(super) enum Isolation {
    /// No savepoints: any unit that would be skipped aborts the attempt.
    Shared,
    /// A savepoint per unit.
    PerUnit,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum BatchError {
    #[error("a unit of the batch needs its own savepoint")]
    NeedsIsolation,
    /// These units (their indexes in the batch run) write nothing, found before any shared
    /// statement depended on them: the batch runs again without them.
    #[error("{} units of the batch are skipped", .0.len())]
    Skipped(Vec<(usize, CommitOutcome)>),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl BatchError {
    /// A shared statement failed: the database's fault fails the batch; anything else may be
    /// one unit's rows, which a savepoint per unit isolates.
    fn classify(err: diesel::result::Error) -> Self {
        if is_database_fault(&err) {
            BatchError::Db(err)
        } else {
            BatchError::NeedsIsolation
        }
    }
}

/// Runs of a batch that leave out the units found skipped in the run before, before it falls
/// back to a savepoint per unit (each run is the whole batch again; a savepoint per unit costs
/// more, and more with a large page cache). A run finds every skipped unit at once, so one more
/// run nearly always commits.
const MAX_SKIPPING_RUNS: usize = 3;

/// How often a batch that lost a lock conflict (PostgreSQL broke a deadlock by aborting it, or a
/// serialization failure) is run again at once: the other transaction has ended by then.
const CONFLICT_RETRIES: u32 = 3;

/// The batch in one transaction: shared first, each unit in its own savepoint when one unit's
/// rows need it. A batch rolled back by a conflict with another writer's transaction runs
/// again: the conflict says nothing about the database's health, so it is neither a fault (no
/// episode, readiness unchanged) nor an error for the callers.
pub(super) fn run_batch(
    conn: &mut AnyConnection,
    units: &[&UnitOfWork],
    postgres: bool,
) -> Result<(Vec<Result<CommitOutcome, StoreError>>, EventOrderGuard), BatchError> {
    let (mut isolation, mut conflicts) = (Isolation::Shared, 0);
    // Per unit, its outcome if a run found it skipped (a loan that moved on, a timer fired
    // already): the next runs leave it out.
    let mut skipped: Vec<Option<CommitOutcome>> = vec![None; units.len()];
    let mut skipping_runs = 0;
    loop {
        let run: Vec<usize> = (0..units.len()).filter(|i| skipped[*i].is_none()).collect();
        if run.is_empty() {
            let in_order = EVENT_ORDER.lock().unwrap_or_else(|e| e.into_inner());
            return Ok((with_skipped(vec![], skipped), in_order));
        }
        let run_units: Vec<&UnitOfWork> = run.iter().map(|i| units[*i]).collect();
        match apply_batch(conn, &run_units, postgres, isolation) {
            Ok((outcomes, in_order)) => return Ok((with_skipped(outcomes, skipped), in_order)),
            Err(BatchError::Skipped(found)) if skipping_runs < MAX_SKIPPING_RUNS => {
                skipping_runs += 1;
                for (unit, outcome) in found {
                    skipped[run[unit]] = Some(outcome);
                }
            }
            Err(BatchError::NeedsIsolation | BatchError::Skipped(_)) if matches!(isolation, Isolation::Shared) => {
                isolation = Isolation::PerUnit
            }
            Err(BatchError::Db(err)) if is_transaction_conflict(&err) && conflicts < CONFLICT_RETRIES => {
                conflicts += 1;
                tracing::debug!(error = %err, conflicts, "batch lost a lock conflict; running it again");
            }
            outcome => return outcome,
        }
    }
}

/// Every unit's outcome in batch order: a skipped one's, else the next of the run's `outcomes`
/// (the units run are the ones not skipped, in batch order).
fn with_skipped(
    outcomes: Vec<Result<CommitOutcome, StoreError>>,
    skipped: Vec<Option<CommitOutcome>>,
) -> Vec<Result<CommitOutcome, StoreError>> {
    let mut outcomes = outcomes.into_iter();
    skipped
        .into_iter()
        .map(|skip| match skip {
            Some(outcome) => Ok(outcome),
            None => outcomes.next().expect("an outcome for every unit run"),
        })
        .collect()
}

/// Whether PostgreSQL aborted the transaction to resolve a conflict with another one.
fn is_transaction_conflict(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// One transaction over the units (in locking order); their outcomes in the same order, and
/// the event-order guard to hold until the events are published.
fn apply_batch(
    conn: &mut AnyConnection,
    units: &[&UnitOfWork],
    postgres: bool,
    isolation: Isolation,
) -> Result<(Vec<Result<CommitOutcome, StoreError>>, EventOrderGuard), BatchError> {
    conn.transaction::<_, BatchError, _>(|conn| match isolation {
        Isolation::Shared => apply_shared(conn, units, postgres),
        Isolation::PerUnit => apply_each(conn, units, postgres),
    })
}

/// The units without savepoints: one DELETE for every unit's message, each unit's own
/// statements, the batch's new rows in one INSERT per table, then the events. Any unit that
/// would be skipped, or whose rows a constraint refuses, sends the batch back to be isolated.
fn apply_shared(
    conn: &mut AnyConnection,
    units: &[&UnitOfWork],
    postgres: bool,
) -> Result<(Vec<Result<CommitOutcome, StoreError>>, EventOrderGuard), BatchError> {
    // The event order first, as in `apply_each`: two writers that took the row locks and the
    // event order in different orders would deadlock.
    let in_order = lock_event_order(conn, postgres, units)?;
    if !consume_all(conn, units).map_err(BatchError::classify)? {
        return Err(BatchError::NeedsIsolation);
    }
    // Every unit's state, noting the ones that write nothing: the run is rolled back if there
    // are any (what such a unit did before it knew, an idempotency key taken, goes with it).
    let mut skipped = Vec::new();
    for (index, unit) in units.iter().enumerate() {
        match apply_state(conn, unit, postgres) {
            Ok(()) => {}
            // A refused version or a message gone: safe to answer whatever else the batch does
            // (the caller reloads, or has nothing left to do).
            Err(ApplyError::Skip(outcome @ (CommitOutcome::Conflict | CommitOutcome::Duplicate))) => {
                skipped.push((index, outcome))
            }
            // A key another unit of this very run may hold: only a savepoint per unit says.
            Err(ApplyError::Skip(_)) => return Err(BatchError::NeedsIsolation),
            Err(ApplyError::Db(err)) => return Err(BatchError::classify(err)),
        }
    }
    if !skipped.is_empty() {
        return Err(BatchError::Skipped(skipped));
    }
    // PostgreSQL pays a round trip per statement: loan updates go in one too.
    if postgres && !update_loans(conn, units).map_err(BatchError::classify)? {
        return Err(BatchError::NeedsIsolation);
    }
    insert_rows(conn, units).map_err(BatchError::classify)?;
    let event_ids = insert_events(conn, units).map_err(BatchError::classify)?;
    Ok((event_ids.into_iter().map(|event_ids| Ok(CommitOutcome::Committed { event_ids })).collect(), in_order))
}

/// Each unit in a savepoint of its own, its events included, so that a unit whose events a
/// constraint refuses (`loan_events_once`) is rolled back alone. The event order is taken
/// first: the events of the units go in as each unit is applied.
fn apply_each(
    conn: &mut AnyConnection,
    units: &[&UnitOfWork],
    postgres: bool,
) -> Result<(Vec<Result<CommitOutcome, StoreError>>, EventOrderGuard), BatchError> {
    let in_order = lock_event_order(conn, postgres, units)?;
    let outcomes = units.iter().map(|unit| apply_in_savepoint(conn, unit)).collect::<Result<_, _>>()?;
    Ok((outcomes, in_order))
}

/// Held from here until the events are published (after the commit): this node's writers
/// publish in the order they commit, which is id order; on PostgreSQL every writer of every
/// node hands out event ids under the advisory lock, held to the commit.
fn lock_event_order(
    conn: &mut AnyConnection,
    postgres: bool,
    units: &[&UnitOfWork],
) -> Result<EventOrderGuard, BatchError> {
    let in_order = EVENT_ORDER.lock().unwrap_or_else(|e| e.into_inner());
    if postgres && units.iter().any(|unit| !unit.events().is_empty()) {
        conn.batch_execute(EVENT_ORDER_LOCK)?;
    }
    Ok(in_order)
}

/// One unit and its events in a savepoint: its outcome, or a fault of the database that fails
/// the whole batch.
fn apply_in_savepoint(
    conn: &mut AnyConnection,
    unit: &UnitOfWork,
) -> Result<Result<CommitOutcome, StoreError>, BatchError> {
    let applied = conn.transaction::<_, ApplyError, _>(|conn| {
        apply_unit(conn, unit)?;
        Ok(insert_events(conn, &[unit])?.pop().unwrap_or_default())
    });
    match applied {
        Ok(event_ids) => Ok(Ok(CommitOutcome::Committed { event_ids })),
        Err(ApplyError::Skip(outcome)) => Ok(Ok(outcome)),
        Err(ApplyError::Db(err)) if is_database_fault(&err) => Err(BatchError::Db(err)),
        Err(ApplyError::Db(err)) => Ok(Err(StoreError::from(err))),
    }
}
