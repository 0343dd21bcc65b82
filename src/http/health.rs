//! `/health/live` (the server runs) and `/health/ready` (this node can take and process work).

use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live)).route("/health/ready", web::get().to(ready));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let started = Instant::now();
    let database = match tokio::time::timeout(READY_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => json!({
            "status": "up",
            "backend": state.db.backend_name(),
            "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
        }),
        Ok(Err(err)) => json!({ "status": "down", "backend": state.db.backend_name(), "error": err.to_string() }),
        Err(_) => json!({ "status": "down", "backend": state.db.backend_name(), "error": "timed out" }),
    };
    let up = database["status"] == "up";
    let live: serde_json::Map<String, serde_json::Value> =
        state.registry.counts().into_iter().map(|(kind, n)| (kind.as_str().to_owned(), n.into())).collect();
    let body = json!({
        "status": if up { "ready" } else { "unavailable" },
        "node_id": state.node_id,
        "mode": if state.settings.broker_url().is_some() { "cluster" } else { "embedded" },
        "checks": {
            "database": database,
            "actors": { "status": "up", "live": live, "messages_in_flight": state.postman.in_flight() },
        },
    });
    if up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
