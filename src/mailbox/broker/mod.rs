//! Cluster mode's transport: RabbitMQ through lapin, on a dedicated runtime thread (lapin binds a
//! connection to the runtime it was made on, so it must outlive every arbiter). A supervisor
//! task connects with backoff, declares the topology, runs the publisher channel and the
//! consumers, and starts over when the connection is lost. The database outbox stays the
//! durable record: what cannot be published now is published by the sweep later.

mod consumer;
mod publisher;
mod received;
pub mod topology;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::BasicAckOptions;
use lapin::tcp::OwnedTLSConfig;
use lapin::{Acker, Channel, Connection, ConnectionProperties};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Postman;
use crate::messages::{backoff, Envelope};
use crate::messages::{EventBus, LiveEvent};
use crate::persistence::Database;
use crate::settings::{BrokerSettings, Settings};

/// Batches of envelopes queued for publishing (then the sweep takes over).
const PUBLISH_QUEUE: usize = 4_096;

struct Shared {
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// The confirm-mode channel the publisher uses, while connected.
    publish_channel: Mutex<Option<Channel>>,
    /// A plain channel for the events fanout (no confirms).
    events_channel: Mutex<Option<Channel>>,
    /// Consumer channels and tags of the current connection (to cancel on shutdown).
    consumers: Mutex<Vec<(Channel, String)>>,
}

