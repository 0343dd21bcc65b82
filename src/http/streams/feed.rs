//! The node's one reader of new events: the source of every live stream.
//!
//! The database history is the source of truth. Notices on the [`EventBus`] (this node's commits,
//! and in a cluster other nodes' through the broker's fanout) only wake this reader, which then
//! reads the events after the last one it passed on, in id order, and hands them to every stream
//! of the node through one broadcast ring. A notice that never comes (the broker is down, the
//! fanout dropped it) costs latency, not events: the reader also looks every [`POLL`].
//!
//! Why a read in id order is complete: every writer of every node takes the event-order lock
//! (`persistence::writer`) before its events get their ids and holds it through the commit, and
//! a commit is visible before its locks are released. So ids are handed out in commit order, and
//! a read that sees id N also sees every committed id below N; an id never appears later below
//! one already read.
//!
//! One read per wake-up serves every stream of the node, and notices that arrive while a read
//! runs are folded into the next one: the cost does not grow with the number of streams.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::{history, Scope};
use crate::messages::{EventBus, LiveEvent};
use crate::persistence::Database;

/// How often the reader looks for events nobody announced.
pub const POLL: Duration = Duration::from_secs(1);

/// Events buffered per stream; a stream that falls further behind is told it lagged.
const RING: usize = 8_192;

/// The live side of the streams: new events in id order, and the node's closing.
#[derive(Clone)]
pub struct LiveFeed {
    events: broadcast::Sender<Arc<LiveEvent>>,
    closing: Arc<watch::Sender<bool>>,
}

impl LiveFeed {
    /// Start the reader (on the current runtime); it stops when the feed is closed.
    pub fn start(db: Database, bus: &EventBus) -> Self {
        let (events, _) = broadcast::channel(RING);
        let closing = Arc::new(watch::Sender::new(false));
        let reader = Reader { db, events: events.clone(), tail: 0 };
        tokio::spawn(reader.run(bus.notices(), closing.subscribe()));
        Self { events, closing }
    }

    /// New events from now on: every one after the newest the reader has passed on, in id order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.events.subscribe()
    }

    /// The node is shutting down: every stream ends (with its reconnect notice) and the reader stops.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once the node is shutting down.
    pub fn closing(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|closing| *closing).await;
        }
    }
}

struct Reader {
    db: Database,
    events: broadcast::Sender<Arc<LiveEvent>>,
    /// The newest id passed on (or known to be committed while nobody listened).
    tail: i64,
}

impl Reader {
    async fn run(mut self, notices: watch::Receiver<i64>, mut closing: watch::Receiver<bool>) {
        // `None` once every sender of notices is gone (the writers closed): polling goes on.
        let mut notices = Some(notices);
        self.tail = loop {
            match self.db.read(history::latest_event_id).await {
                Ok(newest) => break newest,
                Err(err) => tracing::warn!(error = %err, "the live feed cannot read the newest event id yet"),
            }
            tokio::select! {
                _ = closing.wait_for(|closing| *closing) => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        };
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let announced = tokio::select! {
                _ = closing.wait_for(|closing| *closing) => return,
                announced = next_notice(&mut notices) => announced,
                _ = poll.tick() => None,
            };
            if self.events.receiver_count() == 0 {
                self.skip_ahead(announced).await;
            } else if announced.is_none_or(|newest| newest > self.tail) {
                self.read_new().await;
            }
        }
    }

    /// Nobody listens: move the tail to what is committed without reading it. A stream that
    /// subscribes afterwards reads the history up to there itself (it subscribes, then reads).
    /// The count is checked again after the await: one that subscribed meanwhile may have read
    /// the history before the newest id was committed, and needs the events read for it.
    async fn skip_ahead(&mut self, announced: Option<i64>) {
        let newest = match announced {
            Some(newest) => newest,
            None => match self.db.read(history::latest_event_id).await {
                Ok(newest) if self.events.receiver_count() == 0 => newest,
                _ => return,
            },
        };
        self.tail = self.tail.max(newest);
    }

    /// Pass on every committed event after the tail, page by page.
    async fn read_new(&mut self) {
        loop {
            let after = self.tail;
            let page = self.db.read(move |conn| history::page_after(conn, &Scope::All, after)).await;
            let (events, more) = match page {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(error = %err, "the live feed could not read new events; trying again");
                    return;
                }
            };
            for event in events {
                self.tail = event.id;
                // An error only means that nobody listens any more.
                let _ = self.events.send(Arc::new(event));
            }
            if !more {
                return;
            }
        }
    }
}

/// The newest committed id of the next notice; `None` (and no more waiting on notices) once
/// nobody can send one.
async fn next_notice(notices: &mut Option<watch::Receiver<i64>>) -> Option<i64> {
    let Some(receiver) = notices else { return std::future::pending().await };
    match receiver.changed().await {
        Ok(()) => Some(*receiver.borrow_and_update()),
        Err(_) => {
            *notices = None;
            None
        }
    }
}
