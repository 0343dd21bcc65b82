//! The HTTP edge: routes, the one error mapping, health, the OpenAPI document.
//!
//! Handlers depend on `errors` and `views`; `openapi` depends on the handlers (it lists their
//! annotations and the types they return), never the reverse.

pub mod admin;
mod dashboard;
pub mod dead_letters;
mod errors;
mod health;
mod loans;
pub mod middleware;
pub mod openapi;
mod ops;
mod rate_limit;
mod streams;
pub mod views;

use std::sync::Arc;

use actix_web::web;

pub use errors::ApiError;
pub use openapi::document as openapi;
pub use rate_limit::RateLimiter;

use crate::actors::Registry;
use crate::live::EventBus;
use crate::mailbox::Postman;
use crate::persistence::Database;
use crate::settings::Settings;

/// What handlers share.
pub struct AppState {
    pub db: Database,
    pub postman: Postman,
    pub registry: Arc<Registry>,
    pub settings: Arc<Settings>,
    pub node_id: String,
    /// Committed events, live.
    pub bus: EventBus,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Submissions per client (`http.rate_limit_per_second`).
    pub rate_limiter: RateLimiter,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Before the loans scope, which would otherwise take `/api/v1/loans/{id}/events/stream`.
    streams::routes(cfg);
    dashboard::routes(cfg);
    loans::routes(cfg);
    health::routes(cfg);
    admin::routes(cfg);
    ops::routes(cfg);
    openapi::routes(cfg);
}

/// Malformed query strings and paths get a problem body too.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadParameter(crate::domain::FieldError { field: "query".into(), message: err.to_string() }).into()
    })
}
