//! The given/when/then DSL over [`LoanSaga::handle`], the applications the scenarios use, and
//! short constructors for the saga's inputs.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::domain::{
    appraised_value, credit_score, Address, Applicant, ApplicantName, Email, LoanApplication, Money, Property,
    TermMonths,
};
use crate::saga::{LoanEvent, LoanSaga, LoanStatus, SagaCommand, SagaInput, Transition};

pub(super) fn money(units: &str) -> Money {
    Money::from_decimal_rounded(Decimal::from_str(units).unwrap())
}

/// A 30-year loan on a 400,000 EUR property.
pub(super) fn application(email: &str, amount: &str, annual_income: &str, monthly_debts: &str) -> LoanApplication {
    LoanApplication {
        applicant: Applicant {
            name: ApplicantName::parse("Jane Doe").unwrap(),
            email: Email::parse(email).unwrap(),
            annual_income: money(annual_income),
            monthly_debts: money(monthly_debts),
        },
        property: Property {
            address: Address::parse("1 Canal St, Amsterdam").unwrap(),
            declared_value: money("400000"),
        },
        amount: money(amount),
        term_months: TermMonths::parse(360).unwrap(),
    }
}

/// Score 766, half the property's value, a tenth of the income in debts: approved.
pub(super) fn approvable() -> LoanApplication {
    application("jane.doe@example.com", "200000", "120000", "0")
}

/// Score 533 (below 620); nothing else wrong.
pub(super) fn low_score() -> LoanApplication {
    application("john@example.com", "200000", "120000", "0")
}

/// The full declared value, while the appraisal is at most 105% of it: LTV above 0.90.
pub(super) fn high_loan_to_value() -> LoanApplication {
    application("jane.doe@example.com", "400000", "120000", "0")
}

/// 4,000 EUR of monthly debts on 10,000 EUR of monthly income, plus the loan: DTI above 0.43.
pub(super) fn high_debt_to_income() -> LoanApplication {
    application("jane.doe@example.com", "200000", "120000", "4000")
}

/// Every rule broken at once.
pub(super) fn hopeless() -> LoanApplication {
    application("john@example.com", "400000", "120000", "4000")
}

/// The simulated credit bureau's answer for `app` (CONTRACT.md's hash).
pub(super) fn credit_checked(app: &LoanApplication) -> SagaInput {
    SagaInput::CreditChecked { score: credit_score(&app.applicant.email) }
}

/// The simulated appraiser's answer for `app` (CONTRACT.md's hash).
pub(super) fn appraised(app: &LoanApplication) -> SagaInput {
    SagaInput::PropertyAppraised { value: appraised_value(&app.property.address, app.property.declared_value) }
}

pub(super) fn credit_failed() -> SagaInput {
    SagaInput::CreditCheckFailed { reason: "bureau unreachable".into(), attempts: 5 }
}

pub(super) fn appraisal_failed() -> SagaInput {
    SagaInput::AppraisalFailed { reason: "address not found".into(), attempts: 1 }
}

pub(super) fn schedule_generated() -> SagaInput {
    SagaInput::ScheduleGenerated { lines: 360 }
}

pub(super) fn notified() -> SagaInput {
    SagaInput::ApplicantNotified { channel: "email".into() }
}

pub(super) fn notify(status: LoanStatus) -> SagaCommand {
    SagaCommand::NotifyApplicant { status }
}

/// A loan of `approvable()` just submitted, not started.
pub(super) fn given_submitted() -> Given {
    Given { app: approvable(), state: LoanSaga::new() }
}

/// A loan of `approvable()` started, then after `inputs`, each of which must have been applied.
pub(super) fn given(inputs: &[SagaInput]) -> Given {
    given_for(&approvable(), inputs)
}

/// A loan of `app` started, then after `inputs`, each of which must have been applied.
#[track_caller]
pub(super) fn given_for(app: &LoanApplication, inputs: &[SagaInput]) -> Given {
    given_from(app, LoanSaga::new(), inputs)
}

