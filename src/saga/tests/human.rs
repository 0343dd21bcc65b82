//! Scenarios of the human steps: referral, claim, the underwriter's decision, requests with their
//! notices, reminders, deadlines and extensions, escalation, withdrawal and cancellation.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration};

use super::support::*;
use crate::domain::{LoanApplication, RejectionReason, RequestId, ReviewBand, Timestamp};
use crate::saga::{
    Answers, CancelCause, LoanEvent, LoanSaga, LoanStatus, NewInformationRequest, NoticeKind, Reviewer, ReviewerRole,
    SagaCommand, SagaInput, Timer, TimerKind, UnderwriterDecision,
};

/// Score 645: passes every rule, below the default band of 660.
pub(super) fn borderline() -> LoanApplication {
    application("ref0@example.com", "200000", "120000", "0")
}

fn banded() -> LoanSaga {
    LoanSaga::with_review_band(ReviewBand::DEFAULT)
}

pub(super) fn at(seconds: i64) -> Timestamp {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap().naive_utc()
}

pub(super) fn underwriter(name: &str) -> Reviewer {
    Reviewer { name: name.into(), role: ReviewerRole::Underwriter }
}

fn operator() -> Reviewer {
    Reviewer { name: "ops".into(), role: ReviewerRole::Operator }
}

fn decide(decision: UnderwriterDecision, by: Reviewer) -> SagaInput {
    SagaInput::Decide { decision, note: "checked the payslips".into(), by }
}

fn request_id(n: u128) -> RequestId {
    RequestId::from_uuid(uuid::Uuid::from_u128(n))
}

/// Request `n`, asked at 0 s, due at 1000 s, reminded at 500 s.
fn ask(n: u128) -> SagaInput {
    SagaInput::RequestInformation {
        request: NewInformationRequest {
            request_id: request_id(n),
            message: "Please send your payslip details".into(),
            fields: vec!["employer".into(), "net_salary".into()],
            requested_at: at(0),
            due_at: at(1000),
            remind_at: Some(at(500)),
        },
        by: underwriter("ann"),
    }
}

fn answers(pairs: &[(&str, &str)]) -> Answers {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()
}

fn answer(n: u128) -> SagaInput {
    SagaInput::ProvideInformation {
        request_id: request_id(n),
        answers: answers(&[("employer", "ACME"), ("net_salary", "4200")]),
    }
}

fn timer(kind: TimerKind, n: u128, seconds: i64) -> Timer {
    Timer { kind, request_id: request_id(n), due_at: at(seconds) }
}

fn fired(kind: TimerKind, n: u128, seconds: i64) -> SagaInput {
    SagaInput::TimerFired { timer: timer(kind, n, seconds), fired_at: None }
}

fn notice_sent(n: u128, notice: NoticeKind) -> SagaInput {
    SagaInput::NoticeSent { request_id: request_id(n), notice, channel: "email".into() }
}

fn extend(n: u128, due: i64, remind: i64) -> SagaInput {
    SagaInput::ExtendDeadline {
        request_id: request_id(n),
        due_at: at(due),
        remind_at: Some(at(remind)),
        by: underwriter("ann"),
    }
}

fn withdraw() -> SagaInput {
    SagaInput::Cancel { cause: CancelCause::Withdrawn }
}

fn cancel_by_operator() -> SagaInput {
    SagaInput::Cancel { cause: CancelCause::Operator { by: "ops".into() } }
}

/// Referred: both steps completed (credit first), under review.
fn referred_inputs() -> Vec<SagaInput> {
    let app = borderline();
    vec![credit_checked(&app), appraised(&app)]
}

fn given_referred(more: &[SagaInput]) -> Given {
    let mut inputs = referred_inputs();
    inputs.extend_from_slice(more);
    given_from(&borderline(), banded(), &inputs)
}

fn schedule(kind: TimerKind, n: u128, seconds: i64) -> SagaCommand {
    SagaCommand::ScheduleTimer { timer: timer(kind, n, seconds) }
}

