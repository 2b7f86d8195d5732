//! The resilient HTTP client every service uses to call another: one [`ResilientClient`] per
//! dependency, built from the [`resilience`](crate::resilience) layers.
//!
//! Per call, outermost first: a bulkhead slot (held for the whole call) → the retry loop →
//! per attempt, a circuit-breaker permit → a timeout → reqwest. Every attempt carries a
//! `traceparent` that is a child of the caller's [`TraceContext`] (or of a new root trace when
//! the caller has none; all attempts of one call then share that root's trace id) and, when the
//! request has one, its `Idempotency-Key`.
//!
//! What the breaker counts as a failure: a transport error, a timed-out attempt and any 5xx
//! answer. Every other answer, 4xx included, is a success: a 404 or 409 says the dependency is
//! healthy enough to judge the request, and opening the circuit on client errors would cut off
//! a healthy service because of bad callers. 429 is retried but not counted as a failure.
//!
//! What is retried: only requests safe to send twice (idempotent method, or an
//! `Idempotency-Key`), and only after a transport error, a timeout, or 429/502/503/504.
//! A call refused by the bulkhead or by an open circuit is never retried.
//!
//! What `send` returns: `Ok` for every answer below 500 (a 404 is the caller's business), and
//! [`CallError::Status`] for a 5xx, or for a 429 still answered when the attempts ran out.
//!
//! Metrics: `faultline_http_client_requests_total{dependency, outcome}` (one per call, with
//! `outcome` one of [`CallError::outcome`]'s values, `success` or `client_error`),
//! `faultline_http_client_duration_seconds{dependency}` (whole call, retries included) and
//! `faultline_http_client_retries_total{dependency}`.
//!
//! ```no_run
//! use std::time::Duration;
//! use faultline_kit::http_client::{RequestSpec, ResilientClient};
//! use faultline_kit::resilience::{CircuitBreakerConfig, CircuitRegistry, RetryPolicy};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = CircuitRegistry::new(); // serve it with `resilience::admin_router`
//! let payment = ResilientClient::builder("payment", "http://payment:8080")
//!     .timeout(Duration::from_secs(2))
//!     .retry(RetryPolicy { max_attempts: 3, ..RetryPolicy::default() })
//!     .circuit_breaker(CircuitBreakerConfig { sliding_window_size: 20, minimum_number_of_calls: 10, ..Default::default() })
//!     .bulkhead(16)
//!     .registry(&registry)
//!     .build()?;
//! let charge = RequestSpec::post("/charges")
//!     .json(serde_json::json!({ "order_id": "o-1", "amount_cents": 4200 }))
//!     .idempotency_key("charge-o-1");
//! let response = payment.send(charge).await?;
//! let receipt: serde_json::Value = response.json()?;
//! # let _ = receipt; Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::resilience::bulkhead::Bulkhead;
use crate::resilience::circuit_breaker::{
    CallOutcome, CircuitBreaker, CircuitBreakerConfig, CircuitRegistry, Clock,
    InvalidCircuitBreakerConfig, SystemClock,
};
use crate::resilience::retry::{self, InvalidRetryPolicy, RetryPolicy, IDEMPOTENCY_KEY};
use crate::trace::{TraceContext, TRACEPARENT};

/// One request to a dependency, relative to the client's base URL.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// The HTTP method.
    pub method: Method,
    /// The path (and query), joined onto the base URL: `/orders/42?full=true`.
    pub path: String,
    /// Extra headers. `traceparent` and `Idempotency-Key` are set by the client.
    pub headers: HeaderMap,
    /// A JSON body, sent with `Content-Type: application/json`.
    pub body: Option<serde_json::Value>,
    /// Makes a non-idempotent request safe to retry; sent as `Idempotency-Key`.
    pub idempotency_key: Option<String>,
}

impl RequestSpec {
    /// A request with no headers, body or key.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body: None,
            idempotency_key: None,
        }
    }

    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// A POST to `path`.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    /// A PUT to `path`.
    pub fn put(path: impl Into<String>) -> Self {
        Self::new(Method::PUT, path)
    }

    /// A DELETE of `path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// Sets the JSON body.
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

