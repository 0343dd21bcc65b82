//! `/admin/*`, behind the operator's bearer token `admin.token` (made at start when unset):
//! the live actors of this node, unfinished (stuck) loans with the step they wait on, and
//! re-delivering a loan's pending messages.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use chrono::{NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::access::Caller;
use super::audit;
use super::errors::{loan_in_path, AdminActionErrors, ApiError, Problem};
use super::state::AppState;
use crate::cluster::{self, NodeActorsView};
use crate::domain::rfc3339;
use crate::messages::{ActorKind, Envelope};
use crate::persistence::queries::Unfinished;
use crate::persistence::{queries, tokens, CommitOutcome, LoanRow, OutboxRow, StaffChange, UnitOfWork};
use crate::saga::LoanSaga;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;
const DEFAULT_STUCK_SECONDS: u32 = 60;
const MAX_AGE_SECONDS: u32 = 315_360_000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("/actors", web::get().to(actors))
            .route("/loans", web::get().to(loans))
            .route("/loans/{id}/retry", web::post().to(retry))
            .route("/loans/{id}/access-token/revoke", web::post().to(revoke_access_token))
            .route("/timers", web::get().to(super::timers::list))
            .configure(super::dead_letters::routes)
            .configure(super::erasure::routes)
            .configure(super::human::admin_routes)
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::NotFound("admin resource".into())) })),
    );
}

/// The live actors, per node (this node; cluster mode adds the others).
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorsView {
    pub nodes: Vec<NodeActorsView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActorsQuery {
    /// Only actors of this kind.
    kind: Option<KindParam>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ActorKind)]
pub enum KindParam {
    Loan,
    Credit,
    Appraisal,
    Notifier,
}

impl KindParam {
    fn kind(self) -> ActorKind {
        match self {
            KindParam::Loan => ActorKind::Loan,
            KindParam::Credit => ActorKind::Credit,
            KindParam::Appraisal => ActorKind::Appraisal,
            KindParam::Notifier => ActorKind::Notifier,
        }
    }
}

