//! Integration tests: the real application on port 0, each test with its own database, every
//! test run against SQLite and against PostgreSQL.

mod helpers;

mod conformance;
mod errors;
mod lifecycle;
mod reads;
