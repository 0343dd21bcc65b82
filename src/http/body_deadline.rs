//! A deadline on reading a request's body: `http.body_timeout_ms` from the end of its headers.
//! actix-web bounds the time to send the headers (`client_request_timeout`) but not the body,
//! so a client trickling one byte every few seconds would hold its connection for as long as
//! it liked. Past the deadline the body's stream ends with a timed-out error, which the handler
//! answers with 408 (and the connection is closed: see `ApiError::RequestTimeout`).

use std::io;
use std::time::Duration;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::HttpMessage;
use futures_util::StreamExt;

use super::edge;

/// Give the request's body (if it has one) until `timeout` from now to arrive in full. An
/// upgrade (a WebSocket) is left alone: what follows its headers is the stream, not a body.
pub fn limit(req: &mut ServiceRequest, timeout: Duration) {
    if !edge::has_body(req.headers()) || req.headers().contains_key(header::UPGRADE) {
        return;
    }
    let payload = req.take_payload();
    let deadline = tokio::time::Instant::now() + timeout;
    let timed = futures_util::stream::unfold(Some(payload), move |payload| async move {
        let mut payload = payload?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(payload))),
            Ok(None) => None,
            // One error, then the end: nothing more is read from this client.
            Err(_) => Some((Err(timed_out()), None)),
        }
    });
    req.set_payload(Payload::Stream { payload: Box::pin(timed) });
}

fn timed_out() -> PayloadError {
    PayloadError::Io(io::Error::new(io::ErrorKind::TimedOut, "the request body did not arrive in time"))
}

/// Whether a body's read failed on the deadline (rather than on its content).
pub fn is_timeout(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(io) if io.kind() == io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[actix_web::test]
    async fn a_body_that_stops_arriving_ends_with_a_timeout_and_a_complete_one_is_untouched() {
        let mut req = TestRequest::default().insert_header((header::CONTENT_LENGTH, "10")).to_srv_request();
        req.set_payload(Payload::Stream { payload: Box::pin(futures_util::stream::pending()) });
        limit(&mut req, Duration::from_millis(50));
        let mut payload = req.take_payload();
        let first = payload.next().await.expect("an item");
        assert!(first.as_ref().is_err_and(is_timeout), "{first:?}");
        assert!(payload.next().await.is_none(), "nothing after the timeout");

        let mut req = TestRequest::default().set_payload("{}").to_srv_request();
        limit(&mut req, Duration::from_secs(5));
        let body: Vec<_> = req.take_payload().collect().await;
        assert_eq!(body.into_iter().map(Result::unwrap).collect::<Vec<_>>(), vec![web_bytes("{}")]);
    }

    #[actix_web::test]
    async fn a_websocket_upgrade_and_a_request_without_a_body_keep_their_stream() {
        for req in [TestRequest::default().insert_header((header::UPGRADE, "websocket")), TestRequest::default()] {
            let mut req = req.to_srv_request();
            req.set_payload(Payload::Stream { payload: Box::pin(futures_util::stream::pending()) });
            limit(&mut req, Duration::from_millis(1));
            assert!(matches!(req.take_payload(), Payload::Stream { .. }), "left as it was");
        }
    }

    fn web_bytes(text: &'static str) -> actix_web::web::Bytes {
        actix_web::web::Bytes::from_static(text.as_bytes())
    }
}
