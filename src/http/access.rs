//! Who is asking, and whether the route lets them (CONTRACT.md, "People and access"). The
//! credential is checked first: none or an invalid one gets 401 (even for an unknown id); then
//! the loan: an applicant asking for another loan gets 404, the answer for a missing loan; then
//! the role: one the route does not allow gets 403.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};
use sha2::{Digest, Sha256};

use super::errors::ApiError;
use super::state::AppState;
use crate::domain::{ApplicantGrant, LoanId, Role};
use crate::persistence::tokens;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The operator token, a named staff token, or a JWT (which expires: `until`, in seconds
    /// since the epoch; a stream opened with it ends then).
    Staff { role: Role, name: String, until: Option<i64> },
    /// An applicant's token: one loan.
    Applicant { loan_id: LoanId },
}

/// The credential a request was let in with, for handlers that record who did what.
pub struct Caller(pub Credential);

impl actix_web::FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(req.extensions().get::<Credential>().cloned().map(Caller).ok_or(ApiError::Unauthorized))
    }
}

impl Credential {
    /// How long from now the credential stays valid (None: until revoked or reconfigured).
    pub fn remaining(&self) -> Option<std::time::Duration> {
        let Credential::Staff { until: Some(until), .. } = self else { return None };
        let seconds = until.saturating_sub(chrono::Utc::now().timestamp()).max(0);
        Some(std::time::Duration::from_secs(seconds as u64))
    }

    pub fn role(&self) -> Role {
        match self {
            Credential::Staff { role, .. } => *role,
            Credential::Applicant { .. } => Role::Applicant,
        }
    }
}

/// The staff roles that read everything.
const READERS: &[Role] = &[Role::Viewer, Role::Underwriter, Role::Operator];
/// The staff roles that decide, ask for information and extend deadlines.
const REVIEWERS: &[Role] = &[Role::Underwriter, Role::Operator];

/// What a route asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// Anyone: submissions, probes, metrics, the API document, the dashboard's files.
    Open,
    /// One of these staff roles.
    Staff(&'static [Role]),
    /// The loan in the path: its applicant, or a staff reader. `None`: not a loan id (no
    /// applicant's loan, so only staff get as far as the handler's 404).
    Loan(Option<LoanId>),
    /// Any valid credential (who am I).
    Anyone,
    /// The applicant of the loan in the path, and no one else (answering, withdrawing).
    Applicant(Option<LoanId>),
}

/// The one table of which route needs what.
fn rule(method: &Method, path: &str) -> Rule {
    let read = method == Method::GET || method == Method::HEAD;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (read, segments.as_slice()) {
        (false, ["api", "v1", "loans"]) if method == Method::POST => Rule::Open,
        (true, [""] | ["favicon.svg"] | ["assets", "dashboard" | "applicant", _]) => Rule::Open,
        (true, ["applications", _]) => Rule::Open,
        (true, ["health", "live" | "ready"] | ["metrics"] | ["api-docs", "openapi.json"]) => Rule::Open,
        (true, ["docs", ..]) => Rule::Open,
        (_, ["admin", ..]) => Rule::Staff(&[Role::Operator]),
        (false, ["api", "v1", "loans", id, "information" | "withdraw"]) => Rule::Applicant(LoanId::parse(id).ok()),
        (false, ["api", "v1", "loans", _, "decision" | "information-requests" | "claim"]) => Rule::Staff(REVIEWERS),
        (false, ["api", "v1", "loans", _, "information-requests", _, "deadline"]) => Rule::Staff(REVIEWERS),
        (true, ["api", "v1", "loans", "stats" | "steps"]) => Rule::Staff(READERS),
        (true, ["api", "v1", "me"]) => Rule::Anyone,
        (true, ["api", "v1", "loans", id] | ["api", "v1", "loans", id, "events" | "schedule"]) => loan(id),
        (true, ["api", "v1", "loans", id, "events", "stream"] | ["ws", "loans", id]) => loan(id),
        _ => Rule::Staff(READERS),
    }
}

