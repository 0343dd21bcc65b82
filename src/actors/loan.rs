//! One actor per active loan: a thin shell around the saga. It loads the loan when activated,
//! feeds each delivered input to the saga, commits the transition (state, events, emitted
//! messages, and the consumed message) as one unit, and only then adopts the new state and
//! hands the emitted messages to the postman. It stops when idle; the next message re-activates it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tracing::Instrument;

use super::faults;
use super::plan::{plan_step, AfterCommit};
use super::registry::{ActorState, ActorStats};
use super::shared::SharedHandles;
use super::supervision::catch_panic;
use crate::domain::{LoanId, MessageId};
use crate::messages::{backoff, backoff_at_least_half, Deliver, Envelope, MessageBody};
use crate::persistence::{queries, CommitOutcome, LoanRecord, StoreError, UnitOfWork};
use crate::telemetry;

/// What the actor knows of its loan. Nearly every actor holds it, so it stays inline.
#[allow(clippy::large_enum_variant)]
enum Known {
    /// Not read yet (or the read failed: the database was away): read it before handling.
    Unread,
    Loaded(LoanRecord),
    /// The loan does not exist (or cannot be read): every message for it is dead-lettered.
    Missing,
}

pub struct LoanActor {
    id: LoanId,
    generation: u64,
    stats: Arc<ActorStats>,
    shared: SharedHandles,
    loan: Known,
    idle_timer: Option<SpawnHandle>,
    /// Messages that met the database away, and how many times in a row: their next try waits
    /// longer each time (a message's `attempt` counts only its own failures).
    database_waits: HashMap<MessageId, u32>,
}

impl LoanActor {
    pub(crate) fn new(
        id: LoanId,
        generation: u64,
        stats: Arc<ActorStats>,
        shared: SharedHandles,
        preload: Option<LoanRecord>,
    ) -> Self {
        let loan = preload.map_or(Known::Unread, Known::Loaded);
        Self { id, generation, stats, shared, loan, idle_timer: None, database_waits: HashMap::new() }
    }

    fn load(&mut self, ctx: &mut Context<Self>) {
        let db = self.shared.db.clone();
        let id = self.id;
        let span = tracing::info_span!("loan_load", loan_id = %id);
        ctx.wait(async move { db.read(move |c| queries::loan(c, id)).await }.instrument(span).into_actor(self).map(
            |result, act, _ctx| match result {
                Ok(Some(row)) => match LoanRecord::from_row(row) {
                    Ok(record) => act.adopt(record),
                    Err(err) => {
                        tracing::error!(error = %err, "loan unreadable");
                        act.loan = Known::Missing;
                    }
                },
                Ok(None) => act.loan = Known::Missing,
                // The database's fault is logged once per episode (`persistence::faults`).
                Err(err) => tracing::debug!(loan_id = %act.id, error = %err, "loading the loan failed; will retry"),
            },
        ));
    }

    fn adopt(&mut self, record: LoanRecord) {
        self.stats.set_state(ActorState::Holding(record.saga.status));
        self.loan = Known::Loaded(record);
    }

    /// Hand the message back to ourselves later (the mailbox survives a restart).
    fn redeliver_later(&self, envelope: Envelope, ctx: &mut Context<Self>) {
        let wait = backoff(envelope.attempt, Duration::from_millis(50), Duration::from_secs(5));
        Self::send_after(wait, envelope, ctx);
    }

    /// The database is away: try the message again after a wait that grows with each time in a
    /// row, never shorter than half its step, so a long fault costs each message a bounded
    /// number of tries (one per ~2.5 s at the cap).
    fn retry_when_database_back(&mut self, envelope: Envelope, ctx: &mut Context<Self>) {
        let waits = self.database_waits.entry(envelope.message_id).or_insert(0);
        *waits += 1;
        let wait = backoff_at_least_half(*waits, Duration::from_millis(50), Duration::from_secs(5));
        self.shared.metrics.database_retry();
        Self::send_after(wait, envelope, ctx);
    }

    fn send_after(wait: Duration, envelope: Envelope, ctx: &mut Context<Self>) {
        let addr = ctx.address();
        actix::spawn(async move {
            tokio::time::sleep(wait).await;
            addr.do_send(Deliver(envelope));
        });
    }

    /// Done with a message: settle it and, if nothing else waits, think about stopping.
    fn finish(&mut self, envelope: &Envelope, ctx: &mut Context<Self>) {
        self.database_waits.remove(&envelope.message_id);
        self.shared.postman.finished(envelope);
        self.stats.finished_one();
        self.arm_idle_timer(ctx);
    }

