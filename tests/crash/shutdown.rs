//! SIGTERM with live streams open: the node ends them at once (WebSocket close 1001, a final SSE
//! `reconnect` event), exits within `shutdown.grace_ms`, and leaves SQLite's database closed (no
//! `-wal` or `-shm` file), with the work it had in flight finished on the next start.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};

use crate::database::{Db, TestDatabase};
use crate::process::Service;
use crate::{get_json, operator_client, service_env, submit, TOKEN};

const GRACE: Duration = Duration::from_secs(3);
/// Beyond the grace, what a process needs to exit at all (the test runs on 2 busy cores).
const EXIT_SLACK: Duration = Duration::from_secs(2);

/// A client as a child process whose stdout lines arrive on a channel.
struct Client {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Client {
    fn spawn(mut command: Command) -> Client {
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        Client { child, lines, seen: Vec::new() }
    }

    /// Read lines until one satisfies `wanted`; fail at the deadline with what was seen.
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line within {within:?}; seen: {:?}", self.seen),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sse_client(service: &Service) -> Client {
    let mut curl = Command::new("curl");
    curl.args(["-sN", "-H", &format!("Authorization: Bearer {TOKEN}"), &service.url("/api/v1/events/stream")]);
    Client::spawn(curl)
}

fn websocket_client(service: &Service) -> Client {
    let script = format!("{}/tests/live/clients/ws_client.py", env!("CARGO_MANIFEST_DIR"));
    let url = format!("{}?access_token={TOKEN}", service.url("/ws").replacen("http://", "ws://", 1));
    let mut python = Command::new("python3");
    python.arg(script).arg(url).args(["--seconds", "60"]);
    Client::spawn(python)
}

#[tokio::test]
async fn sigterm_ends_open_streams_and_closes_the_database_within_the_grace() {
    let database = TestDatabase::create(Db::Sqlite);
    let mut env = service_env(&database);
    env.push(("LOANFLOW__SHUTDOWN__GRACE_MS", GRACE.as_millis().to_string()));
    let client = operator_client();
    let node = Service::start(&env);
    let mut streams = vec![sse_client(&node), sse_client(&node)];
    let mut socket = websocket_client(&node);
    for sse in &mut streams {
        sse.wait_for(|l| l == ": stream open", Duration::from_secs(20));
    }
    socket.wait_for(|l| l == "OPEN", Duration::from_secs(20));
    let loans: Vec<String> =
        stream::iter(0..20).map(|i| submit(&client, &node, i)).buffer_unordered(8).map(|(id, _)| id).collect().await;
    for sse in &mut streams {
        sse.wait_for(|l| l.starts_with("data:"), Duration::from_secs(20));
    }

    let took = node.terminate(GRACE + EXIT_SLACK);
    assert!(took <= GRACE + EXIT_SLACK, "{took:?}");
    let close = socket.wait_for(|l| l.starts_with("CLOSED"), Duration::from_secs(5));
    assert!(close.starts_with("CLOSED 1001 server shutting down; reconnect with ?after="), "{close}");
    for sse in &mut streams {
        sse.wait_for(|l| l == "event: reconnect", Duration::from_secs(5));
        let data = sse.wait_for(|l| l.starts_with("data:"), Duration::from_secs(5));
        assert!(data.contains(r#""reason":"server shutting down""#), "{data}");
    }
    for leftover in ["-wal", "-shm"] {
        let path = format!("{}{leftover}", database.url);
        assert!(!std::path::Path::new(&path).exists(), "{path} is still there after a clean exit");
    }

    // What was in flight is finished by the next start (the outbox kept it).
    let node = Service::start(&env);
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &loans {
        loop {
            let loan = get_json(&client, node.url(&format!("/api/v1/loans/{id}"))).await;
            if !loan["notified_at"].is_null() {
                break;
            }
            assert!(Instant::now() < deadline, "loan {id} never finished after the restart: {loan}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn sigterm_on_an_idle_node_stops_at_once_rather_than_at_the_end_of_the_grace() {
    let database = TestDatabase::create(Db::Sqlite);
    let mut env = service_env(&database);
    // A long grace: a node that waits it out (the stop never carried out) is told from one that
    // stops as soon as nothing runs by a wide margin.
    let grace = Duration::from_secs(60);
    env.push(("LOANFLOW__SHUTDOWN__GRACE_MS", grace.as_millis().to_string()));
    let node = Service::start(&env);
    let client = operator_client();
    let (id, _) = submit(&client, &node, 0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_json(&client, node.url(&format!("/api/v1/loans/{id}"))).await["notified_at"].is_null() {
        assert!(Instant::now() < deadline, "loan {id} never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No connection stays open: nothing is left for the graceful stop to wait for.
    drop(client);

    node.terminate(grace / 4);
}
