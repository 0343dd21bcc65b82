//! The applicant's page at `/applications/{id}`: its headers and embedded assets, and a real
//! browser on a phone-sized screen receiving an information request live and answering it.

use std::process::Command;
use std::time::Duration;

use loanflow::settings::{ReviewBand, Role, StaffToken};
use serde_json::{json, Value};

use crate::dashboard::artifacts_dir;
use crate::helpers::{approvable_application, client_with_token, spawn_app, spawn_app_with, Db, TestApp};
use crate::support::{client_script, json_line, post_status, wait_status, ClientProcess};

const UNDERWRITER: &str = "underwriter-ann-token";
/// How soon an open page shows a request (the issue's bound is a second; the margin covers the
/// driver's polling and a loaded CI machine).
const REQUEST_SHOWN_WITHIN: Duration = Duration::from_secs(3);

#[actix_web::test]
async fn the_page_is_served_from_the_binary_to_anyone_with_security_headers() {
    let app = spawn_app(Db::Sqlite).await;
    let created: Value = app.post_loan(&approvable_application()).await.json().await.unwrap();
    let (id, token) = (created["id"].as_str().unwrap(), created["access_token"].as_str().unwrap());
    assert_eq!(created["page"], format!("/applications/{id}#token={token}"), "the 201 gives the page's link");

    let page = app.client.get(app.url(&format!("/applications/{id}"))).send().await.expect("GET the page");
    assert_eq!(page.status().as_u16(), 200, "no credential needed for the page's files");
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style (CSP)");
    assert!(html.contains(r#"name="viewport""#), "sized for a phone");

    for (path, content_type) in [
        ("/assets/applicant/app.js", "text/javascript; charset=utf-8"),
        ("/assets/applicant/style.css", "text/css; charset=utf-8"),
    ] {
        assert!(html.contains(path), "the page links {path}");
        let asset = reqwest::Client::new().get(app.url(path)).send().await.expect("GET asset");
        assert_eq!(asset.status().as_u16(), 200, "{path}");
        assert_eq!(asset.headers()["content-type"], content_type, "{path}");
        let body = asset.text().await.unwrap();
        assert!(!body.contains("http://") && !body.contains("https://"), "{path} loads nothing from elsewhere");
    }
}

/// A node that refers loans below 660, with an underwriter.
async fn referring_node() -> TestApp {
    spawn_app_with(Db::Sqlite, |s| {
        s.decision.review_below_score = ReviewBand::DEFAULT;
        s.admin.staff = vec![StaffToken::new("ann", Role::Underwriter, UNDERWRITER)];
    })
    .await
}

#[actix_web::test]
async fn a_browser_receives_the_underwriters_request_live_answers_it_and_withdraws() {
    let app = referring_node().await;
    let mut borderline = approvable_application();
    borderline["applicant"]["email"] = json!("ref0@example.com"); // score 645: referred
    let created: Value = app.post_loan(&borderline).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    wait_status(&app, &id, "under_review").await;

    let screenshot = artifacts_dir().join("applicant-page.png");
    std::fs::create_dir_all(artifacts_dir()).expect("creating the artifacts directory");
    let _ = std::fs::remove_file(&screenshot);
    let page_url = format!("{}{}", app.address, created["page"].as_str().unwrap());
    let wrong_url = format!("{}/applications/{id}#token=lfa1.{id}.0.0000", app.address);
    let mut command = Command::new("python3");
    command.arg(client_script("applicant_browser.py")).arg(&page_url).arg(&wrong_url).arg(&screenshot);
    let mut browser = ClientProcess::spawn("the browser driver", command);
    browser.wait_for_line(|l| json_line(l)["ready"] == true, Duration::from_secs(60)).await;

    let ask = json!({"message": "Please tell us about your income.", "fields": ["employer", "monthly_salary"],
                     "due_in_seconds": 86400});
    let url = app.url(&format!("/api/v1/loans/{id}/information-requests"));
    assert_eq!(post_status(&client_with_token(UNDERWRITER), &url, &ask).await, 201);
    let seen = browser.wait_for_line(|l| !json_line(l)["seen"].is_null(), REQUEST_SHOWN_WITHIN).await;
    assert_eq!(json_line(&seen)["seen"], json!(["employer", "monthly_salary"]), "a field for each name asked for");

    let (succeeded, output) = browser.finish(Duration::from_secs(60)).await;
    let report = output.iter().rev().find_map(|l| serde_json::from_str::<Value>(l).ok()).unwrap_or(Value::Null);
    assert!(succeeded && report["ok"] == true, "the browser test failed: {report:#}");
    assert_eq!(report["console_errors"], json!([]), "no console error (e.g. a CSP violation): {report}");
    assert!(!report["address_after_open"].as_str().unwrap_or("token").contains("token"), "{report}");
    assert_eq!(report["no_horizontal_scroll"], true, "fits a phone's width: {report}");
    for input in report["inputs"].as_array().expect("the inputs") {
        assert_eq!((&input["required"], &input["maxlength"]), (&json!(true), &json!(2000)), "{input}");
    }
    assert_eq!(report["message"], "Please tell us about your income.");
    assert_ne!(report["countdown"], report["countdown_later"], "the deadline counts down: {report}");
    assert_eq!(report["reloaded"], false, "the page was never reloaded");

    assert!(report["withdraw_asked"].as_str().is_some_and(|q| q.contains("Withdraw")), "asked first: {report}");
    assert_eq!(report["after_withdraw"], "cancelled", "{report}");
    let loan = wait_status(&app, &id, "cancelled").await;
    assert!(loan["information_request"].is_null(), "the request is answered: {loan}");
    let events = app.events(&id).await;
    let provided = events.iter().find(|e| e["type"] == "InformationProvided").expect("InformationProvided");
    assert_eq!(provided["data"]["answers"]["employer"], "my employer, typed in the browser", "{provided}");
    let cancelled = events.iter().find(|e| e["type"] == "LoanCancelled").expect("LoanCancelled");
    assert!(cancelled["data"]["reason"].as_str().unwrap().starts_with("withdrawn"), "{cancelled}");
    assert!(report["wrong_token"].as_str().is_some_and(|m| m.contains("not valid")), "a clear refusal: {report}");

    let bytes = std::fs::read(&screenshot).expect("the screenshot exists");
    assert!(bytes.len() > 1_000 && bytes.starts_with(b"\x89PNG"), "a PNG at {}", screenshot.display());
}
