//! A fresh database per run, and counts read from it directly rather than through the service.

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use loanflow::inspect::{table_counts, Backend};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server to create databases on.
fn postgres_server() -> String {
    std::env::var("LOANFLOW_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub struct TestDatabase {
    pub url: String,
    /// Set for PostgreSQL: the database is dropped after a passing test (kept after a failing
    /// one, to look into).
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub fn create(db: Db) -> TestDatabase {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = dir.path().join("loanflow.db").to_string_lossy().into_owned();
                TestDatabase { url, postgres_name: None, _dir: Some(dir) }
            }
            Db::Postgres => {
                let name = format!("loanflow_crash_{}", uuid::Uuid::new_v4().simple());
                admin_connection().batch_execute(&format!("CREATE DATABASE {name}")).expect("creating a database");
                TestDatabase {
                    url: format!("{}/{name}?sslmode=disable", postgres_server()),
                    postgres_name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    /// Rows per table, straight from the database.
    pub fn table_counts(&self) -> Vec<(&'static str, i64)> {
        let mut conn = Backend::from_url(&self.url).connect().expect("connecting to the test database");
        table_counts(&mut conn).expect("counting rows")
    }

    pub fn count(&self, table: &str) -> i64 {
        let counts = self.table_counts();
        counts.iter().find(|(name, _)| *name == table).unwrap_or_else(|| panic!("no table {table}: {counts:?}")).1
    }

    /// How many different loans have a notification row.
    pub fn notified_loans(&self) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = Backend::from_url(&self.url).connect().expect("connecting to the test database");
        let count: Count = diesel::sql_query("SELECT COUNT(DISTINCT loan_id) AS n FROM notifications")
            .get_result(&mut conn)
            .expect("counting notified loans");
        count.n
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
        .expect("PostgreSQL must be running for the tests (LOANFLOW_TEST_POSTGRES overrides the server)")
}
