//! One connection type over both backends, and an r2d2 manager that picks the backend by the
//! URL's scheme itself (diesel's MultiConnection would otherwise try each backend in turn and
//! report a bad URL vaguely).

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// SQLite needs WAL and a busy timeout to take concurrent readers beside the writer. The
/// savepoint sub-journal (one savepoint per unit of work) stays in memory: it only serves
/// rollbacks inside an open transaction, never crash recovery, and on disk it cost a fifth of
/// the writer's CPU (docs/benchmarks.md).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;";

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which backend a `database.url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Postgres(String),
    /// A file path (its parent directory is created on start).
    Sqlite(String),
}

impl Backend {
    pub fn from_url(url: &str) -> Self {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(url.to_owned())
        } else {
            Backend::Sqlite(url.strip_prefix("sqlite://").unwrap_or(url).to_owned())
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    pub fn connect(&self) -> Result<AnyConnection, ConnectionError> {
        match self {
            Backend::Postgres(url) => PgConnection::establish(url).map(AnyConnection::Postgresql),
            Backend::Sqlite(path) => {
                create_private_file(path)
                    .map_err(|e| ConnectionError::BadConnection(format!("creating the database file {path}: {e}")))?;
                let mut conn = SqliteConnection::establish(path)?;
                conn.batch_execute(SQLITE_PRAGMAS).map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// The database holds personal data: its file is made readable by its owner only, before SQLite
/// opens it, whatever the umask. SQLite gives the `-wal` and `-shm` files it makes beside it the
/// same mode. An existing file keeps the mode it has (an operator may have chosen another).
fn create_private_file(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => Err(err),
        _ => Ok(()),
    }
}

/// Serialises migrations of nodes starting at the same time on one PostgreSQL database.
const MIGRATION_LOCK: i64 = 0x6c6f_616e_666c_6f77; // "loanflow"

/// Run the embedded migrations of the connection's backend.
pub fn run_migrations(conn: &mut AnyConnection) -> anyhow::Result<()> {
    let result = match conn {
        AnyConnection::Postgresql(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
            let result = pg.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            pg.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
            result
        }
        AnyConnection::Sqlite(lite) => lite.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| anyhow::anyhow!("running migrations: {e}"))
}

/// r2d2 manager for [`AnyConnection`].
#[derive(Debug, Clone)]
pub struct AnyConnectionManager {
    backend: Backend,
}

impl AnyConnectionManager {
    pub fn new(backend: Backend) -> Self {
        Self { backend }
    }
}

impl r2d2::ManageConnection for AnyConnectionManager {
    type Connection = AnyConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<AnyConnection, ConnectionError> {
        self.backend.connect()
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectionError> {
        conn.batch_execute("SELECT 1").map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, _conn: &mut AnyConnection) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_new_sqlite_database_and_its_journal_files_are_private_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.db").to_string_lossy().into_owned();
        let mut conn = Backend::Sqlite(path.clone()).connect().unwrap();
        run_migrations(&mut conn).unwrap();
        for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
            let mode = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{file}: {e}")).permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
        }
    }
}
