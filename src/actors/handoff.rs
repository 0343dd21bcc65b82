//! The applicant's address, handed from a loan actor to the notifier of the same process.
//!
//! A `NotifyApplicant` message carries no address (personal data stays out of outbox rows,
//! dead letters and AMQP bodies), so the notifier would read it from the loan's row on every
//! send: a read per loan on the reader threads, 8.5 % of the node's CPU samples under load
//! (docs/benchmarks.md). The loan actor that emits the message already holds the address,
//! so it leaves it here; the notifier takes it when the message reaches it in this process. A
//! message redelivered after a restart, from another node, or one whose entry is gone, reads the
//! row as before: the handoff only saves reads, the row stays the source.
//!
//! Bounded in count and in age, so no address outlives its use for long: entries beyond
//! [`CAPACITY`] or older than [`MAX_AGE`] give way (their sends read the row); an entry is
//! taken by the send, dropped when the loan is notified or when an operator erases the loan's
//! personal data. Addresses are never logged: `Debug` shows the count only.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::LoanId;
use crate::messages::{Envelope, MessageBody};
use crate::persistence::LoanRecord;
use crate::saga::NotificationState;

/// At most this many addresses wait here (about 100 bytes each). Sends normally take them
/// within milliseconds; more only wait when notifications pile up, and those then read the row.
pub const CAPACITY: usize = 16_384;
/// An address not taken by then is dropped: its message went to another node, or is waiting
/// long enough that one read does not matter.
pub const MAX_AGE: Duration = Duration::from_secs(60);

pub struct AddressHandoff {
    capacity: usize,
    max_age: Duration,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// The loan's address and the number of its hand-over (to tell it from an older one).
    by_loan: HashMap<LoanId, (u64, String)>,
    /// Hand-overs, oldest first; one whose entry was taken or replaced since is skipped.
    order: VecDeque<(u64, LoanId, Instant)>,
    handed: u64,
}

impl Entries {
    /// Drop what is over the capacity or too old, oldest first.
    fn evict(&mut self, capacity: usize, oldest_kept: Option<Instant>) {
        while let Some(&(seq, loan, at)) = self.order.front() {
            let too_old = oldest_kept.is_some_and(|oldest| at < oldest);
            if self.order.len() <= capacity && !too_old {
                break;
            }
            self.order.pop_front();
            if self.by_loan.get(&loan).is_some_and(|(current, _)| *current == seq) {
                self.by_loan.remove(&loan);
            }
        }
    }
}

impl AddressHandoff {
    pub fn new() -> Self {
        Self::bounded(CAPACITY, MAX_AGE)
    }

    pub fn bounded(capacity: usize, max_age: Duration) -> Self {
        Self { capacity, max_age, entries: Mutex::new(Entries::default()) }
    }

    /// After a loan's unit is committed: leave its address for a notification it emits; drop
    /// it once the loan is notified (the send may have run on another node, leaving it here).
    pub fn after_commit(&self, record: &LoanRecord, emits: &[Envelope]) {
        if record.saga.notification == NotificationState::Done {
            self.forget(record.id);
        } else if emits.iter().any(|e| matches!(e.body, MessageBody::NotifyApplicant { .. })) {
            self.hand(record.id, record.application.applicant.email.as_ref(), Instant::now());
        }
    }

    pub fn hand(&self, loan: LoanId, address: &str, now: Instant) {
        let mut entries = self.lock();
        entries.handed += 1;
        let seq = entries.handed;
        entries.by_loan.insert(loan, (seq, address.to_owned()));
        entries.order.push_back((seq, loan, now));
        entries.evict(self.capacity, now.checked_sub(self.max_age));
    }

    /// The address handed over for `loan`, if it is still here (then it is gone from here).
    pub fn take(&self, loan: LoanId, now: Instant) -> Option<String> {
        let mut entries = self.lock();
        entries.evict(self.capacity, now.checked_sub(self.max_age));
        entries.by_loan.remove(&loan).map(|(_, address)| address)
    }

    /// Drop `loan`'s address (its personal data is erased, or no longer needed).
    pub fn forget(&self, loan: LoanId) {
        self.lock().by_loan.remove(&loan);
    }

    pub fn len(&self) -> usize {
        self.lock().by_loan.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Never poisoned for good: a panic elsewhere leaves the map consistent (every change is
    /// one call on it).
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for AddressHandoff {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for AddressHandoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressHandoff").field("addresses", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_taken_once_and_only_by_its_loan() {
        let handoff = AddressHandoff::new();
        let (loan, other, now) = (LoanId::generate(), LoanId::generate(), Instant::now());
        handoff.hand(loan, "jane@example.com", now);
        assert_eq!(handoff.take(other, now), None);
        assert_eq!(handoff.take(loan, now).as_deref(), Some("jane@example.com"));
        assert_eq!(handoff.take(loan, now), None, "a second send reads the row");
        assert!(handoff.is_empty());
    }

    #[test]
    fn a_forgotten_address_is_not_handed_out() {
        let handoff = AddressHandoff::new();
        let (loan, now) = (LoanId::generate(), Instant::now());
        handoff.hand(loan, "jane@example.com", now);
        handoff.forget(loan);
        assert_eq!(handoff.take(loan, now), None);
    }

    #[test]
    fn beyond_its_capacity_the_oldest_addresses_give_way() {
        let handoff = AddressHandoff::bounded(3, MAX_AGE);
        let now = Instant::now();
        let loans: Vec<LoanId> = (0..5).map(|_| LoanId::generate()).collect();
        for (i, loan) in loans.iter().enumerate() {
            handoff.hand(*loan, &format!("applicant{i}@example.com"), now);
        }
        assert_eq!(handoff.len(), 3);
        assert_eq!(handoff.take(loans[0], now), None);
        assert_eq!(handoff.take(loans[1], now), None);
        assert_eq!(handoff.take(loans[4], now).as_deref(), Some("applicant4@example.com"));
    }

    #[test]
    fn a_newer_hand_over_of_a_loan_outlives_the_older_one() {
        let handoff = AddressHandoff::bounded(2, MAX_AGE);
        let now = Instant::now();
        let (a, b) = (LoanId::generate(), LoanId::generate());
        handoff.hand(a, "old@example.com", now);
        handoff.hand(a, "new@example.com", now);
        handoff.hand(b, "b@example.com", now);
        // The first hand-over of `a` gave way; its newer one did not go with it.
        assert_eq!(handoff.take(a, now).as_deref(), Some("new@example.com"));
        assert_eq!(handoff.take(b, now).as_deref(), Some("b@example.com"));
    }

    #[test]
    fn an_address_older_than_the_limit_is_dropped() {
        let handoff = AddressHandoff::bounded(CAPACITY, Duration::from_secs(60));
        let (loan, fresh, start) = (LoanId::generate(), LoanId::generate(), Instant::now());
        handoff.hand(loan, "jane@example.com", start);
        handoff.hand(fresh, "joe@example.com", start + Duration::from_secs(30));
        let later = start + Duration::from_secs(61);
        assert_eq!(handoff.take(loan, later), None);
        assert_eq!(handoff.take(fresh, later).as_deref(), Some("joe@example.com"));
    }

    #[test]
    fn its_debug_form_shows_no_address() {
        let handoff = AddressHandoff::new();
        handoff.hand(LoanId::generate(), "jane@example.com", Instant::now());
        let shown = format!("{handoff:?}");
        assert!(!shown.contains("jane"), "{shown}");
        assert!(shown.contains("addresses: 1"), "{shown}");
    }
}
