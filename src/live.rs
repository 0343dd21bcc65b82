//! The live event bus: every committed history event, in commit order, for the streams
//! (WebSocket, SSE, dashboard). The writer publishes right after each batch commits, so a
//! subscriber never sees an event that is not durable. Publishing costs nothing when nobody
//! listens.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

/// Events buffered per subscriber; a subscriber that falls further behind is told it lagged.
const BUS_CAPACITY: usize = 8_192;

/// One committed event, as streams send it.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<LiveEvent>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BUS_CAPACITY);
        Self { sender }
    }

    /// Whether anyone listens (so publishers can skip building events).
    pub fn has_subscribers(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    pub fn publish(&self, event: LiveEvent) {
        // An error only means nobody listens right now.
        let _ = self.sender.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.sender.subscribe()
    }
}
