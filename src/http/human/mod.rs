//! The human steps over HTTP (CONTRACT.md, "The human steps"): an underwriter's claim, decision,
//! request for information and deadline extension; the applicant's answer and withdrawal; an
//! operator's cancellation. Each is judged against the loan's saga and committed before the
//! answer (see `commit`).

mod bodies;
mod commit;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use chrono::Duration;
use serde::Serialize;
use utoipa::ToSchema;

use self::bodies::{DeadlineExtension, DecisionRequest, InformationAnswer, InformationRequestBody};
use self::commit::{judge_and_commit, Outcome, Preconditions};
use super::access::{Caller, Credential};
use super::errors::{loan_in_path, AdminActionErrors, ApiError, Problem, ReadErrors};
use super::json_body;
use super::loans::read_body;
use super::state::AppState;
use super::views::LoanView;
use crate::domain::{rfc3339, to_micros, RequestId, Role, Timestamp};
use crate::saga::{CancelCause, NewInformationRequest, Reviewer, ReviewerRole, SagaInput};
use crate::settings::DecisionSettings;

/// Registered before the loans scope, which would otherwise take these paths.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/loans/{id}/claim", web::post().to(claim))
        .route("/api/v1/loans/{id}/decision", web::post().to(decision))
        .route("/api/v1/loans/{id}/information-requests", web::post().to(request_information))
        .route("/api/v1/loans/{id}/information-requests/{request_id}/deadline", web::post().to(extend_deadline))
        .route("/api/v1/loans/{id}/information", web::post().to(provide_information))
        .route("/api/v1/loans/{id}/withdraw", web::post().to(withdraw));
}

/// Registered inside the operator-only `/admin` scope.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/loans/{id}/cancel", web::post().to(cancel));
}

/// `POST /api/v1/loans/{id}/information-requests` (and a deadline extension): the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestCreated {
    pub request_id: String,
    pub due_at: String,
}

/// The staff member acting (the route table lets only underwriters and operators this far).
fn reviewer(caller: &Caller) -> Result<Reviewer, ApiError> {
    match &caller.0 {
        Credential::Staff { role: Role::Underwriter, name, .. } => {
            Ok(Reviewer { name: name.clone(), role: ReviewerRole::Underwriter })
        }
        Credential::Staff { role: Role::Operator, name, .. } => {
            Ok(Reviewer { name: name.clone(), role: ReviewerRole::Operator })
        }
        _ => Err(ApiError::Forbidden),
    }
}

/// The loan after the input, as the caller may see it, with its version as the ETag.
fn answer(mut response: HttpResponseBuilder, outcome: &Outcome, caller: &Caller) -> HttpResponse {
    let view = LoanView::from_record(outcome.record());
    let view = if matches!(caller.0, Credential::Applicant { .. }) { view.for_applicant() } else { view };
    decorate(&mut response, outcome);
    response.json(view)
}

fn decorate(response: &mut HttpResponseBuilder, outcome: &Outcome) {
    response.insert_header((header::ETAG, format!("\"{}\"", outcome.record().version)));
    if outcome.replayed() {
        response.insert_header(("Idempotency-Replayed", "true"));
    }
}

/// The body as JSON (an empty body reads as `{}`).
async fn json(req: &HttpRequest, payload: web::Payload, state: &AppState) -> Result<serde_json::Value, ApiError> {
    let body = read_body(req, payload, &state.settings.http).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    json_body::parse(&body)
}

/// When to remind the applicant of a request made at `now` and due at `due_at`.
fn reminder(settings: &DecisionSettings, now: Timestamp, due_at: Timestamp) -> Option<Timestamp> {
    let percent = i32::from(settings.reminder_at_percent);
    (percent > 0).then(|| now + (due_at - now) * percent / 100)
}

/// Take a loan under review, so that other underwriters cannot act on it.
#[utoipa::path(post, path = "/api/v1/loans/{id}/claim", tag = "underwriting",
    params(("id" = String, Path, description = "The loan's id"), IfMatch, IdempotencyKey),
    responses((status = 200, description = "Claimed: the loan", body = LoanView), Conflicts, ReadErrors))]
async fn claim(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let by = reviewer(&caller)?;
    let pre = Preconditions::of(&req, id, "claim", "")?;
    let needs = "a loan under_review or awaiting_information";
    let outcome = judge_and_commit(&state, &pre, needs, |_, _| Ok(SagaInput::Claim { by: by.clone() })).await?;
    Ok(answer(HttpResponse::Ok(), &outcome, &caller))
}

