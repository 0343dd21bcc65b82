//! The history events of a loan, named in the past tense as CONTRACT.md lists them.
//! Serialised as `{"type": "...", "data": {...}}`. Each type happens at most once per loan, but
//! the once-per-request ones (`InformationRequested`, `InformationRequestSent`,
//! `InformationReminderSent`, `InformationProvided`) and `InformationDeadlineExtended` and
//! `ReviewClaimed`, which a loan under review may see again.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::human::{Answers, ReferralReason, ReviewNote};
use crate::domain::{CreditScore, Money, RejectionReason, RequestId, ReviewBand, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum LoanEvent {
    LoanSubmitted {
        amount: Money,
        term_months: u16,
        declared_value: Money,
    },
    CreditChecked {
        credit_score: CreditScore,
    },
    CreditCheckFailed {
        reason: String,
        attempts: u32,
    },
    PropertyAppraised {
        appraised_value: Money,
    },
    AppraisalFailed {
        reason: String,
        attempts: u32,
    },
    /// Compensation of a completed credit check.
    CreditCheckReleased {},
    /// Compensation of a completed appraisal.
    AppraisalVoided {},
    LoanApproved {
        rate_bps: u32,
        monthly_payment: Money,
        #[serde(with = "rust_decimal::serde::float")]
        loan_to_value: Decimal,
        #[serde(with = "rust_decimal::serde::float")]
        debt_to_income: Decimal,
        /// Set when an underwriter approved a referred loan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        review: Option<ReviewNote>,
    },
    LoanRejected {
        reasons: Vec<RejectionReason>,
        rate_bps: u32,
        monthly_payment: Money,
        #[serde(with = "rust_decimal::serde::float")]
        loan_to_value: Decimal,
        #[serde(with = "rust_decimal::serde::float")]
        debt_to_income: Decimal,
        /// Set when an underwriter declined a referred loan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        review: Option<ReviewNote>,
    },
    /// Every rule passed but the loan goes to an underwriter.
    LoanReferred {
        reason: ReferralReason,
        credit_score: CreditScore,
        review_below_score: ReviewBand,
        rate_bps: u32,
        monthly_payment: Money,
        #[serde(with = "rust_decimal::serde::float")]
        loan_to_value: Decimal,
        #[serde(with = "rust_decimal::serde::float")]
        debt_to_income: Decimal,
    },
    /// An underwriter took the loan (others cannot act on it until it leaves review).
    ReviewClaimed {
        by: String,
    },
    /// The loan stayed under review longer than the setting allows.
    ReviewEscalated {},
    InformationRequested {
        request_id: RequestId,
        message: String,
        fields: Vec<String>,
        due_at: Timestamp,
        by: String,
    },
    /// The notifier delivered the request's notice to the applicant.
    InformationRequestSent {
        request_id: RequestId,
        channel: String,
    },
    InformationReminderSent {
        request_id: RequestId,
        channel: String,
    },
    InformationDeadlineExtended {
        request_id: RequestId,
        due_at: Timestamp,
        by: String,
    },
    InformationProvided {
        request_id: RequestId,
        answers: Answers,
    },
    InformationRequestExpired {
        request_id: RequestId,
    },
    /// A withdrawal or an operator's cancellation was committed: the loan compensates what
    /// completed (after any step in flight settles), then ends with `LoanCancelled`.
    CancellationRequested {
        reason: String,
    },
    LoanCancelled {
        reason: String,
    },
    ScheduleGenerated {
        lines: u16,
    },
    ApplicantNotified {
        channel: String,
        status: String,
    },
}

impl LoanEvent {
    /// The event's `type` as the API and the database name it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::LoanSubmitted { .. } => "LoanSubmitted",
            Self::CreditChecked { .. } => "CreditChecked",
            Self::CreditCheckFailed { .. } => "CreditCheckFailed",
            Self::PropertyAppraised { .. } => "PropertyAppraised",
            Self::AppraisalFailed { .. } => "AppraisalFailed",
            Self::CreditCheckReleased {} => "CreditCheckReleased",
            Self::AppraisalVoided {} => "AppraisalVoided",
            Self::LoanApproved { .. } => "LoanApproved",
            Self::LoanRejected { .. } => "LoanRejected",
            Self::LoanCancelled { .. } => "LoanCancelled",
            Self::ScheduleGenerated { .. } => "ScheduleGenerated",
            Self::ApplicantNotified { .. } => "ApplicantNotified",
            Self::LoanReferred { .. } => "LoanReferred",
            Self::ReviewClaimed { .. } => "ReviewClaimed",
            Self::ReviewEscalated {} => "ReviewEscalated",
            Self::InformationRequested { .. } => "InformationRequested",
            Self::InformationRequestSent { .. } => "InformationRequestSent",
            Self::InformationReminderSent { .. } => "InformationReminderSent",
            Self::InformationDeadlineExtended { .. } => "InformationDeadlineExtended",
            Self::InformationProvided { .. } => "InformationProvided",
            Self::InformationRequestExpired { .. } => "InformationRequestExpired",
            Self::CancellationRequested { .. } => "CancellationRequested",
        }
    }

    /// The `data` object alone (the type travels in its own column).
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => map.remove("data").unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }

    /// Rebuild an event from its stored type and data.
    pub fn from_parts(type_name: &str, data: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": type_name, "data": data }))
    }

    /// Compensation events are shown as such on timelines.
    pub fn is_compensation(&self) -> bool {
        matches!(self, Self::CreditCheckReleased {} | Self::AppraisalVoided {})
    }
}
