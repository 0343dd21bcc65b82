//! Delivery of committed outbox messages. Embedded mode: straight to the local actors, with
//! in-flight tracking so the sweep re-sends only what is really lost. Cluster mode: to the
//! broker; deliveries coming back from it are routed to the local actors and acked once settled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::{Message, Recipient};
use lapin::Acker;

use super::broker::Broker;
use super::{ActorKind, Envelope};
use crate::domain::MessageId;
use crate::persistence::{queries, Database, LoanRecord, OutboxRow, StoreError};

/// An envelope handed to an actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Envelope);

/// Where each kind of message goes on this node.
pub struct Routes {
    /// Finds or activates the loan's actor and hands it the envelope.
    pub loans: Box<dyn Fn(Envelope) + Send + Sync>,
    /// Activates the actor of a loan just submitted, with its state.
    pub new_loan: Box<dyn Fn(LoanRecord) + Send + Sync>,
    pub credit: Recipient<Deliver>,
    pub appraisal: Recipient<Deliver>,
    pub notifier: Recipient<Deliver>,
}

#[derive(Clone)]
pub struct Postman {
    inner: Arc<Inner>,
}

struct InFlight {
    since: Instant,
    /// Cluster mode: the deliveries that carried the message (usually one; a copy may come
    /// again while the first is handled), each acked once all its envelopes are settled.
    deliveries: Vec<Arc<BrokerDelivery>>,
}

/// Cluster mode: one AMQP delivery, carrying one or more envelopes.
struct BrokerDelivery {
    acker: Acker,
    unsettled: AtomicUsize,
}

struct Inner {
    routes: OnceLock<Routes>,
    broker: OnceLock<Broker>,
    in_flight: Mutex<HashMap<MessageId, InFlight>>,
    /// Embedded mode: uncommitted replies handed to loan actors and not yet settled.
    replies_in_delivery: AtomicUsize,
}

/// Embedded mode: how many uncommitted replies may be on their way to loan actors at once.
/// When slow calls come due together (e.g. 100,000 calls submitted at 5,000/s, answered 60 s
/// later), the service actors hold the rest in their compact timer queues instead of waking
/// every loan at once (each awake loan holds its state and a read). Cluster mode needs no such
/// bound: the broker holds the messages, and the consumer prefetch bounds each node.
const MAX_REPLIES_IN_DELIVERY: usize = 2_048;

/// Rows read per page when sweeping the outbox.
const SWEEP_PAGE: i64 = 2_000;

impl Default for Postman {
    fn default() -> Self {
        Self::new()
    }
}

