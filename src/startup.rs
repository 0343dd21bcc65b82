//! Building the application from settings: database, actors, HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::actors::{ActorSystem, AddressHandoff, Registry};
use crate::cluster;
use crate::domain::{hex, random_token, TokenKey};
use crate::http::{self, AppState};
use crate::mailbox::broker::{Broker, BrokerContext};
use crate::mailbox::Transport;
use crate::messages::EventBus;
use crate::persistence::{expire_idempotency_keys, secrets, Database};
use crate::settings::{threads_or_one_per_core, AllowedHosts, Mode, NodeRole, Role, Settings, StaffToken};
use crate::telemetry;
use crate::timers::{EscalationSweep, TimerComponent};

pub struct Application {
    server: Server,
    address: SocketAddr,
    node_id: String,
    actors: ActorSystem,
    db: Database,
    feed: http::LiveFeed,
    /// SIGTERM or SIGINT; listened for from the start, so one that comes early is not fatal.
    stop: Stop,
    /// The operator token made for this start, when none was configured (embedded mode).
    generated_operator_token: Option<String>,
}

impl Application {
    /// Open the database, start the actors (and, in a cluster, the broker), resume unfinished
    /// loans, bind the server.
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        // Resolve the id once (a generated one has a random part), so every part sees the same.
        let node_id = settings.node_id();
        settings.node.id = Some(node_id.clone());
        // Embedded mode without a configured operator token: one for this start (a cluster
        // refuses to start without one, in `Settings::load`).
        let generated_operator_token = match settings.admin_token() {
            Some(_) => None,
            None => Some(random_token()),
        };
        if let Some(token) = &generated_operator_token {
            settings.admin.token = Some(token.clone());
        }
        if let Some(token) = settings.admin_token() {
            // The operator's token is checked like any staff token.
            let operator = StaffToken::new("operator", Role::Operator, token);
            settings.admin.staff.push(operator);
        }
        let settings = Arc::new(settings);
        // The mode decides the transport once: in a cluster, messages and live events travel
        // through the broker; alone, they stay in process.
        let (transport, bus, broker_tasks) = match &settings.mode {
            Mode::Embedded => (Transport::InProcess, EventBus::local(), None),
            Mode::Cluster { broker_url } => {
                let (broker, tasks) = Broker::new(broker_url, &settings.broker);
                let fanout = broker.clone();
                let bus = EventBus::forwarding(move |event| fanout.publish_event(event));
                (Transport::Broker(broker.clone()), bus, Some((broker, tasks)))
            }
        };
        let db_settings = settings.database.clone();
        let writer_bus = bus.clone();
        let db = tokio::task::spawn_blocking(move || Database::open(&db_settings, writer_bus)).await??;
        let token_key = applicant_token_key(&db).await?;
        let actors = ActorSystem::start(db.clone(), settings.clone(), transport);
        let shared = &actors.shared;
        if let Some((broker, tasks)) = broker_tasks {
            tasks.start(BrokerContext {
                settings: settings.clone(),
                node_id: node_id.clone(),
                postman: shared.postman.clone(),
                db: db.clone(),
                bus: bus.clone(),
                metrics: shared.metrics.clone(),
                broker,
            });
            let roles = settings.node.roles.clone();
            cluster::spawn_heartbeat(db.clone(), shared.registry.clone(), node_id.clone(), roles);
        }
        actors.resume_and_sweep().await?;
        // Deadlines and reminders, fired once from the database (due ones at once after a stop),
        // on the nodes that run loans.
        if settings.node.roles.runs(NodeRole::Loans) {
            TimerComponent {
                db: db.clone(),
                postman: shared.postman.clone(),
                settings: settings.timers.clone(),
                metrics: shared.metrics.clone(),
            }
            .start();
            EscalationSweep { db: db.clone(), postman: shared.postman.clone(), settings: settings.human.clone() }
                .start();
        }
        spawn_idempotency_expiry(db.clone(), settings.http.idempotency_ttl());

