//! The dashboard's work queue and process view in a real browser (`queue_browser.py`): an
//! underwriter claims, approves and asks for information; two underwriters race on one loan; the
//! process view's counts follow the loans live. Every loan is referred (band above any score).

use std::process::Command;
use std::time::Duration;

use loanflow::settings::{ReviewBand, Role, StaffToken};
use serde_json::{json, Value};

use crate::dashboard::artifacts_dir;
use crate::helpers::{approvable_application, client_with_token, event_types, spawn_app_with, Db, TestApp};
use crate::support::{client_script, json_line, last_report, post_status, wait_status, ClientProcess};

const ANN: &str = "underwriter-ann-token";
const BOB: &str = "underwriter-bob-token";
const VIC: &str = "viewer-vic-token";
/// The loans the driver's modes expect (`QUEUED`, `RACED`, `RISE` in queue_browser.py).
const QUEUED: usize = 4;
const RISE: usize = 3;
const STEP: Duration = Duration::from_secs(120);
/// Long enough for the other loans to be shown unescalated next to the first, which is.
const ESCALATE_AFTER_SECONDS: u64 = 15;
const NEVER_ESCALATE: u64 = 172_800;

/// A node that refers every loan the rules approve, with two underwriters and a viewer; a loan
/// under review longer than `escalate_after_seconds` is escalated.
async fn referring_node(escalate_after_seconds: u64) -> TestApp {
    spawn_app_with(Db::Sqlite, move |s| {
        s.decision.review_below_score = ReviewBand::below(851);
        s.human.review_escalate_after_seconds = escalate_after_seconds;
        s.human.escalation_sweep_seconds = 1;
        s.admin.staff = vec![
            StaffToken::new("ann", Role::Underwriter, ANN),
            StaffToken::new("bob", Role::Underwriter, BOB),
            StaffToken::new("vic", Role::Viewer, VIC),
        ];
    })
    .await
}

/// An approvable application from someone else (named, so the screenshots tell loans apart;
/// each email's score is between 660 and 800, so the rules approve and the band refers).
fn application(i: usize) -> Value {
    const APPLICANTS: [(&str, &str); 6] = [
        ("Ada Lovelace", "ada.lovelace1@example.com"),
        ("Alan Turing", "alan.turing10@example.com"),
        ("Grace Hopper", "grace.hopper6@example.com"),
        ("Edsger Dijkstra", "edsger.dijkstra@example.com"),
        ("Frances Allen", "frances.allen1@example.com"),
        ("John Backus", "john.backus@example.com"),
    ];
    let (name, email) = APPLICANTS[i % APPLICANTS.len()];
    let mut body = approvable_application();
    body["applicant"]["name"] = json!(name);
    body["applicant"]["email"] = json!(email);
    body["amount"] = json!(150_000 + 10_000 * i as i64);
    body
}

/// Submit and wait until referred; the loan's id and its applicant's token.
async fn referred(app: &TestApp, i: usize) -> (String, String) {
    let created: Value = app.post_loan(&application(i)).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    wait_status(app, &id, "under_review").await;
    (id, created["access_token"].as_str().unwrap().to_owned())
}

fn driver(args: &[&str]) -> ClientProcess {
    let mut command = Command::new("python3");
    command.arg(client_script("queue_browser.py")).args(args);
    ClientProcess::spawn("the browser driver", command)
}

/// The driver's next line that has `key`; its failure report, if it gave up first.
async fn said(browser: &mut ClientProcess, key: &str) -> Value {
    let line = browser.wait_for_line(|l| !json_line(l)[key].is_null() || json_line(l)["ok"] == false, STEP).await;
    let line = json_line(&line);
    assert!(line["ok"] != false, "the browser test failed waiting to say {key}: {line:#}");
    line
}

async fn report_of(browser: ClientProcess) -> Value {
    let (succeeded, output) = browser.finish(STEP).await;
    let report = last_report(&output);
    assert!(succeeded && report["ok"] == true, "the browser test failed: {report:#}");
    assert_eq!(report["console_errors"], json!([]), "no console error (e.g. a CSP violation): {report}");
    report
}