/// A dependency's answer, read in full.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a call to a dependency produced no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The circuit breaker refused the call (OPEN, or HALF_OPEN with every probe taken).
    #[error("circuit to `{dependency}` is open: call not attempted")]
    CircuitOpen {
        /// The dependency called.
        dependency: String,
    },
    /// Too many calls to the dependency were already in flight.
    #[error("bulkhead for `{dependency}` is full: call not attempted")]
    BulkheadFull {
        /// The dependency called.
        dependency: String,
    },
    /// The last attempt did not finish within the per-attempt timeout.
    #[error("`{dependency}` did not answer within {after:?} (attempt {attempts})")]
    Timeout {
        /// The dependency called.
        dependency: String,
        /// The per-attempt timeout.
        after: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// The last attempt failed below HTTP: connection refused or reset, malformed answer...
    #[error("could not reach `{dependency}` (attempt {attempts}): {source}")]
    Transport {
        /// The dependency called.
        dependency: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
        /// Attempts made.
        attempts: u32,
    },
    /// The dependency answered 5xx, or kept answering 429/502/503/504 until attempts ran out.
    #[error("`{dependency}` answered {status} (attempt {attempts}): {body}")]
    Status {
        /// The dependency called.
        dependency: String,
        /// The last status received.
        status: StatusCode,
        /// The last body received, as text.
        body: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The request could not be built: bad path, bad header value.
    #[error("invalid request to `{dependency}`: {reason}")]
    InvalidRequest {
        /// The dependency called.
        dependency: String,
        /// What was wrong.
        reason: String,
    },
}

impl CallError {
    /// The `outcome` label this error is counted under in `faultline_http_client_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::CircuitOpen { .. } => "circuit_open",
            Self::BulkheadFull { .. } => "bulkhead_full",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport_error",
            Self::Status { .. } => "status_error",
            Self::InvalidRequest { .. } => "invalid_request",
        }
    }

    /// Whether the call was refused locally (breaker or bulkhead) without reaching the dependency.
    pub fn is_rejection(&self) -> bool {
        matches!(self, Self::CircuitOpen { .. } | Self::BulkheadFull { .. })
    }
}

