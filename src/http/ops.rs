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
    // Two counts, both from indexes: the outbox, and the loans per step (`loans_waiting`).
    let (backlog, waiting) = state.db.read(|c| Ok((queries::outbox_len(c)?, queries::waiting_by_step(c)?))).await?;
    state.metrics.set_loans_waiting(&waiting, chrono::Utc::now().naive_utc());
    let text = state.metrics.render(backlog).map_err(|e| ApiError::internal("encoding metrics", e))?;
    Ok(HttpResponse::Ok().content_type(PROMETHEUS_TEXT).body(text))
}
