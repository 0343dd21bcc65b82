//! Storage: diesel over SQLite (embedded default) or PostgreSQL, chosen by `database.url`.
//! Reads go through an r2d2 pool on blocking threads; writes through the group-commit writer.

mod apply;
mod batch;
mod connection;
pub mod erasure;
mod faults;
mod loan_update;
pub mod nodes;
pub mod queries;
mod records;
mod schema;
pub mod secrets;
pub mod timers;
pub mod tokens;
mod unit_of_work;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

pub use apply::expire_idempotency_keys;
pub use connection::{AnyConnection, Backend};
pub use records::{
    CorruptRow, DeadLetterRow, DocumentRow, EventRow, LoanRecord, LoanRow, NewEventRow, NewOutboxRow, NodeRow,
    NotificationRow, OutboxRow, TimerRow,
};
pub use unit_of_work::{
    CommitOutcome, Effects, IdempotencyRecord, Input, StaffChange, StaffRecord, Step, StepChange, Submission,
    UnitOfWork,
};
pub use writer::Writer;

use crate::messages::EventBus;
use crate::settings::DatabaseSettings;

type Pool = r2d2::Pool<connection::AnyConnectionManager>;

type ReadJob = Box<dyn FnOnce() + Send>;

/// `n` reader threads taking jobs from one queue of at most `bound` waiting jobs; they end when
/// every sender is dropped.
fn start_readers(n: usize, bound: usize) -> std::sync::mpsc::SyncSender<ReadJob> {
    let (jobs, queue) = std::sync::mpsc::sync_channel::<ReadJob>(bound);
    let queue = Arc::new(std::sync::Mutex::new(queue));
    for i in 0..n.max(1) {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name(format!("loanflow-reader-{i}"))
            .spawn(move || loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            })
            .expect("spawning a reader thread");
    }
    jobs
}

/// Why the database could not be reached, kept for the log.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (or a connection broke): retry later; HTTP 503.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Cause),
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("the database reader threads have stopped")]
    ReadersGone,
    /// Too many reads wait already (`database.read_queue_max`), or this one waited longer than
    /// `database.connect_timeout_ms`: shed, HTTP 503 with `Retry-After`.
    #[error("too many database reads are waiting")]
    Overloaded,
    #[error("a database read panicked")]
    ReadPanicked,
    #[error("database error: {0}")]
    Query(#[source] Arc<DieselError>),
    #[error(transparent)]
    Corrupt(#[from] std::sync::Arc<CorruptRow>),
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::WriterGone | StoreError::Overloaded)
    }

    pub(crate) fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable(Arc::new(cause))
    }
}

/// What SQLite and PostgreSQL say when the database, not the statement, is at fault: busy or
/// locked, a lock cycle broken, the disk full or failing, the database read-only, the session
/// ended by the server.
const DATABASE_FAULTS: &[&str] = &[
    "database is locked",
    "deadlock detected",
    "database or disk is full",
    "No space left on device",
    "could not extend file",
    "disk I/O error",
    "readonly database",
    "read-only transaction",
    "terminating connection",
    "server closed the connection",
];

/// Whether `err` is the database's fault (trying again later, with the same rows, may succeed),
/// rather than one statement's rows (a constraint it violates): a batch cannot isolate such a
/// fault in one unit, and a unit that meets it does not count it against its message.
pub(crate) fn is_database_fault(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure
            | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        )
        | DieselError::BrokenTransactionManager => true,
        DieselError::DatabaseError(_, info) => DATABASE_FAULTS.iter().any(|fault| info.message().contains(fault)),
        _ => false,
    }
}

impl From<DieselError> for StoreError {
    fn from(err: DieselError) -> Self {
        if is_database_fault(&err) {
            StoreError::unavailable(err)
        } else {
            StoreError::Query(Arc::new(err))
        }
    }
}

impl From<CorruptRow> for StoreError {
    fn from(err: CorruptRow) -> Self {
        StoreError::Corrupt(std::sync::Arc::new(err))
    }
}

/// The pool's failed connection attempts, into the reads' fault episode: r2d2 would log each
/// one as an error (a line per attempt per pooled connection while the database is away).
struct PoolErrors(Arc<faults::FaultLog>);

impl std::fmt::Debug for PoolErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolErrors")
    }
}

impl r2d2::HandleError<diesel::ConnectionError> for PoolErrors {
    fn handle_error(&self, error: diesel::ConnectionError) {
        self.0.failed(&error);
    }
}