/// Who a route lets in, as the OpenAPI document states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Anyone,
    /// A staff token of one of these roles.
    Staff(&'static [Role]),
    /// A staff reader, or the applicant of the loan in the path.
    StaffOrApplicant,
    /// The applicant of the loan in the path.
    Applicant,
}

/// The requirement of `method` on a route `pattern` (`{id}` standing for a loan's id), from the
/// same table the requests are checked against.
pub fn requirement(method: &Method, pattern: &str) -> Requirement {
    let path = pattern.replace("{id}", "00000000-0000-7000-8000-000000000000");
    match rule(method, &path) {
        Rule::Open => Requirement::Anyone,
        Rule::Staff(roles) => Requirement::Staff(roles),
        Rule::Loan(_) | Rule::Anyone => Requirement::StaffOrApplicant,
        Rule::Applicant(_) => Requirement::Applicant,
    }
}

/// Routes that take the token as `?access_token=` too.
pub fn takes_query_token(pattern: &str) -> bool {
    is_stream(pattern)
}

fn loan(id: &str) -> Rule {
    Rule::Loan(LoanId::parse(id).ok())
}

/// Stream routes also take the token as `?access_token=`: browsers cannot set headers there.
fn is_stream(path: &str) -> bool {
    path == "/ws" || path.starts_with("/ws/") || path.ends_with("/events/stream")
}

/// Check the caller against the route's rule; the credential rides on to the handler.
pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let rule = rule(req.method(), req.path());
    if rule == Rule::Open {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    }
    let token = bearer(&req).or_else(|| is_stream(req.path()).then(|| query_token(&req)).flatten());
    let credential = match token.and_then(|token| identify(&state, &token)) {
        None => return Ok(req.error_response(ApiError::Unauthorized)),
        Some(Identified::Staff(credential)) => credential,
        Some(Identified::Applicant(grant)) => {
            // A revoked token is one of an earlier generation.
            let id = grant.loan_id.to_string();
            match state.db.read(move |c| tokens::generation(c, &id)).await {
                Ok(current) if current == i64::from(grant.generation) => {
                    Credential::Applicant { loan_id: grant.loan_id }
                }
                Ok(_) => return Ok(req.error_response(ApiError::Unauthorized)),
                Err(err) => return Ok(req.error_response(ApiError::from(err))),
            }
        }
    };
    let refusal = match (&rule, &credential) {
        (Rule::Open | Rule::Anyone, _) => None,
        (Rule::Staff(roles), credential) => (!roles.contains(&credential.role())).then_some(ApiError::Forbidden),
        // The answer for a missing loan, with the path's id as the handler would echo it.
        (Rule::Loan(id), Credential::Applicant { loan_id }) if id.as_ref() != Some(loan_id) => {
            Some(ApiError::missing_loan(loan_segment(req.path())))
        }
        (Rule::Loan(_), Credential::Applicant { .. }) => None,
        (Rule::Loan(_), credential) => (!READERS.contains(&credential.role())).then_some(ApiError::Forbidden),
        (Rule::Applicant(id), Credential::Applicant { loan_id }) if id.as_ref() != Some(loan_id) => {
            Some(ApiError::missing_loan(loan_segment(req.path())))
        }
        (Rule::Applicant(_), Credential::Applicant { .. }) => None,
        (Rule::Applicant(_), Credential::Staff { .. }) => Some(ApiError::Forbidden),
    };
    if let Some(refusal) = refusal {
        return Ok(req.error_response(refusal));
    }
    req.extensions_mut().insert(credential);
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

/// The loan id segment of a loan route's path.
fn loan_segment(path: &str) -> &str {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next()) {
        (Some("ws"), Some("loans")) => segments.next().unwrap_or_default(),
        _ => path.trim_start_matches('/').split('/').nth(3).unwrap_or_default(),
    }
}