/// The client's settings do not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The base URL does not parse or is not http(s).
    #[error("invalid base URL for `{dependency}`: `{base_url}`: {reason}")]
    InvalidBaseUrl {
        /// The dependency being configured.
        dependency: String,
        /// The URL given.
        base_url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A circuit-breaker setting is out of range.
    #[error(transparent)]
    CircuitBreaker(#[from] InvalidCircuitBreakerConfig),
    /// A retry setting is out of range.
    #[error(transparent)]
    Retry(#[from] InvalidRetryPolicy),
    /// A setting of the client itself is out of range.
    #[error("invalid client setting for `{dependency}`: `{field}` {problem}")]
    InvalidSetting {
        /// The dependency being configured.
        dependency: String,
        /// The builder method's name.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// reqwest could not build its client.
    #[error("could not build the HTTP client for `{dependency}`: {source}")]
    Http {
        /// The dependency being configured.
        dependency: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
}

/// Configures a [`ResilientClient`]; start from [`ResilientClient::builder`].
#[derive(Debug)]
pub struct ResilientClientBuilder {
    dependency: String,
    base_url: String,
    attempt_timeout: Duration,
    retry: RetryPolicy,
    circuit_breaker: CircuitBreakerConfig,
    max_concurrent: usize,
    bulkhead_max_wait: Duration,
    registry: Option<CircuitRegistry>,
    clock: Arc<dyn Clock>,
}

impl ResilientClientBuilder {
    /// The per-attempt timeout, covering the request and reading the whole body. Default 2 s.
    pub fn timeout(mut self, per_attempt: Duration) -> Self {
        self.attempt_timeout = per_attempt;
        self
    }

    /// The retry policy. Default [`RetryPolicy::default`] (3 attempts).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The circuit breaker's configuration. Default [`CircuitBreakerConfig::default`].
    pub fn circuit_breaker(mut self, config: CircuitBreakerConfig) -> Self {
        self.circuit_breaker = config;
        self
    }

    /// How many calls may be in flight at once. Default 64.
    pub fn bulkhead(mut self, max_concurrent: usize) -> Self {
        self.max_concurrent = max_concurrent;
        self
    }

    /// How long a call may wait for a bulkhead slot before it is rejected. Default 0.
    pub fn bulkhead_max_wait(mut self, max_wait: Duration) -> Self {
        self.bulkhead_max_wait = max_wait;
        self
    }

    /// Registers the client's circuit breaker in `registry`, for the admin endpoint.
    pub fn registry(mut self, registry: &CircuitRegistry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// The clock the circuit breaker reads (tests pass a [`ManualClock`](crate::resilience::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks every setting and builds the client.
    pub fn build(self) -> Result<ResilientClient, ClientBuildError> {
        let dependency = self.dependency;
        let invalid_url = |reason: String| ClientBuildError::InvalidBaseUrl {
            dependency: dependency.clone(),
            base_url: self.base_url.clone(),
            reason,
        };
        let parsed = reqwest::Url::parse(&self.base_url).map_err(|e| invalid_url(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid_url("expected an http:// or https:// URL".into()));
        }
        if self.attempt_timeout.is_zero() {
            return Err(ClientBuildError::InvalidSetting {
                dependency,
                field: "timeout",
                problem: "must be positive",
            });
        }
        if self.max_concurrent == 0 || self.max_concurrent > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ClientBuildError::InvalidSetting {
                dependency,
                field: "bulkhead",
                problem: "must allow at least 1 concurrent call",
            });
        }
        self.retry.validate()?;
        let breaker =
            CircuitBreaker::with_clock(dependency.clone(), self.circuit_breaker, self.clock)?;
        if let Some(registry) = &self.registry {
            registry.register(&breaker);
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|source| ClientBuildError::Http {
                dependency: dependency.clone(),
                source,
            })?;
        Ok(ResilientClient {
            inner: Arc::new(ClientInner {
                bulkhead: Bulkhead::new(dependency.clone(), self.max_concurrent)
                    .with_max_wait(self.bulkhead_max_wait),
                base_url: self.base_url.trim_end_matches('/').to_owned(),
                dependency,
                attempt_timeout: self.attempt_timeout,
                retry: self.retry,
                breaker,
                http,
            }),
        })
    }
}

/// An HTTP client for one dependency with timeout, retry, circuit breaker and bulkhead.
/// Cloning shares everything, breaker and bulkhead included.
#[derive(Debug, Clone)]
pub struct ResilientClient {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    dependency: String,
    base_url: String,
    attempt_timeout: Duration,
    retry: RetryPolicy,
    breaker: CircuitBreaker,
    bulkhead: Bulkhead,
    http: reqwest::Client,
}

/// How one attempt ended, before the retry loop judges it.
enum AttemptError {
    Timeout,
    Transport(reqwest::Error),
}

impl ResilientClient {
    /// Starts configuring a client for `dependency` (the name used in metrics, logs and the
    /// circuit registry) at `base_url`.
    pub fn builder(
        dependency: impl Into<String>,
        base_url: impl Into<String>,
    ) -> ResilientClientBuilder {
        ResilientClientBuilder {
            dependency: dependency.into(),
            base_url: base_url.into(),
            attempt_timeout: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            circuit_breaker: CircuitBreakerConfig::default(),
            max_concurrent: 64,
            bulkhead_max_wait: Duration::ZERO,
            registry: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The dependency this client calls.
    pub fn dependency(&self) -> &str {
        &self.inner.dependency
    }

    /// The circuit breaker guarding the dependency.
    pub fn circuit_breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// The bulkhead bounding concurrent calls.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.inner.bulkhead
    }

    /// Sends `request` through bulkhead, retry, breaker and timeout; see the module docs for
    /// what is retried and what counts as failure.
    pub async fn send(&self, request: RequestSpec) -> Result<Response, CallError> {
        let started = Instant::now();
        let result = self.send_through_layers(request).await;
        let outcome = match &result {
            Ok(response) if response.status.is_client_error() => "client_error",
            Ok(_) => "success",
            Err(error) => error.outcome(),
        };
        let dependency = self.inner.dependency.clone();
        metrics::counter!("faultline_http_client_requests_total", "dependency" => dependency.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("faultline_http_client_duration_seconds", "dependency" => dependency)
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn send_through_layers(&self, request: RequestSpec) -> Result<Response, CallError> {
        let inner = &*self.inner;
        let dependency = || inner.dependency.clone();
        let _slot = inner
            .bulkhead
            .try_enter()
            .await
            .map_err(|_| CallError::BulkheadFull {
                dependency: dependency(),
            })?;

        let url = format!(
            "{}/{}",
            inner.base_url,
            request.path.trim_start_matches('/')
        );
        let url = reqwest::Url::parse(&url).map_err(|e| CallError::InvalidRequest {
            dependency: dependency(),
            reason: format!("path `{}` does not make a valid URL: {e}", request.path),
        })?;
        let mut headers = request.headers;
        if let Some(key) = &request.idempotency_key {
            let value = HeaderValue::from_str(key).map_err(|_| CallError::InvalidRequest {
                dependency: dependency(),
                reason: format!("idempotency key {key:?} is not a valid header value"),
            })?;
            headers.insert(IDEMPOTENCY_KEY, value);
        }
        let safe_to_retry = retry::is_safe_to_retry(&request.method, &headers);
        let trace = TraceContext::current().unwrap_or_else(TraceContext::new_root);

        let mut attempts = 0;
        loop {
            let permit = inner
                .breaker
                .try_acquire()
                .map_err(|_| CallError::CircuitOpen {
                    dependency: dependency(),
                })?;
            attempts += 1;
            let attempt_started = Instant::now();
            let attempt = tokio::time::timeout(
                inner.attempt_timeout,
                self.attempt(
                    &request.method,
                    &url,
                    &headers,
                    request.body.as_ref(),
                    trace.child(),
                ),
            )
            .await
            .unwrap_or(Err(AttemptError::Timeout));
            let failed = match &attempt {
                Ok(response) => response.status.is_server_error(),
                Err(_) => true,
            };
            permit.record(
                if failed {
                    CallOutcome::Failure
                } else {
                    CallOutcome::Success
                },
                attempt_started.elapsed(),
            );

            let (error, retryable, retry_after) = match attempt {
                Ok(response)
                    if response.status.as_u16() < 500
                        && !retry::is_retryable_status(response.status) =>
                {
                    return Ok(response);
                }
                Ok(response) => {
                    let retryable = retry::is_retryable_status(response.status);
                    let retry_after = response
                        .headers
                        .get(RETRY_AFTER)
                        .and_then(retry::parse_retry_after);
                    let error = CallError::Status {
                        dependency: dependency(),
                        status: response.status,
                        body: response.text(),
                        attempts,
                    };
                    (error, retryable, retry_after)
                }
                Err(AttemptError::Timeout) => (
                    CallError::Timeout {
                        dependency: dependency(),
                        after: inner.attempt_timeout,
                        attempts,
                    },
                    true,
                    None,
                ),
                Err(AttemptError::Transport(source)) => (
                    CallError::Transport {
                        dependency: dependency(),
                        source,
                        attempts,
                    },
                    true,
                    None,
                ),
            };
            if !(retryable && safe_to_retry) {
                return Err(error);
            }
            let delay = inner
                .retry
                .delay_before_attempt(attempts, retry_after, &mut rand::rng());
            let Some(delay) = delay else {
                return Err(error);
            };
            tracing::debug!(dependency = %inner.dependency, attempts, ?delay, error = %error, "retrying call");
            metrics::counter!("faultline_http_client_retries_total", "dependency" => dependency())
                .increment(1);
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &reqwest::Url,
        headers: &HeaderMap,
        body: Option<&serde_json::Value>,
        trace: TraceContext,
    ) -> Result<Response, AttemptError> {
        let mut headers = headers.clone();
        let traceparent = HeaderValue::from_str(&trace.to_traceparent())
            .expect("a traceparent is ASCII hex and dashes");
        headers.insert(TRACEPARENT, traceparent);
        let mut builder = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .headers(headers);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(AttemptError::Transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(AttemptError::Transport)?;
        Ok(Response {
            status,
            headers,
            body: body.to_vec(),
        })
    }
}
