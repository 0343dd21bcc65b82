//! Faults injected through the test-only hooks (`faults.*`, feature `test-faults`): a message that
//! kills the node, and messages the broker gives up on.

use std::time::{Duration, Instant};

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;

use crate::broker::Vhost;
use crate::database::{Db, TestDatabase};
use crate::loans::{self, check_all, client, submit_all};
use crate::process::Service;
use crate::{node_env, wait_ready, BROKER, DEADLINE, TOKEN};

/// A loan whose applicant name carries this aborts the node whenever its actor handles a message.
const CRASH: &str = "#crash";

/// The dead letters the node lists (loan id, message kind).
async fn dead_letters(client: &reqwest::Client, node: &Service) -> Option<Vec<(String, String)>> {
    let response = client.get(node.url("/admin/dead-letters")).bearer_auth(TOKEN).send().await.ok()?;
    let list: Value = response.json().await.ok()?;
    let items = list["items"].as_array()?;
    Some(items.iter().map(|d| (d["loan_id"].as_str().unwrap_or("?").to_owned(), d["kind"].to_string())).collect())
}

/// Not terminal yet, or `None` when the node does not answer (it may have just died).
async fn unfinished(client: &reqwest::Client, node: &Service) -> Option<i64> {
    let stats: Value = client.get(node.url("/api/v1/loans/stats")).send().await.ok()?.json().await.ok()?;
    Some(["submitted", "evaluating"].iter().map(|s| stats["by_status"][s].as_i64().unwrap_or(0)).sum())
}

