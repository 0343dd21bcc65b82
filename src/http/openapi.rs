//! The OpenAPI 3 description of the whole HTTP API, and the routes that serve it
//! (`/api-docs/openapi.json`, the Swagger UI at `/docs/` with its assets embedded).
//!
//! The document is generated from the handlers' `#[utoipa::path]` annotations and the types they
//! return (`ToSchema` on the views and on the problem body). This module only lists them: it
//! depends on the handlers, never the other way round.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::access::{requirement, takes_query_token, Requirement};
use super::admin::{self, KindParam};
use super::errors::{forbidden, unauthorized, Problem, ProblemField};
use super::streams::{self, LiveEventMessage};
use super::{dead_letters, erasure, health, human, loans, me, ops, steps, timers};
use crate::domain::Role;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "loanflow",
        description = "Mortgage applications processed by a durable saga on supervised actors. Errors are \
            RFC 9457 problem documents (`application/problem+json`). Any request declaring a body larger \
            than `http.max_body_bytes` gets 413; a request whose headers or body arrive too slowly \
            (`http.header_timeout_ms`, `http.body_timeout_ms`) gets 408 and its connection closed. Every response carries `x-request-id` (echoed when the \
            request had a plain one).",
    ),
    paths(
        loans::submit, loans::list, loans::stats, steps::steps, loans::get, loans::events, loans::schedule, me::me,
        health::live, health::ready,
        admin::actors, admin::loans, admin::retry, admin::revoke_access_token,
        ops::metrics, openapi_json,
        streams::ws::all, streams::ws::one, streams::sse::all, streams::sse::one,
        dead_letters::list, dead_letters::replay, erasure::erase, timers::list,
        human::claim, human::decision, human::request_information, human::extend_deadline,
        human::provide_information, human::withdraw, human::cancel,
    ),
    components(schemas(Problem, ProblemField, LiveEventMessage, KindParam)),
    modifiers(&Credentials),
    tags(
        (name = "loans", description = "Submit and read mortgage applications"),
        (name = "underwriting", description = "The human steps: claim, decide, ask for information, answer, withdraw"),
        (name = "streams", description = "Live events: WebSocket and Server-Sent Events"),
        (name = "admin", description = "Operators: live actors, stuck loans, retries, dead letters (bearer token)"),
        (name = "ops", description = "Health, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// The credentials (CONTRACT.md, "People and access") as security schemes, and each
/// operation's requirement, from the route table requests are checked against.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut scheme = Http::new(HttpAuthScheme::Bearer);
            scheme.description = Some(description.into());
            SecurityScheme::Http(scheme)
        };
        components.add_security_scheme(
            "admin_token",
            bearer("The operator's token (`admin.token`), or a staff token of role operator"),
        );
        components.add_security_scheme(
            "staff_token",
            bearer("The operator's token or a named staff token (viewer, underwriter, operator)"),
        );
        components.add_security_scheme("applicant_token", bearer("The `access_token` of the loan's submission"));
        let query = ApiKey::Query(ApiKeyValue::with_description(
            "access_token",
            "Any of the tokens above, on the stream routes",
        ));
        components.add_security_scheme("query_token", SecurityScheme::ApiKey(query));
        for (pattern, item) in openapi.paths.paths.iter_mut() {
            let operations = [(Method::GET, &mut item.get), (Method::POST, &mut item.post)];
            for (method, operation) in operations {
                let Some(operation) = operation.as_mut() else { continue };
                operation.security = security(&method, pattern);
                if operation.security.is_some() {
                    let answers = &mut operation.responses.responses;
                    answers.entry("401".into()).or_insert_with(|| RefOr::T(unauthorized()));
                    answers.entry("403".into()).or_insert_with(|| RefOr::T(forbidden()));
                }
            }
        }
    }
}

/// The ways to meet a route's requirement (any one of them).
fn security(method: &Method, pattern: &str) -> Option<Vec<SecurityRequirement>> {
    let one = |scheme: &str| SecurityRequirement::new(scheme, Vec::<String>::new());
    let mut ways = match requirement(method, pattern) {
        Requirement::Anyone => return None,
        Requirement::Staff(roles) if roles == [Role::Operator] => vec![one("admin_token")],
        Requirement::Staff(_) => vec![one("staff_token")],
        Requirement::StaffOrApplicant => vec![one("staff_token"), one("applicant_token")],
        Requirement::Applicant => vec![one("applicant_token")],
    };
    if takes_query_token(pattern) {
        ways.push(one("query_token"));
    }
    Some(ways)
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The document and the Swagger UI; no token needed.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-docs/openapi.json", web::get().to(openapi_json))
        .route("/docs", web::get().to(docs_redirect))
        .service(SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/api-docs/openapi.json")));
}

/// This document.
#[utoipa::path(get, path = "/api-docs/openapi.json", tag = "ops", responses(
    (status = 200, description = "The OpenAPI 3 description of this API", body = Object),
))]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
}
