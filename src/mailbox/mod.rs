//! How messages travel between actors. The database outbox is the durable record: a step's
//! messages are committed with its state change, then delivered. In embedded mode the
//! [`Postman`] hands them to local actors right after the commit and sweeps up anything a crash
//! or a lost delivery left behind; a consumer's commit deletes the row (its ack).

pub mod broker;
mod postman;

pub use postman::{PostOffice, Postman, Routes, ServiceRoute, Transport};
#[cfg(test)]
mod wire_tests;
