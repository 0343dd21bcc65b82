//! Reading a message taken from a queue, and leaving one this build cannot read for a node that
//! can. During a rolling upgrade nodes of two versions consume the same queues: a newer node may
//! send a message kind an older one does not know. Such a message still has an envelope's frame
//! (its ids and a body with a `kind`); the older node publishes it back to its queue after a
//! delay (confirmed, then acks it: a requeue would count toward the delivery limit), with a
//! count in a header, so another consumer takes it. Past `broker.unknown_kind_deferrals` it is
//! dead-lettered: a message no node knows is not kept circulating. Only bytes that are no
//! envelope at all are dead-lettered on sight.

use std::collections::BTreeSet;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use lapin::types::AMQPValue;
use serde::Deserialize;

use super::BrokerContext;
use crate::domain::{LoanId, MessageId};
use crate::messages::Envelope;
use crate::settings::Settings;

/// The header that counts how often a message was left for another node.
pub const DEFERRALS_HEADER: &str = "x-loanflow-deferrals";
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// What a message from a queue holds.
#[derive(Debug, PartialEq)]
pub(super) enum Received {
    Envelopes(Vec<Envelope>),
    /// Envelopes whose body this build cannot read (a newer version's kind): their body kinds.
    UnknownKind(String),
    /// No envelope at all.
    Unreadable,
}

/// One envelope (its JSON object) or several (a JSON array of them).
pub(super) fn parse_message(text: &str) -> Result<Vec<Envelope>, serde_json::Error> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
    } else {
        Envelope::from_json(text).map(|envelope| vec![envelope])
    }
}

pub(super) fn read(data: &[u8], settings: &Settings) -> Received {
    let Ok(text) = std::str::from_utf8(data) else { return Received::Unreadable };
    match parse_message(text) {
        Ok(envelopes) if envelopes.is_empty() => Received::Unreadable,
        Ok(envelopes) => match treated_as_unknown(settings, &envelopes) {
            Some(kind) => Received::UnknownKind(kind),
            None => Received::Envelopes(envelopes),
        },
        Err(_) => unknown_kinds(text).map_or(Received::Unreadable, Received::UnknownKind),
    }
}

/// An envelope's frame: what every version's envelope has, whatever its body.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "message_id")]
    _message_id: MessageId,
    #[serde(rename = "loan_id")]
    _loan_id: LoanId,
    body: FrameBody,
}

#[derive(Deserialize)]
struct FrameBody {
    kind: String,
}

/// The body kinds (comma-separated) of a message of envelope frames, `None` if it is not one.
fn unknown_kinds(text: &str) -> Option<String> {
    let frames: Vec<Frame> = match text.trim_start().starts_with('[') {
        true => serde_json::from_str(text).ok()?,
        false => vec![serde_json::from_str(text).ok()?],
    };
    let kinds: BTreeSet<&str> = frames.iter().map(|frame| frame.body.kind.as_str()).collect();
    (!kinds.is_empty()).then(|| kinds.into_iter().collect::<Vec<_>>().join(","))
}

/// Test builds: `faults.unknown_kind` makes this node treat messages of that kind (a label such
/// as `check_credit`) as a kind it does not know, like a node of an older version.
#[cfg(feature = "test-faults")]
fn treated_as_unknown(settings: &Settings, envelopes: &[Envelope]) -> Option<String> {
    let kind = settings.faults.unknown_kind.as_str();
    let matches = !kind.is_empty() && envelopes.iter().any(|envelope| envelope.body.label() == kind);
    matches.then(|| kind.to_owned())
}

#[cfg(not(feature = "test-faults"))]
fn treated_as_unknown(_settings: &Settings, _envelopes: &[Envelope]) -> Option<String> {
    None
}

