//! Property tests: random valid applications, random bureau outcomes, every interleaving of the
//! parallel results and of the compensations, with duplicates and stray inputs thrown in.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::world::{Outcomes, Step, World};
use crate::domain::{
    appraised_value, credit_score, decide, Address, Applicant, ApplicantName, CreditScore, Email, LoanApplication,
    Money, Property, RejectionReason, TermMonths, Verdict,
};
use crate::saga::state::StepKind;
use crate::saga::{LoanEvent, LoanStatus, SagaCommand, SagaInput};

const CASES: u32 = 2000;

prop_compose! {
    /// Valid by construction (the property re-checks each one through the parser); amount and income are drawn relative
    /// to the property's value so that approvals and every rejection reason all occur.
    pub(super) fn application()(
        local in "[a-z][a-z0-9._-]{0,15}",
        domain in prop::sample::select(vec!["example.com", "mail.example.org", "test.io", "bank.eu"]),
        address in "[1-9][0-9]{0,3} [A-Z][a-z]{2,12} (St|Ave|Lane|Gracht), [A-Z][a-z]{2,10}",
        declared_cents in 5_000_000i64..=200_000_000,
        loan_percent in 10i64..=100,
        term_months in 12i64..=480,
        income_percent in 5i64..=300,
        debts_cents in prop_oneof![Just(0i64), 0i64..=400_000],
    ) -> LoanApplication {
        let amount_cents = declared_cents * loan_percent / 100;
        LoanApplication {
            applicant: Applicant {
                name: ApplicantName::parse("Applicant").unwrap(),
                email: Email::parse(&format!("{local}@{domain}")).unwrap(),
                annual_income: Money::from_cents(amount_cents * income_percent / 100),
                monthly_debts: Money::from_cents(debts_cents),
            },
            property: Property {
                address: Address::parse(&address).unwrap(),
                declared_value: Money::from_cents(declared_cents),
            },
            amount: Money::from_cents(amount_cents),
            term_months: TermMonths::parse(term_months).unwrap(),
        }
    }
}

/// Any input at all, with any payload: the world delivers it only where it answers nothing.
fn any_input() -> impl Strategy<Value = SagaInput> {
    prop_oneof![
        (300u16..=850).prop_map(|s| SagaInput::CreditChecked { score: CreditScore::new(s).unwrap() }),
        (".{0,8}", 1u32..9).prop_map(|(reason, attempts)| SagaInput::CreditCheckFailed { reason, attempts }),
        (1i64..10_000_000_000).prop_map(|c| SagaInput::PropertyAppraised { value: Money::from_cents(c) }),
        (".{0,8}", 1u32..9).prop_map(|(reason, attempts)| SagaInput::AppraisalFailed { reason, attempts }),
        Just(SagaInput::CreditCheckReleased),
        Just(SagaInput::AppraisalVoided),
        (12u16..=480).prop_map(|lines| SagaInput::ScheduleGenerated { lines }),
        "[a-z]{1,6}".prop_map(|channel| SagaInput::ApplicantNotified { channel }),
    ]
}

fn outcomes() -> impl Strategy<Value = Outcomes> {
    (prop::bool::weighted(0.75), prop::bool::weighted(0.75))
        .prop_map(|(credit_ok, appraisal_ok)| Outcomes { credit_ok, appraisal_ok })
}

fn step() -> impl Strategy<Value = Step> {
    (any::<Index>(), prop::option::weighted(0.3, any::<Index>()), prop::option::weighted(0.3, any_input()))
        .prop_map(|(pick, duplicate, stray)| Step { pick, duplicate, stray })
}

fn count<T>(items: &[T], pred: impl Fn(&T) -> bool) -> usize {
    items.iter().filter(|item| pred(item)).count()
}

fn position(events: &[LoanEvent], type_name: &str) -> Option<usize> {
    events.iter().position(|e| e.type_name() == type_name)
}

/// What must hold once the world has nothing left to answer.
fn check_finished_run(w: &World) -> Result<(), TestCaseError> {
    let (s, app, events, issued) = (&w.state, w.app, &w.events, &w.issued);
    prop_assert!(s.is_finished() && s.waiting_on().is_none(), "not finished: {:?}", s);

    prop_assert_eq!(count(issued, |c| matches!(c, SagaCommand::NotifyApplicant { .. })), 1);
    prop_assert_eq!(issued.last(), Some(&SagaCommand::NotifyApplicant { status: s.status }));
    prop_assert_eq!(count(issued, |c| *c == SagaCommand::CheckCredit), 1);
    prop_assert_eq!(count(issued, |c| *c == SagaCommand::AppraiseProperty), 1);
    for event in events {
        prop_assert_eq!(count(events, |e| e.type_name() == event.type_name()), 1, "twice: {:?}", events);
    }
    let notified = LoanEvent::ApplicantNotified { channel: "email".into(), status: s.status.as_str().into() };
    prop_assert_eq!(events.last(), Some(&notified));

    // Compensation: exactly the completed steps, once something failed, latest completed first.
    let failed = !(w.outcomes.credit_ok && w.outcomes.appraisal_ok);
    let completed: Vec<StepKind> = events
        .iter()
        .filter_map(|e| match e {
            LoanEvent::CreditChecked { .. } => Some(StepKind::CreditCheck),
            LoanEvent::PropertyAppraised { .. } => Some(StepKind::Appraisal),
            _ => None,
        })
        .collect();
    let compensated: Vec<StepKind> = issued
        .iter()
        .filter_map(|c| match c {
            SagaCommand::ReleaseCreditCheck => Some(StepKind::CreditCheck),
            SagaCommand::VoidAppraisal => Some(StepKind::Appraisal),
            _ => None,
        })
        .collect();
    let expected: Vec<StepKind> = if failed { completed.iter().rev().copied().collect() } else { vec![] };
    prop_assert_eq!(&compensated, &expected);
    let released = issued.contains(&SagaCommand::ReleaseCreditCheck);
    prop_assert_eq!(released, w.outcomes.credit_ok && failed);
    prop_assert_eq!(issued.contains(&SagaCommand::VoidAppraisal), w.outcomes.appraisal_ok && failed);
    prop_assert_eq!(position(events, "CreditCheckReleased").is_some(), released);
    prop_assert_eq!(position(events, "AppraisalVoided").is_some(), w.outcomes.appraisal_ok && failed);

    if failed {
        check_cancelled(w)
    } else {
        check_decided(w, app)
    }
}

