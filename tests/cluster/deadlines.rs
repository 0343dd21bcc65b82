//! Two nodes, one database and broker, 100 requests for information nobody answers, asked on
//! both nodes: each node holds the deadlines it committed and looks every second for due ones it
//! does not hold, so both may try to fire one; each takes effect exactly once (one timer moved
//! into the outbox per deadline, counted over both nodes; one expiry and one notification per
//! loan).

use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

use crate::broker::Vhost;
use crate::database::{Db, TestDatabase};
use crate::loans::{client, get_json};
use crate::process::Service;
use crate::{two_ready_nodes, BROKER};

const LOANS: usize = 100;

#[tokio::test]
async fn deadlines_take_effect_once_with_two_nodes_firing() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    // Every loan that passes the rules goes to an underwriter.
    let (a, b) =
        two_ready_nodes(&database, &vhost, &client, &[("LOANFLOW__DECISION__REVIEW_BELOW_SCORE", "851")]).await;
    let nodes = [&a, &b];
    let ids: Vec<String> = stream::iter(0..LOANS)
        .map(|i| {
            let (client, node) = (&client, nodes[i % 2]);
            async move {
                let body = json!({
                    "applicant": {"name": format!("Applicant {i}"), "email": "barbara@example.com", "annual_income": 150000, "monthly_debts": 300},
                    "property": {"address": format!("{i} Harbour Road, Lisbon"), "declared_value": 400000},
                    "amount": 200000, "term_months": 240
                });
                let response = client.post(node.url("/api/v1/loans")).json(&body).send().await.unwrap();
                assert_eq!(response.status().as_u16(), 201);
                response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for id in &ids {
        wait_loan(&client, &a, id, |loan| loan["status"] == "under_review").await;
    }
    stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let (client, node) = (&client, nodes[i % 2]);
            async move {
                let body = json!({"message": "Your latest payslip", "fields": ["payslip"], "due_in_seconds": 2});
                let url = node.url(&format!("/api/v1/loans/{id}/information-requests"));
                let response = client.post(url).json(&body).send().await.unwrap();
                assert_eq!(response.status().as_u16(), 201, "{}", response.text().await.unwrap_or_default());
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;

    for id in &ids {
        let loan = wait_loan(&client, nodes[0], id, |loan| !loan["notified_at"].is_null()).await;
        assert_eq!(loan["status"], "cancelled", "{loan}");
        let events = get_json(&client, b.url(&format!("/api/v1/loans/{id}/events"))).await;
        let types: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        for kind in ["InformationRequestExpired", "LoanCancelled", "ApplicantNotified"] {
            assert_eq!(types.iter().filter(|t| **t == kind).count(), 1, "{kind} of {id}: {types:?}");
        }
    }
    let left = get_json(&client, a.url("/admin/timers")).await;
    assert_eq!(left["items"], json!([]), "every timer fired: {left}");
    let fired = fired_deadlines(&client, &a).await + fired_deadlines(&client, &b).await;
    assert_eq!(fired, LOANS as u64, "each deadline moved into the outbox once, over both nodes");
    assert_eq!(database.count("notifications"), LOANS as i64);
}

/// `loanflow_timers_fired_total{kind="information_deadline"}` of one node.
async fn fired_deadlines(client: &reqwest::Client, node: &Service) -> u64 {
    let text = client.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("loanflow_timers_fired_total{kind=\"information_deadline\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Poll a loan until `done` holds (what the test waits for), at most 60 s.
async fn wait_loan(client: &reqwest::Client, node: &Service, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let loan = get_json(client, node.url(&format!("/api/v1/loans/{id}"))).await;
        if done(&loan) {
            return loan;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "loan {id} never got there: {loan}\n{}", node.log_tail(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
