//! The inventory service: stock per SKU and reservations of it for orders.
//!
//! The HTTP API is specified in `services/README.md` (section *inventory*) and implemented in
//! [`api`]; the tables and queries are in [`store`] and `migrations/`. Everything else (config,
//! database pool and migrations, idempotency keys, server, health, metrics, logs) comes from
//! `faultline-kit`.
//!
//! What holds, and what the chaos checkers rely on:
//! - stock never goes negative and never is over-reserved, however many reservations run at
//!   once (conditional updates, plus CHECK constraints as the backstop);
//! - an order has at most one reservation; release and commit are idempotent;
//! - an order released before it was reserved stays released: a late reservation is refused
//!   (`409 order_released`).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = faultline_inventory::InventoryConfig::from_env().map_err(anyhow::Error::msg)?;
//! faultline_inventory::run(config, faultline_kit::server::shutdown_on_signals()).await
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
pub const SERVICE: &str = "inventory";
pub const ENV_PREFIX: &str = "INVENTORY";

/// The service's own migrations (the kit's run first, see [`faultline_kit::db::migrate`]).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The environment variables, as `--help` lists them.
pub const ENVIRONMENT_HELP: &str = "\
Environment variables:
  INVENTORY_DATABASE_URL              postgres://user:password@host:port/database (required)
  INVENTORY_HTTP_ADDR                 listen address [default: 127.0.0.1:0, any free port]
  INVENTORY_TEST_MODE                 true enables PUT /admin/stock/{sku} and
                                      POST /admin/provider-states [default: false]
  INVENTORY_DATABASE_MAX_CONNECTIONS  database pool size [default: 10]
  INVENTORY_SEEDED_BUGS               test mode only: comma-separated seeded bugs to switch on
                                      (faultline_kit::seeded) [default: none]
  RUST_LOG                            log filter [default: info]";

/// The service's configuration.
#[derive(Debug, Clone)]
pub struct InventoryConfig {
    /// Listen address, database and test mode (`PUT /admin/stock/{sku}`, provider states),
    /// as every HTTP service with a database reads them.
    pub base: HttpDatabaseConfig,
}

impl InventoryConfig {
    /// Reads the `INVENTORY_*` variables of the process environment.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_reader(EnvReader::from_env(ENV_PREFIX))
    }

    /// Reads the variables through `env`; every bad one is reported at once.
    pub fn from_reader(mut env: EnvReader) -> Result<Self, ConfigErrors> {
        let config = Self {
            base: HttpDatabaseConfig::read(&mut env),
        };
        faultline_kit::seeded::read(&mut env, config.base.test_mode);
        env.finish()?;
        Ok(config)
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
}

/// The service's own routes, with the test-mode ones when `test_mode` (the server adds health,
/// metrics and the telemetry middleware).
pub fn router(state: AppState, test_mode: bool) -> Router {
    let pool = state.pool.clone();
    let routes = api::routes(state, test_mode);
    if test_mode {
        // `POST /admin/provider-states`, for contract verification.
        routes.merge(states::provider_states(pool).router())
    } else {
        routes
    }
}

/// Connects to the database, runs the migrations and binds the listener; serve with
/// [`BoundServer::run`]. [`BoundServer::local_addr`] tells where (useful with port 0).
pub async fn bind(config: &InventoryConfig) -> anyhow::Result<BoundServer> {
    let base = &config.base;
    tracing::info!(database = %redact_url(&base.database_url), test_mode = base.test_mode, "connecting to the database");
    let pool = db::connect(&base.database_url, base.database_max_connections).await?;
    db::migrate(&pool, &MIGRATOR).await?;
    let app = router(AppState { pool: pool.clone() }, base.test_mode);
    let server = Server::new(SERVICE, app)
        .ready_checks(vec![ReadyCheck::database(pool)])
        .bind(base.http_addr)
        .await?;
    Ok(server)
}

/// Runs the service until `shutdown` is cancelled; requests in flight finish first.
pub async fn run(config: InventoryConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let server = bind(&config).await?;
    server.run(shutdown).await.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATABASE_URL: (&str, &str) = (
        "INVENTORY_DATABASE_URL",
        "postgres://u:p@127.0.0.1:5432/inventory",
    );
    const BUG: &str = faultline_kit::seeded::INVENTORY_RESERVATION_NOT_IDEMPOTENT;

    fn read(pairs: &[(&str, &str)]) -> Result<InventoryConfig, String> {
        InventoryConfig::from_reader(EnvReader::from_pairs(ENV_PREFIX, pairs.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn seeded_bugs_are_refused_outside_test_mode() {
        let error = read(&[DATABASE_URL, ("INVENTORY_SEEDED_BUGS", BUG)]).unwrap_err();
        assert!(
            error.contains("INVENTORY_SEEDED_BUGS") && error.contains("test mode"),
            "{error}"
        );
        let error = read(&[
            DATABASE_URL,
            ("INVENTORY_TEST_MODE", "true"),
            ("INVENTORY_SEEDED_BUGS", "loses-stock"),
        ])
        .unwrap_err();
        assert!(error.contains("loses-stock"), "{error}");
    }

    #[test]
    fn seeded_bugs_are_read_in_test_mode() {
        assert!(!read(&[DATABASE_URL]).unwrap().base.test_mode);
        let config = read(&[
            DATABASE_URL,
            ("INVENTORY_TEST_MODE", "true"),
            ("INVENTORY_SEEDED_BUGS", BUG),
        ])
        .unwrap();
        assert!(config.base.test_mode);
    }
}
