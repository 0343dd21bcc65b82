//! The human steps' policy (`[human]`) and the durable timers' tuning (`[timers]`).

use std::time::Duration;

use chrono::NaiveDateTime;
use serde::Deserialize;

/// `[human]`: when an applicant is reminded, when a review is escalated.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HumanSettings {
    /// Where between a request and its deadline the applicant is reminded (0.5 = halfway);
    /// 0 = no reminder.
    pub reminder_fraction: ReminderFraction,
    /// A loan under review (waiting on an underwriter) this long is escalated, once.
    pub review_escalate_after_seconds: u64,
    /// How often the escalation sweep looks for such loans (on nodes running the timers).
    pub escalation_sweep_seconds: u64,
}

impl Default for HumanSettings {
    fn default() -> Self {
        Self {
            reminder_fraction: ReminderFraction(0.5),
            review_escalate_after_seconds: 172_800,
            escalation_sweep_seconds: 60,
        }
    }
}

impl HumanSettings {
    /// When to remind the applicant of a request made at `requested_at` and due at `due_at`
    /// (None: no reminder).
    pub fn remind_at(&self, requested_at: NaiveDateTime, due_at: NaiveDateTime) -> Option<NaiveDateTime> {
        let ReminderFraction(fraction) = self.reminder_fraction;
        if fraction == 0.0 || due_at <= requested_at {
            return None;
        }
        let span = (due_at - requested_at).num_microseconds()?;
        let offset = chrono::Duration::microseconds((span as f64 * fraction) as i64);
        Some(requested_at + offset)
    }

    pub fn review_escalate_after(&self) -> Duration {
        Duration::from_secs(self.review_escalate_after_seconds)
    }

    pub fn escalation_sweep(&self) -> Duration {
        Duration::from_secs(self.escalation_sweep_seconds.max(1))
    }
}

/// A fraction in [0, 1): checked when the settings are read.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct ReminderFraction(f64);

impl TryFrom<f64> for ReminderFraction {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        if (0.0..1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("human.reminder_fraction must be in [0, 1) (0 = no reminder), not {value}"))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reminder_falls_at_its_fraction_of_the_request_time_or_never() {
        let at = chrono::Utc::now().naive_utc();
        let due = at + chrono::Duration::seconds(100);
        let halfway = HumanSettings::default();
        assert_eq!(halfway.remind_at(at, due), Some(at + chrono::Duration::seconds(50)));
        let never = HumanSettings { reminder_fraction: ReminderFraction::try_from(0.0).unwrap(), ..halfway };
        assert_eq!(never.remind_at(at, due), None);
        assert!(ReminderFraction::try_from(1.0).is_err() && ReminderFraction::try_from(-0.1).is_err());
    }
}
