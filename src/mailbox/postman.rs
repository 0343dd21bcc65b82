//! Delivery of committed outbox messages. Embedded mode: straight to the local actors, with
//! in-flight tracking so the sweep re-sends only what is really lost. Cluster mode: to the
//! broker; deliveries coming back from it are routed to the local actors and acked once settled.
//!
//! The actors send through the postman and the postman delivers to the actors: the node's
//! [`PostOffice`] owns the postman's state (its routes, so the actors too), and every
//! [`Postman`] handed out refers to it weakly. Dropping the post office ends the node's actors
//! and lets the database close; a postman used after that delivers nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use actix::Recipient;
use lapin::Acker;

use super::broker::Broker;
use crate::domain::MessageId;
use crate::messages::{ActorKind, Deliver, Envelope, Probe};
use crate::persistence::{queries, Database, LoanRecord, OutboxRow, StoreError};

/// Where each kind of message goes on this node. A service this node has no role for has no
/// actor here (`None`): its queue is not consumed here, so no message for it arrives.
pub struct Routes {
    /// Finds or activates the loan's actor and hands it the envelope.
    pub loans: Box<dyn Fn(Envelope) + Send + Sync>,
    /// Activates the actor of a loan just submitted, with its state.
    pub new_loan: Box<dyn Fn(LoanRecord) + Send + Sync>,
    pub credit: Option<ServiceRoute>,
    pub appraisal: Option<ServiceRoute>,
    pub notifier: Option<ServiceRoute>,
}

/// A service actor: where its calls go, and where a call is probed (see [`Probe`]).
pub struct ServiceRoute {
    pub deliver: Recipient<Deliver>,
    pub probe: Recipient<Probe>,
}

/// How committed messages travel, decided once at start from the node's mode.
pub enum Transport {
    /// Embedded mode: to this node's actors, in process.
    InProcess,
    /// Cluster mode: through RabbitMQ, to whichever node consumes the destination's queue.
    Broker(Broker),
}

/// Sends committed messages on their way; cheap to clone (see the module docs).
#[derive(Clone)]
pub struct Postman {
    inner: Weak<Inner>,
}

/// Owns the postman's state and, through its routes, the node's actors: holding it is its job.
pub struct PostOffice {
    _inner: Arc<Inner>,
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
    routes: Routes,
    transport: Transport,
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

impl PostOffice {
    /// The node's post office. `start_actors` starts the actors, handing each the postman it
    /// sends with, and returns the routes to them.
    pub fn open(transport: Transport, start_actors: impl FnOnce(Postman) -> Routes) -> Self {
        let inner = Arc::new_cyclic(|inner: &Weak<Inner>| Inner {
            routes: start_actors(Postman { inner: inner.clone() }),
            transport,
            in_flight: Mutex::new(HashMap::new()),
            replies_in_delivery: AtomicUsize::new(0),
        });
        Self { _inner: inner }
    }
}

impl Inner {
    fn in_flight(&self) -> MutexGuard<'_, HashMap<MessageId, InFlight>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn broker(&self) -> Option<&Broker> {
        match &self.transport {
            Transport::Broker(broker) => Some(broker),
            Transport::InProcess => None,
        }
    }
}

impl Postman {
    /// The post office's state, unless the node has shut it.
    fn inner(&self) -> Option<Arc<Inner>> {
        self.inner.upgrade()
    }

    /// Cluster mode: the broker the messages travel through.
    pub fn broker(&self) -> Option<Broker> {
        self.inner()?.broker().cloned()
    }

    /// Send committed envelopes on their way.
    pub fn deliver(&self, envelopes: impl IntoIterator<Item = Envelope>) {
        let Some(inner) = self.inner() else { return };
        match &inner.transport {
            Transport::Broker(broker) => {
                let (replies, committed): (Vec<Envelope>, Vec<Envelope>) =
                    envelopes.into_iter().partition(Envelope::is_uncommitted);
                broker.publish(committed);
                for reply in replies {
                    broker.publish_reply(reply);
                }
            }
            Transport::InProcess => {
                for envelope in envelopes {
                    route(&inner, envelope, None);
                }
            }
        }
    }

    /// A loan just submitted and its first requests: its actor is made live here with its state
    /// (the replies find it without reading it back; in cluster mode they may land on another
    /// node, which reads it), then the requests go on their way.
    pub fn deliver_submission(&self, record: LoanRecord, envelopes: Vec<Envelope>) {
        let Some(inner) = self.inner() else { return };
        (inner.routes.new_loan)(record);
        self.deliver(envelopes);
    }

    /// Cluster mode: a delivery from the broker for local actors, acked once every envelope it
    /// carries is settled.
    pub fn accept_from_broker(&self, mut envelopes: Vec<Envelope>, acker: Acker) {
        let Some(inner) = self.inner() else { return };
        // The same envelope twice in one message counts once.
        let mut seen = std::collections::HashSet::with_capacity(envelopes.len());
        envelopes.retain(|envelope| seen.insert(envelope.message_id));
        let delivery = Arc::new(BrokerDelivery { acker, unsettled: AtomicUsize::new(envelopes.len()) });
        for envelope in envelopes {
            route(&inner, envelope, Some(delivery.clone()));
        }
    }

    /// Cluster mode: make one attempt at a service call, its answer thrown away (see [`Probe`]);
    /// returns once it has run (false: no such service here, or the node is shutting).
    pub async fn probe(&self, envelope: Envelope) -> bool {
        let Some(probe) =
            self.inner().and_then(|inner| inner.routes.service(envelope.destination).map(|s| s.probe.clone()))
        else {
            return false;
        };
        probe.send(Probe(envelope)).await.is_ok()
    }

