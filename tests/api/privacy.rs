//! Personal data: an operator erases a finished loan's, idempotency keys expire, and each
//! notification reaches the mail provider once.

use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{approvable_application, event_types, spawn_app, spawn_app_with, Db, TestApp};

both_backends!(
    an_operator_erases_a_finished_loans_personal_data_and_its_figures_stay,
    an_idempotency_key_expires_and_is_forgotten,
    each_finished_loan_is_sent_its_notification_once
);

/// Rows where the query (`FROM ... WHERE ...`) matches, read directly.
fn count(app: &TestApp, from_where: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = loanflow::inspect::Backend::from_url(&app.db.url).connect().expect("connecting");
    let found: Count =
        diesel::sql_query(format!("SELECT COUNT(*) AS n {from_where}")).get_result(&mut conn).expect(from_where);
    found.n
}

async fn erase(app: &TestApp, id: &str) -> (u16, Value) {
    let response = app.client.request(Method::POST, app.url(&format!("/admin/loans/{id}/erase"))).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn an_operator_erases_a_finished_loans_personal_data_and_its_figures_stay(db: Db) {
    let app = spawn_app_with(db, |s| s.bureaus.credit_latency_ms = 1_500).await;
    let id = app.submit(&approvable_application()).await;
    let (status, body) = erase(&app, &id).await;
    assert_eq!(status, 409, "an unfinished loan keeps its data: {body}");

    let before = app.wait_finished(&id, Duration::from_secs(20)).await;
    assert_eq!(before["personal_data"], "held");
    let history_before = app.events(&id).await;
    let (status, body) = erase(&app, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["personal_data"], "erased");

    let after = app.loan(&id).await;
    assert_eq!(after["personal_data"], "erased");
    for (field, value) in
        [("/applicant/name", "[erased]"), ("/applicant/email", "[erased]"), ("/property/address", "[erased]")]
    {
        assert_eq!(after.pointer(field).unwrap(), value, "{field}: {after}");
    }
    for field in [
        "status",
        "credit_score",
        "appraised_value",
        "rate_bps",
        "monthly_payment",
        "amount",
        "decided_at",
        "notified_at",
    ] {
        assert_eq!(after[field], before[field], "{field} stays");
    }
    let history = app.events(&id).await;
    assert_eq!(history[..history_before.len()], history_before[..], "the history stays");
    assert_eq!(event_types(&history[history_before.len()..]), ["PersonalDataErased"]);
    let erased = &history[history.len() - 1]["data"];
    assert_eq!(erased["by"]["role"], "operator", "{erased}");

    let rows_with = |needle: &str| {
        let like = format!("'%{needle}%'");
        count(&app, &format!("FROM loans WHERE applicant_name LIKE {like} OR applicant_email LIKE {like} OR property_address LIKE {like} OR saga LIKE {like}"))
            + count(&app, &format!("FROM documents WHERE content LIKE {like}"))
            + count(&app, &format!("FROM notifications WHERE recipient LIKE {like}"))
            + count(&app, &format!("FROM outbox WHERE envelope LIKE {like}"))
            + count(&app, &format!("FROM dead_letters WHERE envelope LIKE {like}"))
            + count(&app, &format!("FROM loan_events WHERE data LIKE {like}"))
    };
    for needle in ["Liskov", "barbara", "Harbour"] {
        assert_eq!(rows_with(needle), 0, "{needle} is gone from every table");
    }
    let (status, body) = erase(&app, &id).await;
    assert_eq!(status, 409, "erased once: {body}");

    // An address still held in memory for the notifier (one handed over for a copy another
    // node sent) goes with the erasure too.
    let second = app.submit(&approvable_application()).await;
    app.wait_finished(&second, Duration::from_secs(20)).await;
    let loan_id = second.parse().unwrap();
    app.addresses.hand(loan_id, "barbara@example.com", Instant::now());
    let (status, body) = erase(&app, &second).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.addresses.take(loan_id, Instant::now()), None, "the erased loan's address is still held");
    let (status, _) = erase(&app, "00000000-0000-7000-8000-000000000000").await;
    assert_eq!(status, 404);
}

async fn an_idempotency_key_expires_and_is_forgotten(db: Db) {
    let app = spawn_app_with(db, |s| s.http.idempotency_ttl_seconds = 1).await;
    let post = |body: Value| {
        let request = app.client.post(app.url("/api/v1/loans")).header("Idempotency-Key", "expiring-key").json(&body);
        async move { request.send().await.unwrap() }
    };
    let first = post(approvable_application()).await;
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();

    let mut other = approvable_application();
    other["amount"] = serde_json::json!(150000);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = post(other.clone()).await;
        match response.status().as_u16() {
            201 => {
                let second: Value = response.json().await.unwrap();
                assert_ne!(second["id"], first["id"], "an expired key starts a new loan");
                break;
            }
            422 => assert!(Instant::now() < deadline, "the key never expired"),
            status => panic!("unexpected {status}: {:?}", response.text().await),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The sweep forgets expired keys: the second use's row too, once a second has passed.
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.db.count("idempotency_keys") > 0 {
        assert!(Instant::now() < deadline, "expired keys are never deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn each_finished_loan_is_sent_its_notification_once(db: Db) {
    let app = spawn_app(db).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.submit(&approvable_application()).await);
    }
    for id in &ids {
        app.wait_finished(id, Duration::from_secs(20)).await;
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let delivered = metrics
        .lines()
        .find(|line| line.starts_with("loanflow_notifications_sent_total{outcome=\"delivered\"}"))
        .unwrap_or_else(|| panic!("no count of sends in {metrics}"));
    assert!(delivered.ends_with(" 5"), "{delivered}");
    assert_eq!(app.db.notified_loans(), 5);
    // Every address came from the loan actor in memory: no send read the loan's row, and none
    // is left behind.
    assert_eq!(recipients(&metrics, "handed_over"), 5, "{metrics}");
    assert_eq!(recipients(&metrics, "read"), 0, "{metrics}");
    assert!(app.addresses.is_empty(), "{:?}", app.addresses);
}

/// `loanflow_notification_recipients_total{source}`: where the notifier found the addresses.
fn recipients(metrics: &str, source: &str) -> u64 {
    let series = format!("loanflow_notification_recipients_total{{source=\"{source}\"}} ");
    let line = metrics.lines().find(|line| line.starts_with(&series));
    line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {series}"))
}