/// A loan of `app` from `submitted` (e.g. with a referral band), started, then after `inputs`,
/// each of which must have been applied.
#[track_caller]
pub(super) fn given_from(app: &LoanApplication, submitted: LoanSaga, inputs: &[SagaInput]) -> Given {
    let mut state = submitted.start().state;
    for input in inputs {
        let transition = state.handle(app, input);
        assert!(transition.applied, "given: {input:?} was not applied to {state:?}");
        state = transition.state;
    }
    Given { app: app.clone(), state }
}

pub(super) struct Given {
    app: LoanApplication,
    state: LoanSaga,
}

impl Given {
    pub(super) fn when(self, input: SagaInput) -> Then {
        let transition = self.state.handle(&self.app, &input);
        Then { app: self.app, before: self.state, input: format!("{input:?}"), transition }
    }

    /// The loan is started (what its submission does).
    pub(super) fn when_started(self) -> Then {
        let transition = self.state.start();
        Then { app: self.app, before: self.state, input: "the start".into(), transition }
    }
}

/// The transition under test, with the state it started from.
pub(super) struct Then {
    app: LoanApplication,
    before: LoanSaga,
    /// What was fed to the saga, for messages.
    input: String,
    transition: Transition,
}

impl Then {
    /// The events' types, in order.
    #[track_caller]
    pub(super) fn then_events(self, expected: &[&str]) -> Self {
        let actual: Vec<&str> = self.transition.events.iter().map(LoanEvent::type_name).collect();
        assert_eq!(actual, expected, "events after {}", self.input);
        self
    }

    /// The events, field by field.
    #[track_caller]
    pub(super) fn then_exact_events(self, expected: &[LoanEvent]) -> Self {
        assert_eq!(self.transition.events, expected, "events after {}", self.input);
        self
    }

    #[track_caller]
    pub(super) fn then_commands(self, expected: &[SagaCommand]) -> Self {
        assert_eq!(self.transition.commands, expected, "commands after {}", self.input);
        self
    }

    #[track_caller]
    pub(super) fn then_status(self, expected: LoanStatus) -> Self {
        assert_eq!(self.transition.state.status, expected, "status after {}", self.input);
        self
    }

    /// Applied, and nothing more will ever happen to the loan.
    #[track_caller]
    pub(super) fn then_finished(self) -> Self {
        assert!(self.transition.applied, "{} was not applied", self.input);
        assert!(self.transition.state.is_finished(), "not finished after {}: {:?}", self.input, self.transition.state);
        assert_eq!(self.transition.state.waiting_on(), None);
        self
    }

    /// Applied, and not finished yet: the loan waits for something.
    #[track_caller]
    pub(super) fn then_waiting_on(self, expected: &str) -> Self {
        assert!(self.transition.applied, "{} was not applied", self.input);
        assert_eq!(self.transition.state.waiting_on(), Some(expected), "after {}", self.input);
        self
    }

    /// Not applied: no events, no commands, the state exactly as before.
    #[track_caller]
    pub(super) fn then_ignored(self) -> Self {
        let t = &self.transition;
        assert!(!t.applied, "{} was applied to {:?}", self.input, self.before);
        assert!(t.events.is_empty(), "events from an ignored {}: {:?}", self.input, t.events);
        assert!(t.commands.is_empty(), "commands from an ignored {}: {:?}", self.input, t.commands);
        assert_eq!(t.state, self.before, "state changed by an ignored {}", self.input);
        self
    }

    /// Any other check on the events.
    pub(super) fn then_check_events(self, check: impl FnOnce(&[LoanEvent])) -> Self {
        check(&self.transition.events);
        self
    }

    /// Any other check on the resulting state.
    pub(super) fn then_state(self, check: impl FnOnce(&LoanSaga)) -> Self {
        check(&self.transition.state);
        self
    }

    /// The next input, from the state this one left (applied or not).
    pub(super) fn and_when(self, input: SagaInput) -> Then {
        Given { app: self.app, state: self.transition.state }.when(input)
    }
}
