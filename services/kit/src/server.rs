//! The HTTP server every service runs: its own routes plus the standard ones
//! (`/health/live`, `/health/ready`, `/metrics`, optional admin routes), the telemetry
//! middleware around all of them, and graceful shutdown.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use faultline_kit::{health::ReadyCheck, server::{self, Server}};
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), server::ServeError> {
//! let shutdown = server::shutdown_on_signals(); // SIGTERM or SIGINT cancel it
//! let app = Router::new().route("/orders/{id}", get(|| async { "..." }));
//! Server::new("order", app)
//!     .ready_checks(vec![ReadyCheck::database(pool)])
//!     .admin(Router::new()) // e.g. the resilience module's `/admin/circuits`
//!     .bind("0.0.0.0:8080".parse().unwrap())
//!     .await?
//!     .run(shutdown)
//!     .await
//! # }
//! ```
//!
//! On shutdown the listener stops accepting, requests in flight are finished, then `run`
//! returns; the service then stops its background tasks (relay, consumer) with the same token.

use std::net::SocketAddr;

use axum::middleware;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::{self, ReadyCheck};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}: {source} (is another process using the port?)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
}

/// A service's HTTP server, before binding.
pub struct Server {
    service: String,
    app: Router,
    admin: Router,
    checks: Vec<ReadyCheck>,
}

impl Server {
    /// `service` names the service in logs; `app` holds its own routes.
    pub fn new(service: &str, app: Router) -> Self {
        Self {
            service: service.to_string(),
            app,
            admin: Router::new(),
            checks: Vec::new(),
        }
    }

    /// Admin routes to serve beside the app's (e.g. `/admin/circuits`).
    pub fn admin(mut self, admin: Router) -> Self {
        self.admin = self.admin.merge(admin);
        self
    }

    /// What `/health/ready` checks.
    pub fn ready_checks(mut self, checks: Vec<ReadyCheck>) -> Self {
        self.checks.extend(checks);
        self
    }

    /// Every route with the standard ones merged in and the telemetry middleware applied.
    pub fn into_router(self) -> Router {
        self.app
            .merge(self.admin)
            .merge(health::router(self.checks))
            .merge(crate::metrics::router())
            .layer(middleware::from_fn(crate::telemetry::trace_requests))
    }

    /// Binds `addr` (port 0 picks a free port; see [`BoundServer::local_addr`]).
    pub async fn bind(self, addr: SocketAddr) -> Result<BoundServer, ServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        tracing::info!(service = %self.service, address = %local_addr, "listening");
        Ok(BoundServer {
            service: self.service.clone(),
            local_addr,
            listener,
            router: self.into_router(),
        })
    }
}

/// A bound server, ready to [`run`](Self::run).
pub struct BoundServer {
    service: String,
    local_addr: SocketAddr,
    listener: TcpListener,
    router: Router,
}

impl BoundServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight and returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let service = self.service;
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.cancelled().await;
                tracing::info!(%service, "shutting down: finishing requests in flight");
            })
            .await
            .map_err(ServeError::Serve)
    }
}

/// Shorthand for a server without admin routes:
/// `Server::new(service, app).ready_checks(checks).bind(addr).await?.run(shutdown).await`.
pub async fn serve(
    service: &str,
    addr: SocketAddr,
    app: Router,
    ready_checks: Vec<ReadyCheck>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    Server::new(service, app)
        .ready_checks(ready_checks)
        .bind(addr)
        .await?
        .run(shutdown)
        .await
}

/// A token cancelled on the first SIGTERM or SIGINT. Call it inside the Tokio runtime.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        tracing::info!(%signal, "shutdown requested");
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
