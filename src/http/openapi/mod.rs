//! The OpenAPI 3 description of the whole HTTP API, generated from the handlers' annotations
//! (`#[utoipa::path]` next to each handler), plus the shapes the code builds by hand
//! (`schemas`) and the operations whose handlers carry no annotation (`elsewhere`: the
//! streams, the dead letters). Served at `/api-docs/openapi.json`.

mod elsewhere;
mod schemas;

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Header, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

pub use schemas::{LiveEventMessage, Liveness, LoanApplicationRequest, LoanStats, Readiness, ScheduleView};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "loanflow",
        description = "Mortgage applications processed by a durable saga on supervised actors. Errors are \
            RFC 9457 problem documents (`application/problem+json`). Any request declaring a body larger \
            than `http.max_body_bytes` gets 413. Every response carries `x-request-id` (echoed when the \
            request had a plain one).",
    ),
    paths(
        super::loans::submit, super::loans::list, super::loans::stats, super::loans::get,
        super::loans::events, super::loans::schedule,
        super::health::live, super::health::ready,
        super::admin::actors, super::admin::loans, super::admin::retry,
        super::ops::metrics, super::ops::openapi_json,
        elsewhere::ws_all, elsewhere::ws_loan, elsewhere::sse_all, elsewhere::sse_loan,
        elsewhere::dead_letters, elsewhere::replay_dead_letter,
    ),
    components(schemas(Problem, ProblemField, LiveEventMessage, super::admin::KindParam)),
    modifiers(&AdminToken),
    tags(
        (name = "loans", description = "Submit and read mortgage applications"),
        (name = "streams", description = "Live events: WebSocket and Server-Sent Events"),
        (name = "admin", description = "Operators: live actors, stuck loans, retries, dead letters (bearer token)"),
        (name = "ops", description = "Health, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// The bearer token of `/admin/*`.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("`admin.token` from the configuration".into());
        components.add_security_scheme("admin_token", SecurityScheme::Http(scheme));
    }
}

/// An RFC 9457 problem document: every error the API answers.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Problem {
    /// A relative URI naming the kind of problem, e.g. `/problems/validation`.
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// Every invalid field, for validation problems.
    errors: Option<Vec<ProblemField>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProblemField {
    /// Dotted path of the field, e.g. `applicant.email`.
    field: String,
    message: String,
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", ContentBuilder::new().schema(Some(Problem::schema())).build())
        .build()
}

fn retry_after(response: Response, description: &str) -> Response {
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::Integer));
    header.description = Some(description.into());
    let mut response = response;
    response.headers.insert("Retry-After".into(), RefOr::T(header));
    response
}

fn responses(entries: Vec<(&str, Response)>) -> BTreeMap<String, RefOr<Response>> {
    entries.into_iter().map(|(status, response)| (status.to_owned(), RefOr::T(response))).collect()
}

fn unavailable() -> Response {
    retry_after(problem("The database is unavailable; retry later"), "Seconds to wait")
}

/// Errors of a read by id: unknown id, database away.
pub struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(vec![("404", problem("No such loan (or a malformed id)")), ("503", unavailable())])
    }
}

/// Errors of a read with query parameters.
pub struct QueryErrors;

impl IntoResponses for QueryErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(vec![("400", problem("An invalid query parameter")), ("503", unavailable())])
    }
}

/// The database is away.
pub struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(vec![("503", unavailable())])
    }
}

/// Errors of a submission.
pub struct SubmitErrors;

impl IntoResponses for SubmitErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(vec![
            ("400", problem("The body is not JSON, or the Idempotency-Key is malformed; nothing stored")),
            ("413", problem("The body is larger than `http.max_body_bytes`; nothing stored")),
            ("422", problem("The application is invalid (every field error listed), or the Idempotency-Key was used with another body; nothing stored")),
            ("429", retry_after(problem("Too many submissions from this client; nothing stored"), "Seconds until a submission is accepted again")),
            ("503", unavailable()),
        ])
    }
}
