//! Liveness and readiness: `GET /health/live` and `GET /health/ready`.
//!
//! *Live* answers 200 whenever the process serves HTTP at all: an orchestrator restarts a
//! process only when it stops answering. *Ready* runs every [`ReadyCheck`] concurrently, each
//! bounded by [`CHECK_TIMEOUT`], and answers 200 only when all pass; otherwise 503 with JSON
//! naming the failed checks and why:
//!
//! ```text
//! {"status":"unavailable","failed":["database"],"checks":{"database":"timed out after 2s","kafka":"ok"}}
//! ```
//!
//! ```no_run
//! use faultline_kit::health::{self, ReadyCheck};
//! # fn demo(pool: sqlx::PgPool, producer: faultline_kit::kafka::EventProducer) {
//! let routes: axum::Router = health::router(vec![ReadyCheck::database(pool), ReadyCheck::kafka(producer)]);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use sqlx::PgPool;

use crate::kafka::EventProducer;

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One named dependency check for readiness.
#[derive(Clone)]
pub struct ReadyCheck {
    name: String,
    check: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl std::fmt::Debug for ReadyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ReadyCheck {
    /// A check named `name`: `Ok` when the dependency answers, else why not.
    pub fn new<F, Fut>(name: &str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name: name.to_string(),
            check: Arc::new(move || Box::pin(check())),
        }
    }

    /// `database`: a `SELECT 1` through the pool.
    pub fn database(pool: PgPool) -> Self {
        Self::new("database", move || {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT 1")
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            }
        })
    }

    /// `kafka`: a metadata request answered by the cluster.
    pub fn kafka(producer: EventProducer) -> Self {
        Self::new("kafka", move || {
            let producer = producer.clone();
            async move { producer.check_metadata(CHECK_TIMEOUT).await }
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the check, bounded by [`CHECK_TIMEOUT`].
    pub async fn run(&self) -> Result<(), String> {
        match tokio::time::timeout(CHECK_TIMEOUT, (self.check)()).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {}s", CHECK_TIMEOUT.as_secs())),
        }
    }
}

/// Runs every check concurrently; 200 when all pass, else 503 naming the failures.
pub async fn readiness(checks: &[ReadyCheck]) -> Response {
    let results = futures_util::future::join_all(checks.iter().map(ReadyCheck::run)).await;
    let mut report = Map::new();
    let mut failed = Vec::new();
    for (check, result) in checks.iter().zip(results) {
        let outcome = match result {
            Ok(()) => "ok".to_string(),
            Err(reason) => {
                failed.push(check.name.clone());
                reason
            }
        };
        report.insert(check.name.clone(), Value::String(outcome));
    }
    if failed.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": report})),
        )
            .into_response()
    } else {
        tracing::warn!(?failed, "not ready");
        let body = json!({"status": "unavailable", "failed": failed, "checks": report});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// `GET /health/live` and `GET /health/ready` with `checks`.
pub fn router(checks: Vec<ReadyCheck>) -> Router {
    let checks = Arc::new(checks);
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "live"})) }),
        )
        .route(
            "/health/ready",
            get(move || {
                let checks = Arc::clone(&checks);
                async move { readiness(&checks).await }
            }),
        )
}