fn drop_timers(n: u128) -> SagaCommand {
    SagaCommand::DropTimers { request_id: request_id(n) }
}

fn cancelled_reason(then: &LoanSaga) -> String {
    then.cancellation.as_ref().map(CancelCause::reason).unwrap_or_default()
}

#[test]
fn a_loan_passing_with_a_score_below_the_band_is_referred() {
    let app = borderline();
    given_from(&app, banded(), &[credit_checked(&app)])
        .when(appraised(&app))
        .then_events(&["PropertyAppraised", "LoanReferred"])
        .then_commands(&[])
        .then_status(LoanStatus::UnderReview)
        .then_waiting_on("underwriter")
        .then_state(|s| {
            let review = s.review.as_ref().unwrap();
            assert_eq!(review.referral.credit_score.get(), 645);
            assert_eq!(review.referral.review_below_score, ReviewBand::DEFAULT);
            // Not decided yet: no rate or payment reported.
            assert_eq!((s.rate_bps(), s.monthly_payment()), (None, None));
        });
}

#[test]
fn without_a_band_the_same_loan_is_approved_and_a_band_never_refers_a_rejection_or_a_high_score() {
    let app = borderline();
    given_for(&app, &[credit_checked(&app)]).when(appraised(&app)).then_events(&["PropertyAppraised", "LoanApproved"]);
    let low = low_score();
    given_from(&low, banded(), &[credit_checked(&low)])
        .when(appraised(&low))
        .then_events(&["PropertyAppraised", "LoanRejected"]);
    let high = approvable();
    given_from(&high, banded(), &[credit_checked(&high)])
        .when(appraised(&high))
        .then_events(&["PropertyAppraised", "LoanApproved"]);
}

#[test]
fn an_underwriter_approves_then_schedule_then_the_one_notification() {
    given_referred(&[])
        .when(decide(UnderwriterDecision::Approve, underwriter("ann")))
        .then_status(LoanStatus::Approved)
        .then_commands(&[SagaCommand::GenerateSchedule])
        .then_state(|s| assert_eq!(s.rate_bps(), Some(300 + 850 - 645)))
        .and_when(schedule_generated())
        .then_commands(&[notify(LoanStatus::Approved)])
        .and_when(notified())
        .then_finished();
}

#[test]
fn an_approval_records_the_note_and_who_decided() {
    given_referred(&[])
        .when(decide(UnderwriterDecision::Approve, underwriter("ann")))
        .then_events(&["LoanApproved"])
        .then_state(|s| assert!(s.decision.as_ref().unwrap().approved))
        .then_check_events(|events| {
            let LoanEvent::LoanApproved { review: Some(note), .. } = &events[0] else { panic!("{events:?}") };
            assert_eq!((note.by.as_str(), note.note.as_str()), ("ann", "checked the payslips"));
        });
}

#[test]
fn an_underwriter_rejects_as_underwriter_declined() {
    given_referred(&[])
        .when(decide(UnderwriterDecision::Reject, underwriter("ann")))
        .then_events(&["LoanRejected"])
        .then_status(LoanStatus::Rejected)
        .then_commands(&[notify(LoanStatus::Rejected)])
        .then_state(|s| assert_eq!(s.decision.as_ref().unwrap().reasons, vec![RejectionReason::UnderwriterDeclined]))
        .and_when(notified())
        .then_finished()
        .and_when(decide(UnderwriterDecision::Approve, underwriter("ann")))
        .then_ignored();
}

#[test]
fn a_decision_fits_only_a_loan_under_review() {
    let app = borderline();
    given_from(&app, banded(), &[credit_checked(&app)])
        .when(decide(UnderwriterDecision::Approve, operator()))
        .then_ignored();
    given_referred(&[ask(1)]).when(decide(UnderwriterDecision::Approve, operator())).then_ignored();
}

