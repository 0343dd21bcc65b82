//! A step that fails permanently: wait for the other step to settle, compensate it if it
//! completed, then cancel and notify. A cancelled loan reports no appraisal, rate or payment.

use super::support::*;
use crate::domain::credit_score;
use crate::saga::{LoanEvent, LoanSaga, LoanStatus, SagaCommand, SagaInput};

#[track_caller]
fn assert_reports_nothing_but_the_score(s: &LoanSaga, score_reported: bool) {
    assert_eq!(s.status, LoanStatus::Cancelled);
    assert_eq!(s.appraised_value(), None);
    assert_eq!(s.rate_bps(), None);
    assert_eq!(s.monthly_payment(), None);
    assert_eq!(s.credit_score().is_some(), score_reported);
}

#[test]
fn appraisal_failing_while_credit_runs_waits_then_releases_the_credit_check() {
    let app = approvable();
    given(&[])
        .when(appraisal_failed())
        .then_exact_events(&[LoanEvent::AppraisalFailed { reason: "address not found".into(), attempts: 1 }])
        .then_commands(&[])
        .then_status(LoanStatus::Evaluating)
        .then_waiting_on("credit_check")
        .and_when(credit_checked(&app))
        .then_events(&["CreditChecked"])
        .then_commands(&[SagaCommand::ReleaseCreditCheck])
        .then_status(LoanStatus::Evaluating)
        .then_waiting_on("credit_release")
        .and_when(SagaInput::CreditCheckReleased)
        .then_exact_events(&[
            LoanEvent::CreditCheckReleased {},
            LoanEvent::LoanCancelled { reason: "appraisal failed: address not found".into() },
        ])
        .then_commands(&[notify(LoanStatus::Cancelled)])
        .then_waiting_on("notification")
        .and_when(notified())
        .then_exact_events(&[LoanEvent::ApplicantNotified { channel: "email".into(), status: "cancelled".into() }])
        .then_commands(&[])
        .then_finished()
        .then_state(|s| {
            assert_reports_nothing_but_the_score(s, true);
            assert_eq!(s.credit_score(), Some(credit_score(&app.applicant.email)));
        });
}

#[test]
fn appraisal_failing_after_credit_completed_releases_the_credit_check_at_once() {
    let app = approvable();
    given(&[credit_checked(&app)])
        .when(appraisal_failed())
        .then_events(&["AppraisalFailed"])
        .then_commands(&[SagaCommand::ReleaseCreditCheck])
        .then_status(LoanStatus::Evaluating)
        .and_when(SagaInput::CreditCheckReleased)
        .then_events(&["CreditCheckReleased", "LoanCancelled"])
        .then_commands(&[notify(LoanStatus::Cancelled)])
        .then_status(LoanStatus::Cancelled);
}

#[test]
fn credit_failing_while_the_appraisal_runs_waits_then_voids_the_appraisal() {
    let app = approvable();
    given(&[])
        .when(credit_failed())
        .then_exact_events(&[LoanEvent::CreditCheckFailed { reason: "bureau unreachable".into(), attempts: 5 }])
        .then_commands(&[])
        .then_waiting_on("appraisal")
        .and_when(appraised(&app))
        .then_events(&["PropertyAppraised"])
        .then_commands(&[SagaCommand::VoidAppraisal])
        .then_status(LoanStatus::Evaluating)
        .then_waiting_on("appraisal_void")
        .and_when(SagaInput::AppraisalVoided)
        .then_exact_events(&[
            LoanEvent::AppraisalVoided {},
            LoanEvent::LoanCancelled { reason: "credit check failed: bureau unreachable".into() },
        ])
        .then_commands(&[notify(LoanStatus::Cancelled)])
        .and_when(notified())
        .then_finished()
        // The appraisal completed, but a cancelled loan never shows its value.
        .then_state(|s| assert_reports_nothing_but_the_score(s, false));
}

#[test]
fn credit_failing_after_the_appraisal_completed_voids_it_at_once() {
    let app = approvable();
    given(&[appraised(&app)])
        .when(credit_failed())
        .then_events(&["CreditCheckFailed"])
        .then_commands(&[SagaCommand::VoidAppraisal])
        .and_when(SagaInput::AppraisalVoided)
        .then_events(&["AppraisalVoided", "LoanCancelled"])
        .then_commands(&[notify(LoanStatus::Cancelled)]);
}

#[test]
fn both_steps_failing_cancel_without_compensation() {
    for (first, second, second_event) in [
        (credit_failed(), appraisal_failed(), "AppraisalFailed"),
        (appraisal_failed(), credit_failed(), "CreditCheckFailed"),
    ] {
        given(&[first])
            .when(second)
            .then_events(&[second_event, "LoanCancelled"])
            .then_commands(&[notify(LoanStatus::Cancelled)])
            .then_status(LoanStatus::Cancelled)
            .and_when(SagaInput::CreditCheckReleased)
            .then_ignored()
            .and_when(SagaInput::AppraisalVoided)
            .then_ignored()
            .and_when(notified())
            .then_events(&["ApplicantNotified"])
            .then_finished()
            .then_state(|s| assert_reports_nothing_but_the_score(s, false));
    }
}
