//! Publishing envelopes with pipelined publisher confirms: a batch is published (envelopes bound
//! for one queue share AMQP messages, up to `broker.envelopes_per_message` each), then, beside
//! the loop (the next batch goes out meanwhile), its confirms are awaited together and the
//! acknowledged rows are marked published (one unit per writer). A nack, a timeout or a lost
//! connection leaves rows unpublished for the sweep. An uncommitted reply has no row: once
//! confirmed, the request it answers is acked; if not, it is published again a second later.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, PublisherConfirm};
use tokio::sync::mpsc;

use super::topology::{Lane, EVENTS_EXCHANGE, TRACEPARENT_HEADER};
use super::{BrokerContext, Shared};
use crate::domain::{LoanId, MessageId};
use crate::messages::LiveEvent;
use crate::messages::{ActorKind, Envelope};
use crate::persistence::UnitOfWork;

/// The properties of a message whose first envelope is `first`; its trace context also rides in
/// the W3C `traceparent` header, for tools that read headers only (each envelope of a batch
/// carries its own in the body, which is what a node reads).
fn properties(first: &Envelope) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(first.message_id.to_string().into());
    match &first.trace {
        Some(trace) => {
            let mut headers = FieldTable::default();
            headers.insert(TRACEPARENT_HEADER.into(), AMQPValue::LongString(trace.as_str().into()));
            properties.with_headers(headers)
        }
        None => properties,
    }
}

/// Publish `payload` (one envelope or several) to `lane` of the queues of `first`'s destination.
async fn publish(
    channel: &lapin::Channel,
    lane: Lane,
    first: &Envelope,
    payload: &str,
) -> lapin::Result<PublisherConfirm> {
    let queue = lane.queue(first.destination);
    let options = BasicPublishOptions::default();
    channel.basic_publish("".into(), queue.into(), options, payload.as_bytes(), properties(first)).await
}

/// Publish `data` as it is to `queue` and wait for the confirm: true if confirmed.
pub(super) async fn publish_raw(
    channel: &lapin::Channel,
    queue: &str,
    data: &[u8],
    properties: BasicProperties,
    timeout: Duration,
) -> bool {
    let options = BasicPublishOptions::default();
    let Ok(confirm) = channel.basic_publish("".into(), queue.into(), options, data, properties).await else {
        return false;
    };
    matches!(tokio::time::timeout(timeout, confirm).await, Ok(Ok(confirmation)) if confirmation.is_ack())
}

/// How long an uncommitted reply that could not be published waits before it is tried again.
const REPLY_RETRY: Duration = Duration::from_secs(1);

pub(super) async fn publish_loop(
    mut rx: mpsc::Receiver<Vec<Envelope>>,
    queue: mpsc::Sender<Vec<Envelope>>,
    shared: Arc<Shared>,
    context: BrokerContext,
) {
    let max = context.settings.broker.publish_batch;
    let timeout = Duration::from_millis(context.settings.broker.confirm_timeout_ms);
    let copies = publish_copies(&context.settings);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    let wait = Duration::from_micros(context.settings.broker.publish_wait_us);
    while let Some(mut batch) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + wait;
        while batch.len() < max {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) if wait.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(more)) => batch.extend(more),
                    _ => break,
                },
            }
        }
        let Some(channel) = Shared::lock(&shared.publish_channel).clone() else {
            // Not connected: the sweep publishes the committed rows later; replies are retried.
            retry_replies(batch, &queue);
            continue;
        };
        let per_message = context.settings.broker.envelopes_per_message;
        let mut pending = Vec::new();
        for chunk in message_groups(&batch, per_message) {
            let payload = message_payload(&batch, &chunk);
            let first = &batch[chunk[0]];
            for _ in 0..copies {
                match publish(&channel, Lane::Main, first, &payload).await {
                    Ok(confirm) => pending.push((chunk.clone(), confirm)),
                    Err(err) => {
                        tracing::warn!(error = %err, "publish failed; the sweep will retry");
                        break;
                    }
                }
            }
        }
        // The confirms are awaited (and the rows marked) beside the loop, so the next batch goes
        // out meanwhile: awaiting them here put a confirm round and a commit into every hop of
        // every loan (open-loop latency). At most `BATCHES_IN_FLIGHT` batches wait at once.
        let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
        let (context, queue) = (context.clone(), queue.clone());
        tokio::spawn(async move {
            settle_batch(batch, pending, timeout, &context, &queue).await;
            drop(permit);
        });
    }
}

