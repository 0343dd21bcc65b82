//! A person's input, judged against the loan as it is and committed as one version-guarded unit
//! while the caller waits. The loan actor may commit a bureau's answer at the same moment: the
//! unit then conflicts on the version and the input is judged again against the loan as it has
//! become, so neither change is lost (the actor, conflicting in turn, reloads the same way).

use actix_web::http::header;
use actix_web::HttpRequest;
use sha2::{Digest, Sha256};

use super::super::errors::ApiError;
use super::super::loans::idempotency_key;
use super::super::state::AppState;
use crate::actors::plan_input;
use crate::domain::{hex, LoanId, RequestId, Timestamp};
use crate::persistence::{queries, CommitOutcome, IdempotencyRecord, LoanRecord};
use crate::saga::{LoanSaga, LoanStatus, SagaInput};

/// Judgements in a row that lose the race before the caller is told to retry (each loss means
/// another change committed in between, so this is never reached in practice).
const MAX_ROUNDS: usize = 16;

/// What a route asks of the loan besides its body: a name (for keys), `If-Match`,
/// `Idempotency-Key`.
pub struct Preconditions {
    pub loan_id: LoanId,
    pub if_match: Option<i64>,
    /// The key as the loan's and route's own (a key is global), with the request's hash.
    idempotency: Option<(String, String)>,
}

impl Preconditions {
    /// `body` is what identifies the request under its key (its JSON, or empty).
    pub fn of(req: &HttpRequest, loan_id: LoanId, route: &'static str, body: &str) -> Result<Self, ApiError> {
        let idempotency = idempotency_key(req)?.map(|key| {
            let hash = hex::encode(&Sha256::digest(format!("{route}\n{body}").as_bytes()));
            (format!("{loan_id}/{route}/{key}"), hash)
        });
        Ok(Self { loan_id, if_match: if_match(req)?, idempotency })
    }

    /// The id of a request for information made under this key: the same for a retry, so a
    /// replay can answer with the request the first one made.
    pub fn request_id(&self) -> RequestId {
        match &self.idempotency {
            Some((key, _)) => {
                let digest = Sha256::digest(key.as_bytes());
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&digest[..16]);
                RequestId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
            }
            None => RequestId::generate(),
        }
    }
}

/// `If-Match: "7"` (or `7`): the version the caller saw. `*` asks nothing.
fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let unquoted = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    unquoted
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::bad_parameter("If-Match", "must be the loan's version, e.g. \"3\" (its ETag)"))
}

/// What became of an input.
pub enum Outcome {
    /// Committed now: the loan as it left it.
    Committed(LoanRecord),
    /// A retry of an input committed before under the same key: the loan as it is now.
    Replayed(LoanRecord),
}

impl Outcome {
    pub fn record(&self) -> &LoanRecord {
        match self {
            Outcome::Committed(record) | Outcome::Replayed(record) => record,
        }
    }

    pub fn replayed(&self) -> bool {
        matches!(self, Outcome::Replayed(_))
    }
}

