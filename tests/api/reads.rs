//! Listing, stats, schedules, health, and supervision seen from outside.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::helpers::{approvable_application, event_types, spawn_app, spawn_app_with, Db};

both_backends!(
    listing_pages_newest_first_with_a_cursor,
    stats_count_by_status,
    the_schedule_is_json_or_csv,
    the_schedule_reads_the_same_as_csv_and_as_json,
    health_reports_each_dependency,
    a_panicking_loan_actor_is_restarted_and_the_message_retried,
);

async fn listing_pages_newest_first_with_a_cursor(db: Db) {
    let app = spawn_app(db).await;
    let mut submitted = Vec::new();
    for _ in 0..5 {
        submitted.push(app.submit(&approvable_application()).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/api/v1/loans?limit=2&cursor={c}"),
            None => "/api/v1/loans?limit=2".to_owned(),
        };
        let (status, page) = app.get_json(&query).await;
        assert_eq!(status, 200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|l| l["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    submitted.reverse();
    assert_eq!(seen, submitted, "newest first, every loan once");
    for id in &submitted {
        app.wait_finished(id, Duration::from_secs(10)).await;
    }
    let (_, approved) = app.get_json("/api/v1/loans?status=approved&limit=500").await;
    assert_eq!(approved["items"].as_array().unwrap().len(), 5);
    let (_, rejected) = app.get_json("/api/v1/loans?status=rejected").await;
    assert!(rejected["items"].as_array().unwrap().is_empty());
}

async fn stats_count_by_status(db: Db) {
    let app = spawn_app(db).await;
    let mut rejected = approvable_application();
    rejected["amount"] = json!(399000); // loan-to-value above 0.90
    let mut cancelled = approvable_application();
    cancelled["property"]["address"] = json!("1 Quay #fail-appraisal");
    let ids = [app.submit(&approvable_application()).await, app.submit(&rejected).await, app.submit(&cancelled).await];
    for id in &ids {
        app.wait_finished(id, Duration::from_secs(10)).await;
    }
    let (status, stats) = app.get_json("/api/v1/loans/stats").await;
    assert_eq!(status, 200);
    assert_eq!(
        stats,
        json!({"total": 3, "by_status": {
            "submitted": 0, "evaluating": 0, "under_review": 0, "awaiting_information": 0,
            "approved": 1, "rejected": 1, "cancelled": 1,
        }})
    );
}

async fn the_schedule_is_json_or_csv(db: Db) {
    let app = spawn_app(db).await;
    let id = app.submit(&approvable_application()).await;
    let loan = app.wait_finished(&id, Duration::from_secs(10)).await;
    let (status, document) = app.get_json(&format!("/api/v1/loans/{id}/schedule")).await;
    assert_eq!(status, 200);
    let lines = document["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 300);
    assert_eq!(lines[0]["payment"], loan["monthly_payment"]);
    assert_eq!(lines.last().unwrap()["balance"], json!(0));
    // The head comes from the loan (the stored CSV holds only the lines).
    assert_eq!(document["loan_id"], json!(id));
    assert_eq!(document["currency"], "EUR");
    for field in ["amount", "rate_bps", "term_months", "monthly_payment"] {
        assert_eq!(document[field], loan[field], "{field}");
    }
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/loans/{id}/schedule")))
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "month,due_date,payment,interest,principal,balance");
    assert_eq!(rows.len(), 301);
    assert!(rows[300].ends_with(",0.00"), "{}", rows[300]);
    // A rejected loan has no schedule.
    let mut body = approvable_application();
    body["amount"] = json!(399000);
    let rejected = app.submit(&body).await;
    app.wait_finished(&rejected, Duration::from_secs(10)).await;
    let (status, problem) = app.get_json(&format!("/api/v1/loans/{rejected}/schedule")).await;
    assert_eq!(status, 404, "{problem}");
}

/// The schedule as CSV and as JSON: the same lines, figure for figure.
async fn the_schedule_reads_the_same_as_csv_and_as_json(db: Db) {
    let app = spawn_app(db).await;
    let id = app.submit(&approvable_application()).await;
    app.wait_finished(&id, Duration::from_secs(10)).await;
    let (status, document) = app.get_json(&format!("/api/v1/loans/{id}/schedule")).await;
    assert_eq!(status, 200, "{document}");
    let request = app.client.get(app.url(&format!("/api/v1/loans/{id}/schedule"))).header("Accept", "text/csv");
    let csv = request.send().await.unwrap().text().await.unwrap();
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some("month,due_date,payment,interest,principal,balance"));
    let lines = document["lines"].as_array().expect("the JSON has lines");
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), lines.len(), "one CSV row per line");
    assert_eq!(lines.len() as u64, document["term_months"].as_u64().unwrap());
    for (row, line) in rows.iter().zip(lines) {
        let figure = |name: &str| match &line[name] {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let from_json = ["month", "due_date", "payment", "interest", "principal", "balance"].map(figure).join(",");
        let parse = |text: &str| text.split(',').map(|f| f.parse::<f64>().ok()).collect::<Vec<_>>();
        // Figures compare as numbers (the JSON may write 1013.3 where the CSV has 1013.30).
        assert_eq!(row.split(',').nth(1), from_json.split(',').nth(1), "due dates: {row} / {from_json}");
        assert_eq!(parse(row), parse(&from_json), "{row} / {from_json}");
    }
}

async fn health_reports_each_dependency(db: Db) {
    let app = spawn_app(db).await;
    let (status, live) = app.get_json("/health/live").await;
    assert_eq!((status, &live["status"]), (200, &json!("live")));
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["database"]["status"], "up");
    let backend = if db == Db::Sqlite { "sqlite" } else { "postgres" };
    assert_eq!(ready["checks"]["database"]["backend"], backend);
    assert_eq!(ready["mode"], "embedded");
    assert!(ready["node_id"].as_str().is_some_and(|id| !id.is_empty()));
}

async fn a_panicking_loan_actor_is_restarted_and_the_message_retried(db: Db) {
    let app = spawn_app_with(db, |s| s.faults.panic_marker = "#panic".into()).await;
    let mut body = approvable_application();
    body["applicant"]["name"] = json!("Barbara #panic Liskov");
    let id = app.submit(&body).await;
    let loan = app.wait_finished(&id, Duration::from_secs(10)).await;
    assert_eq!(loan["status"], "approved");
    assert!(app.registry.restarts_total() >= 1, "the supervisor restarted the actor");
    let types = event_types(&app.events(&id).await);
    let unique: HashSet<&String> = types.iter().collect();
    assert_eq!(unique.len(), types.len(), "no event twice: {types:?}");
}
