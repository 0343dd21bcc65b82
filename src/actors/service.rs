//! The long-lived service actors (credit bureau, appraiser, notifier) share one shell: the
//! handler only starts a task, so a slow bureau never blocks the mailbox and many calls are in
//! flight at once; the task sends the reply uncommitted (the loan's unit consumes the request
//! when it applies the reply), or dead-letters a message it cannot handle.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::registry::ActorStats;
use super::supervision::{catch_panic, commit_until_done, dead_letter_unit};
use super::Services;
use crate::mailbox::{ActorKind, Deliver, Envelope};
use crate::persistence::{CommitOutcome, Consume};

/// What a service does with one message: its reply to the loan.
pub type Work = BoxFuture<'static, Result<Envelope, String>>;

pub trait Service: Unpin + Send + 'static {
    const KIND: ActorKind;
    /// Start handling a message. Errors are permanent: the message is dead-lettered.
    fn handle(&self, envelope: Envelope) -> Work;
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
        let work = match catch_panic(|| self.service.handle(envelope.clone())) {
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
        actix::spawn(run_work(work, envelope, services, stats).instrument(span));
    }
}

async fn run_work(work: Work, envelope: Envelope, services: Services, stats: Arc<ActorStats>) {
    match work.await {
        // Settled when the loan commits it (or on a redelivery, if this reply is lost).
        Ok(reply) => services.postman.deliver([reply]),
        Err(reason) => {
            tracing::error!(%reason, "message cannot be handled; dead-lettering it");
            let unit = dead_letter_unit(&envelope, Consume::Outbox(envelope.outbox_row()), &reason);
            match commit_until_done(services.db.writer(), unit).await {
                Ok(outcome) => {
                    if matches!(outcome, CommitOutcome::Committed { .. }) {
                        services.metrics.dead_lettered(envelope.destination);
                    }
                    services.postman.settled(envelope.message_id);
                }
                // Left in the outbox; the sweep delivers it again.
                Err(err) => tracing::error!(error = %err, "commit failed for good"),
            }
        }
    }
    stats.finished_one();
}
