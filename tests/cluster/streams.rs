//! Live streams in a cluster: events written by several writers on two nodes reach a stream in
//! id order, each once, and a client that disconnects and resumes with `Last-Event-ID` (on the
//! other node) misses nothing; a broker outage delays events but loses none.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::broker::{self, Vhost};
use crate::database::{Db, TestDatabase};
use crate::loans::{client, submit_all, wait_all_finished};
use crate::process::Service;
use crate::{two_ready_nodes, BROKER, DEADLINE};

/// An SSE stream read with reqwest: each event's `(id, type)` in the order received.
struct Sse {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
    events: Vec<(i64, String)>,
}

impl Sse {
    async fn open(client: &reqwest::Client, node: &Service, last_event_id: Option<i64>) -> Sse {
        let mut request = client.get(node.url("/api/v1/events/stream")).timeout(Duration::from_secs(600));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("the stream opens");
        assert_eq!(response.status().as_u16(), 200);
        Sse {
            body: response.bytes_stream().map(|chunk| chunk.map(|b| b.to_vec())).boxed(),
            buffer: String::new(),
            events: Vec::new(),
        }
    }

    fn last_id(&self) -> i64 {
        self.events.last().map_or(0, |(id, _)| *id)
    }

    /// Read until `done` holds for the events received, or fail at the deadline.
    async fn read_until(&mut self, done: impl Fn(&[(i64, String)]) -> bool, node: &Service) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !done(&self.events) {
            let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, self.body.next()).await else {
                panic!("the stream stalled or ended after {} events:\n{}", self.events.len(), node.log_tail(20))
            };
            self.buffer.push_str(&String::from_utf8_lossy(&chunk.expect("stream bytes")));
            while let Some(end) = self.buffer.find('\n') {
                let line: String = self.buffer.drain(..=end).collect();
                let Some(data) = line.trim_end().strip_prefix("data:") else { continue };
                let event: Value = serde_json::from_str(data.trim()).expect("JSON event");
                if let (Some(id), Some(kind)) = (event["id"].as_i64(), event["type"].as_str()) {
                    self.events.push((id, kind.to_owned()));
                }
            }
        }
    }
}

fn assert_in_id_order(events: &[(i64, String)]) {
    let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids out of order or repeated: {ids:?}");
}

#[tokio::test]
async fn a_stream_resumed_on_another_node_sees_the_history_of_several_writers_in_order() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let writers = [("LOANFLOW__DATABASE__WRITERS", "3")];
    let (a, b) = two_ready_nodes(&database, &vhost, &client, &writers).await;

    let mut first = Sse::open(&client, &a, None).await;
    let mut ids = submit_all(&client, &[&a, &b], 0..60).await;
    first.read_until(|events| events.len() >= 120, &a).await;
    assert_in_id_order(&first.events);
    let resume_after = first.last_id();
    drop(first.body);
    let seen_before = first.events;

    ids.extend(submit_all(&client, &[&b, &a], 60..120).await);
    let mut second = Sse::open(&client, &b, Some(resume_after)).await;
    wait_all_finished(&client, &a, &ids, DEADLINE).await;
    let history = database.history();
    let newest = history.last().expect("events").0;
    second.read_until(|events| events.last().is_some_and(|(id, _)| *id >= newest), &b).await;
    assert_in_id_order(&second.events);

    let mut whole = seen_before;
    whole.extend(second.events);
    assert_eq!(whole, history, "before + after the resume = the database history, in order, each once");
}

#[tokio::test]
async fn a_stream_misses_nothing_while_the_broker_drops_its_connections() {
    let _shared = BROKER.read().await;
    let (database, vhost, client) = (TestDatabase::create(Db::Postgres), Vhost::create(), client());
    let (a, b) = two_ready_nodes(&database, &vhost, &client, &[]).await;

    // Node A writes nothing: every event reaches its stream from node B's commits.
    let mut stream = Sse::open(&client, &a, None).await;
    let name = vhost.name.clone();
    let outage = tokio::task::spawn_blocking(move || {
        for _ in 0..8 {
            broker::close_connections(&name);
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let ids = submit_all(&client, &[&b], 0..60).await;
    outage.await.expect("the outage task");
    wait_all_finished(&client, &b, &ids, DEADLINE).await;
    let history = database.history();
    let newest = history.last().expect("events").0;
    stream.read_until(|events| events.last().is_some_and(|(id, _)| *id >= newest), &a).await;
    assert_eq!(stream.events, history, "every committed event, in order, each once");
}
