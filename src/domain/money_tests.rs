use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Parses `json` as a JSON number the way the HTTP layer receives it, then as money.
fn parse(json: &str) -> Result<Money, MoneyError> {
    let number: serde_json::Number = serde_json::from_str(json).unwrap();
    Money::parse_json(&number)
}

#[test]
fn cents_round_trip_and_display() {
    assert_eq!(Money::from_cents(123_450).cents(), 123_450);
    assert_eq!(Money::from_cents(123_450).to_string(), "1234.50");
    assert_eq!(Money::from_cents(-5).to_string(), "-0.05");
    assert_eq!(Money::ZERO.to_string(), "0.00");
    assert_eq!(Money::ZERO.as_decimal().to_string(), "0.00");
    assert_eq!(Money::from_cents(5).as_decimal().to_string(), "0.05");
    assert_eq!(Money::from_decimal_rounded(dec("7")).as_decimal().to_string(), "7.00");
    assert_eq!(Money::default(), Money::ZERO);
    assert_eq!(Money::from_cents(100).as_decimal(), dec("1.00"));
}

#[test]
fn round_cents_is_half_away_from_zero() {
    let cases = [
        ("2.345", "2.35"),
        ("-2.345", "-2.35"),
        ("2.3449999", "2.34"),
        ("0.005", "0.01"),
        ("-0.005", "-0.01"),
        ("0.004999", "0.00"),
        ("2.355", "2.36"),
        ("7", "7"),
    ];
    for (input, expected) in cases {
        assert_eq!(round_cents(dec(input)), dec(expected), "round_cents({input})");
    }
    assert_eq!(Money::from_decimal_rounded(dec("2.5")).to_string(), "2.50");
    assert_eq!(Money::from_decimal_rounded(dec("-1.235")).cents(), -124);
}

#[test]
fn parse_json_accepts_up_to_two_decimals() {
    let ok = [
        ("1000", 100_000),
        ("10.50", 1_050),
        ("10.5", 1_050),
        ("0.01", 1),
        ("-12.34", -1_234),
        ("1000.0", 100_000),
        ("1e5", 10_000_000),
        ("1E5", 10_000_000),
        ("1.5E-1", 15),
        ("2.5e+3", 250_000),
        ("1.005E1", 1_005),
        ("1e-2", 1),
        ("0", 0),
        ("-0.0", 0),
        ("1000000000000", 100_000_000_000_000),
        ("-1000000000000", -100_000_000_000_000),
        ("999999999999.99", 99_999_999_999_999),
    ];
    for (json, cents) in ok {
        assert_eq!(parse(json), Ok(Money::from_cents(cents)), "parsing {json}");
    }
}

#[test]
fn parse_json_rejects_extra_decimals_and_huge_values() {
    let bad = [
        ("10.505", MoneyError::TooManyDecimals),
        ("0.001", MoneyError::TooManyDecimals),
        ("1e-3", MoneyError::TooManyDecimals),
        ("1e-300", MoneyError::TooManyDecimals),
        ("1.0005E1", MoneyError::TooManyDecimals),
        ("1000000000000.01", MoneyError::TooLarge),
        ("1e13", MoneyError::TooLarge),
        ("-1e13", MoneyError::TooLarge),
        ("1e300", MoneyError::TooLarge),
        ("18446744073709551615", MoneyError::TooLarge),
    ];
    for (json, expected) in bad {
        assert_eq!(parse(json), Err(expected), "parsing {json}");
    }
}

#[test]
fn parse_text_rejects_malformed_input() {
    for text in ["", "-", "abc", "1e", "e5", "1.2.3", "+5", "1e5.5"] {
        assert_eq!(parse_decimal_text(text), Err(MoneyError::Malformed), "{text:?}");
    }
}

#[test]
fn serde_uses_json_numbers() {
    let json = serde_json::to_string(&Money::from_cents(123_456)).unwrap();
    assert_eq!(json, "1234.56");
    let json = serde_json::to_string(&Money::from_cents(123_450)).unwrap();
    assert_eq!(json, "1234.5");
    assert_eq!(serde_json::from_str::<Money>("1234.5").unwrap(), Money::from_cents(123_450));
    assert!(serde_json::from_str::<Money>("\"1000\"").is_err());
    assert!(serde_json::from_str::<Money>("10.505").is_err());
}

#[test]
fn checked_arithmetic() {
    let a = Money::from_cents(1_050);
    let b = Money::from_cents(25);
    assert_eq!(a.checked_add(b), Some(Money::from_cents(1_075)));
    assert_eq!(b.checked_sub(a), Some(Money::from_cents(-1_025)));
}

proptest! {
    #[test]
    fn round_cents_matches_integer_half_away_from_zero(
        thousandths in -10_000_000_000i64..10_000_000_000,
    ) {
        let rounded = round_cents(Decimal::new(thousandths, 3));
        let magnitude = (thousandths.unsigned_abs() + 5) / 10;
        let expected_cents = if thousandths < 0 { -(magnitude as i64) } else { magnitude as i64 };
        prop_assert_eq!(rounded, Decimal::new(expected_cents, 2));
    }

    #[test]
    fn json_round_trip_is_exact(cents in -100_000_000_000_000i64..=100_000_000_000_000) {
        let money = Money::from_cents(cents);
        let json = serde_json::to_string(&money).unwrap();
        prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        prop_assert_eq!(money.cents(), cents);
    }
}
