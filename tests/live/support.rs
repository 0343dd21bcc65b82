//! Real clients as child processes (Python `websockets`, `curl -N`, a CDP-driven `chromium`),
//! read line by line, and the shared checks on what they received.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::helpers::TestApp;

/// Where the client scripts live.
pub fn client_script(name: &str) -> String {
    format!("{}/tests/live/clients/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A running client whose stdout arrives as lines; killed on drop.
pub struct ClientProcess {
    name: String,
    process: std::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl ClientProcess {
    pub fn spawn(name: &str, mut command: Command) -> Self {
        let mut process = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({command:?}): {e}"));
        let (sender, lines) = mpsc::unbounded_channel();
        let stdout = process.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = process.stderr.take().expect("piped stderr");
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                collected.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self { name: name.to_owned(), process, lines, stderr }
    }

    /// The next line of output, or `None` at the deadline or when the output ends.
    pub async fn next_line(&mut self, deadline: Instant) -> Option<String> {
        let left = deadline.checked_duration_since(Instant::now())?;
        tokio::time::timeout(left, self.lines.recv()).await.ok().flatten()
    }

    /// Wait for a line that satisfies `wanted`, panicking (with the client's stderr) at the deadline.
    pub async fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while let Some(line) = self.next_line(deadline).await {
            if wanted(&line) {
                return line;
            }
        }
        panic!("{}: the expected line did not come within {within:?}; stderr: {}", self.name, self.stderr());
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// Wait for the process to exit by itself; its exit status and remaining stdout.
    pub async fn finish(mut self, within: Duration) -> (bool, Vec<String>) {
        let deadline = Instant::now() + within;
        let mut rest = Vec::new();
        while let Some(line) = self.next_line(deadline).await {
            rest.push(line);
        }
        loop {
            if let Some(status) = self.process.try_wait().expect("waiting for a client") {
                return (status.success(), rest);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}; stderr: {}",
                self.name,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A line a client printed, as JSON (null when it is not JSON).
pub fn json_line(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or(Value::Null)
}

/// The client's last JSON line: its report.
pub fn last_report(output: &[String]) -> Value {
    output.iter().rev().find_map(|l| serde_json::from_str::<Value>(l).ok()).unwrap_or(Value::Null)
}

/// POST a JSON body with `client`; the answer's status.
pub async fn post_status(client: &reqwest::Client, url: &str, body: &Value) -> u16 {
    client.post(url).json(body).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}")).status().as_u16()
}

/// Poll the loan until it has `status` (at most 30 s).
pub async fn wait_status(app: &TestApp, id: &str, status: &str) -> Value {
    let start = Instant::now();
    loop {
        let loan = app.loan(id).await;
        if loan["status"] == status {
            return loan;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "loan {id} never reached {status}: {loan}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Python `websockets` client on a URL of the app (`ws://…`); it prints `OPEN` once the
/// handshake is done, then one line per text frame, then `CLOSED <code> <reason>`.
pub async fn websocket_client(app: &TestApp, path: &str) -> ClientProcess {
    let url = websocket_url(app, path);
    let mut command = Command::new("python3");
    command.arg(client_script("ws_client.py")).arg(&url).arg("--seconds").arg("120");
    let mut client = ClientProcess::spawn("the WebSocket client", command);
    client.wait_for_line(|l| l == "OPEN", Duration::from_secs(20)).await;
    client
}

/// A WebSocket URL of the app, with the operator token as `access_token` (browsers cannot set
/// headers on a WebSocket handshake, so the streams take it in the query).
fn websocket_url(app: &TestApp, path: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{}{path}{separator}access_token={}", app.address.replacen("http://", "ws://", 1), app.operator_token)
}

fn authorization(app: &TestApp) -> String {
    format!("Authorization: Bearer {}", app.operator_token)
}

/// The WebSocket client's handshake on a URL of the app with `Origin: origin`: `OPEN`, or
/// `REFUSED <status>`.
pub async fn websocket_handshake(app: &TestApp, path: &str, origin: &str) -> String {
    let url = websocket_url(app, path);
    let mut command = Command::new("python3");
    command.arg(client_script("ws_client.py")).arg(&url).arg("--seconds").arg("30").arg("--origin").arg(origin);
    let mut client = ClientProcess::spawn("the WebSocket client", command);
    client.wait_for_line(|l| l == "OPEN" || l.starts_with("REFUSED"), Duration::from_secs(20)).await
}

/// The status `curl -N` gets from an SSE URL of the app with `Origin: origin` (it gives up on
/// an accepted stream after a second: the status has come by then).
pub async fn sse_status(app: &TestApp, path: &str, origin: &str) -> String {
    let mut command = Command::new("curl");
    command.args(["-sS", "-N", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1", "-H", "Accept: text/event-stream"]);
    command.arg("-H").arg(format!("Origin: {origin}")).arg("-H").arg(authorization(app)).arg(app.url(path));
    let output = tokio::task::spawn_blocking(move || command.output()).await.expect("joined").expect("curl runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `curl -N` on an SSE URL of the app; returns once the stream is open.
pub async fn sse_client(app: &TestApp, path: &str, last_event_id: Option<i64>) -> SseClient {
    let mut command = Command::new("curl");
    command.args(["-sS", "-N", "-H", "Accept: text/event-stream"]);
    if let Some(id) = last_event_id {
        command.arg("-H").arg(format!("Last-Event-ID: {id}"));
    }
    command.arg("-H").arg(authorization(app)).arg(app.url(path));
    let mut process = ClientProcess::spawn("curl", command);
    process.wait_for_line(|l| l == ": stream open", Duration::from_secs(20)).await;
    SseClient { process, messages: Vec::new(), fields: Vec::new() }
}

/// One SSE message: its fields as received.
#[derive(Debug, Clone)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Vec<String>,
}

/// An SSE stream read through curl, parsed message by message.
pub struct SseClient {
    pub process: ClientProcess,
    /// The events received so far (the JSON of each `data:`), in order.
    pub messages: Vec<Value>,
    fields: Vec<(String, String)>,
}

impl SseClient {
    /// Read until `done` holds for the events received so far, or panic at the deadline.
    pub async fn read_until(&mut self, done: impl Fn(&[Value]) -> bool, within: Duration) {
        let deadline = Instant::now() + within;
        while !done(&self.messages) {
            let Some(line) = self.process.next_line(deadline).await else {
                panic!(
                    "SSE: condition not met within {within:?}; got {:#?}; stderr {}",
                    self.messages,
                    self.process.stderr()
                )
            };
            self.take_line(&line);
        }
    }

    fn take_line(&mut self, line: &str) {
        if line.is_empty() {
            let fields = std::mem::take(&mut self.fields);
            let field = |name: &str| fields.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            let message = SseMessage {
                id: field("id"),
                event: field("event"),
                data: fields.iter().filter(|(k, _)| k == "data").map(|(_, v)| v.clone()).collect(),
            };
            self.take_message(message);
            return;
        }
        if line.starts_with(':') {
            return; // a comment
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        self.fields.push((name.to_owned(), value.strip_prefix(' ').unwrap_or(value).to_owned()));
    }

    /// Every event is one `message` whose `id:` is the event's id; nothing else has an `id:`.
    fn take_message(&mut self, message: SseMessage) {
        if message.data.is_empty() {
            assert!(message.id.is_none(), "an SSE message without data carries an id: {message:?}");
            return;
        }
        assert_eq!(message.data.len(), 1, "one data line per event: {message:?}");
        assert_eq!(message.event, None, "events are of the default type `message`: {message:?}");
        let event: Value = serde_json::from_str(&message.data[0]).expect("SSE data is JSON");
        assert_eq!(message.id.as_deref(), Some(event["id"].to_string().as_str()), "id: equals the event id");
        self.messages.push(event);
    }

    pub fn last_id(&self) -> i64 {
        self.messages.last().and_then(|e| e["id"].as_i64()).unwrap_or(0)
    }
}

/// `(id, type)` of each event: what a stream and `GET …/events` must agree on.
pub fn ids_and_types(events: &[Value]) -> Vec<(i64, String)> {
    events
        .iter()
        .map(|e| (e["id"].as_i64().expect("an event id"), e["type"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// The events of one loan among a stream's.
pub fn of_loan(events: &[Value], loan_id: &str) -> Vec<Value> {
    events.iter().filter(|e| e["loan_id"] == loan_id).cloned().collect()
}

pub fn has_event(events: &[Value], loan_id: &str, kind: &str) -> bool {
    events.iter().any(|e| e["loan_id"] == loan_id && e["type"] == kind)
}

/// Every field of a streamed event, checked against the loan's history entry of the same id.
pub fn assert_same_as_history(streamed: &[Value], history: &[Value], loan_id: &str) {
    assert_eq!(ids_and_types(streamed), ids_and_types(history), "stream vs GET /api/v1/loans/{loan_id}/events");
    for (s, h) in streamed.iter().zip(history) {
        assert_eq!(s["at"], h["at"], "{s} vs {h}");
        assert_eq!(s["data"], h["data"], "{s} vs {h}");
        assert_eq!(s["loan_id"], loan_id);
        assert!(s["status"].is_string(), "{s}");
    }
}

/// Ids strictly increasing: the history's order, nothing twice.
pub fn assert_strictly_increasing(events: &[Value]) {
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids not strictly increasing: {ids:?}");
}

/// The whole global history, read from the test database directly.
pub async fn global_history(app: &TestApp) -> Vec<(i64, String)> {
    let url = app.db.url.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut conn = loanflow::inspect::Backend::from_url(&url).connect().expect("connecting to the test db");
        let rows = loanflow::inspect::events_after(&mut conn, 0, 1_000_000).expect("reading the history");
        rows.into_iter().map(|r| (r.id, r.event_type)).collect()
    })
    .await
    .expect("the history read")
}
