//! Every route of the API, and the problem body of a malformed query string or path.

use actix_web::web;

use super::errors::ApiError;
use super::{admin, applicant_page, dashboard, health, human, loans, me, openapi, ops, streams};

/// Every route: a node with the `api` role.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Before the loans scope, which would otherwise take `/api/v1/loans/{id}/events/stream`.
    streams::routes(cfg);
    dashboard::routes(cfg);
    applicant_page::routes(cfg);
    me::routes(cfg);
    // Before the loans scope too: the human steps' routes under `/api/v1/loans/{id}/`.
    human::routes(cfg);
    loans::routes(cfg);
    configure_operations(cfg);
    openapi::routes(cfg);
}

/// What operators and their tools need of every node, `api` role or not: `/health/*` (probes),
/// `/metrics` (scrapes) and `/admin/*` (the node's actors, dead letters, retries).
pub fn configure_operations(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
    admin::routes(cfg);
    ops::routes(cfg);
}

/// Malformed query strings and paths get a problem body too.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadParameter(crate::domain::FieldError { field: "query".into(), message: err.to_string() }).into()
    })
}
