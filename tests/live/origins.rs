//! The streams refuse pages of other origins: a WebSocket handshake (Python `websockets`) and an
//! SSE request (`curl`) with a foreign `Origin` get 403; the server's own origin and no `Origin`
//! at all (a non-browser client) are served.

use crate::helpers::{spawn_app, spawn_app_with, Db};
use crate::support::{sse_status, websocket_client, websocket_handshake};

#[actix_web::test]
async fn a_websocket_from_a_foreign_origin_is_refused_the_own_origin_is_served() {
    let app = spawn_app(Db::Sqlite).await;
    assert_eq!(websocket_handshake(&app, "/ws", "https://evil.example").await, "REFUSED 403");
    assert_eq!(websocket_handshake(&app, "/ws", &app.address).await, "OPEN");
    // Without an Origin (not a browser): served.
    websocket_client(&app, "/ws").await;

    let listed = spawn_app_with(Db::Sqlite, |s| s.http.allowed_origins = vec!["https://app.example".into()]).await;
    assert_eq!(websocket_handshake(&listed, "/ws", "https://app.example").await, "OPEN");
    assert_eq!(websocket_handshake(&listed, "/ws", "https://evil.example").await, "REFUSED 403");
}

#[actix_web::test]
async fn an_sse_stream_from_a_foreign_origin_is_refused_the_own_origin_is_served() {
    let app = spawn_app(Db::Sqlite).await;
    assert_eq!(sse_status(&app, "/api/v1/events/stream", "https://evil.example").await, "403");
    assert_eq!(sse_status(&app, "/api/v1/events/stream", &app.address).await, "200");
}
