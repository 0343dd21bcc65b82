//! `/metrics`: the Prometheus text format, no token needed. (The OpenAPI document and the
//! Swagger UI are served by `openapi`.)

use actix_web::{web, HttpResponse};

use super::errors::{ApiError, Problem};
use super::state::AppState;
use crate::persistence::queries;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

/// The Prometheus metrics of this node.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8"),
    (status = 503, description = "The database is unavailable (the outbox backlog cannot be read)",
        body = Problem, content_type = "application/problem+json"),
))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let backlog = state.db.read(queries::outbox_len).await?;
    let text = state.metrics.render(backlog).map_err(|e| ApiError::internal("encoding metrics", e))?;
    Ok(HttpResponse::Ok().content_type(PROMETHEUS_TEXT).body(text))
}
