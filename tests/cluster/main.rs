//! Cluster mode against the real RabbitMQ and PostgreSQL: each test with its own vhost and
//! database, the real binary as child processes. Tests that stop the broker take the exclusive
//! side of `BROKER`, so they run alone.

mod broker;
#[path = "../common/database.rs"]
mod database;
mod deadlines;
mod faults;
mod loans;
mod migrations;
#[path = "../common/otlp.rs"]
mod otlp;
#[path = "../crash/process.rs"]
mod process;
mod roles;
mod streams;
mod traces;
mod upgrades;

use std::time::Duration;
use tokio::sync::RwLock;

use serde_json::Value;

use broker::Vhost;
use database::{Db, TestDatabase};
use loans::{check_all, client, get_json, submit_all, unfinished, wait_all_finished};
use process::Service;

/// Held shared by every test, exclusively by the ones that stop the broker.
static BROKER: RwLock<()> = RwLock::const_new(());
const DEADLINE: Duration = Duration::from_secs(120);
/// Every node's operator token (a cluster node refuses to start without one).
pub const TOKEN: &str = "cluster-test-token";

fn node_env(database: &TestDatabase, vhost: &Vhost, node: &str, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("LOANFLOW__HTTP__PORT", "0".to_owned()),
        ("LOANFLOW__DATABASE__URL", database.url.clone()),
        ("LOANFLOW__BROKER__URL", vhost.url()),
        ("LOANFLOW__NODE__ID", node.to_owned()),
        ("LOANFLOW__ADMIN__TOKEN", TOKEN.to_owned()),
        ("LOANFLOW__ACTORS__REDELIVERY_SWEEP_MS", "1000".to_owned()),
    ];
    for (key, value) in extra {
        let key: &'static str = Box::leak(key.to_string().into_boxed_str());
        env.push((key, (*value).to_owned()));
    }
    env
}

const SLOW_BUREAUS: [(&str, &str); 2] =
    [("LOANFLOW__BUREAUS__CREDIT_LATENCY_MS", "300"), ("LOANFLOW__BUREAUS__APPRAISAL_LATENCY_MS", "500")];

/// Nodes A and B on one database and vhost, both ready.
async fn two_ready_nodes(
    database: &TestDatabase,
    vhost: &Vhost,
    client: &reqwest::Client,
    extra: &[(&str, &str)],
) -> (Service, Service) {
    let a = Service::start(&node_env(database, vhost, "node-a", extra));
    let b = Service::start(&node_env(database, vhost, "node-b", extra));
    wait_ready(client, &a).await;
    wait_ready(client, &b).await;
    (a, b)
}

