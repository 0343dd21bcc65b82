//! Turning one saga transition into one unit of work: the new loan row, its events, the
//! schedule document (generated locally), and the envelopes for the other actors. Pure apart
//! from reading the clock and making ids.

use std::collections::VecDeque;

use chrono::{Months, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{amortization_schedule, schedule_csv, LoanApplication, LoanId, MessageId, Money, ScheduleLine};
use crate::mailbox::{Envelope, MessageBody};
use crate::persistence::{Consume, DocumentRow, LoanRecord, LoanWrite, NewEventRow, NotificationRow, UnitOfWork};
use crate::saga::{LoanEvent, LoanSaga, NotificationState, SagaCommand, SagaInput};

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

/// What one delivered message does to a loan: a step consuming that message.
pub fn plan_step(current: &LoanRecord, envelope: &Envelope, input: &SagaInput, consume: Consume) -> Plan {
    plan_transition(current, Some(envelope.message_id), input, Some(consume), Utc::now().naive_utc())
}

/// A submission: the new loan, its `LoanSubmitted` event and its start in one unit, so the commit
/// that accepts the loan also requests its credit check and appraisal. (Until session 4 a
/// separate `Start` message did that: one more step per loan and, in cluster mode, one more
/// broker round trip. The saga still handles `Start`, for loans submitted by earlier versions.)
pub fn plan_submission(id: LoanId, application: LoanApplication, now: NaiveDateTime) -> Plan {
    let submitted = LoanEvent::LoanSubmitted {
        amount: application.amount,
        term_months: application.term_months.get(),
        declared_value: application.property.declared_value,
    };
    // Version 0: not stored yet; the start makes it version 1, the one inserted.
    let new = LoanRecord {
        id,
        application,
        saga: LoanSaga::new(),
        version: 0,
        submitted_at: now,
        updated_at: now,
        decided_at: None,
        notified_at: None,
    };
    let mut plan = plan_transition(&new, None, &SagaInput::Start, None, now);
    let unit = plan.unit.as_mut().expect("a fresh plan has its unit");
    unit.loan = Some(LoanWrite::Insert(Box::new(plan.record.to_row())));
    unit.events.insert(0, NewEventRow::new(id, &submitted, now));
    plan.event_types.insert(0, submitted.type_name());
    plan
}

fn plan_transition(
    current: &LoanRecord,
    causation: Option<MessageId>,
    input: &SagaInput,
    consume: Option<Consume>,
    now: NaiveDateTime,
) -> Plan {
    let mut unit = UnitOfWork::new(current.id, now, consume);
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
    let emits: Vec<Envelope> =
        outgoing.into_iter().map(|command| Envelope::new(current.id, causation, body_for(current, command))).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::ActorKind;
    use crate::saga::LoanStatus;

    fn application() -> LoanApplication {
        let json = serde_json::json!({
            "applicant": {"name": "Jane Doe", "email": "jane@example.com", "annual_income": 120000, "monthly_debts": 0},
            "property": {"address": "1 Canal St, Amsterdam", "declared_value": 400000},
            "amount": 200000, "term_months": 360
        });
        LoanApplication::parse(&json).unwrap()
    }

    #[test]
    fn a_submission_inserts_the_started_loan_and_requests_both_steps_in_one_unit() {
        let (id, now) = (LoanId::generate(), Utc::now().naive_utc());
        let plan = plan_submission(id, application(), now);
        assert_eq!((plan.record.version, plan.record.saga.status), (1, LoanStatus::Evaluating));
        assert_eq!(plan.record.saga.waiting_on(), Some("credit_check"));
        assert_eq!(plan.event_types, ["LoanSubmitted"]);

        let unit = plan.unit.expect("a unit");
        assert!(unit.consumes.is_none(), "a submission consumes no message");
        let Some(LoanWrite::Insert(row)) = &unit.loan else { panic!("not an insert: {:?}", unit.loan) };
        assert_eq!((row.id.as_str(), row.status.as_str(), row.version), (id.to_string().as_str(), "evaluating", 1));
        assert_eq!((row.submitted_at, row.updated_at), (now, now));
        let events: Vec<&str> = unit.events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(events, ["LoanSubmitted"]);

        let destinations: Vec<ActorKind> = plan.emits.iter().map(|e| e.destination).collect();
        assert_eq!(destinations, [ActorKind::Credit, ActorKind::Appraisal]);
        assert!(plan.emits.iter().all(|e| e.loan_id == id && e.causation_id.is_none() && !e.uncommitted));
        let emitted: Vec<String> = unit.emits.iter().map(|row| row.message_id.clone()).collect();
        let planned: Vec<String> = plan.emits.iter().map(|e| e.message_id.to_string()).collect();
        assert_eq!(emitted, planned, "the unit stores exactly the envelopes delivered after the commit");
    }

    #[test]
    fn a_start_message_of_an_earlier_version_still_starts_a_submitted_loan() {
        let mut submitted = plan_submission(LoanId::generate(), application(), Utc::now().naive_utc()).record;
        submitted.saga = LoanSaga::new();
        let start = Envelope::new(submitted.id, None, MessageBody::Saga(SagaInput::Start));
        let plan = plan_step(&submitted, &start, &SagaInput::Start, Consume::Outbox(start.message_id));
        assert!(plan.applied);
        assert_eq!((plan.record.version, plan.record.saga.status), (2, LoanStatus::Evaluating));
        assert!(plan.emits.iter().all(|e| e.causation_id == Some(start.message_id)));
        assert_eq!(plan.emits.len(), 2);
    }
}
