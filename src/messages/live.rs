//! The live event bus: every committed history event, in commit order, for the streams
//! (WebSocket, SSE, dashboard). The writer publishes right after each batch commits, so a
//! subscriber never sees an event that is not durable. Publishing costs nothing when nobody
//! listens.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Events buffered per subscriber; a subscriber that falls further behind is told it lagged.
const BUS_CAPACITY: usize = 8_192;

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
    sender: broadcast::Sender<Arc<LiveEvent>>,
    /// Cluster mode: committed events go to every node through the broker's fanout, and come
    /// back to each node's bus from there.
    forward: Option<Arc<Forward>>,
}

impl EventBus {
    /// Embedded mode: committed events go straight to this node's subscribers.
    pub fn local() -> Self {
        let (sender, _) = broadcast::channel(BUS_CAPACITY);
        Self { sender, forward: None }
    }

    /// Cluster mode: committed events go through `forward` (to every node, this one included).
    pub fn forwarding(forward: impl Fn(LiveEvent) + Send + Sync + 'static) -> Self {
        Self { forward: Some(Arc::new(Box::new(forward))), ..Self::local() }
    }

    /// Whether anyone listens (so publishers can skip building events).
    pub fn has_subscribers(&self) -> bool {
        self.forward.is_some() || self.sender.receiver_count() > 0
    }

    /// A committed event: to this node's subscribers, or (cluster mode) to every node's.
    pub fn publish(&self, event: LiveEvent) {
        match &self.forward {
            Some(forward) => forward(event),
            None => self.publish_local(event),
        }
    }

    /// To this node's subscribers only.
    pub fn publish_local(&self, event: LiveEvent) {
        // An error only means nobody listens right now.
        let _ = self.sender.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.sender.subscribe()
    }
}
