//! `/api/v1/loans`: submit, read, list, stats, history, schedule.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::access::{Caller, Credential};
use super::body_deadline;
use super::errors::{loan_in_path, ApiError, QueryErrors, ReadErrors, SubmitErrors, Unavailable};
use super::json_body;
use super::state::AppState;
use super::views::{
    EventView, LoanApplicationRequest, LoanPage, LoanStats, LoanView, ScheduleLineView, ScheduleView, SubmittedLoanView,
};
use crate::actors::plan_submission;
use crate::domain::{hex, parse_schedule_csv, FieldError, LoanApplication, LoanId, Money};
use crate::persistence::{queries, tokens, CommitOutcome, CorruptRow, IdempotencyRecord, StoreError};
use crate::saga::{is_waiting_step, LoanStatus, WAITING_STEPS};
use crate::settings::HttpSettings;
use crate::telemetry;

const MAX_IDEMPOTENCY_KEY: usize = 200;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/loans")
            .route("", web::post().to(submit))
            .route("", web::get().to(list))
            .route("/stats", web::get().to(stats))
            .route("/steps", web::get().to(super::steps::steps))
            .route("/{id}", web::get().to(get))
            .route("/{id}/events", web::get().to(events))
            .route("/{id}/schedule", web::get().to(schedule)),
    );
}

/// Read the body up to the limit ourselves, so that an oversized body gets a problem response.
/// A body past `http.body_timeout_ms` (see `body_deadline`) is 408.
pub(super) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    http: &HttpSettings,
) -> Result<web::BytesMut, ApiError> {
    let limit = http.max_body_bytes;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if body_deadline::is_timeout(&e) {
                ApiError::RequestTimeout { timeout_ms: http.body_timeout_ms }
            } else {
                ApiError::MalformedJson(e.to_string())
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(super) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else { return Ok(None) };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::BadParameter(FieldError {
            field: "Idempotency-Key".into(),
            message: format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"),
        }));
    }
    Ok(Some(key.to_owned()))
}

/// Submit an application; its evaluation runs in the background.
#[utoipa::path(post, path = "/api/v1/loans", tag = "loans",
    request_body(content = LoanApplicationRequest, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]([ -~]*[!-~])?$",
        description = "Replays the first answer for a repeated key")),
    responses((status = 201, description = "Accepted (or replayed)", body = SubmittedLoanView, headers(
        ("Location" = String, description = "The loan's URL"),
        ("Idempotency-Replayed" = String, description = "`true` when this is the answer to an earlier request"),
    )), SubmitErrors))]
#[tracing::instrument(name = "submit_loan", skip_all, fields(loan.id = tracing::field::Empty))]
async fn submit(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let body = read_body(&req, payload, &state.settings.http).await?;
    let json = json_body::parse(&body)?;
    let application = LoanApplication::parse(&json).map_err(ApiError::Invalid)?;
    // Only a keyed request needs its hash (to tell a replay from another request under the key).
    let request_hash = key.as_ref().map(|_| hex::encode(&Sha256::digest(json.to_string().as_bytes())));

    let now = chrono::Utc::now().naive_utc();
    let expired_before = now - state.settings.http.idempotency_ttl();
    let idempotency = key.zip(request_hash.clone()).map(|(key, request_hash)| IdempotencyRecord {
        key,
        request_hash,
        expired_before,
    });
    let id = LoanId::generate();
    tracing::Span::current().record("loan.id", tracing::field::display(id));
    let band = state.settings.decision.review_below_score;
    let (unit, plan) = plan_submission(id, application, now, idempotency, band, telemetry::current_traceparent());

    match state.db.writer().commit(unit).await? {
        CommitOutcome::Committed { .. } => {
            let view = submitted(&state, LoanView::from_record(&plan.record), plan.record.id, 0);
            state.postman.deliver_submission(plan.record, plan.emits);
            Ok(created(view, false))
        }
        CommitOutcome::IdempotentReplay { loan_id, request_hash: earlier } => {
            if Some(earlier) != request_hash {
                return Err(ApiError::IdempotencyKeyReused);
            }
            let id =
                LoanId::parse(&loan_id).map_err(|e| ApiError::internal("the loan an idempotency key points at", e))?;
            let key = id.to_string();
            let (row, generation) =
                state.db.read(move |c| Ok((queries::loan(c, id)?, tokens::generation(c, &key)?))).await?;
            let row =
                row.ok_or_else(|| ApiError::internal("idempotency key", format!("points at missing loan {id}")))?;
            let generation = u32::try_from(generation).map_err(|e| ApiError::internal("the token generation", e))?;
            Ok(created(submitted(&state, LoanView::from_row(row).map_err(store_error)?, id, generation), true))
        }
        other => Err(ApiError::internal("unexpected outcome of a submission", format!("{other:?}"))),
    }
}

/// The loan with its applicant's token of `generation`: derived, so a replay carries the same
/// one (the current one, if an operator revoked it since).
fn submitted(state: &AppState, loan: LoanView, id: LoanId, generation: u32) -> SubmittedLoanView {
    let access_token = state.token_key.applicant_token(id, generation);
    SubmittedLoanView { page: format!("/applications/{id}#token={access_token}"), access_token, loan }
}

fn created(view: SubmittedLoanView, replayed: bool) -> HttpResponse {
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/api/v1/loans/{}", view.loan.id)));
    if replayed {
        response.insert_header(("Idempotency-Replayed", "true"));
    }
    response.json(view)
}

/// One loan.
#[utoipa::path(get, path = "/api/v1/loans/{id}", tag = "loans", params(("id" = String, Path, description = "The loan's id (a UUID)")),
    responses((status = 200, description = "The loan", body = LoanView), ReadErrors))]
