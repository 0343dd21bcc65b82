//! Starting and stopping the actors of a node: the arbiters, the service actors under their
//! supervisors, the loan directory, and the postman's routes to them.

use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Arbiter, ArbiterHandle, Supervisor};

use super::bureaus::{Appraiser, CreditBureau, Notifier};
use super::directory::LoanDirectory;
use super::handoff::AddressHandoff;
use super::mail::MailProvider;
use super::registry::{ActorStats, Registry};
use super::service::{Service, ServiceActor};

use super::shared::SharedHandles;
use crate::mailbox::{PostOffice, Routes, ServiceRoute, Transport};
use crate::messages::ActorKind;
use crate::metrics::{ActorGaugeSource, ActorGauges, Metrics};
use crate::persistence::{Database, LoanRecord};
use crate::settings::{threads_or_one_per_core, Settings};

/// The started actors of this node.
pub struct ActorSystem {
    pub shared: SharedHandles,
    /// Owns the postman's routes, so the actors: dropping the system ends them.
    _post_office: PostOffice,
    _arbiters: Vec<Arbiter>,
}

impl ActorSystem {
    /// Start the arbiters, the service actors and the loan directory, with a postman sending
    /// through `transport`.
    pub fn start(db: Database, settings: Arc<Settings>, transport: Transport) -> Self {
        let threads = threads_or_one_per_core(settings.actors.arbiters);
        let arbiters: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
        let handles: Arc<Vec<ArbiterHandle>> = Arc::new(arbiters.iter().map(|a| a.handle()).collect());
        let registry = Arc::new(Registry::default());
        let metrics = Arc::new(Metrics::new(&ActorKind::ALL.map(ActorKind::as_str)));
        let mut started = None;
        let post_office = PostOffice::open(transport, |postman| {
            let addresses = Arc::new(AddressHandoff::new());
            let shared = SharedHandles { db, postman, settings: settings.clone(), registry, metrics, addresses };
            let directory = LoanDirectory::new(shared.clone(), handles.clone());
            let roles = &settings.node.roles;
            let runs = |kind: ActorKind| roles.runs(kind.role());
            let bureaus = settings.bureaus.clone();
            let credit = runs(ActorKind::Credit).then(|| {
                service_route(start_service(&shared, &handles[0], CreditBureau { settings: bureaus.clone() }))
            });
            let appraisal = runs(ActorKind::Appraisal).then(|| {
                service_route(start_service(&shared, &handles[1 % handles.len()], Appraiser { settings: bureaus }))
            });
            let notifier = runs(ActorKind::Notifier).then(|| {
                let provider = MailProvider::new(shared.metrics.clone());
                service_route(start_service(&shared, &handles[0], Notifier { provider }))
            });
            started = Some(shared);
            let new_loans = directory.clone();
            // A node without the `loans` role takes submissions but runs no loan actor: the
            // first replies go to a node that does, which reads the loan.
            let new_loan: Box<dyn Fn(LoanRecord) + Send + Sync> = match runs(ActorKind::Loan) {
                true => Box::new(move |record| new_loans.activate_with(record)),
                false => Box::new(|_| {}),
            };
            Routes {
                loans: Box::new(move |envelope| directory.deliver(envelope)),
                new_loan,
                credit,
                appraisal,
                notifier,
            }
        });
        let shared = started.expect("the post office starts the actors");
        shared.metrics.read_actor_gauges_from(actor_gauges(&shared));
        Self { shared, _post_office: post_office, _arbiters: arbiters }
    }

    /// Deliver what the outbox holds (resuming every unfinished loan), then keep sweeping for
    /// messages that were lost in memory. Only on a node whose roles commit outbox rows (see
    /// `NodeRoles::sweeps_outbox`): a service node leaves it to them.
    pub async fn resume_and_sweep(&self) -> anyhow::Result<()> {
        if !self.shared.settings.node.roles.sweeps_outbox() {
            tracing::info!(roles = %self.shared.settings.node.roles, "no outbox sweep on this node: its roles commit no rows");
            return Ok(());
        }
        let actors = &self.shared.settings.actors;
        let presumed_lost = Duration::from_millis(actors.redelivery_after_ms);
        let resumed = self.shared.postman.sweep(&self.shared.db, Duration::ZERO, presumed_lost).await?;
        tracing::info!(messages = resumed, "resumed unfinished work from the outbox");
        let (postman, db) = (self.shared.postman.clone(), self.shared.db.clone());
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
    /// when the connection closes), unpublished outbox rows are published. Over by `deadline`.
    pub async fn shutdown(&self, deadline: tokio::time::Instant) {
        let postman = &self.shared.postman;
        postman.stop_taking_work().await;
        while postman.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        postman.flush_outbox(&self.shared.db, deadline).await;
        tracing::info!(in_flight = postman.in_flight(), "actors stopped");
    }
}

/// The actors' gauges for the metrics, read at each scrape. Weak: the metrics outlive nothing.
fn actor_gauges(shared: &SharedHandles) -> ActorGaugeSource {
    let registry = Arc::downgrade(&shared.registry);
    let postman = shared.postman.clone();
    Box::new(move || {
        let Some(registry) = registry.upgrade() else { return ActorGauges::default() };
        let mut depth: Vec<(&'static str, usize)> = ActorKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
        for actor in registry.snapshot() {
            if let Some((_, n)) = depth.iter_mut().find(|(kind, _)| *kind == actor.kind.as_str()) {
                *n += actor.mailbox_depth;
            }
        }
        ActorGauges {
            live: registry.counts().into_iter().map(|(kind, n)| (kind.as_str(), n)).collect(),
            mailbox_depth: depth,
            restarts_total: registry.restarts_total(),
            messages_in_flight: postman.in_flight(),
        }
    })
}

fn service_route<S: Service>(actor: Addr<ServiceActor<S>>) -> ServiceRoute {
    ServiceRoute { deliver: actor.clone().recipient(), probe: actor.recipient() }
}

fn start_service<S: Service>(
    shared: &SharedHandles,
    arbiter: &ArbiterHandle,
    service: S,
) -> actix::Addr<ServiceActor<S>> {
    let stats = ActorStats::new(S::KIND, format!("{}-0", S::KIND.as_str()));
    shared.registry.register_service(stats.clone());
    let shared = shared.clone();
    debug_assert!(S::KIND != ActorKind::Loan);
    Supervisor::start_in_arbiter(arbiter, move |_| ServiceActor::new(service, shared, stats))
}
