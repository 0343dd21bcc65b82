//! The long-lived service actors (credit bureau, appraiser, notifier) share one shell. A call to
//! the (simulated) outside world waits its latency in a timer queue owned by the actor, not in
//! a task or a sleeping handler: the mailbox never blocks, any number of calls are in flight
//! at once, and each costs one queue entry (~0.3 KiB) rather than a task with its own futures
//! and span (~4 KiB: 100,000 loans in flight must fit in 300 MiB). A call's reply goes to the
//! loan uncommitted (the loan's unit consumes the request when it applies the reply); a message
//! the service cannot handle is dead-lettered; a call that panics is tried again after a
//! backoff, its attempts counted in the request's outbox row, and dead-lettered at the limit.

use std::cmp::Ordering as Order;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::faults;
use super::registry::{ActorState, ActorStats};
use super::shared::SharedHandles;
use super::supervision::{catch_panic, commit_until_done};
use crate::messages::{backoff, ActorKind, Deliver, Envelope, MessageBody, Probe};
use crate::persistence::{erasure, queries, CommitOutcome, StoreError, UnitOfWork};
use crate::telemetry;

/// How soon to look again when due calls wait for the loans to catch up with replies.
const THROTTLED_RETRY: Duration = Duration::from_millis(5);
/// How soon to try again when the recipient could not be read (the database is unavailable).
const RECIPIENT_RETRY: Duration = Duration::from_secs(1);

/// Whom a call is for, handed over in memory or read from the loan's row when the call is made:
/// no message carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Address(String),
    /// The loan's personal data was erased (it was notified before): there is no one to send to.
    Erased,
    /// No such loan.
    NoLoan,
}

/// The recipient of a loan whose stored (or handed-over) address is `found`.
fn recipient_of(found: Option<String>) -> Recipient {
    match found {
        None => Recipient::NoLoan,
        Some(email) if erasure::is_erased(&email) => Recipient::Erased,
        Some(email) => Recipient::Address(email),
    }
}

/// What one attempt at a call came to.
#[derive(Debug)]
pub enum Attempt {
    /// The answer, for the loan.
    Reply(Envelope),
    /// A transient failure: try again after this backoff (plus the latency again).
    RetryAfter(Duration),
    /// The message cannot be handled at all.
    DeadLetter(String),
}

pub trait Service: Unpin + Send + 'static {
    const KIND: ActorKind;
    /// How long the outside world takes to answer this message (zero: answered at once).
    fn latency(&self, body: &MessageBody) -> Duration;
    /// Attempt `attempt` (from 1) at the call, once its latency has passed.
    fn attempt(&self, envelope: &Envelope, attempt: u32) -> Attempt;
    /// Whether the call needs its [`Recipient`], read from the loan's row when it is due.
    fn reads_recipient(&self, _body: &MessageBody) -> bool {
        false
    }
    /// [`Service::attempt`] for a call that reads its recipient.
    fn attempt_for(&self, envelope: &Envelope, attempt: u32, _recipient: &Recipient) -> Attempt {
        self.attempt(envelope, attempt)
    }
}

