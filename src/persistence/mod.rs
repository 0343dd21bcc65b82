//! Storage: diesel over SQLite (embedded default) or PostgreSQL, chosen by `database.url`.
//! Reads go through an r2d2 pool on blocking threads; writes through the group-commit writer.

mod apply;
mod connection;
mod loan_update;
pub mod nodes;
pub mod queries;
mod records;
mod schema;
pub mod secrets;
pub mod tokens;
mod unit_of_work;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

pub use connection::{AnyConnection, Backend};
pub use records::{
    CorruptRow, DeadLetterRow, DocumentRow, EventRow, LoanRecord, LoanRow, NewEventRow, NewOutboxRow, NodeRow,
    NotificationRow, OutboxRow,
};
pub use unit_of_work::{
    CommitOutcome, Effects, IdempotencyRecord, StaffChange, StaffRecord, Step, StepChange, Submission, UnitOfWork,
};
pub use writer::Writer;

use crate::messages::EventBus;
use crate::settings::DatabaseSettings;

type Pool = r2d2::Pool<connection::AnyConnectionManager>;

type ReadJob = Box<dyn FnOnce() + Send>;

/// `n` reader threads taking jobs from one queue; they end when every sender is dropped.
fn start_readers(n: usize) -> std::sync::mpsc::Sender<ReadJob> {
    let (jobs, queue) = std::sync::mpsc::channel::<ReadJob>();
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
        matches!(self, StoreError::Unavailable(_) | StoreError::WriterGone)
    }

    pub(crate) fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable(Arc::new(cause))
    }
}

impl From<DieselError> for StoreError {
    fn from(err: DieselError) -> Self {
        let transient = match &err {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )
            | DieselError::BrokenTransactionManager => true,
            // Busy SQLite, or PostgreSQL breaking a lock cycle: trying again succeeds.
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
            DieselError::DatabaseError(_, info) => {
                info.message().contains("database is locked") || info.message().contains("deadlock detected")
            }
            _ => false,
        };
        if transient {
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

/// The database: a read pool and the writer.
#[derive(Clone)]
pub struct Database {
    /// Taken out by [`Database::close`]: dropping the last handle closes its connections.
    pool: Arc<std::sync::RwLock<Option<Pool>>>,
    /// Reads run on a fixed set of threads, one per pooled connection; reads beyond that wait
    /// in this queue (a boxed closure each). With `spawn_blocking`, a burst of loan
    /// re-activations once started ~1,000 threads and 1 GiB of stacks and thread heaps.
    readers: std::sync::mpsc::Sender<ReadJob>,
    writer: Writer,
    backend: Backend,
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
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .build_unchecked(connection::AnyConnectionManager::new(backend.clone()));
        let writer = Writer::start(backend.clone(), settings, bus);
        let readers = start_readers(settings.pool_size as usize);
        Ok(Self { pool: Arc::new(std::sync::RwLock::new(Some(pool))), readers, writer, backend })
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
        let span = tracing::Span::current();
        let (answer, result) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move || {
            let _entered = span.enter();
            let read = || {
                let mut conn = pool.get().map_err(StoreError::unavailable)?;
                f(&mut conn)
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
                .unwrap_or_else(|_| Err(StoreError::ReadPanicked));
            let _ = answer.send(outcome);
        });
        self.readers.send(job).map_err(|_| StoreError::ReadersGone)?;
        result.await.map_err(|_| StoreError::ReadersGone)?
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
