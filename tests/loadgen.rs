//! The load generator's correctness check, end to end and small: the real binary serves on a
//! fresh SQLite database, `loanflow loadgen --n 300 --json` runs against it as a second process,
//! and every loan must finish as CONTRACT.md says; the same with the human workload, the load
//! generator playing an underwriter (a staff token) and each referred loan's applicant.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_loanflow");
const LOANS: u64 = 300;
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Kills the child when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The node's operator token, which the load generator reads the loans with.
const TOKEN: &str = "loadgen-test-operator";

/// Start `loanflow` on port 0 with its own database, the rules deciding every loan; returns it
/// and its base URL.
fn serve(database: &std::path::Path) -> (KillOnDrop, String) {
    serve_with(database, &[("LOANFLOW__DECISION__REVIEW_BELOW_SCORE", "0")])
}

/// Start `loanflow` on port 0 with its own database and these settings.
fn serve_with(database: &std::path::Path, settings: &[(&str, &str)]) -> (KillOnDrop, String) {
    let child = Command::new(BINARY)
        .env("LOANFLOW__HTTP__PORT", "0")
        .envs(settings.iter().copied())
        .env("LOANFLOW__HTTP__HOST", "127.0.0.1")
        .env("LOANFLOW__DATABASE__URL", database)
        .env("LOANFLOW__LOG__LEVEL", "error")
        .env("LOANFLOW__ADMIN__TOKEN", TOKEN)
        .env_remove("LOANFLOW__BROKER__URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting loanflow");
    let mut server = KillOnDrop(child);
    let stdout = server.0.stdout.take().expect("piped stdout");
    let (found, address) = mpsc::channel();
    // Read stdout to its end on a thread, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let url = line[at + "listening on ".len()..].split_whitespace().next().unwrap_or_default();
                let _ = found.send(url.to_owned());
            }
        }
    });
    let url = address.recv_timeout(START_TIMEOUT).expect("loanflow printed `listening on http://...`");
    (server, url)
}

/// Run `loanflow loadgen --n LOANS --concurrency 16 --json` with `args` against `url`: its exit,
/// its standard error and its JSON report.
fn loadgen(url: &str, args: &[&str]) -> (std::process::Output, String, Value) {
    let output = Command::new(BINARY)
        .args(["loadgen", "--url", url, "--n", &LOANS.to_string(), "--concurrency", "16"])
        .args(["--timeout-secs", "120", "--json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running loanflow loadgen");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("loadgen printed no JSON report ({e}); stderr:\n{stderr}"));
    (output, stderr, report)
}

#[test]
fn loadgen_finds_every_loan_finished_as_the_contract_says() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (server, url) = serve(&dir.path().join("loanflow.db"));
    let pid = server.0.id().to_string();

    let (output, stderr, report) =
        loadgen(&url, &["--seed", "5", "--fail-share", "0.15", "--pids", &pid, "--token", TOKEN]);
    let field = |name: &str| report[name].as_u64().unwrap_or_else(|| panic!("`{name}` in {report:#}"));

    assert!(output.status.success(), "loadgen failed ({}):\n{stderr}\n{report:#}", output.status);
    assert_eq!(field("submitted"), LOANS, "{report:#}");
    assert_eq!(field("finished"), LOANS, "{report:#}");
    assert_eq!(field("unfinished"), 0, "{report:#}");
    assert_eq!(field("disagreements"), 0, "{report:#}");
    let mix = &report["mix"];
    for kind in [
        "approved",
        "cancelled",
        "rejected_for_credit_score",
        "rejected_for_loan_to_value",
        "rejected_for_debt_to_income",
    ] {
        assert!(mix[kind].as_u64().unwrap_or(0) > 0, "the mix has no `{kind}`: {mix}");
    }
    assert!(report["loans_per_second"].as_f64().unwrap_or(0.0) > 0.0, "{report:#}");
    assert!(report["e2e_latency_ms"]["p99"].as_f64().is_some(), "{report:#}");
    assert!(report["server_peak_rss_mib"].as_f64().unwrap_or(0.0) > 0.0, "{report:#}");
    assert_eq!(report["cpu"]["server"]["pids"][0].as_u64(), Some(u64::from(server.0.id())), "{report:#}");
    assert!(stderr.contains("loadgen OK"), "the one-line summary: {stderr}");
}

