//! What a finished loan reports, read from `GET /api/v1/loans/{id}`, compared field by field with
//! what the contract says (see `generate::expect`).

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

use super::generate::Expected;
use crate::domain::Money;

/// The fields of a loan the load generator looks at; the rest of the body is skipped.
#[derive(Debug, Deserialize)]
pub struct LoanBody {
    pub id: String,
    pub status: String,
    pub credit_score: Option<i64>,
    pub appraised_value: Option<serde_json::Number>,
    pub rate_bps: Option<i64>,
    pub monthly_payment: Option<serde_json::Number>,
    pub rejection_reasons: Option<Vec<String>>,
    pub submitted_at: String,
    pub notified_at: Option<String>,
}

impl LoanBody {
    /// Terminal and notified, by the contract's definition.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "approved" | "rejected" | "cancelled") && self.notified_at.is_some()
    }

    /// Done as far as the load generator goes: finished, or waiting on a person as expected (an
    /// underwriter nobody plays, or an applicant who is left to wait).
    pub fn is_settled(&self, expected: &Expected) -> bool {
        if !expected.is_terminal() {
            return self.status == expected.status;
        }
        self.is_finished()
    }

    /// The server's times of submission and notification.
    pub fn times(&self) -> Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)> {
        let submitted = DateTime::parse_from_rfc3339(&self.submitted_at).ok()?;
        let notified = DateTime::parse_from_rfc3339(self.notified_at.as_deref()?).ok()?;
        Some((submitted, notified))
    }
}

fn money(number: &Option<serde_json::Number>) -> Result<Option<Money>, ()> {
    number.as_ref().map(|n| Money::parse_json(n).map_err(|_| ())).transpose()
}

/// The names of the fields that disagree with the contract (empty = the loan conforms).
pub fn disagreements(loan: &LoanBody, expected: &Expected) -> Vec<&'static str> {
    let mut wrong = Vec::new();
    if loan.status != expected.status {
        wrong.push("status");
    }
    // A cancelled loan's credit score "may be set"; when it is, it must be the right one.
    let score_may_be_null = expected.status == "cancelled";
    match loan.credit_score {
        None if score_may_be_null => {}
        score if score != Some(i64::from(expected.credit_score)) => wrong.push("credit_score"),
        _ => {}
    }
    if money(&loan.appraised_value) != Ok(expected.appraised_value) {
        wrong.push("appraised_value");
    }
    if loan.rate_bps != expected.rate_bps.map(i64::from) {
        wrong.push("rate_bps");
    }
    if money(&loan.monthly_payment) != Ok(expected.monthly_payment) {
        wrong.push("monthly_payment");
    }
    let mut reasons: Vec<&str> = loan.rejection_reasons.iter().flatten().map(String::as_str).collect();
    reasons.sort_unstable();
    if reasons != expected.reasons {
        wrong.push("rejection_reasons");
    }
    if loan.notified_at.is_none() && expected.is_terminal() {
        wrong.push("notified_at");
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approved() -> Expected {
        Expected {
            status: "approved",
            credit_score: 700,
            appraised_value: Some(Money::from_cents(40_000_000)),
            rate_bps: Some(450),
            monthly_payment: Some(Money::from_cents(123_456)),
            reasons: Vec::new(),
            referral: None,
        }
    }

    fn body(json: serde_json::Value) -> LoanBody {
        serde_json::from_value(json).expect("a loan body")
    }

    #[test]
    fn a_conforming_loan_has_no_disagreement() {
        let loan = body(serde_json::json!({
            "id": "x", "status": "approved", "credit_score": 700, "appraised_value": 400000,
            "rate_bps": 450, "monthly_payment": 1234.56, "rejection_reasons": null,
            "submitted_at": "2026-01-01T00:00:00Z", "notified_at": "2026-01-01T00:00:01Z",
        }));
        assert!(disagreements(&loan, &approved()).is_empty());
        assert!(loan.is_finished());
    }

    #[test]
    fn each_wrong_field_is_named() {
        let loan = body(serde_json::json!({
            "id": "x", "status": "rejected", "credit_score": 701, "appraised_value": 400000.01,
            "rate_bps": 449, "monthly_payment": 1234.57, "rejection_reasons": ["credit_score_too_low"],
            "submitted_at": "2026-01-01T00:00:00Z", "notified_at": null,
        }));
        assert_eq!(
            disagreements(&loan, &approved()),
            [
                "status",
                "credit_score",
                "appraised_value",
                "rate_bps",
                "monthly_payment",
                "rejection_reasons",
                "notified_at"
            ]
        );
    }
}
