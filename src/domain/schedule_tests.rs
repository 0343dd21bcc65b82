//! Expected lines were computed independently with Python's `decimal` (ROUND_HALF_UP).

use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::super::rules::monthly_payment;
use super::*;

fn money(s: &str) -> Money {
    Money::from_decimal_rounded(Decimal::from_str(s).unwrap())
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).unwrap()
}

fn term(months: i64) -> TermMonths {
    TermMonths::parse(months).unwrap()
}

fn line(month: u16, due: &str, figures: [&str; 4]) -> ScheduleLine {
    let [payment, interest, principal, balance] = figures;
    ScheduleLine {
        month,
        due_date: date(due),
        payment: money(payment),
        interest: money(interest),
        principal: money(principal),
        balance: money(balance),
    }
}

#[test]
fn one_year_at_twelve_percent() {
    let payment = monthly_payment(money("1200"), 1200, term(12));
    assert_eq!(payment, money("106.62"));
    let lines = amortization_schedule(money("1200"), 1200, term(12), payment, date("2025-01-15"));
    assert_eq!(lines.len(), 12);
    assert_eq!(lines[0], line(1, "2025-01-15", ["106.62", "12.00", "94.62", "1105.38"]));
    assert_eq!(lines[1], line(2, "2025-02-15", ["106.62", "11.05", "95.57", "1009.81"]));
    assert_eq!(lines[7], line(8, "2025-08-15", ["106.62", "5.17", "101.45", "416.00"]));
    assert_eq!(lines[10], line(11, "2025-11-15", ["106.62", "2.10", "104.52", "105.54"]));
    // The last payment absorbs the rounding of every month's interest.
    assert_eq!(lines[11], line(12, "2025-12-15", ["106.60", "1.06", "105.54", "0.00"]));
}

#[test]
fn thirty_year_mortgage_ends() {
    let amount = money("300000");
    let payment = monthly_payment(amount, 384, term(360));
    let lines = amortization_schedule(amount, 384, term(360), payment, date("2025-03-01"));
    assert_eq!(lines[0], line(1, "2025-03-01", ["1404.71", "960.00", "444.71", "299555.29"]));
    assert_eq!(lines[1], line(2, "2025-04-01", ["1404.71", "958.58", "446.13", "299109.16"]));
    assert_eq!(lines[358], line(359, "2055-01-01", ["1404.71", "8.95", "1395.76", "1401.65"]));
    assert_eq!(lines[359], line(360, "2055-02-01", ["1406.14", "4.49", "1401.65", "0.00"]));
}

#[test]
fn due_dates_clamp_to_month_end_without_drifting() {
    let lines = amortization_schedule(money("1000"), 500, term(12), money("90"), date("2024-01-31"));
    let dates: Vec<String> = lines[..4].iter().map(|l| l.due_date.to_string()).collect();
    assert_eq!(dates, ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]);
}

#[test]
fn zero_rate_splits_the_amount_evenly() {
    let payment = monthly_payment(money("1000"), 0, term(12));
    assert_eq!(payment, money("83.33"));
    let lines = amortization_schedule(money("1000"), 0, term(12), payment, date("2025-01-01"));
    assert!(lines.iter().all(|l| l.interest == Money::ZERO));
    assert_eq!(lines[11].principal, money("83.37"));
}

#[test]
fn a_payment_below_the_interest_gives_interest_only_lines() {
    let lines = amortization_schedule(money("1000"), 1200, term(12), money("5"), date("2025-01-01"));
    assert_eq!(lines[0], line(1, "2025-01-01", ["10.00", "10.00", "0.00", "1000.00"]));
    assert_eq!(lines[11], line(12, "2025-12-01", ["1010.00", "10.00", "1000.00", "0.00"]));
}

#[test]
fn an_overpayment_ends_the_loan_early() {
    let lines = amortization_schedule(money("100"), 1200, term(12), money("80"), date("2025-01-01"));
    assert_eq!(lines[1], line(2, "2025-02-01", ["21.21", "0.21", "21.00", "0.00"]));
    assert_eq!(lines[2], line(3, "2025-03-01", ["0.00", "0.00", "0.00", "0.00"]));
    assert_eq!(lines.len(), 12);
}