/// How many times each message is published: twice with the test fault `faults.publish_twice`
/// (test builds only), to prove that duplicates change nothing.
#[cfg(feature = "test-faults")]
fn publish_copies(settings: &crate::settings::Settings) -> usize {
    if settings.faults.publish_twice {
        2
    } else {
        1
    }
}

#[cfg(not(feature = "test-faults"))]
fn publish_copies(_settings: &crate::settings::Settings) -> usize {
    1
}

/// Publish batches whose confirms are still awaited, at most.
const BATCHES_IN_FLIGHT: usize = 16;

/// Await a published batch's confirms: settle the requests of confirmed replies, publish
/// unconfirmed replies again later, mark confirmed rows published.
async fn settle_batch(
    batch: Vec<Envelope>,
    pending: Vec<(Vec<usize>, PublisherConfirm)>,
    timeout: Duration,
    context: &BrokerContext,
    queue: &mpsc::Sender<Vec<Envelope>>,
) {
    let mut confirmed = vec![false; batch.len()];
    for (chunk, confirm) in pending {
        match tokio::time::timeout(timeout, confirm).await {
            Ok(Ok(confirmation)) if confirmation.is_ack() => {
                context.metrics.publish_confirmed();
                chunk.iter().for_each(|&i| confirmed[i] = true);
            }
            outcome => {
                context.metrics.publish_nacked();
                let first = batch[chunk[0]].message_id;
                tracing::warn!(message_id = %first, envelopes = chunk.len(), ?outcome, "publish not confirmed; the sweep will retry");
            }
        }
    }
    let mut published_rows: Vec<(LoanId, MessageId)> = Vec::new();
    let mut unpublished_replies = Vec::new();
    for (envelope, confirmed) in batch.into_iter().zip(confirmed) {
        match (envelope.is_uncommitted(), confirmed) {
            // The reply is safe in its queue: the request's delivery can be acked (its row
            // stays in the outbox until the loan consumes it).
            (true, true) => context.postman.settle(envelope.outbox_row()),
            (true, false) => unpublished_replies.push(envelope),
            (false, true) => published_rows.push((envelope.loan_id, envelope.message_id)),
            (false, false) => {}
        }
    }
    retry_replies(unpublished_replies, queue);
    mark_published(context, published_rows).await;
}

/// Each envelope in a message of its own, to `lane` of its destination's queues; true once every
/// one is confirmed.
pub(super) async fn publish_each(
    channel: &lapin::Channel,
    envelopes: &[Envelope],
    lane: Lane,
    timeout: Duration,
) -> bool {
    let mut confirms = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        match publish(channel, lane, envelope, &envelope.to_json()).await {
            Ok(confirm) => confirms.push(confirm),
            Err(_) => return false,
        }
    }
    for confirm in confirms {
        match tokio::time::timeout(timeout, confirm).await {
            Ok(Ok(confirmation)) if confirmation.is_ack() => {}
            _ => return false,
        }
    }
    true
}

/// The envelopes of a batch grouped into AMQP messages: by destination queue, in batch order,
/// at most `per_message` in one. Indices into the batch.
fn message_groups(batch: &[Envelope], per_message: usize) -> Vec<Vec<usize>> {
    let mut by_queue: Vec<(ActorKind, Vec<usize>)> = Vec::new();
    for (i, envelope) in batch.iter().enumerate() {
        match by_queue.iter_mut().find(|(kind, _)| *kind == envelope.destination) {
            Some((_, indices)) => indices.push(i),
            None => by_queue.push((envelope.destination, vec![i])),
        }
    }
    by_queue
        .into_iter()
        .flat_map(|(_, indices)| indices.chunks(per_message).map(<[usize]>::to_vec).collect::<Vec<_>>())
        .collect()
}

/// One envelope as itself, several as a JSON array (what `consumer::accept` reads).
fn message_payload(batch: &[Envelope], chunk: &[usize]) -> String {
    if let [only] = chunk {
        return batch[*only].to_json();
    }
    let envelopes: Vec<&Envelope> = chunk.iter().map(|&i| &batch[i]).collect();
    serde_json::to_string(&envelopes).expect("envelopes always serialise")
}

