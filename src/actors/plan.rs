//! Turning one saga transition into one unit of work: the new loan row, its events, the
//! schedule document (generated locally), and the envelopes for the other actors, with what to
//! do once it is committed. Pure apart from reading the clock and making ids.

use std::collections::VecDeque;

use chrono::{Months, NaiveDateTime, Utc};

use crate::domain::{
    amortization_schedule, schedule_csv, LoanApplication, LoanId, MessageId, ReviewBand, ScheduleLine, TraceParent,
};
use crate::messages::{Envelope, MessageBody};
use crate::persistence::{
    DocumentRow, Effects, IdempotencyRecord, Input, LoanRecord, NewEventRow, NewOutboxRow, NotificationRow, Step,
    StepChange, Submission, TimerRow, UnitOfWork,
};
use crate::saga::{LoanEvent, LoanSaga, NotificationState, SagaCommand, SagaInput, Timer, Transition};

/// The document kind of a repayment schedule (its content: the CSV of [`schedule_csv`]).
pub const SCHEDULE_KIND: &str = "repayment_schedule";

/// What to do once a unit is committed.
#[derive(Debug, Clone)]
pub struct AfterCommit {
    /// The loan after the step (equal to the current one when not applied).
    pub record: LoanRecord,
    /// The events the unit records (for the metrics).
    pub events: Vec<LoanEvent>,
    /// The messages to send.
    pub emits: Vec<Envelope>,
    /// False when the saga ignored the input (a duplicate or stale message): only the ack.
    pub applied: bool,
}

/// What one delivered message does to a loan: a step consuming that message. The messages it
/// sends carry `trace`, the step's span (none: traces are not exported).
pub fn plan_step(
    current: &LoanRecord,
    envelope: &Envelope,
    input: &SagaInput,
    trace: Option<TraceParent>,
) -> (UnitOfWork, AfterCommit) {
    let now = Utc::now().naive_utc();
    let consumes = envelope.outbox_row();
    let transition = current.saga.handle(&current.application, input);
    if !transition.applied {
        let change = StepChange::Ignored { expected_version: current.version };
        let after = AfterCommit { record: current.clone(), events: vec![], emits: vec![], applied: false };
        return (UnitOfWork::Step(Step { loan_id: current.id, consumes, change }), after);
    }
    let notified_by = match input {
        SagaInput::ApplicantNotified { channel } => Some(channel.as_str()),
        _ => None,
    };
    let sent = Sent { causation: Some(envelope.message_id), trace };
    let (effects, after) = carry_out(current, sent, transition, notified_by, now);
    let change =
        StepChange::Applied { row: Box::new(after.record.to_row()), expected_version: current.version, effects };
    (UnitOfWork::Step(Step { loan_id: current.id, consumes, change }), after)
}

/// A submission: the new loan, its `LoanSubmitted` event and its start in one unit, so the commit
/// that accepts the loan also requests its credit check and appraisal (carrying `trace`, the
/// submission's span).
pub fn plan_submission(
    id: LoanId,
    application: LoanApplication,
    now: NaiveDateTime,
    idempotency: Option<IdempotencyRecord>,
    band: ReviewBand,
    trace: Option<TraceParent>,
) -> (UnitOfWork, AfterCommit) {
    let submitted = LoanEvent::LoanSubmitted {
        amount: application.amount,
        term_months: application.term_months.get(),
        declared_value: application.property.declared_value,
    };
    // Version 0: not stored yet; the start makes it version 1, the one inserted.
    let new = LoanRecord {
        id,
        application,
        saga: LoanSaga::with_review_band(band),
        version: 0,
        submitted_at: now,
        updated_at: now,
        decided_at: None,
        notified_at: None,
        waiting_since: None,
    };
    let (mut effects, mut after) = carry_out(&new, Sent { causation: None, trace }, new.saga.start(), None, now);
    effects.events.insert(0, NewEventRow::new(id, &submitted, now));
    after.events.insert(0, submitted);
    let loan = Box::new(after.record.to_row());
    (UnitOfWork::Submission(Submission { loan_id: id, loan, idempotency, effects }), after)
}

