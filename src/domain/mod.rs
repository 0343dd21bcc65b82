//! The pure domain of loanflow: identifiers, money, the validated application, the business rules
//! of CONTRACT.md and the repayment schedule.
//!
//! No I/O lives here (no files, network or clock): callers pass dates in, so every function is
//! deterministic and testable in isolation.

pub mod access;
pub mod application;
pub mod hex;
pub mod ids;
pub mod money;
pub mod rules;
pub mod schedule;
pub mod time;
pub mod trace;

pub use access::{random_token, ApplicantGrant, Role, TokenKey};
pub use application::{
    Address, Applicant, ApplicantName, Email, FieldError, LoanApplication, Property, TermMonths, ValidationErrors,
};
pub use ids::{LoanId, MessageId, RequestId};
pub use money::Money;
pub use rules::{
    appraised_value, credit_score, decide, monthly_payment, rate_bps, CreditScore, RejectionReason, ReviewBand,
    Verdict, MIN_CREDIT_SCORE,
};
pub use schedule::{amortization_schedule, parse_schedule_csv, schedule_csv, ScheduleLine};
pub use time::{rfc3339, to_micros, Timestamp};
pub use trace::TraceParent;
