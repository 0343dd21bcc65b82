//! One fault of the database, logged as one episode: a line when it starts, a summary while it
//! lasts (at most one per `SUMMARY_EVERY`), a line when it ends. A thousand loans retrying
//! against a database that is away would otherwise log a line per retry (tens of thousands in a
//! few seconds). Readiness reads whether commits are failing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a lasting fault is summed up in the log.
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// How long a failure counts as "failing now" with no success since. Retries wait at most a
/// few seconds, so a lasting fault keeps failing well within this; with nothing left to try
/// (no work), the last failure says nothing about the present after it.
const FAILING_FOR: Duration = Duration::from_secs(15);

/// What failed, since when, and how often.
struct Episode {
    since: Instant,
    last_failure: Instant,
    failures: u64,
    failures_since_summary: u64,
    last_summary: Instant,
}

/// The fault state of one kind of database work (commits, reads).
pub struct FaultLog {
    what: &'static str,
    /// Mirrors `episode.is_some()`: a success while healthy takes no lock.
    in_episode: AtomicBool,
    episode: Mutex<Option<Episode>>,
}

impl FaultLog {
    pub fn new(what: &'static str) -> Self {
        Self { what, in_episode: AtomicBool::new(false), episode: Mutex::new(None) }
    }

    fn episode(&self) -> std::sync::MutexGuard<'_, Option<Episode>> {
        self.episode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Work failed because of `error`.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        self.failed_at(error, Instant::now());
    }

    fn failed_at(&self, error: &dyn std::fmt::Display, now: Instant) {
        let mut episode = self.episode();
        match episode.as_mut() {
            None => {
                tracing::warn!(what = self.what, %error, "database fault: {} failing", self.what);
                *episode = Some(Episode {
                    since: now,
                    last_failure: now,
                    failures: 1,
                    failures_since_summary: 0,
                    last_summary: now,
                });
                self.in_episode.store(true, Ordering::Release);
            }
            Some(ongoing) => {
                ongoing.failures += 1;
                ongoing.failures_since_summary += 1;
                ongoing.last_failure = now;
                if now.duration_since(ongoing.last_summary) >= SUMMARY_EVERY {
                    tracing::warn!(
                        what = self.what,
                        %error,
                        failures = ongoing.failures_since_summary,
                        for_s = now.duration_since(ongoing.since).as_secs(),
                        "database fault: {} still failing",
                        self.what
                    );
                    ongoing.failures_since_summary = 0;
                    ongoing.last_summary = now;
                }
            }
        }
    }

    /// Work succeeded: a fault, if any, is over.
    pub fn succeeded(&self) {
        if !self.in_episode.load(Ordering::Acquire) {
            return;
        }
        if let Some(ended) = self.episode().take() {
            self.in_episode.store(false, Ordering::Release);
            tracing::warn!(
                what = self.what,
                failures = ended.failures,
                lasted_s = ended.since.elapsed().as_secs_f64(),
                "database fault over: {} succeed again",
                self.what
            );
        }
    }

    /// Whether the work is failing now: it failed, has not succeeded since, and failed recently.
    pub fn is_failing(&self) -> bool {
        self.is_failing_at(Instant::now())
    }

    fn is_failing_at(&self, now: Instant) -> bool {
        self.in_episode.load(Ordering::Acquire)
            && self.episode().as_ref().is_some_and(|e| now.duration_since(e.last_failure) < FAILING_FOR)
    }
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
