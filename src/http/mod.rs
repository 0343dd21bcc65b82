//! The HTTP edge: routes, the one error mapping, health, streams, the admin API, the dashboard,
//! metrics and the OpenAPI document.
//!
//! Inside, files depend one way: `state`, `errors`, `views` and `rate_limit` at the bottom, the
//! handlers above them, `openapi` (which documents the handlers) above those, and `routes`,
//! which mounts them all, on top.

pub(crate) mod access;
pub mod admin;
mod applicant_page;
mod audit;
mod body_deadline;
mod dashboard;
pub mod dead_letters;
mod edge;
mod erasure;
mod errors;
mod health;
mod human;
mod json_body;
mod jwt;
mod loans;
mod me;
pub mod middleware;
pub mod openapi;
mod ops;
mod rate_limit;
mod request_span;
mod routes;
mod state;
mod steps;
mod streams;
mod timers;
pub mod views;

pub use access::authorize;
pub use jwt::JwtVerifier;
pub use rate_limit::RateLimiter;
pub use request_span::LoggedRequest;
pub use routes::{configure, configure_operations, query_config};
pub use state::AppState;
pub use streams::{LiveFeed, StreamSlots, Streams};
