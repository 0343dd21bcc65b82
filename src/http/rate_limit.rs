//! A per-client token bucket for submissions: `http.rate_limit_per_second` tokens a second and
//! bursts of as many; 0 turns it off. A client is its peer IP address: no proxy header is
//! trusted (behind a proxy, limit there). A refused request learns when to come back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Clients remembered before the idle ones are forgotten.
const MAX_CLIENTS: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        Self { per_second: f64::from(per_second), buckets: Mutex::new(HashMap::new()) }
    }

    pub fn enabled(&self) -> bool {
        self.per_second > 0.0
    }

    /// Take a token for this client, or say in how many whole seconds one will be there.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        if !self.enabled() {
            return Ok(());
        }
        // A panic elsewhere while holding the buckets leaves them usable: recover, never cascade.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            // A full bucket carries no information: forget those clients.
            buckets.retain(|_, b| self.refilled(b, now) < self.per_second);
        }
        let bucket = buckets.entry(client).or_insert(Bucket { tokens: self.per_second, at: now });
        bucket.tokens = self.refilled(bucket, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_panic_while_holding_the_buckets_does_not_break_the_limiter() {
        let limiter = std::sync::Arc::new(RateLimiter::new(5));
        let poisoner = limiter.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.buckets.lock();
            panic!("poison the lock");
        })
        .join();
        assert!(limiter.buckets.is_poisoned());
        assert!(std::panic::catch_unwind(|| limiter.check(A)).is_ok_and(|r| r.is_ok()));
    }

    #[test]
    fn zero_is_off() {
        let limiter = RateLimiter::new(0);
        assert!((0..10_000).all(|_| limiter.check(A).is_ok()));
    }

    #[test]
    fn a_burst_of_one_second_then_refusals_that_say_when_to_retry() {
        let limiter = RateLimiter::new(5);
        let t0 = Instant::now();
        assert!((0..5).all(|_| limiter.check_at(A, t0).is_ok()));
        assert_eq!(limiter.check_at(A, t0), Err(1));
        assert!(limiter.check_at(B, t0).is_ok(), "clients are limited separately");
        assert!(limiter.check_at(A, t0 + Duration::from_millis(200)).is_ok(), "one token back after 1/5 s");
        assert!(limiter.check_at(A, t0 + Duration::from_millis(200)).is_err());
        let later = t0 + Duration::from_secs(10);
        assert!((0..5).all(|_| limiter.check_at(A, later).is_ok()), "never more than one second's burst");
        assert!(limiter.check_at(A, later).is_err());
    }

    #[test]
    fn a_slow_rate_asks_for_a_longer_wait() {
        let limiter = RateLimiter::new(1);
        let t0 = Instant::now();
        assert!(limiter.check_at(A, t0).is_ok());
        assert_eq!(limiter.check_at(A, t0), Err(1));
    }
}
