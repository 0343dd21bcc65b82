//! The group-commit writers: each thread owns one write connection and commits many units of work
//! (one step of one loan each) per transaction. SQLite has one writer anyway; batching turns one
//! fsync per step into one per batch. PostgreSQL gets several writers (a round trip per statement
//! is their bound, not the server), each loan always on the same one. Each unit runs in its own
//! savepoint, so a duplicate or a conflict in one unit never spoils the others; the events of a
//! batch are inserted last, under a lock held to the commit, so that event ids follow commit order
//! across writers and nodes (streams resume by event id).

use std::hash::{Hash, Hasher};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use tokio::sync::oneshot;

use super::connection::{AnyConnection, Backend};
use super::unit_of_work::{apply_unit, insert_events, Applied, ApplyError, CommitOutcome, LoanWrite, UnitOfWork};
use super::StoreError;
use crate::live::{EventBus, LiveEvent};

/// Units waiting for the writer; senders wait (backpressure) once this many queue up.
const QUEUE_BOUND: usize = 16_384;

struct Job {
    unit: UnitOfWork,
    reply: oneshot::Sender<Result<CommitOutcome, StoreError>>,
}

/// PostgreSQL: taken (transaction-scoped) right before a batch inserts its events; held to the
/// commit, so ids are handed out in commit order by every writer of every node.
const EVENT_ORDER_LOCK: &str = "SELECT pg_advisory_xact_lock(7375718252)";

/// The process-wide side of the same ordering: events are inserted, committed and published by
/// one writer at a time.
static EVENT_ORDER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Handle to the writer threads; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    shards: Arc<Vec<SyncSender<Job>>>,
}

impl Writer {
    /// Start `writers` threads (1 for SQLite, whatever is asked). Each connects lazily and
    /// reconnects after a failure.
    pub fn start(backend: Backend, batch_max: usize, bus: EventBus, writers: usize) -> Self {
        let writers = if matches!(backend, Backend::Sqlite(_)) { 1 } else { writers.max(1) };
        let shards = (0..writers)
            .map(|i| {
                let (jobs, rx) = mpsc::sync_channel(QUEUE_BOUND);
                let (backend, bus) = (backend.clone(), bus.clone());
                std::thread::Builder::new()
                    .name(format!("loanflow-writer-{i}"))
                    .spawn(move || WriterLoop { backend, batch_max, conn: None, bus }.run(rx))
                    .expect("spawning a writer thread");
                jobs
            })
            .collect();
        Self { shards: Arc::new(shards) }
    }

    /// The writer of a unit: by loan (a loan's rows are only ever written by one writer), or by
    /// idempotency key for submissions (two requests with one key meet on one writer).
    fn shard(&self, unit: &UnitOfWork) -> &SyncSender<Job> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        match &unit.idempotency {
            Some(record) => record.key.hash(&mut hasher),
            None => unit.loan_id.hash(&mut hasher),
        }
        &self.shards[(hasher.finish() % self.shards.len() as u64) as usize]
    }

    /// Commit one unit of work (batched with whatever else is waiting).
    pub async fn commit(&self, unit: UnitOfWork) -> Result<CommitOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let jobs = self.shard(&unit).clone();
        // `send` blocks only when the queue is full: do that off the async threads.
        match jobs.try_send(Job { unit, reply }) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || jobs.send(job).map_err(|_| StoreError::WriterGone))
                    .await
                    .map_err(|_| StoreError::WriterGone)??;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::WriterGone),
        }
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

struct WriterLoop {
    backend: Backend,
    batch_max: usize,
    conn: Option<AnyConnection>,
    bus: EventBus,
}

