//! Protection: the per-client rate limit on submissions, CORS closed unless configured, body
//! sizes limited on every route.

use futures_util::future::join_all;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{approvable_application, spawn_app, spawn_app_with, Db};

both_backends!(a_burst_over_the_rate_limit_gets_429_and_stores_nothing_for_them);

async fn a_burst_over_the_rate_limit_gets_429_and_stores_nothing_for_them(db: Db) {
    let app = spawn_app_with(db, |s| s.http.rate_limit_per_second = 5).await;
    let body = approvable_application();
    let burst = (0..20).map(|_| app.client.post(app.url("/api/v1/loans")).json(&body).send());
    let mut created = 0;
    let mut limited = 0;
    for response in join_all(burst).await {
        let response = response.unwrap();
        match response.status().as_u16() {
            201 => created += 1,
            429 => {
                limited += 1;
                let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(retry_after >= 1);
                assert_eq!(response.headers()["content-type"], "application/problem+json");
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["type"], "/problems/rate-limited");
                assert_eq!(problem["status"], 429);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(limited > 0, "no 429 in a burst of 20 at 5/s");
    assert!(created >= 5, "the first second's burst is allowed ({created} created)");
    let loans = app.db.counts().into_iter().find(|(table, _)| *table == "loans").unwrap().1;
    assert_eq!(loans, created, "a refused submission stored nothing");
    let reads = join_all((0..20).map(|_| app.client.get(app.url("/api/v1/loans/stats")).send())).await;
    assert!(reads.iter().all(|r| r.as_ref().unwrap().status() == 200), "only submissions are limited");
}

#[actix_web::test]
async fn cors_is_closed_unless_origins_are_configured() {
    let closed = spawn_app(Db::Sqlite).await;
    let simple = closed.client.get(closed.url("/health/live")).header("origin", "https://elsewhere.example");
    let response = simple.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "served: the browser keeps the answer from the page");
    assert!(response.headers().keys().all(|h| !h.as_str().starts_with("access-control-")), "{response:?}");
    let preflight = closed
        .client
        .request(reqwest::Method::OPTIONS, closed.url("/api/v1/loans"))
        .header("origin", "https://elsewhere.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none(), "{preflight:?}");

    let open = spawn_app_with(Db::Sqlite, |s| s.http.cors_allowed_origins = vec!["https://app.example".into()]).await;
    let allowed = open.client.get(open.url("/health/live")).header("origin", "https://app.example");
    let response = allowed.send().await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example");
    let other = open.client.get(open.url("/health/live")).header("origin", "https://elsewhere.example");
    assert!(other.send().await.unwrap().headers().get("access-control-allow-origin").is_none());
    let preflight = open
        .client
        .request(reqwest::Method::OPTIONS, open.url("/api/v1/loans"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, idempotency-key")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 200);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://app.example");
    let methods = preflight.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
}

#[actix_web::test]
async fn every_route_refuses_a_declared_body_over_the_limit() {
    let app = spawn_app(Db::Sqlite).await;
    let big = vec![b'x'; 70 * 1024];
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/loans/stats"),
        (reqwest::Method::GET, "/health/live"),
        (reqwest::Method::POST, "/admin/loans/00000000-0000-7000-8000-000000000000/retry"),
        (reqwest::Method::GET, "/metrics"),
    ] {
        let response = app.client.request(method.clone(), app.url(path)).body(big.clone()).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 413, "{method} {path}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    assert!(app.db.counts().iter().all(|(_, n)| *n == 0));
}
