//! Conformance: 1,000 seeded applications through the running service, every finished loan
//! checked field by field, event by event, against an independent oracle of CONTRACT.md.

mod checks;
mod generate;
mod oracle;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{event_types, spawn_app, Db, TestApp};
use generate::Case;
use oracle::{Application, Outcome};

const SEED: u64 = 0x1_0a7f_10e5;
const APPLICATIONS: usize = 1_000;
const IN_FLIGHT: usize = 32;
/// From the last submission until every loan must be finished.
const DEADLINE: Duration = Duration::from_secs(120);
/// Every n-th loan also has its schedule checked (or its absence, when not approved).
const SCHEDULE_SAMPLE_EVERY: usize = 10;

both_backends!(a_thousand_applications_match_the_contract);

async fn a_thousand_applications_match_the_contract(db: Db) {
    let started = Instant::now();
    let cases = generate::cases(SEED, APPLICATIONS);
    let app = spawn_app(db).await;
    let app = &app;

    let submitted: Vec<(String, Case)> = stream::iter(cases)
        .map(|case| async move { (app.submit(&request_body(&case.app)).await, case) })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let submitting = started.elapsed();

    let deadline = Instant::now() + DEADLINE;
    wait_until_all_terminal(app, deadline).await;
    let problems: Vec<String> = stream::iter(submitted.iter().enumerate())
        .map(|(i, (id, case))| check_loan(app, id, case, i % SCHEDULE_SAMPLE_EVERY == 0, deadline))
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|problem| async move { problem })
        .collect()
        .await;

    let mut expected_counts: BTreeMap<Outcome, i64> = BTreeMap::new();
    for (_, case) in &submitted {
        *expected_counts.entry(case.expected.outcome).or_default() += 1;
    }
    let (_, stats) = app.get_json("/api/v1/loans/stats").await;
    println!(
        "conformance on {db:?}: {} applications ({expected_counts:?}) submitted in {submitting:.1?}, \
         all checked after {:.1?}; {} with problems",
        submitted.len(),
        started.elapsed(),
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{} of {APPLICATIONS} loans disagree with the contract; the first ones:\n{}",
        problems.len(),
        problems.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    let count = |outcome| expected_counts.get(&outcome).copied().unwrap_or(0);
    let expected_stats = json!({
        "total": APPLICATIONS,
        "by_status": {
            "submitted": 0, "evaluating": 0, "under_review": 0, "awaiting_information": 0,
            "approved": count(Outcome::Approved), "rejected": count(Outcome::Rejected), "cancelled": count(Outcome::Cancelled),
        }
    });
    assert_eq!(stats, expected_stats, "GET /api/v1/loans/stats");
}

/// The `POST /api/v1/loans` body; money goes out as JSON numbers with at most two decimals.
fn request_body(app: &Application) -> Value {
    let number = |d: Decimal| json!(d.to_string().parse::<f64>().expect("a decimal prints as a number"));
    json!({
        "applicant": {
            "name": app.name,
            "email": app.email,
            "annual_income": number(app.annual_income),
            "monthly_debts": number(app.monthly_debts),
        },
        "property": {"address": app.address, "declared_value": number(app.declared_value)},
        "amount": number(app.amount),
        "term_months": app.term_months,
    })
}

/// Poll the stats until every loan has a terminal status (or the deadline passes: then the
/// per-loan checks report which loans are stuck, with their bodies and histories).
async fn wait_until_all_terminal(app: &TestApp, deadline: Instant) {
    while Instant::now() < deadline {
        let (_, stats) = app.get_json("/api/v1/loans/stats").await;
        let terminal: i64 = ["approved", "rejected", "cancelled"]
            .iter()
            .map(|status| stats["by_status"][status].as_i64().unwrap_or(0))
            .sum();
        if terminal == APPLICATIONS as i64 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything about one loan; `None` when it matches the contract, else a description with the
/// loan's body and history.
async fn check_loan(app: &TestApp, id: &str, case: &Case, check_schedule: bool, deadline: Instant) -> Option<String> {
    let loan = loop {
        let loan = app.loan(id).await;
        if !loan["notified_at"].is_null() {
            break loan;
        }
        if Instant::now() >= deadline {
            let history = event_types(&app.events(id).await);
            return Some(format!(
                "loan {id} ({}): not finished by the deadline\n  body: {loan}\n  events: {history:?}",
                case.label
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let events = app.events(id).await;
    let mut problems = checks::loan_fields(id, &loan, case);
    problems.extend(checks::history(&events, case.expected.outcome));
    if check_schedule {
        let (status, schedule) = app.get_json(&format!("/api/v1/loans/{id}/schedule")).await;
        problems.extend(checks::schedule(status, &schedule, case));
    }
    (!problems.is_empty()).then(|| {
        format!(
            "loan {id} ({}): {}\n  body: {loan}\n  events: {:?}\n  expected: {:?}",
            case.label,
            problems.join("; "),
            event_types(&events),
            case.expected
        )
    })
}
