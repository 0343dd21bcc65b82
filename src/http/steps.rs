//! `GET /api/v1/loans/steps`: where the loans wait, per step: how many, and the oldest.

use actix_web::{web, HttpResponse};
use chrono::{NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::errors::{ApiError, Unavailable};
use super::state::AppState;
use crate::domain::rfc3339;
use crate::persistence::queries;
use crate::saga::{PEOPLE_STEPS, WAITING_STEPS};

/// Every step a loan can wait on, in the order of the process.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepsView {
    /// When the counts were read.
    pub at: String,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// The step, as a loan's `waiting_on` names it (and `?waiting_on=` filters the list by).
    #[schema(example = "underwriter")]
    pub step: &'static str,
    /// `person` (an underwriter or the applicant must act: waiting, not stuck) or `system`.
    #[schema(example = "person")]
    pub waits_on: &'static str,
    /// Loans waiting on it now.
    pub loans: i64,
    /// Since when the loan that has waited longest waits on it (none: no loan waits there).
    pub oldest_waiting_since: Option<String>,
    /// How long that is, in seconds.
    pub oldest_age_seconds: Option<f64>,
}

/// How many loans wait on each step, and since when the oldest does.
#[utoipa::path(get, path = "/api/v1/loans/steps", tag = "loans",
    responses((status = 200, description = "Every step, in process order", body = StepsView), Unavailable))]
pub async fn steps(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = state.db.read(queries::waiting_by_step).await?;
    let now = Utc::now().naive_utc();
    Ok(HttpResponse::Ok().json(steps_view(rows, now)))
}

fn steps_view(rows: Vec<(String, i64, Option<NaiveDateTime>)>, now: NaiveDateTime) -> StepsView {
    let steps = WAITING_STEPS
        .iter()
        .map(|&step| {
            let (loans, oldest) =
                rows.iter().find(|(name, ..)| name == step).map_or((0, None), |(_, n, oldest)| (*n, *oldest));
            StepView {
                step,
                waits_on: if PEOPLE_STEPS.contains(&step) { "person" } else { "system" },
                loans,
                oldest_waiting_since: oldest.map(rfc3339),
                oldest_age_seconds: oldest.map(|at| ((now - at).num_milliseconds() as f64 / 1000.0).max(0.0)),
            }
        })
        .collect();
    StepsView { at: rfc3339(now), steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_is_listed_in_order_with_its_count_and_oldest() {
        let now = Utc::now().naive_utc();
        let since = now - chrono::Duration::seconds(90);
        let view = steps_view(vec![("underwriter".into(), 3, Some(since)), ("bogus".into(), 7, None)], now);
        let names: Vec<&str> = view.steps.iter().map(|s| s.step).collect();
        assert_eq!(names, WAITING_STEPS);
        let underwriter = view.steps.iter().find(|s| s.step == "underwriter").unwrap();
        assert_eq!((underwriter.loans, underwriter.waits_on), (3, "person"));
        assert_eq!(underwriter.oldest_age_seconds, Some(90.0));
        let credit = view.steps.iter().find(|s| s.step == "credit_check").unwrap();
        assert_eq!((credit.loans, credit.waits_on, credit.oldest_age_seconds), (0, "system", None));
    }
}