/// Approve or reject a loan under review.
#[utoipa::path(post, path = "/api/v1/loans/{id}/decision", tag = "underwriting",
    request_body(content = DecisionRequest, content_type = "application/json"),
    params(("id" = String, Path, description = "The loan's id"), IfMatch, IdempotencyKey),
    responses((status = 200, description = "Decided: the loan", body = LoanView), Conflicts, Invalid, ReadErrors))]
async fn decision(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let by = reviewer(&caller)?;
    let json = json(&req, payload, &state).await?;
    let body = bodies::decision(&json)?;
    let pre = Preconditions::of(&req, id, "decision", &json.to_string())?;
    let input = SagaInput::Decide { decision: body.decision, note: body.note, by };
    let outcome = judge_and_commit(&state, &pre, "a loan under_review", |_, _| Ok(input.clone())).await?;
    Ok(answer(HttpResponse::Ok(), &outcome, &caller))
}

/// Ask the applicant for information; the loan waits for them until the deadline.
#[utoipa::path(post, path = "/api/v1/loans/{id}/information-requests", tag = "underwriting",
    request_body(content = InformationRequestBody, content_type = "application/json"),
    params(("id" = String, Path, description = "The loan's id"), IfMatch, IdempotencyKey),
    responses((status = 201, description = "Requested", body = RequestCreated), Conflicts, Invalid, ReadErrors))]
async fn request_information(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let by = reviewer(&caller)?;
    let json = json(&req, payload, &state).await?;
    let body = bodies::information_request(&json)?;
    let pre = Preconditions::of(&req, id, "information-requests", &json.to_string())?;
    let request_id = pre.request_id();
    let outcome = judge_and_commit(&state, &pre, "a loan under_review", |_, now| {
        let requested_at = to_micros(now);
        let due_at = requested_at + Duration::seconds(body.due_in_seconds);
        let request = NewInformationRequest {
            request_id,
            message: body.message.clone(),
            fields: body.fields.clone(),
            requested_at,
            due_at,
            remind_at: reminder(&state.settings.decision, requested_at, due_at),
        };
        Ok(SagaInput::RequestInformation { request, by: by.clone() })
    })
    .await?;
    request_created(HttpResponse::Created(), &outcome, request_id)
}

fn request_created(
    mut response: HttpResponseBuilder,
    outcome: &Outcome,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let request = outcome
        .record()
        .saga
        .review
        .as_ref()
        .and_then(|review| review.requests.iter().find(|r| r.id == request_id))
        .ok_or_else(|| ApiError::internal("a request for information", format!("{request_id} is not the loan's")))?;
    decorate(&mut response, outcome);
    Ok(response.json(RequestCreated { request_id: request_id.to_string(), due_at: rfc3339(request.due_at) }))
}

/// Move the open request's deadline (a reminder is armed again unless one was sent).
#[utoipa::path(post, path = "/api/v1/loans/{id}/information-requests/{request_id}/deadline", tag = "underwriting",
    request_body(content = DeadlineExtension, content_type = "application/json"),
    params(("id" = String, Path, description = "The loan's id"),
        ("request_id" = String, Path, description = "The open request's id"), IfMatch, IdempotencyKey),
    responses((status = 200, description = "Extended", body = RequestCreated), Conflicts, Invalid, ReadErrors))]
async fn extend_deadline(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (loan, request) = path.into_inner();
    let id = loan_in_path(&loan)?;
    let request_id = RequestId::parse(&request).map_err(|_| ApiError::NotFound(format!("request {request}")))?;
    let by = reviewer(&caller)?;
    let json = json(&req, payload, &state).await?;
    let body = bodies::deadline_extension(&json)?;
    let pre = Preconditions::of(&req, id, "deadline", &format!("{request_id}\n{json}"))?;
    let outcome = judge_and_commit(&state, &pre, "an open request with this id", |_, now| {
        let now = to_micros(now);
        let due_at = now + Duration::seconds(body.due_in_seconds);
        let remind_at = reminder(&state.settings.decision, now, due_at);
        Ok(SagaInput::ExtendDeadline { request_id, due_at, remind_at, by: by.clone() })
    })
    .await?;
    request_created(HttpResponse::Ok(), &outcome, request_id)
}

/// The applicant answers the open request; the loan goes back to the underwriter.
#[utoipa::path(post, path = "/api/v1/loans/{id}/information", tag = "underwriting",
    request_body(content = InformationAnswer, content_type = "application/json"),
    params(("id" = String, Path, description = "The loan's id"), IfMatch, IdempotencyKey),
    responses((status = 200, description = "Answered: the loan", body = LoanView), Conflicts, Invalid, ReadErrors))]
