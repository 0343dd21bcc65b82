//! Comparing what the API reports with what the oracle expects. Each check returns every
//! disagreement it finds (empty = conforms), so one run shows all the ways a loan is wrong.

use std::collections::HashSet;
use std::fmt::Debug;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use serde_json::Value;

use super::generate::Case;
use super::oracle::Outcome;

/// A JSON money value as an exact decimal; `None` for null (or anything that is not a number).
fn money(value: &Value) -> Option<Decimal> {
    let number = value.as_number()?;
    Decimal::from_str(&number.to_string()).or_else(|_| Decimal::from_scientific(&number.to_string())).ok()
}

fn timestamp(value: &Value) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(value.as_str()?).ok()
}

fn same<T: PartialEq + Debug>(problems: &mut Vec<String>, field: &str, actual: T, expected: T) {
    if actual != expected {
        problems.push(format!("{field} is {actual:?}, expected {expected:?}"));
    }
}

/// Every field of a finished loan.
pub fn loan_fields(id: &str, loan: &Value, case: &Case) -> Vec<String> {
    let (app, expected) = (&case.app, &case.expected);
    let mut problems = Vec::new();
    same(&mut problems, "id", loan["id"].as_str(), Some(id));
    same(&mut problems, "status", loan["status"].as_str(), Some(expected.outcome.status()));
    let score = loan["credit_score"].as_u64().map(|s| s as u32);
    if expected.outcome == Outcome::Cancelled && loan["credit_score"].is_null() {
        // "its credit_score may be set"
    } else {
        same(&mut problems, "credit_score", score, Some(expected.credit_score));
    }
    same(&mut problems, "appraised_value", money(&loan["appraised_value"]), expected.appraised_value);
    same(&mut problems, "rate_bps", loan["rate_bps"].as_u64().map(|r| r as u32), expected.rate_bps);
    same(&mut problems, "monthly_payment", money(&loan["monthly_payment"]), expected.monthly_payment);
    problems.extend(rejection_reasons(&loan["rejection_reasons"], &expected.reasons));
    problems.extend(timestamps(loan));

    // The application as submitted, read back exactly.
    same(&mut problems, "amount", money(&loan["amount"]), Some(app.amount));
    same(&mut problems, "term_months", loan["term_months"].as_u64(), Some(u64::from(app.term_months)));
    same(&mut problems, "applicant.name", loan["applicant"]["name"].as_str(), Some(app.name.as_str()));
    same(&mut problems, "applicant.annual_income", money(&loan["applicant"]["annual_income"]), Some(app.annual_income));
    same(&mut problems, "applicant.monthly_debts", money(&loan["applicant"]["monthly_debts"]), Some(app.monthly_debts));
    same(&mut problems, "property.address", loan["property"]["address"].as_str(), Some(app.address.as_str()));
    same(
        &mut problems,
        "property.declared_value",
        money(&loan["property"]["declared_value"]),
        Some(app.declared_value),
    );
    problems
}

