//! Loans as the API shows them: one loan, a page of loans, a loan's history, the counts.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::rfc3339;
use crate::domain::{Email, Money, RejectionReason};
use crate::persistence::{EventRow, LoanRow};
use crate::saga::LoanSaga;

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicantView {
    pub name: String,
    /// Masked: the API never echoes an email address in clear.
    pub email: String,
    pub annual_income: Money,
    pub monthly_debts: Money,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PropertyView {
    pub address: String,
    pub declared_value: Money,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoanView {
    pub id: String,
    pub status: String,
    pub applicant: ApplicantView,
    pub property: PropertyView,
    pub amount: Money,
    pub term_months: i32,
    pub credit_score: Option<i32>,
    pub appraised_value: Option<Money>,
    pub rate_bps: Option<i32>,
    pub monthly_payment: Option<Money>,
    pub rejection_reasons: Option<Vec<RejectionReason>>,
    /// The step the loan waits on, while it is not finished.
    pub waiting_on: Option<&'static str>,
    pub submitted_at: String,
    pub updated_at: String,
    pub decided_at: Option<String>,
    pub notified_at: Option<String>,
    pub version: i64,
}

impl LoanView {
    pub fn from_row(row: LoanRow) -> Self {
        let saga: Option<LoanSaga> = serde_json::from_str(&row.saga).ok();
        let rejection_reasons =
            saga.as_ref().and_then(|s| s.decision.as_ref()).filter(|d| !d.approved).map(|d| d.reasons.clone());
        let email = Email::parse(&row.applicant_email).map(|e| e.masked()).unwrap_or_default();
        Self {
            status: row.status,
            applicant: ApplicantView {
                name: row.applicant_name,
                email,
                annual_income: Money::from_cents(row.annual_income_cents),
                monthly_debts: Money::from_cents(row.monthly_debts_cents),
            },
            property: PropertyView {
                address: row.property_address,
                declared_value: Money::from_cents(row.declared_value_cents),
            },
            amount: Money::from_cents(row.amount_cents),
            term_months: row.term_months,
            credit_score: row.credit_score,
            appraised_value: row.appraised_value_cents.map(Money::from_cents),
            rate_bps: row.rate_bps,
            monthly_payment: row.monthly_payment_cents.map(Money::from_cents),
            rejection_reasons,
            waiting_on: saga.as_ref().and_then(|s| s.waiting_on()),
            submitted_at: rfc3339(row.submitted_at),
            updated_at: rfc3339(row.updated_at),
            decided_at: row.decided_at.map(rfc3339),
            notified_at: row.notified_at.map(rfc3339),
            version: row.version,
            id: row.id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub at: String,
    pub data: serde_json::Value,
}

impl EventView {
    pub fn from_row(row: EventRow) -> Self {
        Self {
            id: row.id,
            kind: row.event_type,
            at: rfc3339(row.at),
            data: serde_json::from_str(&row.data).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoanPage {
    pub items: Vec<LoanView>,
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/loans/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoanStats {
    pub total: i64,
    /// Loans per status; every status is present.
    pub by_status: BTreeMap<String, i64>,
}
