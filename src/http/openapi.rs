//! The OpenAPI 3 description of the whole HTTP API, generated from the handlers' annotations
//! (`#[utoipa::path]` next to each handler) plus, here, the shapes that the code builds by hand
//! (request body, stats, schedule, health, problems) and the streaming routes (documented
//! operations; their handlers live with the streams). Served at `/api-docs/openapi.json`.

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Header, RefOr, Schema};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use crate::domain::{Money, RejectionReason};

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
        ws_all, ws_loan, sse_all, sse_loan,
    ),
    components(schemas(Problem, ProblemField, LiveEventMessage, super::admin::KindParam)),
    modifiers(&AdminToken),
    tags(
        (name = "loans", description = "Submit and read mortgage applications"),
        (name = "streams", description = "Live events: WebSocket and Server-Sent Events"),
        (name = "admin", description = "Operators: live actors, stuck loans, retries (bearer token)"),
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

/// Money: a JSON number of EUR with at most two decimals.
impl PartialSchema for Money {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .description(Some("EUR, a JSON number with at most two decimals"))
            .into()
    }
}

impl ToSchema for Money {}

impl PartialSchema for RejectionReason {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["credit_score_too_low", "loan_to_value_too_high", "debt_to_income_too_high"]))
            .into()
    }
}

impl ToSchema for RejectionReason {}

/// A request amount that must be greater than 0.
pub struct PositiveMoney;

impl PartialSchema for PositiveMoney {
    fn schema() -> RefOr<Schema> {
        request_money().exclusive_minimum(Some(0)).description(Some("EUR, greater than 0, at most two decimals")).into()
    }
}

impl ToSchema for PositiveMoney {}

/// A request amount that may be 0.
pub struct NonNegativeMoney;

impl PartialSchema for NonNegativeMoney {
    fn schema() -> RefOr<Schema> {
        request_money().minimum(Some(0)).description(Some("EUR, 0 or more, at most two decimals")).into()
    }
}

impl ToSchema for NonNegativeMoney {}

fn request_money() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .maximum(Some(Money::MAX_ABS_UNITS))
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

/// `POST /api/v1/loans`: unknown fields are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LoanApplicationRequest {
    applicant: ApplicantRequest,
    property: PropertyRequest,
    /// At most `property.declared_value`.
    amount: PositiveMoney,
    #[schema(minimum = 12, maximum = 480)]
    term_months: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ApplicantRequest {
    #[schema(min_length = 1, max_length = 200, example = "Barbara Liskov")]
    name: String,
    #[schema(max_length = 254, example = "barbara@example.com")]
    email: String,
    annual_income: PositiveMoney,
    monthly_debts: NonNegativeMoney,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PropertyRequest {
    /// Contains `#fail-appraisal` to make the appraisal fail (the loan ends cancelled).
    #[schema(min_length = 1, max_length = 500, example = "12 Harbour Road, Lisbon")]
    address: String,
    declared_value: PositiveMoney,
}

/// `GET /api/v1/loans/stats`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LoanStats {
    total: i64,
    /// Loans per status; every status is present.
    by_status: BTreeMap<String, i64>,
}

/// The stored repayment schedule of an approved loan.
#[derive(ToSchema)]
#[schema(as = ScheduleDocument)]
#[allow(dead_code)]
pub struct ScheduleView {
    loan_id: String,
    currency: String,
    amount: Money,
    rate_bps: u32,
    term_months: u16,
    monthly_payment: Money,
    lines: Vec<ScheduleLine>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ScheduleLine {
    /// 1-based.
    month: u16,
    #[schema(format = Date)]
    due_date: String,
    payment: Money,
    interest: Money,
    principal: Money,
    balance: Money,
}

/// `GET /health/live`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Liveness {
    #[schema(example = "live")]
    status: String,
}

/// `GET /health/ready`: one entry per dependency under `checks`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    status: String,
    node_id: String,
    /// `embedded` or `cluster`.
    mode: String,
    checks: BTreeMap<String, serde_json::Value>,
}

/// One event as the streams send it (a WebSocket frame, or an SSE `data:` line whose `id:`
/// is the event's `id`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LiveEventMessage {
    /// The event's global id, as in `GET /api/v1/loans/{id}/events`.
    id: i64,
    /// The event type, e.g. `CreditChecked`.
    #[schema(rename = "type")]
    kind: String,
    loan_id: String,
    /// The loan's status after the event.
    status: String,
    at: String,
    data: serde_json::Value,
}

/// Every loan's events, live, over a WebSocket (one JSON object per text frame).
#[utoipa::path(get, path = "/ws", tag = "streams", responses(
    (status = 101, description = "WebSocket handshake accepted; frames carry `LiveEventMessage` objects"),
    (status = 400, description = "Not a WebSocket handshake"),
))]
#[allow(dead_code)]
fn ws_all() {}

/// One loan's events, live, over a WebSocket.
#[utoipa::path(get, path = "/ws/loans/{id}", tag = "streams",
    params(("id" = String, Path, description = "The loan's id")),
    responses(
        (status = 101, description = "WebSocket handshake accepted; frames carry `LiveEventMessage` objects"),
        (status = 400, description = "Not a WebSocket handshake"),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)]
fn ws_loan() {}

/// Every loan's events as Server-Sent Events: the history after `Last-Event-ID`, then live.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "streams",
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id")),
    responses((status = 200, description = "An endless `text/event-stream` of `LiveEventMessage` data", body = String, content_type = "text/event-stream")))]
#[allow(dead_code)]
fn sse_all() {}

/// One loan's events as Server-Sent Events: its history (after `Last-Event-ID`), then live.
#[utoipa::path(get, path = "/api/v1/loans/{id}/events/stream", tag = "streams",
    params(
        ("id" = String, Path, description = "The loan's id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "A `text/event-stream` of `LiveEventMessage` data", body = String, content_type = "text/event-stream"),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)]
fn sse_loan() {}
