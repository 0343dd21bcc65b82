//! A loan from submission to notification, through every path of the process.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::helpers::{approvable_application, event_types, spawn_app, spawn_app_with, Db};

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

both_backends!(transient_bureau_failures_are_retried, a_bureau_that_keeps_failing_fails_the_step_for_good);

async fn transient_bureau_failures_are_retried(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.bureaus.failure_rate = 0.5;
        s.bureaus.max_attempts = 40;
        s.bureaus.retry_base_ms = 1;
        s.bureaus.retry_max_ms = 4;
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(app.submit(&approvable_application()).await);
    }
    for id in &ids {
        let loan = app.wait_finished(id, Duration::from_secs(20)).await;
        assert_eq!(loan["status"], "approved", "retries hide transient failures: {loan}");
    }
}

async fn a_bureau_that_keeps_failing_fails_the_step_for_good(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.bureaus.failure_rate = 0.95;
        s.bureaus.max_attempts = 2;
        s.bureaus.retry_base_ms = 1;
        s.bureaus.retry_max_ms = 2;
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(app.submit(&approvable_application()).await);
    }
    let mut cancelled = 0;
    for id in &ids {
        let loan = app.wait_finished(id, Duration::from_secs(20)).await;
        let events = app.events(id).await;
        let failures: Vec<_> =
            events.iter().filter(|e| e["type"] == "CreditCheckFailed" || e["type"] == "AppraisalFailed").collect();
        if failures.is_empty() {
            assert_ne!(loan["status"], "cancelled");
            continue;
        }
        cancelled += 1;
        assert_eq!(loan["status"], "cancelled", "{loan}");
        for failure in failures {
            assert_eq!(failure["data"]["attempts"], 2, "{failure}");
            assert_eq!(failure["data"]["reason"], "bureau unavailable after 2 attempts");
        }
        // Exactly the completed steps were compensated.
        let types = event_types(&events);
        let has = |t: &str| types.iter().any(|x| x == t);
        assert_eq!(has("CreditChecked"), has("CreditCheckReleased"), "{types:?}");
        assert_eq!(has("PropertyAppraised"), has("AppraisalVoided"), "{types:?}");
    }
    assert!(cancelled > 0, "with 95% failures and 2 attempts some step fails for good");
}
