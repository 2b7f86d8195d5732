//! The payment service: charges and refunds of orders, each at most once.
//!
//! The HTTP API is specified in `services/README.md` (section *payment*) and implemented in
//! [`api`]; the tables and queries are in [`store`] and `migrations/`. Everything else (config,
//! database pool and migrations, idempotency keys, server, health, metrics, logs) comes from
//! `faultline-kit`.
//!
//! What holds, and what the chaos checkers rely on:
//! - a charge request with the same `Idempotency-Key` and body is answered the same every time
//!   and takes money at most once; the answer is stored in the transaction that did the work;
//! - an order takes money at most once whatever keys are used (`409 already_charged`);
//! - a refund voids the order, so no charge succeeds for it afterwards (`409 order_voided`).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = faultline_payment::config_from_env().map_err(anyhow::Error::msg)?;
//! faultline_payment::run(config, faultline_kit::server::shutdown_on_signals()).await
//! # }
//! ```

pub mod api;
pub use faultline_kit::reply;
pub mod states;
pub mod store;

use anyhow::Context;
use axum::Router;
use faultline_kit::config::{redact_url, ConfigErrors, EnvReader, HttpDatabaseConfig};
use faultline_kit::db;
use faultline_kit::health::ReadyCheck;
use faultline_kit::server::{BoundServer, Server};
use sqlx::migrate::Migrator;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The service's name in logs, and the prefix of its environment variables.
pub const SERVICE: &str = "payment";
pub const ENV_PREFIX: &str = "PAYMENT";

/// The service's own migrations (the kit's run first, see [`faultline_kit::db::migrate`]).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The environment variables, as `--help` lists them.
pub const ENVIRONMENT_HELP: &str = "\
Environment variables:
  PAYMENT_DATABASE_URL              postgres://user:password@host:port/database (required)
  PAYMENT_HTTP_ADDR                 listen address [default: 127.0.0.1:0, any free port]
  PAYMENT_DATABASE_MAX_CONNECTIONS  database pool size [default: 10]
  PAYMENT_TEST_MODE                 true enables POST /admin/provider-states [default: false]
  PAYMENT_SEEDED_BUGS               test mode only: comma-separated seeded bugs to switch on
                                    (faultline_kit::seeded) [default: none]
  RUST_LOG                          log filter [default: info]";

/// The service's configuration: only what every HTTP service with a database reads.
pub type PaymentConfig = HttpDatabaseConfig;

/// Reads the `PAYMENT_*` variables of the process environment; every bad one is reported at once.
pub fn config_from_env() -> Result<PaymentConfig, ConfigErrors> {
    config_from_reader(EnvReader::from_env(ENV_PREFIX))
}

/// Reads the variables through `env`; every bad one is reported at once.
pub fn config_from_reader(mut env: EnvReader) -> Result<PaymentConfig, ConfigErrors> {
    let config = HttpDatabaseConfig::read(&mut env);
    faultline_kit::seeded::read(&mut env, config.test_mode);
    env.finish()?;
    Ok(config)
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
}

/// The service's own routes, with `POST /admin/provider-states` when `test_mode` (the server
/// adds health, metrics and the telemetry middleware).
pub fn router(state: AppState, test_mode: bool) -> Router {
    let pool = state.pool.clone();
    let routes = api::routes(state);
    if test_mode {
        routes.merge(states::provider_states(pool).router())
    } else {
        routes
    }
}

/// Connects to the database, runs the migrations and binds the listener; serve with
/// [`BoundServer::run`]. [`BoundServer::local_addr`] tells where (useful with port 0).
pub async fn bind(config: &PaymentConfig) -> anyhow::Result<BoundServer> {
    tracing::info!(database = %redact_url(&config.database_url), "connecting to the database");
    let pool = db::connect(&config.database_url, config.database_max_connections).await?;
    db::migrate(&pool, &MIGRATOR).await?;
    let server = Server::new(
        SERVICE,
        router(AppState { pool: pool.clone() }, config.test_mode),
    )
    .ready_checks(vec![ReadyCheck::database(pool)])
    .bind(config.http_addr)
    .await?;
    Ok(server)
}

/// Runs the service until `shutdown` is cancelled; requests in flight finish first.
pub async fn run(config: PaymentConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let server = bind(&config).await?;
    server.run(shutdown).await.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATABASE_URL: (&str, &str) = (
        "PAYMENT_DATABASE_URL",
        "postgres://u:p@127.0.0.1:5432/payment",
    );
    const BUG: &str = faultline_kit::seeded::PAYMENT_FORGETS_IDEMPOTENCY_CLAIM;

    fn read(pairs: &[(&str, &str)]) -> Result<PaymentConfig, String> {
        config_from_reader(EnvReader::from_pairs(ENV_PREFIX, pairs.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn seeded_bugs_are_refused_outside_test_mode() {
        let error = read(&[DATABASE_URL, ("PAYMENT_SEEDED_BUGS", BUG)]).unwrap_err();
        assert!(
            error.contains("PAYMENT_SEEDED_BUGS") && error.contains("test mode"),
            "{error}"
        );
        let error = read(&[
            DATABASE_URL,
            ("PAYMENT_TEST_MODE", "true"),
            ("PAYMENT_SEEDED_BUGS", "teleports-money"),
        ])
        .unwrap_err();
        assert!(error.contains("teleports-money"), "{error}");
    }

    #[test]
    fn seeded_bugs_are_read_in_test_mode() {
        assert!(!read(&[DATABASE_URL]).unwrap().test_mode);
        let config = read(&[
            DATABASE_URL,
            ("PAYMENT_TEST_MODE", "true"),
            ("PAYMENT_SEEDED_BUGS", BUG),
        ])
        .unwrap();
        assert!(config.test_mode);
    }
}
