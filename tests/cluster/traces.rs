//! OpenTelemetry across two cluster nodes: both export to one OTLP receiver inside the test;
//! each loan is one trace whatever node ran its steps (the trace context rides in the envelopes
//! through RabbitMQ), and the steps of both nodes appear.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::database::{Db, TestDatabase};
use crate::loans::{client, submit_all, wait_all_finished};
use crate::otlp::{loan_traces, steps, Receiver, COMPENSATED, DECIDED, STEPS};
use crate::{two_ready_nodes, Vhost, BROKER};

async fn one_trace_per_loan_across_nodes(protocol: &str, content_type: &str) {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let receiver = Receiver::start();
    let extra = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("LOANFLOW__DECISION__REVIEW_BELOW_SCORE", "0"),
        ("LOANFLOW__BUREAUS__CREDIT_LATENCY_MS", "50"),
        ("LOANFLOW__BUREAUS__APPRAISAL_LATENCY_MS", "80"),
    ];
    let (a, b) = two_ready_nodes(&database, &vhost, &client, &extra).await;
    // Submitted to both nodes; an approval, a rejection and a failed appraisal among them.
    let submitted = submit_all(&client, &[&a, &b], 0..12).await;
    wait_all_finished(&client, &a, &submitted, Duration::from_secs(60)).await;

    let expected: Vec<(&String, Vec<&str>)> =
        submitted.iter().map(|(i, id)| (id, if i % 7 == 5 { steps(&COMPENSATED) } else { steps(&DECIDED) })).collect();
    let spans = receiver.wait_for(&expected, Duration::from_secs(30)).await;
    let loans: Vec<String> = submitted.iter().map(|(_, id)| id.clone()).collect();
    let traces = loan_traces(&spans, &loans, &STEPS);
    assert_eq!(receiver.content_types().into_iter().collect::<Vec<_>>(), [content_type]);
    let nodes: BTreeSet<&str> = traces.values().flat_map(|t| &t.spans).filter_map(|s| s.attribute("node")).collect();
    assert_eq!(nodes, BTreeSet::from(["node-a", "node-b"]), "the steps of both nodes are traced");
    let crossing: Vec<&str> = traces
        .values()
        .filter(|t| t.spans.iter().filter_map(|s| s.attribute("node")).collect::<BTreeSet<_>>().len() == 2)
        .map(|t| t.trace_id.as_str())
        .collect();
    assert!(!crossing.is_empty(), "no loan's trace went from one node to the other");
}

#[tokio::test]
async fn each_loan_is_one_trace_across_two_nodes_over_http_json() {
    one_trace_per_loan_across_nodes("http/json", "application/json").await;
}

#[tokio::test]
async fn each_loan_is_one_trace_across_two_nodes_over_http_protobuf() {
    one_trace_per_loan_across_nodes("http/protobuf", "application/x-protobuf").await;
}
