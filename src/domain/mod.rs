//! The pure domain of loanflow: identifiers, money, the validated application, the business rules
//! of CONTRACT.md and the repayment schedule.
//!
//! No I/O lives here (no files, network or clock): callers pass dates in, so every function is
//! deterministic and testable in isolation.

pub mod application;
pub mod ids;
pub mod money;
pub mod rules;
pub mod schedule;
pub mod time;

pub use application::{
    Address, Applicant, ApplicantName, Email, FieldError, LoanApplication, Property, TermMonths, ValidationErrors,
};
pub use ids::{InvalidId, LoanId, MessageId};
pub use money::{round_cents, Money, MoneyError};
pub use rules::{
    appraised_value, credit_score, decide, monthly_payment, monthly_rate, rate_bps, CreditScore, Decision,
    RejectionReason, Verdict, MAX_DEBT_TO_INCOME_PERCENT, MAX_LOAN_TO_VALUE_PERCENT, MIN_CREDIT_SCORE,
};
pub use schedule::{amortization_schedule, parse_schedule_csv, schedule_csv, ScheduleCsvError, ScheduleLine};
pub use time::rfc3339;
