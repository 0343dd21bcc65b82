//! The actor system: one `LoanActor` per active loan, and long-lived service actors (credit
//! bureau, appraiser, notifier), each under an actix `Supervisor`. Supervision, ordering and
//! stopping are written down in `docs/runtime-semantics.md`.
//!
//! Inside, files depend one way: `supervision`, `registry` and `faults` (test-only hooks) at
//! the bottom, then `handoff`, `shared`, `plan`, `service` and `bureaus`, `loan`, `directory`, and
//! `system`, which starts them all.

mod bureaus;
mod directory;
mod faults;
mod handoff;
mod loan;
mod mail;
mod plan;
mod registry;
mod service;
mod shared;
mod supervision;
mod system;

pub use handoff::AddressHandoff;
pub use plan::{plan_input, plan_submission};
pub use registry::Registry;
pub use system::ActorSystem;
