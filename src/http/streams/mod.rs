//! Live event streams: WebSocket (`/ws`, `/ws/loans/{id}`) and Server-Sent Events
//! (`/api/v1/events/stream`, `/api/v1/loans/{id}/events/stream`).
//!
//! Every stream sends the same JSON object per event, [`LiveEventMessage`] (a view of a [`LiveEvent`]):
//! `{"id", "type", "loan_id", "status", "at", "data"}`, where `id` is the event's global id (as in
//! `GET /api/v1/loans/{id}/events`), each event once, in the order of the history.
//!
//! **Where events come from**: the database history, in id order, always. A stream first reads
//! the history after its start page by page, then takes new events from the node's one reader of
//! the history ([`LiveFeed`]), which the writers' notices (local, or from other nodes through the
//! broker) only wake. So a stream sends ids in increasing order, each once, with no gap, also in a
//! cluster and also while the broker is away. See `docs/live-streams.md`.
//!
//! **Subscribing without a gap** (the same mechanism serves SSE resume): a stream starts after an
//! event id, either the one the client names (`Last-Event-ID`, `?after=`; one beyond the newest
//! committed event is refused) or the newest id in the database at connect. It subscribes to the
//! feed first, then reads the history after its start: everything the feed passed on before the
//! subscription is in that read, everything after comes through the feed, and the stream drops
//! what it has already sent (by id, see [`Cursor`]).
//!
//! **Slow clients**: the feed is a bounded ring per subscriber. A stream is only advanced when its
//! client takes data, so a client that does not keep up falls behind in the ring without slowing
//! anyone else; once it is overrun the stream ends (WebSocket: close frame with the reason and the
//! id to resume after; SSE: a `reconnect` event, then end of stream, and `Last-Event-ID` resumes it).
//!
//! **Shut-down and caps**: when the node shuts down every stream ends at once (WebSocket close
//! 1001, SSE a `reconnect` event); streams are capped per client and per node ([`StreamSlots`]).

mod feed;
mod history;
mod message;
mod slots;
pub(super) mod sse;
pub(super) mod ws;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{web, HttpRequest};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use super::errors::{loan_in_path, ApiError};
use super::state::AppState;
use crate::domain::{FieldError, LoanId};
use crate::messages::LiveEvent;
use crate::persistence::queries;

pub use feed::LiveFeed;
pub use message::LiveEventMessage;
pub use slots::{Refused, Slot, StreamSlots};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(ws::all))
        .route("/ws/loans/{id}", web::get().to(ws::one))
        .route("/api/v1/events/stream", web::get().to(sse::all))
        .route("/api/v1/loans/{id}/events/stream", web::get().to(sse::one));
}

/// Which events a stream carries.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    /// One loan's; `key` is the id as events carry it.
    Loan {
        id: LoanId,
        key: String,
    },
}

impl Scope {
    fn matches(&self, event: &LiveEvent) -> bool {
        match self {
            Scope::All => true,
            Scope::Loan { key, .. } => event.loan_id == *key,
        }
    }
}

/// `?after=N`: start after event id N (0 = from the beginning of the history).
#[derive(Debug, Deserialize)]
pub struct AfterQuery {
    after: Option<String>,
}

fn parse_event_id(field: &str, raw: &str) -> Result<i64, ApiError> {
    raw.trim().parse::<i64>().ok().filter(|id| *id >= 0).ok_or_else(|| {
        ApiError::BadParameter(FieldError {
            field: field.into(),
            message: "must be an event id (an integer >= 0)".into(),
        })
    })
}

