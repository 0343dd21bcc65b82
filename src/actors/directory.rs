//! Finds the live actor of a loan or activates one, on the arbiter the loan hashes to (the
//! registry keeps the live ones and decides when one may stop).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use actix::{ArbiterHandle, Supervisor};

use super::loan::LoanActor;
use super::registry::{ActorStats, LoanEntry};
use super::shared::SharedHandles;
use crate::domain::LoanId;
use crate::messages::{ActorKind, Envelope};
use crate::persistence::LoanRecord;

#[derive(Clone)]
pub struct LoanDirectory {
    shared: SharedHandles,
    arbiters: Arc<Vec<ArbiterHandle>>,
}

impl LoanDirectory {
    pub fn new(shared: SharedHandles, arbiters: Arc<Vec<ArbiterHandle>>) -> Self {
        assert!(!arbiters.is_empty(), "at least one arbiter for loan actors");
        Self { shared, arbiters }
    }

    /// Hand an envelope to the loan's actor, activating it if it is not live.
    pub fn deliver(&self, envelope: Envelope) {
        let id = envelope.loan_id;
        self.shared.registry.deliver_to_loan(envelope, || self.activate(id, None));
    }

    /// A loan just submitted: make its actor live with the state the caller has, so that the
    /// replies to its first requests find it without reading it back. No-op if it is live.
    pub fn activate_with(&self, record: LoanRecord) {
        let id = record.id;
        self.shared.registry.activate_loan(id, || self.activate(id, Some(record)));
    }

    fn activate(&self, id: LoanId, preload: Option<LoanRecord>) -> LoanEntry {
        let generation = self.shared.registry.generation();
        let stats = ActorStats::new(ActorKind::Loan, id.to_string());
        let arbiter = &self.arbiters[arbiter_index(id, self.arbiters.len())];
        let (shared, actor_stats) = (self.shared.clone(), stats.clone());
        let addr = Supervisor::start_in_arbiter(arbiter, move |_ctx| {
            LoanActor::new(id, generation, actor_stats, shared, preload)
        });
        LoanEntry { mailbox: addr.recipient(), stats, generation }
    }
}

fn arbiter_index(id: LoanId, n: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    (hasher.finish() % n as u64) as usize
}
