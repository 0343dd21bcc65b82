//! Operations: `/metrics` after real loans ran, checked by `promtool check metrics` (required:
//! Debian package `prometheus`, installed by .ci/run); request ids; the API docs.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::both_backends;
use crate::helpers::{approvable_application, spawn_app, Db, TestApp};

both_backends!(metrics_after_loans_ran_pass_promtool);

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of one series, e.g. `loanflow_loans_decided_total{status="approved"}`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Scrape until every series has at least its value (metrics are recorded just after commit).
pub(crate) async fn scrape_until(app: &TestApp, expected: &[(&str, f64)]) -> String {
    let start = Instant::now();
    loop {
        let text = scrape(app).await;
        let missing: Vec<_> = expected.iter().filter(|(s, min)| value(&text, s).is_none_or(|v| v < *min)).collect();
        if missing.is_empty() {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never reached {missing:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required for this test (Debian package `prometheus`; .ci/run installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn metrics_after_loans_ran_pass_promtool(db: Db) {
    let app = spawn_app(db).await;
    let approved = app.submit(&approvable_application()).await;
    let mut failing = approvable_application();
    failing["property"]["address"] = json!("9 Quay Street #fail-appraisal");
    let cancelled = app.submit(&failing).await;
    for id in [&approved, &cancelled] {
        app.wait_finished(id, Duration::from_secs(10)).await;
    }
    let (status, _) = app.get_json("/api/v1/loans/00000000-0000-7000-8000-000000000000").await;
    assert_eq!(status, 404);

    let text = scrape_until(
        &app,
        &[
            ("loanflow_loans_decided_total{status=\"approved\"}", 1.0),
            ("loanflow_loans_decided_total{status=\"cancelled\"}", 1.0),
            ("loanflow_compensations_total{step=\"credit_check\"}", 1.0),
            ("loanflow_step_duration_seconds_count{step=\"credit\"}", 2.0),
            ("loanflow_step_duration_seconds_count{step=\"appraisal\"}", 2.0),
            ("loanflow_step_duration_seconds_count{step=\"decision\"}", 1.0),
            ("loanflow_step_duration_seconds_count{step=\"notification\"}", 2.0),
            ("loanflow_loan_duration_seconds_count", 2.0),
            ("loanflow_http_requests_total{method=\"POST\",route=\"/api/v1/loans\",status=\"201\"}", 2.0),
            ("loanflow_http_requests_total{method=\"GET\",route=\"/api/v1/loans/{id}\",status=\"404\"}", 1.0),
            ("loanflow_actors_live{kind=\"credit\"}", 1.0),
        ],
    )
    .await;
    promtool_check(&text);
    assert!(!text.contains(&approved), "a raw path (with a loan id) leaked into a label");
    for series in [
        "loanflow_actor_restarts_total",
        "loanflow_outbox_backlog",
        "loanflow_mailbox_depth{kind=\"loan\"}",
        "loanflow_broker_publishes_total{outcome=\"confirmed\"}",
        "loanflow_broker_publishes_total{outcome=\"nacked\"}",
        "loanflow_dead_letters_total{destination=\"loan\"}",
        "loanflow_loans_decided_total{status=\"rejected\"}",
    ] {
        assert!(value(&text, series).is_some(), "{series} missing:\n{text}");
    }
    assert!(text.contains("loanflow_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/loans\""));
}

#[actix_web::test]
async fn request_ids_are_echoed_or_assigned() {
    let app = spawn_app(Db::Sqlite).await;
    let get = |id: Option<&'static str>| {
        let mut request = app.client.get(app.url("/health/live"));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    let echoed = get(Some("trace-42.a_b:c")).await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42.a_b:c");
    let assigned = get(None).await.unwrap();
    let id = assigned.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let replaced = get(Some("has spaces; and more")).await.unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "has spaces; and more");
    let problem = app.client.get(app.url("/api/v1/loans/nope")).header("x-request-id", "r1").send().await.unwrap();
    assert_eq!(problem.status().as_u16(), 404);
    assert_eq!(problem.headers()["x-request-id"], "r1", "error answers carry it too");
}

#[actix_web::test]
async fn the_api_documents_itself_and_serves_swagger_ui() {
    let app = spawn_app(Db::Sqlite).await;
    let (status, spec) = app.get_json("/api-docs/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."), "{}", spec["openapi"]);
    let paths: Vec<&str> = spec["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    for path in [
        "/api/v1/loans",
        "/api/v1/loans/{id}",
        "/api/v1/loans/stats",
        "/api/v1/loans/{id}/events",
        "/api/v1/loans/{id}/schedule",
        "/api/v1/loans/{id}/events/stream",
        "/api/v1/events/stream",
        "/ws",
        "/ws/loans/{id}",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/admin/actors",
        "/admin/loans",
        "/admin/loans/{id}/retry",
        "/admin/dead-letters",
        "/admin/dead-letters/{id}/replay",
    ] {
        assert!(paths.contains(&path), "{path} undocumented; documented: {paths:?}");
    }
    assert_eq!(spec["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
    let submit = &spec["paths"]["/api/v1/loans"]["post"];
    for status in ["201", "400", "413", "422", "429", "503"] {
        assert!(submit["responses"][status].is_object(), "POST /api/v1/loans lacks {status}");
    }
    assert!(submit["responses"]["422"]["content"]["application/problem+json"].is_object());
    assert_eq!(spec["paths"]["/admin/actors"]["get"]["security"], json!([{ "admin_token": [] }]));
    // Each route's requirement, from the table requests are checked against.
    for scheme in ["staff_token", "applicant_token"] {
        assert_eq!(spec["components"]["securitySchemes"][scheme]["scheme"], "bearer", "{scheme}");
    }
    assert_eq!(spec["components"]["securitySchemes"]["query_token"]["in"], "query");
    assert!(submit.get("security").is_none(), "anyone submits: {submit}");
    assert_eq!(spec["paths"]["/api/v1/loans/stats"]["get"]["security"], json!([{ "staff_token": [] }]));
    let one_loan = json!([{ "staff_token": [] }, { "applicant_token": [] }]);
    assert_eq!(spec["paths"]["/api/v1/loans/{id}"]["get"]["security"], one_loan);
    let loan_socket = json!([{ "staff_token": [] }, { "applicant_token": [] }, { "query_token": [] }]);
    assert_eq!(spec["paths"]["/ws/loans/{id}"]["get"]["security"], loan_socket);
    assert!(spec["paths"]["/health/ready"]["get"].get("security").is_none());

    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let docs = no_redirects.get(app.url("/docs")).send().await.unwrap();
    assert!(docs.status().is_redirection(), "{}", docs.status());
    assert_eq!(docs.headers()["location"], "/docs/");
    let ui = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(ui.status().as_u16(), 200);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
    let init = app.client.get(app.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("/api-docs/openapi.json"), "{init}");
}
