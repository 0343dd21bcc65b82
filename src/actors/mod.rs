//! The actor system: one `LoanActor` per active loan, and long-lived service actors (credit
//! bureau, appraiser, notifier), each under an actix `Supervisor`. Supervision, ordering and
//! stopping are written down in `docs/runtime-semantics.md`.

mod bureaus;
mod directory;
mod loan;
mod plan;
mod registry;
mod service;
mod supervision;

use std::sync::Arc;
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle, Supervisor};

pub use bureaus::{Appraiser, CreditBureau, Notifier, NOTIFICATION_CHANNEL};
pub use directory::LoanDirectory;
pub use loan::LoanActor;
pub use plan::{plan_submission, ScheduleDocument, SCHEDULE_KIND};
pub use registry::{ActorSnapshot, ActorStats, Registry};
pub use service::{Service, ServiceActor};
pub use supervision::{backoff as supervision_backoff, dead_letter_unit};

use crate::mailbox::{ActorKind, Postman, Routes};
use crate::persistence::Database;
use crate::settings::Settings;

pub type CreditActor = ServiceActor<CreditBureau>;
pub type AppraisalActor = ServiceActor<Appraiser>;
pub type NotifierActor = ServiceActor<Notifier>;

/// What every actor needs: shared handles, cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub db: Database,
    pub postman: Postman,
    pub settings: Arc<Settings>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The started actors of this node.
pub struct ActorSystem {
    pub services: Services,
    pub directory: LoanDirectory,
    _arbiters: Vec<Arbiter>,
}

impl ActorSystem {
    /// Start the arbiters, the service actors and the loan directory, and connect the postman.
    pub fn start(db: Database, settings: Arc<Settings>) -> Self {
        let threads = match settings.actors.arbiters {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        };
        let arbiters: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
        let handles: Arc<Vec<ArbiterHandle>> = Arc::new(arbiters.iter().map(|a| a.handle()).collect());
        let services = Services {
            db,
            postman: Postman::new(),
            settings: settings.clone(),
            registry: Arc::new(Registry::default()),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        };
        let directory = LoanDirectory::new(services.clone(), handles.clone());
        let bureaus = settings.bureaus.clone();
        let credit = start_service(&services, &handles[0], CreditBureau { settings: bureaus.clone() });
        let appraisal = start_service(&services, &handles[1 % handles.len()], Appraiser { settings: bureaus });
        let notifier = start_service(&services, &handles[0], Notifier);
        let (loans, new_loans) = (directory.clone(), directory.clone());
        services.postman.set_routes(Routes {
            loans: Box::new(move |envelope| loans.deliver(envelope)),
            new_loan: Box::new(move |record| new_loans.activate_with(record)),
            credit: credit.recipient(),
            appraisal: appraisal.recipient(),
            notifier: notifier.recipient(),
        });
        Self { services, directory, _arbiters: arbiters }
    }

    /// Deliver what the outbox holds (resuming every unfinished loan), then keep sweeping for
    /// messages that were lost in memory.
    pub async fn resume_and_sweep(&self) -> anyhow::Result<()> {
        let actors = &self.services.settings.actors;
        let presumed_lost = Duration::from_millis(actors.redelivery_after_ms);
        let resumed = self.services.postman.sweep(&self.services.db, Duration::ZERO, presumed_lost).await?;
        tracing::info!(messages = resumed, "resumed unfinished work from the outbox");
        let (postman, db) = (self.services.postman.clone(), self.services.db.clone());
        let every = Duration::from_millis(actors.redelivery_sweep_ms.max(100));
        actix::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match postman.sweep(&db, every, presumed_lost).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(messages = n, "redelivered messages found undelivered in the outbox"),
                    Err(err) => tracing::warn!(error = %err, "outbox sweep failed"),
                }
            }
        });
        Ok(())
    }
}

impl ActorSystem {
    /// Graceful stop: no new deliveries, in-flight work finishes (or is requeued by the broker
    /// when the connection closes), unpublished outbox rows are published. Bounded by `bound`.
    pub async fn shutdown(&self, bound: Duration) {
        let deadline = tokio::time::Instant::now() + bound;
        let postman = &self.services.postman;
        if let Some(broker) = postman.broker() {
            broker.stop_consuming().await;
        }
        while postman.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if postman.broker().is_some() {
            let db = &self.services.db;
            while tokio::time::Instant::now() < deadline {
                match db.read(crate::persistence::queries::unpublished_count).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let _ = postman.sweep(db, Duration::ZERO, Duration::MAX).await;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        tracing::info!(in_flight = postman.in_flight(), "actors stopped");
    }
}

fn start_service<S: Service>(services: &Services, arbiter: &ArbiterHandle, service: S) -> actix::Addr<ServiceActor<S>> {
    let stats = ActorStats::new(S::KIND, format!("{}-0", S::KIND.as_str()));
    services.registry.register_service(stats.clone());
    let services = services.clone();
    debug_assert!(S::KIND != ActorKind::Loan);
    Supervisor::start_in_arbiter(arbiter, move |_| ServiceActor::new(service, services, stats))
}
