//! The applicant's credential: the answer to a submission carries a token for that loan only,
//! derived (a replay of the submission, on any node of the deployment, carries the same one),
//! and no other answer shows it.

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{approvable_application, spawn_app, spawn_app_with, Db, TestApp};

both_backends!(a_submission_answer_carries_the_applicants_token_and_a_replay_the_same_one);

async fn submit_with_key(app: &TestApp, key: &str) -> Value {
    let request = app.client.post(app.url("/api/v1/loans")).header("Idempotency-Key", key);
    let response = request.json(&approvable_application()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json().await.unwrap()
}

fn token(answer: &Value) -> &str {
    answer["access_token"].as_str().unwrap_or_else(|| panic!("no access_token in {answer}"))
}

async fn a_submission_answer_carries_the_applicants_token_and_a_replay_the_same_one(db: Db) {
    let app = spawn_app(db).await;
    let first = submit_with_key(&app, "access-1").await;
    let id = first["id"].as_str().unwrap();
    let parts: Vec<&str> = token(&first).split('.').collect();
    assert_eq!(parts.len(), 4, "lfa1.<loan>.<generation>.<mac>: {first}");
    assert_eq!((parts[0], parts[1], parts[2], parts[3].len()), ("lfa1", id, "0", 64));
    assert_eq!(token(&submit_with_key(&app, "access-1").await), token(&first), "a replay: the same token");
    let other = submit_with_key(&app, "access-2").await;
    assert_ne!(token(&other), token(&first), "each loan its own token");

    let (status, loan) = app.get_json(&format!("/api/v1/loans/{id}")).await;
    assert_eq!(status, 200);
    assert!(loan.get("access_token").is_none(), "only the submission's answer shows the token: {loan}");
    let (_, page) = app.get_json("/api/v1/loans").await;
    assert!(page["items"].as_array().unwrap().iter().all(|l| l.get("access_token").is_none()));
}

/// Nodes of one deployment share the secret through the database: a replay answered by another
/// node (started after the first made the secret) carries the same token.
#[actix_web::test]
async fn nodes_on_one_database_derive_the_same_tokens() {
    let first = spawn_app(Db::Postgres).await;
    let answer = submit_with_key(&first, "shared-key").await;
    let url = first.db.url.clone();
    let second = spawn_app_with(Db::Postgres, move |s| s.database.url = url).await;
    let replayed = submit_with_key(&second, "shared-key").await;
    assert_eq!(replayed["id"], answer["id"]);
    assert_eq!(token(&replayed), token(&answer));
}