impl Postman {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                routes: OnceLock::new(),
                broker: OnceLock::new(),
                in_flight: Mutex::new(HashMap::new()),
                replies_in_delivery: AtomicUsize::new(0),
            }),
        }
    }

    /// Connect the postman to the local actors (once, at start-up).
    pub fn set_routes(&self, routes: Routes) {
        if self.inner.routes.set(routes).is_err() {
            panic!("postman routes set twice");
        }
    }

    /// Cluster mode: committed messages go through the broker.
    pub fn set_broker(&self, broker: Broker) {
        if self.inner.broker.set(broker).is_err() {
            panic!("postman broker set twice");
        }
    }

    pub fn broker(&self) -> Option<&Broker> {
        self.inner.broker.get()
    }

    /// Send committed envelopes on their way.
    pub fn deliver(&self, envelopes: impl IntoIterator<Item = Envelope>) {
        if let Some(broker) = self.inner.broker.get() {
            let (replies, committed): (Vec<Envelope>, Vec<Envelope>) =
                envelopes.into_iter().partition(|e| e.uncommitted);
            broker.publish(committed);
            for reply in replies {
                broker.publish_reply(reply);
            }
            return;
        }
        for envelope in envelopes {
            self.route(envelope, None);
        }
    }

    /// A loan just submitted and its first requests: its actor is made live here with its state
    /// (the replies find it without reading it back; in cluster mode they may land on another
    /// node, which reads it), then the requests go on their way.
    pub fn deliver_submission(&self, record: LoanRecord, envelopes: Vec<Envelope>) {
        if let Some(routes) = self.inner.routes.get() {
            (routes.new_loan)(record);
        }
        self.deliver(envelopes);
    }

    /// Cluster mode: a delivery from the broker for local actors, acked once every envelope it
    /// carries is settled.
    pub fn accept_from_broker(&self, mut envelopes: Vec<Envelope>, acker: Acker) {
        // The same envelope twice in one message counts once.
        let mut seen = std::collections::HashSet::with_capacity(envelopes.len());
        envelopes.retain(|envelope| seen.insert(envelope.message_id));
        let delivery = Arc::new(BrokerDelivery { acker, unsettled: AtomicUsize::new(envelopes.len()) });
        for envelope in envelopes {
            self.route(envelope, Some(delivery.clone()));
        }
    }

    fn route(&self, envelope: Envelope, delivery: Option<Arc<BrokerDelivery>>) {
        let Some(routes) = self.inner.routes.get() else {
            tracing::warn!("delivery before start-up finished; the sweep will deliver it");
            return;
        };
        let id = envelope.message_id;
        if envelope.uncommitted && self.inner.broker.get().is_none() {
            self.inner.replies_in_delivery.fetch_add(1, Ordering::AcqRel);
        }
        {
            let mut in_flight = self.inner.in_flight.lock().expect("in-flight lock");
            let entry =
                in_flight.entry(id).or_insert_with(|| InFlight { since: Instant::now(), deliveries: Vec::new() });
            entry.since = Instant::now();
            entry.deliveries.extend(delivery);
        }
        let recipient = match envelope.destination {
            ActorKind::Loan => return (routes.loans)(envelope),
            ActorKind::Credit => &routes.credit,
            ActorKind::Appraisal => &routes.appraisal,
            ActorKind::Notifier => &routes.notifier,
        };
        // Service actors are supervised and never stop; their handlers only start a task, so
        // their mailboxes drain fast: queue regardless of actix's mailbox capacity.
        recipient.do_send(Deliver(envelope));
    }

    /// The message is finished with (handled, duplicate, or dead-lettered): ack it.
    pub fn settled(&self, id: MessageId) {
        let entry = self.inner.in_flight.lock().expect("in-flight lock").remove(&id);
        if let (Some(entry), Some(broker)) = (entry, self.inner.broker.get()) {
            for delivery in entry.deliveries {
                if delivery.unsettled.fetch_sub(1, Ordering::AcqRel) == 1 {
                    broker.ack(delivery.acker.clone());
                }
            }
        }
    }

    /// Finished with a message: settle it and, for an uncommitted reply, the request it consumed.
    pub fn settled_message(&self, envelope: &Envelope) {
        self.settled(envelope.message_id);
        if envelope.uncommitted {
            self.settled(envelope.outbox_row());
            if self.inner.broker.get().is_none() {
                let _ = self
                    .inner
                    .replies_in_delivery
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            }
        }
    }

    /// May a service actor send another reply now? (Embedded mode: see `MAX_REPLIES_IN_DELIVERY`.)
    pub fn has_reply_capacity(&self) -> bool {
        self.inner.replies_in_delivery.load(Ordering::Acquire) < MAX_REPLIES_IN_DELIVERY
    }

    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.lock().expect("in-flight lock").len()
    }

    /// Send again what the outbox holds and nobody is handling, older than `min_age`.
    /// Embedded mode: rows not in flight here (or in flight for longer than `presumed_lost`).
    /// Cluster mode: rows never confirmed by the broker (or confirmed longer ago than
    /// `presumed_lost` and still unhandled). At start-up (`min_age` 0) this resumes every
    /// unfinished loan. Returns how many were sent.
    pub async fn sweep(&self, db: &Database, min_age: Duration, presumed_lost: Duration) -> Result<usize, StoreError> {
        let mut after = 0;
        let mut sent = 0;
        let now = chrono::Utc::now().naive_utc();
        let age = |d: Duration| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(chrono::NaiveDateTime::MIN)
        };
        let (cutoff, lost_cutoff) = (age(min_age), age(presumed_lost));
        loop {
            let rows = db.read(move |c| queries::outbox_after(c, after, SWEEP_PAGE)).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            let page_len = rows.len();
            let due: Vec<Envelope> = match self.inner.broker.get() {
                Some(_) => rows
                    .into_iter()
                    .filter(|row| match row.published_at {
                        None => row.created_at <= cutoff,
                        Some(published) => published <= lost_cutoff,
                    })
                    .filter_map(parse)
                    .collect(),
                None => {
                    // Judged by the row's id before its envelope is parsed: with many calls in
                    // flight, nearly every row is, and parsing them all each sweep was costly.
                    let in_flight = self.inner.in_flight.lock().expect("in-flight lock");
                    let lost = |row: &OutboxRow| match MessageId::parse(&row.message_id) {
                        Ok(id) => in_flight.get(&id).is_none_or(|f| f.since.elapsed() >= presumed_lost),
                        Err(_) => true,
                    };
                    let due: Vec<OutboxRow> =
                        rows.into_iter().filter(|row| row.created_at <= cutoff && lost(row)).collect();
                    drop(in_flight);
                    due.into_iter().filter_map(parse).collect()
                }
            };
            sent += due.len();
            self.deliver(due);
            if (page_len as i64) < SWEEP_PAGE {
                break;
            }
        }
        Ok(sent)
    }
}

fn parse(row: OutboxRow) -> Option<Envelope> {
    match Envelope::from_json(&row.envelope) {
        Ok(env) => Some(env),
        Err(err) => {
            tracing::error!(seq = row.seq, error = %err, "unreadable outbox row skipped");
            None
        }
    }
}