fn check_cancelled(w: &World) -> Result<(), TestCaseError> {
    let (s, events) = (&w.state, &w.events);
    prop_assert_eq!(s.status, LoanStatus::Cancelled);
    let cancelled = position(events, "LoanCancelled");
    prop_assert!(cancelled.is_some());
    for compensation in ["CreditCheckReleased", "AppraisalVoided"] {
        prop_assert!(position(events, compensation) < cancelled, "{} after LoanCancelled", compensation);
    }
    prop_assert!(position(events, "LoanApproved").is_none() && position(events, "LoanRejected").is_none());
    prop_assert!(position(events, "ScheduleGenerated").is_none());
    prop_assert!(s.appraised_value().is_none() && s.rate_bps().is_none() && s.monthly_payment().is_none());
    prop_assert_eq!(s.credit_score().is_some(), w.outcomes.credit_ok);
    Ok(())
}

fn check_decided(w: &World, app: &LoanApplication) -> Result<(), TestCaseError> {
    let (s, events) = (&w.state, &w.events);
    let score = credit_score(&app.applicant.email);
    let value = appraised_value(&app.property.address, app.property.declared_value);
    let expected = decide(app, score, value);
    let approved = expected.verdict.is_approved();
    prop_assert_eq!(s.status, if approved { LoanStatus::Approved } else { LoanStatus::Rejected });
    prop_assert!(position(events, "LoanCancelled").is_none());
    prop_assert!(position(events, "LoanApproved").is_some() == approved);
    prop_assert!(position(events, "LoanRejected").is_some() != approved);
    let decision = s.decision.as_ref().expect("a decided loan keeps its decision");
    let reasons = match &expected.verdict {
        Verdict::Approved => vec![],
        Verdict::Rejected(reasons) => reasons.clone(),
    };
    prop_assert_eq!(&decision.reasons, &reasons);
    prop_assert_eq!(s.rate_bps(), Some(expected.rate_bps));
    prop_assert_eq!(s.monthly_payment(), Some(expected.monthly_payment));
    prop_assert_eq!(s.appraised_value(), Some(value));
    prop_assert_eq!(s.credit_score(), Some(score));
    let schedule = position(events, "ScheduleGenerated");
    prop_assert_eq!(schedule.is_some(), approved);
    prop_assert_eq!(w.issued.contains(&SagaCommand::GenerateSchedule), approved);
    prop_assert!(schedule < position(events, "ApplicantNotified"));
    prop_assert_eq!(s.schedule_generated, approved);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_interleaving_ends_finished_and_notified_once(
        app in application(),
        outcomes in outcomes(),
        prelude in prop::collection::vec(any_input(), 0..3),
        steps in prop::collection::vec(step(), 6),
    ) {
        let body = serde_json::to_value(&app).unwrap();
        let parsed = LoanApplication::parse(&body);
        prop_assert_eq!(parsed.as_ref(), Ok(&app), "the generator made an invalid application");
        let mut world = World::new(&app, outcomes);
        world.run(&prelude, &steps)?;
        check_finished_run(&world)?;
    }
}

/// Guards the generator: the property above is only as good as the mix of verdicts it sees.
#[test]
fn generated_applications_reach_every_verdict() {
    let mut runner = TestRunner::deterministic();
    let strategy = application();
    let (mut approved, mut reasons) = (0, Vec::new());
    let samples = 1000;
    for _ in 0..samples {
        let app = strategy.new_tree(&mut runner).unwrap().current();
        let score = credit_score(&app.applicant.email);
        let value = appraised_value(&app.property.address, app.property.declared_value);
        match decide(&app, score, value).verdict {
            Verdict::Approved => approved += 1,
            Verdict::Rejected(why) => reasons.extend(why),
        }
    }
    assert!(approved >= samples / 10, "only {approved} of {samples} approved");
    assert!(approved <= samples * 9 / 10, "{approved} of {samples} approved");
    for reason in
        [RejectionReason::CreditScoreTooLow, RejectionReason::LoanToValueTooHigh, RejectionReason::DebtToIncomeTooHigh]
    {
        let n = count(&reasons, |r| *r == reason);
        assert!(n >= samples / 20, "{reason:?} in only {n} of {samples}");
    }
}
