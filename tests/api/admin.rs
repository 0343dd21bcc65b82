//! `/admin/*`: the bearer token on every route, the live actors, stuck loans, operator retries.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{approvable_application, event_types, spawn_app, spawn_app_with, Db, TestApp};

both_backends!(every_admin_route_needs_the_token, a_slow_bureau_shows_a_stuck_loan_until_it_finishes);

const TOKEN: &str = "test-admin-token";

/// Every admin route (plus an unknown one under /admin).
fn admin_requests() -> Vec<(Method, String)> {
    vec![
        (Method::GET, "/admin/actors".into()),
        (Method::GET, "/admin/loans?stuck=true&older_than_seconds=0".into()),
        (Method::POST, "/admin/loans/00000000-0000-7000-8000-000000000000/retry".into()),
        (Method::GET, "/admin/no-such-thing".into()),
    ]
}

async fn send(app: &TestApp, method: Method, path: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app.anonymous.request(method, app.url(path));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("admin request")
}

async fn assert_unauthorized(response: reqwest::Response, what: &str) {
    assert_eq!(response.status().as_u16(), 401, "{what}");
    assert_eq!(response.headers()["www-authenticate"], "Bearer", "{what}");
    assert_eq!(response.headers()["content-type"], "application/problem+json", "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 401, "{what}");
}

async fn admin_json(app: &TestApp, path: &str) -> Value {
    let response = send(app, Method::GET, path, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.json().await.unwrap()
}

async fn every_admin_route_needs_the_token(db: Db) {
    // No token configured (embedded mode): the node makes one for this start, and only it opens.
    let unset = spawn_app(db).await;
    assert_eq!(unset.operator_token.len(), 64, "32 random bytes, hex");
    let generated = format!("Bearer {}", unset.operator_token);
    for (method, path) in admin_requests() {
        for auth in [None, Some("Bearer "), Some("Bearer anything")] {
            let what = format!("{method} {path} with {auth:?} and no token configured");
            assert_unauthorized(send(&unset, method.clone(), &path, auth).await, &what).await;
        }
    }
    let actors = send(&unset, Method::GET, "/admin/actors", Some(&generated)).await;
    assert_eq!(actors.status().as_u16(), 200, "the generated token opens /admin");
    let other = spawn_app(db).await;
    assert_ne!(other.operator_token, unset.operator_token, "a new token at each start");

    let app = spawn_app_with(db, |s| s.admin.token = Some(TOKEN.into())).await;
    let wrong =
        [None, Some("Bearer wrong".to_owned()), Some(format!("Basic {TOKEN}")), Some(format!("Bearer {TOKEN}x"))];
    for (method, path) in admin_requests() {
        for auth in &wrong {
            let what = format!("{method} {path} with {auth:?}");
            assert_unauthorized(send(&app, method.clone(), &path, auth.as_deref()).await, &what).await;
        }
        let right = send(&app, method.clone(), &path, Some(&format!("Bearer {TOKEN}"))).await;
        let expected = if method == Method::GET && !path.contains("no-such") { 200 } else { 404 };
        assert_eq!(right.status().as_u16(), expected, "{method} {path} with the token");
    }
    let lower_case = send(&app, Method::GET, "/admin/actors", Some(&format!("bearer {TOKEN}"))).await;
    assert_eq!(lower_case.status().as_u16(), 200, "the scheme is case-insensitive");

    let actors = admin_json(&app, "/admin/actors").await;
    let node = &actors["nodes"][0];
    assert!(!node["node_id"].as_str().unwrap().is_empty(), "{actors}");
    let list = node["actors"].as_array().unwrap();
    for kind in ["credit", "appraisal", "notifier"] {
        let actor = list.iter().find(|a| a["kind"] == kind).unwrap_or_else(|| panic!("no {kind} actor: {actors}"));
        for field in ["id", "state", "mailbox_depth", "messages_handled", "restarts", "started_at", "age_seconds"] {
            assert!(!actor[field].is_null(), "{field} missing: {actor}");
        }
    }
    let only_credit = admin_json(&app, "/admin/actors?kind=credit").await;
    assert!(only_credit["nodes"][0]["actors"].as_array().unwrap().iter().all(|a| a["kind"] == "credit"));
    let bad = send(&app, Method::GET, "/admin/loans?limit=0", Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(bad.status().as_u16(), 400);
}

fn listed<'a>(view: &'a Value, id: &str) -> Option<&'a Value> {
    view["loans"].as_array().unwrap().iter().find(|l| l["id"] == id)
}

/// With a 4 s credit bureau, the loan waits on its credit check: it is listed as stuck (with
/// the pending message) past a 1 s threshold, a retry re-delivers that message without doing
/// anything twice, and once the loan finishes it is no longer listed and cannot be retried.
async fn a_slow_bureau_shows_a_stuck_loan_until_it_finishes(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.admin.token = Some(TOKEN.into());
        s.bureaus.credit_latency_ms = 4_000;
    })
    .await;
    let start = Instant::now();
    let id = app.submit(&approvable_application()).await;
    let stuck_path = "/admin/loans?stuck=true&older_than_seconds=1";
    let stuck = loop {
        let view = admin_json(&app, stuck_path).await;
        if let Some(loan) = listed(&view, &id) {
            break loan.clone();
        }
        // Polled against what it waits for (the loan still unfinished), not a wall-clock window.
        let loan = app.loan(&id).await;
        assert!(loan["notified_at"].is_null(), "finished without being listed as stuck: {view}");
        assert!(start.elapsed() < Duration::from_secs(15), "never listed as stuck: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(start.elapsed() >= Duration::from_millis(990), "listed before the threshold");
    assert_eq!(stuck["waiting_on"], "credit_check", "{stuck}");
    assert_eq!(stuck["status"], "evaluating", "{stuck}");
    let pending = stuck["pending_messages"].as_array().unwrap();
    let check = pending.iter().find(|m| m["kind"] == "check_credit").unwrap_or_else(|| panic!("{stuck}"));
    assert_eq!(check["destination"], "credit");
    assert!(check["attempt"].as_u64().unwrap() >= 1);
    assert!(listed(&admin_json(&app, "/admin/loans?stuck=true&older_than_seconds=3600").await, &id).is_none());
    let actors = admin_json(&app, "/admin/actors?kind=credit").await;
    assert!(actors["nodes"][0]["actors"][0]["mailbox_depth"].as_u64().unwrap() >= 1, "{actors}");

    let auth = format!("Bearer {TOKEN}");
    let retry_path = format!("/admin/loans/{id}/retry");
    let retried = send(&app, Method::POST, &retry_path, Some(&auth)).await;
    assert_eq!(retried.status().as_u16(), 202);
    let retried: Value = retried.json().await.unwrap();
    assert!(retried["redelivered"].as_u64().unwrap() >= 1, "{retried}");

    app.wait_finished(&id, Duration::from_secs(15)).await;
    assert!(listed(&admin_json(&app, stuck_path).await, &id).is_none(), "a finished loan is not stuck");
    let finished = send(&app, Method::POST, &retry_path, Some(&auth)).await;
    assert_eq!(finished.status().as_u16(), 409);
    let unknown = send(&app, Method::POST, "/admin/loans/not-a-loan/retry", Some(&auth)).await;
    assert_eq!(unknown.status().as_u16(), 404);
    let types = event_types(&app.events(&id).await);
    for once in ["CreditChecked", "LoanApproved", "ApplicantNotified"] {
        assert_eq!(types.iter().filter(|t| *t == once).count(), 1, "{once} in {types:?}");
    }
}