async fn get(path: web::Path<String>, state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let row = state.db.read(move |c| queries::loan(c, id)).await?;
    let row = row.ok_or_else(|| ApiError::missing_loan(id))?;
    let view = LoanView::from_row(row).map_err(store_error)?;
    let view = if matches!(caller.0, Credential::Applicant { .. }) { view.for_applicant() } else { view };
    // The version as the ETag: what `If-Match` on the human steps' routes names.
    Ok(HttpResponse::Ok().insert_header((header::ETAG, format!("\"{}\"", view.version))).json(view))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    waiting_on: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Loans, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/loans", tag = "loans", params(
    ("status" = Option<String>, Query, pattern = "^(submitted|evaluating|under_review|awaiting_information|approved|rejected|cancelled)?$",
        description = "Only loans with this status (empty: every status)"),
    ("waiting_on" = Option<String>, Query,
        pattern = "^(start|credit_check|appraisal|underwriter|applicant|credit_release|appraisal_void|schedule|notification)?$",
        description = "Only loans waiting on this step (empty: any)"),
    ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Page size (default 50)"),
    ("cursor" = Option<String>, Query, pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$",
        description = "`next_cursor` of the previous page (empty: the first page)"),
), responses((status = 200, description = "A page of loans", body = LoanPage), QueryErrors))]
async fn list(query: web::Query<ListQuery>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(LoanStatus::parse(s).ok_or_else(|| {
            ApiError::bad_parameter("status", "must be one of submitted, evaluating, under_review, awaiting_information, approved, rejected, cancelled")
        })?),
    };
    let waiting_on = match query.waiting_on.filter(|s| !s.is_empty()) {
        None => None,
        Some(step) if is_waiting_step(&step) => Some(step),
        Some(_) => {
            return Err(ApiError::bad_parameter("waiting_on", format!("must be one of {}", WAITING_STEPS.join(", "))))
        }
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::bad_parameter("limit", format!("must be an integer from 1 to {MAX_PAGE}")))?,
    };
    let cursor = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => Some(
            LoanId::parse(raw).map_err(|_| ApiError::bad_parameter("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let filter = queries::LoanFilter { status: status.map(|s| s.as_str().to_owned()), waiting_on };
    let mut rows = state.db.read(move |c| queries::list_loans(c, filter, cursor, limit + 1)).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| r.id.clone()) } else { None };
    let items = rows.into_iter().map(LoanView::from_row).collect::<Result<_, _>>().map_err(store_error)?;
    Ok(HttpResponse::Ok().json(LoanPage { items, next_cursor }))
}

/// How many loans there are, by status.
#[utoipa::path(get, path = "/api/v1/loans/stats", tag = "loans",
    responses((status = 200, description = "Counts", body = LoanStats), Unavailable))]
async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let counts = state.db.read(queries::count_by_status).await?;
    let mut by_status: BTreeMap<String, i64> = LoanStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
    let mut total = 0;
    for (status, n) in counts {
        total += n;
        by_status.insert(status, n);
    }
    Ok(HttpResponse::Ok().json(LoanStats { total, by_status }))
}

/// A loan's history, oldest first; ids increase across all loans.
#[utoipa::path(get, path = "/api/v1/loans/{id}/events", tag = "loans", params(("id" = String, Path, description = "The loan's id (a UUID)")),
    responses((status = 200, description = "The history", body = Vec<EventView>), ReadErrors))]
async fn events(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let rows = state
        .db
        .read(move |c| {
            let exists = queries::loan(c, id)?.is_some();
            exists.then(|| queries::events_of(c, id)).transpose()
        })
        .await?;
    let rows = rows.ok_or_else(|| ApiError::missing_loan(id))?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(EventView::from_row).collect::<Vec<_>>()))
}

/// The repayment schedule of an approved loan, as JSON or (`Accept: text/csv`) CSV.
#[utoipa::path(get, path = "/api/v1/loans/{id}/schedule", tag = "loans", params(("id" = String, Path, description = "The loan's id (a UUID)"),
    ("Accept" = Option<String>, Header, description = "`text/csv` for CSV, anything else for JSON"),
), responses((status = 200, description = "The schedule", content(
    (ScheduleView = "application/json"), (String = "text/csv"),
)), ReadErrors))]
async fn schedule(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let (loan, document) = state.db.read(move |c| Ok((queries::loan(c, id)?, queries::document_of(c, id)?))).await?;
    let loan = loan.ok_or_else(|| ApiError::missing_loan(id))?;
    let document = document.ok_or_else(|| {
        ApiError::NotFound(format!("schedule of loan {id} (status {}; only approved loans have one)", loan.status))
    })?;
    let wants_csv = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    let internal = |e: String| ApiError::internal(format!("stored schedule of loan {id}"), e);
    if wants_csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"schedule-{id}.csv\"")))
            .body(document.content));
    }
    let lines = parse_schedule_csv(&document.content).map_err(|e| internal(e.to_string()))?;
    let figure = |value: Option<i64>, name: &str| value.ok_or_else(|| internal(format!("the loan has no {name}")));
    Ok(HttpResponse::Ok().json(ScheduleView {
        loan_id: id.to_string(),
        currency: "EUR",
        amount: Money::from_cents(loan.amount_cents),
        rate_bps: u32::try_from(figure(loan.rate_bps.map(i64::from), "rate")?).map_err(|e| internal(e.to_string()))?,
        term_months: u16::try_from(loan.term_months).map_err(|e| internal(e.to_string()))?,
        monthly_payment: Money::from_cents(figure(loan.monthly_payment_cents, "monthly payment")?),
        lines: lines.into_iter().map(ScheduleLineView::from).collect(),
    }))
}

/// A stored loan that cannot be read.
fn store_error(err: CorruptRow) -> ApiError {
    ApiError::from(StoreError::from(err))
}
