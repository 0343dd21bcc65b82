//! Where loans wait: `GET /api/v1/loans/steps`, the list's `?waiting_on=` filter, and the
//! pending durable timers (`GET /admin/timers`).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{approvable_application, spawn_app_with, Db, TestApp};

both_backends!(
    loans_waiting_on_a_slow_step_are_counted_and_listed_by_step,
    timers_are_listed_in_pages,
    a_request_s_timers_are_listed_and_its_loan_waits_on_the_applicant,
    a_loan_says_since_when_it_waits_on_its_step
);

fn step<'a>(steps: &'a Value, name: &str) -> &'a Value {
    steps["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("{steps}"))
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()).collect()
}

/// With a 3 s credit bureau, three loans wait on their credit check: the steps count them with
/// the age of the oldest, the list filtered by that step shows exactly them, and once they
/// finish no loan waits anywhere.
async fn loans_waiting_on_a_slow_step_are_counted_and_listed_by_step(db: Db) {
    let app = spawn_app_with(db, |s| s.bureaus.credit_latency_ms = 3_000).await;
    let (status, empty) = app.get_json("/api/v1/loans/steps").await;
    assert_eq!(status, 200, "{empty}");
    let names: Vec<&str> = empty["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert!(names.starts_with(&["start", "credit_check", "appraisal", "underwriter", "applicant"]), "{names:?}");
    assert!(empty["steps"].as_array().unwrap().iter().all(|s| s["loans"] == 0 && s["oldest_waiting_since"].is_null()));
    assert_eq!(step(&empty, "underwriter")["waits_on"], "person");
    assert_eq!(step(&empty, "credit_check")["waits_on"], "system");

    let mut submitted = Vec::new();
    for _ in 0..3 {
        submitted.push(app.submit(&approvable_application()).await);
    }
    let steps = wait_for(&app, |steps| step(steps, "credit_check")["loans"] == 3).await;
    let credit = step(&steps, "credit_check");
    assert!(credit["oldest_age_seconds"].as_f64().unwrap() >= 0.0, "{credit}");
    assert!(credit["oldest_waiting_since"].as_str().unwrap().ends_with('Z'), "{credit}");

    let (status, page) = app.get_json("/api/v1/loans?waiting_on=credit_check").await;
    assert_eq!(status, 200, "{page}");
    let mut listed = ids(&page);
    listed.sort();
    submitted.sort();
    assert_eq!(listed, submitted);
    assert!(page["items"].as_array().unwrap().iter().all(|l| l["waiting_on"] == "credit_check"));
    let (_, nobody) = app.get_json("/api/v1/loans?waiting_on=underwriter").await;
    assert_eq!(ids(&nobody), Vec::<String>::new());
    let (status, problem) = app.get_json("/api/v1/loans?waiting_on=lunch").await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap_or_default().contains("waiting_on"), "{problem}");

    for id in &submitted {
        app.wait_finished(id, Duration::from_secs(20)).await;
    }
    let done = wait_for(&app, |steps| steps["steps"].as_array().unwrap().iter().all(|s| s["loans"] == 0)).await;
    assert!(step(&done, "credit_check")["oldest_waiting_since"].is_null(), "{done}");
    let (_, finished) = app.get_json("/api/v1/loans?waiting_on=credit_check").await;
    assert_eq!(ids(&finished), Vec::<String>::new());
    let (status, scrape) = metrics(&app).await;
    assert_eq!(status, 200);
    assert!(scrape.contains("loanflow_loans_waiting{step=\"credit_check\"} 0"), "{scrape}");
}

