//! Building the application from settings: database, actors, HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::actors::ActorSystem;
use crate::http::{self, AppState};
use crate::live::EventBus;
use crate::mailbox::broker::{Broker, BrokerContext};
use crate::persistence::Database;
use crate::settings::Settings;

pub struct Application {
    server: Server,
    address: SocketAddr,
    node_id: String,
    actors: ActorSystem,
}

impl Application {
    /// Open the database, start the actors, resume unfinished loans, bind the server.
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        // Resolve the id once (a generated one has a random part), so every part sees the same.
        let node_id = settings.node_id();
        settings.node.id = Some(node_id.clone());
        let settings = Arc::new(settings);
        let db_settings = settings.database.clone();
        let bus = EventBus::new();
        let writer_bus = bus.clone();
        let db = tokio::task::spawn_blocking(move || Database::open(&db_settings, writer_bus)).await??;
        let actors = ActorSystem::start(db.clone(), settings.clone());
        if settings.broker_url().is_some() {
            let broker = Broker::start(BrokerContext {
                settings: settings.clone(),
                node_id: node_id.clone(),
                postman: actors.services.postman.clone(),
                db: db.clone(),
                bus: bus.clone(),
                metrics: actors.services.metrics.clone(),
            });
            actors.services.postman.set_broker(broker.clone());
            bus.forward_to(move |event| broker.publish_event(event));
        }
        actors.resume_and_sweep().await?;

        let state = web::Data::new(AppState {
            db,
            postman: actors.services.postman.clone(),
            registry: actors.services.registry.clone(),
            settings: settings.clone(),
            node_id: node_id.clone(),
            bus,
            metrics: actors.services.metrics.clone(),
            rate_limiter: http::RateLimiter::new(settings.http.rate_limit_per_second),
        });
        if settings.broker_url().is_some() {
            http::admin::spawn_heartbeat(state.clone());
        }
        let workers = match settings.http.workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        };
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .wrap(from_fn(http::middleware::protect))
                .wrap(http::middleware::cors(&state.settings.http))
                .wrap(from_fn(http::middleware::observe))
                .app_data(state.clone())
                .app_data(http::query_config())
                .configure(http::configure)
        })
        .workers(workers)
        .shutdown_timeout(settings.actors.shutdown_timeout_ms.div_ceil(1000))
        .bind((settings.http.host.as_str(), settings.http.port))?;
        let address = *server.addrs().first().ok_or_else(|| anyhow::anyhow!("the server bound no address"))?;
        let server = server.run();
        Ok(Self { server, address, node_id, actors })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The live actors of this node.
    pub fn registry(&self) -> std::sync::Arc<crate::actors::Registry> {
        self.actors.services.registry.clone()
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Serve until the server stops (SIGINT/SIGTERM), then stop taking work, let what is in
    /// flight finish (or go back to the broker), and flush the outbox, within the bound.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        let bound = std::time::Duration::from_millis(self.actors.services.settings.actors.shutdown_timeout_ms);
        self.actors.shutdown(bound).await;
        Ok(())
    }
}
