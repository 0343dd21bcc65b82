//! Durable timers and the sweeps that wake loans when time passes: a request's deadline and
//! reminder (rows committed with the transition that set them, see `persistence::timers`), and
//! the escalation of a loan under review for too long. Run by nodes that run the loans' work.

mod escalation;
mod service;
mod wheel;

pub use escalation::EscalationSweep;
pub use service::TimerComponent;

#[cfg(test)]
mod tests;
