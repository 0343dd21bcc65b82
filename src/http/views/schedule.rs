//! The repayment schedule of an approved loan, as `GET /api/v1/loans/{id}/schedule` returns it
//! in JSON (stored as CSV; the figures of its head come from the loan).

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

    #[test]
    fn a_schedule_reads_as_its_head_then_its_lines() {
        let line = |month: u16, balance: i64| ScheduleLine {
            month,
            due_date: NaiveDate::from_ymd_opt(2026, month.into(), 28).unwrap(),
            payment: Money::from_cents(50_050),
            interest: Money::from_cents(1_050),
            principal: Money::from_cents(49_000),
            balance: Money::from_cents(balance),
        };
        let view = ScheduleView {
            loan_id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
            currency: "EUR",
            amount: Money::from_cents(98_000),
            rate_bps: 425,
            term_months: 2,
            monthly_payment: Money::from_cents(50_050),
            lines: [line(1, 49_000), line(2, 0)].into_iter().map(ScheduleLineView::from).collect(),
        };
        let expected = concat!(
            r#"{"loan_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","currency":"EUR","amount":980,"rate_bps":425,"#,
            r#""term_months":2,"monthly_payment":500.5,"lines":["#,
            r#"{"month":1,"due_date":"2026-01-28","payment":500.5,"interest":10.5,"principal":490,"balance":490},"#,
            r#"{"month":2,"due_date":"2026-02-28","payment":500.5,"interest":10.5,"principal":490,"balance":0}]}"#,
        );
        assert_eq!(serde_json::to_string(&view).unwrap(), expected);
    }
}
