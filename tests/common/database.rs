//! A fresh database per test (a SQLite file in a temporary directory, or a new PostgreSQL
//! database), and what tests read from it directly rather than through the service.

#![allow(dead_code)]

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use loanflow::inspect::{table_counts, Backend};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on (CI starts it;
/// `LOANFLOW_TEST_POSTGRES` overrides it).
pub fn postgres_server() -> String {
    std::env::var("LOANFLOW_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A new, empty database for one test.
pub struct TestDatabase {
    pub url: String,
    /// Set for PostgreSQL: the database is dropped after a passing test (with the connections
    /// the test's app still holds, so a long suite does not run the server out of connections),
    /// and kept after a failing one, to look into.
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub fn create(db: Db) -> Self {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = dir.path().join("loanflow.db").to_string_lossy().into_owned();
                Self { url, postgres_name: None, _dir: Some(dir) }
            }
            Db::Postgres => {
                let name = format!("loanflow_test_{}", uuid::Uuid::new_v4().simple());
                admin_connection().batch_execute(&format!("CREATE DATABASE {name}")).expect("creating a test database");
                // No TLS on loopback: libpq's OpenSSL clean-up at exit can crash a test binary
                // whose leftover app threads still hold connections.
                let url = format!("{}/{name}?sslmode=disable", postgres_server());
                Self { url, postgres_name: Some(name), _dir: None }
            }
        }
    }

    /// The PostgreSQL database's name (empty for SQLite).
    pub fn name(&self) -> &str {
        self.postgres_name.as_deref().unwrap_or_default()
    }

    fn connect(&self) -> loanflow::inspect::AnyConnection {
        Backend::from_url(&self.url).connect().expect("connecting to the test database")
    }

    /// Run SQL on the database directly (not through the app).
    pub fn execute(&self, sql: &str) {
        self.connect().batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Rows per table, read directly (not through the app).
    pub fn counts(&self) -> Vec<(&'static str, i64)> {
        table_counts(&mut self.connect()).expect("counting rows")
    }

    /// The rows of one table.
    pub fn count(&self, table: &str) -> i64 {
        let counts = self.counts();
        counts.iter().find(|(name, _)| *name == table).unwrap_or_else(|| panic!("no table {table}: {counts:?}")).1
    }

    /// The first column (text) of every row `sql` selects, read directly.
    #[allow(dead_code)]
    pub fn texts(&self, sql: &str) -> Vec<String> {
        #[derive(QueryableByName)]
        struct Text {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let rows: Vec<Text> = diesel::sql_query(sql).load(&mut self.connect()).unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|row| row.value).collect()
    }

    /// The whole event history, `(id, type)` in id order, read directly.
    pub fn history(&self) -> Vec<(i64, String)> {
        let rows = loanflow::inspect::events_after(&mut self.connect(), 0, 1_000_000).expect("reading the history");
        rows.into_iter().map(|r| (r.id, r.event_type)).collect()
    }

    /// How many different loans have a notification row.
    pub fn notified_loans(&self) -> i64 {
        self.query_i64("SELECT COUNT(DISTINCT loan_id) FROM notifications")
    }

    /// The one number a query answers, read directly (not through the app).
    pub fn query_i64(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Number {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let number: Number = diesel::sql_query(format!("SELECT ({sql}) AS n"))
            .get_result(&mut self.connect())
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        number.n
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let (Some(name), false) = (&self.postgres_name, std::thread::panicking()) {
            let _ = admin_connection().batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn admin_connection() -> diesel::PgConnection {
    diesel::PgConnection::establish(&format!("{}/postgres", postgres_server()))
        .expect("PostgreSQL must be running for the tests (see .ci/run; LOANFLOW_TEST_POSTGRES overrides the server)")
}
