//! One `Idempotency-Key` sent to two nodes of the same PostgreSQL database at once: a race is a
//! replay, never an error (CONTRACT.md: the same key answers the first request's 201, or 422 for
//! another body).

use std::collections::HashSet;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{approvable_application, spawn_app, spawn_app_with, Db, TestApp};

const ROUNDS: usize = 12;
/// Requests per node and round, all with the round's key.
const PER_NODE: usize = 10;

async fn post(app: &TestApp, key: &str, body: &Value) -> (u16, Option<String>) {
    let request = app.client.post(app.url("/api/v1/loans")).header("Idempotency-Key", key).json(body);
    let response = request.send().await.expect("POST /api/v1/loans");
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    (response.status().as_u16(), location)
}

#[actix_web::test]
async fn one_key_on_two_nodes_at_once_makes_one_loan_and_answers_every_request() {
    let a = spawn_app(Db::Postgres).await;
    let url = a.db.url.clone();
    let b = spawn_app_with(Db::Postgres, |s| s.database.url = url).await;
    let body = approvable_application();
    let mut other = approvable_application();
    other["amount"] = json!(123_456);
    for round in 0..ROUNDS {
        let key = format!("race-{round}");
        // One request of the round carries another body: whichever body wins, the other's
        // requests get 422.
        let requests = (0..2 * PER_NODE).map(|i| {
            let node = if i % 2 == 0 { &a } else { &b };
            let body = if i == 1 { &other } else { &body };
            post(node, &key, body)
        });
        let answers = join_all(requests).await;
        let odd_one = answers[1].0;
        let rest: HashSet<u16> = answers.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, a)| a.0).collect();
        let expected = if odd_one == 201 { HashSet::from([422]) } else { HashSet::from([201]) };
        assert!(matches!(odd_one, 201 | 422), "round {round}: {answers:?}");
        assert_eq!(rest, expected, "round {round}: {answers:?}");
        let locations: HashSet<&String> = answers.iter().filter_map(|(_, location)| location.as_ref()).collect();
        assert_eq!(locations.len(), 1, "round {round}: one loan for the key: {answers:?}");
    }
    let loans = a.db.counts().into_iter().find(|(table, _)| *table == "loans").unwrap().1;
    assert_eq!(loans, ROUNDS as i64, "one loan per key");
}
