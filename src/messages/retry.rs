//! How long to wait before trying a failed delivery, call or connection again.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(attempt-1))].
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let cap = exp.min(max);
    let millis = cap.as_millis() as u64;
    Duration::from_millis(if millis == 0 { 0 } else { rand::rng().random_range(0..=millis) })
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
}
