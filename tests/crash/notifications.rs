//! Whom the notifier sends to: the address the loan actor of the same process hands over in
//! memory, or, for a notification that comes again after a restart, the address read from the
//! loan's row. Either way the send goes to the loan's own applicant, and the log names the
//! recipient only masked.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::database::{Db, TestDatabase};
use crate::process::Service;
use crate::{get_json, TOKEN};

/// In every notification's body: with it as the service-panic marker, each send panics.
const NOTIFICATION: &str = "notify_applicant";
const DEADLINE: Duration = Duration::from_secs(60);
const SENT: &str = "notification handed to the mail provider";

fn env(database: &TestDatabase, sends_panic: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("LOANFLOW__HTTP__PORT", "0".to_owned()),
        ("LOANFLOW__DATABASE__URL", database.url.clone()),
        ("LOANFLOW__ADMIN__TOKEN", TOKEN.to_owned()),
        ("LOANFLOW__LOG__LEVEL", "info,loanflow::actors::mail=debug".to_owned()),
    ];
    if sends_panic {
        env.extend([
            ("LOANFLOW__FAULTS__SERVICE_PANIC_MARKER", NOTIFICATION.to_owned()),
            ("LOANFLOW__FAULTS__SERVICE_PANICS", "0".to_owned()),
            ("LOANFLOW__ACTORS__MAX_MESSAGE_ATTEMPTS", "1000".to_owned()),
        ]);
    }
    env
}

fn client() -> reqwest::Client {
    let mut operator = reqwest::header::HeaderMap::new();
    operator.insert(reqwest::header::AUTHORIZATION, format!("Bearer {TOKEN}").parse().expect("a header value"));
    reqwest::Client::builder().default_headers(operator).timeout(Duration::from_secs(15)).build().expect("a client")
}

async fn submit(client: &reqwest::Client, node: &Service, email: &str) -> String {
    let body = json!({
        "applicant": {"name": "Ada Lovelace", "email": email, "annual_income": 150000, "monthly_debts": 300},
        "property": {"address": "3 Canal Street, Lisbon", "declared_value": 400000},
        "amount": 200000,
        "term_months": 300
    });
    let response = client.post(node.url("/api/v1/loans")).json(&body).send().await.expect("POST /api/v1/loans");
    assert_eq!(response.status().as_u16(), 201);
    response.json::<Value>().await.expect("JSON")["id"].as_str().expect("an id").to_owned()
}

async fn wait_notified(client: &reqwest::Client, node: &Service, id: &str) {
    let start = Instant::now();
    loop {
        let loan = get_json(client, node.url(&format!("/api/v1/loans/{id}"))).await;
        if !loan["notified_at"].is_null() {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "never notified: {loan}\n{}", node.log_tail(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the metric series that starts with `series` (name and labels).
async fn metric(client: &reqwest::Client, node: &Service, series: &str) -> u64 {
    let text = client.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{series} ")));
    let value = line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse::<f64>().ok());
    value.unwrap_or_else(|| panic!("no {series} in:\n{text}")) as u64
}

/// The recipient (masked) of each send of loan `id`'s notice in `log`.
fn sent_to(log: &[String], id: &str) -> Vec<String> {
    let key = format!("{id}/terminal");
    log.iter()
        .filter(|line| line.contains(SENT) && line.contains(&key))
        .filter_map(|line| line.split_whitespace().find_map(|field| field.strip_prefix("to=")).map(str::to_owned))
        .collect()
}

/// The first node's sends panic (after it took the handed-over address), so the notification is
/// still in the outbox when the node is killed; the second node reads the address from the row.
/// A loan submitted to the second node is notified with the address handed over in memory.
#[tokio::test]
async fn a_notification_reaches_its_applicant_from_memory_and_after_a_restart_from_the_loans_row() {
    let (database, client) = (TestDatabase::create(Db::Sqlite), client());
    let first = Service::start(&env(&database, true));
    let before = submit(&client, &first, "ada@before.example.com").await;
    let start = Instant::now();
    while metric(&client, &first, "loanflow_service_call_panics_total{kind=\"notifier\"}").await == 0 {
        assert!(start.elapsed() < DEADLINE, "the send never panicked:\n{}", first.log_tail(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_log = first.log_lines();
    first.kill_9();
    assert!(sent_to(&first_log, &before).is_empty(), "sent before the kill: {first_log:#?}");

    let second = Service::start(&env(&database, false));
    wait_notified(&client, &second, &before).await;
    let after = submit(&client, &second, "grace@after.example.com").await;
    wait_notified(&client, &second, &after).await;

    let source = |name: &str| format!("loanflow_notification_recipients_total{{source=\"{name}\"}}");
    assert!(metric(&client, &second, &source("read")).await >= 1, "the restarted node read no address");
    assert_eq!(metric(&client, &second, &source("handed_over")).await, 1, "the new loan's address was not handed over");
    let log = second.log_lines();
    assert_eq!(sent_to(&log, &before), ["a***@before.example.com"], "{log:#?}");
    assert_eq!(sent_to(&log, &after), ["g***@after.example.com"], "{log:#?}");
    for line in first_log.iter().chain(&log) {
        assert!(!line.contains("ada@") && !line.contains("grace@"), "an address in the log: {line}");
    }
    assert_eq!(database.notified_loans(), 2);
}