async fn wait_ready(client: &reqwest::Client, node: &Service) -> Value {
    let start = std::time::Instant::now();
    loop {
        if let Ok(response) = client.get(node.url("/health/ready")).send().await {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            if status == 200 {
                return body;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "node never ready:\n{}", node.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_only_node_killed_mid_flight_loses_nothing() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let env = node_env(&database, &vhost, "solo", &SLOW_BUREAUS);
    let node = Service::start(&env);
    let ready = wait_ready(&client, &node).await;
    assert_eq!(ready["mode"], "cluster");
    assert_eq!(ready["node_id"], "solo");
    assert_eq!(ready["checks"]["broker"]["status"], "up");
    let ids = submit_all(&client, &[&node], 0..500).await;
    assert!(unfinished(&client, &node).await > 0, "nothing in flight at the kill");
    node.kill_9();
    let node = Service::start(&env);
    let done = wait_all_finished(&client, &node, &ids, DEADLINE).await;
    check_all(&done);
    assert_eq!(database.count("notifications"), 500);
    assert_eq!(database.notified_loans(), 500);
}

#[tokio::test]
async fn a_surviving_node_finishes_the_work_of_a_killed_one() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let (a, b) = two_ready_nodes(&database, &vhost, &client, &SLOW_BUREAUS).await;
    // Each node lists the actors of every node (heartbeats through the database).
    let start = std::time::Instant::now();
    loop {
        let listing: Value =
            client.get(b.url("/admin/actors")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
        let nodes: Vec<&str> =
            listing["nodes"].as_array().unwrap().iter().filter_map(|n| n["node_id"].as_str()).collect();
        if nodes.contains(&"node-a") && nodes.contains(&"node-b") {
            assert_eq!(nodes[0], "node-b", "the answering node comes first");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "node-a never listed by node-b: {listing}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ids = submit_all(&client, &[&a, &b], 0..300).await;
    assert!(unfinished(&client, &b).await > 0, "nothing in flight at the kill");
    a.kill_9();
    let done = wait_all_finished(&client, &b, &ids, DEADLINE).await;
    check_all(&done);
    assert_eq!(database.count("notifications"), 300);
}

#[tokio::test]
async fn a_broker_restart_mid_load_loses_nothing() {
    let _alone = BROKER.write().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let node = Service::start(&node_env(&database, &vhost, "solo", &SLOW_BUREAUS));
    wait_ready(&client, &node).await;
    let mut ids = submit_all(&client, &[&node], 0..200).await;
    broker::stop_app();
    // Submissions are still accepted (the outbox keeps them); readiness says degraded.
    ids.extend(submit_all(&client, &[&node], 200..250).await);
    let response = client.get(node.url("/health/ready")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    std::thread::sleep(Duration::from_secs(2));
    broker::start_app();
    let done = wait_all_finished(&client, &node, &ids, DEADLINE).await;
    check_all(&done);
    assert_eq!(database.count("notifications"), 250);
}

#[tokio::test]
async fn every_message_delivered_twice_changes_nothing() {
    let _shared = BROKER.read().await;
    let mut outcomes = Vec::new();
    let mut publishes = Vec::new();
    for twice in ["false", "true"] {
        let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
        // One envelope per message, so that the publish counts compare.
        let extra = [("LOANFLOW__FAULTS__PUBLISH_TWICE", twice), ("LOANFLOW__BROKER__ENVELOPES_PER_MESSAGE", "1")];
        let node = Service::start(&node_env(&database, &vhost, "solo", &extra));
        wait_ready(&client, &node).await;
        let ids = submit_all(&client, &[&node], 0..120).await;
        let mut done = wait_all_finished(&client, &node, &ids, DEADLINE).await;
        check_all(&done);
        assert_eq!(database.count("notifications"), 120, "publish_twice={twice}");
        // Each applicant got the notice once: a second send under its key was a duplicate.
        let metrics = client.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let delivered = "loanflow_notifications_sent_total{outcome=\"delivered\"} 120";
        assert!(metrics.lines().any(|line| line == delivered), "publish_twice={twice}: {metrics}");
        done.sort_by_key(|(i, _, _)| *i);
        outcomes.push(done.iter().map(|(_, loan, events)| loans::outcome_of(loan, events)).collect::<Vec<_>>());
        publishes.push(confirmed_publishes(&client, &node).await);
    }
    assert_eq!(outcomes[0], outcomes[1], "duplicates changed an outcome");
    // The fault really doubled the messages (a build without the hook would pass the rest).
    assert!(publishes[1] >= 2 * publishes[0] * 9 / 10, "publishes once vs twice: {publishes:?}");
}

/// `loanflow_broker_publishes_total{outcome="confirmed"}` of a node.
async fn confirmed_publishes(client: &reqwest::Client, node: &Service) -> u64 {
    let text = client.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("loanflow_broker_publishes_total{outcome=\"confirmed\"}"));
    let value = line.and_then(|l| l.split_whitespace().last()).and_then(|v| v.parse::<f64>().ok());
    value.unwrap_or_else(|| panic!("no confirmed publishes in:\n{text}")) as u64
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_replayed_after_the_fix() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let faulty = node_env(&database, &vhost, "solo", &[("LOANFLOW__FAULTS__POISON_MARKER", "#poison")]);
    let node = Service::start(&faulty);
    wait_ready(&client, &node).await;
    let mut poisoned = loans::application(0);
    poisoned["applicant"]["name"] = "Patient #poison Zero".into();
    let response = client.post(node.url("/api/v1/loans")).json(&poisoned).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let loan_id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let healthy = submit_all(&client, &[&node], 1..4).await;
    loans::wait_finished_beside(&client, &node, &healthy, DEADLINE, 1).await;

    let dead_letters_url = node.url("/admin/dead-letters");
    let anonymous = reqwest::Client::new();
    assert_eq!(anonymous.get(&dead_letters_url).send().await.unwrap().status().as_u16(), 401);
    // Both first replies (credit check and appraisal) reach the poisoned loan actor.
    let start = std::time::Instant::now();
    let dead = loop {
        let list: Value = client.get(&dead_letters_url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
        let of_loan: Vec<Value> =
            list["items"].as_array().unwrap().iter().filter(|d| d["loan_id"] == loan_id).cloned().collect();
        if of_loan.len() == 2 {
            break of_loan;
        }
        assert!(start.elapsed() < DEADLINE, "not dead-lettered: {of_loan:?}\n{}", node.log_tail(20));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let loan = get_json(&client, node.url(&format!("/api/v1/loans/{loan_id}"))).await;
    assert_eq!(loan["status"], "evaluating", "the poison stopped the loan: {loan}");
    assert_eq!(loan["credit_score"], Value::Null, "{loan}");

    // The fix: the same node without the fault.
    node.kill_9();
    let node = Service::start(&node_env(&database, &vhost, "solo", &[]));
    wait_ready(&client, &node).await;
    let replay_urls: Vec<String> = dead
        .iter()
        .map(|d| node.url(&format!("/admin/dead-letters/{}/replay", d["message_id"].as_str().unwrap())))
        .collect();
    for url in &replay_urls {
        let replayed = client.post(url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(replayed.status().as_u16(), 202);
    }
    let done = wait_all_finished(&client, &node, &[(0, loan_id)], DEADLINE).await;
    check_all(&done);
    let replays = done[0].2.iter().filter(|e| e["type"] == "DeadLetterReplayed").count();
    assert_eq!(replays, replay_urls.len(), "each replay is in the loan's history");
    assert_eq!(database.count("dead_letters"), 0);
    for url in &replay_urls {
        assert_eq!(client.post(url).bearer_auth(TOKEN).send().await.unwrap().status().as_u16(), 404);
    }
}

#[tokio::test]
async fn sigterm_finishes_or_requeues_in_flight_work_within_the_bound() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let mut extra = SLOW_BUREAUS.to_vec();
    extra.push(("LOANFLOW__SHUTDOWN__GRACE_MS", "3000"));
    let env = node_env(&database, &vhost, "solo", &extra);
    let node = Service::start(&env);
    wait_ready(&client, &node).await;
    let ids = submit_all(&client, &[&node], 0..200).await;
    assert!(unfinished(&client, &node).await > 0, "nothing in flight at the stop");
    let took = node.terminate(Duration::from_secs(15));
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}, grace 3 s");
    let node = Service::start(&env);
    let done = wait_all_finished(&client, &node, &ids, DEADLINE).await;
    check_all(&done);
    assert_eq!(database.count("notifications"), 200);
    assert_eq!(database.count("outbox"), 0, "nothing left behind");
}

/// A stream on one node sees the loans submitted on (and partly processed by) another: the
/// `LoanSubmitted` events are written by node B alone, so node A's stream learns of them only
/// through the shared database (woken by the broker's events fanout).
#[tokio::test]
async fn a_stream_on_one_node_sees_loans_of_another() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let (a, b) = two_ready_nodes(&database, &vhost, &client, &[]).await;
    let stream = client.get(a.url("/api/v1/events/stream")).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let ids = submit_all(&client, &[&b], 0..10).await;
    let wanted: std::collections::HashSet<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    let mut notified = std::collections::HashSet::new();
    let mut submitted = std::collections::HashSet::new();
    let mut body = stream.bytes_stream();
    let mut buffer = String::new();
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    {
        use futures_util::StreamExt;
        while notified.len() < wanted.len() {
            let next = tokio::time::timeout_at(deadline, body.next()).await;
            let Ok(chunk) = next else {
                panic!("node A's stream saw {seen} events; submitted {submitted:?} notified {notified:?} of {wanted:?}; buffer {buffer:?}\n{}", a.log_tail(20))
            };
            let chunk = chunk.expect("the stream stays open").expect("stream bytes");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let Some(data) = line.trim_end().strip_prefix("data:") else { continue };
                let event: Value = serde_json::from_str(data.trim()).expect("JSON event");
                seen += 1;
                let loan = event["loan_id"].as_str().unwrap_or_default().to_owned();
                if !wanted.contains(&loan) {
                    continue;
                }
                match event["type"].as_str() {
                    Some("LoanSubmitted") => {
                        submitted.insert(loan);
                    }
                    Some("ApplicantNotified") => {
                        notified.insert(loan);
                    }
                    _ => {}
                }
            }
        }
    }
    assert_eq!(submitted, wanted, "every LoanSubmitted written by node B reached node A's stream");
}
