//! The repayment schedule of an approved loan: one line per month, amortising exactly to zero.
//!
//! Each month's interest is rounded to cents, so a fixed payment cannot land the balance on
//! exactly zero; the last line takes whatever is left (its payment differs by a few cents) so
//! that the principal column always sums to the loan amount.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use super::application::TermMonths;
use super::money::Money;
use super::rules::monthly_rate;

/// One month of the schedule. Always `payment == interest + principal`, and `balance` is what
/// remains owed after this payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleLine {
    /// 1-based.
    pub month: u16,
    pub due_date: NaiveDate,
    pub payment: Money,
    pub interest: Money,
    pub principal: Money,
    pub balance: Money,
}

/// Builds `term` lines; line `i` (1-based) is due `i - 1` months after `first_due`.
///
/// Due dates are computed from `first_due` each time (not month to month) and clamped to the end
/// of shorter months, so a loan due on the 31st is due on Feb 28/29 and again on Mar 31.
///
/// Interest is `round_cents(balance * r)`. Before the last month the principal is
/// `payment - interest`, capped at the balance (an overpaying `monthly_payment` ends the loan
/// early, leaving zero lines) and floored at zero: if `monthly_payment` does not even cover the
/// interest, the line is interest-only rather than letting the balance grow. The last line
/// repays the whole remaining balance.
pub fn amortization_schedule(
    amount: Money,
    rate_bps: u32,
    term: TermMonths,
    monthly_payment: Money,
    first_due: NaiveDate,
) -> Vec<ScheduleLine> {
    let r = monthly_rate(rate_bps);
    let months = term.get();
    // Whole cents from here on: only the interest needs decimal arithmetic (`balance * r`,
    // rounded to cents); the rest is exact integer arithmetic on cents, the same results as
    // the `Decimal` operations it replaced, at a fraction of their cost.
    let payment = monthly_payment.cents();
    let mut balance = amount.cents();
    let mut lines = Vec::with_capacity(usize::from(months));
    for month in 1..=months {
        let interest = Money::from_decimal_rounded(Money::from_cents(balance).as_decimal() * r).cents();
        let principal = if month == months { balance } else { (payment - interest).max(0).min(balance) };
        balance -= principal;
        lines.push(ScheduleLine {
            month,
            due_date: due_date(first_due, month),
            payment: Money::from_cents(interest + principal),
            interest: Money::from_cents(interest),
            principal: Money::from_cents(principal),
            balance: Money::from_cents(balance),
        });
    }
    lines
}

/// Saturates at `NaiveDate::MAX`, which only a first due date some 260,000 years ahead reaches.
fn due_date(first_due: NaiveDate, month: u16) -> NaiveDate {
    first_due.checked_add_months(Months::new(u32::from(month) - 1)).unwrap_or(NaiveDate::MAX)
}

const CSV_HEADER: &str = "month,due_date,payment,interest,principal,balance";

/// CSV: a header line, then one line per month, money as `1234.50`, dates as ISO 8601. This is
/// also how a schedule is stored (less than half the bytes of its JSON, and cheaper to write).
pub fn schedule_csv(lines: &[ScheduleLine]) -> String {
    let mut csv = Vec::with_capacity(CSV_HEADER.len() + 1 + lines.len() * 48);
    csv.extend_from_slice(CSV_HEADER.as_bytes());
    csv.push(b'\n');
    // Bytes pushed by hand: through `fmt` this was a visible share of a step's CPU (hundreds of
    // numbers per approved loan); `csv_matches_display_formatting` pins it to `Display`.
    for line in lines {
        push_digits(&mut csv, u64::from(line.month), 1);
        csv.push(b',');
        push_date(&mut csv, line.due_date);
        for money in [line.payment, line.interest, line.principal, line.balance] {
            csv.push(b',');
            push_money(&mut csv, money);
        }
        csv.push(b'\n');
    }
    String::from_utf8(csv).expect("the CSV is ASCII")
}

/// `n` in decimal, zero-padded to at least `width` digits.
fn push_digits(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut at = buf.len();
    while n > 0 || buf.len() - at < width {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[at..]);
}

/// ISO 8601 (`2025-01-31`), as `NaiveDate`'s `Display` writes it.
fn push_date(out: &mut Vec<u8>, date: NaiveDate) {
    use chrono::Datelike;
    match u64::try_from(date.year()) {
        Ok(year) if year <= 9999 => {
            push_digits(out, year, 4);
            out.push(b'-');
            push_digits(out, u64::from(date.month()), 2);
            out.push(b'-');
            push_digits(out, u64::from(date.day()), 2);
        }
        _ => out.extend_from_slice(date.to_string().as_bytes()),
    }
}

/// As `Money`'s `Display`: `1234.50`, `-0.07`.
fn push_money(out: &mut Vec<u8>, money: Money) {
    let cents = money.cents();
    if cents < 0 {
        out.push(b'-');
    }
    let abs = cents.unsigned_abs();
    push_digits(out, abs / 100, 1);
    out.push(b'.');
    push_digits(out, abs % 100, 2);
}

/// Why a stored schedule could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule CSV line {line}: {reason}")]
pub struct ScheduleCsvError {
    pub line: usize,
    pub reason: String,
}

/// The lines of a schedule written by [`schedule_csv`].
pub fn parse_schedule_csv(csv: &str) -> Result<Vec<ScheduleLine>, ScheduleCsvError> {
    let mut rows = csv.lines();
    if rows.next() != Some(CSV_HEADER) {
        return Err(ScheduleCsvError { line: 1, reason: format!("expected the header `{CSV_HEADER}`") });
    }
    rows.enumerate()
        .map(|(i, row)| {
            let error = |reason: String| ScheduleCsvError { line: i + 2, reason };
            let fields: Vec<&str> = row.split(',').collect();
            let [month, due_date, payment, interest, principal, balance] = fields[..] else {
                return Err(error(format!("expected 6 fields, found {}", fields.len())));
            };
            let money = |text: &str| text.parse::<Money>().map_err(|e| error(format!("`{text}` {e}")));
            Ok(ScheduleLine {
                month: month.parse().map_err(|e| error(format!("month `{month}`: {e}")))?,
                due_date: due_date.parse().map_err(|e| error(format!("due date `{due_date}`: {e}")))?,
                payment: money(payment)?,
                interest: money(interest)?,
                principal: money(principal)?,
                balance: money(balance)?,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
