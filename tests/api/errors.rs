//! Every error case answers its status with a problem body and leaves the database unchanged.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{approvable_application, spawn_app, Db, TestApp};

both_backends!(
    a_body_that_is_not_json_is_400,
    an_invalid_application_is_422_with_the_field_path,
    an_unknown_loan_is_404,
    a_body_over_64_kib_is_413,
    the_same_idempotency_key_returns_the_same_loan,
    bad_list_parameters_are_400,
    a_duplicate_key_is_422_naming_it,
);

async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a problem body");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["type"].is_string() && body["detail"].is_string(), "{body}");
    body
}

async fn post_raw(app: &TestApp, body: &'static str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/loans"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn a_body_that_is_not_json_is_400(db: Db) {
    let app = spawn_app(db).await;
    let before = app.db.counts();
    for body in ["", "{", "not json", "{\"applicant\": }"] {
        assert_problem(post_raw(&app, body).await, 400).await;
    }
    assert_eq!(app.db.counts(), before);
}

/// Each case: a change to a valid application, and the field the error must name.
fn invalid_cases() -> Vec<(Value, &'static str)> {
    let base = approvable_application();
    let with = |pointer: &str, value: Value| {
        let mut body = base.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let without = |section: &str, key: &str| {
        let mut body = base.clone();
        let target = if section.is_empty() { &mut body } else { &mut body[section] };
        target.as_object_mut().unwrap().remove(key);
        body
    };
    vec![
        (json!([1, 2]), ""),
        (json!("a string"), ""),
        (without("", "applicant"), "applicant"),
        (without("applicant", "name"), "applicant.name"),
        (with("/applicant/name", json!("")), "applicant.name"),
        (with("/applicant/name", json!("x".repeat(201))), "applicant.name"),
        (with("/applicant/name", json!(42)), "applicant.name"),
        (with("/applicant/email", json!("not-an-email")), "applicant.email"),
        (with("/applicant/email", json!("a@b")), "applicant.email"),
        (without("applicant", "email"), "applicant.email"),
        (with("/applicant/annual_income", json!(0)), "applicant.annual_income"),
        (with("/applicant/annual_income", json!("150000")), "applicant.annual_income"),
        (with("/applicant/annual_income", json!(1000.123)), "applicant.annual_income"),
        (with("/applicant/monthly_debts", json!(-1)), "applicant.monthly_debts"),
        (without("", "property"), "property"),
        (with("/property/address", json!("   ")), "property.address"),
        (with("/property/declared_value", json!(0)), "property.declared_value"),
        (with("/property/declared_value", json!(-5)), "property.declared_value"),
        (with("/amount", json!(0)), "amount"),
        (with("/amount", json!(400000.01)), "amount"),
        (with("/amount", json!(null)), "amount"),
        (with("/term_months", json!(11)), "term_months"),
        (with("/term_months", json!(481)), "term_months"),
        (with("/term_months", json!(12.5)), "term_months"),
        (with("/term_months", json!("360")), "term_months"),
        // Control and invisible characters: a NUL (PostgreSQL refuses it in text), line breaks,
        // a right-to-left override, a zero-width space.
        (with("/property/address", json!("1 Canal St\u{0}, Amsterdam")), "property.address"),
        (with("/property/address", json!("1 Canal St\r\nAmsterdam")), "property.address"),
        (with("/applicant/name", json!("Jane\r\nDoe")), "applicant.name"),
        (with("/applicant/name", json!("Jane \u{202E}eoD")), "applicant.name"),
        (with("/property/address", json!("1 Canal\u{200B} St")), "property.address"),
        (with("/applicant/email", json!("jane\u{200B}@example.com")), "applicant.email"),
    ]
}

async fn an_invalid_application_is_422_with_the_field_path(db: Db) {
    let app = spawn_app(db).await;
    let before = app.db.counts();
    for (body, field) in invalid_cases() {
        let problem = assert_problem(app.post_loan(&body).await, 422).await;
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "expected an error on `{field}` for {body}, got {problem}");
        for error in problem["errors"].as_array().unwrap() {
            assert!(!error["message"].as_str().unwrap().is_empty());
        }
    }
    assert_eq!(app.db.counts(), before, "a refused application stored something");
}

async fn an_unknown_loan_is_404(db: Db) {
    let app = spawn_app(db).await;
    for path in [
        "/api/v1/loans/01a22573-0000-7000-8000-000000000000",
        "/api/v1/loans/not-a-uuid",
        "/api/v1/loans/01a22573-0000-7000-8000-000000000000/events",
        "/api/v1/loans/01a22573-0000-7000-8000-000000000000/schedule",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_problem(response, 404).await;
    }
}

