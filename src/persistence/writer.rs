//! The group-commit writers: each thread owns one write connection and commits many units of work
//! (one step of one loan each) per transaction. SQLite has one writer anyway; batching turns one
//! fsync per step into one per batch. PostgreSQL may get several (`database.writers`, default 1:
//! more measured slower), each loan always on the same one. A unit that must be skipped
//! (a duplicate, a conflict, rows a constraint refuses) never spoils the others: the batch is
//! then re-run with a savepoint per unit, the unit's events inside it (see `commit_batch`); a
//! fault of the database fails the batch at once. Without savepoints, statements are shared by
//! the batch's units (one DELETE, multi-row INSERTs, on PostgreSQL one UPDATE of the loans).
//! Events are inserted under a lock held to the commit (taken before the events, or before the
//! first unit of an isolated run), so that event ids follow commit order across writers and
//! nodes (streams resume by event id). Failing commits are logged once per fault (`faults`).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::batch::run_batch;
use super::connection::{AnyConnection, Backend};
use super::faults::FaultLog;
use super::records::TimerRow;
use super::unit_of_work::{CommitOutcome, UnitOfWork};
use super::StoreError;
use crate::domain::LoanId;
use crate::messages::{EventBus, LiveEvent};
use crate::settings::DatabaseSettings;

/// A batch smaller than this waits `database.group_commit_wait_us` for more units.
const SMALL_BATCH: usize = 16;

/// Units waiting for a writer; senders wait (backpressure, up to the HTTP edge) once this many
/// queue up. A few batches' worth: more only holds memory (the queue allocates as it fills).
const QUEUE_BOUND: usize = 4_096;

struct Job {
    unit: UnitOfWork,
    reply: oneshot::Sender<Result<CommitOutcome, StoreError>>,
}

/// Handle to the writer threads; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    threads: Arc<Threads>,
    /// How many writers there are (fixed for the life of the process).
    writers: usize,
    /// Whether commits fail, shared by the writer threads: a fault of the database is one
    /// episode in the log, however many writers meet it.
    faults: Arc<FaultLog>,
    /// The timers each batch committed, for this node's timer component (if it runs one): a
    /// timer due soon is then held without waiting for its next read of the table.
    timers: broadcast::Sender<Vec<TimerRow>>,
}

/// Batches of committed timers a slow timer component may fall behind by before it is told it
/// missed some (it then reads the table again).
const TIMER_NOTICES: usize = 256;

/// The writers' queues and threads, and the SQLite checkpoint thread, taken apart by
/// [`Writer::close`] so that every connection they hold is closed before the process exits.
struct Threads {
    queues: std::sync::RwLock<Vec<mpsc::Sender<Job>>>,
    running: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Dropping the sender wakes the checkpoint thread and ends it.
    checkpoint: std::sync::Mutex<Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
}

impl Writer {
    /// Start `writers` threads (1 for SQLite, whatever is asked). Each connects lazily and
    /// reconnects after a failure.
    pub fn start(backend: Backend, settings: &DatabaseSettings, bus: EventBus) -> Self {
        let (batch_max, writers) = (settings.write_batch_max, settings.writers);
        let group_wait = Duration::from_micros(settings.group_commit_wait_us);
        let writers = if matches!(backend, Backend::Sqlite(_)) { 1 } else { writers.max(1) };
        let checkpoint = matches!(backend, Backend::Sqlite(_)).then(|| {
            let backend = backend.clone();
            let (stop, stopped) = std::sync::mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("loanflow-checkpoint".into())
                .spawn(move || checkpoint_loop(backend, stopped))
                .expect("spawning the checkpoint thread");
            (stop, thread)
        });
        let faults = Arc::new(FaultLog::new("commits"));
        let (timers, _) = broadcast::channel(TIMER_NOTICES);
        let (queues, running) = (0..writers)
            .map(|i| {
                let (jobs, rx) = mpsc::channel(QUEUE_BOUND);
                let (backend, bus, faults, timers) = (backend.clone(), bus.clone(), faults.clone(), timers.clone());
                let thread = std::thread::Builder::new()
                    .name(format!("loanflow-writer-{i}"))
                    .spawn(move || {
                        WriterLoop { backend, batch_max, group_wait, conn: None, bus, faults, timers }.run(rx)
                    })
                    .expect("spawning a writer thread");
                (jobs, thread)
            })
            .unzip();
        let threads = Threads {
            queues: std::sync::RwLock::new(queues),
            running: std::sync::Mutex::new(running),
            checkpoint: std::sync::Mutex::new(checkpoint),
        };
        Self { threads: Arc::new(threads), writers, faults, timers }
    }

