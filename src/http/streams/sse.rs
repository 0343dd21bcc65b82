//! Server-Sent Events. Each event is one SSE message of the default type (`message`, so an
//! `EventSource`'s `onmessage` sees every event in order; the event's type is in the JSON):
//!
//! ```text
//! id: 42
//! data: {"id":42,"type":"CreditChecked","loan_id":"…","status":"evaluating","at":"…","data":{…}}
//! ```
//!
//! Nothing else carries an `id:`. The stream opens with `retry:` and a comment, and sends a
//! keep-alive comment every [`KEEP_ALIVE`]. Where a stream starts: after `Last-Event-ID` when the
//! client sends one (a reconnect), else after `?after=N`, else the per-loan stream replays the
//! loan's whole history and the global stream starts at the newest event at connect.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::Either;
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{interval_at, Instant, Interval};

use super::{
    existing_loan, history, parse_event_id, subscribe, AfterQuery, Closing, Cursor, LiveEventMessage, NamedStart,
    Scope, Slot, Streams, Subscription,
};
use crate::http::access::Credential;
use crate::http::errors::{ApiError, Problem};
use crate::http::state::AppState;
use crate::messages::LiveEvent;
use crate::persistence::Database;

/// A comment this often keeps proxies and clients from timing the stream out, and lets the
/// server notice a client that went away.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a disconnected `EventSource` waits before it reconnects.
const RETRY_MS: u32 = 2_000;
/// The header an `EventSource` resumes with.
pub const LAST_EVENT_ID: &str = "Last-Event-ID";

/// Every loan's events as Server-Sent Events: the history after `Last-Event-ID`, then live.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "streams", operation_id = "sse_all",
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id")),
    responses((status = 200, description = "An endless `text/event-stream` of `LiveEventMessage` data", body = String, content_type = "text/event-stream")))]
pub async fn all(
    req: HttpRequest,
    query: web::Query<AfterQuery>,
    state: web::Data<AppState>,
    streams: web::Data<Streams>,
) -> Result<HttpResponse, ApiError> {
    let after = resume_point(&req, &query)?;
    let subscription = subscribe(&state, &streams, &req, after).await?;
    Ok(respond(&state, Scope::All, subscription, credential_lasts(&req)))
}

