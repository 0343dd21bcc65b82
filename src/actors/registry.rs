//! Which actors are live on this node: the loan directory (one actor per active loan,
//! activated on demand) and the long-lived service actors. The admin listing reads it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::Addr;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::loan::LoanActor;
use crate::domain::LoanId;
use crate::mailbox::ActorKind;

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
    state: Mutex<String>,
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
            state: Mutex::new("starting".to_owned()),
        })
    }

    pub fn set_state(&self, state: &str) {
        let mut current = self.state.lock().expect("stats lock");
        if current.as_str() != state {
            *current = state.to_owned();
        }
    }

    pub fn finished_one(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        let _ = self.pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn snapshot(&self) -> ActorSnapshot {
        ActorSnapshot {
            kind: self.kind,
            id: self.id.clone(),
            state: self.state.lock().expect("stats lock").clone(),
            mailbox_depth: self.pending.load(Ordering::Relaxed),
            messages_handled: self.handled.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            started_at: self.started_at,
            age_seconds: (Utc::now() - self.started_at).num_milliseconds() as f64 / 1000.0,
        }
    }
}

/// One row of the live-actor listing.
#[derive(Debug, Clone, Serialize)]
pub struct ActorSnapshot {
    pub kind: ActorKind,
    pub id: String,
    pub state: String,
    pub mailbox_depth: usize,
    pub messages_handled: u64,
    pub restarts: u32,
    pub started_at: DateTime<Utc>,
    pub age_seconds: f64,
}

/// A live loan actor, as the directory knows it.
pub(crate) struct LoanEntry {
    pub addr: Addr<LoanActor>,
    pub stats: Arc<ActorStats>,
    /// Distinguishes activations of the same loan, so a stopping actor never removes its successor.
    pub generation: u64,
}

/// Live actors of this node.
#[derive(Default)]
pub struct Registry {
    services: Mutex<Vec<Arc<ActorStats>>>,
    pub(crate) loans: Mutex<HashMap<LoanId, LoanEntry>>,
    next_generation: AtomicU64,
    restarts_total: AtomicU64,
}

impl Registry {
    pub fn register_service(&self, stats: Arc<ActorStats>) {
        self.services.lock().expect("registry lock").push(stats);
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
        let mut rows: Vec<ActorSnapshot> =
            self.services.lock().expect("registry lock").iter().map(|s| s.snapshot()).collect();
        rows.extend(self.loans.lock().expect("registry lock").values().map(|e| e.stats.snapshot()));
        rows
    }

    /// Live actors by kind.
    pub fn counts(&self) -> HashMap<ActorKind, usize> {
        let mut counts: HashMap<ActorKind, usize> = ActorKind::ALL.iter().map(|k| (*k, 0)).collect();
        for s in self.services.lock().expect("registry lock").iter() {
            *counts.entry(s.kind).or_default() += 1;
        }
        *counts.entry(ActorKind::Loan).or_default() += self.loans.lock().expect("registry lock").len();
        counts
    }
}