    fn arm_idle_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.idle_timer.take() {
            ctx.cancel_future(handle);
        }
        let idle = Duration::from_millis(self.shared.settings.actors.idle_timeout_ms);
        self.idle_timer = Some(ctx.run_later(idle, |act, ctx| {
            act.idle_timer = None;
            if act.shared.registry.try_passivate(act.id, act.generation) {
                ctx.stop();
            } else {
                act.arm_idle_timer(ctx);
            }
        }));
    }

    fn give_up(&mut self, envelope: Envelope, reason: String, ctx: &mut Context<Self>) {
        tracing::error!(loan_id = %self.id, message_id = %envelope.message_id, %reason, "dead-lettering message");
        let unit = UnitOfWork::dead_letter(&envelope, &reason);
        let writer = self.shared.db.writer().clone();
        ctx.wait(async move { writer.commit(unit).await }.into_actor(self).map(move |result, act, ctx| match result {
            Ok(outcome) => {
                if matches!(outcome, CommitOutcome::Committed { .. }) {
                    act.shared.metrics.dead_lettered(envelope.destination.as_str());
                }
                act.finish(&envelope, ctx)
            }
            Err(err) if err.is_transient() => {
                tracing::debug!(error = %err, "dead-lettering failed; will retry");
                act.retry_when_database_back(envelope, ctx);
            }
            Err(err) => {
                tracing::warn!(error = %err, "dead-lettering failed; will retry");
                act.redeliver_later(envelope, ctx);
            }
        }));
    }

    fn after_commit(
        &mut self,
        envelope: Envelope,
        plan: AfterCommit,
        result: Result<CommitOutcome, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        match result {
            Ok(CommitOutcome::Committed { .. }) => {
                if plan.applied {
                    self.shared.addresses.after_commit(&plan.record, &plan.emits);
                    self.shared.metrics.observe_loan_commit(
                        envelope.message_id,
                        envelope.causation_id(),
                        &plan.events,
                        plan.record.submitted_at,
                    );
                    if let Known::Loaded(before) = &self.loan {
                        if let Some((step, since)) = before.left_step(&plan.record) {
                            self.shared.metrics.left_step(step, since);
                        }
                    }
                    self.adopt(plan.record);
                }
                self.finish(&envelope, ctx);
                self.shared.postman.deliver(plan.emits);
            }
            Ok(CommitOutcome::Duplicate) => {
                // Handled before (a redelivery): our state may be behind; reload it.
                self.finish(&envelope, ctx);
                self.load(ctx);
            }
            Ok(CommitOutcome::Conflict | CommitOutcome::IdempotentReplay { .. }) => {
                // Someone else changed the loan: reload, then handle the message again.
                self.load(ctx);
                ctx.address().do_send(Deliver(envelope));
            }
            Err(err) if err.is_transient() => {
                // The database's fault is logged once per episode (`persistence::faults`).
                tracing::debug!(loan_id = %self.id, error = %err, "commit failed; retrying");
                self.retry_when_database_back(envelope, ctx);
            }
            Err(err) => self.failed_attempt(envelope, err.to_string(), ctx),
        }
    }

    /// A handler failure that is not the database being away: count it against the message.
    fn failed_attempt(&mut self, envelope: Envelope, reason: String, ctx: &mut Context<Self>) {
        if envelope.attempt >= self.shared.settings.actors.max_message_attempts {
            self.give_up(envelope, reason, ctx);
        } else {
            self.redeliver_later(envelope.retried(), ctx);
        }
    }
}

impl Actor for LoanActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Known::Unread = self.loan {
            self.load(ctx);
        }
        self.arm_idle_timer(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        tracing::trace!(loan_id = %self.id, "loan actor stopped");
    }
}

impl Supervised for LoanActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // Forget everything in memory: `started` reloads the committed state.
        self.loan = Known::Unread;
        self.idle_timer = None;
        self.shared.registry.record_restart(&self.stats);
        self.stats.set_state(ActorState::Restarting);
    }
}

impl Handler<Deliver> for LoanActor {
    type Result = ();

    fn handle(&mut self, Deliver(envelope): Deliver, ctx: &mut Context<Self>) {
        let span = tracing::info_span!(
            "loan_message",
            otel.name = %format_args!("loan {}", envelope.body.label()),
            node = self.shared.settings.node.id.as_deref().unwrap_or_default(),
            loan.id = %self.id,
            message = envelope.body.label(),
            message_id = %envelope.message_id,
            attempt = envelope.attempt,
            trace_id = tracing::field::Empty,
        );
        telemetry::continue_trace(&span, envelope.trace.as_ref());
        let _entered = span.enter();
        let MessageBody::Saga(input) = &envelope.body else {
            self.give_up(envelope.clone(), "not a message for a loan actor".into(), ctx);
            return;
        };
        let record = match &self.loan {
            Known::Loaded(record) => record,
            Known::Missing => {
                self.give_up(envelope.clone(), "no such loan".into(), ctx);
                return;
            }
            Known::Unread => {
                // The load failed (database away): try again shortly.
                self.load(ctx);
                self.retry_when_database_back(envelope, ctx);
                return;
            }
        };
        let planned = catch_panic(|| {
            faults::before_loan_step(&self.shared.settings, record);
            plan_step(record, &envelope, input, telemetry::traceparent_of(&span))
        });
        let (unit, plan) = match planned {
            Ok(planned) => planned,
            Err(panic) => {
                tracing::error!(%panic, "loan actor panicked; restarting it");
                if envelope.attempt >= self.shared.settings.actors.max_message_attempts {
                    self.give_up(envelope, format!("handler panicked: {panic}"), ctx);
                } else {
                    // Back into the mailbox, which outlives the restart.
                    ctx.address().do_send(Deliver(envelope.retried()));
                    ctx.stop();
                }
                return;
            }
        };
        let writer = self.shared.db.writer().clone();
        ctx.wait(
            async move { writer.commit(unit).await }
                .instrument(span.clone())
                .into_actor(self)
                .map(move |result, act, ctx| act.after_commit(envelope, plan, result, ctx)),
        );
    }
}
