//! Retry: which requests may be sent again, which answers deserve another attempt, and how
//! long to wait in between (exponential backoff with AWS "full jitter").
//!
//! Everything here is a pure decision; the loop that sleeps and resends lives in
//! [`ResilientClient`](crate::http_client::ResilientClient). The delay before retry `n`
//! (`n = 0` for the wait after the first attempt) is drawn uniformly from
//! `[0, min(max_delay, base_delay * 2^n)]`, which spreads a crowd of clients that failed
//! together instead of having them return in lockstep.
//!
//! ```
//! use std::time::Duration;
//! use faultline_kit::resilience::retry::RetryPolicy;
//!
//! let policy = RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
//! let mut rng = rand::rng();
//! assert!(policy.backoff(3, &mut rng) <= Duration::from_millis(800));
//! assert_eq!(policy.delay_before_attempt(4, None, &mut rng), None); // attempts exhausted
//! ```

use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

/// The header that makes a non-idempotent request safe to retry: the server deduplicates by it.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// How many times to try, and how long to back off in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; 1 means never retry.
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; it doubles for each later retry.
    pub base_delay: Duration,
    /// The cap on the backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, backing off from up to 100 ms, never more than 2 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// A [`RetryPolicy`] field holds a value the retry loop cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retry policy: `{field}` is {value}, expected {expected}")]
pub struct InvalidRetryPolicy {
    /// The offending field, as spelled in [`RetryPolicy`].
    pub field: &'static str,
    /// The value it held.
    pub value: String,
    /// What it should have been.
    pub expected: &'static str,
}

impl RetryPolicy {
    /// A policy that makes exactly one attempt.
    pub fn no_retry() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Checks every field, naming the first one out of range.
    pub fn validate(&self) -> Result<(), InvalidRetryPolicy> {
        if self.max_attempts == 0 {
            return Err(InvalidRetryPolicy {
                field: "max_attempts",
                value: "0".into(),
                expected: "at least 1 (the first attempt counts)",
            });
        }
        if self.max_delay < self.base_delay {
            return Err(InvalidRetryPolicy {
                field: "max_delay",
                value: format!("{:?}", self.max_delay),
                expected: "at least base_delay",
            });
        }
        Ok(())
    }

    /// The most the wait before retry `retry` (0-based) can be: `min(max_delay, base_delay * 2^retry)`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before retry `retry` (0-based): uniform in `[0, backoff_ceiling(retry)]`.
    pub fn backoff<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        full_jitter(self.backoff_ceiling(retry), rng)
    }

    /// How long to wait before attempt number `attempts_made + 1`, or `None` when the policy
    /// has no attempts left or the server asked (`Retry-After`) for a longer pause than
    /// `max_delay`. A server's `Retry-After` is a floor under the jittered backoff.
    pub fn delay_before_attempt<R: Rng + ?Sized>(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> Option<Duration> {
        if attempts_made == 0 || attempts_made >= self.max_attempts {
            return None;
        }
        let backoff = self.backoff(attempts_made - 1, rng);
        match retry_after {
            Some(asked) if asked > self.max_delay => None,
            Some(asked) => Some(backoff.max(asked)),
            None => Some(backoff),
        }
    }
}

/// A duration drawn uniformly from `[0, ceiling]`, to nanosecond resolution.
pub fn full_jitter<R: Rng + ?Sized>(ceiling: Duration, rng: &mut R) -> Duration {
    let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.random_range(0..=ceiling_nanos))
}

/// Whether sending the request twice has the same effect as sending it once: an idempotent
/// method (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) or an `Idempotency-Key` header.
pub fn is_safe_to_retry(method: &Method, headers: &HeaderMap) -> bool {
    is_idempotent_method(method) || headers.contains_key(IDEMPOTENCY_KEY)
}