#[test]
fn a_claim_binds_other_underwriters_but_not_operators() {
    given_referred(&[])
        .when(SagaInput::Claim { by: underwriter("ann") })
        .then_events(&["ReviewClaimed"])
        .then_state(|s| assert_eq!(s.review.as_ref().unwrap().claimed_by.as_deref(), Some("ann")))
        .and_when(SagaInput::Claim { by: underwriter("bob") })
        .then_ignored()
        .and_when(decide(UnderwriterDecision::Approve, underwriter("bob")))
        .then_ignored()
        .and_when(SagaInput::Claim { by: underwriter("ann") })
        .then_ignored()
        .and_when(decide(UnderwriterDecision::Reject, operator()))
        .then_events(&["LoanRejected"]);
}

#[test]
fn a_request_for_information_notifies_and_arms_its_deadline_and_reminder() {
    given_referred(&[])
        .when(ask(1))
        .then_events(&["InformationRequested"])
        .then_status(LoanStatus::AwaitingInformation)
        .then_waiting_on("applicant")
        .then_commands(&[
            SagaCommand::SendNotice { request_id: request_id(1), notice: NoticeKind::InformationRequest },
            schedule(TimerKind::InformationDeadline, 1, 1000),
            schedule(TimerKind::InformationReminder, 1, 500),
        ])
        .and_when(notice_sent(1, NoticeKind::InformationRequest))
        .then_events(&["InformationRequestSent"])
        .then_commands(&[])
        .and_when(notice_sent(1, NoticeKind::InformationRequest))
        .then_ignored();
}

#[test]
fn a_second_request_while_one_is_open_or_a_reused_id_is_ignored() {
    given_referred(&[ask(1)]).when(ask(2)).then_ignored();
    given_referred(&[ask(1), answer(1)]).when(ask(1)).then_ignored();
}

#[test]
fn the_answer_to_the_open_request_goes_back_to_review() {
    given_referred(&[ask(1)])
        .when(answer(1))
        .then_events(&["InformationProvided"])
        .then_commands(&[drop_timers(1)])
        .then_status(LoanStatus::UnderReview)
        .then_waiting_on("underwriter")
        .and_when(answer(1))
        .then_ignored()
        .and_when(ask(2))
        .then_events(&["InformationRequested"]);
}

#[test]
fn an_answer_that_misses_a_field_adds_one_is_blank_or_answers_another_request_is_ignored() {
    let misfits = [
        answers(&[("employer", "ACME")]),
        answers(&[("employer", "ACME"), ("net_salary", "4200"), ("pets", "cat")]),
        answers(&[("employer", "ACME"), ("net_salary", "  ")]),
    ];
    for misfit in misfits {
        given_referred(&[ask(1)])
            .when(SagaInput::ProvideInformation { request_id: request_id(1), answers: misfit })
            .then_ignored();
    }
    given_referred(&[ask(1)]).when(answer(2)).then_ignored();
}

#[test]
fn a_reminder_fires_once_and_is_confirmed_once() {
    given_referred(&[ask(1)])
        .when(fired(TimerKind::InformationReminder, 1, 500))
        .then_events(&[])
        .then_commands(&[SagaCommand::SendNotice {
            request_id: request_id(1),
            notice: NoticeKind::InformationReminder,
        }])
        .and_when(fired(TimerKind::InformationReminder, 1, 500))
        .then_ignored()
        .and_when(notice_sent(1, NoticeKind::InformationReminder))
        .then_events(&["InformationReminderSent"])
        .and_when(notice_sent(1, NoticeKind::InformationReminder))
        .then_ignored();
}

#[test]
fn the_deadline_expires_the_request_compensates_in_reverse_and_cancels() {
    given_referred(&[ask(1)])
        .when(fired(TimerKind::InformationDeadline, 1, 1000))
        .then_events(&["InformationRequestExpired"])
        .then_status(LoanStatus::Evaluating)
        .then_commands(&[drop_timers(1), SagaCommand::VoidAppraisal])
        .and_when(SagaInput::AppraisalVoided)
        .then_commands(&[SagaCommand::ReleaseCreditCheck])
        .and_when(SagaInput::CreditCheckReleased)
        .then_events(&["CreditCheckReleased", "LoanCancelled"])
        .then_state(|s| assert!(cancelled_reason(s).starts_with("information_not_provided")))
        .then_commands(&[notify(LoanStatus::Cancelled)])
        .and_when(notified())
        .then_finished()
        .and_when(answer(1))
        .then_ignored();
}

