//! `POST /admin/loans/{id}/erase`: an operator erases a finished loan's personal data (the
//! applicant's right to erasure). The figures, the decision and the history stay; the history
//! gains a `PersonalDataErased` event naming who erased it.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::access::Caller;
use super::audit;
use super::errors::{loan_in_path, AdminActionErrors, ApiError, Problem};
use super::state::AppState;
use crate::persistence::{erasure, queries, CommitOutcome, StaffChange, UnitOfWork};

/// Registered inside the operator-only `/admin` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/loans/{id}/erase", web::post().to(erase));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasedView {
    pub loan_id: String,
    #[schema(example = "erased")]
    pub personal_data: &'static str,
}

/// Erase a finished loan's personal data (name, email, address); its figures, decision and
/// history stay, with a `PersonalDataErased` event.
#[utoipa::path(
    post, path = "/admin/loans/{id}/erase", tag = "admin",
    params(("id" = String, Path, description = "The loan's id")),
    responses(
        (status = 200, description = "Erased", body = ErasedView),
        (status = 409, description = "The loan is not finished yet, or was erased before", body = Problem,
            content_type = "application/problem+json"),
        AdminActionErrors,
    )
)]
pub async fn erase(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = loan_in_path(&path)?;
    let loan = state.db.read(move |c| queries::loan(c, id)).await?.ok_or_else(|| ApiError::missing_loan(id))?;
    if loan.notified_at.is_none() {
        return Err(ApiError::Conflict(format!(
            "loan {id} is not finished ({}); its personal data is erased only once it is",
            loan.status
        )));
    }
    if erasure::is_erased(&loan.applicant_email) {
        return Err(ApiError::Conflict(format!("the personal data of loan {id} was erased before")));
    }
    let record = audit::record(&caller.0, id, &loan.status, audit::PERSONAL_DATA_ERASED, json!({}));
    let unit = UnitOfWork::StaffAction { loan_id: id, record, change: StaffChange::ErasePersonalData };
    match state.db.writer().commit(unit).await? {
        CommitOutcome::Committed { .. } => {
            // No copy of the address stays in this process's memory either.
            state.addresses.forget(id);
            Ok(HttpResponse::Ok().json(ErasedView { loan_id: id.to_string(), personal_data: "erased" }))
        }
        _ => Err(ApiError::Conflict(format!("the personal data of loan {id} was erased at the same moment"))),
    }
}
