//! The human steps over HTTP (CONTRACT.md, "The human steps"): referral, claim, decision,
//! request for information, answer, extension, withdrawal and cancellation, each with its 409,
//! 412 and 422, and replays under one Idempotency-Key.

use std::time::{Duration, Instant};

use loanflow::settings::{Role, StaffToken};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{approvable_application, client_with_token, event_types, spawn_app_with, Db, TestApp};

const ANN: &str = "underwriter-ann-token";
const BOB: &str = "underwriter-bob-token";
const VIEWER: &str = "viewer-token";
const DEADLINE: Duration = Duration::from_secs(30);

struct Desk {
    app: TestApp,
    ann: reqwest::Client,
    bob: reqwest::Client,
    viewer: reqwest::Client,
}

/// A node that refers loans below 660, with two underwriters and a viewer.
async fn desk(db: Db, credit_latency_ms: u64) -> Desk {
    let app = spawn_app_with(db, |s| {
        s.decision.review_below_score = loanflow::settings::ReviewBand::DEFAULT;
        s.bureaus.credit_latency_ms = credit_latency_ms;
        s.admin.staff = vec![
            StaffToken::new("ann", Role::Underwriter, ANN),
            StaffToken::new("bob", Role::Underwriter, BOB),
            StaffToken::new("vic", Role::Viewer, VIEWER),
        ];
    })
    .await;
    Desk { app, ann: client_with_token(ANN), bob: client_with_token(BOB), viewer: client_with_token(VIEWER) }
}

/// Score 645: passes every rule, below the band.
fn borderline() -> Value {
    let mut body = approvable_application();
    body["applicant"]["email"] = json!("ref0@example.com");
    body
}

/// Submit; the loan's id and its applicant's client.
async fn submit(app: &TestApp, body: &Value) -> (String, reqwest::Client) {
    let response = app.post_loan(body).await;
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    (created["id"].as_str().unwrap().to_owned(), client_with_token(created["access_token"].as_str().unwrap()))
}

