//! The JSON shapes the API returns, each with its OpenAPI schema (`ToSchema`), and the schema of
//! the one body it takes. Views of the admin routes, the dead letters, health and the streams
//! sit next to their handlers.

mod application;
mod domain;
mod loan;
mod schedule;

pub use application::LoanApplicationRequest;
pub use loan::{EventView, LoanPage, LoanStats, LoanView, SubmittedLoanView};
pub use schedule::{ScheduleLineView, ScheduleView};
