//! loanflow: the mortgage-application process on supervised actors, durable across crashes.

pub mod actors;
pub mod cluster;
pub mod domain;
pub mod http;
pub mod loadgen;
pub mod mailbox;
pub mod messages;
pub mod metrics;
pub mod persistence;
pub mod saga;
pub mod settings;
pub mod startup;
pub mod telemetry;
