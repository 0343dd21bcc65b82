//! CONTRACT.md's rules written again from the text alone, to check the service against.
//!
//! Deliberately independent of `loanflow::domain`: a bug copied into both would otherwise pass.
//! The payment is computed as the contract states it, `amount * r / (1 - (1 + r)^-n)`, with
//! `(1 + r)^-n` as `n` multiplications of `1 / (1 + r)` (the service raises `1 + r` to the
//! `n`-th power instead); at 28 significant digits the two agree far below the cent.

use rust_decimal::{Decimal, RoundingStrategy};
use sha2::{Digest, Sha256};

/// The marker that makes the simulated appraisal fail permanently.
pub const FAIL_APPRAISAL: &str = "#fail-appraisal";

pub const CREDIT_SCORE_TOO_LOW: &str = "credit_score_too_low";
pub const LOAN_TO_VALUE_TOO_HIGH: &str = "loan_to_value_too_high";
pub const DEBT_TO_INCOME_TOO_HIGH: &str = "debt_to_income_too_high";

/// One application as the test submits it.
#[derive(Debug, Clone)]
pub struct Application {
    pub name: String,
    pub email: String,
    pub annual_income: Decimal,
    pub monthly_debts: Decimal,
    pub address: String,
    pub declared_value: Decimal,
    pub amount: Decimal,
    pub term_months: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Approved,
    Rejected,
    Cancelled,
}

impl Outcome {
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Rejected => "rejected",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// What the contract says the finished loan looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub outcome: Outcome,
    pub credit_score: u32,
    /// `None` when cancelled.
    pub appraised_value: Option<Decimal>,
    pub rate_bps: Option<u32>,
    pub monthly_payment: Option<Decimal>,
    /// Sorted; empty unless rejected.
    pub reasons: Vec<&'static str>,
}

/// Cents, half away from zero.
pub fn round_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn sha256_prefix(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

pub fn credit_score(email: &str) -> u32 {
    300 + (sha256_prefix(&email.to_lowercase()) % 551) as u32
}

/// The appraisal as a percentage of the declared value, 90..=105.
pub fn appraisal_percent(address: &str) -> u32 {
    90 + (sha256_prefix(address) % 16) as u32
}

pub fn appraised_value(address: &str, declared: Decimal) -> Decimal {
    round_cents(declared * Decimal::from(appraisal_percent(address)) / Decimal::ONE_HUNDRED)
}

pub fn rate_bps(score: u32) -> u32 {
    300 + (850 - score)
}

pub fn monthly_payment(amount: Decimal, rate_bps: u32, term_months: u32) -> Decimal {
    let r = Decimal::from(rate_bps) / Decimal::from(10_000) / Decimal::from(12);
    let discount_per_month = Decimal::ONE / (Decimal::ONE + r);
    let mut discount = Decimal::ONE;
    for _ in 0..term_months {
        discount *= discount_per_month;
    }
    round_cents(amount * r / (Decimal::ONE - discount))
}

/// `amount / appraised > 0.90`, compared exactly by cross-multiplying.
pub fn loan_to_value_too_high(amount: Decimal, appraised: Decimal) -> bool {
    amount * Decimal::from(100) > appraised * Decimal::from(90)
}

/// `(debts + payment) / (income / 12) > 0.43`, compared exactly by cross-multiplying.
pub fn debt_to_income_too_high(monthly_debts: Decimal, payment: Decimal, annual_income: Decimal) -> bool {
    (monthly_debts + payment) * Decimal::from(12 * 100) > annual_income * Decimal::from(43)
}

pub fn expected(app: &Application) -> Expected {
    let credit_score = credit_score(&app.email);
    if app.address.contains(FAIL_APPRAISAL) {
        return Expected {
            outcome: Outcome::Cancelled,
            credit_score,
            appraised_value: None,
            rate_bps: None,
            monthly_payment: None,
            reasons: vec![],
        };
    }
    let appraised = appraised_value(&app.address, app.declared_value);
    let rate = rate_bps(credit_score);
    let payment = monthly_payment(app.amount, rate, app.term_months);
    let mut reasons = Vec::new();
    if credit_score < 620 {
        reasons.push(CREDIT_SCORE_TOO_LOW);
    }
    if loan_to_value_too_high(app.amount, appraised) {
        reasons.push(LOAN_TO_VALUE_TOO_HIGH);
    }
    if debt_to_income_too_high(app.monthly_debts, payment, app.annual_income) {
        reasons.push(DEBT_TO_INCOME_TOO_HIGH);
    }
    reasons.sort_unstable();
    Expected {
        outcome: if reasons.is_empty() { Outcome::Approved } else { Outcome::Rejected },
        credit_score,
        appraised_value: Some(appraised),
        rate_bps: Some(rate),
        monthly_payment: Some(payment),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_cents(eur("1.005")), eur("1.01"));
        assert_eq!(round_cents(eur("1.0049")), eur("1.00"));
        assert_eq!(round_cents(eur("2.675")), eur("2.68"));
    }

    #[test]
    fn payment_of_a_textbook_annuity() {
        // 100,000 over 360 months at 6.00% a year: 599.55 (standard amortisation tables).
        assert_eq!(monthly_payment(eur("100000"), 600, 360), eur("599.55"));
        // 200,000 over 300 months at 3.00%: 948.42.
        assert_eq!(monthly_payment(eur("200000"), 300, 300), eur("948.42"));
    }

    #[test]
    fn limits_are_inclusive() {
        assert!(!loan_to_value_too_high(eur("90"), eur("100")));
        assert!(loan_to_value_too_high(eur("90.01"), eur("100")));
        assert!(!debt_to_income_too_high(eur("0"), eur("430"), eur("12000")));
        assert!(debt_to_income_too_high(eur("0.01"), eur("430"), eur("12000")));
    }
}
