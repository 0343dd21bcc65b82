//! Helpers shared by every actor: turning a handler panic into a restart, backoff, committing
//! until the database answers, dead-lettering.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use rand::Rng;

use crate::mailbox::Envelope;
use crate::persistence::{CommitOutcome, Consume, DeadLetterRow, StoreError, UnitOfWork, Writer};

/// Run `f`; a panic comes back as `Err` with its message. actix does not restart an actor whose
/// handler panicked, so handlers catch the unwind and stop the actor themselves: the supervisor
/// then restarts it and the message is sent again.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}

/// Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(attempt-1))].
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let cap = exp.min(max);
    let millis = cap.as_millis() as u64;
    Duration::from_millis(if millis == 0 { 0 } else { rand::rng().random_range(0..=millis) })
}

/// Commit a unit, retrying while the database is unavailable. A non-transient error is
/// returned: the message stays in the outbox and is swept up again later.
pub async fn commit_until_done(writer: &Writer, unit: UnitOfWork) -> Result<CommitOutcome, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match writer.commit(unit.clone()).await {
            Err(err) if err.is_transient() => {
                let wait = backoff(attempt, Duration::from_millis(50), Duration::from_secs(2));
                tracing::warn!(error = %err, ?wait, "commit failed; retrying");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// The unit that gives up on a message: consume it (its outbox row, or for an uncommitted reply
/// its request's) and keep it in `dead_letters`.
pub fn dead_letter_unit(envelope: &Envelope, reason: &str) -> UnitOfWork {
    let now = chrono::Utc::now().naive_utc();
    let mut unit = UnitOfWork::new(envelope.loan_id, now, Some(Consume::Outbox(envelope.outbox_row())));
    unit.dead_letter = Some(DeadLetterRow {
        message_id: envelope.message_id.to_string(),
        loan_id: envelope.loan_id.to_string(),
        destination: envelope.destination.as_str().to_owned(),
        envelope: envelope.to_json(),
        reason: reason.to_owned(),
        failed_at: now,
    });
    unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let result: Result<(), String> = catch_panic(|| panic!("boom {}", 7));
        assert_eq!(result.unwrap_err(), "boom 7");
        assert_eq!(catch_panic(|| 5).unwrap(), 5);
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 1..40 {
            let d = backoff(attempt, Duration::from_millis(20), Duration::from_millis(500));
            assert!(d <= Duration::from_millis(500));
            assert!(d <= Duration::from_millis(20u64 << (attempt - 1).min(16)));
        }
    }
}
