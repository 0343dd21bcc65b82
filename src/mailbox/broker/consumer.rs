//! Consumers: one per actor-kind queue of this node's roles (deliveries go to the local actors through the postman,
//! acked after the handler's commit; a message delivered again goes to quarantine), one per
//! quarantine (one message at a time), one on the dead-letter queue (moves dead messages into
//! the `dead_letters` table, where operators list and replay them), one on this node's events
//! queue (feeds the local live bus).

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use lapin::{Channel, Connection};
use tokio::task::JoinSet;

use super::received::{self, Received};
use super::topology::{events_queue, Lane, DEAD_LETTER_QUEUE, TRACEPARENT_HEADER};
use super::BrokerContext;
use crate::domain::TraceParent;
use crate::messages::LiveEvent;
use crate::messages::{ActorKind, Envelope};
use crate::persistence::{CommitOutcome, UnitOfWork};
use crate::settings::BrokerSettings;

pub(super) async fn start_all(
    connection: &Connection,
    setup: &Channel,
    context: &BrokerContext,
    tasks: &mut JoinSet<lapin::Result<()>>,
) -> lapin::Result<Vec<(Channel, String)>> {
    let mut consumers = Vec::new();
    // Only the queues of this node's roles: the others wait, durable, for a node that has them.
    let roles = &context.settings.node.roles;
    for kind in ActorKind::ALL.into_iter().filter(|kind| roles.runs(kind.role())) {
        for lane in [Lane::Main, Lane::Quarantine] {
            let channel = connection.create_channel().await?;
            channel.basic_qos(prefetch(kind, lane, &context.settings.broker), BasicQosOptions::default()).await?;
            let queue = lane.queue(kind);
            let consumer = subscribe(&channel, queue, &context.node_id).await?;
            consumers.push((channel.clone(), consumer_tag(&context.node_id, queue)));
            let context = context.clone();
            tasks.spawn(async move {
                let _channel = channel;
                let mut consumer = consumer;
                while let Some(delivery) = consumer.next().await {
                    match lane {
                        Lane::Main => accept(delivery?, kind, &context).await,
                        Lane::Quarantine => accept_quarantined(delivery?, kind, &context).await,
                    }
                }
                Ok(())
            });
        }
    }
    let dead = connection.create_channel().await?;
    dead.basic_qos(64, BasicQosOptions::default()).await?;
    let mut dead_consumer = subscribe(&dead, DEAD_LETTER_QUEUE, &context.node_id).await?;
    consumers.push((dead.clone(), consumer_tag(&context.node_id, DEAD_LETTER_QUEUE)));
    let dead_context = context.clone();
    tasks.spawn(async move {
        let _channel = dead;
        while let Some(delivery) = dead_consumer.next().await {
            record_dead_letter(delivery?, &dead_context).await;
        }
        Ok(())
    });
    // The events queue is exclusive to this connection: consume it on the channel that declared it.
    let mut events = subscribe(setup, &events_queue(&context.node_id), &context.node_id).await?;
    let bus = context.bus.clone();
    let setup = setup.clone();
    tasks.spawn(async move {
        let _channel = setup;
        while let Some(delivery) = events.next().await {
            let delivery = delivery?;
            // A batch of events in commit order.
            match serde_json::from_slice::<Vec<LiveEvent>>(&delivery.data) {
                Ok(events) => events.into_iter().for_each(|event| bus.publish_local(event)),
                Err(err) => tracing::warn!(error = %err, "unreadable events message dropped"),
            }
        }
        Ok(())
    });
    Ok(consumers)
}

/// Unacked deliveries one consumer may hold. A waiting service call costs its actor a queue
/// entry, a loan delivery an awake actor with its state: the service queues may hold many more.
/// The loan queue's prefetch counts envelopes (a message carries up to
/// `broker.envelopes_per_message`). A quarantine holds one: a node that dies on a quarantined
/// message holds nothing else from the quarantines, so only that message's delivery count rises.
fn prefetch(kind: ActorKind, lane: Lane, broker: &BrokerSettings) -> u16 {
    match (lane, kind) {
        (Lane::Quarantine, _) => 1,
        (Lane::Main, ActorKind::Loan) => {
            let per_message = u16::try_from(broker.envelopes_per_message).unwrap_or(u16::MAX);
            (broker.prefetch / per_message.max(1)).max(broker.prefetch.min(64))
        }
        (Lane::Main, _) => broker.service_prefetch,
    }
}

