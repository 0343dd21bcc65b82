//! The deterministic business rules of CONTRACT.md: the simulated bureaus (credit score and
//! appraisal, derived from SHA-256 so every deployment agrees), pricing, and the decision.
//!
//! Everything is exact decimal arithmetic; thresholds are compared by cross-multiplying, so a
//! ratio that is exactly at its limit is never pushed over it by a rounded division.

use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::application::{Address, Email, LoanApplication, TermMonths};
use super::money::Money;

/// A credit score in 300..=850.
///
/// Serialised as a bare integer; deserialising re-checks the range so a stored value out of
/// range is an error rather than a silently invalid score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct CreditScore(u16);

impl CreditScore {
    pub const MIN: u16 = 300;
    pub const MAX: u16 = 850;

    pub fn new(score: u16) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&score).then_some(Self(score))
    }

    pub fn get(&self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for CreditScore {
    type Error = String;

    fn try_from(score: u16) -> Result<Self, Self::Error> {
        Self::new(score).ok_or_else(|| format!("credit score {score} is outside 300..=850"))
    }
}

impl From<CreditScore> for u16 {
    fn from(score: CreditScore) -> u16 {
        score.0
    }
}

/// First 8 bytes of SHA-256 as a big-endian integer: the contract's source of determinism.
fn sha256_prefix(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(prefix)
}

/// The simulated bureau's score: `300 + h % 551` over the lowercased address, so the same person
/// gets the same score however they capitalise their e-mail.
pub fn credit_score(email: &Email) -> CreditScore {
    let h = sha256_prefix(email.normalized().as_bytes());
    // h % 551 < 551, so the sum is at most 850 and the cast cannot truncate.
    CreditScore(CreditScore::MIN + (h % 551) as u16)
}

/// The simulated appraisal: 90%..=105% of the declared value, keyed on the address as stored
/// (trimmed, case kept).
pub fn appraised_value(address: &Address, declared: Money) -> Money {
    let h = sha256_prefix(address.as_ref().as_bytes());
    let percent = Decimal::from(90 + h % 16);
    Money::from_decimal_rounded(declared.as_decimal() * percent / Decimal::ONE_HUNDRED)
}

/// Annual rate in basis points: 3.00% for a perfect score, one basis point more per point below.
pub fn rate_bps(score: CreditScore) -> u32 {
    300 + u32::from(CreditScore::MAX - score.get())
}

/// Monthly rate `r = rate_bps / 10000 / 12`, at `Decimal`'s full 28-digit precision.
pub fn monthly_rate(rate_bps: u32) -> Decimal {
    Decimal::from(rate_bps) / Decimal::from(120_000)
}

/// The annuity payment `amount * r / (1 - (1 + r)^-n)`, rounded to cents.
///
/// Computed as `amount * r * f / (f - 1)` with `f = (1 + r)^n`: one power and no reciprocal,
/// and `powu` works in 192-bit intermediates, so the result before rounding is accurate to
/// ~20 significant digits, far beyond the cent. A zero rate degenerates to `amount / n`; a rate
/// so large that `f` overflows uses the limit `amount * r` (then `f / (f - 1)` is 1 to within
/// 10^-28).
pub fn monthly_payment(amount: Money, rate_bps: u32, term: TermMonths) -> Money {
    let amount = amount.as_decimal();
    let months = u64::from(term.get());
    if rate_bps == 0 {
        return Money::from_decimal_rounded(amount / Decimal::from(months));
    }
    let r = monthly_rate(rate_bps);
    let annuity = (Decimal::ONE + r)
        .checked_powu(months)
        .and_then(|f| amount.checked_mul(r)?.checked_mul(f)?.checked_div(f - Decimal::ONE));
    let payment = annuity.or_else(|| amount.checked_mul(r));
    Money::from_decimal_rounded(payment.unwrap_or(Decimal::MAX))
}

/// Why an application was rejected, in the order the rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    CreditScoreTooLow,
    LoanToValueTooHigh,
    DebtToIncomeTooHigh,
    /// An underwriter reviewed a referred loan and declined it.
    UnderwriterDeclined,
}

