//! `/health/live` (the server runs) and `/health/ready` (this node can take and process work).

use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::openapi::{Liveness, Readiness};
use super::state::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live)).route("/health/ready", web::get().to(ready));
}

/// The server runs.
#[utoipa::path(get, path = "/health/live", tag = "ops", responses((status = 200, description = "Live", body = Liveness)))]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

/// This node can take and process work: one check per dependency.
#[utoipa::path(get, path = "/health/ready", tag = "ops", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "A dependency is down", body = Readiness),
))]
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
    let database_up = database["status"] == "up";
    // Cluster mode: without the broker the node still takes submissions (the outbox keeps
    // them) but cannot process them: not ready, "degraded".
    let broker = state.postman.broker().map(|broker| match broker.is_connected() {
        true => json!({ "status": "up" }),
        false => json!({ "status": "down", "error": broker.last_error() }),
    });
    let broker_up = broker.as_ref().is_none_or(|b| b["status"] == "up");
    let up = database_up && broker_up;
    let live: serde_json::Map<String, serde_json::Value> =
        state.registry.counts().into_iter().map(|(kind, n)| (kind.as_str().to_owned(), n.into())).collect();
    let body = json!({
        "status": match (database_up, broker_up) {
            (true, true) => "ready",
            (true, false) => "degraded",
            _ => "unavailable",
        },
        "node_id": state.node_id,
        "mode": state.settings.mode.name(),
        "checks": {
            "database": database,
            "actors": { "status": "up", "live": live, "messages_in_flight": state.postman.in_flight() },
        },
    });
    let mut body = body;
    if let Some(broker) = broker {
        body["checks"]["broker"] = broker;
    }
    if up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
