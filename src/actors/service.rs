//! The long-lived service actors (credit bureau, appraiser, notifier) share one shell: the
//! handler only starts a task, so a slow bureau never blocks the mailbox and many calls are in
//! flight at once; the task commits the result with the consumed message, then delivers the reply.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::registry::ActorStats;
use super::supervision::{catch_panic, commit_until_done, dead_letter_unit};
use super::Services;
use crate::mailbox::{ActorKind, Deliver, Envelope};
use crate::persistence::{CommitOutcome, Consume, UnitOfWork};

/// What a service does with one message: the unit to commit and the replies it emits.
pub type Work = BoxFuture<'static, Result<(UnitOfWork, Vec<Envelope>), String>>;

pub trait Service: Unpin + Send + 'static {
    const KIND: ActorKind;
    /// Start handling a message. Errors are permanent: the message is dead-lettered.
    fn handle(&self, envelope: Envelope, consume: Consume) -> Work;
}

pub struct ServiceActor<S: Service> {
    service: S,
    services: Services,
    stats: Arc<ActorStats>,
}

impl<S: Service> ServiceActor<S> {
    pub fn new(service: S, services: Services, stats: Arc<ActorStats>) -> Self {
        Self { service, services, stats }
    }
}

impl<S: Service> Actor for ServiceActor<S> {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        self.stats.set_state("running");
    }
}

impl<S: Service> Supervised for ServiceActor<S> {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.services.registry.record_restart(&self.stats);
    }
}

impl<S: Service> Handler<Deliver> for ServiceActor<S> {
    type Result = ();

    fn handle(&mut self, Deliver(envelope): Deliver, ctx: &mut Context<Self>) {
        let span = tracing::info_span!(
            "service_message",
            node = self.services.settings.node.id.as_deref().unwrap_or_default(),
            actor = S::KIND.as_str(),
            loan_id = %envelope.loan_id,
            message = envelope.body.label(),
            message_id = %envelope.message_id,
        );
        let consume = Consume::Outbox(envelope.message_id);
        let work = match catch_panic(|| self.service.handle(envelope.clone(), consume)) {
            Ok(work) => work,
            Err(panic) => {
                tracing::error!(parent: &span, %panic, "service actor panicked; restarting it");
                ctx.address().do_send(Deliver(envelope.retried()));
                ctx.stop();
                return;
            }
        };
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        let (services, stats) = (self.services.clone(), self.stats.clone());
        actix::spawn(run_work(work, envelope, consume, services, stats).instrument(span));
    }
}

async fn run_work(work: Work, envelope: Envelope, consume: Consume, services: Services, stats: Arc<ActorStats>) {
    let (unit, emits) = match work.await {
        Ok(done) => done,
        Err(reason) => {
            tracing::error!(%reason, "message cannot be handled; dead-lettering it");
            (dead_letter_unit(&envelope, consume, &reason), vec![])
        }
    };
    let dead_lettered = unit.dead_letter.is_some();
    match commit_until_done(services.db.writer(), unit).await {
        Ok(CommitOutcome::Committed { .. }) => {
            if dead_lettered {
                services.metrics.dead_lettered(envelope.destination);
            }
            services.postman.settled(envelope.message_id);
            services.postman.deliver(emits);
        }
        Ok(_) => services.postman.settled(envelope.message_id),
        // Left in the outbox; the sweep delivers it again.
        Err(err) => tracing::error!(error = %err, "commit failed for good"),
    }
    stats.finished_one();
}
