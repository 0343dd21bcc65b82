//! `/api/v1/events/stream` and `/api/v1/loans/{id}/events/stream` with a real client (`curl -N`).

use std::time::Duration;

use crate::both_backends;
use crate::helpers::{approvable_application, spawn_app, spawn_app_with, Db};
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
    // A start beyond the newest committed event would stay silent for ever: refused, naming it.
    let beyond = get("/api/v1/events/stream", Some("9223372036854775807")).await.unwrap();
    assert_eq!(beyond.status().as_u16(), 400);
    let body: serde_json::Value = beyond.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "Last-Event-ID", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("beyond the newest event (0)"), "{body}");
    let beyond = get("/api/v1/events/stream?after=1", None).await.unwrap();
    assert_eq!(beyond.status().as_u16(), 400, "nothing is committed yet");
    let ok = get("/api/v1/events/stream", None).await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers()["content-type"], "text/event-stream");
    assert_eq!(ok.headers()["cache-control"], "no-cache");
}

both_backends!(streams_are_capped_per_client_and_per_node_while_health_still_answers);

async fn streams_are_capped_per_client_and_per_node_while_health_still_answers(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.streams.max_per_client = 2;
        s.streams.max_total = 3;
        // The test's requests stand for several clients behind a proxy on the loopback.
        s.http.proxies = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    })
    .await;
    let open = |client: &str| {
        app.client.get(app.url("/api/v1/events/stream")).header("X-Forwarded-For", client.to_owned()).send()
    };
    let mut held = Vec::new();
    for client in ["10.0.0.1", "10.0.0.1"] {
        let stream = open(client).await.unwrap();
        assert_eq!(stream.status().as_u16(), 200);
        held.push(stream);
    }
    let refused = open("10.0.0.1").await.unwrap();
    assert_eq!(refused.status().as_u16(), 429, "a third stream of one client");
    assert!(refused.headers().contains_key("retry-after"));
    let other = open("10.0.0.2").await.unwrap();
    assert_eq!(other.status().as_u16(), 200, "another client still gets one");
    let full = open("10.0.0.3").await.unwrap();
    assert_eq!(full.status().as_u16(), 503, "the node's streams are all taken");
    for path in ["/health/live", "/metrics"] {
        let answer = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 200, "{path} while the streams are full");
    }
    // A stream that ends gives its place back.
    drop(held);
    let deadline = std::time::Instant::now() + WITHIN;
    loop {
        let status = open("10.0.0.3").await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no place freed after two streams ended: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
