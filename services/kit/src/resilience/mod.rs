//! Resilience layers for calls to another service: each one small, each one a separate idea,
//! composed once in [`ResilientClient`](crate::http_client::ResilientClient).
//!
//! - [`bulkhead`]: at most N calls to a dependency in flight; the rest are rejected at once.
//! - [`circuit_breaker`]: stop calling a dependency that keeps failing or answering slowly,
//!   probe it again after a wait (Resilience4j semantics, count-based window).
//! - [`retry`]: which requests are safe to resend, which answers deserve it, and exponential
//!   backoff with full jitter in between.
//! - Timeout: every attempt is bounded by `tokio::time::timeout` inside the client; it is one
//!   line, so it has no module of its own.
//! - [`admin`]: `GET /admin/circuits` so breakers can be judged from outside the process.
//!
//! They compose, outermost first, as
//!
//! ```text
//! bulkhead slot (once per call)
//!   └─ retry loop (attempts, backoff between them)
//!        └─ circuit breaker permit (one breaker call per attempt)
//!             └─ per-attempt timeout
//!                  └─ HTTP (reqwest)
//! ```
//!
//! so a retried call holds one bulkhead slot throughout, each attempt is judged by the
//! breaker on its own, and a call refused by the bulkhead or an open circuit is never retried
//! (retrying a refusal only adds load where the system asked for less).
//!
//! Using the layers by hand, for something that is not HTTP:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use faultline_kit::resilience::{
//!     Bulkhead, CallOutcome, CircuitBreaker, CircuitBreakerConfig, CircuitRegistry, RetryPolicy,
//! };
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = CircuitRegistry::new();
//! let breaker = CircuitBreaker::new("postgres", CircuitBreakerConfig::default())?;
//! registry.register(&breaker);
//! let bulkhead = Bulkhead::new("postgres", 8);
//! let policy = RetryPolicy::default();
//!
//! let _slot = bulkhead.try_enter().await?;
//! let mut attempts = 0;
//! loop {
//!     let permit = breaker.try_acquire()?;
//!     let started = Instant::now();
//!     let result = tokio::time::timeout(Duration::from_secs(1), async { Ok::<_, ()>(42) }).await;
//!     attempts += 1;
//!     match result {
//!         Ok(Ok(_)) => { permit.record(CallOutcome::Success, started.elapsed()); break; }
//!         _ => permit.record(CallOutcome::Failure, started.elapsed()),
//!     }
//!     match policy.delay_before_attempt(attempts, None, &mut rand::rng()) {
//!         Some(delay) => tokio::time::sleep(delay).await,
//!         None => break,
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod admin;
pub mod bulkhead;
pub mod circuit_breaker;
pub mod retry;

pub use admin::admin_router;
pub use bulkhead::{Bulkhead, BulkheadFull, BulkheadSlot};
pub use circuit_breaker::{
    CallNotPermitted, CallOutcome, CallPermit, CircuitBreaker, CircuitBreakerConfig,
    CircuitRegistry, CircuitSnapshot, CircuitState, CircuitTransition, Clock,
    InvalidCircuitBreakerConfig, ManualClock, SystemClock,
};
pub use retry::{InvalidRetryPolicy, RetryPolicy};
