//! The actor system: one `LoanActor` per active loan, and long-lived service actors (credit
//! bureau, appraiser, notifier), each under an actix `Supervisor`. Supervision, ordering and
//! stopping are written down in `docs/runtime-semantics.md`.
//!
//! Inside, files depend one way: `supervision` and `registry` at the bottom, then `shared`,
//! `plan`, `service` and `bureaus`, `loan`, `directory`, and `system`, which starts them all.

mod bureaus;
mod directory;
mod loan;
mod plan;
mod registry;
mod service;
mod shared;
mod supervision;
mod system;

pub use bureaus::{Appraiser, CreditBureau, Notifier, NOTIFICATION_CHANNEL};
pub use directory::LoanDirectory;
pub use loan::LoanActor;
pub use plan::{plan_submission, AfterCommit, SCHEDULE_KIND};
pub use registry::{ActorSnapshot, ActorState, ActorStats, Registry};
pub use service::{Service, ServiceActor};
pub use shared::SharedHandles;
pub use system::ActorSystem;

pub type CreditActor = ServiceActor<CreditBureau>;
pub type AppraisalActor = ServiceActor<Appraiser>;
pub type NotifierActor = ServiceActor<Notifier>;
