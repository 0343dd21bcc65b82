//! A unit of work: everything one change writes, committed atomically. What the change is (a
//! loan's step, a submission, a dead letter, a replay, a published mark) decides what it
//! writes. Consuming the message that caused a step happens in the same unit, so a step is
//! applied at most once.

use chrono::NaiveDateTime;

use super::records::{DeadLetterRow, DocumentRow, LoanRow, NewEventRow, NewOutboxRow, NotificationRow, TimerRow};
use crate::domain::{LoanId, MessageId};
use crate::messages::Envelope;

#[derive(Debug, Clone)]
pub enum UnitOfWork {
    /// A loan handled a message, consuming its outbox row.
    Step(Step),
    /// A new loan, started in the same unit (its first requests are emitted).
    Submission(Submission),
    /// Give up on a message: consume its outbox row and keep it in `dead_letters`.
    DeadLetter { loan_id: LoanId, consumes: MessageId, row: DeadLetterRow },
    /// Take a message out of `dead_letters` and put it back in the outbox, recording who did.
    Replay { loan_id: LoanId, message_id: MessageId, emit: NewOutboxRow, record: StaffRecord },
    /// A person's input to a loan's saga (an underwriter's decision or request, the applicant's
    /// answer or withdrawal, an operator's cancellation), committed while the caller waits.
    Input(Input),
    /// Something staff did to a loan, in its history (and what it changes besides).
    StaffAction { loan_id: LoanId, record: StaffRecord, change: StaffChange },
    /// A failed attempt at a message, counted in its outbox row: the row keeps `envelope` (the
    /// same message, its `attempt` the next one), so the count survives a restart.
    RecordAttempt { loan_id: LoanId, message_id: MessageId, envelope: String },
    /// Cluster mode: outbox rows the broker confirmed, all written by the writer of `loan_id`.
    MarkPublished { loan_id: LoanId, ids: Vec<MessageId>, at: NaiveDateTime },
    /// A message for a loan that something due sends (a timer, an overdue review): `emit` goes
    /// into the outbox. With `claims`, only if that timer's row is still there, and taken (deleted)
    /// in the same unit, so a timer fires once however many nodes try; else a duplicate.
    Fire { loan_id: LoanId, claims: Option<MessageId>, emit: NewOutboxRow },
}

/// A loan handling one message.
#[derive(Debug, Clone)]
pub struct Step {
    pub loan_id: LoanId,
    /// The outbox row whose deletion acknowledges the message.
    pub consumes: MessageId,
    pub change: StepChange,
}

/// Nearly every step is applied: the change stays inline.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum StepChange {
    /// The saga took the message: the loan's next state, if it is still at `expected_version`.
    Applied { row: Box<LoanRow>, expected_version: i64, effects: Effects },
    /// The saga ignored the message (a duplicate or a stale copy), judged against the state at
    /// `expected_version`: only the ack, and only if the loan is still there (a stale copy on
    /// another node must reload).
    Ignored { expected_version: i64 },
}

/// What an applied step or a submission records beside the loan's row.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub events: Vec<NewEventRow>,
    pub document: Option<DocumentRow>,
    pub notification: Option<NotificationRow>,
    /// The messages sent, as outbox rows (serialised before they reach the writer).
    pub emits: Vec<NewOutboxRow>,
    /// The durable timers the transition asked for, committed with it.
    pub timers: Vec<TimerRow>,
    /// Requests (ids) whose timers the transition no longer needs: their rows are deleted
    /// before the unit's own timers are inserted.
    pub dropped_timers: Vec<String>,
}

/// A person's input, judged against the loan at `expected_version`: written only if the loan is
/// still there (else `Conflict`: re-read and judge again), and only once per idempotency key.
#[derive(Debug, Clone)]
pub struct Input {
    pub loan_id: LoanId,
    pub row: Box<LoanRow>,
    pub expected_version: i64,
    pub idempotency: Option<IdempotencyRecord>,
    pub effects: Effects,
}

#[derive(Debug, Clone)]
pub struct Submission {
    pub loan_id: LoanId,
    pub loan: Box<LoanRow>,
    /// The request's `Idempotency-Key`: a second submission with it inserts nothing.
    pub idempotency: Option<IdempotencyRecord>,
    pub effects: Effects,
}

/// A staff action's event, with the loan's status when it was taken (for the live streams).
#[derive(Debug, Clone)]
pub struct StaffRecord {
    pub event: NewEventRow,
    pub status: String,
}

/// What a staff action changes besides the loan's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffChange {
    Nothing,
    /// The applicant's token moves to generation `to`, if it is still at `from`.
    RevokeToken {
        from: i64,
        to: i64,
    },
    /// The loan's personal data is erased, if it is finished and not erased yet
    /// ([`super::erasure`]).
    ErasePersonalData,
}