    /// The timers committed from now on, a batch at a time.
    pub fn watch_timers(&self) -> broadcast::Receiver<Vec<TimerRow>> {
        self.timers.subscribe()
    }

    /// Whether commits fail now.
    pub(super) fn faults(&self) -> &FaultLog {
        &self.faults
    }

    /// Stop taking units, let the writers commit what is queued, and wait for every writer
    /// thread (and the checkpoint thread) to end, which closes their connections. Blocking.
    pub fn close(&self) {
        drop(std::mem::take(&mut *self.threads.queues.write().unwrap_or_else(|e| e.into_inner())));
        let running = std::mem::take(&mut *self.threads.running.lock().unwrap_or_else(|e| e.into_inner()));
        let checkpoint = self.threads.checkpoint.lock().unwrap_or_else(|e| e.into_inner()).take();
        for thread in running {
            let _ = thread.join();
        }
        if let Some((stop, thread)) = checkpoint {
            drop(stop);
            let _ = thread.join();
        }
    }

    /// The writer of a unit: by loan (a loan's rows are only ever written by one writer), or by
    /// idempotency key for submissions (two requests with one key meet on one writer).
    fn writer_for(&self, unit: &UnitOfWork) -> Option<mpsc::Sender<Job>> {
        let index = match unit {
            UnitOfWork::Submission(submission) if submission.idempotency.is_some() => {
                submission.idempotency.as_ref().map_or(0, |record| self.writer_index(&record.key))
            }
            _ => self.writer_of(unit.loan_id()),
        };
        self.threads.queues.read().unwrap_or_else(|e| e.into_inner()).get(index).cloned()
    }

    /// Which writer writes this loan's rows (units for several loans that share it can be one).
    pub fn writer_of(&self, loan: LoanId) -> usize {
        self.writer_index(&loan)
    }

    fn writer_index(&self, key: &impl Hash) -> usize {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() % self.writers as u64) as usize
    }

    /// Commit one unit of work (batched with whatever else is waiting).
    pub async fn commit(&self, unit: UnitOfWork) -> Result<CommitOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let queue = self.writer_for(&unit).ok_or(StoreError::WriterGone)?;
        queue.send(Job { unit, reply }).await.map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

struct WriterLoop {
    backend: Backend,
    batch_max: usize,
    /// How long a small batch waits for company (see `run`).
    group_wait: Duration,
    conn: Option<AnyConnection>,
    bus: EventBus,
    faults: Arc<FaultLog>,
    timers: broadcast::Sender<Vec<TimerRow>>,
}