async fn wait_status(app: &TestApp, id: &str, status: &str) -> Value {
    let start = Instant::now();
    loop {
        let loan = app.loan(id).await;
        if loan["status"] == status {
            return loan;
        }
        assert!(start.elapsed() < DEADLINE, "loan {id} never reached {status}: {loan}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_event(app: &TestApp, id: &str, event: &str) -> Vec<String> {
    let start = Instant::now();
    loop {
        let types = event_types(&app.events(id).await);
        if types.iter().any(|t| t == event) {
            return types;
        }
        assert!(start.elapsed() < DEADLINE, "loan {id} never recorded {event}: {types:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// POST `body` (None: no body) with optional headers; the status, the JSON answer and whether it
/// was a replay.
async fn post(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value, bool) {
    let mut request = client.post(app.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotency-replayed").is_some();
    (status, response.json().await.unwrap_or(Value::Null), replayed)
}

/// The pending timers (`GET /admin/timers`) of one request: kind and due time.
async fn timers_of(app: &TestApp, request_id: &str) -> Vec<(String, String)> {
    let (status, page) = app.get_json("/admin/timers?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    let of_request = items.iter().filter(|t| t["request_id"] == request_id);
    of_request.map(|t| (t["kind"].as_str().unwrap().to_owned(), t["due_at"].as_str().unwrap().to_owned())).collect()
}

fn count(types: &[String], name: &str) -> usize {
    types.iter().filter(|t| *t == name).count()
}

async fn referral_claim_and_decision(db: Db) {
    let desk = desk(db, 0).await;
    let app = &desk.app;
    let (id, applicant) = submit(app, &borderline()).await;
    let loan = wait_status(app, &id, "under_review").await;
    assert_eq!(loan["waiting_on"], "underwriter");
    assert_eq!(loan["review"]["reason"], "score_below_review_band");
    assert_eq!(loan["review"]["credit_score"], 645);
    assert!(loan["rate_bps"].is_null(), "undecided: {loan}");
    let path = format!("/api/v1/loans/{id}/decision");
    let approve = json!({"decision": "approve", "note": "stable income"});

    // Who may decide: not the applicant, not a viewer.
    assert_eq!(post(&applicant, app, &path, Some(&approve), &[]).await.0, 403);
    assert_eq!(post(&desk.viewer, app, &path, Some(&approve), &[]).await.0, 403);
    // 422 names the field.
    let (status, problem, _) = post(&desk.ann, app, &path, Some(&json!({"decision": "maybe", "note": ""})), &[]).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("decision")), "{problem}");

    // Ann claims it: Bob may not decide, the 409 says why and where the loan is.
    let (status, claimed, _) = post(&desk.ann, app, &format!("/api/v1/loans/{id}/claim"), None, &[]).await;
    assert_eq!((status, &claimed["review"]["claimed_by"]), (200, &json!("ann")), "{claimed}");
    let (status, problem, _) = post(&desk.bob, app, &path, Some(&approve), &[]).await;
    assert_eq!((status, &problem["loan_status"]), (409, &json!("under_review")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("claimed by ann"), "{problem}");

    // If-Match with a version the loan has left: 412.
    let stale = (claimed["version"].as_i64().unwrap() - 1).to_string();
    let (status, problem, _) = post(&desk.ann, app, &path, Some(&approve), &[("If-Match", &stale)]).await;
    assert_eq!((status, &problem["loan_status"]), (412, &json!("under_review")), "{problem}");

    // Decided once; the same key replays the answer, another body under it is refused.
    let version = claimed["version"].to_string();
    let headers = [("Idempotency-Key", "decide-1"), ("If-Match", version.as_str())];
    let (status, decided, replayed) = post(&desk.ann, app, &path, Some(&approve), &headers).await;
    assert_eq!((status, &decided["status"], replayed), (200, &json!("approved"), false), "{decided}");
    let (status, again, replayed) = post(&desk.ann, app, &path, Some(&approve), &headers).await;
    assert_eq!((status, &again["id"], replayed), (200, &json!(id), true), "{again}");
    let reject = json!({"decision": "reject", "note": "changed my mind"});
    assert_eq!(post(&desk.ann, app, &path, Some(&reject), &[("Idempotency-Key", "decide-1")]).await.0, 422);
    let (status, problem, _) = post(&desk.ann, app, &path, Some(&reject), &[]).await;
    assert_eq!((status, &problem["loan_status"]), (409, &json!("approved")), "{problem}");

    let loan = app.wait_finished(&id, DEADLINE).await;
    assert_eq!((loan["status"].as_str(), loan["rate_bps"].as_i64()), (Some("approved"), Some(505)));
    let types = event_types(&app.events(&id).await);
    for (event, n) in [("LoanReferred", 1), ("ReviewClaimed", 1), ("LoanApproved", 1), ("ScheduleGenerated", 1)] {
        assert_eq!(count(&types, event), n, "{event} in {types:?}");
    }
    assert_eq!(count(&types, "ApplicantNotified"), 1, "{types:?}");
}

async fn request_answer_and_extension(db: Db) {
    let desk = desk(db, 0).await;
    let app = &desk.app;
    let (id, applicant) = submit(app, &borderline()).await;
    wait_status(app, &id, "under_review").await;
    let requests = format!("/api/v1/loans/{id}/information-requests");
    let answer_path = format!("/api/v1/loans/{id}/information");

    for (bad, field) in [
        (json!({"message": "x", "fields": [], "due_in_seconds": 60}), "fields"),
        (json!({"message": " ", "fields": ["employer"], "due_in_seconds": 60}), "message"),
        (json!({"message": "x", "fields": ["a", "a"], "due_in_seconds": 60}), "fields.1"),
        (json!({"message": "x", "fields": ["a"], "due_in_seconds": 0}), "due_in_seconds"),
        (json!({"message": "x", "fields": ["a"], "due_in_seconds": 60, "cc": 1}), "cc"),
    ] {
        let (status, problem, _) = post(&desk.ann, app, &requests, Some(&bad), &[]).await;
        assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some(field)), "{bad}: {problem}");
    }
    assert_eq!(post(&applicant, app, &requests, Some(&json!({})), &[]).await.0, 403);
    // Nothing to answer yet.
    let early = json!({"request_id": "0190b6e2-7c3a-7d4e-8f00-0123456789ab", "answers": {"employer": "ACME"}});
    let (status, problem, _) = post(&applicant, app, &answer_path, Some(&early), &[]).await;
    assert_eq!((status, &problem["loan_status"]), (409, &json!("under_review")), "{problem}");

    let ask = json!({"message": "Your payslip, please", "fields": ["employer", "net_salary"], "due_in_seconds": 86400});
    let (status, created, _) = post(&desk.ann, app, &requests, Some(&ask), &[("Idempotency-Key", "ask-1")]).await;
    assert_eq!(status, 201, "{created}");
    let request_id = created["request_id"].as_str().unwrap().to_owned();
    let (status, again, replayed) = post(&desk.ann, app, &requests, Some(&ask), &[("Idempotency-Key", "ask-1")]).await;
    assert_eq!((status, &again, replayed), (201, &created, true));
    // A second request while one is open: 409.
    assert_eq!(post(&desk.ann, app, &requests, Some(&ask), &[]).await.0, 409);

    // The applicant sees what is asked, not the staff's notes; the notice is sent.
    let (status, seen) = {
        let response = applicant.get(app.url(&format!("/api/v1/loans/{id}"))).send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (status, &seen["status"], &seen["waiting_on"]),
        (200, &json!("awaiting_information"), &json!("applicant"))
    );
    assert_eq!(seen["information_request"]["fields"], json!(["employer", "net_salary"]), "{seen}");
    assert!(seen["review"].is_null(), "{seen}");
    wait_event(app, &id, "InformationRequestSent").await;

    // The deadline moves.
    let deadline = format!("/api/v1/loans/{id}/information-requests/{request_id}/deadline");
    let (status, moved, _) = post(&desk.ann, app, &deadline, Some(&json!({"due_in_seconds": 172800})), &[]).await;
    assert_eq!((status, &moved["request_id"]), (200, &json!(request_id)), "{moved}");
    assert!(moved["due_at"].as_str() > created["due_at"].as_str(), "{moved} after {created}");
    assert_eq!(post(&desk.ann, app, &deadline, Some(&json!({"due_in_seconds": -1})), &[]).await.0, 422);
    // The old deadline's and reminder's rows went with the extension: only the new ones wait.
    let pending = timers_of(app, &request_id).await;
    assert_eq!(pending.len(), 2, "{pending:?}");
    let deadline_row = pending.iter().find(|(kind, _)| kind == "information_deadline").expect("the new deadline");
    assert_eq!(deadline_row.1.trim_end_matches('Z'), moved["due_at"].as_str().unwrap().trim_end_matches('Z'));

    // Answers that do not fit: 422 with the field's path; nothing changes.
    let long = "x".repeat(2001);
    for (answers, field) in [
        (json!({"employer": "ACME"}), "answers.net_salary"),
        (json!({"employer": "ACME", "net_salary": "4200", "pets": "cat"}), "answers.pets"),
        (json!({"employer": "ACME", "net_salary": "  "}), "answers.net_salary"),
        (json!({"employer": long, "net_salary": "4200"}), "answers.employer"),
    ] {
        let body = json!({"request_id": request_id, "answers": answers});
        let (status, problem, _) = post(&applicant, app, &answer_path, Some(&body), &[]).await;
        assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some(field)), "{problem}");
    }
    let staff_answer = json!({"request_id": request_id, "answers": {"employer": "ACME", "net_salary": "4200"}});
    assert_eq!(post(&desk.ann, app, &answer_path, Some(&staff_answer), &[]).await.0, 403);
    assert_eq!(app.loan(&id).await["status"], "awaiting_information");

    let headers = [("Idempotency-Key", "answer-1")];
    let (status, answered, replayed) = post(&applicant, app, &answer_path, Some(&staff_answer), &headers).await;
    assert_eq!((status, &answered["status"], replayed), (200, &json!("under_review"), false), "{answered}");
    assert!(answered["review"].is_null(), "the applicant's answer shows no staff notes: {answered}");
    let (status, _, replayed) = post(&applicant, app, &answer_path, Some(&staff_answer), &headers).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(timers_of(app, &request_id).await, [], "an answered request's timers are dropped");
    let (status, problem, _) = post(&applicant, app, &answer_path, Some(&staff_answer), &[]).await;
    assert_eq!((status, &problem["loan_status"]), (409, &json!("under_review")), "{problem}");
    assert_eq!(post(&desk.ann, app, &deadline, Some(&json!({"due_in_seconds": 60})), &[]).await.0, 409);

    let types = event_types(&app.events(&id).await);
    for event in
        ["InformationRequested", "InformationRequestSent", "InformationDeadlineExtended", "InformationProvided"]
    {
        assert_eq!(count(&types, event), 1, "{event} in {types:?}");
    }
    // Rejected by the underwriter in the end.
    let reject = json!({"decision": "reject", "note": "income not confirmed"});
    assert_eq!(post(&desk.ann, app, &format!("/api/v1/loans/{id}/decision"), Some(&reject), &[]).await.0, 200);
    let loan = app.wait_finished(&id, DEADLINE).await;
    assert_eq!(loan["rejection_reasons"], json!(["underwriter_declined"]), "{loan}");

    // Erasing the finished loan's personal data erases the answers too; the field names stay.
    let erased = app.client.post(app.url(&format!("/admin/loans/{id}/erase"))).send().await.unwrap();
    assert_eq!(erased.status().as_u16(), 200);
    let events = app.events(&id).await;
    let provided = events.iter().find(|e| e["type"] == "InformationProvided").unwrap();
    assert_eq!(provided["data"]["answers"], json!({"employer": "[erased]", "net_salary": "[erased]"}), "{provided}");
}

async fn withdrawal_and_operator_cancellation(db: Db) {
    let desk = desk(db, 0).await;
    let app = &desk.app;
    let (id, applicant) = submit(app, &borderline()).await;
    wait_status(app, &id, "under_review").await;
    let withdraw = format!("/api/v1/loans/{id}/withdraw");
    assert_eq!(post(&desk.ann, app, &withdraw, None, &[]).await.0, 403);
    let (status, loan, _) = post(&applicant, app, &withdraw, None, &[("Idempotency-Key", "w-1")]).await;
    assert_eq!(status, 202, "{loan}");
    let (status, _, replayed) = post(&applicant, app, &withdraw, None, &[("Idempotency-Key", "w-1")]).await;
    assert_eq!((status, replayed), (202, true));
    let (status, problem, _) = post(&applicant, app, &withdraw, None, &[]).await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["loan_status"].is_string(), "{problem}");
    let loan = app.wait_finished(&id, DEADLINE).await;
    assert_eq!(loan["status"], "cancelled");
    let events = app.events(&id).await;
    let cancelled = events.iter().find(|e| e["type"] == "LoanCancelled").unwrap();
    assert!(cancelled["data"]["reason"].as_str().unwrap().starts_with("withdrawn"), "{cancelled}");
    let types = event_types(&events);
    // Both steps compensated, the one that completed last first, before the end.
    let at = |name: &str| types.iter().position(|t| t == name).unwrap_or_else(|| panic!("{name} in {types:?}"));
    let (first, second) = if at("CreditChecked") > at("PropertyAppraised") {
        ("CreditCheckReleased", "AppraisalVoided")
    } else {
        ("AppraisalVoided", "CreditCheckReleased")
    };
    assert!(at(first) < at(second) && at(second) < at("LoanCancelled"), "{types:?}");

    let (other, _) = submit(app, &borderline()).await;
    wait_status(app, &other, "under_review").await;
    let ask = json!({"message": "Your lease", "fields": ["lease"], "due_in_seconds": 86400});
    let (status, created, _) =
        post(&desk.ann, app, &format!("/api/v1/loans/{other}/information-requests"), Some(&ask), &[]).await;
    assert_eq!(status, 201, "{created}");
    let request_id = created["request_id"].as_str().unwrap();
    assert_eq!(timers_of(app, request_id).await.len(), 2, "a deadline and a reminder");
    let cancel = format!("/admin/loans/{other}/cancel");
    assert_eq!(post(&desk.ann, app, &cancel, None, &[]).await.0, 403);
    assert_eq!(post(&app.client, app, &cancel, None, &[]).await.0, 202);
    app.wait_finished(&other, DEADLINE).await;
    let events = app.events(&other).await;
    let cancelled = events.iter().find(|e| e["type"] == "LoanCancelled").unwrap();
    assert!(cancelled["data"]["reason"].as_str().unwrap().starts_with("operator: cancelled by "), "{cancelled}");
    assert_eq!(timers_of(app, request_id).await, [], "a closed request's timers are dropped");
    assert_eq!(post(&app.client, app, &cancel, None, &[]).await.0, 409);
}

/// The credit check answers 1.5 s late: the withdrawal waits for it, then compensates both
/// steps, the credit check (completed last) first.
async fn withdrawal_while_a_step_is_in_flight(db: Db) {
    let desk = desk(db, 1500).await;
    let app = &desk.app;
    let (id, applicant) = submit(app, &approvable_application()).await;
    let types = wait_event(app, &id, "PropertyAppraised").await;
    assert!(!types.contains(&"CreditChecked".to_owned()), "{types:?}");
    let (status, loan, _) = post(&applicant, app, &format!("/api/v1/loans/{id}/withdraw"), None, &[]).await;
    assert_eq!((status, &loan["waiting_on"]), (202, &json!("credit_check")), "{loan}");
    let loan = app.wait_finished(&id, DEADLINE).await;
    assert_eq!(loan["status"], "cancelled");
    let types = event_types(&app.events(&id).await);
    let compensations: Vec<&str> =
        types.iter().map(String::as_str).filter(|t| matches!(*t, "CreditCheckReleased" | "AppraisalVoided")).collect();
    assert_eq!(compensations, ["CreditCheckReleased", "AppraisalVoided"], "{types:?}");
    assert_eq!(count(&types, "LoanApproved") + count(&types, "LoanReferred"), 0, "{types:?}");
}

/// A request not answered in time: reminded halfway, then expired, compensated and cancelled;
/// an answer after that is too late.
async fn an_unanswered_request_is_reminded_then_expires(db: Db) {
    let desk = desk(db, 0).await;
    let app = &desk.app;
    let (id, applicant) = submit(app, &borderline()).await;
    wait_status(app, &id, "under_review").await;
    let ask = json!({"message": "Your lease", "fields": ["lease"], "due_in_seconds": 2});
    let (status, created, _) =
        post(&desk.ann, app, &format!("/api/v1/loans/{id}/information-requests"), Some(&ask), &[]).await;
    assert_eq!(status, 201, "{created}");
    let loan = app.wait_finished(&id, DEADLINE).await;
    assert_eq!(loan["status"], "cancelled");
    let events = app.events(&id).await;
    let types = event_types(&events);
    for event in ["InformationReminderSent", "InformationRequestExpired", "CreditCheckReleased", "AppraisalVoided"] {
        assert_eq!(count(&types, event), 1, "{event} in {types:?}");
    }
    let cancelled = events.iter().find(|e| e["type"] == "LoanCancelled").unwrap();
    assert!(cancelled["data"]["reason"].as_str().unwrap().starts_with("information_not_provided"), "{cancelled}");
    let late = json!({"request_id": created["request_id"], "answers": {"lease": "attached"}});
    let (status, problem, _) =
        post(&applicant, app, &format!("/api/v1/loans/{id}/information"), Some(&late), &[]).await;
    assert_eq!((status, &problem["loan_status"]), (409, &json!("cancelled")), "{problem}");
}

both_backends!(
    an_unanswered_request_is_reminded_then_expires,
    referral_claim_and_decision,
    request_answer_and_extension,
    withdrawal_and_operator_cancellation,
    withdrawal_while_a_step_is_in_flight,
);
