//! How long to wait before trying a failed delivery, call or connection again.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(attempt-1))].
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let millis = step(attempt, base, max).as_millis() as u64;
    Duration::from_millis(if millis == 0 { 0 } else { rand::rng().random_range(0..=millis) })
}

/// Exponential backoff with "equal" jitter: uniform in [step / 2, step], step = min(max, base *
/// 2^(attempt-1)). Never near zero, so a message retried through a long fault is retried at
/// most once per `max / 2`, where full jitter would now and then retry at once.
pub fn backoff_at_least_half(attempt: u32, base: Duration, max: Duration) -> Duration {
    let millis = step(attempt, base, max).as_millis() as u64;
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

fn step(attempt: u32, base: Duration, max: Duration) -> Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 1..40 {
            let d = backoff(attempt, Duration::from_millis(20), Duration::from_millis(500));
            assert!(d <= Duration::from_millis(500));
            assert!(d <= Duration::from_millis(20u64 << (attempt - 1).min(16)));
        }
    }

    #[test]
    fn backoff_at_least_half_grows_and_stays_between_half_its_step_and_its_cap() {
        for attempt in 1..40 {
            let d = backoff_at_least_half(attempt, Duration::from_millis(20), Duration::from_millis(500));
            let step = Duration::from_millis(20u64 << (attempt - 1).min(16)).min(Duration::from_millis(500));
            assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
        }
    }
}