/// A new underwriter's token and its `admin.staff_tokens` entry, from `loanflow token`.
fn underwriter_token() -> (String, String) {
    let output =
        Command::new(BINARY).args(["token", "--name", "uma", "--role", "underwriter"]).output().expect("token");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = |prefix: &str| {
        let found = stdout.lines().find_map(|l| l.strip_prefix(prefix));
        found.unwrap_or_else(|| panic!("no `{prefix}` in {stdout}")).trim().to_owned()
    };
    (line("token: "), line("admin.staff_tokens entry: "))
}

#[test]
fn loadgen_plays_underwriter_and_applicant_and_every_outcome_is_as_the_contract_says() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (token, entry) = underwriter_token();
    let (_server, url) = serve_with(
        &dir.path().join("loanflow.db"),
        &[("LOANFLOW__DECISION__REVIEW_BELOW_SCORE", "660"), ("LOANFLOW__ADMIN__STAFF_TOKENS", &entry)],
    );

    let (output, stderr, report) =
        loadgen(&url, &["--seed", "8", "--referred-share", "0.5", "--review-below-score", "660", "--token", &token]);

    assert!(output.status.success(), "loadgen failed ({}):\n{stderr}\n{report:#}", output.status);
    assert_eq!(report["disagreements"].as_u64(), Some(0), "{report:#}");
    assert_eq!(report["finished"].as_u64(), Some(LOANS), "every loan ends, the played ones too: {report:#}");
    let human = &report["human"];
    assert_eq!(human["play_errors"].as_u64(), Some(0), "{human:#}");
    let played = human["played"].as_u64().unwrap_or(0);
    assert_eq!(Some(played), report["mix"]["referred"].as_u64(), "{report:#}");
    assert!(played > LOANS / 3, "about half the loans are referred: {report:#}");
    let outcomes = &human["outcomes"];
    for outcome in [
        "approved_by_underwriter",
        "rejected_by_underwriter",
        "answered_then_approved",
        "answered_then_rejected",
        "expired",
        "withdrawn_under_review",
        "withdrawn_awaiting_information",
        "withdrawn_after_answer",
    ] {
        assert!(outcomes[outcome].as_u64().unwrap_or(0) > 0, "no `{outcome}` among {outcomes}");
    }
    let counted: u64 = outcomes.as_object().expect("outcomes").values().filter_map(Value::as_u64).sum();
    assert_eq!(counted, played, "{outcomes}");
    // A deadline of 1 to 3 s fires within a few seconds, even on a busy machine.
    let lateness = human["deadline_lateness_ms"]["max"].as_f64().expect("expired requests' lateness");
    assert!((0.0..10_000.0).contains(&lateness), "{human:#}");
    assert!(stderr.contains("loadgen OK"), "the one-line summary: {stderr}");
}

#[test]
fn the_human_workload_needs_the_band_and_a_staff_token() {
    for (args, complaint) in [
        (["--review-below-score", "0", "--token", "t"], "--review-below-score"),
        (["--review-below-score", "660", "--seed", "1"], "--token"),
    ] {
        let output = Command::new(BINARY)
            .args(["loadgen", "--url", "http://127.0.0.1:9", "--n", "5", "--referred-share", "0.1"])
            .args(args)
            .env_remove("LOADGEN_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("running loanflow loadgen");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(complaint), "{stderr}");
    }
}

#[test]
fn loadgen_without_a_server_fails_clearly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let output = Command::new(BINARY)
        .args(["loadgen", "--url", &format!("http://127.0.0.1:{port}"), "--n", "5"])
        .stdin(Stdio::null())
        .output()
        .expect("running loanflow loadgen");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is loanflow serving there?"), "{stderr}");
}
