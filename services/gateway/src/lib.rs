//! The gateway: the reference system's single entry point for clients.
//!
//! It validates the caller's JWT ([`auth`]), limits each client's request rate
//! ([`rate_limit`]), starts the trace when the client sent none (the kit's telemetry
//! middleware) and forwards `/api/orders...` to the order service through the kit's resilient
//! client ([`routes`]). It owns no database and no Kafka link.
//!
//! Besides its routes it serves the kit's standard ones: `/health/live`; `/health/ready`,
//! which answers 200 only while order's `/health/live` answers through the same client the
//! requests use (so an open circuit to order also shows as "not ready"); `/metrics`; and
//! `/admin/circuits` with the `order` circuit breaker.
//!
//! ```no_run
//! # async fn demo() -> Result<(), faultline_gateway::GatewayError> {
//! let config = faultline_gateway::config::GatewayConfig::from_env()?;
//! let shutdown = faultline_kit::server::shutdown_on_signals();
//! faultline_gateway::run(config, shutdown).await
//! # }
//! ```

pub mod auth;
pub mod config;
pub mod rate_limit;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use faultline_kit::config::ConfigErrors;
use faultline_kit::health::ReadyCheck;
use faultline_kit::http_client::{ClientBuildError, RequestSpec, ResilientClient};
use faultline_kit::resilience::{admin_router, CircuitBreakerConfig, CircuitRegistry};
use faultline_kit::server::{BoundServer, ServeError, Server};
use tokio_util::sync::CancellationToken;

pub use auth::mint_token;
pub use config::GatewayConfig;
pub use routes::{router, GatewayState};

/// The service's name in logs and metrics.
pub const SERVICE: &str = "gateway";

/// Why the gateway could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The circuit breaker guarding order: judged over the last 20 calls (at least 10), open at
/// 50 % failures, probing again after `open_wait` (5 s by default), so a recovered order is
/// used again promptly.
fn order_breaker(open_wait: Duration) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        sliding_window_size: 20,
        minimum_number_of_calls: 10,
        wait_duration_in_open_state: open_wait,
        permitted_number_of_calls_in_half_open_state: 3,
        ..CircuitBreakerConfig::default()
    }
}

impl GatewayState {
    /// The state for `config`, its `order` breaker registered in `registry`.
    pub fn new(
        config: &GatewayConfig,
        registry: &CircuitRegistry,
    ) -> Result<Self, ClientBuildError> {
        let order = ResilientClient::builder("order", config.order_url.clone())
            .timeout(config.order_timeout)
            .circuit_breaker(order_breaker(config.breaker_open_wait))
            .registry(registry)
            .build()?;
        Ok(Self {
            auth: Arc::new(auth::Authenticator::new(
                &config.jwt_secret,
                &config.jwt_audience,
            )),
            limiter: Arc::new(rate_limit::RateLimiter::new(
                config.rate_limit_per_second,
                config.rate_limit_per_second,
            )),
            order,
            // A read that waits for a saga answers before the gateway stops waiting for it.
            max_wait: config.order_timeout.saturating_sub(Duration::from_millis(250)),
        })
    }
}

/// `order`: order's `/health/live` answers 200 through the client the requests use.
fn order_ready_check(order: ResilientClient) -> ReadyCheck {
    ReadyCheck::new("order", move || {
        let order = order.clone();
        async move {
            match order.send(RequestSpec::get("/health/live")).await {
                Ok(answer) if answer.status.is_success() => Ok(()),
                Ok(answer) => Err(format!("order's /health/live answered {}", answer.status)),
                Err(error) => Err(error.to_string()),
            }
        }
    })
}

/// A bound gateway, ready to run.
pub struct Gateway {
    server: BoundServer,
}

impl Gateway {
    /// Builds the routes and binds `config.http_addr`.
    pub async fn start(config: &GatewayConfig) -> Result<Self, GatewayError> {
        let registry = CircuitRegistry::new();
        let state = GatewayState::new(config, &registry)?;
        let checks = vec![order_ready_check(state.order.clone())];
        let server = Server::new(SERVICE, router(state))
            .admin(admin_router(registry))
            .ready_checks(checks)
            .bind(config.http_addr)
            .await?;
        Ok(Self { server })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` is cancelled; requests in flight are finished first.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), GatewayError> {
        self.server.run(shutdown).await?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// Starts the gateway and serves until `shutdown` is cancelled.
pub async fn run(config: GatewayConfig, shutdown: CancellationToken) -> Result<(), GatewayError> {
    Gateway::start(&config).await?.run(shutdown).await
}