#[test]
fn a_deadline_after_the_answer_a_second_delivery_or_another_time_is_ignored() {
    given_referred(&[ask(1), answer(1)]).when(fired(TimerKind::InformationDeadline, 1, 1000)).then_ignored();
    given_referred(&[ask(1)]).when(fired(TimerKind::InformationDeadline, 1, 999)).then_ignored();
    given_referred(&[ask(1)]).when(fired(TimerKind::InformationDeadline, 2, 1000)).then_ignored();
    given_referred(&[ask(1), fired(TimerKind::InformationDeadline, 1, 1000)])
        .when(fired(TimerKind::InformationDeadline, 1, 1000))
        .then_ignored();
}

#[test]
fn an_extension_moves_the_deadline_and_arms_the_reminder_again() {
    given_referred(&[ask(1)])
        .when(extend(1, 3000, 2000))
        .then_events(&["InformationDeadlineExtended"])
        .then_commands(&[
            drop_timers(1),
            schedule(TimerKind::InformationDeadline, 1, 3000),
            schedule(TimerKind::InformationReminder, 1, 2000),
        ])
        .and_when(fired(TimerKind::InformationDeadline, 1, 1000))
        .then_ignored()
        .and_when(fired(TimerKind::InformationReminder, 1, 500))
        .then_ignored()
        .and_when(fired(TimerKind::InformationReminder, 1, 2000))
        .then_commands(&[SagaCommand::SendNotice {
            request_id: request_id(1),
            notice: NoticeKind::InformationReminder,
        }])
        .and_when(fired(TimerKind::InformationDeadline, 1, 3000))
        .then_events(&["InformationRequestExpired"]);
}

#[test]
fn an_extension_after_the_reminder_went_out_does_not_remind_twice() {
    given_referred(&[ask(1), fired(TimerKind::InformationReminder, 1, 500)])
        .when(extend(1, 3000, 2000))
        .then_commands(&[drop_timers(1), schedule(TimerKind::InformationDeadline, 1, 3000)])
        .and_when(fired(TimerKind::InformationReminder, 1, 2000))
        .then_ignored();
}

#[test]
fn an_extension_of_no_open_request_is_ignored() {
    given_referred(&[]).when(extend(1, 3000, 2000)).then_ignored();
    given_referred(&[ask(1)]).when(extend(2, 3000, 2000)).then_ignored();
    given_referred(&[ask(1), answer(1)]).when(extend(1, 3000, 2000)).then_ignored();
}

#[test]
fn an_overdue_review_is_escalated_once() {
    given_referred(&[])
        .when(SagaInput::ReviewOverdue)
        .then_events(&["ReviewEscalated"])
        .then_status(LoanStatus::UnderReview)
        .and_when(SagaInput::ReviewOverdue)
        .then_ignored();
    given_referred(&[ask(1)]).when(SagaInput::ReviewOverdue).then_ignored();
}

#[test]
fn a_withdrawal_under_review_compensates_both_steps_in_reverse_then_cancels() {
    given_referred(&[ask(1)])
        .when(withdraw())
        .then_events(&["CancellationRequested"])
        .then_status(LoanStatus::Evaluating)
        .then_commands(&[drop_timers(1), SagaCommand::VoidAppraisal])
        .and_when(answer(1))
        .then_ignored()
        .and_when(withdraw())
        .then_ignored()
        .and_when(fired(TimerKind::InformationDeadline, 1, 1000))
        .then_ignored()
        .and_when(SagaInput::AppraisalVoided)
        .and_when(SagaInput::CreditCheckReleased)
        .then_events(&["CreditCheckReleased", "LoanCancelled"])
        .then_state(|s| assert!(cancelled_reason(s).starts_with("withdrawn")))
        .and_when(notified())
        .then_finished();
}

