//! Integration tests: the real application on port 0, each test with its own database, every
//! test run against SQLite and against PostgreSQL.

#[path = "../common/database.rs"]
mod database;
mod helpers;
#[allow(dead_code)]
#[path = "../crash/process.rs"]
mod process;

mod access;
mod admin;
mod conformance;
mod errors;
mod faults;
mod human;
mod idempotency;
mod jwt;
mod lifecycle;
mod monitoring;
mod ops;
mod privacy;
mod promql;
mod protection;
mod reads;
mod request_log;
mod schemathesis;
mod slow_clients;
mod waiting;
