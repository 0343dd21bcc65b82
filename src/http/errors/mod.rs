//! Every API error, and the one place that maps them to HTTP statuses and RFC 9457 problem
//! bodies (`application/problem+json`). [`Problem`] is both the body sent and its OpenAPI schema;
//! `responses` groups the problem answers of a kind of route for the handlers' annotations.

mod responses;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub use responses::{forbidden, unauthorized, AdminActionErrors, QueryErrors, ReadErrors, SubmitErrors, Unavailable};

use crate::domain::{FieldError, LoanId, ValidationErrors};
use crate::persistence::StoreError;
use crate::saga::LoanStatus;

/// What went wrong inside, kept for the log (never shown to the client).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the application is invalid")]
    Invalid(ValidationErrors),
    #[error("{0}")]
    BadParameter(FieldError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive within {timeout_ms} ms")]
    RequestTimeout { timeout_ms: u64 },
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    #[error("{0}")]
    Conflict(String),
    /// A person's input that does not fit the loan as it is now (CONTRACT.md, "The human steps").
    #[error("{detail}")]
    LoanConflict { detail: String, loan_status: LoanStatus },
    /// `If-Match` named a version the loan has moved on from.
    #[error("the loan is at version {current}, not {expected}")]
    VersionMismatch { expected: i64, current: i64, loan_status: LoanStatus },
    /// A request body of a person's input that is not acceptable, field by field.
    #[error("the request is invalid")]
    InvalidBody(ValidationErrors),
    #[error("this needs a valid `Authorization: Bearer <token>`")]
    Unauthorized,
    #[error("this credential's role may not do this")]
    Forbidden,
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("a request body must be `application/json`")]
    UnsupportedMediaType,
    #[error("requests from the origin {0} are not allowed")]
    ForeignOrigin(String),
    #[error("this server does not answer for the host {0}")]
    MisdirectedHost(String),
    #[error("service unavailable: {0}")]
    Unavailable(#[source] Cause),
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
}

impl ApiError {
    /// The answer for a loan that does not exist, or that the caller may not see.
    pub fn missing_loan(id: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("loan {id}"))
    }

    /// A query or path parameter that is not acceptable.
    pub fn bad_parameter(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadParameter(FieldError { field: field.into(), message: message.into() })
    }

    /// An internal error with `context` in front of its cause.
    pub fn internal(context: impl std::fmt::Display, cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(format!("{context}: {cause}").into())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        if err.is_transient() {
            ApiError::Unavailable(Box::new(err))
        } else {
            ApiError::Internal(Box::new(err))
        }
    }
}

/// An error and every cause below it, for the log.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Errors that show their source in their own message (`#[error("...: {0}")]`) once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl std::fmt::Display for FieldErrorList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))
    }
}

struct FieldErrorList<'a>(&'a [FieldError]);

/// One invalid field of a problem.
#[derive(Serialize, ToSchema)]
pub struct ProblemField<'a> {
    /// Dotted path of the field, e.g. `applicant.email`.
    field: &'a str,
    message: &'a str,
}

/// An RFC 9457 problem document: every error the API answers.
#[derive(Serialize, ToSchema)]
pub struct Problem<'a> {
    /// A relative URI naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    /// Every invalid field, for validation problems (absent otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ProblemField<'a>>,
    /// The loan's status now, for a 409 or 412 on a loan (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "under_review")]
    loan_status: Option<&'a str>,
}

impl ApiError {
    fn problem_type(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::MalformedJson(_) => ("/problems/malformed-json", "Malformed JSON"),
            ApiError::Invalid(_) => ("/problems/validation", "Invalid application"),
            ApiError::BadParameter(_) => ("/problems/bad-parameter", "Invalid parameter"),
            ApiError::NotFound(_) => ("/problems/not-found", "Not found"),
            ApiError::PayloadTooLarge { .. } => ("/problems/payload-too-large", "Payload too large"),
            ApiError::RequestTimeout { .. } => ("/problems/request-timeout", "Request timeout"),
            ApiError::IdempotencyKeyReused => ("/problems/idempotency-key-reused", "Idempotency key reused"),
            ApiError::Conflict(_) => ("/problems/conflict", "Conflict"),
            ApiError::LoanConflict { .. } => ("/problems/loan-conflict", "The loan's state does not allow this"),
            ApiError::VersionMismatch { .. } => ("/problems/precondition-failed", "The loan has changed"),
            ApiError::InvalidBody(_) => ("/problems/validation", "Invalid request"),
            ApiError::Unauthorized => ("/problems/unauthorized", "Unauthorized"),
            ApiError::Forbidden => ("/problems/forbidden", "Forbidden"),
            ApiError::RateLimited { .. } => ("/problems/rate-limited", "Too many requests"),
            ApiError::UnsupportedMediaType => ("/problems/unsupported-media-type", "Unsupported media type"),
            ApiError::ForeignOrigin(_) => ("/problems/foreign-origin", "Foreign origin"),
            ApiError::MisdirectedHost(_) => ("/problems/misdirected-request", "Misdirected request"),
            ApiError::Unavailable(_) => ("/problems/unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("/problems/internal", "Internal error"),
        }
    }

    fn field_errors(&self) -> &[FieldError] {
        match self {
            ApiError::Invalid(errors) | ApiError::InvalidBody(errors) => &errors.0,
            ApiError::BadParameter(error) => std::slice::from_ref(error),
            _ => &[],
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::BadParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) | ApiError::InvalidBody(_) | ApiError::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::LoanConflict { .. } => StatusCode::CONFLICT,
            ApiError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::ForeignOrigin(_) => StatusCode::FORBIDDEN,
            ApiError::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (kind, title) = self.problem_type();
        let detail = match self {
            ApiError::Invalid(errors) | ApiError::InvalidBody(errors) => format!("{}", FieldErrorList(&errors.0)),
            // Internals stay in the log, not in the response.
            ApiError::Internal(cause) => {
                tracing::error!(cause = with_causes(cause.as_ref()), "internal error");
                "an internal error occurred".to_owned()
            }
            ApiError::Unavailable(cause) => {
                // Debug only: a fault of the database is logged once as an episode
                // (persistence/faults.rs); a line for each refused request flooded the log.
                tracing::debug!(cause = with_causes(cause.as_ref()), "dependency unavailable");
                "a dependency is unavailable; retry later".to_owned()
            }
            // What the client sent comes back at most this long (a 20 KB path is not echoed).
            other => echoed(&other.to_string()),
        };
        let problem = Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
            errors: self.field_errors().iter().map(|e| ProblemField { field: &e.field, message: &e.message }).collect(),
            loan_status: match self {
                ApiError::LoanConflict { loan_status, .. } | ApiError::VersionMismatch { loan_status, .. } => {
                    Some(loan_status.as_str())
                }
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                response.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            ApiError::Unavailable(_) => {
                response.insert_header(("Retry-After", "1"));
            }
            ApiError::Unauthorized => {
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            // The rest of a late body is never read: the connection cannot carry another request.
            ApiError::RequestTimeout { .. } => {
                response.force_close();
            }
            _ => {}
        }
        response.json(problem)
    }
}

/// Longest detail echoed to a client.
const MAX_DETAIL: usize = 300;

fn echoed(detail: &str) -> String {
    match detail.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}…", &detail[..cut]),
        None => detail.to_owned(),
    }
}

/// The loan id in a path: an unknown or malformed one is simply not found.
pub fn loan_in_path(raw: &str) -> Result<LoanId, ApiError> {
    LoanId::parse(raw).map_err(|_| ApiError::missing_loan(raw))
}
