//! Protection: the per-client rate limit on submissions (behind trusted proxies too), the
//! `Host` and `Origin` checks, JSON bodies only, CORS closed unless configured, body sizes
//! limited on every route.

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
    let own = closed.client.get(closed.url("/health/live")).header("origin", closed.address.as_str());
    let response = own.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "the server's own origin is served");
    assert!(response.headers().keys().all(|h| !h.as_str().starts_with("access-control-")), "{response:?}");
    let preflight = closed
        .client
        .request(reqwest::Method::OPTIONS, closed.url("/api/v1/loans"))
        .header("origin", "https://elsewhere.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 403, "a foreign origin's preflight");
    assert!(preflight.headers().get("access-control-allow-origin").is_none(), "{preflight:?}");

    let open = spawn_app_with(Db::Sqlite, |s| s.http.allowed_origins = vec!["https://app.example".into()]).await;
    let allowed = open.client.get(open.url("/health/live")).header("origin", "https://app.example");
    let response = allowed.send().await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example");
    let other = open.client.get(open.url("/health/live")).header("origin", "https://elsewhere.example");
    let response = other.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(response.headers().get("access-control-allow-origin").is_none());
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

both_backends!(a_post_body_that_is_not_json_gets_415_and_stores_nothing);

async fn a_post_body_that_is_not_json_gets_415_and_stores_nothing(db: Db) {
    let app = spawn_app(db).await;
    let body = approvable_application().to_string();
    // What a plain HTML form on any page can send without a preflight.
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let request = app.client.post(app.url("/api/v1/loans")).header("content-type", content_type).body(body.clone());
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 415, "{content_type}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/unsupported-media-type");
    }
    let untyped = app.client.post(app.url("/api/v1/loans")).body(body.clone()).send().await.unwrap();
    assert_eq!(untyped.status().as_u16(), 415, "a body without a Content-Type");
    assert!(app.db.counts().iter().all(|(_, n)| *n == 0), "nothing stored: {:?}", app.db.counts());
    let json = app.client.post(app.url("/api/v1/loans")).header("content-type", "application/json; charset=utf-8");
    assert_eq!(json.body(body).send().await.unwrap().status().as_u16(), 201);
}

#[actix_web::test]
async fn a_foreign_origin_is_refused_on_every_route_and_stores_nothing() {
    let app = spawn_app(Db::Sqlite).await;
    let submit = app.client.post(app.url("/api/v1/loans")).header("origin", "https://evil.example");
    let response = submit.json(&approvable_application()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/foreign-origin");
    assert!(app.db.counts().iter().all(|(_, n)| *n == 0));
    for path in ["/api/v1/loans", "/api/v1/loans/stats", "/admin/actors", "/metrics"] {
        let response = app.client.get(app.url(path)).header("origin", "null").send().await.unwrap();
        assert_eq!(response.status().as_u16(), 403, "{path}");
    }
    let own = app.client.post(app.url("/api/v1/loans")).header("origin", app.address.as_str());
    assert_eq!(own.json(&approvable_application()).send().await.unwrap().status().as_u16(), 201);
    let without = app.client.post(app.url("/api/v1/loans")).json(&approvable_application());
    assert_eq!(without.send().await.unwrap().status().as_u16(), 201, "no Origin: not a browser page");
}

#[actix_web::test]
async fn a_foreign_host_gets_421_but_the_probes_answer_any_host() {
    let app = spawn_app(Db::Sqlite).await;
    for (method, path) in [(reqwest::Method::GET, "/api/v1/loans/stats"), (reqwest::Method::POST, "/api/v1/loans")] {
        let request = app.client.request(method.clone(), app.url(path)).header("host", "evil.example");
        let response = request.json(&approvable_application()).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 421, "{method} {path}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/misdirected-request");
    }
    assert!(app.db.counts().iter().all(|(_, n)| *n == 0));
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let response = app.client.get(app.url(path)).header("host", "10.1.2.3:8080").send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let named = app.client.get(app.url("/api/v1/loans/stats")).header("host", "localhost:1");
    assert_eq!(named.send().await.unwrap().status().as_u16(), 200);

    let listed = spawn_app_with(Db::Sqlite, |s| {
        s.http.hosts = loanflow::settings::AllowedHosts::Only(vec!["loans.example".into()]);
    })
    .await;
    let request = listed.client.get(listed.url("/api/v1/loans/stats")).header("host", "loans.example");
    assert_eq!(request.send().await.unwrap().status().as_u16(), 200);
    let loopback = listed.client.get(listed.url("/api/v1/loans/stats"));
    assert_eq!(loopback.send().await.unwrap().status().as_u16(), 421, "only the listed names");
}

#[actix_web::test]
async fn the_rate_limit_keys_on_the_forwarded_client_only_behind_a_trusted_proxy() {
    let limited = |trusted: bool| {
        spawn_app_with(Db::Sqlite, move |s| {
            s.http.rate_limit_per_second = 1;
            if trusted {
                s.http.proxies = vec!["127.0.0.1/32".parse().unwrap()];
            }
        })
    };
    let statuses = |app: &crate::helpers::TestApp, clients: &[&str]| {
        let requests: Vec<_> = clients
            .iter()
            .map(|client| {
                let request = app.client.post(app.url("/api/v1/loans")).header("x-forwarded-for", *client);
                request.json(&approvable_application()).send()
            })
            .collect();
        async move {
            let mut statuses = Vec::new();
            for request in requests {
                statuses.push(request.await.unwrap().status().as_u16());
            }
            statuses
        }
    };
    let behind_proxy = limited(true).await;
    assert_eq!(statuses(&behind_proxy, &["203.0.113.1", "203.0.113.2"]).await, [201, 201], "two clients");
    assert_eq!(statuses(&behind_proxy, &["203.0.113.1"]).await, [429], "the same client again");
    let direct = limited(false).await;
    assert_eq!(statuses(&direct, &["203.0.113.1", "203.0.113.2"]).await, [201, 429], "a claim from anyone is ignored");
}
