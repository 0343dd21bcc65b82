//! Slow clients: headers or a body trickled a byte at a time get 408 and a closed connection
//! once `http.header_timeout_ms` or `http.body_timeout_ms` has passed, instead of holding the
//! connection (and the worker's attention) for as long as the client likes.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::{spawn_app_with, Db, TestApp};

/// The pace of the trickle: one byte per step.
const STEP: Duration = Duration::from_millis(200);
/// Far longer than the timeouts the tests set: a connection still open then was never cut.
const DEADLINE: Duration = Duration::from_secs(20);

/// What became of a trickling connection.
#[derive(Debug)]
enum Trickle {
    /// The server closed it, after sending this.
    Closed(String),
    /// Still open at the deadline, with this received.
    StillOpen(String),
}

/// Send `head`, then one byte of `filler` per step, reading what comes back, until the server
/// closes the connection or the deadline passes.
fn trickle(address: &str, head: &str, filler: u8) -> Trickle {
    let mut stream = TcpStream::connect(address).expect("connecting");
    stream.set_read_timeout(Some(STEP)).expect("a read timeout");
    stream.write_all(head.as_bytes()).expect("sending the head");
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < DEADLINE {
        match stream.read(&mut buffer) {
            Ok(0) => return Trickle::Closed(String::from_utf8_lossy(&received).into_owned()),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Trickle::Closed(String::from_utf8_lossy(&received).into_owned()),
        }
        // The server may have closed its side already: the next read tells.
        let _ = stream.write_all(&[filler]);
    }
    Trickle::StillOpen(String::from_utf8_lossy(&received).into_owned())
}

async fn slow_app() -> TestApp {
    spawn_app_with(Db::Sqlite, |s| {
        s.http.header_timeout_ms = 1_000;
        s.http.body_timeout_ms = 1_000;
    })
    .await
}

fn socket_address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

fn assert_timed_out(outcome: Trickle) {
    match outcome {
        Trickle::Closed(response) => {
            assert!(response.starts_with("HTTP/1.1 408"), "closed without a 408: {response:?}")
        }
        Trickle::StillOpen(received) => panic!("still open after {DEADLINE:?}; received {received:?}"),
    }
}

#[actix_web::test]
async fn a_body_trickled_a_byte_at_a_time_gets_408_and_the_connection_closed() {
    let app = slow_app().await;
    let before = app.db.counts();
    let head = "POST /api/v1/loans HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Content-Length: 60000\r\n\r\n{";
    let address = socket_address(&app);
    let outcome = tokio::task::spawn_blocking(move || trickle(&address, head, b' ')).await.unwrap();
    assert_timed_out(outcome);
    assert_eq!(app.db.counts(), before, "nothing stored");
    let live = app.client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200, "the server still answers");
}

#[actix_web::test]
async fn headers_trickled_a_byte_at_a_time_get_408_and_the_connection_closed() {
    let app = slow_app().await;
    let head = "GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let address = socket_address(&app);
    let outcome = tokio::task::spawn_blocking(move || trickle(&address, head, b'a')).await.unwrap();
    assert_timed_out(outcome);
}
