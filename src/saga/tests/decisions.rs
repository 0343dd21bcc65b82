//! Start, and the paths where both steps succeed: approval (schedule, then notification) and
//! rejection for each reason (notification directly, no schedule).

use super::support::*;
use crate::domain::{appraised_value, credit_score, decide, LoanApplication, RejectionReason, Verdict};
use crate::saga::{LoanEvent, LoanStatus, SagaCommand, SagaInput};

/// The decision event the saga must emit for `app`, figures from the domain's rules.
fn decision_event(app: &LoanApplication) -> LoanEvent {
    let score = credit_score(&app.applicant.email);
    let value = appraised_value(&app.property.address, app.property.declared_value);
    let d = decide(app, score, value);
    match d.verdict {
        Verdict::Approved => LoanEvent::LoanApproved {
            rate_bps: d.rate_bps,
            monthly_payment: d.monthly_payment,
            loan_to_value: d.loan_to_value,
            debt_to_income: d.debt_to_income,
            review: None,
        },
        Verdict::Rejected(reasons) => LoanEvent::LoanRejected {
            reasons,
            rate_bps: d.rate_bps,
            monthly_payment: d.monthly_payment,
            loan_to_value: d.loan_to_value,
            debt_to_income: d.debt_to_income,
            review: None,
        },
    }
}

#[test]
fn start_runs_both_steps_in_parallel() {
    given_submitted()
        .when_started()
        .then_events(&[])
        .then_commands(&[SagaCommand::CheckCredit, SagaCommand::AppraiseProperty])
        .then_status(LoanStatus::Evaluating)
        .then_waiting_on("credit_check");
}

#[test]
fn one_result_alone_waits_for_the_other() {
    let app = approvable();
    given(&[])
        .when(credit_checked(&app))
        .then_exact_events(&[LoanEvent::CreditChecked { credit_score: credit_score(&app.applicant.email) }])
        .then_commands(&[])
        .then_status(LoanStatus::Evaluating)
        .then_waiting_on("appraisal");
    given(&[])
        .when(appraised(&app))
        .then_events(&["PropertyAppraised"])
        .then_commands(&[])
        .then_status(LoanStatus::Evaluating)
        .then_waiting_on("credit_check");
}

#[test]
fn both_results_in_either_order_approve_and_ask_for_the_schedule() {
    let app = approvable();
    for (first, second) in [(credit_checked(&app), appraised(&app)), (appraised(&app), credit_checked(&app))] {
        let second_event = if matches!(second, SagaInput::CreditChecked { .. }) {
            LoanEvent::CreditChecked { credit_score: credit_score(&app.applicant.email) }
        } else {
            LoanEvent::PropertyAppraised {
                appraised_value: appraised_value(&app.property.address, app.property.declared_value),
            }
        };
        given(&[first])
            .when(second)
            .then_exact_events(&[second_event, decision_event(&app)])
            .then_commands(&[SagaCommand::GenerateSchedule])
            .then_status(LoanStatus::Approved)
            .then_waiting_on("schedule");
    }
}

#[test]
fn an_approved_loan_is_notified_after_its_schedule_then_finished() {
    let app = approvable();
    given(&[credit_checked(&app), appraised(&app)])
        .when(schedule_generated())
        .then_exact_events(&[LoanEvent::ScheduleGenerated { lines: 360 }])
        .then_commands(&[notify(LoanStatus::Approved)])
        .then_waiting_on("notification")
        .and_when(notified())
        .then_exact_events(&[LoanEvent::ApplicantNotified { channel: "email".into(), status: "approved".into() }])
        .then_commands(&[])
        .then_status(LoanStatus::Approved)
        .then_finished()
        .then_state(|s| {
            assert!(s.schedule_generated);
            assert_eq!(s.credit_score(), Some(credit_score(&app.applicant.email)));
            assert!(s.appraised_value().is_some() && s.rate_bps().is_some() && s.monthly_payment().is_some());
        });
}

#[test]
fn each_rejection_reason_rejects_and_notifies_without_a_schedule() {
    use RejectionReason::*;
    let cases = [
        ("score", low_score(), vec![CreditScoreTooLow]),
        ("loan to value", high_loan_to_value(), vec![LoanToValueTooHigh]),
        ("debt to income", high_debt_to_income(), vec![DebtToIncomeTooHigh]),
        ("everything", hopeless(), vec![CreditScoreTooLow, LoanToValueTooHigh, DebtToIncomeTooHigh]),
    ];
    for (case, app, reasons) in cases {
        let event = decision_event(&app);
        assert!(matches!(&event, LoanEvent::LoanRejected { reasons: r, .. } if *r == reasons), "{case}: {event:?}");
        given_for(&app, &[appraised(&app)])
            .when(credit_checked(&app))
            .then_events(&["CreditChecked", "LoanRejected"])
            .then_state(|s| assert_eq!(s.decision.as_ref().map(|d| d.reasons.clone()), Some(reasons.clone())))
            .then_commands(&[notify(LoanStatus::Rejected)])
            .then_status(LoanStatus::Rejected)
            .then_waiting_on("notification")
            .and_when(schedule_generated())
            .then_ignored()
            .and_when(notified())
            .then_exact_events(&[LoanEvent::ApplicantNotified { channel: "email".into(), status: "rejected".into() }])
            .then_finished()
            .then_state(|s| assert!(!s.schedule_generated, "{case}"));
    }
}

#[test]
fn a_rejected_loan_reports_the_figures_that_explain_it() {
    let app = low_score();
    let LoanEvent::LoanRejected { rate_bps, monthly_payment, .. } = decision_event(&app) else {
        panic!("low_score() should be rejected")
    };
    given_for(&app, &[credit_checked(&app), appraised(&app)]).when(notified()).then_state(|s| {
        assert_eq!(s.status, LoanStatus::Rejected);
        assert_eq!(s.rate_bps(), Some(rate_bps));
        assert_eq!(s.rate_bps(), Some(300 + (850 - 533)));
        assert_eq!(s.monthly_payment(), Some(monthly_payment));
        assert_eq!(s.credit_score(), Some(credit_score(&app.applicant.email)));
        assert_eq!(s.appraised_value(), Some(appraised_value(&app.property.address, app.property.declared_value)));
    });
}
