//! Finds the live actor of a loan or activates one, on the arbiter the loan hashes to. Counting
//! each delivery as pending under the same lock that passivation takes means an actor never
//! stops with a message on its way to it.

use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::{ArbiterHandle, Supervisor};

use super::loan::LoanActor;
use super::registry::{ActorStats, LoanEntry};
use super::Services;
use crate::domain::LoanId;
use crate::mailbox::{ActorKind, Deliver, Envelope};
use crate::persistence::LoanRecord;

#[derive(Clone)]
pub struct LoanDirectory {
    services: Services,
    arbiters: Arc<Vec<ArbiterHandle>>,
}

impl LoanDirectory {
    pub fn new(services: Services, arbiters: Arc<Vec<ArbiterHandle>>) -> Self {
        assert!(!arbiters.is_empty(), "at least one arbiter for loan actors");
        Self { services, arbiters }
    }

    /// Hand an envelope to the loan's actor, activating it if it is not live.
    pub fn deliver(&self, envelope: Envelope) {
        let id = envelope.loan_id;
        let mut loans = self.services.registry.loans.lock().expect("registry lock");
        let stale = loans.get(&id).is_some_and(|entry| !entry.addr.connected());
        if stale {
            loans.remove(&id);
        }
        let entry = loans.entry(id).or_insert_with(|| self.activate(id, None));
        entry.stats.pending.fetch_add(1, Ordering::AcqRel);
        entry.addr.do_send(Deliver(envelope));
    }

    /// A loan just submitted: make its actor live with the state the caller has, so that the
    /// replies to its first requests find it without reading it back. No-op if it is live.
    pub fn activate_with(&self, record: LoanRecord) {
        let id = record.id;
        let mut loans = self.services.registry.loans.lock().expect("registry lock");
        if loans.get(&id).is_none_or(|entry| !entry.addr.connected()) {
            let entry = self.activate(id, Some(record));
            loans.insert(id, entry);
        }
    }

    /// Remove the loan's actor if it is this generation and nothing is pending for it.
    /// Returns whether the actor may stop.
    pub fn try_passivate(&self, id: LoanId, generation: u64) -> bool {
        let mut loans = self.services.registry.loans.lock().expect("registry lock");
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

    fn activate(&self, id: LoanId, preload: Option<LoanRecord>) -> LoanEntry {
        let generation = self.services.registry.generation();
        let stats = ActorStats::new(ActorKind::Loan, id.to_string());
        let arbiter = &self.arbiters[arbiter_index(id, self.arbiters.len())];
        let (services, directory, actor_stats) = (self.services.clone(), self.clone(), stats.clone());
        let addr = Supervisor::start_in_arbiter(arbiter, move |_ctx| {
            LoanActor::new(id, generation, actor_stats, services, directory, preload)
        });
        LoanEntry { addr, stats, generation }
    }
}

fn arbiter_index(id: LoanId, n: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    (hasher.finish() % n as u64) as usize
}
