//! The live event notice: which event ids are committed, for the streams (WebSocket, SSE,
//! dashboard). The writer announces the newest id right after each batch commits; in cluster mode
//! the committed events also go to every node through the broker's fanout, and each node announces
//! them on its own bus. A notice only wakes the streams' reader: the streams take the events from
//! the database, so a lost or late notice delays an event but never loses it or reorders it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// One committed event, as streams send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// The event's global id (the same as in `GET /api/v1/loans/{id}/events`).
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub loan_id: String,
    /// The loan's status after the unit that recorded this event.
    pub status: String,
    pub at: String,
    pub data: serde_json::Value,
}

/// Where committed events go in cluster mode.
type Forward = Box<dyn Fn(LiveEvent) + Send + Sync>;

#[derive(Clone)]
pub struct EventBus {
    /// The newest event id this node has heard of as committed (0 before any).
    committed: Arc<watch::Sender<i64>>,
    /// Cluster mode: committed events go to every node through the broker's fanout, and come
    /// back to each node's bus from there.
    forward: Option<Arc<Forward>>,
}

impl EventBus {
    /// Embedded mode: every commit is this node's own.
    pub fn local() -> Self {
        Self { committed: Arc::new(watch::Sender::new(0)), forward: None }
    }

    /// Cluster mode: committed events also go through `forward` (to every node).
    pub fn forwarding(forward: impl Fn(LiveEvent) + Send + Sync + 'static) -> Self {
        Self { forward: Some(Arc::new(Box::new(forward))), ..Self::local() }
    }

    /// Whether committed events must be built for other nodes (the notice alone needs only ids).
    pub fn forwards(&self) -> bool {
        self.forward.is_some()
    }

    /// Events up to `newest` are committed: wakes this node's readers.
    pub fn committed(&self, newest: i64) {
        self.committed.send_if_modified(|known| {
            let newer = newest > *known;
            if newer {
                *known = newest;
            }
            newer
        });
    }

    /// A committed event for the other nodes (cluster mode; nothing otherwise).
    pub fn forward(&self, event: LiveEvent) {
        if let Some(forward) = &self.forward {
            forward(event);
        }
    }

    /// An event another node committed (from the fanout).
    pub fn publish_local(&self, event: LiveEvent) {
        self.committed(event.id);
    }

    /// Notices of commits: the value is the newest committed id heard of; notices that arrive
    /// while a reader is busy are folded into one.
    pub fn notices(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_fold_into_the_newest_id_and_never_go_back() {
        let bus = EventBus::local();
        let mut notices = bus.notices();
        bus.committed(3);
        bus.committed(7);
        bus.committed(5);
        assert!(notices.has_changed().unwrap());
        assert_eq!(*notices.borrow_and_update(), 7);
        bus.committed(6);
        assert!(!notices.has_changed().unwrap(), "an older id wakes nobody");
    }
}
