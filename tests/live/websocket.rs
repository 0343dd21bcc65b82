//! `/ws` and `/ws/loans/{id}` with a real client (Python `websockets`).

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{approvable_application, spawn_app, spawn_app_with, Db};
use crate::support::{
    assert_same_as_history, assert_strictly_increasing, global_history, has_event, ids_and_types, of_loan,
    websocket_client, ClientProcess,
};

const WITHIN: Duration = Duration::from_secs(30);

/// Read frames until `done` holds for what was received; every line must be an event (or the close).
async fn read_events(client: &mut ClientProcess, received: &mut Vec<Value>, done: impl Fn(&[Value]) -> bool) {
    while !done(received) {
        let line = client.wait_for_line(|_| true, WITHIN).await;
        assert!(!line.starts_with("CLOSED"), "the server closed the stream: {line}");
        received.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("a frame that is not JSON ({e}): {line}")));
    }
}

both_backends!(a_client_connected_before_a_submission_receives_each_of_its_events_once_in_order);

async fn a_client_connected_before_a_submission_receives_each_of_its_events_once_in_order(db: Db) {
    let app = spawn_app(db).await;
    let mut client = websocket_client(&app, "/ws").await;
    let id = app.submit(&approvable_application()).await;
    let mut received = Vec::new();
    read_events(&mut client, &mut received, |r| has_event(r, &id, "ApplicantNotified")).await;

    let history = app.events(&id).await;
    let streamed = of_loan(&received, &id);
    assert_same_as_history(&streamed, &history, &id);
    assert_strictly_increasing(&received);
    let keys: Vec<&str> = ["id", "type", "loan_id", "status", "at", "data"].into();
    for event in &received {
        let fields: Vec<&str> = event.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields.len(), keys.len(), "{event}");
        assert!(keys.iter().all(|k| fields.contains(k)), "{event}");
    }
    let last = streamed.last().unwrap();
    assert_eq!(last["status"], "approved", "the status after notification: {last}");
    // Submitted and started (its credit check and appraisal requested) in one unit.
    assert_eq!(streamed[0]["status"], "evaluating");
}

both_backends!(a_loan_socket_replays_the_history_after_the_given_id_then_goes_live);

async fn a_loan_socket_replays_the_history_after_the_given_id_then_goes_live(db: Db) {
    // Slow bureaus: the loan is still running when the socket opens.
    let app = spawn_app_with(db, |s| {
        s.bureaus.credit_latency_ms = 300;
        s.bureaus.appraisal_latency_ms = 500;
    })
    .await;
    let id = app.submit(&approvable_application()).await;
    let other = app.submit(&approvable_application()).await;
    let mut client = websocket_client(&app, &format!("/ws/loans/{id}?after=0")).await;
    let mut received = Vec::new();
    read_events(&mut client, &mut received, |r| has_event(r, &id, "ApplicantNotified")).await;
    app.wait_finished(&other, WITHIN).await;

    assert!(received.iter().all(|e| e["loan_id"] == id.as_str()), "only the loan's events: {received:?}");
    assert_same_as_history(&received, &app.events(&id).await, &id);
    // Replayed (LoanSubmitted) and live events carry the same statuses a live-only client sees.
    let statuses: Vec<&str> = received.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert!(statuses.iter().all(|s| ["evaluating", "approved"].contains(s)), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"approved"));
}

both_backends!(sessions_opened_while_loans_are_processed_miss_nothing_after_their_start);

/// The subscribe race: sessions open while events are being committed. Each must receive a
/// contiguous run of the global history, up to its end, every event once.
async fn sessions_opened_while_loans_are_processed_miss_nothing_after_their_start(db: Db) {
    let app = spawn_app(db).await;
    let mut ids = Vec::new();
    // Each session, with how many loans had been submitted when it opened.
    let mut clients = Vec::new();
    for round in 0..4 {
        for _ in 0..5 {
            ids.push(app.submit(&approvable_application()).await);
        }
        if round < 3 {
            clients.push((websocket_client(&app, "/ws").await, ids.len()));
        }
    }
    for id in &ids {
        app.wait_finished(id, WITHIN).await;
    }
    let history = global_history(&app).await;
    let newest = history.last().unwrap().0;
    for (n, (client, submitted_before)) in clients.iter_mut().enumerate() {
        let mut received = Vec::new();
        read_events(client, &mut received, |r| r.last().and_then(|e| e["id"].as_i64()) == Some(newest)).await;
        let first = received[0]["id"].as_i64().unwrap();
        let expected: Vec<(i64, String)> = history.iter().filter(|(id, _)| *id >= first).cloned().collect();
        assert_eq!(ids_and_types(&received), expected, "session {n}: a gap or a duplicate");
        for id in &ids[*submitted_before..] {
            assert_eq!(ids_and_types(&of_loan(&received, id)), ids_and_types(&app.events(id).await), "session {n}");
        }
    }
}

both_backends!(an_unknown_loan_is_a_404_problem_before_any_upgrade);

async fn an_unknown_loan_is_a_404_problem_before_any_upgrade(db: Db) {
    let app = spawn_app(db).await;
    let upgrade = |path: &str| {
        app.client
            .get(app.url(path))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
    };
    for path in ["/ws/loans/0190b6e2-7c3a-7d4e-8f00-0123456789ab", "/ws/loans/not-a-uuid"] {
        let response = upgrade(path).await.expect("GET");
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    let response = upgrade("/ws?after=-3").await.expect("GET");
    assert_eq!(response.status().as_u16(), 400, "a negative start id");
    let response = upgrade("/ws?after=9223372036854775807").await.expect("GET");
    assert_eq!(response.status().as_u16(), 400, "a start beyond the newest event");
    let body: serde_json::Value = response.json().await.expect("a problem");
    assert_eq!(body["errors"][0]["field"], "after", "{body}");
    let plain = app.client.get(app.url("/ws")).send().await.expect("GET");
    assert_eq!(plain.status().as_u16(), 400, "a request that is no handshake");
}