/// A call waiting for its latency (or backoff) to pass. Ordered by due time, earliest first.
struct Waiting {
    due: Instant,
    seq: u64,
    attempt: u32,
    envelope: Envelope,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<Order> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest call must come out first.
    fn cmp(&self, other: &Self) -> Order {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

pub struct ServiceActor<S: Service> {
    service: S,
    shared: SharedHandles,
    stats: Arc<ActorStats>,
    waiting: BinaryHeap<Waiting>,
    next_seq: u64,
    /// The timer armed for the earliest waiting call.
    wake: Option<(Instant, SpawnHandle)>,
    /// Calls whose recipient is being read (by a sequence number: the same message may be
    /// delivered twice): a restart drops the reads (they run in the old context), so these go
    /// back to `waiting`.
    reading: HashMap<u64, (Envelope, u32)>,
}

impl<S: Service> ServiceActor<S> {
    pub fn new(service: S, shared: SharedHandles, stats: Arc<ActorStats>) -> Self {
        Self { service, shared, stats, waiting: BinaryHeap::new(), next_seq: 0, wake: None, reading: HashMap::new() }
    }

    fn wait(&mut self, envelope: Envelope, attempt: u32, delay: Duration, ctx: &mut Context<Self>) {
        self.next_seq += 1;
        let due = Instant::now() + delay;
        self.waiting.push(Waiting { due, seq: self.next_seq, attempt, envelope });
        self.arm(ctx);
    }

    /// Make sure a timer fires when the earliest call is due.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let Some(first) = self.waiting.peek().map(|w| w.due) else { return };
        if let Some((at, handle)) = self.wake {
            if at <= first {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(first.saturating_duration_since(Instant::now()), |act, ctx| {
            act.wake = None;
            act.fire(ctx);
        });
        self.wake = Some((first, handle));
    }

    /// Attempt every call that is due, as far as the loans keep up with the replies.
    fn fire(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while self.waiting.peek().is_some_and(|w| w.due <= now) {
            if !self.shared.postman.has_reply_capacity() {
                // The loans are behind: the rest stay here, compact, until they catch up.
                let handle = ctx.run_later(THROTTLED_RETRY, |act, ctx| {
                    act.wake = None;
                    act.fire(ctx);
                });
                self.wake = Some((now + THROTTLED_RETRY, handle));
                return;
            }
            let Waiting { attempt, envelope, .. } = self.waiting.pop().expect("peeked");
            self.attempt(envelope, attempt, ctx);
        }
        self.arm(ctx);
    }

    fn attempt(&mut self, envelope: Envelope, attempt: u32, ctx: &mut Context<Self>) {
        if self.service.reads_recipient(&envelope.body) {
            self.read_recipient_then_attempt(envelope, attempt, ctx);
        } else {
            self.attempt_with(envelope, attempt, None, ctx);
        }
    }

    /// The recipient comes from the loan actor of this process when it handed it over (see
    /// [`super::handoff`]); otherwise it is read on the database's reader threads, never in this
    /// mailbox, and other calls go on meanwhile.
    fn read_recipient_then_attempt(&mut self, envelope: Envelope, attempt: u32, ctx: &mut Context<Self>) {
        let (db, loan_id) = (self.shared.db.clone(), envelope.loan_id);
        if let Some(address) = self.shared.addresses.take(loan_id, Instant::now()) {
            self.shared.metrics.recipient_found("handed_over");
            return self.attempt_with(envelope, attempt, Some(recipient_of(Some(address))), ctx);
        }
        self.shared.metrics.recipient_found("read");
        self.next_seq += 1;
        let key = self.next_seq;
        self.reading.insert(key, (envelope, attempt));
        let read = async move { db.read(move |c| queries::applicant_email(c, loan_id)).await };
        ctx.spawn(read.into_actor(self).map(move |found, act, ctx| {
            let Some((envelope, attempt)) = act.reading.remove(&key) else { return };
            act.read_done(envelope, attempt, found, ctx);
        }));
    }

    fn read_done(
        &mut self,
        envelope: Envelope,
        attempt: u32,
        found: Result<Option<String>, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        match found {
            Ok(found) => self.attempt_with(envelope, attempt, Some(recipient_of(found)), ctx),
            Err(err) => {
                tracing::warn!(error = %err, loan_id = %envelope.loan_id, "reading the recipient failed; trying again");
                self.wait(envelope, attempt, RECIPIENT_RETRY, ctx);
            }
        }
    }

    fn attempt_with(
        &mut self,
        envelope: Envelope,
        attempt: u32,
        recipient: Option<Recipient>,
        ctx: &mut Context<Self>,
    ) {
        // The call's attempt, once its latency has passed: the wait shows as the gap before it.
        let span = tracing::info_span!(
            "service_message",
            otel.name = %format_args!("{} {}", S::KIND.as_str(), envelope.body.label()),
            node = self.shared.settings.node.id.as_deref().unwrap_or_default(),
            actor = S::KIND.as_str(),
            loan.id = %envelope.loan_id,
            message = envelope.body.label(),
            message_id = %envelope.message_id,
            attempt,
            trace_id = tracing::field::Empty,
        );
        telemetry::continue_trace(&span, envelope.trace.as_ref());
        let _span = span.entered();
        let settings = &self.shared.settings;
        let call = || {
            faults::before_service_call(settings, &envelope, envelope.attempt);
            match &recipient {
                Some(recipient) => self.service.attempt_for(&envelope, attempt, recipient),
                None => self.service.attempt(&envelope, attempt),
            }
        };
        match catch_panic(call) {
            Ok(Attempt::Reply(reply)) => {
                // Settled when the loan commits it (or on a redelivery, if this reply is lost).
                self.shared.postman.deliver([reply.traced(telemetry::current_traceparent())]);
                self.stats.finished_one();
            }
            Ok(Attempt::RetryAfter(backoff)) => {
                tracing::debug!(attempt, "call failed transiently; trying again");
                let delay = backoff + self.service.latency(&envelope.body);
                self.wait(envelope, attempt + 1, delay, ctx);
            }
            Ok(Attempt::DeadLetter(reason)) => {
                actix::spawn(dead_letter(envelope, reason, self.shared.clone(), self.stats.clone()));
            }
            Err(panic) => {
                tracing::error!(%panic, "service call panicked; counting the attempt");
                self.shared.metrics.service_call_panicked(S::KIND.as_str());
                actix::spawn(after_panic(envelope, panic, self.shared.clone(), self.stats.clone(), ctx.address()));
            }
        }
    }
}

/// A call that panicked: count the failed attempt in the request's outbox row (so the count
/// survives a restart, and is the same whichever node holds the request), then try again after
/// a backoff, or dead-letter it at `actors.max_message_attempts`. The actor needs no restart: a
/// service keeps nothing but its queue of waiting calls.
async fn after_panic<S: Service>(
    envelope: Envelope,
    panic: String,
    shared: SharedHandles,
    stats: Arc<ActorStats>,
    actor: Addr<ServiceActor<S>>,
) {
    let row = envelope.outbox_row();
    let stored = match shared.db.read(move |c| queries::outbox_envelope(c, row)).await {
        Ok(stored) => stored,
        Err(err) => {
            // Uncounted: the backoff of this attempt's number, like any retry.
            tracing::warn!(error = %err, "could not read the attempts of a call");
            Some(envelope.to_json())
        }
    };
    let Some(stored) = stored else {
        // Consumed meanwhile (a copy was answered and applied): nothing left to do.
        shared.postman.settle(envelope.message_id);
        stats.finished_one();
        return;
    };
    let stored_attempt = Envelope::from_json(&stored).map_or(envelope.attempt, |stored| stored.attempt);
    let failed = stored_attempt.max(envelope.attempt);
    if failed >= shared.settings.actors.max_message_attempts {
        let reason = format!("handler panicked {failed} times: {panic}");
        return dead_letter(Envelope { attempt: failed, ..envelope }, reason, shared, stats).await;
    }
    let unit = UnitOfWork::record_attempt(&envelope, failed + 1);
    if let Err(err) = commit_until_done(shared.db.writer(), unit).await {
        tracing::warn!(error = %err, "could not record a failed attempt");
    }
    let delay = backoff(failed, Duration::from_millis(50), Duration::from_secs(5));
    actor.do_send(RetryCall { envelope: Envelope { attempt: failed + 1, ..envelope }, delay });
}

/// A call to make again after `delay` (plus its latency): its earlier attempt panicked.
#[derive(Message)]
#[rtype(result = "()")]
struct RetryCall {
    envelope: Envelope,
    delay: Duration,
}

impl<S: Service> Handler<RetryCall> for ServiceActor<S> {
    type Result = ();

    fn handle(&mut self, RetryCall { envelope, delay }: RetryCall, ctx: &mut Context<Self>) {
        let delay = delay + self.service.latency(&envelope.body);
        self.wait(envelope, 1, delay, ctx);
    }
}

/// Cluster mode: one attempt now, its answer thrown away (see [`Probe`]). A panic is caught and
/// counts as surviving: only a call that kills the process fails a probe. A call that needs its
/// recipient (the notifier's send) is probed without one, so a probe never sends anything.
impl<S: Service> Handler<Probe> for ServiceActor<S> {
    type Result = ();

    fn handle(&mut self, Probe(envelope): Probe, _ctx: &mut Context<Self>) {
        let settings = &self.shared.settings;
        let _ = catch_panic(|| {
            faults::before_service_call(settings, &envelope, envelope.attempt);
            self.service.attempt(&envelope, 1)
        });
    }
}

async fn dead_letter(envelope: Envelope, reason: String, shared: SharedHandles, stats: Arc<ActorStats>) {
    tracing::error!(%reason, message_id = %envelope.message_id, "message cannot be handled; dead-lettering it");
    let unit = UnitOfWork::dead_letter(&envelope, &reason);
    match commit_until_done(shared.db.writer(), unit).await {
        Ok(outcome) => {
            if matches!(outcome, CommitOutcome::Committed { .. }) {
                shared.metrics.dead_lettered(envelope.destination.as_str());
            }
            shared.postman.settle(envelope.message_id);
        }
        // Left in the outbox; the sweep delivers it again.
        Err(err) => tracing::error!(error = %err, "commit failed for good"),
    }
    stats.finished_one();
}

impl<S: Service> Actor for ServiceActor<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.set_state(ActorState::Running);
        // After a restart: the calls that were waiting still are.
        self.arm(ctx);
    }
}

impl<S: Service> Supervised for ServiceActor<S> {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // The old context's timers and reads are gone with it: the reads start again.
        self.wake = None;
        for (_, (envelope, attempt)) in std::mem::take(&mut self.reading) {
            self.next_seq += 1;
            self.waiting.push(Waiting { due: Instant::now(), seq: self.next_seq, attempt, envelope });
        }
        self.shared.registry.record_restart(&self.stats);
    }
}

impl<S: Service> Handler<Deliver> for ServiceActor<S> {
    type Result = ();

    fn handle(&mut self, Deliver(envelope): Deliver, ctx: &mut Context<Self>) {
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        let latency = self.service.latency(&envelope.body);
        if latency.is_zero() {
            self.attempt(envelope, 1, ctx);
        } else {
            self.wait(envelope, 1, latency, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LoanId;

    fn waiting(due: Instant, seq: u64) -> Waiting {
        let envelope = Envelope::new(LoanId::generate(), None, MessageBody::ReleaseCreditCheck);
        Waiting { due, seq, attempt: 1, envelope }
    }

    #[test]
    fn the_queue_hands_out_the_earliest_call_first_and_ties_in_arrival_order() {
        let now = Instant::now();
        let mut queue = BinaryHeap::new();
        for (offset_ms, seq) in [(30, 1), (10, 2), (20, 3), (10, 4), (0, 5)] {
            queue.push(waiting(now + Duration::from_millis(offset_ms), seq));
        }
        let order: Vec<u64> = std::iter::from_fn(|| queue.pop().map(|w| w.seq)).collect();
        assert_eq!(order, vec![5, 2, 4, 3, 1]);
    }
}