impl WriterLoop {
    fn run(mut self, rx: Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < self.batch_max {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&mut self, batch: Vec<Job>) {
        let ordered = matches!(self.backend, Backend::Postgres(_));
        let conn = match self.connection() {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "database unavailable for writes");
                for job in batch {
                    let _ = job.reply.send(Err(StoreError::Unavailable(err.clone())));
                }
                // Do not spin on a dead database.
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
        };
        // Every writer (of every node) locks the rows of the loans of a batch in ascending loan
        // order, so two batches never wait on each other in a cycle (no deadlocks).
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| batch[i].unit.loan_id);
        let units: Vec<&UnitOfWork> = order.iter().map(|&i| &batch[i].unit).collect();
        let result = conn.transaction::<_, diesel::result::Error, _>(|conn| {
            let mut outcomes: Vec<_> = units.iter().map(|unit| apply_in_savepoint(conn, unit)).collect();
            // Held from here until the events are published (after the commit): this node's
            // writers publish in the order they commit, which is id order.
            let in_order = EVENT_ORDER.lock().unwrap_or_else(|e| e.into_inner());
            if ordered && units.iter().any(|unit| !unit.events.is_empty()) {
                conn.batch_execute(EVENT_ORDER_LOCK)?;
            }
            for (unit, outcome) in units.iter().zip(outcomes.iter_mut()) {
                if let Ok(CommitOutcome::Committed { event_ids }) = outcome {
                    *event_ids = insert_events(conn, unit)?;
                }
            }
            // Back in the order of the batch.
            let mut in_batch_order: Vec<Option<Result<CommitOutcome, StoreError>>> =
                (0..outcomes.len()).map(|_| None).collect();
            for (outcome, &i) in outcomes.into_iter().zip(&order) {
                in_batch_order[i] = Some(outcome);
            }
            let outcomes =
                in_batch_order.into_iter().map(|o| o.expect("every unit has an outcome")).collect::<Vec<_>>();
            Ok((outcomes, in_order))
        });
        match result {
            Ok((outcomes, in_order)) => {
                // Live events in the order their ids were handed out (the units' locking order).
                if self.bus.has_subscribers() {
                    for &i in &order {
                        if let Ok(CommitOutcome::Committed { event_ids }) = &outcomes[i] {
                            publish_events(&self.bus, &batch[i].unit, event_ids);
                        }
                    }
                }
                drop(in_order);
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, units = batch.len(), "batch commit failed");
                self.conn = None;
                for job in batch {
                    let _ = job.reply.send(Err(StoreError::Unavailable(err.to_string())));
                }
            }
        }
    }

    fn connection(&mut self) -> Result<&mut AnyConnection, String> {
        if self.conn.is_none() {
            self.conn = Some(self.backend.connect().map_err(|e| e.to_string())?);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }
}

/// Committed events to the live bus, in commit order.
fn publish_events(bus: &EventBus, unit: &UnitOfWork, event_ids: &[i64]) {
    let status = match &unit.loan {
        Some(LoanWrite::Insert(row)) | Some(LoanWrite::Update { row, .. }) => row.status.clone(),
        Some(LoanWrite::Verify { .. }) => String::new(),
        None => String::new(),
    };
    for (row, id) in unit.events.iter().zip(event_ids) {
        bus.publish(LiveEvent {
            id: *id,
            kind: row.event_type.clone(),
            loan_id: row.loan_id.clone(),
            status: status.clone(),
            at: crate::http::views::rfc3339(row.at),
            data: serde_json::from_str(&row.data).unwrap_or_default(),
        });
    }
}

/// `Committed` with its event ids still to come.
fn apply_in_savepoint(conn: &mut AnyConnection, unit: &UnitOfWork) -> Result<CommitOutcome, StoreError> {
    match conn.transaction::<_, ApplyError, _>(|conn| apply_unit(conn, unit)) {
        Ok(Applied::Fully) => Ok(CommitOutcome::Committed { event_ids: Vec::new() }),
        Ok(Applied::OnlyConsumed) => Ok(CommitOutcome::Duplicate),
        Err(ApplyError::Skip(outcome)) => Ok(outcome),
        Err(ApplyError::Db(err)) => Err(StoreError::from(err)),
    }
}
