//! `loanflow admin` end to end: the real binary serves on a fresh SQLite database (with a poison
//! marker, so that a loan leaves dead letters behind and stays unfinished), and each command runs
//! as a second process against it. Every command's table, its `--json` and its exit code, and
//! the failures scripts tell apart: not found, conflict, a wrong token, a viewer's token, no token,
//! a node that is not there, a node that fails, a route the node does not have.

#[path = "common/database.rs"]
mod database;
#[allow(dead_code)]
#[path = "crash/process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use database::{Db, TestDatabase};
use process::Service;

const BINARY: &str = env!("CARGO_BIN_EXE_loanflow");
const TOKEN: &str = "admin-cli-test-operator-token";
const DEADLINE: Duration = Duration::from_secs(60);

/// One run of `loanflow admin`.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("--json printed no JSON ({e}): {}", self.stdout))
    }

    /// A failure: its exit code, nothing on stdout, and the message on stderr.
    fn assert_fails(&self, code: i32, says: &str) {
        assert_eq!(self.code, code, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(self.stdout.is_empty(), "a failure printed on stdout: {}", self.stdout);
        assert!(self.stderr.contains(says), "expected {says:?} in: {}", self.stderr);
        assert!(!self.stderr.contains(TOKEN), "the token was printed: {}", self.stderr);
    }

    /// The data rows of a table whose header starts with `header`.
    fn rows(&self, header: &str) -> Vec<String> {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        let mut lines = self.stdout.lines();
        let first = lines.next().unwrap_or_default();
        assert!(first.starts_with(header), "expected a table headed {header:?}:\n{}", self.stdout);
        lines.map(str::to_owned).collect()
    }
}

fn admin(url: &str, token: Option<&str>, args: &[&str]) -> Run {
    let mut command = Command::new(BINARY);
    command.arg("admin").args(["--url", url]).args(args).env_remove("LOANFLOW__ADMIN__TOKEN");
    if let Some(token) = token {
        command.env("LOANFLOW__ADMIN__TOKEN", token);
    }
    let output = command.output().expect("running loanflow admin");
    Run {
        code: output.status.code().expect("loanflow admin exited by itself"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 on stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 on stderr"),
    }
}

/// A viewer's staff token and its `admin.staff_tokens` entry, made by `loanflow token`.
fn viewer_token() -> (String, String) {
    let output = Command::new(BINARY).args(["token", "--name", "vera", "--role", "viewer"]).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let after = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix)).expect(prefix).to_owned();
    (after("token: "), after("admin.staff_tokens entry: "))
}

