//! Live updates end to end, with real clients as child processes: Python `websockets` on the
//! WebSocket routes, `curl -N` on the SSE routes, and headless `chromium` on the dashboard
//! (`.ci/run` installs them when missing). Each test runs the real application on port 0 with its
//! own database.

#[path = "../common/database.rs"]
mod database;
#[path = "../api/helpers.rs"]
mod helpers;

mod applicant_page;
mod dashboard;
mod origins;
mod sse;
mod support;
mod websocket;
mod work_queue;