impl RejectionReason {
    /// The serialised name, handy as a low-cardinality metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CreditScoreTooLow => "credit_score_too_low",
            Self::LoanToValueTooHigh => "loan_to_value_too_high",
            Self::DebtToIncomeTooHigh => "debt_to_income_too_high",
            Self::UnderwriterDeclined => "underwriter_declined",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approved,
    /// Every reason that applies, never empty.
    Rejected(Vec<RejectionReason>),
}

impl Verdict {
    #[cfg(test)]
    pub fn is_approved(&self) -> bool {
        matches!(self, Verdict::Approved)
    }
}

/// The outcome with the figures that explain it (reported for rejections too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub rate_bps: u32,
    pub monthly_payment: Money,
    /// `amount / appraised`, rounded to 4 decimals; informational only.
    pub loan_to_value: Decimal,
    /// `(monthly_debts + monthly_payment) / (annual_income / 12)`, rounded to 4 decimals;
    /// informational only.
    pub debt_to_income: Decimal,
}

/// Scores below this are rejected.
pub const MIN_CREDIT_SCORE: u16 = 620;
/// Loans above this percentage of the appraised value are rejected.
pub const MAX_LOAN_TO_VALUE_PERCENT: u32 = 90;
/// Monthly obligations above this percentage of monthly income are rejected.
pub const MAX_DEBT_TO_INCOME_PERCENT: u32 = 43;

/// The referral band (`decision.review_below_score`): a loan that passes every rule with a score
/// below it goes to an underwriter instead of being approved. 0 refers nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReviewBand(u16);

impl ReviewBand {
    /// What a deployment refers unless told otherwise (CONTRACT.md).
    pub const DEFAULT: ReviewBand = ReviewBand(660);
    pub const NEVER: ReviewBand = ReviewBand(0);

    pub const fn below(score: u16) -> Self {
        Self(score)
    }

    pub fn get(self) -> u16 {
        self.0
    }

    pub fn is_never(&self) -> bool {
        self.0 == 0
    }

    /// Whether a loan the rules approve with `score` goes to an underwriter.
    pub fn refers(self, score: CreditScore) -> bool {
        score.get() < self.0
    }
}

/// Applies the contract's decision rules and lists every reason that applies.
///
/// Expects the amounts of a validated application and an appraisal from [`appraised_value`];
/// at those magnitudes (< 10^13) the cross-multiplications cannot overflow.
pub fn decide(app: &LoanApplication, score: CreditScore, appraised: Money) -> Decision {
    let rate_bps = rate_bps(score);
    let monthly_payment = monthly_payment(app.amount, rate_bps, app.term_months);
    let amount = app.amount.as_decimal();
    let appraised = appraised.as_decimal();
    let obligations = app.applicant.monthly_debts.as_decimal() + monthly_payment.as_decimal();
    let income = app.applicant.annual_income.as_decimal();

    let percent = |p: u32| Decimal::from(p);
    let mut reasons = Vec::new();
    if score.get() < MIN_CREDIT_SCORE {
        reasons.push(RejectionReason::CreditScoreTooLow);
    }
    // amount / appraised > 0.90
    if amount * Decimal::ONE_HUNDRED > appraised * percent(MAX_LOAN_TO_VALUE_PERCENT) {
        reasons.push(RejectionReason::LoanToValueTooHigh);
    }
    // obligations / (income / 12) > 0.43
    let yearly_obligations = obligations * Decimal::from(12);
    if yearly_obligations * Decimal::ONE_HUNDRED > income * percent(MAX_DEBT_TO_INCOME_PERCENT) {
        reasons.push(RejectionReason::DebtToIncomeTooHigh);
    }

    Decision {
        verdict: if reasons.is_empty() { Verdict::Approved } else { Verdict::Rejected(reasons) },
        rate_bps,
        monthly_payment,
        loan_to_value: informational_ratio(amount, appraised),
        debt_to_income: informational_ratio(yearly_obligations, income),
    }
}

/// `numerator / denominator` to 4 decimals; `Decimal::MAX` stands for "unbounded" when the
/// denominator is zero, which a validated application and a real appraisal never produce.
fn informational_ratio(numerator: Decimal, denominator: Decimal) -> Decimal {
    numerator
        .checked_div(denominator)
        .map(|ratio| ratio.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero))
        .unwrap_or(Decimal::MAX)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
