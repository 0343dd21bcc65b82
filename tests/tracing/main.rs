//! OpenTelemetry in embedded mode: the real binary exports its spans to an OTLP receiver inside
//! the test, over `http/json` and over `http/protobuf`; each loan is one trace covering its POST
//! and every step, an incoming `traceparent` is continued, log lines carry the trace id, and
//! what is still queued at a SIGTERM is exported before the process ends.

#[path = "../common/otlp.rs"]
mod otlp;
#[path = "../crash/process.rs"]
mod process;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use otlp::{loan_traces, steps, Receiver, COMPENSATED, DECIDED, STEPS};
use process::Service;

const TOKEN: &str = "tracing-test-operator";
const DEADLINE: Duration = Duration::from_secs(30);
/// The caller's trace that the first submission continues.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// When the spans leave the node.
#[derive(Clone, Copy)]
enum Export {
    /// Every 100 ms.
    Periodic,
    /// Not before the node stops: the batch processor's delay is longer than the test.
    AtShutdown,
}

#[tokio::test]
async fn each_loan_is_one_trace_over_http_json() {
    one_trace_per_loan("http/json", "application/json", Export::Periodic).await;
}

#[tokio::test]
async fn each_loan_is_one_trace_over_http_protobuf_exported_at_shutdown() {
    one_trace_per_loan("http/protobuf", "application/x-protobuf", Export::AtShutdown).await;
}

/// An approval, a credit rejection, and a failed appraisal (compensated: the credit check is
/// released).
fn application(i: usize) -> Value {
    let (email, address) = match i {
        0 => ("barbara@example.com", "1 Harbour Road, Lisbon".to_owned()),
        1 => ("alan@example.com", "2 Harbour Road, Lisbon".to_owned()),
        _ => ("barbara@example.com", "3 Quay Street #fail-appraisal".to_owned()),
    };
    json!({
        "applicant": {"name": format!("Applicant {i}"), "email": email, "annual_income": 150000, "monthly_debts": 300},
        "property": {"address": address, "declared_value": 400000},
        "amount": 200000,
        "term_months": 240
    })
}

async fn one_trace_per_loan(protocol: &str, content_type: &str, export: Export) {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LOANFLOW__HTTP__PORT", "0".to_owned()),
        ("LOANFLOW__DATABASE__URL", dir.path().join("loanflow.db").display().to_string()),
        ("LOANFLOW__ADMIN__TOKEN", TOKEN.to_owned()),
        ("LOANFLOW__DECISION__REVIEW_BELOW_SCORE", "0".to_owned()),
        ("LOANFLOW__LOG__FORMAT", "json".to_owned()),
        // The notifier's send is logged at debug, inside its step's span.
        ("RUST_LOG", "info,loanflow::actors=debug".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        (
            "OTEL_BSP_SCHEDULE_DELAY",
            match export {
                Export::Periodic => "100".to_owned(),
                Export::AtShutdown => "600000".to_owned(),
            },
        ),
    ];
    let node = Service::start(&env);
    let client = reqwest::Client::new();
    let mut loans = Vec::new();
    for i in 0..3 {
        let mut request = client.post(node.url("/api/v1/loans")).json(&application(i));
        if i == 0 {
            request = request.header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"));
        }
        let response = request.send().await.expect("POST /api/v1/loans");
        assert_eq!(response.status().as_u16(), 201, "{}", node.log_tail(20));
        let body: Value = response.json().await.unwrap();
        loans.push(body["id"].as_str().expect("an id").to_owned());
    }
    for loan in &loans {
        wait_notified(&client, &node, loan).await;
    }
    let log = node.log_tail(10_000);
    if let Export::AtShutdown = export {
        assert!(receiver.spans().is_empty(), "spans exported before the shutdown");
        node.terminate(DEADLINE);
    }

    let expected = [(&loans[0], steps(&DECIDED)), (&loans[1], steps(&DECIDED)), (&loans[2], steps(&COMPENSATED))];
    let spans = receiver.wait_for(&expected, DEADLINE).await;
    let traces = loan_traces(&spans, &loans, &STEPS);
    assert_eq!(receiver.content_types().into_iter().collect::<Vec<_>>(), [content_type]);

    let approved = &traces[&loans[0]];
    assert_eq!(approved.trace_id, CALLER_TRACE, "the caller's trace is continued");
    assert_eq!(approved.root().parent_span_id, CALLER_SPAN);
    assert!(approved.names().contains("loan generate_schedule"), "{:?}", approved.names());
    let failed = &traces[&loans[2]];
    for step in COMPENSATED {
        assert!(failed.names().contains(step), "no {step:?} in {:?}", failed.names());
    }
    for loan in &loans[1..] {
        assert!(traces[loan].root().parent_span_id.is_empty(), "a POST without traceparent starts a trace");
        assert!(!traces[loan].names().contains("loan generate_schedule"), "a schedule for a loan not approved");
    }
    let post = approved.root();
    assert_eq!(post.attribute("http.method"), Some("POST"));
    assert_eq!(post.attribute("http.status_code"), Some("201"));

    // The log line of each loan's notification carries the loan's trace id.
    for (loan, trace) in &traces {
        let carried = log.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).any(|line| {
            line["message"] == "notification handed to the mail provider" && line["span"]["trace_id"] == trace.trace_id
        });
        assert!(carried, "no notification log line of loan {loan} with trace id {}", trace.trace_id);
    }
}

async fn wait_notified(client: &reqwest::Client, node: &Service, loan: &str) {
    let start = Instant::now();
    loop {
        let response = client.get(node.url(&format!("/api/v1/loans/{loan}"))).bearer_auth(TOKEN).send().await.unwrap();
        let body: Value = response.json().await.unwrap_or_default();
        if !body["notified_at"].is_null() {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "loan {loan} never notified: {body}\n{}", node.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
