//! Integration tests: the real application on port 0, each test with its own database, every
//! test run against SQLite and against PostgreSQL.

#[path = "../common/database.rs"]
mod database;
mod helpers;

mod access;
mod admin;
mod conformance;
mod errors;
mod jwt;
mod lifecycle;
mod monitoring;
mod ops;
mod promql;
mod protection;
mod reads;
mod schemathesis;