/// Judge the input `judge` makes of the loan (at `now`) and commit it; 409 when the saga does not
/// take it (`needs` says what it needs), 412 when `If-Match` names another version.
pub async fn judge_and_commit(
    state: &AppState,
    pre: &Preconditions,
    needs: &str,
    judge: impl Fn(&LoanRecord, Timestamp) -> Result<SagaInput, ApiError>,
) -> Result<Outcome, ApiError> {
    for _ in 0..MAX_ROUNDS {
        let now = chrono::Utc::now().naive_utc();
        if let Some(record) = earlier_answer(state, pre, now).await? {
            return Ok(Outcome::Replayed(record));
        }
        let record = read(state, pre.loan_id).await?;
        if let Some(expected) = pre.if_match.filter(|v| *v != record.version) {
            return Err(moved_on(expected, &record));
        }
        let input = judge(&record, now)?;
        let transition = record.saga.handle(&record.application, &input);
        if !transition.applied {
            return Err(refusal(&record.saga, &input, needs));
        }
        let idempotency = pre.idempotency.clone().map(|(key, request_hash)| IdempotencyRecord {
            key,
            request_hash,
            expired_before: now - state.settings.http.idempotency_ttl(),
        });
        let (unit, after) = plan_input(&record, transition, idempotency, now);
        match state.db.writer().commit(unit).await? {
            CommitOutcome::Committed { .. } => {
                // Durable in the outbox already; this only hands them on without waiting for
                // the sweep.
                state.postman.deliver(after.emits);
                state.metrics.observe_input_commit(&after.events, after.record.submitted_at);
                if let Some((step, since)) = record.left_step(&after.record) {
                    state.metrics.left_step(step, since);
                }
                return Ok(Outcome::Committed(after.record));
            }
            CommitOutcome::Conflict if pre.if_match.is_some() => {
                let current = read(state, pre.loan_id).await?;
                return Err(moved_on(record.version, &current));
            }
            // Changed meanwhile (a bureau's answer, another person): judge again.
            CommitOutcome::Conflict => continue,
            CommitOutcome::IdempotentReplay { request_hash, .. } => {
                return replay_of(state, pre, &request_hash).await;
            }
            CommitOutcome::Duplicate => {
                return Err(ApiError::internal("a person's input", "committed as a duplicate message"));
            }
        }
    }
    Err(ApiError::Unavailable(format!("loan {} kept changing while this was judged", pre.loan_id).into()))
}

/// The loan as it is now, if this key was used for this route before (with the same request).
async fn earlier_answer(state: &AppState, pre: &Preconditions, now: Timestamp) -> Result<Option<LoanRecord>, ApiError> {
    let Some((key, _)) = &pre.idempotency else { return Ok(None) };
    let key = key.clone();
    let not_before = now - state.settings.http.idempotency_ttl();
    let Some((_, request_hash)) = state.db.read(move |c| queries::idempotency_key(c, &key, not_before)).await? else {
        return Ok(None);
    };
    replay_of(state, pre, &request_hash).await.map(|outcome| Some(outcome.record().clone()))
}

async fn replay_of(state: &AppState, pre: &Preconditions, first_hash: &str) -> Result<Outcome, ApiError> {
    if pre.idempotency.as_ref().map(|(_, hash)| hash.as_str()) != Some(first_hash) {
        return Err(ApiError::IdempotencyKeyReused);
    }
    Ok(Outcome::Replayed(read(state, pre.loan_id).await?))
}

async fn read(state: &AppState, id: LoanId) -> Result<LoanRecord, ApiError> {
    let row = state.db.read(move |c| queries::loan(c, id)).await?.ok_or_else(|| ApiError::missing_loan(id))?;
    LoanRecord::from_row(row).map_err(|e| ApiError::from(crate::persistence::StoreError::from(e)))
}

fn moved_on(expected: i64, current: &LoanRecord) -> ApiError {
    ApiError::VersionMismatch { expected, current: current.version, loan_status: current.saga.status }
}

/// Why the saga did not take `input`, in words for the 409.
fn refusal(saga: &LoanSaga, input: &SagaInput, needs: &str) -> ApiError {
    let status = saga.status;
    let holder = saga.review.as_ref().and_then(|r| r.claimed_by.as_deref());
    let claim = match (input, holder) {
        (SagaInput::Claim { by }, Some(holder)) if holder == by.name => {
            Some(format!("the loan is claimed by {holder} already"))
        }
        (
            SagaInput::Claim { by }
            | SagaInput::Decide { by, .. }
            | SagaInput::RequestInformation { by, .. }
            | SagaInput::ExtendDeadline { by, .. },
            Some(holder),
        ) if saga.review.as_ref().is_some_and(|r| !r.allows(by)) => Some(format!("the loan is claimed by {holder}")),
        _ => None,
    };
    let in_review = matches!(status, LoanStatus::UnderReview | LoanStatus::AwaitingInformation);
    let detail = if saga.cancellation.is_some() {
        format!("the loan is being cancelled ({status}); its requests are closed")
    } else if status.is_terminal() {
        format!("the loan is {status}; its requests are closed")
    } else if let Some(claim) = claim.filter(|_| in_review) {
        claim
    } else {
        format!("the loan is {status}; this needs {needs}")
    };
    ApiError::LoanConflict { detail, loan_status: status }
}
