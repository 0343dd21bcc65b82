//! Submitting a varied set of loans and checking where they all ended.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

use crate::process::Service;

/// Application `i`: approvals, credit rejections, loan-to-value rejections and failed appraisals.
pub fn application(i: usize) -> Value {
    // barbara@… scores 781 (passes), alan@… 355 (fails): see CONTRACT.md's credit rule.
    let (email, amount) = match i % 4 {
        0 | 3 => ("barbara@example.com", 200_000),
        1 => ("alan@example.com", 200_000),
        _ => ("barbara@example.com", 399_000),
    };
    let address =
        if i % 7 == 5 { format!("{i} Quay Street #fail-appraisal") } else { format!("{i} Harbour Road, Lisbon") };
    json!({
        "applicant": {"name": format!("Applicant {i}"), "email": email, "annual_income": 150000, "monthly_debts": 300},
        "property": {"address": address, "declared_value": 400000},
        "amount": amount,
        "term_months": 240
    })
}

pub fn client() -> reqwest::Client {
    // Idle connections are dropped well before actix's 5 s keep-alive closes them, so a request
    // after a long pause (a broker restart) never goes out on a connection the server is closing.
    let mut operator = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {}", crate::TOKEN).parse().expect("a header value");
    operator.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(operator)
        .timeout(Duration::from_secs(20))
        .pool_idle_timeout(Duration::from_secs(1))
        .build()
        .expect("an HTTP client")
}

/// Submit `range` (round-robin over `nodes`), 32 at a time; returns (index, id).
pub async fn submit_all(
    client: &reqwest::Client,
    nodes: &[&Service],
    range: std::ops::Range<usize>,
) -> Vec<(usize, String)> {
    stream::iter(range)
        .map(|i| {
            let node = nodes[i % nodes.len()];
            let request = client.post(node.url("/api/v1/loans")).json(&application(i));
            async move {
                let response = request.send().await.expect("POST /api/v1/loans");
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or_default();
                assert_eq!(status, 201, "submission {i} refused: {body}\n{}", node.log_tail(20));
                (i, body["id"].as_str().expect("an id").to_owned())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

pub async fn get_json(client: &reqwest::Client, url: String) -> Value {
    let response = client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    response.json().await.expect("JSON")
}

/// How many loans are not terminal yet.
pub async fn unfinished(client: &reqwest::Client, node: &Service) -> i64 {
    let response = client.get(node.url("/api/v1/loans/stats")).send().await;
    let response = response.unwrap_or_else(|e| panic!("GET stats: {e:?}\n{}", node.log_tail(40)));
    let stats: Value = response.json().await.expect("JSON");
    ["submitted", "evaluating"].iter().map(|s| stats["by_status"][s].as_i64().unwrap_or(0)).sum()
}

/// Poll until every loan of `ids` is terminal and notified (at most `others` other loans may
/// stay unfinished); returns each loan and its events.
pub async fn wait_all_finished(
    client: &reqwest::Client,
    node: &Service,
    ids: &[(usize, String)],
    deadline: Duration,
) -> Vec<(usize, Value, Vec<Value>)> {
    wait_finished_beside(client, node, ids, deadline, 0).await
}

pub async fn wait_finished_beside(
    client: &reqwest::Client,
    node: &Service,
    ids: &[(usize, String)],
    deadline: Duration,
    others: i64,
) -> Vec<(usize, Value, Vec<Value>)> {
    let start = Instant::now();
    while unfinished(client, node).await > others {
        assert!(start.elapsed() < deadline, "loans unfinished after {deadline:?}:\n{}", node.log_tail(30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut done = Vec::new();
    for (i, id) in ids {
        loop {
            let loan = get_json(client, node.url(&format!("/api/v1/loans/{id}"))).await;
            if !loan["notified_at"].is_null() {
                let events = get_json(client, node.url(&format!("/api/v1/loans/{id}/events"))).await;
                done.push((*i, loan, events.as_array().expect("an array").clone()));
                break;
            }
            assert!(start.elapsed() < deadline, "loan {id} never notified: {loan}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    done
}

/// Events of what staff did (a replay, a retry): repeatable, and no part of the process.
const STAFF_ACTIONS: [&str; 3] = ["MessagesRedelivered", "DeadLetterReplayed", "AccessTokenRevoked"];

/// Each loan: the status its application calls for, each of the process's events once, one
/// notification last.
pub fn check_all(done: &[(usize, Value, Vec<Value>)]) {
    for (i, loan, events) in done {
        let expected = match (i % 7 == 5, i % 4) {
            (true, _) => "cancelled",
            (false, 0 | 3) => "approved",
            _ => "rejected",
        };
        assert_eq!(loan["status"], expected, "loan {i}: {loan}");
        let types: Vec<&str> =
            events.iter().map(|e| e["type"].as_str().unwrap()).filter(|t| !STAFF_ACTIONS.contains(t)).collect();
        let unique: HashSet<&&str> = types.iter().collect();
        assert_eq!(unique.len(), types.len(), "loan {i} has an event twice: {types:?}");
        assert_eq!(types.last(), Some(&"ApplicantNotified"), "loan {i}: {types:?}");
        let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "loan {i}: ids out of order {ids:?}");
    }
}

/// What must be identical between two runs of the same applications.
pub fn outcome_of(loan: &Value, events: &[Value]) -> Value {
    let mut types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types.sort_unstable();
    json!({
        "status": loan["status"], "credit_score": loan["credit_score"], "appraised_value": loan["appraised_value"],
        "rate_bps": loan["rate_bps"], "monthly_payment": loan["monthly_payment"], "events": types,
    })
}