fn consumer_tag(node_id: &str, queue: &str) -> String {
    format!("{node_id}.{queue}")
}

async fn subscribe(channel: &Channel, queue: &str, node_id: &str) -> lapin::Result<lapin::Consumer> {
    let tag = consumer_tag(node_id, queue);
    let no_ack_events = queue.starts_with("loanflow.events.");
    let options = BasicConsumeOptions { no_ack: no_ack_events, ..Default::default() };
    channel.basic_consume(queue.into(), tag.as_str().into(), options, FieldTable::default()).await
}

/// Envelopes for local actors: the message is acked when the postman hears that every one of
/// them was settled. A message delivered before (a node may have died handling it, and every
/// message that node held was counted toward the delivery limit with it) goes to quarantine.
async fn accept(delivery: Delivery, kind: ActorKind, context: &BrokerContext) {
    match received::read(&delivery.data, &context.settings) {
        Received::Envelopes(envelopes) if delivery.redelivered => {
            quarantine(traced(envelopes, &delivery.properties), delivery.acker, context).await
        }
        Received::Envelopes(envelopes) => {
            context.postman.accept_from_broker(traced(envelopes, &delivery.properties), delivery.acker)
        }
        Received::UnknownKind(kinds) => leave_for_another_node(delivery, Lane::Main.queue(kind), kinds, context),
        Received::Unreadable => reject_unreadable(delivery).await,
    }
}

/// A message of a kind this node does not know, left on `queue` for a node that does (bounded
/// by `broker.unknown_kind_deferrals`).
fn leave_for_another_node(delivery: Delivery, queue: &'static str, kinds: String, context: &BrokerContext) {
    let limit = Some(context.settings.broker.unknown_kind_deferrals);
    received::leave_for_another_node(delivery, queue, kinds, limit, context);
}

async fn reject_unreadable(delivery: Delivery) {
    tracing::error!(tag = delivery.delivery_tag, "unreadable message; dead-lettering it");
    let _ = delivery.acker.reject(BasicRejectOptions { requeue: false }).await;
}

/// A single envelope sent without a trace context in its body takes the message's
/// `traceparent` header, if any (a batch's header is its first envelope's only).
fn traced(mut envelopes: Vec<Envelope>, properties: &BasicProperties) -> Vec<Envelope> {
    if let [only] = envelopes.as_mut_slice() {
        if only.trace.is_none() {
            only.trace = header_traceparent(properties);
        }
    }
    envelopes
}

fn header_traceparent(properties: &BasicProperties) -> Option<TraceParent> {
    match properties.headers().as_ref()?.inner().get(TRACEPARENT_HEADER)? {
        AMQPValue::LongString(value) => TraceParent::parse(std::str::from_utf8(value.as_bytes()).ok()?),
        _ => None,
    }
}

/// Publish a redelivered message's envelopes to their quarantine, one per message (each with a
/// fresh delivery count there), then ack it. The publish is confirmed before the ack: a node
/// dying between the two leaves a copy in both queues, a duplicate the outbox ignores. If the
/// publish fails, the message is handled as it is (never nacked: a requeue counts toward the
/// delivery limit).
async fn quarantine(envelopes: Vec<Envelope>, acker: lapin::Acker, context: &BrokerContext) {
    if context.broker.publish_each(&envelopes, Lane::Quarantine).await {
        let kind = envelopes[0].destination;
        tracing::info!(envelopes = envelopes.len(), kind = kind.as_str(), "delivered again; quarantined");
        context.metrics.quarantined(kind.as_str(), envelopes.len());
        let _ = acker.ack(BasicAckOptions::default()).await;
    } else {
        tracing::warn!(envelopes = envelopes.len(), "delivered again and could not be quarantined; handling it");
        context.postman.accept_from_broker(envelopes, acker);
    }
}

/// A quarantined message, the only one this node holds from the `kind` quarantine. A loan's
/// message is handled in full (a loan's step is quick). A service request is probed: one attempt
/// at the call, right away, its answer thrown away; having survived it, the request goes back to
/// its kind's queue (confirmed, then this delivery is acked) to be handled with its latency
/// beside the others, so that a slow call never holds up the quarantine.
async fn accept_quarantined(delivery: Delivery, kind: ActorKind, context: &BrokerContext) {
    let envelopes = match received::read(&delivery.data, &context.settings) {
        Received::Envelopes(envelopes) => envelopes,
        Received::UnknownKind(kinds) => {
            return leave_for_another_node(delivery, Lane::Quarantine.queue(kind), kinds, context)
        }
        Received::Unreadable => return reject_unreadable(delivery).await,
    };
    if kind == ActorKind::Loan {
        return context.postman.accept_from_broker(envelopes, delivery.acker);
    }
    for envelope in &envelopes {
        if !context.postman.probe(envelope.clone()).await {
            // No service to probe with (the node is shutting down): handle it here instead.
            return context.postman.accept_from_broker(envelopes, delivery.acker);
        }
    }
    if context.broker.publish_each(&envelopes, Lane::Main).await {
        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
    } else {
        context.postman.accept_from_broker(envelopes, delivery.acker);
    }
}