impl WriterLoop {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            self.take_queued(&mut rx, &mut batch);
            // Under moderate load units trickle in: a short wait gathers several into one
            // transaction (one commit and one WAL write of each page instead of several).
            if batch.len() < SMALL_BATCH && !self.group_wait.is_zero() {
                std::thread::sleep(self.group_wait);
                self.take_queued(&mut rx, &mut batch);
            }
            self.commit_batch(batch);
        }
    }

    fn take_queued(&self, rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
        while batch.len() < self.batch_max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
    }

    fn commit_batch(&mut self, batch: Vec<Job>) {
        let postgres = matches!(self.backend, Backend::Postgres(_));
        let faults = self.faults.clone();
        let conn = match self.connection() {
            Ok(conn) => conn,
            Err(err) => {
                faults.failed(&err);
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
        // Units that only mark rows published go last: they touch rows of many loans, but never
        // wait for a lock (see `mark_published`), so nothing waits on them in a cycle.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| {
            let unit = &batch[i].unit;
            (matches!(unit, UnitOfWork::MarkPublished { .. }), unit.loan_id())
        });
        let units: Vec<&UnitOfWork> = order.iter().map(|&i| &batch[i].unit).collect();
        // First without savepoints (a savepoint costs two statements and a sub-journal per unit);
        // only if a unit would be skipped (duplicate, conflict, ...) or its rows violate a
        // constraint is the batch rolled back and applied again with each unit isolated in its
        // own savepoint. A fault of the database fails the batch at once: isolating cannot help.
        let result = run_batch(conn, &units, postgres);
        match result {
            Ok((outcomes, in_order)) => {
                faults.succeeded();
                // Back in the order of the batch.
                let mut in_batch_order: Vec<Option<Result<CommitOutcome, StoreError>>> =
                    (0..outcomes.len()).map(|_| None).collect();
                for (outcome, &i) in outcomes.into_iter().zip(&order) {
                    in_batch_order[i] = Some(outcome);
                }
                let outcomes: Vec<_> =
                    in_batch_order.into_iter().map(|o| o.expect("every unit has an outcome")).collect();
                // The streams' notice; in a cluster, the events for the other nodes, in the order
                // their ids were handed out (the units' locking order).
                let mut newest = None;
                for &i in &order {
                    if let Ok(CommitOutcome::Committed { event_ids }) = &outcomes[i] {
                        newest = event_ids.iter().copied().max().max(newest);
                        if self.bus.forwards() {
                            forward_events(&self.bus, &batch[i].unit, event_ids);
                        }
                    }
                }
                if let Some(newest) = newest {
                    self.bus.committed(newest);
                }
                self.announce_timers(&batch, &outcomes);
                drop(in_order);
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(err) => {
                faults.failed(&err);
                self.conn = None;
                let cause: super::Cause = Arc::new(err);
                for job in batch {
                    let _ = job.reply.send(Err(StoreError::Unavailable(cause.clone())));
                }
            }
        }
    }

    /// The timers of the committed units, to whoever watches (nobody: nothing to do).
    fn announce_timers(&self, batch: &[Job], outcomes: &[Result<CommitOutcome, StoreError>]) {
        if self.timers.receiver_count() == 0 {
            return;
        }
        let committed: Vec<TimerRow> = batch
            .iter()
            .zip(outcomes)
            .filter(|(_, outcome)| matches!(outcome, Ok(CommitOutcome::Committed { .. })))
            .flat_map(|(job, _)| job.unit.timers().iter().cloned())
            .collect();
        if !committed.is_empty() {
            let _ = self.timers.send(committed);
        }
    }

    fn connection(&mut self) -> Result<&mut AnyConnection, super::Cause> {
        if self.conn.is_none() {
            let mut conn = self.backend.connect().map_err(|e| Arc::new(e) as super::Cause)?;
            let setup = match conn {
                // Checkpoints run on their own thread (`checkpoint_loop`), not inside our commits.
                AnyConnection::Sqlite(_) => "PRAGMA wal_autocheckpoint = 0",
                AnyConnection::Postgresql(_) => POSTGRES_WRITER_SETUP,
            };
            conn.batch_execute(setup).map_err(|e| Arc::new(e) as super::Cause)?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }
}

/// PostgreSQL: plan the writer's statements for each execution. Its cached statements (the
/// outbox DELETE by message id above all) would otherwise settle on a generic plan made while
/// the outbox was nearly empty: a sequential scan, kept while the table fills with dead rows
/// between two autovacuums (measured: 3 ms and 1,200 pages per DELETE after 15 s at 700
/// loans/s, a quarter of PostgreSQL's CPU; docs/benchmarks.md). A custom plan sees the table's
/// current size and uses the unique index.
const POSTGRES_WRITER_SETUP: &str = "SET plan_cache_mode = force_custom_plan";

/// How often the WAL is copied back into the SQLite database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// SQLite: the writer's connection does not checkpoint (it was ~5 % of its time, on the thread
/// that bounds throughput); this thread does, with PASSIVE checkpoints that never block the
/// writer or readers. Between two, the WAL holds at most half a second of commits.
/// It ends when `stop`'s sender is dropped.
fn checkpoint_loop(backend: Backend, stop: std::sync::mpsc::Receiver<()>) {
    let mut conn: Option<AnyConnection> = None;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if conn.is_none() {
            conn = backend.connect().ok();
        }
        if let Some(c) = conn.as_mut() {
            if let Err(err) = c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
                tracing::debug!(error = %err, "WAL checkpoint failed; trying again");
                conn = None;
            }
        }
    }
}

/// Committed events to the other nodes, in commit order.
fn forward_events(bus: &EventBus, unit: &UnitOfWork, event_ids: &[i64]) {
    let status = unit.status().unwrap_or_default().to_owned();
    for (row, id) in unit.events().iter().zip(event_ids) {
        bus.forward(LiveEvent {
            id: *id,
            kind: row.event_type.clone(),
            loan_id: row.loan_id.clone(),
            status: status.clone(),
            at: crate::domain::rfc3339(row.at),
            data: serde_json::from_str(&row.data).unwrap_or_default(),
        });
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
