//! `/api/v1/events/stream` and `/api/v1/loans/{id}/events/stream` with a real client (`curl -N`).

use std::time::Duration;

use crate::both_backends;
use crate::helpers::{approvable_application, spawn_app, Db};
use crate::support::{
    assert_same_as_history, assert_strictly_increasing, global_history, has_event, ids_and_types, of_loan, sse_client,
};

const WITHIN: Duration = Duration::from_secs(30);

both_backends!(curl_receives_each_event_of_a_loan_once_in_order);

async fn curl_receives_each_event_of_a_loan_once_in_order(db: Db) {
    let app = spawn_app(db).await;
    let mut stream = sse_client(&app, "/api/v1/events/stream", None).await;
    let id = app.submit(&approvable_application()).await;
    stream.read_until(|events| has_event(events, &id, "ApplicantNotified"), WITHIN).await;
    assert_same_as_history(&of_loan(&stream.messages, &id), &app.events(&id).await, &id);
    assert_strictly_increasing(&stream.messages);

    // The per-loan stream replays the loan's whole history by default.
    let mut one = sse_client(&app, &format!("/api/v1/loans/{id}/events/stream"), None).await;
    one.read_until(|events| has_event(events, &id, "ApplicantNotified"), WITHIN).await;
    assert_same_as_history(&one.messages, &app.events(&id).await, &id);
    let statuses = |events: &[serde_json::Value]| events.iter().map(|e| e["status"].clone()).collect::<Vec<_>>();
    assert_eq!(statuses(&one.messages), statuses(&of_loan(&stream.messages, &id)), "replayed vs live statuses");
}

both_backends!(a_client_that_reconnects_with_last_event_id_misses_nothing_and_sees_nothing_twice);

async fn a_client_that_reconnects_with_last_event_id_misses_nothing_and_sees_nothing_twice(db: Db) {
    let app = spawn_app(db).await;
    let mut first = sse_client(&app, "/api/v1/events/stream", None).await;
    let a = app.submit(&approvable_application()).await;
    // Disconnect part-way through the loan's history.
    first.read_until(|events| events.len() >= 3, WITHIN).await;
    let resume_after = first.last_id();
    let seen_before = first.messages.clone();
    first.process.kill();

    let b = app.submit(&approvable_application()).await;
    let c = app.submit(&approvable_application()).await;
    for id in [&a, &b, &c] {
        app.wait_finished(id, WITHIN).await;
    }
    let mut second = sse_client(&app, "/api/v1/events/stream", Some(resume_after)).await;
    second.read_until(|events| has_event(events, &c, "ApplicantNotified"), WITHIN).await;
    // And what happens after the reconnect arrives live, still once.
    let d = app.submit(&approvable_application()).await;
    second.read_until(|events| has_event(events, &d, "ApplicantNotified"), WITHIN).await;

    let history = global_history(&app).await;
    let after: Vec<(i64, String)> = history.iter().filter(|(id, _)| *id > resume_after).cloned().collect();
    assert_eq!(ids_and_types(&second.messages), after, "exactly the events after Last-Event-ID {resume_after}");
    let mut whole = seen_before;
    whole.extend(second.messages.iter().cloned());
    assert_eq!(ids_and_types(&whole), history, "before + after the reconnect = the history, each event once");
    for id in [&a, &b, &c, &d] {
        assert_same_as_history(&of_loan(&whole, id), &app.events(id).await, id);
    }
}

both_backends!(a_loan_stream_resumes_within_the_loan_history);

async fn a_loan_stream_resumes_within_the_loan_history(db: Db) {
    let app = spawn_app(db).await;
    let id = app.submit(&approvable_application()).await;
    app.wait_finished(&id, WITHIN).await;
    let history = app.events(&id).await;
    let resume_after = history[2]["id"].as_i64().unwrap();
    let mut stream = sse_client(&app, &format!("/api/v1/loans/{id}/events/stream"), Some(resume_after)).await;
    stream.read_until(|events| has_event(events, &id, "ApplicantNotified"), WITHIN).await;
    assert_same_as_history(&stream.messages, &history[3..], &id);
}

both_backends!(bad_stream_requests_get_problem_responses);

async fn bad_stream_requests_get_problem_responses(db: Db) {
    let app = spawn_app(db).await;
    let get = |path: &str, last_event_id: Option<&str>| {
        let mut request = app.client.get(app.url(path));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        request.send()
    };
    let unknown = get("/api/v1/loans/0190b6e2-7c3a-7d4e-8f00-0123456789ab/events/stream", None).await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(unknown.headers()["content-type"], "application/problem+json");
    let bad = get("/api/v1/events/stream", Some("yesterday")).await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "Last-Event-ID", "{body}");
    let ok = get("/api/v1/events/stream", None).await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers()["content-type"], "text/event-stream");
    assert_eq!(ok.headers()["cache-control"], "no-cache");
}
