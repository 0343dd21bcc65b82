//! The repayment schedule of an approved loan, as `GET /api/v1/loans/{id}/schedule` returns it
//! in JSON (the same shape as the `ScheduleDocument` of earlier versions, which some loans still
//! have stored and which is served as stored).

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Money, ScheduleLine};

/// The repayment schedule of an approved loan.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ScheduleDocument)]
pub struct ScheduleView {
    pub loan_id: String,
    /// Always `EUR`.
    pub currency: &'static str,
    pub amount: Money,
    pub rate_bps: u32,
    pub term_months: u16,
    pub monthly_payment: Money,
    pub lines: Vec<ScheduleLineView>,
}

/// One month of the schedule: `payment = interest + principal`; `balance` is what remains owed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ScheduleLine)]
pub struct ScheduleLineView {
    /// 1-based.
    pub month: u16,
    #[schema(value_type = String, format = Date)]
    pub due_date: NaiveDate,
    pub payment: Money,
    pub interest: Money,
    pub principal: Money,
    pub balance: Money,
}

impl From<ScheduleLine> for ScheduleLineView {
    fn from(line: ScheduleLine) -> Self {
        let ScheduleLine { month, due_date, payment, interest, principal, balance } = line;
        Self { month, due_date, payment, interest, principal, balance }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::ScheduleDocument;
    use crate::domain::LoanId;

    /// Schedules stored as JSON by earlier versions are served as stored: both shapes must agree.
    #[test]
    fn the_view_has_the_shape_of_a_stored_schedule_document() {
        let line = |month: u16, balance: i64| ScheduleLine {
            month,
            due_date: NaiveDate::from_ymd_opt(2026, month.into(), 28).unwrap(),
            payment: Money::from_cents(50_050),
            interest: Money::from_cents(1_050),
            principal: Money::from_cents(49_000),
            balance: Money::from_cents(balance),
        };
        let loan_id = LoanId::generate();
        let document = ScheduleDocument {
            loan_id,
            currency: "EUR".into(),
            amount: Money::from_cents(98_000),
            rate_bps: 425,
            term_months: 2,
            monthly_payment: Money::from_cents(50_050),
            lines: vec![line(1, 49_000), line(2, 0)],
        };
        let view = ScheduleView {
            loan_id: loan_id.to_string(),
            currency: "EUR",
            amount: document.amount,
            rate_bps: document.rate_bps,
            term_months: document.term_months,
            monthly_payment: document.monthly_payment,
            lines: document.lines.iter().cloned().map(ScheduleLineView::from).collect(),
        };
        assert_eq!(serde_json::to_string(&view).unwrap(), serde_json::to_string(&document).unwrap());
    }
}