#[test]
fn csv_has_a_header_and_two_decimal_money() {
    let lines = amortization_schedule(money("1200"), 1200, term(12), money("106.62"), date("2025-01-15"));
    let csv = schedule_csv(&lines);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 13);
    assert_eq!(rows[0], "month,due_date,payment,interest,principal,balance");
    assert_eq!(rows[1], "1,2025-01-15,106.62,12.00,94.62,1105.38");
    assert_eq!(rows[12], "12,2025-12-15,106.60,1.06,105.54,0.00");
    assert!(csv.ends_with('\n'));
}

#[test]
fn schedule_line_serialises_dates_and_money() {
    let json = serde_json::to_value(line(1, "2025-01-15", ["106.62", "12", "94.62", "1105.38"])).unwrap();
    assert_eq!(json["due_date"], "2025-01-15");
    assert_eq!(json["interest"].as_f64(), Some(12.0));
    assert_eq!(json["payment"].to_string(), "106.62");
}

#[test]
fn csv_matches_display_formatting() {
    let odd = [
        line(1, "2025-01-15", ["0", "0.05", "-0.07", "1000000000000"]),
        line(480, "0033-12-01", ["12.3", "99.99", "100", "-12345.6"]),
        line(65535, "+12345-06-07", ["1", "2", "3", "4"]),
    ];
    let by_display: String = odd
        .iter()
        .map(|l| format!("{},{},{},{},{},{}\n", l.month, l.due_date, l.payment, l.interest, l.principal, l.balance))
        .collect();
    assert_eq!(schedule_csv(&odd), format!("month,due_date,payment,interest,principal,balance\n{by_display}"));
}

#[test]
fn a_stored_schedule_reads_back_line_for_line() {
    let lines = amortization_schedule(money("250000"), 625, term(360), money("1539.29"), date("2025-01-31"));
    assert_eq!(parse_schedule_csv(&schedule_csv(&lines)), Ok(lines));
    assert_eq!(parse_schedule_csv(&schedule_csv(&[])), Ok(vec![]));
}

#[test]
fn a_damaged_schedule_says_where() {
    let good = schedule_csv(&amortization_schedule(money("1200"), 1200, term(12), money("106.62"), date("2025-01-15")));
    assert_eq!(parse_schedule_csv("month,due\n").unwrap_err().line, 1);
    let damaged = good.replacen("2025-03-15", "2025-13-15", 1);
    assert_eq!(parse_schedule_csv(&damaged).unwrap_err().line, 4);
    let damaged = good.replacen("94.62", "94.625", 1);
    assert!(parse_schedule_csv(&damaged).unwrap_err().reason.contains("decimal"), "{damaged}");
    let short = format!("{good}13,2026-01-15,1.00\n");
    assert_eq!(parse_schedule_csv(&short).unwrap_err().line, 14);
}

proptest! {
    #[test]
    fn schedule_invariants(
        amount_cents in 1i64..=1_000_000_000,
        rate_bps in 300u32..=850,
        months in 12i64..=480,
    ) {
        let amount = Money::from_cents(amount_cents);
        let term = term(months);
        let payment = monthly_payment(amount, rate_bps, term);
        let lines = amortization_schedule(amount, rate_bps, term, payment, date("2025-01-31"));

        prop_assert_eq!(lines.len(), usize::try_from(months).unwrap());
        prop_assert_eq!(parse_schedule_csv(&schedule_csv(&lines)), Ok(lines.clone()));
        let principal_cents: i64 = lines.iter().map(|l| l.principal.cents()).sum();
        prop_assert_eq!(principal_cents, amount_cents);
        prop_assert_eq!(lines.last().unwrap().balance, Money::ZERO);
        let mut previous_balance = amount;
        for (i, l) in lines.iter().enumerate() {
            prop_assert_eq!(usize::from(l.month), i + 1);
            prop_assert_eq!(l.payment.cents(), l.interest.cents() + l.principal.cents());
            prop_assert!(l.interest >= Money::ZERO && l.principal >= Money::ZERO);
            prop_assert!(l.balance >= Money::ZERO && l.balance <= previous_balance);
            prop_assert_eq!(l.balance.cents(), previous_balance.cents() - l.principal.cents());
            // Before the last month the agreed payment is made, unless the loan is already
            // repaid (tiny amounts whose rounded payment overshoots).
            if i + 1 < lines.len() {
                prop_assert!(l.payment == payment || l.balance == Money::ZERO);
            }
            previous_balance = l.balance;
        }
    }
}