async fn metrics(app: &TestApp) -> (u16, String) {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Poll the steps until `done` holds (what the test waits for, not a clock), at most 15 s.
async fn wait_for(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, steps) = app.get_json("/api/v1/loans/steps").await;
        assert_eq!(status, 200, "{steps}");
        if done(&steps) {
            return steps;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never reached: {steps}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No timer is pending on a fresh node; the listing refuses a bad page size or cursor.
async fn timers_are_listed_in_pages(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let (status, page) = app.get_json("/admin/timers").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"], serde_json::json!([]));
    assert!(page["next_cursor"].is_null());
    for bad in ["/admin/timers?limit=0", "/admin/timers?limit=1001", "/admin/timers?cursor=nonsense"] {
        let (status, problem) = app.get_json(bad).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    let response = app.anonymous.get(app.url("/admin/timers")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

/// Two referred loans, each asked for information: their deadlines and reminders are listed
/// soonest first, a page at a time; the loans wait on the applicant, which the steps count and
/// the stuck view leaves out.
async fn a_request_s_timers_are_listed_and_its_loan_waits_on_the_applicant(db: Db) {
    let app = spawn_app_with(db, |s| s.decision.review_below_score = loanflow::settings::ReviewBand::below(851)).await;
    let mut requests = Vec::new();
    for due_in_seconds in [3_600, 600] {
        let id = app.submit(&approvable_application()).await;
        let start = Instant::now();
        while app.loan(&id).await["status"] != "under_review" {
            assert!(start.elapsed() < Duration::from_secs(15), "never referred");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let body = serde_json::json!({"message": "A payslip", "fields": ["payslip"], "due_in_seconds": due_in_seconds});
        let url = app.url(&format!("/api/v1/loans/{id}/information-requests"));
        let response = app.client.post(url).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let created: Value = response.json().await.unwrap();
        requests.push((id, created["request_id"].as_str().unwrap().to_owned()));
    }
    let (_, first) = app.get_json("/admin/timers?limit=3").await;
    let items = first["items"].as_array().unwrap();
    let listed: Vec<(&str, &str)> =
        items.iter().map(|t| (t["kind"].as_str().unwrap(), t["request_id"].as_str().unwrap())).collect();
    let (second_request, first_request) = (requests[1].1.as_str(), requests[0].1.as_str());
    assert_eq!(
        listed,
        [
            ("information_reminder", second_request),
            ("information_deadline", second_request),
            ("information_reminder", first_request),
        ],
        "soonest first: {first}"
    );
    assert!(items.iter().all(|t| t["due_in_seconds"].as_f64().unwrap() > 0.0), "{first}");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, rest) = app.get_json(&format!("/admin/timers?limit=3&cursor={cursor}")).await;
    let rest: Vec<&str> = rest["items"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(rest, ["information_deadline"]);

    let (_, steps) = app.get_json("/api/v1/loans/steps").await;
    assert_eq!(step(&steps, "applicant")["loans"], 2, "{steps}");
    let (_, waiting) = app.get_json("/api/v1/loans?waiting_on=applicant").await;
    assert_eq!(ids(&waiting).len(), 2);
    let (_, stuck) = app.get_json("/admin/loans?stuck=true&older_than_seconds=0").await;
    assert_eq!(stuck["loans"], serde_json::json!([]), "waiting on a person is not stuck: {stuck}");
    let (_, unfinished) = app.get_json("/admin/loans?older_than_seconds=0").await;
    assert_eq!(unfinished["loans"].as_array().unwrap().len(), 2, "but unfinished: {unfinished}");
}

/// A loan shows since when it waits on its step (the work queue sorts by it): the same time the
/// steps report for the oldest loan there, moved on when the step changes, and null once the
/// loan waits on nothing.
async fn a_loan_says_since_when_it_waits_on_its_step(db: Db) {
    let app = spawn_app_with(db, |s| s.decision.review_below_score = loanflow::settings::ReviewBand::below(851)).await;
    let id = app.submit(&approvable_application()).await;
    let start = Instant::now();
    let referred = loop {
        let loan = app.loan(&id).await;
        if loan["status"] == "under_review" {
            break loan;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never referred: {loan}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, steps) = app.get_json("/api/v1/loans/steps").await;
    assert_eq!(referred["waiting_on"], "underwriter");
    assert_eq!(referred["waiting_since"], step(&steps, "underwriter")["oldest_waiting_since"], "{referred}");

    let body = serde_json::json!({"message": "A payslip", "fields": ["payslip"], "due_in_seconds": 600});
    let url = app.url(&format!("/api/v1/loans/{id}/information-requests"));
    assert_eq!(app.client.post(url).json(&body).send().await.unwrap().status().as_u16(), 201);
    let asked = app.loan(&id).await;
    let (_, steps) = app.get_json("/api/v1/loans/steps").await;
    assert_eq!(asked["waiting_on"], "applicant");
    assert_eq!(asked["waiting_since"], step(&steps, "applicant")["oldest_waiting_since"], "{asked}");
    let since = |loan: &Value| chrono::DateTime::parse_from_rfc3339(loan["waiting_since"].as_str().unwrap()).unwrap();
    assert!(since(&asked) > since(&referred), "a new step, a new time: {referred} then {asked}");

    let url = app.url(&format!("/admin/loans/{id}/cancel"));
    assert_eq!(app.client.post(url).send().await.unwrap().status().as_u16(), 202);
    let finished = app.wait_finished(&id, Duration::from_secs(15)).await;
    assert!(finished["waiting_on"].is_null() && finished["waiting_since"].is_null(), "{finished}");
}
