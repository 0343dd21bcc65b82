//! A service call that panics (test-only hook `faults.service_panic_marker`): tried again after a
//! backoff, its attempts counted in the request's outbox row, so that they survive a restart, and
//! dead-lettered at `actors.max_message_attempts`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::database::{Db, TestDatabase};
use crate::process::Service;
use crate::{get_json, TOKEN};

/// In the property's address: the appraisal call panics.
const MARKER: &str = "#svc-panic";
const DEADLINE: Duration = Duration::from_secs(60);

fn env(database: &TestDatabase, panics: u32, max_attempts: u32) -> Vec<(&'static str, String)> {
    vec![
        ("LOANFLOW__HTTP__PORT", "0".to_owned()),
        ("LOANFLOW__DATABASE__URL", database.url.clone()),
        ("LOANFLOW__ADMIN__TOKEN", TOKEN.to_owned()),
        ("LOANFLOW__FAULTS__SERVICE_PANIC_MARKER", MARKER.to_owned()),
        ("LOANFLOW__FAULTS__SERVICE_PANICS", panics.to_string()),
        ("LOANFLOW__ACTORS__MAX_MESSAGE_ATTEMPTS", max_attempts.to_string()),
    ]
}

fn client() -> reqwest::Client {
    let mut operator = reqwest::header::HeaderMap::new();
    operator.insert(reqwest::header::AUTHORIZATION, format!("Bearer {TOKEN}").parse().expect("a header value"));
    reqwest::Client::builder().default_headers(operator).timeout(Duration::from_secs(15)).build().expect("a client")
}

async fn submit_marked(client: &reqwest::Client, node: &Service) -> String {
    let body = json!({
        "applicant": {"name": "Grace Hopper", "email": "barbara@example.com", "annual_income": 150000, "monthly_debts": 300},
        "property": {"address": format!("7 Harbour Road {MARKER}, Lisbon"), "declared_value": 400000},
        "amount": 200000,
        "term_months": 300
    });
    let response = client.post(node.url("/api/v1/loans")).json(&body).send().await.expect("POST /api/v1/loans");
    assert_eq!(response.status().as_u16(), 201);
    response.json::<Value>().await.expect("JSON")["id"].as_str().expect("an id").to_owned()
}

/// `loanflow_service_call_panics_total{kind="appraisal"}` of a node.
async fn appraisal_panics(client: &reqwest::Client, node: &Service) -> u64 {
    let text = client.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("loanflow_service_call_panics_total{kind=\"appraisal\"}"));
    let value = line.and_then(|l| l.split_whitespace().last()).and_then(|v| v.parse::<f64>().ok());
    value.unwrap_or_else(|| panic!("no appraisal panics counted in:\n{text}")) as u64
}

/// The `attempt` the appraisal request's outbox row holds (`None`: the row is gone).
fn stored_attempt(database: &TestDatabase) -> Option<u64> {
    let rows = database.texts("SELECT envelope AS value FROM outbox WHERE kind = 'appraise_property'");
    rows.first().map(|row| serde_json::from_str::<Value>(row).expect("an envelope")["attempt"].as_u64().unwrap_or(1))
}

#[tokio::test]
async fn a_service_call_that_panics_once_is_tried_again_and_completes_once() {
    let (database, client) = (TestDatabase::create(Db::Sqlite), client());
    let node = Service::start(&env(&database, 1, 5));
    let id = submit_marked(&client, &node).await;
    let start = Instant::now();
    let loan = loop {
        let loan = get_json(&client, node.url(&format!("/api/v1/loans/{id}"))).await;
        if !loan["notified_at"].is_null() {
            break loan;
        }
        assert!(start.elapsed() < DEADLINE, "never finished: {loan}\n{}", node.log_tail(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(loan["status"], "approved", "{loan}");
    let events = get_json(&client, node.url(&format!("/api/v1/loans/{id}/events"))).await;
    let appraised = events.as_array().unwrap().iter().filter(|e| e["type"] == "PropertyAppraised").count();
    assert_eq!(appraised, 1, "{events}");
    assert_eq!(appraisal_panics(&client, &node).await, 1);
    assert_eq!(database.count("dead_letters"), 0);
}

/// Every attempt panics. The first node counts some failed attempts in the request's row and is
/// killed; the second goes on from that count, and dead-letters the request once the attempts of
/// both reach the limit.
#[tokio::test]
async fn the_attempts_of_a_panicking_service_call_survive_a_restart_and_end_in_a_dead_letter() {
    const LIMIT: u64 = 6;
    let (database, client) = (TestDatabase::create(Db::Sqlite), client());
    let first = Service::start(&env(&database, 0, LIMIT as u32));
    let id = submit_marked(&client, &first).await;
    let start = Instant::now();
    while stored_attempt(&database).unwrap_or(1) < 2 {
        assert!(start.elapsed() < DEADLINE, "no failed attempt counted in the row:\n{}", first.log_tail(20));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill_9();
    let stored = stored_attempt(&database).expect("the request is still in the outbox");
    assert!(stored < LIMIT, "dead-lettered before the kill (attempt {stored})");

    let second = Service::start(&env(&database, 0, LIMIT as u32));
    let start = Instant::now();
    while database.count("dead_letters") == 0 {
        assert!(start.elapsed() < DEADLINE, "never dead-lettered:\n{}", second.log_tail(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Attempts `stored` to `LIMIT` were made after the restart, no more.
    assert_eq!(appraisal_panics(&client, &second).await, LIMIT - stored + 1);
    assert_eq!(stored_attempt(&database), None, "the dead letter consumed the request");
    let list = get_json(&client, second.url("/admin/dead-letters")).await;
    let item = &list["items"][0];
    assert_eq!(item["loan_id"], id.as_str(), "{list}");
    assert_eq!(item["attempt"], LIMIT, "{list}");
    assert!(item["reason"].as_str().is_some_and(|r| r.contains("panicked")), "{list}");
}
