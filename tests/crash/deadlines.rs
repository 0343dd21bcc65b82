//! `kill -9` with 200 deadlines pending: requests for information nobody answers, half of them
//! due while no node runs. After the restart each deadline takes effect exactly once: one
//! `InformationRequestExpired` per loan, each loan cancelled (reason `information_not_provided`)
//! and notified once, no reminder after its request expired, no timer left.

use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

use crate::database::{Db, TestDatabase};
use crate::process::Service;
use crate::{email, get_json, operator_client, service_env, IN_FLIGHT};

const LOANS: usize = 200;
/// Deadlines of the first half: past before the node starts again. The second half's pass
/// after the restart.
const DUE_WHILE_DOWN: u64 = 3;
const DUE_AFTER_RESTART: u64 = 8;

#[tokio::test]
async fn deadlines_fire_once_after_kill_9_on_sqlite() {
    deadlines_survive_kill_9(Db::Sqlite).await;
}

#[tokio::test]
async fn deadlines_fire_once_after_kill_9_on_postgres() {
    deadlines_survive_kill_9(Db::Postgres).await;
}

/// The service with every loan that passes the rules referred to an underwriter.
fn referring_env(database: &TestDatabase) -> Vec<(&'static str, String)> {
    let mut env = service_env(database);
    env.retain(|(key, _)| !key.starts_with("LOANFLOW__BUREAUS__"));
    env.push(("LOANFLOW__DECISION__REVIEW_BELOW_SCORE", "851".to_owned()));
    env
}

async fn deadlines_survive_kill_9(db: Db) {
    let database = TestDatabase::create(db);
    let env = referring_env(&database);
    let client = operator_client();
    let first = Service::start(&env);

    let ids: Vec<String> = stream::iter(0..LOANS)
        .map(|i| {
            let (client, first) = (&client, &first);
            async move {
                let body = json!({
                    "applicant": {"name": format!("Applicant {i}"), "email": email(i, true), "annual_income": 1_000_000, "monthly_debts": 250},
                    "property": {"address": format!("{i} Deadline Road, Porto"), "declared_value": 300_000 + i},
                    "amount": 150_000,
                    "term_months": 240,
                });
                let response = client.post(first.url("/api/v1/loans")).json(&body).send().await.unwrap();
                assert_eq!(response.status().as_u16(), 201);
                response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    wait_for_status(&client, &first, "under_review", LOANS).await;

    // Ask each applicant for a payslip; nobody answers.
    stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let (client, first) = (&client, &first);
            let due = if i % 2 == 0 { DUE_WHILE_DOWN } else { DUE_AFTER_RESTART };
            async move {
                let body = json!({"message": "Your latest payslip", "fields": ["payslip"], "due_in_seconds": due});
                let url = first.url(&format!("/api/v1/loans/{id}/information-requests"));
                let response = client.post(url).json(&body).send().await.unwrap();
                let status = response.status().as_u16();
                assert_eq!(status, 201, "request for {id}: {}", response.text().await.unwrap_or_default());
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    let pending = get_json(&client, first.url("/admin/timers?limit=1000")).await;
    let deadlines = pending["items"].as_array().unwrap().iter().filter(|t| t["kind"] == "information_deadline").count();
    assert_eq!(deadlines, LOANS, "every deadline pending at the kill: {pending}");
    first.kill_9();
    let killed_at = Instant::now();

    // The first half's deadlines pass while no node runs.
    tokio::time::sleep(Duration::from_secs(DUE_WHILE_DOWN + 1)).await;
    let second = Service::start(&env);
    let restarted_after = killed_at.elapsed();
    wait_for_status(&client, &second, "cancelled", LOANS).await;

    let problems: Vec<String> = stream::iter(&ids)
        .map(|id| {
            let (client, second) = (&client, &second);
            async move {
                let loan = wait_notified(client, second, id).await;
                let events = get_json(client, second.url(&format!("/api/v1/loans/{id}/events"))).await;
                let problems = check(&loan, &events);
                (!problems.is_empty()).then(|| format!("loan {id}: {}\n  events: {events}", problems.join("; ")))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|problem| async move { problem })
        .collect()
        .await;
    assert!(
        problems.is_empty(),
        "{} of {LOANS} loans are wrong after the restart:\n{}\n--- log ---\n{}",
        problems.len(),
        problems.iter().take(5).cloned().collect::<Vec<_>>().join("\n"),
        second.log_tail(40)
    );
    let left = get_json(&client, second.url("/admin/timers")).await;
    assert_eq!(left["items"], json!([]), "every timer fired: {left}");
    assert_eq!(database.count("loans"), LOANS as i64);
    assert_eq!(database.count("notifications"), LOANS as i64, "{:?}", database.counts());
    println!("deadlines on {db:?}: restarted {restarted_after:.1?} after the kill; {:?}", database.counts());
}

/// What each loan must show: the deadline took effect once, and the loan ended cancelled for it.
fn check(loan: &Value, events: &Value) -> Vec<String> {
    let types: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    let count = |kind: &str| types.iter().filter(|t| **t == kind).count();
    let mut problems = Vec::new();
    if loan["status"] != "cancelled" {
        problems.push(format!("status {}", loan["status"]));
    }
    for (kind, expected) in [("InformationRequested", 1), ("InformationRequestExpired", 1), ("ApplicantNotified", 1)] {
        if count(kind) != expected {
            problems.push(format!("{} {kind}", count(kind)));
        }
    }
    if count("InformationReminderSent") > 1 {
        problems.push("more than one reminder".into());
    }
    let at = |kind: &str| types.iter().position(|t| *t == kind);
    if let (Some(reminded), Some(expired)) = (at("InformationReminderSent"), at("InformationRequestExpired")) {
        if reminded > expired {
            problems.push("reminded of an expired request".into());
        }
    }
    let cancelled = events.as_array().unwrap().iter().find(|e| e["type"] == "LoanCancelled");
    let reason = cancelled.and_then(|e| e["data"]["reason"].as_str()).unwrap_or_default();
    if !reason.starts_with("information_not_provided") {
        problems.push(format!("cancelled for {reason:?}"));
    }
    problems
}

/// Poll the stats until `n` loans have `status` (what the test waits for), at most 60 s.
async fn wait_for_status(client: &reqwest::Client, service: &Service, status: &str, n: usize) {
    let start = Instant::now();
    loop {
        let stats = get_json(client, service.url("/api/v1/loans/stats")).await;
        if stats["by_status"][status].as_u64() == Some(n as u64) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never {n} {status}: {stats}\n{}", service.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_notified(client: &reqwest::Client, service: &Service, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let loan = get_json(client, service.url(&format!("/api/v1/loans/{id}"))).await;
        if !loan["notified_at"].is_null() {
            return loan;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "loan {id} not notified: {loan}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
