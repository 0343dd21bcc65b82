//! Turning one saga transition into one unit of work: the new loan row, its events, the
//! schedule document (generated locally), and the envelopes for the other actors. Pure apart
//! from reading the clock and making ids.

use std::collections::VecDeque;

use chrono::{Months, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{amortization_schedule, schedule_csv, LoanId, Money, ScheduleLine};
use crate::mailbox::{Envelope, MessageBody};
use crate::persistence::{Consume, DocumentRow, LoanRecord, LoanWrite, NewEventRow, NotificationRow, UnitOfWork};
use crate::saga::{LoanSaga, NotificationState, SagaCommand, SagaInput};

/// The document kind of a repayment schedule (its content: the CSV of [`schedule_csv`]; before
/// session 3 it was the JSON of [`ScheduleDocument`], which readers still accept).
pub const SCHEDULE_KIND: &str = "repayment_schedule";

/// What one message does to a loan, ready to commit.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The loan after the step (equal to the current one when not applied).
    pub record: LoanRecord,
    /// What to commit (taken by the commit; the rest of the plan waits for its outcome).
    pub unit: Option<UnitOfWork>,
    /// The types of the events the unit records (for the metrics).
    pub event_types: Vec<&'static str>,
    pub emits: Vec<Envelope>,
    /// False when the saga ignored the input (a duplicate or stale message): only the ack.
    pub applied: bool,
}

/// The repayment schedule of an approved loan as the API shows it. It is stored as CSV (see
/// [`schedule_csv`]); the figures of the head come from the loan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleDocument {
    pub loan_id: LoanId,
    pub currency: String,
    pub amount: Money,
    pub rate_bps: u32,
    pub term_months: u16,
    pub monthly_payment: Money,
    pub lines: Vec<ScheduleLine>,
}

pub fn plan_step(current: &LoanRecord, envelope: &Envelope, input: &SagaInput, consume: Consume) -> Plan {
    let now = Utc::now().naive_utc();
    let mut unit = UnitOfWork::new(current.id, now, Some(consume));
    let first = current.saga.handle(&current.application, input);
    if !first.applied {
        unit.loan = Some(LoanWrite::Verify { id: current.id.to_string(), expected_version: current.version });
        return Plan { record: current.clone(), unit: Some(unit), event_types: vec![], emits: vec![], applied: false };
    }
    let mut state = first.state;
    let mut events = first.events;
    let mut outgoing = Vec::new();
    let mut local: VecDeque<SagaCommand> = first.commands.into();
    while let Some(command) = local.pop_front() {
        if command != SagaCommand::GenerateSchedule {
            outgoing.push(command);
            continue;
        }
        let schedule = schedule_lines(current, &state, now);
        let lines = schedule.len() as u16;
        unit.document = Some(DocumentRow {
            id: uuid::Uuid::now_v7().to_string(),
            loan_id: current.id.to_string(),
            kind: SCHEDULE_KIND.to_owned(),
            content: schedule_csv(&schedule),
            created_at: now,
        });
        let next = state.handle(&current.application, &SagaInput::ScheduleGenerated { lines });
        state = next.state;
        events.extend(next.events);
        local.extend(next.commands);
    }
    let emits: Vec<Envelope> = outgoing
        .into_iter()
        .map(|command| Envelope::new(current.id, Some(envelope.message_id), body_for(current, command)))
        .collect();
    if let SagaInput::ApplicantNotified { channel } = input {
        // Recorded with the transition to notified (one version-checked unit): exactly once.
        unit.notification = Some(NotificationRow {
            id: uuid::Uuid::now_v7().to_string(),
            loan_id: current.id.to_string(),
            channel: channel.clone(),
            recipient: current.application.applicant.email.masked(),
            status: state.status.as_str().to_owned(),
            sent_at: now,
        });
    }
    let record = next_record(current, state, now);
    unit.loan = Some(LoanWrite::Update { row: Box::new(record.to_row()), expected_version: current.version });
    unit.events = events.iter().map(|e| NewEventRow::new(current.id, e, now)).collect();
    for envelope in &emits {
        unit.emit(envelope);
    }
    let event_types = events.iter().map(|e| e.type_name()).collect();
    Plan { record, unit: Some(unit), event_types, emits, applied: true }
}

fn next_record(current: &LoanRecord, saga: LoanSaga, now: NaiveDateTime) -> LoanRecord {
    let became_terminal = !current.saga.status.is_terminal() && saga.status.is_terminal();
    let became_notified =
        current.saga.notification != NotificationState::Done && saga.notification == NotificationState::Done;
    LoanRecord {
        saga,
        version: current.version + 1,
        updated_at: now,
        decided_at: if became_terminal { Some(now) } else { current.decided_at },
        notified_at: if became_notified { Some(now) } else { current.notified_at },
        ..current.clone()
    }
}

fn schedule_lines(current: &LoanRecord, state: &LoanSaga, now: NaiveDateTime) -> Vec<ScheduleLine> {
    let app = &current.application;
    let decision = state.decision.as_ref().expect("a schedule is only generated after a decision");
    let first_due = now.date().checked_add_months(Months::new(1)).unwrap_or(now.date());
    amortization_schedule(app.amount, decision.rate_bps, app.term_months, decision.monthly_payment, first_due)
}

fn body_for(current: &LoanRecord, command: SagaCommand) -> MessageBody {
    let app = &current.application;
    match command {
        SagaCommand::CheckCredit => MessageBody::CheckCredit { email: app.applicant.email.as_ref().to_owned() },
        SagaCommand::AppraiseProperty => MessageBody::AppraiseProperty {
            address: app.property.address.as_ref().to_owned(),
            declared_value: app.property.declared_value,
        },
        SagaCommand::ReleaseCreditCheck => MessageBody::ReleaseCreditCheck,
        SagaCommand::VoidAppraisal => MessageBody::VoidAppraisal,
        SagaCommand::NotifyApplicant { status } => MessageBody::NotifyApplicant {
            status,
            name: app.applicant.name.as_ref().to_owned(),
            email: app.applicant.email.as_ref().to_owned(),
        },
        SagaCommand::GenerateSchedule => unreachable!("generated locally above"),
    }
}
