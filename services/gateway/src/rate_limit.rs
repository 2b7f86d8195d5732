//! A rate limit per client: one token bucket per token `sub`.
//!
//! Each bucket holds at most `burst` tokens and refills at `per_second` tokens a second; a
//! request takes one token or, when the bucket is empty, is refused with the number of whole
//! seconds (at least 1) until a token is back, which the gateway sends as `Retry-After`.
//! Buckets that have refilled completely carry no information and are pruned once the map
//! grows past [`PRUNE_ABOVE`] clients, so memory stays bounded by the active clients.
//!
//! ```
//! use std::time::Instant;
//! use faultline_gateway::rate_limit::RateLimiter;
//! let limiter = RateLimiter::new(2, 2);
//! let now = Instant::now();
//! assert!(limiter.check_at("client-1", now).is_ok());
//! assert!(limiter.check_at("client-1", now).is_ok());
//! assert_eq!(limiter.check_at("client-1", now), Err(1)); // retry after 1 s
//! assert!(limiter.check_at("client-2", now).is_ok());    // another client, another bucket
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// How many client buckets may exist before full ones are pruned.
pub const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// Token buckets keyed by client.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_second` tokens a second, at most `burst` saved up (both at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client` now; `Err(seconds)` to wait when there is none.
    pub fn check(&self, client: &str) -> Result<(), u64> {
        self.check_at(client, Instant::now())
    }

    /// [`check`](Self::check) at a given instant (tests).
    pub fn check_at(&self, client: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE && !buckets.contains_key(client) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| {
                let elapsed = now
                    .saturating_duration_since(bucket.refilled_at)
                    .as_secs_f64();
                bucket.tokens + elapsed * per_second < burst
            });
        }
        let bucket = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: self.burst,
            refilled_at: now,
        });
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.refilled_at = now.max(bucket.refilled_at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_empty_bucket_refills_at_the_configured_rate() {
        let limiter = RateLimiter::new(2, 2);
        let start = Instant::now();
        assert!(limiter.check_at("c", start).is_ok());
        assert!(limiter.check_at("c", start).is_ok());
        assert_eq!(limiter.check_at("c", start), Err(1));
        // Half a second at 2/s brings one token back, not two.
        let later = start + Duration::from_millis(500);
        assert!(limiter.check_at("c", later).is_ok());
        assert_eq!(limiter.check_at("c", later), Err(1));
        // A long pause saves up no more than the burst.
        let much_later = later + Duration::from_secs(60);
        assert!(limiter.check_at("c", much_later).is_ok());
        assert!(limiter.check_at("c", much_later).is_ok());
        assert!(limiter.check_at("c", much_later).is_err());
    }

    #[test]
    fn slow_rates_ask_for_longer_waits() {
        let limiter = RateLimiter::new(1, 1);
        let now = Instant::now();
        assert!(limiter.check_at("c", now).is_ok());
        assert_eq!(limiter.check_at("c", now), Err(1));
        let limiter = RateLimiter {
            per_second: 0.25,
            ..RateLimiter::new(1, 1)
        };
        assert!(limiter.check_at("c", now).is_ok());
        assert_eq!(limiter.check_at("c", now), Err(4));
    }
}