impl Shared {
    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle to the broker runtime; cheap to clone.
#[derive(Clone)]
pub struct Broker {
    runtime: tokio::runtime::Handle,
    shared: Arc<Shared>,
    publish: mpsc::Sender<Vec<Envelope>>,
    events: mpsc::Sender<LiveEvent>,
    confirm_timeout: Duration,
}

/// What the broker tasks need from the rest of the node.
#[derive(Clone)]
pub struct BrokerContext {
    pub settings: Arc<Settings>,
    pub node_id: String,
    pub postman: Postman,
    pub db: Database,
    pub bus: EventBus,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This node's handle, for consumers that publish (splitting redelivered batches).
    pub broker: Broker,
}

/// The broker's connection supervisor and publisher, made with the [`Broker`] handle and
/// started once the rest of the node (its postman, its database) exists.
pub struct BrokerTasks {
    url: String,
    runtime: tokio::runtime::Handle,
    shared: Arc<Shared>,
    publish: mpsc::Sender<Vec<Envelope>>,
    publish_rx: mpsc::Receiver<Vec<Envelope>>,
    events_rx: mpsc::Receiver<LiveEvent>,
}

impl BrokerTasks {
    /// Connect (in the background, with backoff; readiness reports it), publish, consume.
    pub fn start(self, context: BrokerContext) {
        let Self { url, runtime, shared, publish, publish_rx, events_rx } = self;
        runtime.spawn(publisher::publish_loop(publish_rx, publish, shared.clone(), context.clone()));
        runtime.spawn(publisher::events_loop(events_rx, shared.clone()));
        runtime.spawn(supervise(url, shared, context));
    }
}

impl Broker {
    /// The broker thread, and the handle the node sends through; its tasks wait for
    /// [`BrokerTasks::start`].
    pub fn new(url: &str, settings: &BrokerSettings) -> (Self, BrokerTasks) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("loanflow-broker")
            .enable_all()
            .build()
            .expect("building the broker runtime");
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("loanflow-broker-main".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .expect("spawning the broker thread");
        let shared = Arc::new(Shared {
            connected: AtomicBool::new(false),
            last_error: Mutex::new(None),
            publish_channel: Mutex::new(None),
            events_channel: Mutex::new(None),
            consumers: Mutex::new(Vec::new()),
        });
        let (publish, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let (events, events_rx) = mpsc::channel(PUBLISH_QUEUE * 4);
        let confirm_timeout = Duration::from_millis(settings.confirm_timeout_ms);
        let broker =
            Self { runtime: handle.clone(), shared: shared.clone(), publish: publish.clone(), events, confirm_timeout };
        let tasks = BrokerTasks { url: url.to_owned(), runtime: handle, shared, publish, publish_rx, events_rx };
        (broker, tasks)
    }

    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    pub fn last_error(&self) -> Option<String> {
        Shared::lock(&self.shared.last_error).clone()
    }

    /// Queue committed envelopes for publishing. Never blocks: when the queue is full, they stay
    /// unpublished in the outbox and the sweep publishes them.
    pub fn publish(&self, envelopes: Vec<Envelope>) {
        if envelopes.is_empty() {
            return;
        }
        if let Err(err) = self.publish.try_send(envelopes) {
            tracing::debug!(error = %err, "publish queue full; the outbox sweep will publish");
        }
    }

    /// Queue a service's uncommitted reply for publishing, waiting for room in the queue: it has
    /// no outbox row the sweep could publish later. (The waiting is bounded: a node holds at
    /// most `broker.prefetch` unacked requests per queue.)
    pub fn publish_reply(&self, reply: Envelope) {
        let publish = self.publish.clone();
        self.runtime.spawn(async move {
            let _ = publish.send(vec![reply]).await;
        });
    }

    /// Publish each envelope as a message of its own, to `lane` of its destination's queues,
    /// and wait for the confirms: true if every one was confirmed.
    pub(super) async fn publish_each(&self, envelopes: &[Envelope], lane: topology::Lane) -> bool {
        let Some(channel) = Shared::lock(&self.shared.publish_channel).clone() else { return false };
        publisher::publish_each(&channel, envelopes, lane, self.confirm_timeout).await
    }

    /// Publish a message as it came (`data`, with `properties`) to `queue`, and wait for the
    /// confirm: true if confirmed.
    pub(super) async fn publish_raw(&self, queue: &str, data: &[u8], properties: lapin::BasicProperties) -> bool {
        let Some(channel) = Shared::lock(&self.shared.publish_channel).clone() else { return false };
        publisher::publish_raw(&channel, queue, data, properties, self.confirm_timeout).await
    }

    /// Send a committed event to every node's live streams (best effort, like the streams).
    pub fn publish_event(&self, event: LiveEvent) {
        let _ = self.events.try_send(event);
    }

    /// Stop the consumers (deliveries in flight can still be acked).
    pub async fn stop_consuming(&self) {
        let consumers: Vec<(Channel, String)> = Shared::lock(&self.shared.consumers).drain(..).collect();
        let cancel = async move {
            for (channel, tag) in consumers {
                let _ = channel.basic_cancel(tag.as_str().into(), Default::default()).await;
            }
        };
        let _ = self.runtime.spawn(cancel).await;
    }

    /// Acknowledge a delivery once its effect is committed.
    pub fn ack(&self, acker: Acker) {
        self.runtime.spawn(async move {
            // A failed ack (connection gone) means a redelivery, which the outbox de-duplicates.
            let _ = acker.ack(BasicAckOptions::default()).await;
        });
    }
}

/// Open a connection: plain for `amqp://`, TLS for `amqps://`, the server's certificate checked
/// against `broker.ca_file` when one is set (read at each connect, so a renewed CA is taken up
/// on the next reconnect), else against the system's trusted roots.
async fn connect(url: &str, settings: &BrokerSettings) -> lapin::Result<Connection> {
    let Some(ca_file) = settings.ca_file() else {
        return Connection::connect(url, ConnectionProperties::default()).await;
    };
    let cert_chain = std::fs::read_to_string(ca_file).map_err(|e| {
        lapin::Error::from(std::io::Error::new(e.kind(), format!("reading broker.ca_file {ca_file}: {e}")))
    })?;
    let tls = OwnedTLSConfig { identity: None, cert_chain: Some(cert_chain) };
    lapin::ConnectionBuilder::new()?.with_uri_str(url.to_owned()).with_tls_config(tls).connect().await
}

/// Connect, run until the connection breaks, start over with backoff.
async fn supervise(url: String, shared: Arc<Shared>, context: BrokerContext) {
    let cap = Duration::from_millis(context.settings.broker.reconnect_max_ms);
    let mut failures = 0u32;
    loop {
        match run_connection(&url, &shared, &context).await {
            Ok(()) => failures = 0,
            Err(err) => {
                failures += 1;
                tracing::warn!(error = %err, failures, "broker connection lost or refused");
                *Shared::lock(&shared.last_error) = Some(err.to_string());
            }
        }
        shared.connected.store(false, Ordering::Release);
        *Shared::lock(&shared.publish_channel) = None;
        *Shared::lock(&shared.events_channel) = None;
        tokio::time::sleep(backoff(failures.max(1), Duration::from_millis(100), cap)).await;
    }
}

async fn run_connection(url: &str, shared: &Arc<Shared>, context: &BrokerContext) -> lapin::Result<()> {
    let connection = connect(url, &context.settings.broker).await?;
    let setup = connection.create_channel().await?;
    topology::declare(&setup, &context.settings.broker, &context.node_id).await?;
    let publish_channel = connection.create_channel().await?;
    publish_channel.confirm_select(Default::default()).await?;
    // Before the consumers start: they publish on it (splitting redelivered batches).
    *Shared::lock(&shared.publish_channel) = Some(publish_channel);
    let mut tasks = JoinSet::new();
    let consumers = consumer::start_all(&connection, &setup, context, &mut tasks).await?;
    *Shared::lock(&shared.consumers) = consumers;
    *Shared::lock(&shared.events_channel) = Some(connection.create_channel().await?);
    shared.connected.store(true, Ordering::Release);
    *Shared::lock(&shared.last_error) = None;
    tracing::info!(node_id = %context.node_id, roles = %context.settings.node.roles, "connected to the broker");
    // Unpublished rows (e.g. accepted while the broker was away) go out now, from the nodes
    // whose roles commit rows.
    if context.settings.node.roles.sweeps_outbox() {
        let (postman, db) = (context.postman.clone(), context.db.clone());
        tokio::spawn(async move {
            if let Err(err) = postman.sweep(&db, Duration::ZERO, Duration::MAX).await {
                tracing::warn!(error = %err, "publishing the outbox after connecting failed");
            }
        });
    }
    // The first consumer to end means the connection (or its channel) is gone.
    let ended = tasks.join_next().await;
    tasks.abort_all();
    let _ = connection.close(200, "reconnecting".into()).await;
    match ended {
        Some(Ok(Err(err))) => Err(err),
        _ => Ok(()),
    }
}