/// The methods RFC 9110 defines as idempotent.
pub fn is_idempotent_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Statuses that say "try again later" rather than "your request is wrong": 429, 502, 503, 504.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// A `Retry-After` given in seconds. The HTTP-date form is not understood and yields `None`
/// (the jittered backoff applies alone).
pub fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    value
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_ceiling_doubles_from_base_and_stops_at_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: 100 * MS,
            max_delay: 1000 * MS,
        };
        let ceilings: Vec<_> = (0..6).map(|n| policy.backoff_ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        assert_eq!(
            policy.backoff_ceiling(200),
            1000 * MS,
            "huge exponents saturate instead of overflowing"
        );
    }

    #[test]
    fn delays_spread_over_the_whole_range() {
        // Full jitter, not "equal jitter": small delays must occur as well as large ones.
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: 1000 * MS,
            max_delay: 1000 * MS,
        };
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<_> = (0..1000).map(|_| policy.backoff(0, &mut rng)).collect();
        assert!(delays.iter().any(|d| *d < 100 * MS));
        assert!(delays.iter().any(|d| *d > 900 * MS));
    }

    #[test]
    fn attempts_stop_at_max_attempts() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let mut rng = StdRng::seed_from_u64(1);
        assert!(policy.delay_before_attempt(1, None, &mut rng).is_some());
        assert!(policy.delay_before_attempt(2, None, &mut rng).is_some());
        assert_eq!(policy.delay_before_attempt(3, None, &mut rng), None);
        assert_eq!(
            RetryPolicy::no_retry().delay_before_attempt(1, None, &mut rng),
            None
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_too_long_a_pause_gives_up() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: 10 * MS,
            max_delay: 5000 * MS,
        };
        let mut rng = StdRng::seed_from_u64(1);
        assert!(
            policy
                .delay_before_attempt(1, Some(Duration::from_secs(2)), &mut rng)
                .unwrap()
                >= Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay_before_attempt(1, Some(Duration::from_secs(6)), &mut rng),
            None
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static(" 3 ")),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }

    #[test]
    fn only_idempotent_or_keyed_requests_are_safe_to_retry() {
        let empty = HeaderMap::new();
        let mut keyed = HeaderMap::new();
        keyed.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("order-42"));
        for method in [
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ] {
            assert!(is_safe_to_retry(&method, &empty), "{method}");
        }
        assert!(!is_safe_to_retry(&Method::POST, &empty));
        assert!(!is_safe_to_retry(&Method::PATCH, &empty));
        assert!(is_safe_to_retry(&Method::POST, &keyed));
    }

    #[test]
    fn only_try_again_later_statuses_are_retryable() {
        for code in [429, 502, 503, 504] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 400, 404, 409, 500, 501] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn validation_names_the_offending_field() {
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.validate().unwrap_err().field, "max_attempts");
        let inverted = RetryPolicy {
            max_attempts: 2,
            base_delay: 10 * MS,
            max_delay: MS,
        };
        assert_eq!(inverted.validate().unwrap_err().field, "max_delay");
        RetryPolicy::default().validate().unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_delay_lies_within_zero_and_the_capped_exponential(
            retry in 0u32..80,
            base_ms in 0u64..10_000,
            extra_cap_ms in 0u64..100_000,
            seed in any::<u64>(),
        ) {
            let policy = RetryPolicy { max_attempts: u32::MAX, base_delay: Duration::from_millis(base_ms), max_delay: Duration::from_millis(base_ms + extra_cap_ms) };
            let exponential = (base_ms as u128).saturating_mul(1u128 << retry.min(100));
            let expected_ceiling = Duration::from_millis(exponential.min(u128::from(base_ms + extra_cap_ms)) as u64);
            prop_assert_eq!(policy.backoff_ceiling(retry), expected_ceiling);
            let mut rng = StdRng::seed_from_u64(seed);
            let delay = policy.backoff(retry, &mut rng);
            prop_assert!(delay <= expected_ceiling, "{:?} > {:?}", delay, expected_ceiling);
            let next = policy.delay_before_attempt(retry + 1, None, &mut rng).unwrap();
            prop_assert!(next <= expected_ceiling);
        }
    }
}
