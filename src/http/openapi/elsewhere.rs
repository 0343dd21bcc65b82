//! Operations whose handlers carry no annotation: the streams (WebSocket upgrades and
//! endless SSE answers, documented here and excluded from schemathesis) and the dead-letter
//! admin routes. Each function exists only to carry its `#[utoipa::path]`.

use super::schemas::{DeadLetterList, DeadLetterReplay};
use super::Problem;

/// Every loan's events, live, over a WebSocket (one JSON object per text frame).
#[utoipa::path(get, path = "/ws", tag = "streams", responses(
    (status = 101, description = "WebSocket handshake accepted; frames carry `LiveEventMessage` objects"),
    (status = 400, description = "Not a WebSocket handshake"),
))]
#[allow(dead_code)]
fn ws_all() {}

/// One loan's events, live, over a WebSocket.
#[utoipa::path(get, path = "/ws/loans/{id}", tag = "streams",
    params(("id" = String, Path, description = "The loan's id")),
    responses(
        (status = 101, description = "WebSocket handshake accepted; frames carry `LiveEventMessage` objects"),
        (status = 400, description = "Not a WebSocket handshake"),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)]
fn ws_loan() {}

/// Every loan's events as Server-Sent Events: the history after `Last-Event-ID`, then live.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "streams",
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id")),
    responses((status = 200, description = "An endless `text/event-stream` of `LiveEventMessage` data", body = String, content_type = "text/event-stream")))]
#[allow(dead_code)]
fn sse_all() {}

/// One loan's events as Server-Sent Events: its history (after `Last-Event-ID`), then live.
#[utoipa::path(get, path = "/api/v1/loans/{id}/events/stream", tag = "streams",
    params(
        ("id" = String, Path, description = "The loan's id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "A `text/event-stream` of `LiveEventMessage` data", body = String, content_type = "text/event-stream"),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)]
fn sse_loan() {}

/// Messages given up on (a handler that kept failing, or dead-lettered by the broker).
#[utoipa::path(get, path = "/admin/dead-letters", tag = "admin", security(("admin_token" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)")),
    responses(
        (status = 200, description = "Dead letters, newest first", body = DeadLetterList),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)]
fn dead_letters() {}

/// Put a dead letter back in the outbox (attempts reset) and deliver it.
#[utoipa::path(post, path = "/admin/dead-letters/{id}/replay", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "The dead letter's message id")),
    responses(
        (status = 202, description = "Replayed", body = DeadLetterReplay),
        (status = 401, description = "Missing or wrong token", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such dead letter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)]
fn replay_dead_letter() {}
