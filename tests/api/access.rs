//! The applicant's credential: the answer to a submission carries a token for that loan only,
//! derived (a replay of the submission, on any node of the deployment, carries the same one),
//! and no other answer shows it.

use loanflow::settings::{Role, StaffToken};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

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

const VIEWER: &str = "viewer-token-for-tests";
const UNDERWRITER: &str = "underwriter-token-for-tests";

fn staff(name: &str, role: Role, token: &str) -> StaffToken {
    StaffToken { name: name.into(), role, sha256: Sha256::digest(token.as_bytes()).into() }
}

/// Who asks, in the table's columns.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Nobody,
    WrongToken,
    ApplicantOfThisLoan,
    ApplicantOfAnotherLoan,
    Viewer,
    Underwriter,
    Operator,
}

const EVERYONE: [Who; 7] = [
    Who::Nobody,
    Who::WrongToken,
    Who::ApplicantOfThisLoan,
    Who::ApplicantOfAnotherLoan,
    Who::Viewer,
    Who::Underwriter,
    Who::Operator,
];

/// What a route lets through.
#[derive(Debug, Clone, Copy)]
enum Route {
    Open,
    /// Any valid credential.
    Anyone,
    Readers,
    Loan,
    Operator,
}

fn expected(route: Route, who: Who, served: u16) -> u16 {
    match (route, who) {
        (Route::Open, _) => served,
        (_, Who::Nobody | Who::WrongToken) => 401,
        (Route::Anyone, _) => served,
        (Route::Loan, Who::ApplicantOfThisLoan) => served,
        (Route::Loan, Who::ApplicantOfAnotherLoan) => 404,
        (Route::Operator, Who::Operator) => served,
        (Route::Operator, _) => 403,
        (_, Who::ApplicantOfThisLoan | Who::ApplicantOfAnotherLoan) => 403,
        (_, Who::Viewer | Who::Underwriter | Who::Operator) => served,
    }
}

both_backends!(every_route_answers_each_kind_of_caller_as_the_contract_says);

