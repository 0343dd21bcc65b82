//! `GET /api/v1/me`: who the credential is, so a page shows its holder only what they may do.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::{Caller, Credential};
use super::errors::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/me", web::get().to(me));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    /// `applicant`, `viewer`, `underwriter` or `operator`.
    pub role: &'static str,
    /// The staff token's name or the JWT's subject; absent for an applicant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The applicant's loan; absent for staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loan_id: Option<String>,
}

/// The credential's role (and name, or loan).
#[utoipa::path(get, path = "/api/v1/me", tag = "loans", responses((status = 200, description = "Who is asking", body = MeView)))]
pub async fn me(caller: Caller) -> Result<HttpResponse, ApiError> {
    let view = match &caller.0 {
        Credential::Staff { role, name, .. } => MeView { role: role.as_str(), name: Some(name.clone()), loan_id: None },
        Credential::Applicant { loan_id } => {
            MeView { role: "applicant", name: None, loan_id: Some(loan_id.to_string()) }
        }
    };
    Ok(HttpResponse::Ok().json(view))
}
