//! An OTLP/HTTP receiver inside the test: a small actix-web server on a free port that takes
//! `POST /v1/traces` in either encoding (protobuf or JSON, told apart by the content type and
//! decoded with `opentelemetry-proto`) and keeps every span; and the check that each loan is one
//! trace covering its POST and every step.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

/// One received span, its ids in lowercase hex.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    /// The content types of the requests, to prove which encoding came.
    content_types: BTreeSet<String>,
}

pub struct Receiver {
    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to.
    pub endpoint: String,
    received: Arc<Mutex<Received>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let state = web::Data::from(received.clone());
        // Its own thread and actix system: it lives as long as the test process.
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .app_data(web::PayloadConfig::new(64 << 20))
                        .route("/v1/traces", web::post().to(receive))
                })
                .workers(1)
                .listen(listener)
                .expect("listening")
                .run()
                .await
                .expect("the receiver runs")
            })
        });
        Receiver { endpoint, received }
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.lock().unwrap().spans.clone()
    }

    pub fn content_types(&self) -> BTreeSet<String> {
        self.received.lock().unwrap().content_types.clone()
    }

    /// Wait until each loan's trace has the POST and the spans named beside it, or fail.
    pub async fn wait_for(&self, expected: &[(&String, Vec<&str>)], deadline: Duration) -> Vec<ReceivedSpan> {
        let start = Instant::now();
        loop {
            let spans = self.spans();
            let complete = expected.iter().all(|(loan, names)| {
                let trace =
                    spans.iter().filter(|s| s.attribute("loan.id") == Some(loan.as_str())).map(|s| &s.trace_id).next();
                let Some(trace) = trace else { return false };
                let have: BTreeSet<&str> =
                    spans.iter().filter(|s| &s.trace_id == trace).map(|s| s.name.as_str()).collect();
                names.iter().chain([&POST]).all(|name| have.contains(name))
            });
            if complete {
                return spans;
            }
            assert!(start.elapsed() < deadline, "spans missing after {deadline:?}: {}", summary(&spans));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(request: HttpRequest, body: web::Bytes, received: web::Data<Mutex<Received>>) -> HttpResponse {
    let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let decoded = match content_type.as_str() {
        "application/x-protobuf" => ExportTraceServiceRequest::decode(body.as_ref()).map_err(|e| e.to_string()),
        "application/json" => serde_json::from_slice::<ExportTraceServiceRequest>(&body).map_err(|e| e.to_string()),
        other => Err(format!("unexpected content type {other:?}")),
    };
    let export = match decoded {
        Ok(export) => export,
        Err(err) => return HttpResponse::BadRequest().body(err),
    };
    let mut received = received.lock().unwrap();
    received.content_types.insert(content_type);
    for resource in export.resource_spans {
        for scope in resource.scope_spans {
            for span in scope.spans {
                let attributes =
                    span.attributes.into_iter().filter_map(|kv| Some((kv.key, text(kv.value?.value?)))).collect();
                received.spans.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    attributes,
                });
            }
        }
    }
    HttpResponse::Ok().finish()
}

fn text(value: AnyValue) -> String {
    match value {
        AnyValue::StringValue(s) => s,
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn summary(spans: &[ReceivedSpan]) -> String {
    let mut by_trace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for span in spans {
        by_trace.entry(&span.trace_id).or_default().push(&span.name);
    }
    format!("{} spans in {} traces: {by_trace:#?}", spans.len(), by_trace.len())
}

/// The request span of a submission.
pub const POST: &str = "POST /api/v1/loans";

/// The steps of every loan whose credit check answers: submitted, checked, sent to the
/// appraiser, notified.
pub const STEPS: [&str; 6] = [
    "submit_loan",
    "credit check_credit",
    "appraisal appraise_property",
    "loan credit_checked",
    "notifier notify_applicant",
    "loan applicant_notified",
];

/// The steps of a loan that is appraised and decided (the schedule comes with an approval only).
pub const DECIDED: [&str; 1] = ["loan property_appraised"];

/// The steps of a loan whose appraisal fails: the credit check is compensated.
pub const COMPENSATED: [&str; 3] =
    ["loan appraisal_failed", "credit release_credit_check", "loan credit_check_released"];

/// The steps of a loan of `outcome`.
pub fn steps(outcome: &[&'static str]) -> Vec<&'static str> {
    STEPS.iter().chain(outcome).copied().collect()
}

/// What one loan's trace held.
pub struct LoanTrace {
    pub trace_id: String,
    pub spans: Vec<ReceivedSpan>,
}

impl LoanTrace {
    pub fn names(&self) -> BTreeSet<&str> {
        self.spans.iter().map(|s| s.name.as_str()).collect()
    }

    /// The POST's span.
    pub fn root(&self) -> &ReceivedSpan {
        let posts: Vec<&ReceivedSpan> = self.spans.iter().filter(|s| s.name == POST).collect();
        assert_eq!(posts.len(), 1, "one POST per trace: {:?}", self.names());
        posts[0]
    }
}

/// Each loan of `loans` is one trace of its own: every span carrying its `loan.id` shares one
/// trace id, no other loan's span is in it, the trace has the POST and `steps`, and every span
/// but the POST's has a parent within the trace (the POST's has none, or the caller's).
pub fn loan_traces(spans: &[ReceivedSpan], loans: &[String], steps: &[&str]) -> BTreeMap<String, LoanTrace> {
    let mut traces = BTreeMap::new();
    let mut seen_trace_ids = BTreeSet::new();
    for loan in loans {
        let ids: BTreeSet<&str> =
            spans.iter().filter(|s| s.attribute("loan.id") == Some(loan)).map(|s| s.trace_id.as_str()).collect();
        assert_eq!(ids.len(), 1, "loan {loan}: its spans in {} traces: {ids:?}", ids.len());
        let trace_id = ids.into_iter().next().unwrap().to_owned();
        assert!(seen_trace_ids.insert(trace_id.clone()), "two loans in trace {trace_id}");
        let in_trace: Vec<ReceivedSpan> = spans.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
        for span in &in_trace {
            if let Some(other) = span.attribute("loan.id") {
                assert_eq!(other, loan, "span {} of another loan in loan {loan}'s trace", span.name);
            }
        }
        let trace = LoanTrace { trace_id, spans: in_trace };
        let names = trace.names();
        for step in steps {
            assert!(names.contains(step), "loan {loan}: no span {step:?} in {names:?}");
        }
        let span_ids: BTreeSet<&str> = trace.spans.iter().map(|s| s.span_id.as_str()).collect();
        let root = trace.root().span_id.clone();
        for span in trace.spans.iter().filter(|s| s.span_id != root) {
            assert!(
                span_ids.contains(span.parent_span_id.as_str()),
                "loan {loan}: {} has no parent in the trace",
                span.name
            );
            if span.name != POST && span.name != "submit_loan" {
                assert_eq!(span.attribute("loan.id"), Some(loan.as_str()), "{} without loan.id", span.name);
            }
        }
        traces.insert(loan.clone(), trace);
    }
    traces
}
