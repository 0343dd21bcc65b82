//! Which actors are live on this node: one actor per active loan (activated on demand, stopped
//! when idle) and the long-lived service actors. The admin listing and the metrics read it.
//! Delivering to a loan counts the message as pending under the same lock that passivation
//! takes, so an actor never stops with a message on its way to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::Recipient;
use chrono::{DateTime, Utc};

use crate::domain::LoanId;
use crate::messages::{ActorKind, Deliver, Envelope};
use crate::saga::LoanStatus;

/// What an actor is doing, as the admin listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorState {
    Starting,
    Running,
    Restarting,
    /// A loan actor holding its loan, in this status.
    Holding(LoanStatus),
}

impl ActorState {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorState::Starting => "starting",
            ActorState::Running => "running",
            ActorState::Restarting => "restarting",
            ActorState::Holding(status) => status.as_str(),
        }
    }

    /// One byte, so that the state is kept in an atomic.
    fn code(self) -> u8 {
        match self {
            ActorState::Starting => 0,
            ActorState::Running => 1,
            ActorState::Restarting => 2,
            ActorState::Holding(status) => 3 + LoanStatus::ALL.iter().position(|s| *s == status).unwrap_or(0) as u8,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            0 => ActorState::Starting,
            1 => ActorState::Running,
            2 => ActorState::Restarting,
            n => LoanStatus::ALL.get(usize::from(n - 3)).map_or(ActorState::Starting, |s| ActorState::Holding(*s)),
        }
    }
}

/// Counters one actor keeps about itself.
#[derive(Debug)]
pub struct ActorStats {
    pub kind: ActorKind,
    pub id: String,
    pub started_at: DateTime<Utc>,
    /// Messages delivered to it and not yet finished (its mailbox depth).
    pub pending: AtomicUsize,
    pub handled: AtomicU64,
    pub restarts: AtomicU32,
    state: AtomicU8,
}

impl ActorStats {
    pub fn new(kind: ActorKind, id: String) -> Arc<Self> {
        Arc::new(Self {
            kind,
            id,
            started_at: Utc::now(),
            pending: AtomicUsize::new(0),
            handled: AtomicU64::new(0),
            restarts: AtomicU32::new(0),
            state: AtomicU8::new(ActorState::Starting.code()),
        })
    }

    pub fn set_state(&self, state: ActorState) {
        self.state.store(state.code(), Ordering::Relaxed);
    }

    pub fn finished_one(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        let _ = self.pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn snapshot(&self) -> ActorSnapshot {
        ActorSnapshot {
            kind: self.kind,
            id: self.id.clone(),
            state: ActorState::from_code(self.state.load(Ordering::Relaxed)),
            mailbox_depth: self.pending.load(Ordering::Relaxed),
            messages_handled: self.handled.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            started_at: self.started_at,
            age_seconds: (Utc::now() - self.started_at).num_milliseconds() as f64 / 1000.0,
        }
    }
}

/// One row of the live-actor listing.
#[derive(Debug, Clone)]
pub struct ActorSnapshot {
    pub kind: ActorKind,
    pub id: String,
    pub state: ActorState,
    pub mailbox_depth: usize,
    pub messages_handled: u64,
    pub restarts: u32,
    pub started_at: DateTime<Utc>,
    pub age_seconds: f64,
}

/// A live loan actor.
pub(crate) struct LoanEntry {
    pub mailbox: Recipient<Deliver>,
    pub stats: Arc<ActorStats>,
    /// Distinguishes activations of the same loan, so a stopping actor never removes its successor.
    pub generation: u64,
}

/// Live actors of this node.
#[derive(Default)]
pub struct Registry {
    service_actors: Mutex<Vec<Arc<ActorStats>>>,
    loans: Mutex<HashMap<LoanId, LoanEntry>>,
    next_generation: AtomicU64,
    restarts_total: AtomicU64,
}

impl Registry {
    pub fn register_service(&self, stats: Arc<ActorStats>) {
        self.service_actors().push(stats);
    }

    fn service_actors(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ActorStats>>> {
        self.service_actors.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn loans(&self) -> std::sync::MutexGuard<'_, HashMap<LoanId, LoanEntry>> {
        self.loans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand an envelope to its loan's live actor, or to one `activate` starts if none is live.
    pub(crate) fn deliver_to_loan(&self, envelope: Envelope, activate: impl FnOnce() -> LoanEntry) {
        let mut loans = self.loans();
        let id = envelope.loan_id;
        if loans.get(&id).is_some_and(|entry| !entry.mailbox.connected()) {
            loans.remove(&id);
        }
        let entry = loans.entry(id).or_insert_with(activate);
        entry.stats.pending.fetch_add(1, Ordering::AcqRel);
        entry.mailbox.do_send(Deliver(envelope));
    }

    /// Make the loan's actor live with `activate` unless it is.
    pub(crate) fn activate_loan(&self, id: LoanId, activate: impl FnOnce() -> LoanEntry) {
        let mut loans = self.loans();
        if loans.get(&id).is_none_or(|entry| !entry.mailbox.connected()) {
            loans.insert(id, activate());
        }
    }

    /// Forget the loan's actor if it is this generation and nothing is pending for it.
    /// Returns whether the actor may stop.
    pub(crate) fn try_passivate(&self, id: LoanId, generation: u64) -> bool {
        let mut loans = self.loans();
        match loans.get(&id) {
            Some(entry) if entry.generation == generation => {
                if entry.stats.pending.load(Ordering::Acquire) == 0 {
                    loans.remove(&id);
                    true
                } else {
                    false
                }
            }
            // Not ours (already replaced): stop.
            _ => true,
        }
    }

    /// An actor of this node was restarted by its supervisor.
    pub fn record_restart(&self, stats: &ActorStats) {
        stats.restarts.fetch_add(1, Ordering::Relaxed);
        self.restarts_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Restarts of every actor since start (passivated actors included).
    pub fn restarts_total(&self) -> u64 {
        self.restarts_total.load(Ordering::Relaxed)
    }

    pub fn generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Every live actor, services first.
    pub fn snapshot(&self) -> Vec<ActorSnapshot> {
        let mut rows: Vec<ActorSnapshot> = self.service_actors().iter().map(|s| s.snapshot()).collect();
        rows.extend(self.loans().values().map(|e| e.stats.snapshot()));
        rows
    }

    /// Live actors by kind.
    pub fn counts(&self) -> HashMap<ActorKind, usize> {
        let mut counts: HashMap<ActorKind, usize> = ActorKind::ALL.iter().map(|k| (*k, 0)).collect();
        for s in self.service_actors().iter() {
            *counts.entry(s.kind).or_default() += 1;
        }
        *counts.entry(ActorKind::Loan).or_default() += self.loans().len();
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_actor_state_survives_its_atomic_code() {
        let states = [ActorState::Starting, ActorState::Running, ActorState::Restarting]
            .into_iter()
            .chain(LoanStatus::ALL.map(ActorState::Holding));
        for state in states {
            let stats = ActorStats::new(ActorKind::Loan, "x".into());
            stats.set_state(state);
            assert_eq!(stats.snapshot().state, state);
        }
        assert_eq!(ActorState::Holding(LoanStatus::Approved).as_str(), "approved");
    }
}