/// How often a delivery was left for another node before.
fn deferrals(delivery: &Delivery) -> u32 {
    let headers = delivery.properties.headers().as_ref();
    match headers.and_then(|h| h.inner().get(DEFERRALS_HEADER)) {
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// What to do with a message of an unknown kind left `deferrals` times before.
#[derive(Debug, PartialEq)]
enum Deferral {
    /// Publish it back to its queue after this delay.
    After(Duration),
    /// Left often enough: no node knows it. Dead-letter it.
    GiveUp,
}

/// `limit`: deferrals before giving up; `None` = never (the dead-letter queue: a dead letter is
/// kept until a node that knows its kind records it).
fn deferral(deferrals: u32, limit: Option<u32>) -> Deferral {
    if limit.is_some_and(|limit| deferrals >= limit) {
        return Deferral::GiveUp;
    }
    let delay = FIRST_DELAY.saturating_mul(1u32 << deferrals.min(16)).min(MAX_DELAY);
    Deferral::After(delay)
}

/// Leave a message of an unknown kind (`kinds`) taken from `queue` for a node that knows it:
/// beside the consumer (which goes on with the next delivery), wait, publish it back to `queue`
/// with its count raised, then ack it. If the publish fails, the delivery stays unacked and goes
/// back to the queue with this node's connection.
pub(super) fn leave_for_another_node(
    delivery: Delivery,
    queue: &'static str,
    kinds: String,
    limit: Option<u32>,
    context: &BrokerContext,
) {
    let count = deferrals(&delivery);
    let delay = match deferral(count, limit) {
        Deferral::After(delay) => delay,
        Deferral::GiveUp => {
            tracing::error!(queue, kinds, deferrals = count, "no node knows this message kind; dead-lettering it");
            return reject(delivery);
        }
    };
    tracing::info!(
        queue,
        kinds,
        deferrals = count,
        "a message kind this node does not know: left for a node that does"
    );
    let broker = context.broker.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(DEFERRALS_HEADER.into(), AMQPValue::LongUInt(count + 1));
        let properties = delivery.properties.clone().with_headers(headers);
        if broker.publish_raw(queue, &delivery.data, properties).await {
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        }
    });
}

fn reject(delivery: Delivery) {
    tokio::spawn(async move {
        let _ = delivery.acker.reject(BasicRejectOptions { requeue: false }).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::MessageBody;

    fn settings() -> Settings {
        crate::settings::Settings::load().expect("the default settings load")
    }

    #[test]
    fn an_envelope_of_an_unknown_kind_is_told_from_bytes_that_are_no_envelope() {
        let settings = settings();
        let known = Envelope::new(LoanId::generate(), None, MessageBody::VoidAppraisal);
        assert_eq!(read(known.to_json().as_bytes(), &settings), Received::Envelopes(vec![known.clone()]));
        let mut newer: serde_json::Value = serde_json::from_str(&known.to_json()).unwrap();
        newer["body"] = serde_json::json!({ "kind": "order_survey", "payload": { "by": "tomorrow" } });
        assert_eq!(read(newer.to_string().as_bytes(), &settings), Received::UnknownKind("order_survey".into()));
        let batch = serde_json::json!([newer, serde_json::from_str::<serde_json::Value>(&known.to_json()).unwrap()]);
        assert_eq!(
            read(batch.to_string().as_bytes(), &settings),
            Received::UnknownKind("order_survey,void_appraisal".into())
        );
        for garbage in ["", "[]", "{\"kind\": \"x\"}", "not json", "[{\"body\": {\"kind\": \"x\"}}]"] {
            assert_eq!(read(garbage.as_bytes(), &settings), Received::Unreadable, "{garbage}");
        }
        assert_eq!(read(&[0xff, 0xfe], &settings), Received::Unreadable);
    }

    #[test]
    fn a_message_is_left_with_a_growing_delay_then_given_up() {
        assert_eq!(deferral(0, Some(3)), Deferral::After(Duration::from_millis(250)));
        assert_eq!(deferral(1, Some(3)), Deferral::After(Duration::from_millis(500)));
        assert_eq!(deferral(2, Some(100)), Deferral::After(Duration::from_secs(1)));
        assert_eq!(deferral(40, Some(100)), Deferral::After(MAX_DELAY));
        assert_eq!(deferral(3, Some(3)), Deferral::GiveUp);
        assert_eq!(deferral(0, Some(0)), Deferral::GiveUp);
        assert_eq!(deferral(u32::MAX, None), Deferral::After(MAX_DELAY));
    }
}