fn bearer(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|t| !t.is_empty())
}

fn query_token(req: &ServiceRequest) -> Option<String> {
    let query = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string()).ok()?;
    query.get("access_token").map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// What a token is, before an applicant's generation is checked against the database.
enum Identified {
    Staff(Credential),
    Applicant(ApplicantGrant),
}

/// What a token is, if anything: the operator's, a named staff token, or an applicant's.
fn identify(state: &AppState, token: &str) -> Option<Identified> {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    // The operator token is one of them (`startup`). Every digest is compared, so the time
    // says nothing about which one matched.
    let staff =
        state.settings.admin.staff.iter().fold(None, |found, staff| match same_digest(&digest, &staff.sha256) {
            true => Some(Credential::Staff { role: staff.role, name: staff.name.clone(), until: None }),
            false => found,
        });
    staff.map(Identified::Staff).or_else(|| state.token_key.verify(token).map(Identified::Applicant)).or_else(|| {
        let grant = state.jwt.as_ref()?.verify(token)?;
        let until = Some(grant.expires_at);
        Some(Identified::Staff(Credential::Staff { role: grant.role, name: grant.subject, until }))
    })
}

/// Compares digests in full, so the time taken says nothing about where they differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_only_when_equal() {
        let digest = |text: &str| -> [u8; 32] { Sha256::digest(text.as_bytes()).into() };
        assert!(same_digest(&digest("s3cret"), &digest("s3cret")));
        assert!(!same_digest(&digest("s3cret"), &digest("s3cret ")));
        assert!(!same_digest(&digest(""), &digest("s3cret")));
    }

    #[test]
    fn the_route_table_says_what_each_route_needs() {
        let id = LoanId::generate();
        let get = |path: &str| rule(&Method::GET, path);
        assert_eq!(rule(&Method::POST, "/api/v1/loans"), Rule::Open);
        for open in
            ["/", "/health/live", "/health/ready", "/metrics", "/api-docs/openapi.json", "/docs/", "/favicon.svg"]
        {
            assert_eq!(get(open), Rule::Open, "{open}");
        }
        assert_eq!(get("/assets/dashboard/app.js"), Rule::Open);
        assert_eq!(get("/assets/applicant/app.js"), Rule::Open);
        assert_eq!(get(&format!("/applications/{id}")), Rule::Open, "the page; its token stays in the fragment");
        for staff in ["/api/v1/loans", "/api/v1/loans/stats", "/ws", "/api/v1/events/stream", "/no-such-route"] {
            assert_eq!(get(staff), Rule::Staff(READERS), "{staff}");
        }
        assert_eq!(get("/admin/actors"), Rule::Staff(&[Role::Operator]));
        assert_eq!(get("/api/v1/me"), Rule::Anyone);
        assert_eq!(rule(&Method::POST, "/admin/loans/x/retry"), Rule::Staff(&[Role::Operator]));
        for scoped in ["", "/events", "/schedule", "/events/stream"] {
            assert_eq!(get(&format!("/api/v1/loans/{id}{scoped}")), Rule::Loan(Some(id)), "{scoped}");
        }
        assert_eq!(get(&format!("/ws/loans/{id}")), Rule::Loan(Some(id)));
        assert_eq!(get("/api/v1/loans/not-an-id"), Rule::Loan(None));
        assert_eq!(rule(&Method::POST, "/api/v1/loans/x"), Rule::Staff(READERS), "no such route: credentials first");
        assert_eq!(loan_segment(&format!("/ws/loans/{id}")), id.to_string());
        assert_eq!(loan_segment(&format!("/api/v1/loans/{id}/events")), id.to_string());
        assert!(is_stream("/ws") && is_stream(&format!("/ws/loans/{id}")) && is_stream("/api/v1/events/stream"));
        assert!(!is_stream("/api/v1/loans") && !is_stream("/wsx"));
    }
}
