//! The HTTP edge: routes, the one error mapping, health.

mod errors;
mod health;
mod loans;
pub mod views;

use std::sync::Arc;

use actix_web::web;

pub use errors::ApiError;

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
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    loans::routes(cfg);
    health::routes(cfg);
}

/// Malformed query strings and paths get a problem body too.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadParameter(crate::domain::FieldError { field: "query".into(), message: err.to_string() }).into()
    })
}