        let feed = http::LiveFeed::start(db.clone(), &bus);
        let streams =
            web::Data::new(http::Streams { feed: feed.clone(), slots: http::StreamSlots::new(&settings.streams) });
        let state = web::Data::new(AppState {
            db: db.clone(),
            postman: shared.postman.clone(),
            registry: shared.registry.clone(),
            settings: settings.clone(),
            node_id: node_id.clone(),
            metrics: shared.metrics.clone(),
            addresses: shared.addresses.clone(),
            rate_limiter: http::RateLimiter::new(settings.http.rate_limit_per_second),
            token_key,
            jwt: http::JwtVerifier::new(&settings.jwt),
        });
        if settings.http.hosts == AllowedHosts::Any {
            tracing::warn!(
                bind = %settings.http.host,
                "every address is bound and http.allowed_hosts is empty: any Host header is answered; list the names this node serves"
            );
        }
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<http::LoggedRequest>::new())
                .wrap(from_fn(http::authorize))
                .wrap(from_fn(http::middleware::protect))
                .wrap(http::middleware::cors(&state.settings.http))
                .wrap(from_fn(http::middleware::guard))
                .wrap(from_fn(http::middleware::observe))
                .app_data(state.clone())
                .app_data(streams.clone())
                .app_data(http::query_config())
                .configure(match state.settings.node.roles.runs(NodeRole::Api) {
                    true => http::configure,
                    false => http::configure_operations,
                })
        })
        .workers(threads_or_one_per_core(settings.http.workers))
        .client_request_timeout(settings.http.header_timeout())
        // The whole shut-down is bounded in `run_until_stopped`; this only caps the HTTP part.
        .shutdown_timeout(settings.shutdown.grace().as_secs().max(1))
        .disable_signals()
        .bind((settings.http.host.as_str(), settings.http.port))?;
        let address = *server.addrs().first().ok_or_else(|| anyhow::anyhow!("the server bound no address"))?;
        let server = server.run();
        let stop = Stop::listen()?;
        Ok(Self { server, address, node_id, actors, db, feed, stop, generated_operator_token })
    }

    /// The operator token this start made because none was configured: shown once, outside the
    /// log, by whoever started the node (`main`), never written anywhere else.
    pub fn generated_operator_token(&self) -> Option<&str> {
        self.generated_operator_token.as_deref()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The live actors of this node.
    pub fn registry(&self) -> Arc<Registry> {
        self.actors.shared.registry.clone()
    }

    /// The applicants' addresses on their way from the loan actors to the notifier.
    pub fn addresses(&self) -> Arc<AddressHandoff> {
        self.actors.shared.addresses.clone()
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Serve until SIGTERM or SIGINT, then shut down within `shutdown.grace_ms` in all: stop
    /// accepting, end the live streams at once, let running requests and in-flight messages
    /// finish (or go back to the broker), flush the outbox, close the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self { server, actors, db, feed, mut stop, .. } = self;
        let handle = server.handle();
        let mut server = std::pin::pin!(server);
        tokio::select! {
            stopped = &mut server => stopped?,
            signal = stop.received() => tracing::info!(signal, "shutting down"),
        }
        let grace = actors.shared.settings.shutdown.grace();
        let deadline = tokio::time::Instant::now() + grace;
        // The last fifth of the grace is the database's, to close cleanly even when requests or
        // messages took the rest.
        let settled_by = deadline - grace / 5;
        feed.close();
        // The server's own future carries out the stop command, so it is polled alongside the
        // wait for the stop; awaited one after the other, the stop never started.
        let stopping = handle.stop(true);
        if tokio::time::timeout_at(settled_by, async {
            let ((), _) = tokio::join!(stopping, server.as_mut());
        })
        .await
        .is_err()
        {
            tracing::warn!("requests still running at the end of the grace were cut");
        }
        actors.shutdown(settled_by).await;
        // The spans of the last steps are exported beside the database's close.
        let spans = telemetry::shutdown(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let (closed, ()) = tokio::join!(tokio::time::timeout_at(deadline, db.close()), spans);
        if closed.is_err() {
            tracing::warn!("the database was not closed within the grace");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The signals that stop a node.
struct Stop {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Stop {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Forget expired idempotency keys, every hour (or every TTL, if shorter). Every node may run
/// it: deleting what another node deleted already is a no-op.
fn spawn_idempotency_expiry(db: Database, ttl: chrono::Duration) {
    let every = ttl.to_std().unwrap_or_default().clamp(Duration::from_secs(1), Duration::from_secs(3_600));
    actix::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let before = chrono::Utc::now().naive_utc() - ttl;
            match db.write_outside_units(move |c| Ok(expire_idempotency_keys(c, before)?)).await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(expired, "expired idempotency keys forgotten"),
                Err(err) => tracing::warn!(error = %err, "forgetting expired idempotency keys failed"),
            }
        }
    });
}

/// The key applicant tokens are derived with, shared by every node through the database.
async fn applicant_token_key(db: &Database) -> anyhow::Result<TokenKey> {
    let stored = db.write_outside_units(|c| secrets::load_or_create(c, "applicant_token_key", random_token)).await?;
    let bytes = hex::decode(&stored).ok_or_else(|| anyhow::anyhow!("the stored applicant token key is not hex"))?;
    TokenKey::new(bytes).map_err(|e| anyhow::anyhow!("the stored applicant token key: {e}"))
}
