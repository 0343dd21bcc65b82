//! Helpers shared by every actor: turning a handler panic into a restart, and committing until
//! the database answers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::messages::backoff;
use crate::persistence::{CommitOutcome, StoreError, UnitOfWork, Writer};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let result: Result<(), String> = catch_panic(|| panic!("boom {}", 7));
        assert_eq!(result.unwrap_err(), "boom 7");
        assert_eq!(catch_panic(|| 5).unwrap(), 5);
    }
}
