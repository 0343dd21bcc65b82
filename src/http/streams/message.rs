//! The JSON object every stream sends per event (a WebSocket text frame, an SSE `data:` line).

use serde::Serialize;
use utoipa::ToSchema;

use crate::messages::LiveEvent;

/// One event as the streams send it (a WebSocket frame, or an SSE `data:` line whose `id:`
/// is the event's `id`).
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveEventMessage<'a> {
    /// The event's global id, as in `GET /api/v1/loans/{id}/events`.
    id: i64,
    /// The event type, e.g. `CreditChecked`.
    #[serde(rename = "type")]
    kind: &'a str,
    loan_id: &'a str,
    /// The loan's status after the event.
    status: &'a str,
    at: &'a str,
    data: &'a serde_json::Value,
}

impl<'a> From<&'a LiveEvent> for LiveEventMessage<'a> {
    fn from(event: &'a LiveEvent) -> Self {
        Self {
            id: event.id,
            kind: &event.kind,
            loan_id: &event.loan_id,
            status: &event.status,
            at: &event.at,
            data: &event.data,
        }
    }
}

impl LiveEventMessage<'_> {
    /// The message as one line of compact JSON (serde_json's compact output has no newline).
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_the_event_as_the_bus_carries_it() {
        let event = LiveEvent {
            id: 42,
            kind: "CreditChecked".into(),
            loan_id: "0190b6e2-7c3a-7d4e-8f00-0123456789ab".into(),
            status: "evaluating".into(),
            at: "2026-01-01T00:00:00.000000Z".into(),
            data: serde_json::json!({ "score": 720, "reserved": true }),
        };
        assert_eq!(LiveEventMessage::from(&event).to_json().unwrap(), serde_json::to_string(&event).unwrap());
    }
}
