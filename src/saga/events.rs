//! The history events of a loan, named in the past tense as CONTRACT.md lists them.
//! Serialised as `{"type": "...", "data": {...}}`; each type happens at most once per loan.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{CreditScore, Money, RejectionReason};

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
    },
    LoanRejected {
        reasons: Vec<RejectionReason>,
        rate_bps: u32,
        monthly_payment: Money,
        #[serde(with = "rust_decimal::serde::float")]
        loan_to_value: Decimal,
        #[serde(with = "rust_decimal::serde::float")]
        debt_to_income: Decimal,
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
