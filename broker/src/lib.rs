//! The contract broker: where consumers publish their pacts before a release and where anyone
//! asks, before deploying a version, whether everything it talks to has verified against it.
//!
//! It speaks the [Pact Broker](https://docs.pact.io/pact_broker) HTTP API (HAL+JSON, `_links`)
//! far enough that the official Pact tools work against it unchanged: the official broker
//! client (`pact broker publish|can-i-deploy|record-deployment|…`) runs a release pipeline,
//! and the official verifier (`pact verifier --broker-url`) fetches "pacts for verification"
//! and publishes its results back, beside faultline's own verifier (`faultline contracts
//! verify --broker-url`). `docs/broker.md` has the resources, rules and limits. Everything lives in its own Postgres
//! database; the migrations in `broker/migrations/` run at start.
//!
//! - [`api`]: the HTTP resources (see its docs for the list) and the bearer-token rules;
//! - [`store`]: the tables and the decisions made on them — immutable pact contents identified by
//!   their SHA-256, pending pacts, selectors, the matrix, can-i-deploy;
//! - [`client`]: the client the `faultline contracts publish|can-i-deploy|record-deployment`
//!   commands and the tests use;
//!
//! A provider's verification through the broker (fetch, verify against the running system,
//! publish) needs the engine, and lives with it (`faultline_harness::broker_verification`).
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use faultline_broker::{Broker, BrokerConfig};
//! let config = BrokerConfig::from_env()?; // FAULTLINE_BROKER_DATABASE_URL, ..._WRITE_TOKEN
//! let broker = Broker::start(config, "127.0.0.1:0".parse()?).await?;
//! println!("broker at {}", broker.url());
//! broker.stop().await;
//! # Ok(()) }
//! ```
//!
//! Decisions written down here:
//! - A pact is read strictly and stored in faultline's canonical form (sorted keys); its sha
//!   covers its consumer, provider and interactions but not its metadata, so the same contract
//!   written by two tools has the same sha; a body that is not a V4 pact faultline reads is a
//!   400 naming the interaction and JSON path.
//! - Published contracts are immutable: a consumer version publishes one content per provider;
//!   the same content again is a 200, another content a 409. A publication is one transaction,
//!   so a refused request writes nothing (also `POST /contracts/publish` with several pacts).
//! - A pact content is *pending* for a provider branch until a version of the provider on that
//!   branch (any version when no branch is given) verified it successfully.
//! - can-i-deploy considers the integrations whose other side has a version in the target (an
//!   environment's deployed or released versions, the latest with a tag, the latest, or named
//!   versions); an integration with nothing there is reported but does not block.

pub mod api;
pub use faultline_broker_client as client;
pub mod store;

use std::net::SocketAddr;

use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use client::BrokerClient;
pub(crate) use client::enc;


/// Why the broker could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A configuration variable is missing or wrong.
    #[error("{variable}: {problem}")]
    Config {
        variable: &'static str,
        problem: String,
    },
    /// The database could not be reached or migrated.
    #[error("broker database: {0}")]
    Database(String),
    /// The address could not be bound.
    #[error("binding {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
}

/// The tokens: a write token may do everything, a read token only read.
#[derive(Clone)]
pub struct BrokerConfig {
    /// Postgres URL of the broker's own database.
    pub database_url: String,
    /// Bearer token for writes (and reads).
    pub write_token: String,
    /// Bearer token for reads only. When set, reads need a token too; when not, reads are open.
    pub read_token: Option<String>,
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("database_url", &"<redacted>")
            .field("write_token", &"<redacted>")
            .field(
                "read_token",
                &self.read_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl BrokerConfig {
    /// From `FAULTLINE_BROKER_DATABASE_URL`, `FAULTLINE_BROKER_WRITE_TOKEN` and (optional)
    /// `FAULTLINE_BROKER_READ_TOKEN`; an error names the variable.
    pub fn from_env() -> Result<Self, BrokerError> {
        let get = |variable: &'static str| -> Result<Option<String>, BrokerError> {
            match std::env::var(variable) {
                Ok(v) if v.trim().is_empty() => Err(BrokerError::Config {
                    variable,
                    problem: "is empty".into(),
                }),
                Ok(v) => Ok(Some(v)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(e) => Err(BrokerError::Config {
                    variable,
                    problem: e.to_string(),
                }),
            }
        };
        let required = |variable: &'static str, what: &str| {
            get(variable)?.ok_or_else(|| BrokerError::Config {
                variable,
                problem: format!("is not set; expected {what}"),
            })
        };
        let database_url = required(
            "FAULTLINE_BROKER_DATABASE_URL",
            "a Postgres URL such as postgres://user:password@127.0.0.1:5432/broker",
        )?;
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(BrokerError::Config {
                variable: "FAULTLINE_BROKER_DATABASE_URL",
                problem: "expected a postgres:// URL".into(),
            });
        }
        let write_token = required(
            "FAULTLINE_BROKER_WRITE_TOKEN",
            "the bearer token that may publish and record",
        )?;
        let read_token = get("FAULTLINE_BROKER_READ_TOKEN")?;
        if read_token.as_deref() == Some(write_token.as_str()) {
            return Err(BrokerError::Config {
                variable: "FAULTLINE_BROKER_READ_TOKEN",
                problem: "must differ from FAULTLINE_BROKER_WRITE_TOKEN".into(),
            });
        }
        Ok(Self {
            database_url,
            write_token,
            read_token,
        })
    }
}

/// The broker's migrations (`broker/migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A running broker: its address, and a way to stop it.
pub struct Broker {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    pool: PgPool,
}

impl Broker {
    /// Connects to the database, runs the migrations, binds `addr` and serves in the
    /// background until [`Broker::stop`] (or drop).
    pub async fn start(config: BrokerConfig, addr: SocketAddr) -> Result<Self, BrokerError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&config.database_url)
            .await
            .map_err(|e| {
                BrokerError::Database(format!(
                    "connecting to the server FAULTLINE_BROKER_DATABASE_URL names: {e}; is Postgres running there, and does the database exist?"
                ))
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| BrokerError::Database(format!("migrating: {e}")))?;
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| BrokerError::Bind {
                    addr,
                    message: e.to_string(),
                })?;
        let addr = listener.local_addr().map_err(|e| BrokerError::Bind {
            addr,
            message: e.to_string(),
        })?;
        let app = api::router(pool.clone(), &config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
            pool,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the server task ends (on Ctrl-C from the caller's side, or a stop).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops serving (in-flight requests finish) and closes the database pool.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.pool.close().await;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