/// A message the broker gave up on: record its envelope as a dead letter (consuming its outbox
/// row). A batch is never recorded whole: a node may have died on one envelope, so each goes back
/// to its queue as a message of its own, with its own delivery limit; only single envelopes end
/// up in `dead_letters`.
async fn record_dead_letter(delivery: Delivery, context: &BrokerContext) {
    let envelopes = match received::read(&delivery.data, &context.settings) {
        Received::Envelopes(envelopes) => envelopes,
        // Kept (never given up on) until a node that knows its kind records it.
        Received::UnknownKind(kinds) => {
            return received::leave_for_another_node(delivery, DEAD_LETTER_QUEUE, kinds, None, context)
        }
        Received::Unreadable => {
            tracing::error!("unreadable dead letter dropped");
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            return;
        }
    };
    if envelopes.len() > 1 {
        let published = context.broker.publish_each(&envelopes, Lane::Main).await;
        tracing::warn!(
            envelopes = envelopes.len(),
            published,
            "a batch was dead-lettered; its envelopes go back one by one"
        );
        let _ = if published {
            delivery.acker.ack(BasicAckOptions::default()).await
        } else {
            delivery.acker.nack(lapin::options::BasicNackOptions { requeue: true, ..Default::default() }).await
        };
        return;
    }
    let reason = format!("delivered {} times without success", context.settings.broker.delivery_limit);
    for envelope in &envelopes {
        match context.db.writer().commit(UnitOfWork::dead_letter(envelope, &reason)).await {
            Ok(CommitOutcome::Committed { .. }) => {
                tracing::error!(loan_id = %envelope.loan_id, message = envelope.body.label(), "message dead-lettered by the broker");
                context.postman.finished(envelope);
                context.metrics.dead_lettered(envelope.destination.as_str());
            }
            // Handled meanwhile (or already recorded): nothing to keep.
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "could not record a dead letter; it stays queued");
                let _ =
                    delivery.acker.nack(lapin::options::BasicNackOptions { requeue: true, ..Default::default() }).await;
                return;
            }
        }
    }
    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
}

#[cfg(test)]
mod tests {
    use super::received::parse_message;
    use super::*;
    use crate::domain::LoanId;
    use crate::messages::MessageBody;

    #[test]
    fn a_message_carries_one_envelope_or_an_array_of_them() {
        let one = Envelope::new(LoanId::generate(), None, MessageBody::VoidAppraisal);
        let two = Envelope::new(LoanId::generate(), None, MessageBody::ReleaseCreditCheck);
        assert_eq!(parse_message(&one.to_json()).unwrap(), vec![one.clone()]);
        let array = serde_json::to_string(&[&one, &two]).unwrap();
        assert_eq!(parse_message(&format!("  {array}")).unwrap(), vec![one, two]);
        assert!(parse_message("[{\"not\": \"an envelope\"}]").is_err());
        assert!(parse_message("").is_err());
    }

    #[test]
    fn a_single_envelope_without_a_trace_context_takes_the_header_s() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = FieldTable::default();
        headers.insert(TRACEPARENT_HEADER.into(), AMQPValue::LongString(value.into()));
        let properties = BasicProperties::default().with_headers(headers);
        let one = Envelope::new(LoanId::generate(), None, MessageBody::VoidAppraisal);
        let read = traced(vec![one.clone()], &properties);
        assert_eq!(read[0].trace.as_ref().map(|t| t.as_str()), Some(value));

        let own = TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        let read = traced(vec![one.clone().traced(own.clone())], &properties);
        assert_eq!(read[0].trace, own, "the body's own trace context wins");
        let batch = traced(vec![one.clone(), one.clone()], &properties);
        assert!(batch.iter().all(|e| e.trace.is_none()), "a batch's header is not every envelope's");
        assert_eq!(traced(vec![one], &BasicProperties::default())[0].trace, None);
    }
}