fn application(name: &str, email: &str) -> Value {
    json!({
        "applicant": {"name": name, "email": email, "annual_income": 1_000_000, "monthly_debts": 250},
        "property": {"address": "1 Admin Street, Lisbon", "declared_value": 300_000},
        "amount": 150_000,
        "term_months": 240,
    })
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    let response = client.get(&url).header("Authorization", format!("Bearer {TOKEN}")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    response.json().await.unwrap()
}

/// Poll `url` until `done` says yes, or fail at the deadline.
async fn wait_for(client: &reqwest::Client, url: String, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let answer = get_json(client, url.clone()).await;
        if done(&answer) {
            return answer;
        }
        assert!(start.elapsed() < DEADLINE, "still not there: {url}: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_command_against_a_running_node() {
    let database = TestDatabase::create(Db::Sqlite);
    let (viewer, viewer_entry) = viewer_token();
    let node = Service::start(&[
        ("LOANFLOW__HTTP__PORT", "0".to_owned()),
        ("LOANFLOW__DATABASE__URL", database.url.clone()),
        ("LOANFLOW__ADMIN__TOKEN", TOKEN.to_owned()),
        ("LOANFLOW__ADMIN__STAFF_TOKENS", viewer_entry),
        ("LOANFLOW__FAULTS__POISON_MARKER", "#poison".to_owned()),
    ]);
    let url = node.base_url.as_str();
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for (name, email) in [("Ada Finished", "ada@example.com"), ("Pat #poison Stuck", "pat@example.com")] {
        let response = client.post(node.url("/api/v1/loans")).json(&application(name, email)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 201);
        ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    let (finished, stuck) = (ids[0].as_str(), ids[1].as_str());
    wait_for(&client, node.url(&format!("/api/v1/loans/{finished}")), |loan| !loan["notified_at"].is_null()).await;
    // Both first replies (credit check and appraisal) to the poisoned loan are dead-lettered.
    let letters =
        wait_for(&client, node.url("/admin/dead-letters"), |list| list["items"].as_array().unwrap().len() == 2).await
            ["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|letter| letter["message_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>();
    let unknown = uuid::Uuid::now_v7().to_string();
    let operator = |args: &[&str]| admin(url, Some(TOKEN), args);

    // loans list
    let rows = operator(&["loans", "list"]).rows("ID  ");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().any(|r| r.starts_with(stuck) && r.contains("evaluating")), "{rows:?}");
    assert!(rows.iter().any(|r| r.starts_with(finished)), "{rows:?}");
    let page = operator(&["--json", "loans", "list", "--limit", "1"]).json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert!(page["next_cursor"].is_string(), "{page}");
    let next = operator(&["loans", "list", "--limit", "1"]);
    assert!(
        next.stdout.contains(&format!("more: --cursor {}", page["next_cursor"].as_str().unwrap())),
        "{}",
        next.stdout
    );
    operator(&["loans", "list", "--limit", "0"]).assert_fails(1, "limit");

    // loans show
    let shown = operator(&["loans", "show", finished]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.lines().any(|l| l.split_whitespace().eq(["id", finished])), "{}", shown.stdout);
    assert!(
        shown.stdout.lines().any(|l| l.starts_with("applicant.name ") && l.ends_with("Ada Finished")),
        "{}",
        shown.stdout
    );
    assert_eq!(operator(&["loans", "show", finished, "--json"]).json()["id"], finished);
    operator(&["loans", "show", &unknown]).assert_fails(3, &format!("loan {unknown} not found"));
    operator(&["loans", "show", "not-a-loan-id"]).assert_fails(2, "invalid value");

    // loans stuck
    let rows = operator(&["loans", "stuck", "--older-than-secs", "0"]).rows("ID  ");
    assert_eq!(rows.len(), 1, "only the unfinished loan: {rows:?}");
    assert!(rows[0].starts_with(stuck) && rows[0].contains("evaluating"), "{rows:?}");
    let listed = operator(&["loans", "stuck", "--older-than-secs", "0", "--json"]).json();
    assert_eq!(listed["loans"][0]["id"], stuck, "{listed}");
    let none = operator(&["loans", "stuck", "--older-than-secs", "3600"]);
    assert_eq!((none.code, none.stdout.as_str()), (0, "no unfinished loans older than 3600 s\n"));

    // loans retry
    let retried = operator(&["loans", "retry", stuck]);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    assert!(retried.stdout.starts_with(&format!("loan {stuck}: ")) && retried.stdout.contains("delivered again"));
    assert_eq!(operator(&["--json", "loans", "retry", stuck]).json()["loan_id"], stuck);
    operator(&["loans", "retry", finished]).assert_fails(6, "conflict (409)");
    operator(&["loans", "retry", &unknown]).assert_fails(3, "not found");

    // loans cancel and timers: other work adds these routes; until a node has them, the CLI says so.
    let document = get_json(&client, node.url("/api-docs/openapi.json")).await;
    let cancel = operator(&["loans", "cancel", &unknown]);
    if document["paths"].get("/admin/loans/{id}/cancel").is_some() {
        cancel.assert_fails(3, "not found");
    } else {
        cancel.assert_fails(7, "the node has no route POST /admin/loans/{id}/cancel");
    }
    let timers = operator(&["timers"]);
    if document["paths"].get("/admin/timers").is_some() {
        assert_eq!(timers.code, 0, "{}", timers.stderr);
        let listed = operator(&["timers", "--json"]).json();
        assert!(listed.is_object() || listed.is_array(), "{listed}");
    } else {
        timers.assert_fails(7, "the node has no route GET /admin/timers");
    }
    // What the CLI reads as "no such route": the admin scope's answer for a path it lacks.
    let response = client.get(node.url("/admin/no-such-route")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["detail"], "admin resource not found");

    // dead-letters list and replay
    let rows = operator(&["dead-letters", "list"]).rows("MESSAGE ID  ");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for letter in &letters {
        assert!(rows.iter().any(|r| r.starts_with(letter.as_str()) && r.contains(stuck)), "{letter}: {rows:?}");
    }
    let listed = operator(&["dead-letters", "list", "--json"]).json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    let replayed = operator(&["dead-letters", "replay", &letters[0]]);
    assert_eq!(
        replayed.stdout,
        format!("dead letter {} of loan {stuck}: replayed\n", letters[0]),
        "{}",
        replayed.stderr
    );
    assert_eq!(operator(&["--json", "dead-letters", "replay", &letters[1]]).json()["status"], "replayed");
    operator(&["dead-letters", "replay", &unknown]).assert_fails(3, &format!("dead letter {unknown} not found"));

    // nodes and actors
    let node_id = get_json(&client, node.url("/health/ready")).await["node_id"].as_str().unwrap().to_owned();
    let rows = operator(&["nodes"]).rows("NODE ");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with(&node_id), "{rows:?}");
    assert_eq!(operator(&["nodes", "--json"]).json()["nodes"][0]["node_id"], node_id.as_str());
    let rows = operator(&["actors", "--kind", "credit"]).rows("NODE ");
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(row.split_whitespace().nth(1), Some("credit"), "{rows:?}");
    }
    let listed = operator(&["actors", "--json"]).json();
    assert!(listed["nodes"][0]["actors"].as_array().unwrap().iter().any(|a| a["kind"] == "notifier"), "{listed}");

    // credentials
    admin(url, Some("not-the-token"), &["nodes"]).assert_fails(4, "the node refused the token (401)");
    admin(url, Some(&viewer), &["loans", "stuck"]).assert_fails(4, "not an operator's (403)");
    admin(url, None, &["nodes"]).assert_fails(4, "LOANFLOW__ADMIN__TOKEN");
}

/// A node that is not there, and one that answers 503, with no node started at all.
#[test]
fn a_node_unreachable_or_failing_is_exit_code_5() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    admin(&format!("http://127.0.0.1:{port}"), Some(TOKEN), &["nodes"]).assert_fails(5, "cannot reach the node");

    let failing = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = failing.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = failing.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let body = r#"{"type":"/problems/unavailable","title":"Service unavailable","status":503,"detail":"a dependency is unavailable; retry later"}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    admin(&format!("http://{address}"), Some(TOKEN), &["loans", "stuck"])
        .assert_fails(5, "the node failed (503): a dependency is unavailable");

    admin("https://127.0.0.1:8080", Some(TOKEN), &["nodes"]).assert_fails(2, "http://");
}