/// The database: a read pool and the writer.
#[derive(Clone)]
pub struct Database {
    /// Taken out by [`Database::close`]: dropping the last handle closes its connections.
    pool: Arc<std::sync::RwLock<Option<Pool>>>,
    /// Reads run on a fixed set of threads, one per pooled connection; reads beyond that wait
    /// in this queue (a boxed closure each). With `spawn_blocking`, a burst of loan
    /// re-activations once started ~1,000 threads and 1 GiB of stacks and thread heaps. Bounded
    /// (`database.read_queue_max`): a flood of reads is shed, not queued without end.
    readers: std::sync::mpsc::SyncSender<ReadJob>,
    /// A read that waited this long for a reader is shed (the pool's own wait never comes into
    /// play when the reads wait in the queue instead).
    read_wait_max: Duration,
    writer: Writer,
    backend: Backend,
    /// Whether reads fail, logged as one episode per fault.
    read_faults: Arc<faults::FaultLog>,
}

impl Database {
    /// Connect, run the embedded migrations, start the writer. Blocking: call before serving.
    pub fn open(settings: &DatabaseSettings, bus: EventBus) -> anyhow::Result<Self> {
        let backend = Backend::from_url(&settings.url);
        if let Backend::Sqlite(path) = &backend {
            if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("creating the database directory {}: {e}", dir.display()))?;
            }
        }
        let mut conn =
            backend.connect().map_err(|e| anyhow::anyhow!("connecting to the {} database: {e}", backend.name()))?;
        connection::run_migrations(&mut conn)?;
        drop(conn);
        let read_faults = Arc::new(faults::FaultLog::new("reads"));
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
            // PostgreSQL can end a session (a restart, an administrator) and libpq does not
            // reconnect: each connection is tested (`SELECT 1`, a round trip) before it is handed
            // out, so a dead one is replaced instead of failing a read. A SQLite file cannot
            // break underneath its connections: no test.
            .test_on_check_out(matches!(backend, Backend::Postgres(_)))
            .error_handler(Box::new(PoolErrors(read_faults.clone())))
            .build_unchecked(connection::AnyConnectionManager::new(backend.clone()));
        let writer = Writer::start(backend.clone(), settings, bus);
        let readers = start_readers(settings.pool_size as usize, settings.read_queue_max);
        let read_wait_max = Duration::from_millis(settings.connect_timeout_ms);
        let pool = Arc::new(std::sync::RwLock::new(Some(pool)));
        Ok(Self { pool, readers, read_wait_max, writer, backend, read_faults })
    }

    /// Whether commits are failing now (a fault of the database the reads may not see: a full
    /// disk, a write lock held elsewhere).
    pub fn commits_failing(&self) -> bool {
        self.writer.faults().is_failing()
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Run a read on a reader thread with a pooled connection, keeping the caller's span.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or(StoreError::ReadersGone)?;
        let (wait_max, queued_at) = (self.read_wait_max, std::time::Instant::now());
        let span = tracing::Span::current();
        let (answer, result) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move || {
            let _entered = span.enter();
            if queued_at.elapsed() > wait_max {
                let _ = answer.send(Err(StoreError::Overloaded));
                return;
            }
            let read = || {
                let mut conn = pool.get().map_err(StoreError::unavailable)?;
                f(&mut conn)
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
                .unwrap_or_else(|_| Err(StoreError::ReadPanicked));
            let _ = answer.send(outcome);
        });
        self.readers.try_send(job).map_err(|err| match err {
            std::sync::mpsc::TrySendError::Full(_) => StoreError::Overloaded,
            std::sync::mpsc::TrySendError::Disconnected(_) => StoreError::ReadersGone,
        })?;
        let outcome = result.await.map_err(|_| StoreError::ReadersGone)?;
        match &outcome {
            Ok(_) => self.read_faults.succeeded(),
            Err(err @ StoreError::Unavailable(_)) => self.read_faults.failed(err),
            Err(_) => {}
        }
        outcome
    }

    /// A write that belongs to no loan and needs no unit of work (the node heartbeat), on a
    /// pooled connection beside the writer.
    pub async fn write_outside_units<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        self.read(f).await
    }

    /// Close the database at the end of a shut-down: the writers commit what they hold and end,
    /// SQLite's WAL is checkpointed into the database file, and every connection is closed (the
    /// last SQLite connection to close removes the `-wal` and `-shm` files). Reads and writes
    /// after this fail as if the threads had stopped.
    pub async fn close(&self) {
        let writer = self.writer.clone();
        let _ = tokio::task::spawn_blocking(move || writer.close()).await;
        if let Backend::Sqlite(_) = self.backend {
            use diesel::connection::SimpleConnection;
            let checkpoint =
                self.read(|c| c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)").map_err(StoreError::from));
            if let Err(err) = checkpoint.await {
                tracing::warn!(error = %err, "the final WAL checkpoint failed");
            }
        }
        let pool = self.pool.write().unwrap_or_else(|e| e.into_inner()).take();
        // r2d2 closes its idle connections when its last handle goes; the reader threads hold
        // none between reads.
        let _ = tokio::task::spawn_blocking(move || drop(pool)).await;
    }

    /// A trivial query: is the database answering?
    pub async fn ping(&self) -> Result<(), StoreError> {
        use diesel::connection::SimpleConnection;
        self.read(|conn| conn.batch_execute("SELECT 1").map_err(StoreError::from)).await
    }
}
