//! Loans as the API shows them: one loan, a page of loans, a loan's history, the counts.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{rfc3339, Money, RejectionReason};
use crate::persistence::{erasure, CorruptRow, EventRow, LoanRecord, LoanRow};
use crate::saga::{InformationRequest, ReferralReason, Review};

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
    /// The step the loan waits on, while it is not finished (`underwriter`, `applicant`, or an
    /// automatic step such as `credit_check`).
    pub waiting_on: Option<&'static str>,
    /// Since when the loan waits on that step (RFC 3339; null while it waits on nothing): the
    /// work queue lists the longest waiting first.
    pub waiting_since: Option<String>,
    /// The request for information the applicant is to answer, while one is open.
    pub information_request: Option<InformationRequestView>,
    /// Staff only: why the loan went to an underwriter and who holds it (null for applicants
    /// and for loans never referred).
    pub review: Option<ReviewView>,
    pub submitted_at: String,
    pub updated_at: String,
    pub decided_at: Option<String>,
    pub notified_at: Option<String>,
    pub version: i64,
    /// `held`, or `erased` once an operator erased the applicant's name, email and address
    /// (shown as `[erased]`).
    #[schema(example = "held")]
    pub personal_data: &'static str,
}

impl LoanView {
    /// A stored loan, read as strictly as the actors read it: an unreadable row is an error, not
    /// a view with blanks.
    pub fn from_row(row: LoanRow) -> Result<Self, CorruptRow> {
        LoanRecord::from_row(row).map(|record| Self::from_record(&record))
    }

    pub fn from_record(record: &LoanRecord) -> Self {
        let (app, saga) = (&record.application, &record.saga);
        let rejection_reasons = saga.decision.as_ref().filter(|d| !d.approved).map(|d| d.reasons.clone());
        let erased = erasure::is_erased(app.applicant.email.as_ref());
        let email = if erased { erasure::ERASED.to_owned() } else { app.applicant.email.masked() };
        Self {
            id: record.id.to_string(),
            status: saga.status.as_str().to_owned(),
            applicant: ApplicantView {
                name: app.applicant.name.as_ref().to_owned(),
                email,
                annual_income: app.applicant.annual_income,
                monthly_debts: app.applicant.monthly_debts,
            },
            property: PropertyView {
                address: app.property.address.as_ref().to_owned(),
                declared_value: app.property.declared_value,
            },
            amount: app.amount,
            term_months: i32::from(app.term_months.get()),
            credit_score: saga.credit_score().map(|s| i32::from(s.get())),
            appraised_value: saga.appraised_value(),
            rate_bps: saga.rate_bps().map(|r| r as i32),
            monthly_payment: saga.monthly_payment(),
            rejection_reasons,
            waiting_on: saga.waiting_on(),
            waiting_since: record.waiting_since.filter(|_| saga.waiting_on().is_some()).map(rfc3339),
            information_request: saga.open_request().map(InformationRequestView::from),
            review: saga.review.as_ref().map(ReviewView::from),
            submitted_at: rfc3339(record.submitted_at),
            updated_at: rfc3339(record.updated_at),
            decided_at: record.decided_at.map(rfc3339),
            notified_at: record.notified_at.map(rfc3339),
            version: record.version,
            personal_data: if erased { "erased" } else { "held" },
        }
    }
}

impl LoanView {
    /// What the loan's applicant sees: no staff notes.
    pub fn for_applicant(self) -> Self {
        Self { review: None, ..self }
    }
}

/// An open request for information.
#[derive(Debug, Serialize, ToSchema)]
pub struct InformationRequestView {
    pub request_id: String,
    pub message: String,
    /// The names of the answers asked for (the body of `POST .../information` has exactly these).
    pub fields: Vec<String>,
    pub requested_at: String,
    pub due_at: String,
}

impl From<&InformationRequest> for InformationRequestView {
    fn from(r: &InformationRequest) -> Self {
        Self {
            request_id: r.id.to_string(),
            message: r.message.clone(),
            fields: r.fields.clone(),
            requested_at: rfc3339(r.requested_at),
            due_at: rfc3339(r.due_at),
        }
    }
}

/// Why a loan was referred, and who works on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    /// `score_below_review_band`.
    #[schema(value_type = String, example = "score_below_review_band")]
    pub reason: ReferralReason,
    pub credit_score: i32,
    pub review_below_score: i32,
    pub rate_bps: i32,
    pub monthly_payment: Money,
    #[schema(value_type = f64)]
    #[serde(with = "rust_decimal::serde::float")]
    pub loan_to_value: rust_decimal::Decimal,
    #[schema(value_type = f64)]
    #[serde(with = "rust_decimal::serde::float")]
    pub debt_to_income: rust_decimal::Decimal,
    /// The underwriter who claimed the loan (`POST .../claim`).
    pub claimed_by: Option<String>,
    /// Under review longer than the escalation setting allows.
    pub escalated: bool,
}

impl From<&Review> for ReviewView {
    fn from(r: &Review) -> Self {
        let referral = &r.referral;
        Self {
            reason: referral.reason,
            credit_score: i32::from(referral.credit_score.get()),
            review_below_score: i32::from(referral.review_below_score.get()),
            rate_bps: referral.rate_bps as i32,
            monthly_payment: referral.monthly_payment,
            loan_to_value: referral.loan_to_value,
            debt_to_income: referral.debt_to_income,
            claimed_by: r.claimed_by.clone(),
            escalated: r.escalated,
        }
    }
}

/// The answer to a submission (and to its replays): the loan, and the applicant's credential
/// for it, to send as `Authorization: Bearer` (or `?access_token=` on its streams).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmittedLoanView {
    #[serde(flatten)]
    pub loan: LoanView,
    /// The applicant's token for this loan only.
    pub access_token: String,
    /// The applicant's page for this loan, the token in the fragment (which browsers never send).
    pub page: String,
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
