//! `/health/live` (the server runs) and `/health/ready` (this node can take and process work).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::state::AppState;
use crate::settings::Mode;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live)).route("/health/ready", web::get().to(ready));
}

/// `GET /health/live`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "live")]
    status: &'static str,
}

/// `GET /health/ready`: one entry per dependency under `checks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `degraded`: the database is up but the broker is not (cluster mode).
    status: ReadinessStatus,
    node_id: String,
    mode: NodeMode,
    /// The work this node takes (`node.roles`); an embedded node runs every role.
    #[schema(example = json!(["api", "loans"]))]
    roles: Vec<&'static str>,
    checks: Checks,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum ReadinessStatus {
    Ready,
    Degraded,
    Unavailable,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Mode)]
enum NodeMode {
    Embedded,
    Cluster,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReadinessChecks)]
struct Checks {
    database: DatabaseCheck,
    actors: ActorsCheck,
    /// Cluster mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = BrokerCheck)]
    broker: Option<BrokerCheck>,
}

/// Down: it does not answer, or its commits fail (a full disk, a write lock held elsewhere).
/// Why is in the node's log, not here: anyone may ask (the error names hosts and databases).
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
enum DatabaseCheck {
    Up { backend: &'static str, latency_ms: f64 },
    Down { backend: &'static str },
}

#[derive(Debug, Serialize, ToSchema)]
struct ActorsCheck {
    /// Always `up`.
    #[schema(example = "up")]
    status: &'static str,
    /// Live actors by kind.
    live: BTreeMap<String, usize>,
    messages_in_flight: usize,
}

/// Down: the node takes submissions (the outbox keeps them) but cannot process them. Why is in
/// the node's log, not here.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
enum BrokerCheck {
    Up,
    Down,
}

/// The server runs.
#[utoipa::path(get, path = "/health/live", tag = "ops", responses((status = 200, description = "Live", body = Liveness)))]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "live" })
}

/// This node can take and process work: one check per dependency.
#[utoipa::path(get, path = "/health/ready", tag = "ops", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "A dependency is down", body = Readiness),
))]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let started = Instant::now();
    let backend = state.db.backend_name();
    // The ping is a read: it answers while writes fail, so failing commits count as down too.
    let database = match tokio::time::timeout(READY_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) if state.db.commits_failing() => {
            tracing::warn!(backend, "not ready: the database's commits are failing");
            DatabaseCheck::Down { backend }
        }
        Ok(Ok(())) => DatabaseCheck::Up { backend, latency_ms: started.elapsed().as_secs_f64() * 1000.0 },
        Ok(Err(err)) => {
            tracing::warn!(backend, error = %err, "not ready: the database does not answer");
            DatabaseCheck::Down { backend }
        }
        Err(_) => {
            tracing::warn!(backend, timeout = ?READY_TIMEOUT, "not ready: the database does not answer in time");
            DatabaseCheck::Down { backend }
        }
    };
    let database_up = matches!(database, DatabaseCheck::Up { .. });
    // Cluster mode: without the broker the node still takes submissions (the outbox keeps
    // them) but cannot process them: not ready, "degraded".
    let broker = state.postman.broker().map(|broker| match broker.is_connected() {
        true => BrokerCheck::Up,
        false => {
            tracing::warn!(error = broker.last_error().as_deref().unwrap_or("unknown"), "not ready: broker down");
            BrokerCheck::Down
        }
    });
    let broker_up = !matches!(broker, Some(BrokerCheck::Down));
    let live = state.registry.counts().into_iter().map(|(kind, n)| (kind.as_str().to_owned(), n)).collect();
    let body = Readiness {
        status: match (database_up, broker_up) {
            (true, true) => ReadinessStatus::Ready,
            (true, false) => ReadinessStatus::Degraded,
            _ => ReadinessStatus::Unavailable,
        },
        node_id: state.node_id.clone(),
        mode: match state.settings.mode {
            Mode::Embedded => NodeMode::Embedded,
            Mode::Cluster { .. } => NodeMode::Cluster,
        },
        roles: state.settings.node.roles.names(),
        checks: Checks {
            database,
            actors: ActorsCheck { status: "up", live, messages_in_flight: state.postman.in_flight() },
            broker,
        },
    };
    if database_up && broker_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn actors() -> ActorsCheck {
        ActorsCheck { status: "up", live: [("loan".to_owned(), 2)].into(), messages_in_flight: 3 }
    }

    #[test]
    fn readiness_names_every_check_and_never_a_dependency_error() {
        let body = Readiness {
            status: ReadinessStatus::Degraded,
            node_id: "n1".into(),
            mode: NodeMode::Cluster,
            roles: vec!["credit", "notifier"],
            checks: Checks {
                database: DatabaseCheck::Up { backend: "postgres", latency_ms: 1.5 },
                actors: actors(),
                broker: Some(BrokerCheck::Down),
            },
        };
        let expected = json!({
            "status": "degraded", "node_id": "n1", "mode": "cluster", "roles": ["credit", "notifier"],
            "checks": {
                "database": { "status": "up", "backend": "postgres", "latency_ms": 1.5 },
                "actors": { "status": "up", "live": { "loan": 2 }, "messages_in_flight": 3 },
                "broker": { "status": "down" },
            },
        });
        assert_eq!(serde_json::to_value(&body).unwrap(), expected);
    }

    #[test]
    fn readiness_without_a_broker_has_no_broker_check() {
        let body = Readiness {
            status: ReadinessStatus::Unavailable,
            node_id: "n1".into(),
            mode: NodeMode::Embedded,
            roles: vec!["api"],
            checks: Checks { database: DatabaseCheck::Down { backend: "sqlite" }, actors: actors(), broker: None },
        };
        let expected = json!({
            "status": "unavailable", "node_id": "n1", "mode": "embedded", "roles": ["api"],
            "checks": {
                "database": { "status": "down", "backend": "sqlite" },
                "actors": { "status": "up", "live": { "loan": 2 }, "messages_in_flight": 3 },
            },
        });
        assert_eq!(serde_json::to_value(&body).unwrap(), expected);
        assert_eq!(serde_json::to_value(BrokerCheck::Up).unwrap(), json!({ "status": "up" }));
    }
}
