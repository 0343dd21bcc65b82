//! A loan from submission to notification, through every path of the process.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::helpers::{approvable_application, event_types, spawn_app, Db};

both_backends!(an_approved_loan_is_decided_scheduled_and_notified, a_failed_appraisal_releases_the_credit_check);

async fn an_approved_loan_is_decided_scheduled_and_notified(db: Db) {
    let app = spawn_app(db).await;
    let id = app.submit(&approvable_application()).await;
    let loan = app.wait_finished(&id, Duration::from_secs(10)).await;
    assert_eq!(loan["status"], "approved", "{loan}");
    assert!(loan["credit_score"].as_i64().unwrap() >= 620);
    assert!(!loan["decided_at"].is_null());
    let types = event_types(&app.events(&id).await);
    assert_eq!(types.first().map(String::as_str), Some("LoanSubmitted"));
    assert_eq!(types.last().map(String::as_str), Some("ApplicantNotified"));
    let schedule_at = types.iter().position(|t| t == "ScheduleGenerated").expect("a schedule event");
    assert!(schedule_at > types.iter().position(|t| t == "LoanApproved").unwrap());
    let (status, schedule) = app.get_json(&format!("/api/v1/loans/{id}/schedule")).await;
    assert_eq!(status, 200);
    assert_eq!(schedule["lines"].as_array().unwrap().len(), 300);
}

async fn a_failed_appraisal_releases_the_credit_check(db: Db) {
    let app = spawn_app(db).await;
    let mut body = approvable_application();
    body["property"]["address"] = json!("7 Nowhere Lane #fail-appraisal");
    let id = app.submit(&body).await;
    let loan = app.wait_finished(&id, Duration::from_secs(10)).await;
    assert_eq!(loan["status"], "cancelled", "{loan}");
    assert!(loan["appraised_value"].is_null() && loan["rate_bps"].is_null() && loan["monthly_payment"].is_null());
    let types = event_types(&app.events(&id).await);
    let pos = |t: &str| types.iter().position(|x| x == t).unwrap_or_else(|| panic!("{t} missing in {types:?}"));
    assert!(pos("AppraisalFailed") < pos("CreditCheckReleased"));
    assert!(pos("CreditChecked") < pos("CreditCheckReleased"));
    assert!(pos("CreditCheckReleased") < pos("LoanCancelled"));
    assert!(pos("LoanCancelled") < pos("ApplicantNotified"));
}