/// 40 loans wait in the outbox while the broker refuses the node; one of them kills the node each
/// time its actor handles a message. The node is started again whenever it dies. RabbitMQ counts a
/// delivery for every message a dying node held; with the quarantine, the killer's count reaches
/// the limit first: it alone is dead-lettered and every other loan finishes. The limit is 6, not
/// 2: a service request probed in its own kind's quarantine when the killer strikes counts a
/// delivery too (docs/architecture.md, "Quarantine"); with 2 that happened to a healthy message
/// in about one run of three, and with 4 once (a healthy `release_credit_check` after 11 kills).
#[tokio::test]
async fn a_message_that_kills_the_node_is_dead_lettered_alone() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    vhost.close();
    let faults = [("LOANFLOW__FAULTS__CRASH_MARKER", CRASH), ("LOANFLOW__BROKER__DELIVERY_LIMIT", "6")];
    let env = node_env(&database, &vhost, "solo", &faults);
    let mut node = Service::start(&env);
    let mut healthy = submit_all(&client, &[&node], 0..20).await;
    let mut killer = loans::application(20);
    killer["applicant"]["name"] = format!("Fatal {CRASH} Twenty").into();
    let response = client.post(node.url("/api/v1/loans")).json(&killer).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let killer_id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    healthy.extend(submit_all(&client, &[&node], 21..40).await);
    vhost.open();

    let start = Instant::now();
    let mut restarts = 0;
    let (dead, done) = loop {
        if node.exited() {
            restarts += 1;
            node = Service::start(&env);
        }
        let dead = dead_letters(&client, &node).await;
        if let Some(innocent) = dead.iter().flatten().find(|(loan, _)| *loan != killer_id) {
            panic!(
                "a healthy loan's message was dead-lettered: {innocent:?} (killer {killer_id}, {restarts} restarts)"
            );
        }
        // Everything finished but the killer, whose two first replies are dead letters.
        if let (Some(1), Some(dead)) = (unfinished(&client, &node).await, dead) {
            if dead.len() >= 2 {
                if let Some(done) = finished(&client, &node, &healthy).await {
                    break (dead, done);
                }
            }
        }
        assert!(start.elapsed() < DEADLINE, "not settled after {restarts} restarts:\n{}", node.log_tail(30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(restarts >= 2, "the killer killed the node {restarts} times: the test proves nothing");
    assert!(dead.iter().all(|(loan, _)| *loan == killer_id), "{dead:?}");
    check_all(&done);
    assert_eq!(database.count("notifications"), 39);
    // The killer stopped where its messages were dead-lettered (if the node still answers: a
    // stray copy of one of its requests may kill it once more).
    if let Some(killer) = loan_if_up(&client, &node, &killer_id).await {
        assert_eq!(killer["status"], "evaluating", "{killer}");
    }
}

/// Loan `id`, or `None` when the node does not answer.
async fn loan_if_up(client: &reqwest::Client, node: &Service, id: &str) -> Option<Value> {
    client.get(node.url(&format!("/api/v1/loans/{id}"))).send().await.ok()?.json().await.ok()
}

/// Each loan of `ids` with its events, or `None` if one is not notified yet (or the node is gone).
async fn finished(
    client: &reqwest::Client,
    node: &Service,
    ids: &[(usize, String)],
) -> Option<Vec<(usize, Value, Vec<Value>)>> {
    let mut done = Vec::new();
    for (i, id) in ids {
        let loan = loan_if_up(client, node, id).await?;
        if loan["notified_at"].is_null() {
            return None;
        }
        let events: Value =
            client.get(node.url(&format!("/api/v1/loans/{id}/events"))).send().await.ok()?.json().await.ok()?;
        done.push((*i, loan, events.as_array()?.clone()));
    }
    Some(done)
}

/// A message of several envelopes that the broker dead-letters is not recorded whole: each
/// envelope goes back to its queue alone. A single envelope is recorded as a dead letter,
/// consuming its outbox row.
#[tokio::test]
async fn a_dead_lettered_batch_goes_back_one_by_one_and_a_single_envelope_is_recorded() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    // The credit checks wait (10 minutes) in the node's credit actor: their rows stay.
    let slow = [("LOANFLOW__BUREAUS__CREDIT_LATENCY_MS", "600000"), ("LOANFLOW__BROKER__ENVELOPES_PER_MESSAGE", "1")];
    let node = Service::start(&node_env(&database, &vhost, "solo", &slow));
    wait_ready(&client, &node).await;
    submit_all(&client, &[&node], 0..3).await;
    let checks = database.texts("SELECT envelope AS value FROM outbox WHERE kind = 'check_credit' ORDER BY seq");
    assert_eq!(checks.len(), 3, "{checks:?}");
    wait_for_depth(&vhost, "loanflow.credit", (0, 3)).await;

    let connection = Connection::connect(&vhost.url(), ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let dead_letter = |payload: String| {
        let channel = channel.clone();
        async move {
            let properties = BasicProperties::default().with_content_type("application/json".into());
            let options = BasicPublishOptions::default();
            let published = channel
                .basic_publish("".into(), "loanflow.dead-letters".into(), options, payload.as_bytes(), properties)
                .await
                .unwrap();
            published.await.unwrap();
        }
    };
    dead_letter(format!("[{},{}]", checks[0], checks[1])).await;
    // Both envelopes are back in the credit queue, one message each, held by the node.
    wait_for_depth(&vhost, "loanflow.credit", (0, 5)).await;
    assert_eq!(database.count("dead_letters"), 0, "a batch was recorded whole");

    dead_letter(checks[2].clone()).await;
    let start = Instant::now();
    while database.count("dead_letters") == 0 {
        assert!(start.elapsed() < DEADLINE, "the single envelope was not recorded:\n{}", node.log_tail(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = dead_letters(&client, &node).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let remaining = database.texts("SELECT envelope AS value FROM outbox WHERE kind = 'check_credit'");
    assert_eq!(remaining.len(), 2, "the dead letter consumed its row: {remaining:?}");
    wait_for_depth(&vhost, "loanflow.dead-letters", (0, 0)).await;
}

/// Poll until `queue` holds (ready, unacked) messages.
async fn wait_for_depth(vhost: &Vhost, queue: &str, expected: (u64, u64)) {
    let start = Instant::now();
    loop {
        let depth = vhost.queue_depths().get(queue).copied();
        if depth == Some(expected) {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "{queue}: {depth:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
