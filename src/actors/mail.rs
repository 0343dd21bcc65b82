//! The (simulated) mail provider the notifier sends through. Delivery between actors is at least
//! once, so the notifier may send one notice twice (a redelivery after a crash, a message the
//! broker delivered twice). Every send therefore carries an idempotency key made of the loan and
//! the notice: a provider that de-duplicates on it (as mail APIs do on an idempotency header,
//! within their window) sends the applicant each notice once. This one keeps the keys it has
//! seen (the most recent [`REMEMBERED_KEYS`]) and counts what it delivered and what it refused.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::domain::{Email, LoanId};
use crate::metrics::Metrics;

/// How many keys the simulated provider remembers (about 60 bytes each).
pub const REMEMBERED_KEYS: usize = 200_000;

/// The idempotency key of `notice` (e.g. `terminal`) about loan `loan_id`: the same for every
/// attempt at that notice, different for every other notice.
pub fn idempotency_key(loan_id: LoanId, notice: &str) -> String {
    format!("{loan_id}/{notice}")
}

/// What the provider did with a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// Its key was seen before: the applicant already has this notice.
    Duplicate,
}

/// The simulated provider: it delivers nothing, it counts.
pub struct MailProvider {
    seen: Mutex<SeenKeys>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct SeenKeys {
    keys: HashSet<String>,
    order: VecDeque<String>,
}

impl MailProvider {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { seen: Mutex::new(SeenKeys::default()), metrics }
    }

    /// Send a notice to `to` under `key`. The log names the recipient masked only.
    pub fn send(&self, key: &str, to: &Email) -> Sent {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let sent = if seen.keys.contains(key) {
            Sent::Duplicate
        } else {
            if seen.order.len() >= REMEMBERED_KEYS {
                if let Some(oldest) = seen.order.pop_front() {
                    seen.keys.remove(&oldest);
                }
            }
            seen.keys.insert(key.to_owned());
            seen.order.push_back(key.to_owned());
            Sent::Delivered
        };
        drop(seen);
        self.metrics.notification_sent(match sent {
            Sent::Delivered => "delivered",
            Sent::Duplicate => "duplicate",
        });
        tracing::debug!(idempotency_key = key, outcome = ?sent, to = %to.masked(), "notification handed to the mail provider");
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_sent_twice_under_its_key_is_delivered_once() {
        let provider = MailProvider::new(Arc::new(Metrics::new(&[])));
        let to = Email::parse("jane@example.com").unwrap();
        let (loan, other) = (LoanId::generate(), LoanId::generate());
        let key = idempotency_key(loan, "terminal");
        assert_eq!(key, format!("{loan}/terminal"));
        assert_eq!(provider.send(&key, &to), Sent::Delivered);
        assert_eq!(provider.send(&key, &to), Sent::Duplicate);
        assert_eq!(provider.send(&idempotency_key(other, "terminal"), &to), Sent::Delivered);
    }
}
