//! loanflow: the mortgage-application process on supervised actors, durable across crashes.
//!
//! # Layout
//!
//! Layers, from the bottom; a module uses only the modules above it in this list, never one
//! below (`tests/architecture.rs` fails on an import that points up, or on a circle of imports):
//!
//! - `domain`: ids, money, the validated application, the rules of CONTRACT.md, the schedule.
//!   Pure: no I/O, no clock.
//! - `settings`: the configuration, parsed once into types, with the node's `Mode`.
//! - `saga`: the loan process as a pure state machine, `(state, input) -> (state, events,
//!   commands)`.
//! - `messages`: what every part passes around: envelopes and their cause, actor kinds, the
//!   live events and their bus, the backoff of retries.
//! - `persistence`: the database (SQLite or PostgreSQL): rows, reads, units of work and the
//!   group-commit writer.
//! - `mailbox`: the transport, in process or through RabbitMQ: the post office that owns the
//!   routes to the actors, the postman that sends, the outbox sweep, the broker.
//! - `actors`: the supervised loan and service actors, thin shells around the saga and the
//!   simulated bureaus; the registry of live actors; the actor system that starts them.
//! - `timers`: the durable timers' component (deadlines and reminders fired once, from the
//!   database) and the escalation sweep.
//! - `cluster`: the node heartbeat and the listing of every node's actors.
//! - `http`, `loadgen` and `admin_cli`: the API, streams, dashboard and admin routes; the load
//!   generator; the operator's command line (a client of the API, like the load generator).
//! - `startup`: builds the application from the settings, choosing the transport once.
//!
//! `metrics` and `telemetry` serve every layer and use only `domain`, `settings` and `saga`.
//!
//! Outside the crate, the binary uses `startup`, `settings`, `telemetry`, `loadgen` and `admin_cli`, and the
//! integration tests also [`inspect`] a node's database and actors.

pub(crate) mod actors;
pub mod admin_cli;
pub(crate) mod cluster;
pub(crate) mod domain;
pub(crate) mod http;
pub mod loadgen;
pub(crate) mod mailbox;
pub(crate) mod messages;
pub(crate) mod metrics;
pub(crate) mod persistence;
pub(crate) mod saga;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub(crate) mod timers;

/// What tests and tools read directly, beside the HTTP API: a connection to a node's database,
/// its rows per table and its history, and the node's live actors.
pub mod inspect {
    pub use crate::actors::{AddressHandoff, Registry};
    pub use crate::persistence::queries::{events_after, table_counts};
    pub use crate::persistence::{AnyConnection, Backend, EventRow, StoreError};
}