async fn a_body_over_64_kib_is_413(db: Db) {
    let app = spawn_app(db).await;
    let before = app.db.counts();
    let mut body = approvable_application();
    body["padding"] = json!("x".repeat(70 * 1024));
    assert_problem(app.post_loan(&body).await, 413).await;
    // Without a Content-Length (chunked), the limit holds too.
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(body.to_string())];
    let streamed = app
        .client
        .post(app.url("/api/v1/loans"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(streamed, 413).await;
    assert_eq!(app.db.counts(), before);
}

async fn the_same_idempotency_key_returns_the_same_loan(db: Db) {
    let app = spawn_app(db).await;
    let post = |key: &'static str, body: Value| {
        let request = app.client.post(app.url("/api/v1/loans")).header("Idempotency-Key", key).json(&body);
        async move { request.send().await.unwrap() }
    };
    let first = post("key-1", approvable_application()).await;
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let counts = app.db.counts();
    let again = post("key-1", approvable_application()).await;
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let mut other = approvable_application();
    other["amount"] = json!(123456);
    assert_problem(post("key-1", other).await, 422).await;
    // Replays and refusals wrote nothing (the first loan's own progress aside).
    let loans = |c: &Vec<(&str, i64)>| c.iter().find(|(t, _)| *t == "loans").unwrap().1;
    assert_eq!(loans(&app.db.counts()), loans(&counts));
    assert_eq!(loans(&counts), 1);
    // Concurrent submissions with one key still make one loan.
    let racing: Vec<_> = (0..8).map(|_| post("key-2", approvable_application())).collect();
    let ids: std::collections::HashSet<String> = futures_util::future::join_all(racing)
        .await
        .into_iter()
        .map(|r| {
            assert_eq!(r.status().as_u16(), 201);
            r.headers()["location"].to_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(loans(&app.db.counts()), 2);
}

async fn bad_list_parameters_are_400(db: Db) {
    let app = spawn_app(db).await;
    for query in ["status=pending", "limit=0", "limit=501", "limit=ten", "cursor=garbage"] {
        let response = app.client.get(app.url(&format!("/api/v1/loans?{query}"))).send().await.unwrap();
        assert_problem(response, 400).await;
    }
}

/// PostgreSQL only: the database refuses connections, the API answers 503 with a problem body,
/// writes nothing, and recovers by itself when the database is back.
#[actix_web::test]
async fn database_unavailable_is_503_and_recovers() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    let app = spawn_app(Db::Postgres).await;
    let kept = app.submit(&approvable_application()).await;
    app.wait_finished(&kept, std::time::Duration::from_secs(10)).await;
    let name = app.db.name().to_owned();
    let mut admin =
        diesel::PgConnection::establish(&format!("{}/postgres", crate::database::postgres_server())).unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .unwrap();

    assert_problem(app.post_loan(&approvable_application()).await, 503).await;
    let response = app.client.get(app.url(&format!("/api/v1/loans/{kept}"))).send().await.unwrap();
    assert_problem(response, 503).await;
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["checks"]["database"]["status"], "down");

    admin.batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let recovered = loop {
        let response = app.post_loan(&approvable_application()).await;
        if response.status().as_u16() == 201 {
            break response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no recovery: {}", response.status());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    app.wait_finished(&recovered, std::time::Duration::from_secs(10)).await;
    let loans = app.db.counts().into_iter().find(|(t, _)| *t == "loans").unwrap().1;
    assert_eq!(loans, 2, "the refused submission stored nothing");
}

/// A long path is not echoed in full: the problem's detail is cut.
#[actix_web::test]
async fn a_long_path_is_not_echoed_in_full() {
    let app = crate::helpers::spawn_app(Db::Sqlite).await;
    let long = "x".repeat(20_000);
    let response = app.client.get(app.url(&format!("/api/v1/loans/{long}"))).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let problem: serde_json::Value = response.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.chars().count() <= 301, "{} characters echoed", detail.len());
    assert!(detail.starts_with("loan xxx"), "{detail}");
}

async fn a_duplicate_key_is_422_naming_it(db: Db) {
    let app = spawn_app(db).await;
    let before = app.db.counts();
    let application = |applicant: &str, top: &str| {
        format!(
            r#"{{"applicant": {{{applicant}, "email": "barbara@example.com", "annual_income": 150000,
                "monthly_debts": 300}}, "property": {{"address": "12 Harbour Road, Lisbon",
                "declared_value": 400000}}, {top}, "term_months": 300}}"#
        )
    };
    let cases = [
        (application(r#""name": "Barbara Liskov", "name": "Someone Else""#, r#""amount": 200000"#), "applicant.name"),
        (application(r#""name": "Barbara Liskov""#, r#""amount": 1000, "amount": 200000"#), "amount"),
    ];
    for (body, field) in cases {
        let response = app
            .client
            .post(app.url("/api/v1/loans"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 422).await;
        let errors = problem["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{problem}");
        assert_eq!(errors[0]["field"], field, "{problem}");
        assert!(errors[0]["message"].as_str().unwrap().contains("more than once"), "{problem}");
    }
    assert_eq!(app.db.counts(), before);
}