#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub key: String,
    pub request_hash: String,
    /// A use of the key recorded before this has expired (`http.idempotency_ttl_seconds`): the
    /// key is free again.
    pub expired_before: NaiveDateTime,
}

impl UnitOfWork {
    /// The unit that gives up on a message: consume it (its outbox row, or for an uncommitted
    /// reply its request's) and keep it in `dead_letters`.
    pub fn dead_letter(envelope: &Envelope, reason: &str) -> Self {
        UnitOfWork::DeadLetter {
            loan_id: envelope.loan_id,
            consumes: envelope.outbox_row(),
            row: DeadLetterRow {
                message_id: envelope.message_id.to_string(),
                loan_id: envelope.loan_id.to_string(),
                destination: envelope.destination.as_str().to_owned(),
                envelope: envelope.to_json(),
                reason: reason.to_owned(),
                failed_at: chrono::Utc::now().naive_utc(),
            },
        }
    }

    /// Count a failed attempt at `envelope` in its outbox row: the row then holds it with
    /// `attempt` set to `next`.
    pub fn record_attempt(envelope: &Envelope, next: u32) -> Self {
        let stored = Envelope { attempt: next, ..envelope.clone() };
        UnitOfWork::RecordAttempt {
            loan_id: envelope.loan_id,
            message_id: envelope.outbox_row(),
            envelope: stored.to_json(),
        }
    }

    /// Put dead letter `message_id` back in the outbox as `envelope`, recorded by `record`.
    pub fn replay(message_id: MessageId, envelope: &Envelope, now: NaiveDateTime, record: StaffRecord) -> Self {
        UnitOfWork::Replay { loan_id: envelope.loan_id, message_id, emit: NewOutboxRow::new(envelope, now), record }
    }

    /// The loan whose rows the unit writes (a published mark: one of them).
    pub fn loan_id(&self) -> LoanId {
        match self {
            UnitOfWork::Step(step) => step.loan_id,
            UnitOfWork::Submission(submission) => submission.loan_id,
            UnitOfWork::Input(input) => input.loan_id,
            UnitOfWork::DeadLetter { loan_id, .. }
            | UnitOfWork::Replay { loan_id, .. }
            | UnitOfWork::StaffAction { loan_id, .. }
            | UnitOfWork::RecordAttempt { loan_id, .. }
            | UnitOfWork::MarkPublished { loan_id, .. }
            | UnitOfWork::Fire { loan_id, .. } => *loan_id,
        }
    }

    /// The outbox row the unit consumes, if any.
    pub fn consumes(&self) -> Option<MessageId> {
        match self {
            UnitOfWork::Step(step) => Some(step.consumes),
            UnitOfWork::DeadLetter { consumes, .. } => Some(*consumes),
            _ => None,
        }
    }

    /// What the unit records beside the loan's row.
    pub fn effects(&self) -> Option<&Effects> {
        match self {
            UnitOfWork::Step(Step { change: StepChange::Applied { effects, .. }, .. }) => Some(effects),
            UnitOfWork::Submission(submission) => Some(&submission.effects),
            UnitOfWork::Input(input) => Some(&input.effects),
            _ => None,
        }
    }

    /// The history events the unit records.
    pub fn events(&self) -> &[NewEventRow] {
        match self {
            UnitOfWork::Replay { record, .. } | UnitOfWork::StaffAction { record, .. } => {
                std::slice::from_ref(&record.event)
            }
            _ => self.effects().map_or(&[], |effects| &effects.events),
        }
    }

    /// The loan's status after the unit, as the live streams show it with its events.
    pub fn status(&self) -> Option<&str> {
        match self {
            UnitOfWork::Replay { record, .. } | UnitOfWork::StaffAction { record, .. } => Some(&record.status),
            _ => self.loan_row().map(|row| row.status.as_str()),
        }
    }

    /// The loan's row as the unit leaves it (a new or a changed loan).
    pub fn loan_row(&self) -> Option<&LoanRow> {
        match self {
            UnitOfWork::Step(Step { change: StepChange::Applied { row, .. }, .. }) => Some(row),
            UnitOfWork::Submission(submission) => Some(&submission.loan),
            UnitOfWork::Input(input) => Some(&input.row),
            _ => None,
        }
    }

    /// The outbox rows the unit adds.
    pub fn emits(&self) -> &[NewOutboxRow] {
        match self {
            UnitOfWork::Replay { emit, .. } | UnitOfWork::Fire { emit, .. } => std::slice::from_ref(emit),
            _ => self.effects().map_or(&[], |effects| &effects.emits),
        }
    }

    /// The timers the unit adds.
    pub fn timers(&self) -> &[TimerRow] {
        self.effects().map_or(&[], |effects| &effects.timers)
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
