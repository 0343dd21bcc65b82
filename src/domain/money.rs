//! EUR amounts as exact decimals with at most two decimals.
//!
//! `f64` never holds money here: binary floating point cannot represent most cent values, and the
//! decision rules compare amounts exactly. JSON carries money as a number, so parsing goes through
//! the number's shortest round-trip text, which is exactly what the client wrote whenever the
//! value has at most two decimals and fits in an `f64` without loss.

use std::fmt;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Rounds to cents, half away from zero (the contract's `round_cents`).
pub fn round_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Why a JSON number is not an acceptable amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must have at most 2 decimal places")]
    TooManyDecimals,
    #[error("must be at most {} in absolute value", Money::MAX_ABS_UNITS)]
    TooLarge,
    #[error("is not a valid number")]
    Malformed,
}

/// An amount of EUR with at most two decimals.
///
/// The field is private so the "at most two decimals" invariant holds for every value; the scale
/// is always exactly 2, so `Display` and storage see `1234.50`, never `1234.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    /// `0.00`, at scale 2 like every other value.
    pub const ZERO: Money = Money(Decimal::from_parts(0, 0, 0, false, 2));

    /// The largest absolute value accepted from clients (one trillion EUR); far above any real
    /// loan, and low enough that every accepted amount converts to `f64` and back exactly.
    pub const MAX_ABS_UNITS: i64 = 1_000_000_000_000;

    pub fn from_cents(cents: i64) -> Money {
        Money(Decimal::new(cents, 2))
    }

    /// The amount in cents. Saturates at the `i64` bounds, which only values far beyond
    /// [`Money::MAX_ABS_UNITS`] can reach.
    pub fn cents(&self) -> i64 {
        // Every value is kept at scale 2 (see the type's docs): the mantissa is the cents.
        if self.0.scale() == 2 {
            if let Ok(cents) = i64::try_from(self.0.mantissa()) {
                return cents;
            }
        }
        let saturated = if self.0.is_sign_negative() { i64::MIN } else { i64::MAX };
        self.0.checked_mul(Decimal::ONE_HUNDRED).and_then(|cents| cents.to_i64()).unwrap_or(saturated)
    }

    /// Rounds an arbitrary decimal to cents, half away from zero.
    pub fn from_decimal_rounded(d: Decimal) -> Money {
        let mut rounded = round_cents(d);
        rounded.rescale(2);
        Money(rounded)
    }

    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// Converts a JSON number exactly; see the module docs for why the text form is used.
    ///
    /// Negative values are accepted: whether an amount may be negative is the caller's rule.
    pub fn parse_json(number: &serde_json::Number) -> Result<Money, MoneyError> {
        parse_decimal_text(&number.to_string())
    }

    /// For serialisation only: exact for every amount up to 2^53 cents, because both the cents
    /// and 100 are exact `f64`s and IEEE division rounds correctly, giving the `f64` nearest to
    /// the decimal, which prints back as that decimal.
    fn to_f64(self) -> f64 {
        let cents = self.cents();
        if cents.unsigned_abs() < (1 << 53) {
            cents as f64 / 100.0
        } else {
            self.0.to_f64().unwrap_or(f64::NAN)
        }
    }
}

impl std::str::FromStr for Money {
    type Err = MoneyError;

    /// Plain decimal text as [`Display`](fmt::Display) writes it (`1234.50`, `-0.07`), or any
    /// number text [`Money::parse_json`] takes.
    fn from_str(text: &str) -> Result<Money, MoneyError> {
        parse_decimal_text(text)
    }
}

/// Parses plain (`-12.50`) and exponent (`1e5`, `1.5E-1`, `1e+16`) number text without ever
/// rounding: digits are counted before a `Decimal` is built, so a tiny value such as `1e-30`
/// is reported as having too many decimals instead of silently becoming zero.
fn parse_decimal_text(text: &str) -> Result<Money, MoneyError> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        // i32 keeps the scale arithmetic below far from i64 overflow.
        Some((m, e)) => (m, i64::from(e.parse::<i32>().map_err(|_| MoneyError::Malformed)?)),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(MoneyError::Malformed);
    }

    // value = digits * 10^-scale, with insignificant zeros stripped on both ends.
    let digits = format!("{int_part}{frac_part}");
    let mut scale = frac_part.len() as i64 - exponent;
    let trimmed_end = digits.trim_end_matches('0');
    scale -= (digits.len() - trimmed_end.len()) as i64;
    let significant = trimmed_end.trim_start_matches('0');
    if significant.is_empty() {
        // Also turns `-0.0` into a plain zero.
        return Ok(Money::ZERO);
    }
    if scale > 2 {
        return Err(MoneyError::TooManyDecimals);
    }
    // Digits before the decimal point; 1_000_000_000_000 has 13.
    if significant.len() as i64 - scale > 13 {
        return Err(MoneyError::TooLarge);
    }

    // At most 13 integer digits and 2 decimals: fits an i128 comfortably.
    let shift = u32::try_from(2 - scale).map_err(|_| MoneyError::Malformed)?;
    let cents: i128 = significant.parse::<i128>().map_err(|_| MoneyError::Malformed)? * 10_i128.pow(shift);
    if cents > i128::from(Money::MAX_ABS_UNITS) * 100 {
        return Err(MoneyError::TooLarge);
    }
    let signed = if negative { -cents } else { cents };
    Ok(Money(Decimal::from_i128_with_scale(signed, 2)))
}

/// `1234.50`: always two decimals, no thousands separator.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // From the integer cents: `Decimal`'s own formatting was a visible cost of writing
        // schedules (hundreds of amounts per approved loan).
        let cents = self.cents();
        let sign = if cents < 0 { "-" } else { "" };
        let abs = cents.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// A JSON number: whole amounts as integers (`1000`), others as `1234.5`; see
/// [`Money::to_f64`] for why that is exact.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cents = self.cents();
        if cents % 100 == 0 {
            serializer.serialize_i64(cents / 100)
        } else {
            serializer.serialize_f64(self.to_f64())
        }
    }
}

/// Only from a JSON number (a string is rejected), with the same exactness as
/// [`Money::parse_json`].
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        Money::parse_json(&number).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[path = "money_tests.rs"]
mod tests;