async fn every_route_answers_each_kind_of_caller_as_the_contract_says(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.admin.staff = vec![staff("vera", Role::Viewer, VIEWER), staff("uma", Role::Underwriter, UNDERWRITER)];
    })
    .await;
    let mine = submit_with_key(&app, "table-mine").await;
    let theirs = submit_with_key(&app, "table-theirs").await;
    let id = mine["id"].as_str().unwrap().to_owned();
    app.wait_finished(&id, std::time::Duration::from_secs(20)).await;
    let token_of = |who: Who| -> Option<String> {
        match who {
            Who::Nobody => None,
            Who::WrongToken => Some("lfa1.not-a-token".into()),
            Who::ApplicantOfThisLoan => Some(token(&mine).to_owned()),
            Who::ApplicantOfAnotherLoan => Some(token(&theirs).to_owned()),
            Who::Viewer => Some(VIEWER.into()),
            Who::Underwriter => Some(UNDERWRITER.into()),
            Who::Operator => Some(app.operator_token.clone()),
        }
    };
    let routes: Vec<(Method, String, Route, u16)> = vec![
        (Method::POST, "/api/v1/loans".into(), Route::Open, 201),
        (Method::GET, "/health/ready".into(), Route::Open, 200),
        (Method::GET, "/metrics".into(), Route::Open, 200),
        (Method::GET, "/api-docs/openapi.json".into(), Route::Open, 200),
        (Method::GET, "/".into(), Route::Open, 200),
        (Method::GET, "/api/v1/me".into(), Route::Anyone, 200),
        (Method::GET, "/api/v1/loans".into(), Route::Readers, 200),
        (Method::GET, "/api/v1/loans/stats".into(), Route::Readers, 200),
        (Method::GET, "/api/v1/events/stream".into(), Route::Readers, 200),
        (Method::GET, format!("/api/v1/loans/{id}"), Route::Loan, 200),
        (Method::GET, format!("/api/v1/loans/{id}/events"), Route::Loan, 200),
        (Method::GET, format!("/api/v1/loans/{id}/schedule"), Route::Loan, 200),
        (Method::GET, format!("/api/v1/loans/{id}/events/stream"), Route::Loan, 200),
        (Method::GET, "/admin/actors".into(), Route::Operator, 200),
        (Method::GET, "/admin/loans".into(), Route::Operator, 200),
        (Method::GET, "/admin/dead-letters".into(), Route::Operator, 200),
    ];
    let mut wrong = Vec::new();
    for (method, path, route, served) in &routes {
        for who in EVERYONE {
            let mut request = app.anonymous.request(method.clone(), app.url(path));
            if *method == Method::POST {
                request = request.json(&approvable_application());
            }
            if let Some(token) = token_of(who) {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let (status, want) = (response.status().as_u16(), expected(*route, who, *served));
            if status != want {
                wrong.push(format!("{method} {path} as {who:?}: {status}, expected {want}"));
            } else if status == 401 {
                assert_eq!(response.headers()["www-authenticate"], "Bearer", "{method} {path} as {who:?}");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A loan the applicant may not see answers like a missing one, and stream routes take the
/// token in the query (browsers cannot set headers there).
#[actix_web::test]
async fn another_loan_looks_missing_and_streams_take_the_token_in_the_query() {
    let app = spawn_app(Db::Sqlite).await;
    let mine = submit_with_key(&app, "query-mine").await;
    let theirs = submit_with_key(&app, "query-theirs").await;
    let their_id = theirs["id"].as_str().unwrap();
    let as_applicant = |path: String| app.anonymous.get(app.url(&path)).bearer_auth(token(&mine)).send();
    let other: Value = as_applicant(format!("/api/v1/loans/{their_id}")).await.unwrap().json().await.unwrap();
    let missing = app.anonymous.get(app.url("/api/v1/loans/01a225f4-65b2-7570-8bec-abfe3faff0fd"));
    let missing: Value = missing.bearer_auth(&app.operator_token).send().await.unwrap().json().await.unwrap();
    assert_eq!((&other["type"], &other["status"]), (&missing["type"], &missing["status"]), "{other} / {missing}");

    let my_id = mine["id"].as_str().unwrap();
    let stream = format!("/api/v1/loans/{my_id}/events/stream?access_token={}", token(&mine));
    assert_eq!(app.anonymous.get(app.url(&stream)).send().await.unwrap().status().as_u16(), 200);
    let not_a_stream = format!("/api/v1/loans/{my_id}?access_token={}", token(&mine));
    assert_eq!(app.anonymous.get(app.url(&not_a_stream)).send().await.unwrap().status().as_u16(), 401);
}

/// An operator revokes an applicant's token: the old one is refused from then on, the new one
/// works (and a replay of the submission now carries it); the history says who did it.
#[actix_web::test]
async fn a_revoked_token_is_refused_and_the_new_one_works() {
    let app = spawn_app_with(Db::Sqlite, |s| s.admin.staff = vec![staff("vera", Role::Viewer, VIEWER)]).await;
    let answer = submit_with_key(&app, "revoke-me").await;
    let (id, old) = (answer["id"].as_str().unwrap().to_owned(), token(&answer).to_owned());
    let read = |token: String| app.anonymous.get(app.url(&format!("/api/v1/loans/{id}"))).bearer_auth(token).send();
    assert_eq!(read(old.clone()).await.unwrap().status().as_u16(), 200);

    let revoke = format!("/admin/loans/{id}/access-token/revoke");
    let as_viewer = app.anonymous.post(app.url(&revoke)).bearer_auth(VIEWER).send().await.unwrap();
    assert_eq!(as_viewer.status().as_u16(), 403, "only the operator revokes");
    let revoked = app.client.post(app.url(&revoke)).send().await.unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    let revoked: Value = revoked.json().await.unwrap();
    let new = revoked["access_token"].as_str().unwrap().to_owned();
    assert_eq!(revoked["generation"], 1);
    assert_ne!(new, old);

    let refused = read(old).await.unwrap();
    assert_eq!(refused.status().as_u16(), 401, "the revoked token");
    assert_eq!(read(new.clone()).await.unwrap().status().as_u16(), 200, "the new token");
    assert_eq!(token(&submit_with_key(&app, "revoke-me").await), new, "a replay carries the current token");

    let history = app.events(&id).await;
    let revocation =
        history.iter().find(|e| e["type"] == "AccessTokenRevoked").expect("the revocation is in the history");
    assert_eq!(revocation["data"]["by"], serde_json::json!({ "role": "operator", "name": "operator" }));
    assert_eq!(revocation["data"]["generation"], 1);
}

/// Staff actions are recorded with who took them, as often as they are taken.
#[actix_web::test]
async fn an_operator_retry_is_recorded_each_time_with_who_did_it() {
    let app = spawn_app_with(Db::Sqlite, |s| s.bureaus.credit_latency_ms = 60_000).await;
    let id = app.submit(&approvable_application()).await;
    for _ in 0..2 {
        let response = app.client.post(app.url(&format!("/admin/loans/{id}/retry"))).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
    let history = app.events(&id).await;
    let retries: Vec<&Value> = history.iter().filter(|e| e["type"] == "MessagesRedelivered").collect();
    assert_eq!(retries.len(), 2, "{history:?}");
    for retry in retries {
        assert_eq!(retry["data"]["by"]["role"], "operator");
        assert_eq!(retry["data"]["status"], "evaluating");
        assert!(retry["data"]["message_ids"].as_array().is_some_and(|ids| !ids.is_empty()), "{retry}");
    }
}
