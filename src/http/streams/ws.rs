//! WebSocket streams; each session is an actor. One text frame per event (a
//! [`LiveEventMessage`]). The server pings every [`HEARTBEAT_INTERVAL`]; a client silent for
//! [`CLIENT_TIMEOUT`] is closed. Frames from the client other than ping, pong and close are
//! ignored: the stream is one-way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, StreamHandler, WrapFuture};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use tokio::sync::broadcast;

use super::{
    existing_loan, history, live_stream, subscribe, AfterQuery, Closing, Cursor, Live, LiveEventMessage, Scope, Slot,
    Streams,
};
use crate::http::access::Credential;
use crate::http::errors::Problem;
use crate::http::state::AppState;
use crate::messages::LiveEvent;
use crate::persistence::Database;

/// How often the server pings.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A client that sends nothing (not even a pong) for this long is disconnected.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Every loan's events, live, over a WebSocket (one JSON object per text frame).
///
/// From now on, or after `?after=N`.
#[utoipa::path(get, path = "/ws", tag = "streams", operation_id = "ws_all", responses(
    (status = 101, description = "WebSocket handshake accepted; frames carry `LiveEventMessage` objects"),
    (status = 400, description = "Not a WebSocket handshake"),
))]
pub async fn all(
    req: HttpRequest,
    payload: web::Payload,
    query: web::Query<AfterQuery>,
    state: web::Data<AppState>,
    streams: web::Data<Streams>,
) -> actix_web::Result<HttpResponse> {
    let after = query.after()?;
    start(req, payload, (&state, &streams), Scope::All, after).await
}

/// One loan's events, live, over a WebSocket.
///
/// From now on, or after `?after=N`; 404 if the loan is unknown.
#[utoipa::path(get, path = "/ws/loans/{id}", tag = "streams", operation_id = "ws_loan",
    params(("id" = String, Path, description = "The loan's id")),
    responses(
        (status = 101, description = "WebSocket handshake accepted; frames carry `LiveEventMessage` objects"),
        (status = 400, description = "Not a WebSocket handshake"),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn one(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
    query: web::Query<AfterQuery>,
    state: web::Data<AppState>,
    streams: web::Data<Streams>,
) -> actix_web::Result<HttpResponse> {
    let after = query.after()?;
    let scope = existing_loan(&state, &path).await?;
    start(req, payload, (&state, &streams), scope, after).await
}

async fn start(
    req: HttpRequest,
    payload: web::Payload,
    (state, streams): (&AppState, &Streams),
    scope: Scope,
    after: Option<i64>,
) -> actix_web::Result<HttpResponse> {
    // Refuse a request that is no WebSocket handshake before touching the bus.
    ws::handshake(&req)?;
    let subscription = subscribe(state, streams, &req, after.map(|id| ("after", id))).await?;
    let lasts = req.extensions().get::<Credential>().and_then(Credential::remaining);
    let session = StreamSession {
        db: state.db.clone(),
        cursor: Cursor::new(scope, subscription.after),
        live: Some(subscription.live),
        closing: Some(subscription.closing),
        _slot: subscription.slot,
        last_heard: Instant::now(),
        lasts,
    };
    ws::start(session, &req, payload)
}

/// One client's stream: first the history after its start, page by page, then the live feed.
struct StreamSession {
    db: Database,
    cursor: Cursor,
    /// Taken when the replay is over and the feed is attached to the actor.
    live: Option<broadcast::Receiver<Arc<LiveEvent>>>,
    /// Resolves when the node shuts down; taken when the session starts.
    closing: Option<Closing>,
    /// Held while the session is open.
    _slot: Slot,
    last_heard: Instant,
    /// How long the credential it was opened with stays valid, if it expires (a JWT).
    lasts: Option<Duration>,
}

impl Actor for StreamSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(lasts) = self.lasts {
            ctx.run_later(lasts, |_, ctx| close(ctx, CloseCode::Policy, "the credential expired".into()));
        }
        if let Some(closing) = self.closing.take() {
            ctx.spawn(closing.into_actor(self).map(|_, session, ctx| {
                let resume = session.cursor.newest_sent();
                close(ctx, CloseCode::Away, format!("server shutting down; reconnect with ?after={resume}"));
            }));
        }
        self.heartbeat(ctx);
        self.replay_next_page(ctx);
    }
}

impl StreamSession {
    fn heartbeat(&self, ctx: &mut ws::WebsocketContext<Self>) {
        ctx.run_interval(HEARTBEAT_INTERVAL, |session, ctx| {
            if session.last_heard.elapsed() > CLIENT_TIMEOUT {
                close(ctx, CloseCode::Policy, "heartbeat timeout".into());
                return;
            }
            ctx.ping(b"");
        });
    }

    /// Send the next page of history; the live feed is attached only after the last page, so
    /// history and live events never interleave out of order.
    fn replay_next_page(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let db = self.db.clone();
        let scope = self.cursor.scope.clone();
        let after = self.cursor.newest_sent();
        let read = async move { db.read(move |conn| history::page_after(conn, &scope, after)).await };
        ctx.spawn(read.into_actor(self).map(|result, session, ctx| match result {
            Ok((events, more)) => {
                for event in &events {
                    session.send(ctx, event);
                }
                if more {
                    session.replay_next_page(ctx);
                } else if let Some(live) = session.live.take() {
                    ctx.add_stream(live_stream(live));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "a WebSocket stream could not read the history");
                close(ctx, CloseCode::Again, "history unavailable; reconnect later".into());
            }
        }));
    }

    fn send(&mut self, ctx: &mut ws::WebsocketContext<Self>, event: &LiveEvent) {
        if !self.cursor.admit(event) {
            return;
        }
        match LiveEventMessage::from(event).to_json() {
            Ok(json) => ctx.text(json),
            Err(err) => tracing::error!(error = %err, event_id = event.id, "an event did not serialise"),
        }
    }
}

fn close(ctx: &mut ws::WebsocketContext<StreamSession>, code: CloseCode, description: String) {
    ctx.close(Some(CloseReason { code, description: Some(description) }));
    ctx.stop();
}

impl StreamHandler<Live> for StreamSession {
    fn handle(&mut self, item: Live, ctx: &mut Self::Context) {
        match item {
            Live::Event(event) => self.send(ctx, &event),
            Live::Lagged(missed) => {
                let resume = self.cursor.newest_sent();
                tracing::info!(missed, resume, "a WebSocket client too slow for the stream was disconnected");
                close(
                    ctx,
                    CloseCode::Policy,
                    format!("too slow: {missed} events behind; reconnect with ?after={resume}"),
                );
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        close(ctx, CloseCode::Away, "server shutting down".into());
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for StreamSession {
    fn handle(&mut self, message: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match message {
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Pong(_) | ws::Message::Text(_) | ws::Message::Binary(_) | ws::Message::Nop) => {}
            Ok(ws::Message::Continuation(_)) => {}
            Err(err) => {
                tracing::debug!(error = %err, "WebSocket protocol error");
                close(ctx, CloseCode::Protocol, "protocol error".into());
            }
        }
    }
}