async fn provide_information(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let json = json(&req, payload, &state).await?;
    let request_id = bodies::answered_request(&json)?;
    let pre = Preconditions::of(&req, id, "information", &json.to_string())?;
    let outcome = judge_and_commit(&state, &pre, "an answer to the open request", |record, _| {
        // Only the open request's fields can be judged; any other answer is the saga's to refuse.
        match record.saga.open_request().filter(|open| open.id == request_id) {
            Some(open) => {
                let InformationAnswer { request_id, answers } = bodies::answers(&json, open)?;
                Ok(SagaInput::ProvideInformation { request_id, answers })
            }
            None => Ok(SagaInput::ProvideInformation { request_id, answers: Default::default() }),
        }
    })
    .await?;
    Ok(answer(HttpResponse::Ok(), &outcome, &caller))
}

/// The applicant withdraws: steps in flight settle, completed ones are compensated, the loan
/// ends cancelled.
#[utoipa::path(post, path = "/api/v1/loans/{id}/withdraw", tag = "underwriting",
    params(("id" = String, Path, description = "The loan's id"), IfMatch, IdempotencyKey),
    responses((status = 202, description = "Withdrawing: the loan", body = LoanView), Conflicts, ReadErrors))]
async fn withdraw(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    end_early(req, id, state, caller, CancelCause::Withdrawn, "withdraw").await
}

/// An operator cancels a loan as a withdrawal does.
#[utoipa::path(post, path = "/admin/loans/{id}/cancel", tag = "admin",
    params(("id" = String, Path, description = "The loan's id"), IfMatch, IdempotencyKey),
    responses((status = 202, description = "Cancelling: the loan", body = LoanView), Conflicts, AdminActionErrors))]
async fn cancel(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let by = reviewer(&caller)?.name;
    end_early(req, id, state, caller, CancelCause::Operator { by }, "cancel").await
}

async fn end_early(
    req: HttpRequest,
    id: crate::domain::LoanId,
    state: web::Data<AppState>,
    caller: Caller,
    cause: CancelCause,
    route: &'static str,
) -> Result<HttpResponse, ApiError> {
    let pre = Preconditions::of(&req, id, route, "")?;
    let needs = "a loan that is not finished nor being ended";
    let outcome = judge_and_commit(&state, &pre, needs, |_, _| Ok(SagaInput::Cancel { cause: cause.clone() })).await?;
    Ok(answer(HttpResponse::Accepted(), &outcome, &caller))
}

/// `If-Match`: the loan's `version` (its ETag) the caller saw; 412 when it moved on.
#[derive(utoipa::IntoParams)]
#[into_params(names("If-Match"), parameter_in = Header)]
#[allow(dead_code)]
struct IfMatch(Option<String>);

/// `Idempotency-Key`: a retry with the same key and body replays the first answer.
#[derive(utoipa::IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
#[allow(dead_code)]
struct IdempotencyKey(Option<String>);

/// 409 and 412 of a person's input: problem documents with the loan's `loan_status`.
struct Conflicts;

impl utoipa::IntoResponses for Conflicts {
    fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>> {
        let problem = |description: &str| {
            utoipa::openapi::RefOr::T(
                utoipa::openapi::ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(<Problem as utoipa::PartialSchema>::schema()))
                            .build(),
                    )
                    .build(),
            )
        };
        [
            (
                "400".to_owned(),
                problem("A body that is not JSON, or an If-Match or Idempotency-Key that is not acceptable"),
            ),
            ("409".to_owned(), problem("The loan's state does not allow this now (`loan_status` says what it is)")),
            ("412".to_owned(), problem("`If-Match` names a version the loan has moved on from")),
            ("422".to_owned(), problem("An Idempotency-Key reused with another request")),
        ]
        .into_iter()
        .collect()
    }
}

/// 422 of a body.
struct Invalid;

impl utoipa::IntoResponses for Invalid {
    fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>> {
        let response = utoipa::openapi::ResponseBuilder::new()
            .description("A field missing, blank, too long, unknown or out of range (named in `errors`), or an Idempotency-Key reused with another request")
            .content(
                "application/problem+json",
                utoipa::openapi::ContentBuilder::new().schema(Some(<Problem as utoipa::PartialSchema>::schema())).build(),
            )
            .build();
        [("422".to_owned(), utoipa::openapi::RefOr::T(response))].into_iter().collect()
    }
}
