//! The dashboard at `/`: its headers and embedded assets, and a real browser using it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{approvable_application, event_types, spawn_app, spawn_app_with, Db};
use crate::support::{client_script, ClientProcess};

/// Where the browser test leaves its screenshot: `$CARGO_TARGET_DIR/test-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().expect("the target directory").join("test-artifacts")
}

#[actix_web::test]
async fn the_dashboard_is_served_from_the_binary_with_security_headers() {
    let app = spawn_app(Db::Sqlite).await;
    let page = app.client.get(app.url("/")).send().await.expect("GET /");
    assert_eq!(page.status().as_u16(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"), "{csp}");
    assert!(csp.contains("connect-src 'self' ws://127.0.0.1:"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style (CSP)");

    for (path, content_type) in [
        ("/assets/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/assets/dashboard/apply.js", "text/javascript; charset=utf-8"),
        ("/assets/dashboard/queue.js", "text/javascript; charset=utf-8"),
        ("/assets/dashboard/review.js", "text/javascript; charset=utf-8"),
        ("/assets/dashboard/process.js", "text/javascript; charset=utf-8"),
        ("/assets/dashboard/style.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        assert!(path == "/favicon.svg" || html.contains(path), "the page links {path}");
        let asset = app.client.get(app.url(path)).send().await.expect("GET asset");
        assert_eq!(asset.status().as_u16(), 200, "{path}");
        assert_eq!(asset.headers()["content-type"], content_type, "{path}");
        assert_eq!(asset.headers()["x-content-type-options"], "nosniff", "{path}");
        // The SVG namespace names a vocabulary; nothing is fetched from it.
        let body = asset.text().await.unwrap().replace("http://www.w3.org/2000/svg", "");
        assert!(!body.contains("http://") && !body.contains("https://"), "{path} loads nothing from elsewhere");
    }
}

#[actix_web::test]
async fn a_browser_submits_through_the_form_and_sees_the_final_status_without_a_reload() {
    let viewer = loanflow::settings::StaffToken::generate("vera", "viewer").expect("a viewer token");
    let entry = viewer.1.clone();
    let app = spawn_app_with(Db::Sqlite, move |s| {
        s.admin.staff = vec![loanflow::settings::StaffToken::parse(&entry).expect("the entry parses")];
    })
    .await;
    // Loans already there when the page opens: one that ends cancelled after a compensation.
    let approved = app.submit(&approvable_application()).await;
    let mut failing = approvable_application();
    failing["property"]["address"] = json!("7 Nowhere Lane #fail-appraisal");
    let cancelled = app.submit(&failing).await;
    for id in [&approved, &cancelled] {
        app.wait_finished(id, Duration::from_secs(20)).await;
    }
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).expect("creating the artifacts directory");
    let screenshot = dir.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);

    let mut command = Command::new("python3");
    command.arg(client_script("dashboard_browser.py")).arg(&app.address).arg(&app.operator_token).arg(&viewer.0);
    command.arg(&screenshot);
    let browser = ClientProcess::spawn("the browser driver", command);
    let (succeeded, output) = browser.finish(Duration::from_secs(120)).await;
    let report: Value = output
        .iter()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("the browser driver printed no report: {output:?}"));
    assert!(succeeded && report["ok"] == true, "the browser test failed: {report:#}");

    let bytes = std::fs::read(&screenshot).expect("the screenshot exists");
    assert!(bytes.len() > 1_000 && bytes.starts_with(b"\x89PNG"), "a PNG screenshot at {}", screenshot.display());
    assert_eq!(report["reloaded"], false, "the page was never reloaded");
    assert_eq!(report["console_errors"], serde_json::json!([]), "no console error (e.g. a CSP violation)");
    assert!(report["field_error"].as_str().is_some_and(|m| !m.is_empty()), "{report}");

    let id = report["loan_id"].as_str().expect("the loan's id");
    let loan = app.loan(id).await;
    assert_eq!(report["status"], loan["status"], "the row shows the loan's final status");
    let timeline: Vec<String> = serde_json::from_value(report["timeline"].clone()).unwrap();
    assert_eq!(timeline, event_types(&app.events(id).await), "the timeline shows the history");
    assert_eq!(report["compensation"], json!(["CreditCheckReleased"]), "compensation marked as such: {report}");
    let (_, stats) = app.get_json("/api/v1/loans/stats").await;
    for status in ["approved", "rejected", "cancelled"] {
        assert_eq!(report["stats"][status], stats["by_status"][status], "{status}: page vs API");
    }
    assert!(report["actors"].as_str().is_some_and(|a| a.contains("loan")), "actor counts by kind: {report}");
    let address = report["address_after_sign_in"].as_str().unwrap_or_default();
    assert!(!address.contains("token"), "the sign-in link's token leaves the address bar: {address}");
    let signed_out = &report["signed_out"];
    assert_eq!(signed_out["sign_in_shown"], true, "signed out: the sign-in box: {report}");
    assert_eq!(signed_out["data_hidden"], true, "signed out: no data: {report}");
    assert_eq!(signed_out["total"], "–", "signed out: nothing was loaded: {report}");
    assert_eq!(report["operator_actions"], 1, "the operator is offered the token revocation: {report}");
    assert_eq!(report["viewer_actions"], 0, "a viewer is offered no action: {report}");
    assert_eq!(report["signed_in_as"], "vera · viewer", "{report}");
}