#[test]
fn a_withdrawal_while_a_step_runs_waits_for_it_then_compensates_what_completed() {
    let app = borderline();
    given_from(&app, banded(), &[appraised(&app)])
        .when(withdraw())
        .then_events(&["CancellationRequested"])
        .then_commands(&[])
        .then_waiting_on("credit_check")
        .and_when(credit_checked(&app))
        .then_events(&["CreditChecked"])
        .then_commands(&[SagaCommand::ReleaseCreditCheck])
        .and_when(SagaInput::CreditCheckReleased)
        .then_commands(&[SagaCommand::VoidAppraisal])
        .and_when(SagaInput::AppraisalVoided)
        .then_events(&["AppraisalVoided", "LoanCancelled"])
        .then_status(LoanStatus::Cancelled);
}

#[test]
fn a_withdrawal_of_a_loan_not_started_cancels_at_once() {
    given_submitted()
        .when(withdraw())
        .then_events(&["CancellationRequested", "LoanCancelled"])
        .then_commands(&[notify(LoanStatus::Cancelled)]);
}

#[test]
fn an_operator_cancels_with_an_operator_reason() {
    given_referred(&[])
        .when(cancel_by_operator())
        .then_state(|s| assert_eq!(cancelled_reason(s), "operator: cancelled by ops"))
        .then_commands(&[SagaCommand::VoidAppraisal]);
}

#[test]
fn a_reminder_firing_at_or_past_the_deadline_is_not_sent_and_the_deadline_still_expires() {
    // After a node was down, both timers are overdue and fire together: reminder first.
    let late = |kind, due, fired| SagaInput::TimerFired { timer: timer(kind, 1, due), fired_at: Some(at(fired)) };
    given_referred(&[ask(1)])
        .when(late(TimerKind::InformationReminder, 500, 1000))
        .then_ignored()
        .and_when(late(TimerKind::InformationReminder, 500, 1500))
        .then_ignored()
        .and_when(late(TimerKind::InformationDeadline, 1000, 1500))
        .then_events(&["InformationRequestExpired"]);
    given_referred(&[ask(1)]).when(late(TimerKind::InformationReminder, 500, 999)).then_commands(&[
        SagaCommand::SendNotice { request_id: request_id(1), notice: NoticeKind::InformationReminder },
    ]);
}

#[test]
fn a_terminal_loan_or_one_failing_already_cannot_be_withdrawn() {
    given(&[credit_checked(&approvable()), appraised(&approvable())]).when(withdraw()).then_ignored();
    given(&[credit_failed()]).when(cancel_by_operator()).then_ignored();
    // An expiry is the deadline's to record, not a caller's.
    given_referred(&[ask(1)])
        .when(SagaInput::Cancel { cause: CancelCause::InformationNotProvided { request_id: request_id(1) } })
        .then_ignored();
}

#[test]
fn a_notice_confirmed_after_the_request_closed_is_still_recorded_once() {
    given_referred(&[ask(1), answer(1)])
        .when(notice_sent(1, NoticeKind::InformationRequest))
        .then_events(&["InformationRequestSent"])
        .and_when(notice_sent(2, NoticeKind::InformationRequest))
        .then_ignored();
}

#[test]
fn times_are_kept_to_the_microsecond_so_a_stored_timer_matches() {
    let mut input = ask(1);
    if let SagaInput::RequestInformation { request, .. } = &mut input {
        request.due_at += Duration::nanoseconds(1_234_567);
        request.remind_at = None;
    }
    given_referred(&[])
        .when(input)
        .then_state(|s| assert_eq!(s.open_request().unwrap().due_at, at(1000) + Duration::microseconds(1234)))
        .then_commands(&[
            SagaCommand::SendNotice { request_id: request_id(1), notice: NoticeKind::InformationRequest },
            SagaCommand::ScheduleTimer {
                timer: Timer {
                    kind: TimerKind::InformationDeadline,
                    request_id: request_id(1),
                    due_at: at(1000) + Duration::microseconds(1234),
                },
            },
        ]);
}