    /// Settle the delivery of one message (handled, duplicate, dead-lettered, or a reply safe
    /// in its queue): in cluster mode, ack the AMQP deliveries that carried it once all their
    /// envelopes are settled.
    pub fn settle(&self, id: MessageId) {
        let Some(inner) = self.inner() else { return };
        settle(&inner, id);
    }

    /// Finished with a message: settle it and, for an uncommitted reply, the request it consumed.
    pub fn finished(&self, envelope: &Envelope) {
        let Some(inner) = self.inner() else { return };
        settle(&inner, envelope.message_id);
        if envelope.is_uncommitted() {
            settle(&inner, envelope.outbox_row());
            if let Transport::InProcess = inner.transport {
                let _ =
                    inner.replies_in_delivery.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            }
        }
    }

    /// May a service actor send another reply now? (Embedded mode: see `MAX_REPLIES_IN_DELIVERY`.)
    pub fn has_reply_capacity(&self) -> bool {
        self.inner().is_some_and(|inner| inner.replies_in_delivery.load(Ordering::Acquire) < MAX_REPLIES_IN_DELIVERY)
    }

    /// Messages handed to actors and not settled yet.
    pub fn in_flight(&self) -> usize {
        self.inner().map_or(0, |inner| inner.in_flight().len())
    }

    /// Stop taking new messages from outside the node (cluster mode: cancel the consumers;
    /// deliveries in flight can still be acked).
    pub async fn stop_taking_work(&self) {
        if let Some(broker) = self.broker() {
            broker.stop_consuming().await;
        }
    }

    /// Cluster mode: publish what the outbox holds unpublished, until `deadline`, so that other
    /// nodes can go on with it. In process there is nothing to do: the next start resumes it.
    pub async fn flush_outbox(&self, db: &Database, deadline: tokio::time::Instant) {
        if self.broker().is_none() {
            return;
        }
        while tokio::time::Instant::now() < deadline {
            match db.read(queries::unpublished_count).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = self.sweep(db, Duration::ZERO, Duration::MAX).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Send again what the outbox holds and nobody is handling, older than `min_age`.
    /// Embedded mode: rows not in flight here (or in flight for longer than `presumed_lost`).
    /// Cluster mode: rows never confirmed by the broker (or confirmed longer ago than
    /// `presumed_lost` and still unhandled). At start-up (`min_age` 0) this resumes every
    /// unfinished loan. Returns how many were sent.
    pub async fn sweep(&self, db: &Database, min_age: Duration, presumed_lost: Duration) -> Result<usize, StoreError> {
        let in_cluster = self.broker().is_some();
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
            let due: Vec<Envelope> = match (in_cluster, self.inner()) {
                (_, None) => break,
                (true, Some(_)) => rows
                    .into_iter()
                    .filter(|row| match row.published_at {
                        None => row.created_at <= cutoff,
                        Some(published) => published <= lost_cutoff,
                    })
                    .filter_map(parse)
                    .collect(),
                (false, Some(inner)) => {
                    // Judged by the row's id before its envelope is parsed: with many calls in
                    // flight, nearly every row is, and parsing them all each sweep was costly.
                    let in_flight = inner.in_flight();
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

fn route(inner: &Inner, envelope: Envelope, delivery: Option<Arc<BrokerDelivery>>) {
    let id = envelope.message_id;
    if envelope.is_uncommitted() && matches!(inner.transport, Transport::InProcess) {
        inner.replies_in_delivery.fetch_add(1, Ordering::AcqRel);
    }
    {
        let mut in_flight = inner.in_flight();
        let entry = in_flight.entry(id).or_insert_with(|| InFlight { since: Instant::now(), deliveries: Vec::new() });
        entry.since = Instant::now();
        entry.deliveries.extend(delivery);
    }
    if envelope.destination == ActorKind::Loan {
        return (inner.routes.loans)(envelope);
    }
    let Some(service) = inner.routes.service(envelope.destination) else {
        // Only a message sent in process (embedded mode, where a node runs every role) or taken
        // from a queue of this node's roles reaches here: this is a wiring fault. The message
        // stays in flight, unsettled, for another node or the sweep.
        tracing::error!(kind = envelope.destination.as_str(), "a message for a service this node does not run");
        return;
    };
    // Service actors are supervised and never stop; their handlers only start a task, so
    // their mailboxes drain fast: queue regardless of actix's mailbox capacity.
    service.deliver.do_send(Deliver(envelope));
}

impl Routes {
    /// The service actor of `kind` on this node; `None` for loans and for a service without
    /// its role here.
    fn service(&self, kind: ActorKind) -> Option<&ServiceRoute> {
        match kind {
            ActorKind::Loan => None,
            ActorKind::Credit => self.credit.as_ref(),
            ActorKind::Appraisal => self.appraisal.as_ref(),
            ActorKind::Notifier => self.notifier.as_ref(),
        }
    }
}

fn settle(inner: &Inner, id: MessageId) {
    let entry = inner.in_flight().remove(&id);
    if let (Some(entry), Some(broker)) = (entry, inner.broker()) {
        for delivery in entry.deliveries {
            if delivery.unsettled.fetch_sub(1, Ordering::AcqRel) == 1 {
                broker.ack(delivery.acker.clone());
            }
        }
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
