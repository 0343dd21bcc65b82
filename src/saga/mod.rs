//! The loan process as a pure state machine: `(state, input) -> (state, events, commands)`.
//!
//! No I/O and no clock here: the actor shell feeds inputs (bureau results, confirmations) and
//! carries out the commands; the events are the loan's history exactly as the API reports it.
//! Every input that does not fit the current state (a duplicate, a late confirmation) is ignored,
//! which is what makes at-least-once delivery safe.

mod events;
mod human;
mod machine;
mod review;
mod state;
mod steps;

pub use events::LoanEvent;
pub use human::{
    Answers, CancelCause, InformationRequest, NewInformationRequest, NoticeKind, ReferralReason, Review, Reviewer,
    ReviewerRole, UnderwriterDecision,
};
/// For the timer store, which persists the timers the saga asks for and feeds them back when due.
#[allow(unused_imports)]
pub use human::{Timer, TimerKind};
pub use machine::{SagaCommand, SagaInput, Transition};
pub use state::{LoanSaga, LoanStatus, NotificationState};
pub use steps::{is_waiting_step, IN_FLIGHT_STEPS, PEOPLE_STEPS, WAITING_STEPS};

#[cfg(test)]
mod tests;
