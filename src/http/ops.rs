//! Routes for operators and integrators that need no token: `/metrics` (Prometheus text
//! format), `/api-docs/openapi.json` and the Swagger UI at `/docs/` (assets embedded).

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::errors::ApiError;
use super::openapi::{ApiDoc, Problem};
use super::state::AppState;
use crate::persistence::queries;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics))
        .route("/api-docs/openapi.json", web::get().to(openapi_json))
        .route("/docs", web::get().to(docs_redirect))
        .service(SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/api-docs/openapi.json")));
}

/// The document, built once.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
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

/// This document.
#[utoipa::path(get, path = "/api-docs/openapi.json", tag = "ops", responses(
    (status = 200, description = "The OpenAPI 3 description of this API", body = Object),
))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
}
