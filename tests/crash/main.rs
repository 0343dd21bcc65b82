//! Crash recovery: `kill -9` the real binary while loans are mid-flight, start it again on the
//! same database, and check that every loan still ends where the rules say, with its history
//! intact and exactly one notification. Runs on SQLite and on PostgreSQL.

#[path = "../common/database.rs"]
mod database;
mod dead_letters;
mod deadlines;
mod notifications;
mod process;
mod services;
mod shutdown;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use database::{Db, TestDatabase};
use process::Service;

const LOANS: usize = 300;
/// The operator token the service gets: reads need a credential.
const TOKEN: &str = "crash-test-operator";
const IN_FLIGHT: usize = 32;
/// After the restart, every loan must be finished within this.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn loans_survive_kill_9_on_sqlite() {
    crash_and_recover(Db::Sqlite).await;
}

#[tokio::test]
async fn loans_survive_kill_9_on_postgres() {
    crash_and_recover(Db::Postgres).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Approved,
    Rejected,
    Cancelled,
}

async fn crash_and_recover(db: Db) {
    let started = Instant::now();
    let database = TestDatabase::create(db);
    let env = service_env(&database);
    let client = operator_client();

    let first = Service::start(&env);
    let submitted: Vec<(usize, String, Outcome)> = stream::iter(0..LOANS)
        .map(|i| {
            let (client, first) = (&client, &first);
            async move {
                let (id, outcome) = submit(client, first, i).await;
                (i, id, outcome)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let first_answers: HashMap<usize, String> = submitted.iter().map(|(i, id, _)| (*i, id.clone())).collect();
    let loans: Vec<(String, Outcome)> = submitted.into_iter().map(|(_, id, outcome)| (id, outcome)).collect();
    let stats = some_finished(&client, &first).await;
    let unfinished =
        ["submitted", "evaluating"].iter().map(|s| stats["by_status"][s].as_i64().unwrap_or(0)).sum::<i64>();
    assert!(unfinished > 0, "every loan finished before the kill, so the kill proves nothing: {stats}");
    first.kill_9();
    let killed_after = started.elapsed();

    let second = Service::start(&env);
    let finished = wait_all_finished(&client, &second, &loans).await;
    let problems: Vec<String> = stream::iter(&loans)
        .map(|(id, outcome)| {
            let (client, second, loan) = (&client, &second, &finished[id]);
            async move {
                let events = get_json(client, second.url(&format!("/api/v1/loans/{id}/events"))).await;
                let problems = check_loan(loan, &events, *outcome);
                (!problems.is_empty())
                    .then(|| format!("loan {id}: {}\n  body: {loan}\n  events: {events}", problems.join("; ")))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|problem| async move { problem })
        .collect()
        .await;
    assert!(
        problems.is_empty(),
        "{} of {LOANS} loans are wrong after the restart:\n{}\n--- log after the restart ---\n{}",
        problems.len(),
        problems.iter().take(10).cloned().collect::<Vec<_>>().join("\n"),
        second.log_tail(60)
    );

    replays_after_restart(&client, &second, &first_answers, 7).await;

    let counts = database.counts();
    println!(
        "crash on {db:?}: killed {killed_after:.1?} in, with {unfinished} of {LOANS} loans unfinished ({}); \
         all finished {:.1?} after it; rows: {counts:?}",
        stats["by_status"],
        started.elapsed() - killed_after
    );
    assert_eq!(database.count("loans"), LOANS as i64, "loans stored: {counts:?}");
    assert_eq!(database.count("notifications"), LOANS as i64, "notifications recorded: {counts:?}");
    assert_eq!(database.notified_loans(), LOANS as i64, "loans with a notification: {counts:?}");
}

/// The service on `database`, port 0, with the operator token and slow bureaus (so that loans
/// are mid-flight when the process stops).
fn service_env(database: &TestDatabase) -> Vec<(&'static str, String)> {
    vec![
        ("LOANFLOW__HTTP__PORT", "0".to_owned()),
        ("LOANFLOW__DATABASE__URL", database.url.clone()),
        ("LOANFLOW__BUREAUS__CREDIT_LATENCY_MS", "300".to_owned()),
        ("LOANFLOW__BUREAUS__APPRAISAL_LATENCY_MS", "500".to_owned()),
        ("LOANFLOW__ADMIN__TOKEN", TOKEN.to_owned()),
    ]
}

/// An HTTP client that sends the operator token.
fn operator_client() -> reqwest::Client {
    let mut operator = reqwest::header::HeaderMap::new();
    operator.insert(reqwest::header::AUTHORIZATION, format!("Bearer {TOKEN}").parse().expect("a header value"));
    reqwest::Client::builder()
        .default_headers(operator)
        .timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(1))
        .build()
        .expect("an HTTP client")
}

/// The stats once a quarter of the loans have a terminal status (or after a few seconds), so
/// that the kill catches loans at every stage: notified, decided, evaluating, just submitted.
async fn some_finished(client: &reqwest::Client, service: &Service) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = get_json(client, service.url("/api/v1/loans/stats")).await;
        let terminal: i64 =
            ["approved", "rejected", "cancelled"].iter().map(|s| stats["by_status"][s].as_i64().unwrap_or(0)).sum();
        if terminal >= (LOANS / 4) as i64 || Instant::now() >= deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The credit score by CONTRACT.md, to pick e-mails that pass or fail the credit rule.
fn credit_score(email: &str) -> u64 {
    let digest = Sha256::digest(email.to_lowercase().as_bytes());
    300 + u64::from_be_bytes(digest[..8].try_into().expect("32 bytes")) % 551
}

fn email(i: usize, passes_credit: bool) -> String {
    (0..)
        .map(|attempt| format!("crash.{i}.{attempt}@example.com"))
        .find(|email| (credit_score(email) >= 620) == passes_credit)
        .expect("an endless search finds one")
}

/// Loan `i` of the mix: 70% approvals, 20% rejections (low score or too much debt), 10% failed
/// appraisals. Approvals borrow half the declared value and earn far more than they repay.
fn application(i: usize) -> (Value, Outcome) {
    let (passes_credit, annual_income, address, outcome) = match i % 10 {
        6 => (false, 1_000_000, format!("{i} Crash Street, Lisbon"), Outcome::Rejected),
        7 => (true, 12_000, format!("{i} Crash Street, Lisbon"), Outcome::Rejected),
        8 => (true, 1_000_000, format!("{i} Crash Street #fail-appraisal, Lisbon"), Outcome::Cancelled),
        _ => (true, 1_000_000, format!("{i} Crash Street, Lisbon"), Outcome::Approved),
    };
    let body = json!({
        "applicant": {"name": format!("Applicant {i}"), "email": email(i, passes_credit), "annual_income": annual_income, "monthly_debts": 250},
        "property": {"address": address, "declared_value": 300_000 + i},
        "amount": 150_000,
        "term_months": 240,
    });
    (body, outcome)
}

async fn submit(client: &reqwest::Client, service: &Service, i: usize) -> (String, Outcome) {
    let outcome = application(i).1;
    let response = post_application(client, service, i).await;
    let status = response.status().as_u16();
    let created: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status == 201 || status == 202, "submission {i} refused: {status} {created}");
    (created["id"].as_str().expect("an id").to_owned(), outcome)
}

/// POST application `i`, with its own `Idempotency-Key`.
async fn post_application(client: &reqwest::Client, service: &Service, i: usize) -> reqwest::Response {
    let (body, _) = application(i);
    client
        .post(service.url("/api/v1/loans"))
        .header("Idempotency-Key", format!("crash-submission-{i}"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /api/v1/loans (application {i}): {e}"))
}

/// Every `step`-th submission sent again to the restarted node with its key and body: the
/// answer is a replay of the first (same loan, marked replayed), and no loan is created.
async fn replays_after_restart(
    client: &reqwest::Client,
    service: &Service,
    first_answers: &HashMap<usize, String>,
    step: usize,
) {
    let replies: Vec<String> = stream::iter((0..LOANS).step_by(step))
        .map(|i| async move {
            let response = post_application(client, service, i).await;
            let status = response.status().as_u16();
            let replayed = response.headers().get("idempotency-replayed").map(|v| v.to_str().unwrap_or("").to_owned());
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            let same_loan = answer["id"].as_str() == Some(first_answers[&i].as_str());
            (!(status == 201 && replayed.as_deref() == Some("true") && same_loan))
                .then(|| format!("submission {i}: {status} replayed={replayed:?} {answer}"))
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|problem| async move { problem })
        .collect()
        .await;
    assert!(replies.is_empty(), "replays across the kill that were not replays:\n{}", replies.join("\n"));
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    let response = client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// Poll every loan until it has `notified_at`, or fail at the deadline naming the stragglers.
async fn wait_all_finished(
    client: &reqwest::Client,
    service: &Service,
    loans: &[(String, Outcome)],
) -> HashMap<String, Value> {
    let deadline = Instant::now() + RECOVERY_DEADLINE;
    let mut finished = HashMap::new();
    let mut pending: Vec<&str> = loans.iter().map(|(id, _)| id.as_str()).collect();
    loop {
        let bodies: Vec<Value> = stream::iter(&pending)
            .map(|id| get_json(client, service.url(&format!("/api/v1/loans/{id}"))))
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut stragglers = Vec::new();
        for body in bodies {
            let id = body["id"].as_str().expect("an id").to_owned();
            if body["notified_at"].is_null() {
                stragglers.push(body);
            } else {
                finished.insert(id, body);
            }
        }
        if stragglers.is_empty() {
            return finished;
        }
        assert!(
            Instant::now() < deadline,
            "{} loans not finished {RECOVERY_DEADLINE:?} after the restart, e.g. {}\n--- log after the restart ---\n{}",
            stragglers.len(),
            stragglers[0],
            service.log_tail(60)
        );
        pending.retain(|id| !finished.contains_key(*id));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The terminal event each outcome must have, and the ones it must not.
fn terminal_events(outcome: Outcome) -> (&'static str, [&'static str; 2]) {
    match outcome {
        Outcome::Approved => ("LoanApproved", ["LoanRejected", "LoanCancelled"]),
        Outcome::Rejected => ("LoanRejected", ["LoanApproved", "LoanCancelled"]),
        Outcome::Cancelled => ("LoanCancelled", ["LoanApproved", "LoanRejected"]),
    }
}

fn check_loan(loan: &Value, events: &Value, outcome: Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    let status = format!("{outcome:?}").to_lowercase();
    if loan["status"].as_str() != Some(status.as_str()) || loan["decided_at"].is_null() {
        problems.push(format!("expected status {status} with decided_at"));
    }
    let events = events.as_array().map(Vec::as_slice).unwrap_or_default();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or("?")).collect();
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap_or(i64::MIN)).collect();
    if ids.windows(2).any(|pair| pair[0] >= pair[1]) {
        problems.push(format!("event ids do not increase: {ids:?}"));
    }
    let mut seen = HashSet::new();
    for kind in types.iter().filter(|kind| !seen.insert(**kind)) {
        problems.push(format!("{kind} happens more than once"));
    }
    if types.iter().filter(|kind| **kind == "ApplicantNotified").count() != 1
        || types.last() != Some(&"ApplicantNotified")
    {
        problems.push("ApplicantNotified is not exactly once, last".to_owned());
    }
    let (must, must_not) = terminal_events(outcome);
    if !types.contains(&must) || must_not.iter().any(|kind| types.contains(kind)) {
        problems.push(format!("status {status} needs {must} and none of {must_not:?}"));
    }
    if types.contains(&"ScheduleGenerated") != (outcome == Outcome::Approved) {
        problems.push("ScheduleGenerated must happen exactly for approved loans".to_owned());
    }
    problems
}
