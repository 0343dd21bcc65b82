//! `/admin/dead-letters`: messages given up on (a handler that kept failing, or a message the
//! broker dead-lettered after too many deliveries), and replaying one after the fix.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::audit;
use super::errors::{AdminActionErrors, ApiError, Problem};
use super::state::AppState;
use crate::domain::rfc3339;
use crate::domain::{FieldError, MessageId};
use crate::messages::Envelope;
use crate::persistence::{queries, CommitOutcome, DeadLetterRow, UnitOfWork};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1_000;

/// Registered inside the token-guarded `/admin` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/dead-letters", web::get().to(list)).route("/dead-letters/{id}/replay", web::post().to(replay));
}

/// A message given up on (also the OpenAPI schema `DeadLetter`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeadLetter)]
pub struct DeadLetterView {
    message_id: String,
    loan_id: String,
    /// The actor kind it was for.
    destination: String,
    kind: String,
    /// What the message asked for, with its personal data (an email, an address) redacted.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    attempt: u32,
    reason: String,
    failed_at: String,
}

impl DeadLetterView {
    fn from_row(row: DeadLetterRow) -> Self {
        let envelope = Envelope::from_json(&row.envelope).ok();
        Self {
            kind: envelope.as_ref().map(|e| e.body.label().to_owned()).unwrap_or_default(),
            attempt: envelope.as_ref().map(|e| e.attempt).unwrap_or_default(),
            payload: envelope.as_ref().map(redacted_payload).unwrap_or_default(),
            message_id: row.message_id,
            loan_id: row.loan_id,
            destination: row.destination,
            reason: row.reason,
            failed_at: rfc3339(row.failed_at),
        }
    }
}

/// The message's body as stored (its `kind` and `payload`), personal data redacted.
fn redacted_payload(envelope: &Envelope) -> serde_json::Value {
    let body = serde_json::to_value(envelope.body.redacted()).unwrap_or_default();
    body.get("payload").cloned().unwrap_or_default()
}

/// `GET /admin/dead-letters`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    items: Vec<DeadLetterView>,
}

/// `POST /admin/dead-letters/{id}/replay`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterReplay {
    message_id: String,
    loan_id: String,
    #[schema(example = "replayed")]
    status: &'static str,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

/// Messages given up on (a handler that kept failing, or dead-lettered by the broker).
#[utoipa::path(get, path = "/admin/dead-letters", tag = "admin", operation_id = "dead_letters",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)")),
    responses(
        (status = 200, description = "Dead letters, newest first", body = DeadLetterList),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list(query: web::Query<ListQuery>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadParameter(FieldError::new("limit", format!("must be from 1 to {MAX_LIMIT}"))));
    }
    let rows = state.db.read(move |c| queries::dead_letters(c, limit)).await?;
    let items = rows.into_iter().map(DeadLetterView::from_row).collect();
    Ok(HttpResponse::Ok().json(DeadLetterList { items }))
}

/// Put a dead letter back in the outbox (attempts reset) and deliver it.
#[utoipa::path(post, path = "/admin/dead-letters/{id}/replay", tag = "admin", operation_id = "replay_dead_letter",
    params(("id" = String, Path, description = "The dead letter's message id")),
    responses((status = 202, description = "Replayed", body = DeadLetterReplay), AdminActionErrors))]
async fn replay(path: web::Path<String>, state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound(format!("dead letter {path}"));
    let id = MessageId::parse(&path).map_err(|_| not_found())?;
    let raw = id.to_string();
    let row = state.db.read(move |c| queries::dead_letter(c, &raw)).await?.ok_or_else(not_found)?;
    let stored = Envelope::from_json(&row.envelope).map_err(|e| ApiError::internal("stored dead letter", e))?;
    // Its own row in the outbox now, even if it was an uncommitted reply before.
    let envelope = Envelope { attempt: 1, ..stored.committed() };
    let loan_id = envelope.loan_id;
    let status = match state.db.read(move |c| queries::loan(c, loan_id)).await? {
        Some(loan) => loan.status,
        None => "missing".to_owned(),
    };
    let details = serde_json::json!({ "message_id": id.to_string(), "kind": envelope.body.label() });
    let record = audit::record(&caller.0, loan_id, &status, audit::DEAD_LETTER_REPLAYED, details);
    let unit = UnitOfWork::replay(id, &envelope, chrono::Utc::now().naive_utc(), record);
    match state.db.writer().commit(unit).await? {
        CommitOutcome::Committed { .. } => {
            state.postman.deliver([envelope.clone()]);
            Ok(HttpResponse::Accepted().json(DeadLetterReplay {
                message_id: id.to_string(),
                loan_id: envelope.loan_id.to_string(),
                status: "replayed",
            }))
        }
        // Replayed by a concurrent request.
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LoanId, Money};
    use crate::messages::MessageBody;

    #[test]
    fn a_dead_letter_shows_what_it_asked_for_without_the_personal_data() {
        let loan = LoanId::generate();
        let check = Envelope::new(loan, None, MessageBody::CheckCredit { email: "jane.doe@example.com".into() });
        let appraise = Envelope::new(
            loan,
            None,
            MessageBody::AppraiseProperty { address: "1 Canal St".into(), declared_value: Money::from_cents(100) },
        );
        for envelope in [check, appraise] {
            let UnitOfWork::DeadLetter { row, .. } = UnitOfWork::dead_letter(&envelope, "kept failing") else {
                panic!("a dead letter")
            };
            let view = serde_json::to_string(&DeadLetterView::from_row(row)).unwrap();
            assert!(!view.contains("jane") && !view.contains("Canal"), "{view}");
            assert!(view.contains("[redacted]"), "{view}");
        }
    }
}