/// Uncommitted replies have no outbox row for the sweep: publish them again a little later. The
/// request's delivery stays unacked meanwhile (if its channel is gone, the broker delivers the
/// request again and it is answered again: the loan takes whichever reply comes first).
fn retry_replies(batch: Vec<Envelope>, queue: &mpsc::Sender<Vec<Envelope>>) {
    let replies: Vec<Envelope> = batch.into_iter().filter(Envelope::is_uncommitted).collect();
    if replies.is_empty() {
        return;
    }
    let queue = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(REPLY_RETRY).await;
        let _ = queue.send(replies).await;
    });
}

/// One unit per writer, for the rows of the loans that writer owns.
async fn mark_published(context: &BrokerContext, rows: Vec<(LoanId, MessageId)>) {
    let now = chrono::Utc::now().naive_utc();
    let writer = context.db.writer();
    let mut by_writer: HashMap<usize, (LoanId, Vec<MessageId>)> = HashMap::new();
    for (loan, id) in rows {
        by_writer.entry(writer.writer_of(loan)).or_insert_with(|| (loan, Vec::new())).1.push(id);
    }
    let commits = by_writer
        .into_values()
        .map(|(loan_id, ids)| writer.commit(UnitOfWork::MarkPublished { loan_id, ids, at: now }));
    for result in futures_util::future::join_all(commits).await {
        if let Err(err) = result {
            // Unmarked rows are published again by the sweep: a duplicate the consumer ignores.
            tracing::warn!(error = %err, "marking rows published failed");
        }
    }
}

/// Events sent in one fanout message at most (they are small: a few hundred bytes each).
const EVENTS_PER_MESSAGE: usize = 512;

/// Committed events to the fanout exchange, as many as are queued (up to `EVENTS_PER_MESSAGE`)
/// in one message: a loan records ~7 events, and one AMQP message per event made the fanout
/// RabbitMQ's largest traffic. No confirms: live streams are best effort and resume from the
/// history by event id.
pub(super) async fn events_loop(mut rx: mpsc::Receiver<LiveEvent>, shared: Arc<Shared>) {
    let mut batch = Vec::with_capacity(EVENTS_PER_MESSAGE);
    while rx.recv_many(&mut batch, EVENTS_PER_MESSAGE).await > 0 {
        let events = std::mem::take(&mut batch);
        let Some(channel) = Shared::lock(&shared.events_channel).clone() else { continue };
        let Ok(payload) = serde_json::to_vec(&events) else { continue };
        let publish = channel.basic_publish(
            EVENTS_EXCHANGE.into(),
            "".into(),
            BasicPublishOptions::default(),
            &payload,
            BasicProperties::default().with_content_type("application/json".into()),
        );
        if let Err(err) = publish.await {
            tracing::debug!(error = %err, "events not published to the fanout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LoanId;
    use crate::messages::MessageBody;
    use crate::saga::SagaInput;

    fn envelope(body: MessageBody) -> Envelope {
        Envelope::new(LoanId::generate(), None, body)
    }

    #[test]
    fn envelopes_share_messages_by_queue_in_order_up_to_the_limit() {
        let start = || envelope(MessageBody::Saga(SagaInput::AppraisalVoided));
        let credit = || envelope(MessageBody::ReleaseCreditCheck);
        let batch = vec![start(), credit(), start(), start(), credit(), start(), envelope(MessageBody::VoidAppraisal)];
        let groups = message_groups(&batch, 3);
        assert_eq!(groups, vec![vec![0, 2, 3], vec![5], vec![1, 4], vec![6]]);
        for group in &groups {
            let kinds: Vec<ActorKind> = group.iter().map(|&i| batch[i].destination).collect();
            assert!(kinds.iter().all(|&kind| kind == kinds[0]), "one queue per message: {kinds:?}");
        }
    }

    #[test]
    fn one_envelope_travels_as_itself_several_as_an_array() {
        let batch = vec![envelope(MessageBody::ReleaseCreditCheck), envelope(MessageBody::ReleaseCreditCheck)];
        let single = message_payload(&batch, &[1]);
        assert_eq!(Envelope::from_json(&single).unwrap(), batch[1]);
        let both: Vec<Envelope> = serde_json::from_str(&message_payload(&batch, &[0, 1])).unwrap();
        assert_eq!(both, batch);
    }
}