fn screenshot(name: &str) -> String {
    std::fs::create_dir_all(artifacts_dir()).expect("creating the artifacts directory");
    let path = artifacts_dir().join(name);
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

fn assert_png(path: &str) {
    let bytes = std::fs::read(path).expect("the screenshot exists");
    assert!(bytes.len() > 1_000 && bytes.starts_with(b"\x89PNG"), "a PNG at {path}");
}

#[actix_web::test]
async fn the_queue_approves_a_referred_loan_and_shows_an_answered_request_back_under_review() {
    let app = referring_node(ESCALATE_AFTER_SECONDS).await;
    let shot = screenshot("work-queue.png");
    let mut browser = driver(&["queue", &app.address, ANN, VIC, &shot]);
    said(&mut browser, "ready").await;

    // Referred while the page is open: they arrive live; the first is escalated before the
    // others come.
    let mut loans = vec![referred(&app, 0).await];
    let start = std::time::Instant::now();
    while app.loan(&loans[0].0).await["review"]["escalated"] != true {
        assert!(start.elapsed() < STEP, "the first loan was never escalated");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 1..QUEUED {
        loans.push(referred(&app, i).await);
    }
    let queued = said(&mut browser, "queued").await;
    let mut by_wait = Vec::new();
    for (id, _) in &loans {
        by_wait.push((app.loan(id).await["waiting_since"].as_str().unwrap().to_owned(), id.clone()));
    }
    by_wait.sort();
    let oldest_first: Vec<&String> = by_wait.iter().map(|(_, id)| id).collect();
    assert_eq!(queued["queued"], json!(oldest_first), "longest waiting first");
    let first = app.loan(oldest_first[0]).await;
    let shown = &queued["first"];
    assert_eq!(shown["score"], first["review"]["credit_score"].to_string(), "{shown}");
    assert!(shown["meta"].as_str().unwrap().contains("below the review band (851)"), "why it was referred: {shown}");
    let ltv = format!("{:.1} %", first["review"]["loan_to_value"].as_f64().unwrap() * 100.0);
    assert_eq!(shown["ltv"], ltv, "{shown}");
    assert!(shown["payment"].as_str().unwrap().contains("/ month"), "{shown}");
    assert_eq!(queued["escalated"], json!([loans[0].0]), "the escalated loan is marked: {queued}");

    let asked = said(&mut browser, "asked").await;
    let asked_id = asked["asked"].as_str().unwrap().to_owned();
    let loan = app.loan(&asked_id).await;
    let request = &loan["information_request"];
    assert_eq!(request["fields"], json!(["payslip", "employer"]), "{loan}");
    let token = &loans.iter().find(|(id, _)| *id == asked_id).expect("a loan the test submitted").1;
    let answer =
        json!({"request_id": request["request_id"], "answers": {"payslip": "March: 5,200 EUR", "employer": "Acme"}});
    let url = app.url(&format!("/api/v1/loans/{asked_id}/information"));
    assert_eq!(post_status(&client_with_token(token), &url, &answer).await, 200);

    let report = report_of(browser).await;
    assert_eq!(report["opened_on"], "queue", "an underwriter's page opens on the queue: {report}");
    assert_eq!(report["claimed_by"], "claimed by ann", "{report}");
    let approved = report["approved"].as_str().unwrap();
    let finished = app.wait_finished(approved, STEP).await;
    assert_eq!(finished["status"], "approved", "{finished}");
    assert!(finished["notified_at"].is_string(), "notified: {finished}");
    let events = app.events(approved).await;
    let decided = events.iter().find(|e| e["type"] == "LoanApproved").expect("LoanApproved");
    assert_eq!(decided["data"]["review"], json!({"by": "ann", "note": "Income confirmed with the employer."}));
    let claimed = app.events(report["claimed"].as_str().unwrap()).await;
    let claim = claimed.iter().find(|e| e["type"] == "ReviewClaimed").expect("ReviewClaimed");
    assert_eq!(claim["data"]["by"], "ann", "{claim}");

    let types = event_types(&app.events(&asked_id).await);
    for kind in ["InformationRequested", "InformationDeadlineExtended", "InformationProvided"] {
        assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
    }
    assert_eq!(report["asked_fields"], "payslip, employer");
    assert_ne!(report["first_due"], report["extended_due"], "the deadline moved: {report}");
    assert_eq!(app.loan(&asked_id).await["status"], "under_review");
    assert_eq!(report["back_under_review"], true, "{report}");
    let answers = report["answers_shown"].as_str().unwrap_or_default();
    assert!(
        answers.contains("employer: Acme") && answers.contains("payslip: March"),
        "the answers on the card: {report}"
    );
    assert_eq!(report["reloaded"], false, "live, never reloaded: {report}");
    assert_eq!(report["viewer_cards"], QUEUED - 1, "the viewer sees the queue: {report}");
    assert_eq!(report["viewer_buttons"], 0, "but is offered no action: {report}");
    assert_png(&shot);
}

#[actix_web::test]
async fn of_two_underwriters_deciding_one_loan_the_second_sees_the_409_and_the_loan_as_it_is() {
    let app = referring_node(NEVER_ESCALATE).await;
    let (id, _) = referred(&app, 0).await;
    let browser = driver(&["race", &app.address, ANN, BOB]);
    let report = report_of(browser).await;

    assert_eq!(report["loan_id"], id.as_str());
    assert_eq!(report["first_tab_saw_it_live"], true, "{report}");
    let conflict = &report["conflict"];
    assert_eq!(conflict["http"], "409", "{report}");
    assert_eq!(conflict["status"], "approved", "the loan's current state: {report}");
    assert!(conflict["text"].as_str().unwrap().contains("approved by bob"), "who decided: {report}");
    let events = app.events(&id).await;
    let decisions: Vec<&Value> = events.iter().filter(|e| e["type"] == "LoanApproved").collect();
    assert_eq!(decisions.len(), 1, "one decision wins: {events:?}");
    assert_eq!(decisions[0]["data"]["review"]["by"], "bob");
    assert_eq!(report["second_tab_outcome_notices"], 0, "the winner sees no conflict: {report}");
}

#[actix_web::test]
async fn the_process_view_counts_referred_loans_live_as_they_come_and_go() {
    let app = referring_node(NEVER_ESCALATE).await;
    // A finished loan, so the view starts from a non-empty history.
    let (done, _) = referred(&app, 5).await;
    decide(&app, &done, "reject").await;
    let shot = screenshot("process-view.png");
    let mut browser = driver(&["process", &app.address, &app.operator_token, &shot]);
    let ready = said(&mut browser, "ready").await;
    assert_eq!(ready["counts"]["underwriter"], 0, "{ready}");

    let mut loans = Vec::new();
    for i in 0..RISE {
        loans.push(referred(&app, i).await.0);
    }
    let listed = said(&mut browser, "listed").await;
    let mut shown: Vec<String> = serde_json::from_value(listed["listed"].clone()).unwrap();
    shown.sort();
    let mut submitted = loans.clone();
    submitted.sort();
    assert_eq!(shown, submitted, "clicking the step lists its loans");

    let (last, rest) = loans.split_last().unwrap();
    for (i, id) in rest.iter().enumerate() {
        decide(&app, id, if i % 2 == 0 { "approve" } else { "reject" }).await;
    }
    let ask = json!({"message": "A payslip, please.", "fields": ["payslip"], "due_in_seconds": 3600});
    let url = app.url(&format!("/api/v1/loans/{last}/information-requests"));
    assert_eq!(post_status(&app.client, &url, &ask).await, 201);

    let report = report_of(browser).await;
    assert_eq!(report["risen"]["underwriter"], RISE, "{report}");
    assert_eq!((&report["after"]["underwriter"], &report["after"]["applicant"]), (&json!(0), &json!(1)), "{report}");
    assert!(report["oldest_age"].as_str().unwrap().starts_with("oldest "), "{report}");
    assert_eq!(report["reloaded"], false, "{report}");
    let (_, steps) = app.get_json("/api/v1/loans/steps").await;
    let count =
        |name: &str| steps["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap()["loans"].clone();
    assert_eq!(
        (count("underwriter"), count("applicant")),
        (json!(0), json!(1)),
        "the page agrees with the API: {steps}"
    );
    assert_png(&shot);
}

async fn decide(app: &TestApp, id: &str, decision: &str) {
    let body = json!({"decision": decision, "note": "decided by the test"});
    let url = app.url(&format!("/api/v1/loans/{id}/decision"));
    assert_eq!(post_status(&client_with_token(BOB), &url, &body).await, 200, "{decision} {id}");
}
