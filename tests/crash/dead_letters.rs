//! Dead letters in embedded mode: a message that fails every attempt is dead-lettered (the loan
//! waits, its other work goes on), listed to the operator only, and replayed once the fault is
//! gone, after which the loan finishes exactly as the rules say.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::database::{Db, TestDatabase};
use crate::process::Service;
use crate::{application, get_json, operator_client, Outcome, TOKEN};

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_replayed_after_the_fix_on_sqlite() {
    let database = TestDatabase::create(Db::Sqlite);
    let env = |extra: &[(&'static str, &str)]| {
        let mut env = vec![
            ("LOANFLOW__HTTP__PORT", "0".to_owned()),
            ("LOANFLOW__DATABASE__URL", database.url.clone()),
            ("LOANFLOW__ADMIN__TOKEN", TOKEN.to_owned()),
        ];
        env.extend(extra.iter().map(|(key, value)| (*key, (*value).to_owned())));
        env
    };
    let client = operator_client();
    let node = Service::start(&env(&[("LOANFLOW__FAULTS__POISON_MARKER", "#poison")]));

    let (mut poisoned, outcome) = application(0);
    assert_eq!(outcome, Outcome::Approved);
    poisoned["applicant"]["name"] = "Patient #poison Zero".into();
    let response = client.post(node.url("/api/v1/loans")).json(&poisoned).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let loan_id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    let dead_letters_url = node.url("/admin/dead-letters");
    assert_eq!(reqwest::Client::new().get(&dead_letters_url).send().await.unwrap().status().as_u16(), 401);
    // Both first replies (credit check and appraisal) reach the poisoned loan's actor.
    let start = Instant::now();
    let dead = loop {
        let list = get_json(&client, dead_letters_url.clone()).await;
        let of_loan: Vec<Value> =
            list["items"].as_array().unwrap().iter().filter(|d| d["loan_id"] == loan_id.as_str()).cloned().collect();
        if of_loan.len() == 2 {
            break of_loan;
        }
        assert!(start.elapsed() < DEADLINE, "not dead-lettered: {list}\n{}", node.log_tail(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let loan = get_json(&client, node.url(&format!("/api/v1/loans/{loan_id}"))).await;
    assert_eq!(loan["status"], "evaluating", "the poison stopped the loan: {loan}");
    assert_eq!(loan["credit_score"], Value::Null, "{loan}");

    // The fix: the same node without the fault, on the same database.
    node.kill_9();
    let node = Service::start(&env(&[]));
    for letter in &dead {
        let url = node.url(&format!("/admin/dead-letters/{}/replay", letter["message_id"].as_str().unwrap()));
        assert_eq!(client.post(&url).send().await.unwrap().status().as_u16(), 202, "replaying {letter}");
        assert_eq!(client.post(&url).send().await.unwrap().status().as_u16(), 404, "a second replay of {letter}");
    }
    let start = Instant::now();
    let loan = loop {
        let loan = get_json(&client, node.url(&format!("/api/v1/loans/{loan_id}"))).await;
        if !loan["notified_at"].is_null() {
            break loan;
        }
        assert!(start.elapsed() < DEADLINE, "not finished after the replay: {loan}\n{}", node.log_tail(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(loan["status"], "approved", "{loan}");
    let events = get_json(&client, node.url(&format!("/api/v1/loans/{loan_id}/events"))).await;
    let replays = events.as_array().unwrap().iter().filter(|e| e["type"] == "DeadLetterReplayed").count();
    assert_eq!(replays, dead.len(), "each replay is in the loan's history: {events}");
    assert_eq!(database.count("dead_letters"), 0);
    assert_eq!(database.count("notifications"), 1);
}
