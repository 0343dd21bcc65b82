//! Inputs that do not fit the state (duplicates, results before the start, confirmations of
//! compensations never requested, late contradicting results) are ignored: not applied, no
//! events, no commands, the state unchanged. This is what makes at-least-once delivery safe.

use super::support::*;
use crate::domain::{CreditScore, LoanApplication};
use crate::saga::SagaInput;

/// One of every kind of input, with payloads that differ from the scenarios' ones.
fn every_input() -> Vec<SagaInput> {
    vec![
        SagaInput::CreditChecked { score: CreditScore::new(700).unwrap() },
        SagaInput::CreditCheckFailed { reason: "late".into(), attempts: 9 },
        SagaInput::PropertyAppraised { value: money("123456.78") },
        SagaInput::AppraisalFailed { reason: "late".into(), attempts: 9 },
        SagaInput::CreditCheckReleased,
        SagaInput::AppraisalVoided,
        SagaInput::ScheduleGenerated { lines: 12 },
        SagaInput::ApplicantNotified { channel: "sms".into() },
    ]
}

/// Every complete run of the process after its start, one per path.
fn every_path() -> Vec<(LoanApplication, Vec<SagaInput>)> {
    let ok = approvable();
    let no = hopeless();
    vec![
        (ok.clone(), vec![credit_checked(&ok), appraised(&ok), schedule_generated(), notified()]),
        (no.clone(), vec![appraised(&no), credit_checked(&no), notified()]),
        (ok.clone(), vec![appraisal_failed(), credit_checked(&ok), SagaInput::CreditCheckReleased, notified()]),
        (ok.clone(), vec![appraised(&ok), credit_failed(), SagaInput::AppraisalVoided, notified()]),
        (ok, vec![credit_failed(), appraisal_failed(), notified()]),
    ]
}

#[test]
fn every_input_delivered_twice_is_ignored_the_second_time() {
    for (app, run) in every_path() {
        for (i, input) in run.iter().enumerate() {
            let first = given_for(&app, &run[..i]).when(input.clone());
            let first = if i + 1 == run.len() { first.then_finished() } else { first };
            first.and_when(input.clone()).then_ignored();
        }
    }
}

#[test]
fn nothing_is_applied_before_start() {
    for input in every_input() {
        given_submitted().when(input).then_ignored();
    }
}

#[test]
fn a_loan_starts_once() {
    given(&[]).when_started().then_ignored();
    for (app, run) in every_path() {
        given_for(&app, &run).when_started().then_ignored();
    }
}

#[test]
fn every_input_is_ignored_once_the_loan_is_finished() {
    for (app, run) in every_path() {
        for input in every_input() {
            given_for(&app, &run).when(input).then_ignored();
        }
    }
}

#[test]
fn compensation_confirmations_never_requested_are_ignored() {
    let app = approvable();
    let states: [&[SagaInput]; 5] = [
        &[],
        &[credit_checked(&app)],
        &[appraisal_failed()],
        &[credit_checked(&app), appraised(&app)],
        &[credit_failed(), appraisal_failed()],
    ];
    for inputs in states {
        given(inputs).when(SagaInput::CreditCheckReleased).then_ignored();
        given(inputs).when(SagaInput::AppraisalVoided).then_ignored();
    }
    // A release is pending: the appraisal was never compensated, so its void is stale.
    given(&[credit_checked(&app), appraisal_failed()]).when(SagaInput::AppraisalVoided).then_ignored();
    given(&[appraised(&app), credit_failed()]).when(SagaInput::CreditCheckReleased).then_ignored();
}

#[test]
fn schedules_and_notifications_never_requested_are_ignored() {
    let app = approvable();
    let low = low_score();
    given(&[credit_checked(&app)]).when(schedule_generated()).then_ignored();
    given(&[credit_checked(&app)]).when(notified()).then_ignored();
    // Approved: the notification waits for the schedule.
    given(&[credit_checked(&app), appraised(&app)]).when(notified()).then_ignored();
    given_for(&low, &[credit_checked(&low), appraised(&low)]).when(schedule_generated()).then_ignored();
    given(&[appraisal_failed(), credit_checked(&app)]).when(notified()).then_ignored();
}

#[test]
fn a_late_result_contradicting_a_settled_step_is_ignored() {
    let app = approvable();
    for settled in [credit_checked(&app), credit_failed()] {
        for late in [SagaInput::CreditChecked { score: CreditScore::new(400).unwrap() }, credit_failed()] {
            given(std::slice::from_ref(&settled)).when(late).then_ignored();
        }
    }
    for settled in [appraised(&app), appraisal_failed()] {
        for late in [SagaInput::PropertyAppraised { value: money("1.00") }, appraisal_failed()] {
            given(std::slice::from_ref(&settled)).when(late).then_ignored();
        }
    }
}
