//! Integration tests: the real application on port 0, each test with its own database, every
//! test run against SQLite and against PostgreSQL.

#[path = "../common/database.rs"]
mod database;
mod helpers;

mod access;
mod admin;
mod conformance;
mod errors;
mod faults;
mod jwt;
mod lifecycle;
mod ops;
mod protection;
mod reads;
mod schemathesis;