/// What the messages a step sends carry about where they come from.
struct Sent {
    /// The message whose handling sends them (none: a submission).
    causation: Option<MessageId>,
    /// The span of the step.
    trace: Option<TraceParent>,
}

/// A person's input the saga applied (`transition`, judged against `current`): one unit that
/// commits only if the loan is still at `current.version`. Its messages go through the outbox
/// like every other step's.
pub fn plan_input(
    current: &LoanRecord,
    transition: Transition,
    idempotency: Option<IdempotencyRecord>,
    now: NaiveDateTime,
) -> (UnitOfWork, AfterCommit) {
    let (effects, after) = carry_out(current, Sent { causation: None, trace: None }, transition, None, now);
    let row = Box::new(after.record.to_row());
    let unit = Input { loan_id: current.id, row, expected_version: current.version, idempotency, effects };
    (UnitOfWork::Input(unit), after)
}

/// What an applied transition writes and sends: the schedule it generates locally (and the
/// saga's answer to that), the notification record of `notified_by`, the emitted envelopes
/// (see [`Sent`]), and the loan's next record.
fn carry_out(
    current: &LoanRecord,
    sent: Sent,
    first: Transition,
    notified_by: Option<&str>,
    now: NaiveDateTime,
) -> (Effects, AfterCommit) {
    let mut effects = Effects::default();
    let mut state = first.state;
    let mut events = first.events;
    let mut outgoing = Vec::new();
    let mut local: VecDeque<SagaCommand> = first.commands.into();
    while let Some(command) = local.pop_front() {
        match command {
            SagaCommand::GenerateSchedule => {}
            // Committed with this unit, sent when due (`crate::timers`).
            SagaCommand::ScheduleTimer { timer } => {
                effects.timers.push(timer_row(current.id, sent.causation, timer, now));
                continue;
            }
            SagaCommand::DropTimers { request_id } => {
                effects.dropped_timers.push(request_id.to_string());
                continue;
            }
            other => {
                outgoing.push(other);
                continue;
            }
        }
        let _span =
            tracing::info_span!("generate_schedule", otel.name = "loan generate_schedule", loan.id = %current.id)
                .entered();
        let schedule = schedule_lines(current, &state, now);
        let lines = schedule.len() as u16;
        effects.document = Some(DocumentRow {
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
        .map(|command| Envelope::new(current.id, sent.causation, body_for(current, command)).traced(sent.trace.clone()))
        .collect();
    if let Some(channel) = notified_by {
        // Recorded with the transition to notified (one version-checked unit): exactly once.
        effects.notification = Some(NotificationRow {
            id: uuid::Uuid::now_v7().to_string(),
            loan_id: current.id.to_string(),
            channel: channel.to_owned(),
            recipient: current.application.applicant.email.masked(),
            status: state.status.as_str().to_owned(),
            sent_at: now,
        });
    }
    let record = next_record(current, state, now);
    effects.events = events.iter().map(|e| NewEventRow::new(current.id, e, now)).collect();
    effects.emits = emits.iter().map(|envelope| NewOutboxRow::new(envelope, now)).collect();
    (effects, AfterCommit { record, events, emits, applied: true })
}

/// The row of a durable timer: at its due time, the message that feeds it back to the saga.
fn timer_row(loan: LoanId, causation: Option<MessageId>, timer: Timer, now: NaiveDateTime) -> TimerRow {
    let fires = Envelope::new(loan, causation, MessageBody::Saga(SagaInput::TimerFired { timer, fired_at: None }));
    TimerRow::new(&fires, timer.kind.as_str(), timer.request_id.to_string(), timer.due_at, now)
}

fn next_record(current: &LoanRecord, saga: LoanSaga, now: NaiveDateTime) -> LoanRecord {
    let became_terminal = !current.saga.status.is_terminal() && saga.status.is_terminal();
    let became_notified =
        current.saga.notification != NotificationState::Done && saga.notification == NotificationState::Done;
    LoanRecord {
        waiting_since: current.waiting_since_after(&saga, now),
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
        SagaCommand::NotifyApplicant { status } => MessageBody::NotifyApplicant { status },
        SagaCommand::SendNotice { request_id, notice } => MessageBody::SendNotice { request_id, notice },
        SagaCommand::GenerateSchedule | SagaCommand::ScheduleTimer { .. } | SagaCommand::DropTimers { .. } => {
            unreachable!("carried out locally above")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ActorKind;
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
        let key = IdempotencyRecord { key: "k".into(), request_hash: "h".into(), expired_before: NaiveDateTime::MIN };
        let (unit, after) = plan_submission(id, application(), now, Some(key), ReviewBand::NEVER, None);
        assert_eq!((after.record.version, after.record.saga.status), (1, LoanStatus::Evaluating));
        assert_eq!(after.record.saga.waiting_on(), Some("credit_check"));
        let planned: Vec<&str> = after.events.iter().map(LoanEvent::type_name).collect();
        assert_eq!(planned, ["LoanSubmitted"]);

        assert!(unit.consumes().is_none(), "a submission consumes no message");
        let UnitOfWork::Submission(submission) = &unit else { panic!("not a submission: {unit:?}") };
        assert_eq!(submission.idempotency.as_ref().map(|k| k.key.as_str()), Some("k"));
        let row = &submission.loan;
        assert_eq!((row.id.as_str(), row.status.as_str(), row.version), (id.to_string().as_str(), "evaluating", 1));
        assert_eq!((row.submitted_at, row.updated_at), (now, now));
        let events: Vec<&str> = unit.events().iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(events, ["LoanSubmitted"]);

        let destinations: Vec<ActorKind> = after.emits.iter().map(|e| e.destination).collect();
        assert_eq!(destinations, [ActorKind::Credit, ActorKind::Appraisal]);
        assert!(after.emits.iter().all(|e| e.loan_id == id && e.causation_id().is_none() && !e.is_uncommitted()));
        let emitted: Vec<String> = unit.emits().iter().map(|row| row.message_id.clone()).collect();
        let planned: Vec<String> = after.emits.iter().map(|e| e.message_id.to_string()).collect();
        assert_eq!(emitted, planned, "the unit stores exactly the envelopes delivered after the commit");
    }

    #[test]
    fn a_step_consumes_its_message_and_a_stale_one_only_checks_the_version() {
        let (_, submitted) =
            plan_submission(LoanId::generate(), application(), Utc::now().naive_utc(), None, ReviewBand::NEVER, None);
        let loan = submitted.record;
        let score = crate::domain::credit_score(&loan.application.applicant.email);
        let request = &submitted.emits[0];
        let reply = Envelope::uncommitted_reply(request, MessageBody::Saga(SagaInput::CreditChecked { score }));
        let MessageBody::Saga(input) = &reply.body else { unreachable!() };

        let (unit, after) = plan_step(&loan, &reply, input, None);
        assert!(after.applied);
        assert_eq!(unit.consumes(), Some(request.message_id), "an uncommitted reply consumes its request's row");
        assert!(matches!(
            &unit,
            UnitOfWork::Step(Step { change: StepChange::Applied { expected_version: 1, .. }, .. })
        ));
        assert_eq!(after.record.version, 2);

        let (unit, after) = plan_step(&after.record, &reply, input, None);
        assert!(!after.applied, "the same reply again is ignored");
        assert!(matches!(unit, UnitOfWork::Step(Step { change: StepChange::Ignored { expected_version: 2 }, .. })));
        assert!(unit.events().is_empty() && unit.emits().is_empty());
    }
}
