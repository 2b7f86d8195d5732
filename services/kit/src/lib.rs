//! The kit: what every reference service shares, written once.
//!
//! - [`trace`]: W3C trace context (`traceparent`), carried over HTTP and Kafka headers.
//! - [`resilience`]: timeout, retry with backoff and full jitter, circuit breaker, bulkhead.
//! - [`http_client`]: the resilient HTTP client composed of those layers, per dependency.
//! - [`config`]: configuration from environment variables, every bad variable reported by name.
//! - [`db`]: the Postgres pool and the migrations (the kit's tables and the service's).
//! - [`kafka`]: idempotent producer; consumer committing after success, with a dead-letter topic.
//! - [`outbox`]: the transactional outbox and the relay that publishes it.
//! - [`idempotency`]: idempotency keys for requests, processed-event records for consumers.
//! - [`provider_states`]: the test-mode `POST /admin/provider-states` endpoint for contract verification.
//! - [`reply`]: what a handler answers (status + JSON, replayable by idempotency keys) and body checks.
//! - [`telemetry`]: JSON logs with trace ids; the HTTP middleware for traces, logs and metrics.
//! - [`metrics`]: the Prometheus recorder and `GET /metrics`.
//! - [`health`]: `/health/live` and `/health/ready` (database and Kafka checks).
//! - [`service`]: what every service binary's `main` does (config errors, logs, runtime, exit code).
//! - [`server`]: the HTTP server with the standard routes and graceful shutdown on SIGTERM.
//! - [`wait`]: `?wait_ms=N` of reads that wait for work to finish instead of being polled.

pub mod config;
pub mod db;
pub mod health;
pub mod http_client;
pub mod idempotency;
pub mod kafka;
pub mod metrics;
pub mod outbox;
pub mod provider_states;
pub mod reply;
pub mod resilience;
pub mod seeded;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod trace;
pub mod wait;