/// This node's live actors: kind, id, state, mailbox depth, messages handled, restarts, age.
#[utoipa::path(
    get, path = "/admin/actors", tag = "admin", params(ActorsQuery),
    responses(
        (status = 200, description = "This node's live actors", body = ActorsView),
        (status = 400, description = "Unknown kind", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    )
)]
pub async fn actors(query: web::Query<ActorsQuery>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let kind = query.kind.map(KindParam::kind);
    let mut nodes =
        vec![cluster::node_view(&state.registry, &state.node_id, &state.settings.node.roles, kind, usize::MAX)];
    nodes.extend(cluster::other_nodes(&state.db, &state.node_id, kind).await?);
    Ok(HttpResponse::Ok().json(ActorsView { nodes }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoansQuery {
    /// Only loans unfinished for longer than `older_than_seconds` (default 60 when `stuck=true`)
    /// and not waiting on a person (`underwriter`, `applicant`: waiting, not stuck).
    stuck: Option<bool>,
    /// Age threshold, from submission, in seconds (at most ten years).
    #[param(maximum = 315_360_000)]
    older_than_seconds: Option<u32>,
    /// At most this many loans (default 100), oldest first.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnfinishedLoansView {
    pub older_than_seconds: u32,
    pub loans: Vec<UnfinishedLoanView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnfinishedLoanView {
    pub id: String,
    pub status: String,
    /// The step the loan waits on: `start`, `credit_check`, `appraisal`, `underwriter`,
    /// `applicant`, `credit_release`, `appraisal_void`, `schedule` or `notification`.
    pub waiting_on: Option<String>,
    pub submitted_at: String,
    pub updated_at: String,
    pub unfinished_for_seconds: f64,
    /// Messages emitted for the loan and not consumed yet (the work it waits for).
    pub pending_messages: Vec<PendingMessageView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PendingMessageView {
    pub message_id: String,
    /// The actor kind it is for.
    pub destination: String,
    pub kind: String,
    /// Delivery attempt recorded with the message (1 until a handler failed on it).
    pub attempt: u32,
    pub queued_at: String,
    pub queued_for_seconds: f64,
}

/// Unfinished loans (stuck ones with `stuck=true`), the step each waits on, its pending messages.
#[utoipa::path(
    get, path = "/admin/loans", tag = "admin", params(LoansQuery),
    responses(
        (status = 200, description = "Unfinished loans, oldest first", body = UnfinishedLoansView),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn loans(query: web::Query<LoansQuery>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let default_age = if query.stuck == Some(true) { DEFAULT_STUCK_SECONDS } else { 0 };
    let older_than_seconds = query.older_than_seconds.unwrap_or(default_age);
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_parameter("limit", format!("must be an integer from 1 to {MAX_LIMIT}")));
    }
    if older_than_seconds > MAX_AGE_SECONDS {
        return Err(ApiError::bad_parameter(
            "older_than_seconds",
            format!("must be an integer from 0 to {MAX_AGE_SECONDS}"),
        ));
    }
    let which = if query.stuck == Some(true) { Unfinished::Stuck } else { Unfinished::All };
    let now = Utc::now().naive_utc();
    let cutoff = now - chrono::Duration::seconds(i64::from(older_than_seconds));
    let (rows, pending) = state
        .db
        .read(move |c| {
            let rows = queries::unfinished_loans(c, which, cutoff, i64::from(limit))?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            Ok((rows, queries::outbox_of_loans(c, &ids)?))
        })
        .await?;
    let mut by_loan: HashMap<String, Vec<PendingMessageView>> = HashMap::new();
    for (loan_id, destination, kind, row) in pending {
        by_loan.entry(loan_id).or_default().push(pending_view(destination, kind, row, now));
    }
    let loans = rows
        .into_iter()
        .map(|row| {
            let pending = by_loan.remove(&row.id).unwrap_or_default();
            unfinished_view(row, pending, now)
        })
        .collect();
    Ok(HttpResponse::Ok().json(UnfinishedLoansView { older_than_seconds, loans }))
}

fn seconds_between(earlier: NaiveDateTime, later: NaiveDateTime) -> f64 {
    ((later - earlier).num_milliseconds() as f64 / 1000.0).max(0.0)
}

fn pending_view(destination: String, kind: String, row: OutboxRow, now: NaiveDateTime) -> PendingMessageView {
    PendingMessageView {
        attempt: Envelope::from_json(&row.envelope).map(|e| e.attempt).unwrap_or(1),
        message_id: row.message_id,
        destination,
        kind,
        queued_at: rfc3339(row.created_at),
        queued_for_seconds: seconds_between(row.created_at, now),
    }
}

fn unfinished_view(row: LoanRow, pending_messages: Vec<PendingMessageView>, now: NaiveDateTime) -> UnfinishedLoanView {
    let saga: Option<LoanSaga> = serde_json::from_str(&row.saga).ok();
    UnfinishedLoanView {
        waiting_on: saga.as_ref().and_then(LoanSaga::waiting_on).map(str::to_owned),
        unfinished_for_seconds: seconds_between(row.submitted_at, now),
        submitted_at: rfc3339(row.submitted_at),
        updated_at: rfc3339(row.updated_at),
        status: row.status,
        id: row.id,
        pending_messages,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetryView {
    pub loan_id: String,
    /// How many pending messages were handed to the actors again.
    pub redelivered: usize,
    pub message_ids: Vec<String>,
}

/// Deliver a loan's pending messages again, now.
#[utoipa::path(
    post, path = "/admin/loans/{id}/retry", tag = "admin",
    params(("id" = String, Path, description = "The loan's id")),
    responses(
        (status = 202, description = "The loan's pending messages were delivered again", body = RetryView),
        (status = 409, description = "The loan is finished", body = Problem, content_type = "application/problem+json"),
        AdminActionErrors,
    )
)]
pub async fn retry(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let (loan, pending) = state
        .db
        .read(move |c| {
            let loan = queries::loan(c, id)?;
            Ok((loan, queries::outbox_of_loans(c, &[id.to_string()])?))
        })
        .await?;
    let loan = loan.ok_or_else(|| ApiError::missing_loan(id))?;
    if loan.notified_at.is_some() {
        return Err(ApiError::Conflict(format!("loan {id} is finished ({}); there is nothing to retry", loan.status)));
    }
    let envelopes: Vec<Envelope> =
        pending.into_iter().filter_map(|(_, _, _, row)| Envelope::from_json(&row.envelope).ok()).collect();
    let message_ids = envelopes.iter().map(|e| e.message_id.to_string()).collect::<Vec<_>>();
    let record =
        audit::record(&caller.0, id, &loan.status, audit::MESSAGES_REDELIVERED, json!({ "message_ids": message_ids }));
    state.db.writer().commit(UnitOfWork::StaffAction { loan_id: id, record, change: StaffChange::Nothing }).await?;
    state.postman.deliver(envelopes);
    Ok(HttpResponse::Accepted().json(RetryView {
        loan_id: id.to_string(),
        redelivered: message_ids.len(),
        message_ids,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedTokenView {
    pub loan_id: String,
    /// The applicant's new token; every earlier one is refused from now on.
    pub access_token: String,
    pub generation: u32,
}

/// Revoke a loan's applicant token: every token given out for it so far is refused, and a new
/// one is returned (to hand to the applicant).
#[utoipa::path(
    post, path = "/admin/loans/{id}/access-token/revoke", tag = "admin",
    params(("id" = String, Path, description = "The loan's id")),
    responses(
        (status = 200, description = "Revoked; the applicant's new token", body = RevokedTokenView),
        (status = 409, description = "Revoked at the same moment by another request", body = Problem,
            content_type = "application/problem+json"),
        AdminActionErrors,
    )
)]
pub async fn revoke_access_token(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let key = id.to_string();
    let (loan, from) = state.db.read(move |c| Ok((queries::loan(c, id)?, tokens::generation(c, &key)?))).await?;
    let loan = loan.ok_or_else(|| ApiError::missing_loan(id))?;
    let to = u32::try_from(from + 1).map_err(|e| ApiError::internal("the token generation", e))?;
    let record = audit::record(&caller.0, id, &loan.status, audit::ACCESS_TOKEN_REVOKED, json!({ "generation": to }));
    let unit =
        UnitOfWork::StaffAction { loan_id: id, record, change: StaffChange::RevokeToken { from, to: i64::from(to) } };
    match state.db.writer().commit(unit).await? {
        CommitOutcome::Committed { .. } => Ok(HttpResponse::Ok().json(RevokedTokenView {
            loan_id: id.to_string(),
            access_token: state.token_key.applicant_token(id, to),
            generation: to,
        })),
        _ => Err(ApiError::Conflict(format!("the token of loan {id} was revoked at the same moment; try again"))),
    }
}
