//! The problem answers a kind of route can give, as sets of OpenAPI responses for the handlers'
//! `#[utoipa::path]` annotations (each body a [`Problem`], `application/problem+json`).

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Header, RefOr};
use utoipa::{IntoResponses, PartialSchema};

use super::Problem;

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
            ("408", problem("The body did not arrive within `http.body_timeout_ms`; nothing stored, the connection closed")),
            ("413", problem("The body is larger than `http.max_body_bytes`; nothing stored")),
            ("415", problem("The body is not `application/json`; nothing stored")),
            ("422", problem("The application is invalid (every field error listed; a key twice in one object is an error on that key), or the Idempotency-Key was used with another body; nothing stored")),
            ("429", retry_after(problem("Too many submissions from this client; nothing stored"), "Seconds until a submission is accepted again")),
            ("503", unavailable()),
        ])
    }
}

/// 401: no credential, or one that is not valid.
pub fn unauthorized() -> Response {
    let mut unauthorized = problem("Missing or invalid credential (a revoked applicant token too)");
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::String));
    header.description = Some("`Bearer`".into());
    unauthorized.headers.insert("WWW-Authenticate".into(), RefOr::T(header));
    unauthorized
}

/// 403: a valid credential whose role the route does not allow.
pub fn forbidden() -> Response {
    problem("A credential whose role may not do this")
}

/// Errors of an operator's action on one loan or message.
pub struct AdminActionErrors;

impl IntoResponses for AdminActionErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(vec![
            ("401", unauthorized()),
            ("403", forbidden()),
            ("404", problem("No such loan or message")),
            ("503", unavailable()),
        ])
    }
}