/// Rejected: exactly the expected reasons (in any order, none twice). Otherwise none.
fn rejection_reasons(actual: &Value, expected: &[&str]) -> Vec<String> {
    let listed: Option<Vec<&str>> = match actual {
        Value::Null => Some(vec![]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    };
    let Some(mut listed) = listed else {
        return vec![format!("rejection_reasons is {actual}, expected a list of strings")];
    };
    if !expected.is_empty() && actual.is_null() {
        return vec![format!("rejection_reasons is null, expected {expected:?}")];
    }
    listed.sort_unstable();
    if listed != expected {
        return vec![format!("rejection_reasons is {actual}, expected {expected:?}")];
    }
    vec![]
}

/// `submitted_at <= decided_at <= notified_at`, all RFC 3339.
fn timestamps(loan: &Value) -> Vec<String> {
    let names = ["submitted_at", "decided_at", "notified_at"];
    let times: Vec<_> = names.iter().map(|name| timestamp(&loan[name])).collect();
    let mut problems = Vec::new();
    for (name, time) in names.iter().zip(&times) {
        if time.is_none() {
            problems.push(format!("{name} is {}, expected an RFC 3339 time", loan[name]));
        }
    }
    if let [Some(submitted), Some(decided), Some(notified)] = times[..] {
        if !(submitted <= decided && decided <= notified) {
            problems.push(format!("times out of order: submitted {submitted}, decided {decided}, notified {notified}"));
        }
    }
    problems
}

/// The event sequence of each outcome: a head, two steps in either order, a tail.
fn expected_sequence(outcome: Outcome) -> ([&'static str; 2], &'static [&'static str]) {
    match outcome {
        Outcome::Approved => {
            (["CreditChecked", "PropertyAppraised"], &["LoanApproved", "ScheduleGenerated", "ApplicantNotified"])
        }
        Outcome::Rejected => (["CreditChecked", "PropertyAppraised"], &["LoanRejected", "ApplicantNotified"]),
        Outcome::Cancelled => {
            (["AppraisalFailed", "CreditChecked"], &["CreditCheckReleased", "LoanCancelled", "ApplicantNotified"])
        }
    }
}

/// The loan's history: well-formed events, ids strictly increasing, each type at most once,
/// and the sequence its outcome calls for.
pub fn history(events: &[Value], outcome: Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    let mut last_id = i64::MIN;
    let mut seen = HashSet::new();
    for event in events {
        let (id, kind) = (event["id"].as_i64(), event["type"].as_str().unwrap_or("?"));
        if id.is_none() || timestamp(&event["at"]).is_none() || !event["data"].is_object() {
            problems.push(format!("malformed event {event}"));
        }
        let id = id.unwrap_or(i64::MIN);
        if id <= last_id {
            problems.push(format!("event id {id} ({kind}) does not increase on {last_id}"));
        }
        last_id = id;
        if !seen.insert(kind) {
            problems.push(format!("{kind} happens more than once"));
        }
    }
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or("?")).collect();
    let (steps, tail) = expected_sequence(outcome);
    let matches = types.len() == 3 + tail.len()
        && types[0] == "LoanSubmitted"
        && (types[1..3] == steps || types[1..3] == [steps[1], steps[0]])
        && types[3..] == *tail;
    if !matches {
        problems.push(format!("history {types:?} is not LoanSubmitted, {steps:?} in either order, then {tail:?}"));
    }
    problems
}

/// An approved loan's schedule: `term_months` lines, months 1..=n, each payment = interest +
/// principal, principal summing to the amount, ending at a zero balance. Others have none.
pub fn schedule(status: u16, schedule: &Value, case: &Case) -> Vec<String> {
    if case.expected.outcome != Outcome::Approved {
        return if status == 404 {
            vec![]
        } else {
            vec![format!("schedule of a {:?} loan: {status} {schedule}", case.expected.outcome)]
        };
    }
    if status != 200 {
        return vec![format!("schedule: {status} {schedule}")];
    }
    let Some(lines) = schedule["lines"].as_array() else {
        return vec![format!("schedule without lines: {schedule}")];
    };
    let mut problems = Vec::new();
    same(&mut problems, "schedule lines", lines.len(), case.app.term_months as usize);
    let mut principal_sum = Decimal::ZERO;
    for (i, line) in lines.iter().enumerate() {
        let field = |name: &str| money(&line[name]).unwrap_or(Decimal::MIN);
        principal_sum += field("principal");
        if line["month"].as_u64() != Some(i as u64 + 1) || field("payment") != field("interest") + field("principal") {
            problems.push(format!("schedule line {} is inconsistent: {line}", i + 1));
        }
    }
    same(&mut problems, "sum of schedule principal", principal_sum, case.app.amount);
    same(&mut problems, "last schedule balance", lines.last().and_then(|l| money(&l["balance"])), Some(Decimal::ZERO));
    problems
}
