//! Delivery of committed outbox messages to the local actors, with in-flight tracking so that
//! the redelivery sweep only re-sends what is really lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::{Message, Recipient};

use super::{ActorKind, Envelope};
use crate::domain::MessageId;
use crate::persistence::{queries, Database, LoanRecord, StoreError};

/// An envelope handed to an actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Envelope);

/// Where each kind of message goes on this node.
pub struct Routes {
    /// Finds or activates the loan's actor and hands it the envelope.
    pub loans: Box<dyn Fn(Envelope, Option<LoanRecord>) + Send + Sync>,
    pub credit: Recipient<Deliver>,
    pub appraisal: Recipient<Deliver>,
    pub notifier: Recipient<Deliver>,
}

#[derive(Clone)]
pub struct Postman {
    inner: Arc<Inner>,
}

struct Inner {
    routes: OnceLock<Routes>,
    /// Delivered and not yet settled, with the time of delivery.
    in_flight: Mutex<HashMap<MessageId, Instant>>,
}

/// Rows read per page when replaying the outbox.
const SWEEP_PAGE: i64 = 2_000;

impl Default for Postman {
    fn default() -> Self {
        Self::new()
    }
}

impl Postman {
    pub fn new() -> Self {
        Self { inner: Arc::new(Inner { routes: OnceLock::new(), in_flight: Mutex::new(HashMap::new()) }) }
    }

    /// Connect the postman to the actors (once, at start-up).
    pub fn set_routes(&self, routes: Routes) {
        if self.inner.routes.set(routes).is_err() {
            panic!("postman routes set twice");
        }
    }

    /// Deliver committed envelopes to their actors.
    pub fn deliver(&self, envelopes: impl IntoIterator<Item = Envelope>) {
        let Some(routes) = self.inner.routes.get() else {
            tracing::warn!("delivery before start-up finished; the sweep will deliver it");
            return;
        };
        for envelope in envelopes {
            self.inner.in_flight.lock().expect("in-flight lock").insert(envelope.message_id, Instant::now());
            let recipient = match envelope.destination {
                ActorKind::Loan => {
                    (routes.loans)(envelope, None);
                    continue;
                }
                ActorKind::Credit => &routes.credit,
                ActorKind::Appraisal => &routes.appraisal,
                ActorKind::Notifier => &routes.notifier,
            };
            let id = envelope.message_id;
            if let Err(err) = recipient.try_send(Deliver(envelope)) {
                tracing::warn!(message_id = %id, error = %err, "actor mailbox refused a message; the sweep will retry");
                self.settled(id);
            }
        }
    }

    /// Deliver the first message of a loan just submitted, with its state, so that its actor
    /// starts without reading it back.
    pub fn deliver_to_new_loan(&self, envelope: Envelope, record: LoanRecord) {
        let Some(routes) = self.inner.routes.get() else { return };
        self.inner.in_flight.lock().expect("in-flight lock").insert(envelope.message_id, Instant::now());
        (routes.loans)(envelope, Some(record));
    }

    /// The message is finished with (handled, duplicate, or dead-lettered).
    pub fn settled(&self, id: MessageId) {
        self.inner.in_flight.lock().expect("in-flight lock").remove(&id);
    }

    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.lock().expect("in-flight lock").len()
    }

    /// Deliver every outbox row that is not in flight (or has been for longer than
    /// `presumed_lost`) and is older than `min_age`. At start-up (`min_age` 0) this resumes
    /// every unfinished loan. Returns how many were delivered.
    pub async fn sweep(&self, db: &Database, min_age: Duration, presumed_lost: Duration) -> Result<usize, StoreError> {
        let mut after = 0;
        let mut delivered = 0;
        let cutoff = chrono::Utc::now().naive_utc() - chrono::Duration::from_std(min_age).unwrap_or_default();
        loop {
            let rows = db.read(move |c| queries::outbox_after(c, after, SWEEP_PAGE)).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            let page_len = rows.len();
            let lost: Vec<Envelope> = {
                let in_flight = self.inner.in_flight.lock().expect("in-flight lock");
                rows.into_iter()
                    .filter(|row| row.created_at <= cutoff)
                    .filter_map(|row| match Envelope::from_json(&row.envelope) {
                        Ok(env) => Some(env),
                        Err(err) => {
                            tracing::error!(seq = row.seq, error = %err, "unreadable outbox row skipped");
                            None
                        }
                    })
                    .filter(|env| in_flight.get(&env.message_id).is_none_or(|since| since.elapsed() >= presumed_lost))
                    .collect()
            };
            delivered += lost.len();
            self.deliver(lost);
            if (page_len as i64) < SWEEP_PAGE {
                break;
            }
        }
        Ok(delivered)
    }
}