/// One loan's events as Server-Sent Events: its history (after `Last-Event-ID`), then live.
#[utoipa::path(get, path = "/api/v1/loans/{id}/events/stream", tag = "streams", operation_id = "sse_loan",
    params(
        ("id" = String, Path, description = "The loan's id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "A `text/event-stream` of `LiveEventMessage` data", body = String, content_type = "text/event-stream"),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn one(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AfterQuery>,
    state: web::Data<AppState>,
    streams: web::Data<Streams>,
) -> Result<HttpResponse, ApiError> {
    let after = resume_point(&req, &query)?;
    let scope = existing_loan(&state, &path).await?;
    let subscription = subscribe(&state, &streams, &req, Some(after.unwrap_or(("after", 0)))).await?;
    Ok(respond(&state, scope, subscription, credential_lasts(&req)))
}

/// `Last-Event-ID` wins over `?after=`: an `EventSource` that reconnects keeps its URL.
fn resume_point(req: &HttpRequest, query: &AfterQuery) -> Result<Option<NamedStart>, ApiError> {
    let header = req.headers().get(LAST_EVENT_ID).map(|v| v.to_str().unwrap_or("x").trim());
    match header.filter(|v| !v.is_empty()) {
        Some(raw) => parse_event_id(LAST_EVENT_ID, raw).map(|id| Some((LAST_EVENT_ID, id))),
        None => Ok(query.after()?.map(|id| ("after", id))),
    }
}

/// How long the request's credential stays valid, if it expires (a JWT).
fn credential_lasts(req: &HttpRequest) -> Option<Duration> {
    req.extensions().get::<Credential>().and_then(Credential::remaining)
}

/// The stream ends when its credential expires, if it does.
fn respond(state: &AppState, scope: Scope, subscription: Subscription, lasts: Option<Duration>) -> HttpResponse {
    let feed = Feed {
        db: state.db.clone(),
        cursor: Cursor::new(scope, subscription.after),
        pending: VecDeque::new(),
        replaying: true,
        live: subscription.live,
        closing: subscription.closing,
        _slot: subscription.slot,
        keep_alive: interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
        state: FeedState::Opening,
    };
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(feed.into_stream().take_until(match lasts {
            Some(lasts) => Either::Left(tokio::time::sleep(lasts)),
            None => Either::Right(std::future::pending()),
        }))
}

#[derive(Debug, PartialEq, Eq)]
enum FeedState {
    Opening,
    Open,
    /// The last chunk has been sent (the client was overrun, the history failed, the node is
    /// shutting down).
    Ended,
}

/// One SSE response: the history after the start, then the live feed.
struct Feed {
    db: Database,
    cursor: Cursor,
    /// History events read but not sent yet.
    pending: VecDeque<LiveEvent>,
    replaying: bool,
    live: broadcast::Receiver<Arc<LiveEvent>>,
    /// Resolves when the node shuts down.
    closing: Closing,
    /// Held while the stream is open.
    _slot: Slot,
    keep_alive: Interval,
    state: FeedState,
}

impl Feed {
    fn into_stream(self) -> impl Stream<Item = Result<Bytes, Infallible>> {
        futures_util::stream::unfold(self, |mut feed| async move {
            let chunk = feed.next_chunk().await?;
            Some((Ok(chunk), feed))
        })
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        match self.state {
            FeedState::Ended => return None,
            FeedState::Opening => {
                self.state = FeedState::Open;
                return Some(Bytes::from(format!("retry: {RETRY_MS}\n: stream open\n\n")));
            }
            FeedState::Open => {}
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                if self.cursor.admit(&event) {
                    return Some(message(&event));
                }
                continue;
            }
            if self.replaying {
                let page = history_page(self.db.clone(), &self.cursor);
                let read = tokio::select! {
                    biased;
                    _ = self.closing.as_mut() => return Some(self.end("server shutting down")),
                    read = page => read,
                };
                match read {
                    Ok((events, more)) => {
                        self.replaying = more;
                        self.pending.extend(events);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "an SSE stream could not read the history");
                        return Some(self.end("history unavailable"));
                    }
                }
                continue;
            }
            tokio::select! {
                biased;
                _ = self.closing.as_mut() => return Some(self.end("server shutting down")),
                _ = self.keep_alive.tick() => return Some(Bytes::from_static(b": keep-alive\n\n")),
                received = self.live.recv() => match received {
                    Ok(event) if self.cursor.admit(&event) => return Some(message(&event)),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        let resume = self.cursor.newest_sent();
                        tracing::info!(missed, resume, "an SSE client too slow for the stream was disconnected");
                        return Some(self.end(&format!("too slow: {missed} events behind")));
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// The last message of a stream: a `reconnect` event saying why and where to resume (the
    /// id of the last event sent, which an `EventSource` sends back as `Last-Event-ID` by itself).
    fn end(&mut self, reason: &str) -> Bytes {
        self.state = FeedState::Ended;
        Bytes::from(reconnect(reason, self.cursor.newest_sent()))
    }
}

/// The next page of the stream's history after what it has sent.
fn history_page(
    db: Database,
    cursor: &Cursor,
) -> impl Future<Output = Result<(Vec<LiveEvent>, bool), crate::persistence::StoreError>> + 'static {
    let (scope, after) = (cursor.scope.clone(), cursor.newest_sent());
    async move { db.read(move |conn| history::page_after(conn, &scope, after)).await }
}

/// The `reconnect` event: not of the default type, so an `EventSource`'s `onmessage` (events)
/// does not see it; `addEventListener("reconnect", ..)` does.
fn reconnect(reason: &str, after: i64) -> String {
    let data = serde_json::json!({ "reason": reason, "after": after });
    format!("event: reconnect\ndata: {data}\n\n")
}

/// One event as an SSE message (serde_json's compact output has no newline: one `data:` line).
fn message(event: &LiveEvent) -> Bytes {
    let json = LiveEventMessage::from(event).to_json().unwrap_or_else(|_| "null".into());
    Bytes::from(format!("id: {}\ndata: {json}\n\n", event.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_message_names_the_reason_and_the_resume_point() {
        assert_eq!(
            reconnect("server shutting down", 41),
            "event: reconnect\ndata: {\"after\":41,\"reason\":\"server shutting down\"}\n\n"
        );
    }
}