/// A start the client named: the parameter that named it, and the event id.
pub type NamedStart = (&'static str, i64);

impl AfterQuery {
    fn after(&self) -> Result<Option<i64>, ApiError> {
        self.after.as_deref().filter(|s| !s.is_empty()).map(|raw| parse_event_id("after", raw)).transpose()
    }
}

/// What a stream has sent so far: it admits an event only once, after its start, within its
/// scope. Events reach it in id order (history, then the feed), so the newest id sent says it all.
#[derive(Debug)]
pub struct Cursor {
    scope: Scope,
    newest: i64,
}

impl Cursor {
    pub fn new(scope: Scope, after: i64) -> Self {
        Self { scope, newest: after }
    }

    /// The highest id sent (or the start): history pages are read after it, and a client that
    /// reconnects resumes after it.
    pub fn newest_sent(&self) -> i64 {
        self.newest
    }

    /// Whether to send `event`; if so, it counts as sent.
    pub fn admit(&mut self, event: &LiveEvent) -> bool {
        if event.id <= self.newest || !self.scope.matches(event) {
            return false;
        }
        self.newest = event.id;
        true
    }
}

/// What the streams share besides [`AppState`], registered as app data of its own (so that the
/// state, which every part of the HTTP layer uses, does not depend on the streams).
pub struct Streams {
    /// New events, and the node's closing.
    pub feed: LiveFeed,
    /// The open streams, capped per client and on the node.
    pub slots: StreamSlots,
}

/// Resolves when the node shuts down.
pub type Closing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A stream's start, its live feed (taken in the order that leaves no gap), its place among the
/// open streams, and the node's closing.
pub struct Subscription {
    /// The stream sends events after this id.
    pub after: i64,
    pub live: broadcast::Receiver<Arc<LiveEvent>>,
    pub slot: Slot,
    pub closing: Closing,
}

/// Resolve the loan of a per-loan stream: an unknown or malformed id is a 404 (before any upgrade).
async fn existing_loan(state: &AppState, raw: &str) -> Result<Scope, ApiError> {
    let id = loan_in_path(raw)?;
    let exists = state.db.read(move |c| Ok(queries::loan(c, id)?.is_some())).await?;
    if !exists {
        return Err(ApiError::missing_loan(id));
    }
    Ok(Scope::Loan { id, key: id.to_string() })
}

/// Take a place among the open streams, fix the start (the newest event id now, unless the
/// client named one), then subscribe. The caller replays the history after `after` before it
/// reads the live feed. A named start beyond the newest committed event is refused: nothing the
/// stream could send would ever follow it (ids only grow), so the stream would stay silent.
async fn subscribe(
    state: &AppState,
    streams: &Streams,
    req: &HttpRequest,
    after: Option<NamedStart>,
) -> Result<Subscription, ApiError> {
    let slot = streams.slots.take(client_of(state, req)).map_err(|refused| match refused {
        Refused::ClientFull(_) => ApiError::RateLimited { retry_after_secs: 1 },
        Refused::NodeFull(_) => ApiError::Unavailable(Box::new(refused)),
    })?;
    let newest = state.db.read(history::latest_event_id).await?;
    let after = match after {
        Some((field, after)) if after > newest => {
            return Err(ApiError::bad_parameter(field, format!("is beyond the newest event ({newest})")));
        }
        Some((_, after)) => after,
        None => newest,
    };
    Ok(Subscription { after, live: streams.feed.subscribe(), slot, closing: Box::pin(streams.feed.closing()) })
}

/// The client a stream is counted against (its address, or the forwarded one behind a trusted proxy).
fn client_of(state: &AppState, req: &HttpRequest) -> IpAddr {
    let peer = req.peer_addr().map(|a| a.ip());
    super::edge::client_address(peer, req.headers(), &state.settings.http.proxies)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// One item of the live feed.
#[derive(Debug)]
pub enum Live {
    Event(Arc<LiveEvent>),
    /// The subscriber was overrun: this many events were lost to it.
    Lagged(u64),
}

/// The bus as a stream; it ends when the bus closes.
pub fn live_stream(receiver: broadcast::Receiver<Arc<LiveEvent>>) -> impl Stream<Item = Live> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(event) => Some((Live::Event(event), receiver)),
            Err(RecvError::Lagged(missed)) => Some((Live::Lagged(missed), receiver)),
            Err(RecvError::Closed) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn event(id: i64, loan: &str) -> LiveEvent {
        LiveEvent {
            id,
            kind: "CreditChecked".into(),
            loan_id: loan.into(),
            status: "evaluating".into(),
            at: "2026-01-01T00:00:00Z".into(),
            data: serde_json::json!({}),
        }
    }

    #[test]
    fn a_cursor_admits_each_event_once_in_order_and_within_its_scope() {
        let id = LoanId::generate();
        let key = id.to_string();
        let mut cursor = Cursor::new(Scope::Loan { id, key: key.clone() }, 10);
        assert!(!cursor.admit(&event(9, &key)), "before the start");
        assert!(cursor.admit(&event(11, &key)));
        assert!(!cursor.admit(&event(11, &key)), "a duplicate (history, then live)");
        assert!(!cursor.admit(&event(12, "another loan")));
        assert!(cursor.admit(&event(13, &key)));
        assert_eq!(cursor.newest_sent(), 13);
    }

    #[test]
    fn a_cursor_never_goes_back_in_id_order() {
        let mut cursor = Cursor::new(Scope::All, 0);
        assert!(cursor.admit(&event(5, "a")));
        assert!(!cursor.admit(&event(3, "b")), "an id below one sent would break a resume after 5");
        assert_eq!(cursor.newest_sent(), 5);
    }

    #[actix_web::test]
    async fn an_overrun_subscriber_is_told_how_many_events_it_lost() {
        let (sender, receiver) = broadcast::channel(2);
        for id in 1..=5 {
            sender.send(Arc::new(event(id, "a"))).unwrap();
        }
        drop(sender);
        let items: Vec<Live> = live_stream(receiver).collect().await;
        assert!(matches!(items[0], Live::Lagged(3)), "{items:?}");
        let ids: Vec<i64> = items[1..].iter().map(|i| if let Live::Event(e) = i { e.id } else { -1 }).collect();
        assert_eq!(ids, [4, 5]);
    }
}
