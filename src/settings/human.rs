//! When a review is escalated (`[human]`; when an applicant is reminded is
//! `decision.reminder_at_percent`) and the durable timers' tuning (`[timers]`).

use std::time::Duration;

use serde::Deserialize;

/// `[human]`: when a review is escalated.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HumanSettings {
    /// A loan under review (waiting on an underwriter) this long is escalated, once.
    pub review_escalate_after_seconds: u64,
    /// How often the escalation sweep looks for such loans (on nodes running the timers).
    pub escalation_sweep_seconds: u64,
}

impl Default for HumanSettings {
    fn default() -> Self {
        Self { review_escalate_after_seconds: 172_800, escalation_sweep_seconds: 60 }
    }
}

impl HumanSettings {
    pub fn review_escalate_after(&self) -> Duration {
        Duration::from_secs(self.review_escalate_after_seconds)
    }

    pub fn escalation_sweep(&self) -> Duration {
        Duration::from_secs(self.escalation_sweep_seconds.max(1))
    }
}

/// `[timers]`: how much of the timer table a node holds in memory.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TimerSettings {
    /// Timers due within this many seconds are read into memory (in pages by due time); later
    /// ones stay in the database until they come this close.
    pub horizon_seconds: u64,
    /// At most this many timers held in memory at once.
    pub max_held: usize,
    /// How often the database is asked for timers due and not fired yet (committed by a node
    /// that runs no timers, or left by a firing that failed), in milliseconds.
    pub catch_up_ms: u64,
}

impl Default for TimerSettings {
    fn default() -> Self {
        Self { horizon_seconds: 60, max_held: 50_000, catch_up_ms: 1_000 }
    }
}

impl TimerSettings {
    pub fn horizon(&self) -> Duration {
        Duration::from_secs(self.horizon_seconds.max(1))
    }

    pub fn catch_up(&self) -> Duration {
        Duration::from_millis(self.catch_up_ms.max(10))
    }
}
