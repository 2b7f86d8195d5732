//! The order service: orders and the orchestrated saga that confirms or cancels them.
//!
//! - [`api`]: `POST /orders`, `GET /orders/{id}`.
//! - [`saga`]: [`OrderSaga`](saga::OrderSaga), the orchestrator (reserve → charge → commit, or
//!   compensate), and the worker that runs and resumes sagas.
//! - [`store`]: the SQL (`orders`, `sagas`; the kit's outbox and idempotency keys).
//! - [`clients`]: payment and inventory over the kit's resilient HTTP client.
//!
//! [`Config::from_env`] reads the `ORDER_*` variables ([`ENV_HELP`] lists them); [`run`] serves
//! until the shutdown token is cancelled. Start-up: migrations, topics `orders` and
//! `orders.dlt`, the outbox relay, every unfinished saga resumed, then HTTP.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = faultline_order::Config::from_env()?;
//! faultline_order::run(config, faultline_kit::server::shutdown_on_signals()).await
//! # }
//! ```

pub mod api;
pub mod clients;
pub mod saga;
pub mod states;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use faultline_kit::config::{ConfigErrors, EnvReader};
use faultline_kit::db;
use faultline_kit::health::ReadyCheck;
use faultline_kit::http_client::ResilientClient;
use faultline_kit::kafka::{self, EventProducer};
use faultline_kit::outbox::OutboxRelay;
use faultline_kit::resilience::{admin_router, CircuitBreakerConfig, CircuitRegistry, RetryPolicy};
use faultline_kit::seeded;
use faultline_kit::server::{BoundServer, Server};
use tokio_util::sync::CancellationToken;

use crate::clients::{HttpInventory, HttpPayments};
use crate::saga::{OrderSaga, SagaSettings, SagaWorker};
use crate::store::{Store, ORDERS_TOPIC};

/// The service's migrations (its own tables; the kit's run first).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The environment variables, for `--help`.
pub const ENV_HELP: &str = "\
Environment (every bad variable is reported at once):
  ORDER_DATABASE_URL            postgres:// URL of the order database      (required)
  ORDER_KAFKA_BOOTSTRAP         Kafka bootstrap servers host:port[,...]    (required)
  ORDER_PAYMENT_URL             base URL of the payment service            (required)
  ORDER_INVENTORY_URL           base URL of the inventory service          (required)
  ORDER_HTTP_ADDR               listen address                             [127.0.0.1:0]
  ORDER_DB_MAX_CONNECTIONS      Postgres pool size                         [10]
  ORDER_CALL_TIMEOUT_MS         per-attempt timeout of a call              [1000]
  ORDER_CALL_MAX_ATTEMPTS       attempts per call (client-level retries)   [3]
  ORDER_PAYMENT_CONCURRENCY     bulkhead: calls in flight to payment       [16]
  ORDER_INVENTORY_CONCURRENCY   bulkhead: calls in flight to inventory     [16]
  ORDER_BULKHEAD_WAIT_MS        how long a call may wait for a bulkhead slot [1000]
  ORDER_CB_WINDOW               circuit breaker: sliding window (calls)    [20]
  ORDER_CB_MIN_CALLS            circuit breaker: calls before judging      [10]
  ORDER_CB_FAILURE_RATE         circuit breaker: failure rate to open, %   [50]
  ORDER_CB_SLOW_CALL_MS         circuit breaker: a slow call takes longer  [2000]
  ORDER_CB_SLOW_RATE            circuit breaker: slow-call rate to open, % [80]
  ORDER_CB_OPEN_WAIT_MS         circuit breaker: time OPEN before probing  [5000]
  ORDER_CB_HALF_OPEN_CALLS      circuit breaker: probes in HALF_OPEN       [3]
  ORDER_STEP_DEADLINE_MS        saga: how long RESERVE/CHARGE retry an
                                unavailable dependency before compensating [20000]
  ORDER_STEP_BACKOFF_MS         saga: first retry backoff ceiling          [200]
  ORDER_STEP_BACKOFF_MAX_MS     saga: backoff cap (compensations retry
                                forever at this pace)                      [2000]
  ORDER_TEST_MODE               true enables POST /admin/provider-states   [false]
  ORDER_SEEDED_BUGS             seeded bugs to switch on (comma-separated;
                                test mode only, see faultline_kit::seeded) [none]
  RUST_LOG                      log filter                                 [info]";

/// The order service's configuration, from `ORDER_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub db_max_connections: u32,
    pub kafka_bootstrap: String,
    pub payment_url: String,
    pub inventory_url: String,
    /// Per-attempt timeout of a call to payment or inventory.
    pub call_timeout: Duration,
    /// Attempts per call, inside the resilient client (the saga retries steps on top).
    pub call_max_attempts: u32,
    pub payment_concurrency: usize,
    pub inventory_concurrency: usize,
    pub bulkhead_wait: Duration,
    /// The breaker each dependency gets; defaults tuned for chaos runs (trips within ~10
    /// calls, probes again after 5 s) rather than Resilience4j's production defaults.
    pub circuit_breaker: CircuitBreakerConfig,
    pub saga: SagaSettings,
    /// Serve `POST /admin/provider-states` (contract verification); never in production.
    pub test_mode: bool,
}

impl Config {
    /// Reads the process environment; errors name every bad variable.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_reader(EnvReader::from_env("ORDER"))
    }

    /// Reads the given variables (tests).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, ConfigErrors>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::from_reader(EnvReader::from_pairs("ORDER", pairs))
    }

    fn from_reader(mut env: EnvReader) -> Result<Self, ConfigErrors> {
        let url = "an http:// or https:// base URL";
        let http_url = |env: &mut EnvReader, name: &str| {
            let value = env.required(name, url);
            if !value.is_empty() && !value.starts_with("http://") && !value.starts_with("https://")
            {
                env.invalid(name, url);
            }
            value.trim_end_matches('/').to_string()
        };
        let payment_url = http_url(&mut env, "PAYMENT_URL");
        let inventory_url = http_url(&mut env, "INVENTORY_URL");
        let percent = "a percentage in (0, 100]";
        let circuit_breaker = CircuitBreakerConfig {
            sliding_window_size: env.parse_or("CB_WINDOW", 20, "a whole number of calls >= 1"),
            minimum_number_of_calls: env.parse_or(
                "CB_MIN_CALLS",
                10,
                "a whole number of calls >= 1",
            ),
            failure_rate_threshold: env.parse_or("CB_FAILURE_RATE", 50.0, percent),
            slow_call_rate_threshold: env.parse_or("CB_SLOW_RATE", 80.0, percent),
            slow_call_duration_threshold: env.millis_or("CB_SLOW_CALL_MS", Duration::from_secs(2)),
            wait_duration_in_open_state: env.millis_or("CB_OPEN_WAIT_MS", Duration::from_secs(5)),
            permitted_number_of_calls_in_half_open_state: env.parse_or(
                "CB_HALF_OPEN_CALLS",
                3,
                "a whole number of calls >= 1",
            ),
        };
        if let Err(invalid) = circuit_breaker.validate() {
            let variable = match invalid.field {
                "sliding_window_size" => "CB_WINDOW",
                "minimum_number_of_calls" => "CB_MIN_CALLS",
                "failure_rate_threshold" => "CB_FAILURE_RATE",
                "slow_call_rate_threshold" => "CB_SLOW_RATE",
                "slow_call_duration_threshold" => "CB_SLOW_CALL_MS",
                "wait_duration_in_open_state" => "CB_OPEN_WAIT_MS",
                _ => "CB_HALF_OPEN_CALLS",
            };
            env.invalid(variable, invalid.expected);
        }
        let config = Config {
            http_addr: env.parse_or(
                "HTTP_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 0)),
                "a socket address host:port, e.g. 127.0.0.1:8080",
            ),
            database_url: env.postgres_url("DATABASE_URL"),
            db_max_connections: env.parse_or("DB_MAX_CONNECTIONS", 10, "a whole number >= 1"),
            kafka_bootstrap: env.required("KAFKA_BOOTSTRAP", "a comma-separated host:port list"),
            payment_url,
            inventory_url,
            call_timeout: env.millis_or("CALL_TIMEOUT_MS", Duration::from_millis(1000)),
            call_max_attempts: env.parse_or("CALL_MAX_ATTEMPTS", 3, "a whole number >= 1"),
            payment_concurrency: env.parse_or("PAYMENT_CONCURRENCY", 16, "a whole number >= 1"),
            inventory_concurrency: env.parse_or("INVENTORY_CONCURRENCY", 16, "a whole number >= 1"),
            bulkhead_wait: env.millis_or("BULKHEAD_WAIT_MS", Duration::from_millis(1000)),
            circuit_breaker,
            saga: SagaSettings {
                step_deadline: env.millis_or("STEP_DEADLINE_MS", Duration::from_secs(20)),
                retry_base_delay: env.millis_or("STEP_BACKOFF_MS", Duration::from_millis(200)),
                retry_max_delay: env.millis_or("STEP_BACKOFF_MAX_MS", Duration::from_secs(2)),
            },
            test_mode: env.parse_or("TEST_MODE", false, "true or false"),
        };
        for (name, zero) in [
            ("DB_MAX_CONNECTIONS", config.db_max_connections == 0),
            ("CALL_TIMEOUT_MS", config.call_timeout.is_zero()),
            ("CALL_MAX_ATTEMPTS", config.call_max_attempts == 0),
            ("PAYMENT_CONCURRENCY", config.payment_concurrency == 0),
            ("INVENTORY_CONCURRENCY", config.inventory_concurrency == 0),
        ] {
            if zero {
                env.invalid(name, "a value above 0");
            }
        }
        seeded::read(&mut env, config.test_mode);
        env.finish()?;
        Ok(config)
    }

    fn client(
        &self,
        dependency: &str,
        base_url: &str,
        concurrency: usize,
        registry: &CircuitRegistry,
    ) -> anyhow::Result<ResilientClient> {
        let mut timeout = self.call_timeout;
        let mut concurrency = concurrency;
        if dependency == "payment" {
            if seeded::active(seeded::ORDER_NO_ATTEMPT_TIMEOUT) {
                // Seeded bug: a charge is never cut off, however long payment takes.
                timeout = Duration::MAX;
            }
            if seeded::active(seeded::ORDER_BULKHEAD_LIMITS_NOTHING) {
                // Seeded bug: as many calls in flight to payment as there are sagas.
                concurrency = tokio::sync::Semaphore::MAX_PERMITS;
            }
        }
        ResilientClient::builder(dependency, base_url)
            .timeout(timeout)
            .retry(RetryPolicy {
                max_attempts: self.call_max_attempts,
                ..RetryPolicy::default()
            })
            .circuit_breaker(self.circuit_breaker.clone())
            .bulkhead(concurrency)
            .bulkhead_max_wait(self.bulkhead_wait)
            .registry(registry)
            .build()
            .with_context(|| format!("building the {dependency} client"))
    }
}

/// A started order service: migrated, topics ensured, relay and sagas running, HTTP bound.
pub struct Service {
    server: BoundServer,
    producer: EventProducer,
    relay: tokio::task::JoinHandle<()>,
    sagas: SagaWorker,
    background: CancellationToken,
}

impl Service {
    /// Starts everything but serving HTTP; unfinished sagas are resumed here.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let pool = db::connect(&config.database_url, config.db_max_connections).await?;
        db::migrate(&pool, &MIGRATOR).await?;
        kafka::ensure_topics(
            &config.kafka_bootstrap,
            &[ORDERS_TOPIC, &kafka::dead_letter_topic(ORDERS_TOPIC)],
            1,
        )
        .await
        .with_context(|| format!("creating the topics on Kafka at {}", config.kafka_bootstrap))?;
        let producer =
            EventProducer::new(&config.kafka_bootstrap).context("creating the Kafka producer")?;

        let registry = CircuitRegistry::new();
        let payments = HttpPayments::new(config.client(
            "payment",
            &config.payment_url,
            config.payment_concurrency,
            &registry,
        )?);
        let inventory = HttpInventory::new(config.client(
            "inventory",
            &config.inventory_url,
            config.inventory_concurrency,
            &registry,
        )?);

        let store = Store::new(pool.clone());
        // Background work stops after the HTTP server has finished its requests.
        let background = CancellationToken::new();
        let relay =
            tokio::spawn(OutboxRelay::new(pool.clone(), producer.clone()).run(background.clone()));
        let saga = Arc::new(OrderSaga::new(
            store.clone(),
            payments,
            inventory,
            config.saga,
        ));
        let sagas = SagaWorker::spawn(saga, background.clone());
        let unfinished = store
            .unfinished_sagas()
            .await
            .context("listing the unfinished sagas")?;
        if !unfinished.is_empty() {
            tracing::info!(sagas = unfinished.len(), "resuming unfinished sagas");
        }
        for order_id in unfinished {
            sagas.submit(order_id);
        }
        // And later, those that no task drives: a creation committed but answered as failed.
        // Seeded bug: only at start.
        if !seeded::active(seeded::ORDER_RESUMES_SAGAS_ONLY_AT_START) {
            tokio::spawn(saga::sweep(store.clone(), sagas.clone(), background.clone()));
        }

        let mut app = api::router(api::ApiState {
            store: store.clone(),
            sagas: sagas.clone(),
        });
        if config.test_mode {
            app = app.merge(states::provider_states(store).router());
        }
        let server = Server::new("order", app)
            .ready_checks(vec![
                ReadyCheck::database(pool),
                ReadyCheck::kafka(producer.clone()),
            ])
            .admin(admin_router(registry))
            .bind(config.http_addr)
            .await?;
        Ok(Self {
            server,
            producer,
            relay,
            sagas,
            background,
        })
    }

    /// Where the service listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` is cancelled, then finishes requests in flight, stops the sagas
    /// (they resume on restart) and the outbox relay.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let served = self.server.run(shutdown).await;
        self.background.cancel();
        self.sagas.stopped().await;
        if let Err(error) = self.relay.await {
            tracing::error!(%error, "the outbox relay task failed");
        }
        // Closing an rdkafka client blocks while it talks to the brokers.
        let producer = self.producer;
        tokio::task::spawn_blocking(move || drop(producer))
            .await
            .ok();
        served?;
        Ok(())
    }
}

/// Starts the service with `config` and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    Service::start(config).await?.run(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUIRED: [(&str, &str); 4] = [
        ("ORDER_DATABASE_URL", "postgres://order:pw@127.0.0.1/order"),
        ("ORDER_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        ("ORDER_PAYMENT_URL", "http://127.0.0.1:8081"),
        ("ORDER_INVENTORY_URL", "http://127.0.0.1:8082"),
    ];

    fn config_error(extra: &[(&'static str, &'static str)]) -> String {
        let pairs = REQUIRED.iter().chain(extra).copied();
        Config::from_pairs(pairs)
            .expect_err("a bad ORDER_SEEDED_BUGS is a configuration error")
            .to_string()
    }

    // Only refusals here: an accepted list would switch bugs on for this whole test binary
    // (`seeded::active` answers for the process), so acceptance is tested in the kit.
    #[test]
    fn seeded_bugs_are_refused_outside_test_mode_or_when_unknown() {
        assert!(Config::from_pairs(REQUIRED).is_ok());
        let error = config_error(&[("ORDER_SEEDED_BUGS", seeded::ORDER_NO_ATTEMPT_TIMEOUT)]);
        assert!(
            error.contains("ORDER_SEEDED_BUGS") && error.contains("test mode"),
            "{error}"
        );
        let error = config_error(&[
            ("ORDER_TEST_MODE", "false"),
            ("ORDER_SEEDED_BUGS", seeded::ORDER_IGNORES_COMMIT_FAILURE),
        ]);
        assert!(error.contains("ORDER_SEEDED_BUGS"), "{error}");
        let error = config_error(&[
            ("ORDER_TEST_MODE", "true"),
            ("ORDER_SEEDED_BUGS", "order-teleports-money"),
        ]);
        assert!(error.contains("order-teleports-money"), "{error}");
        assert!(!seeded::active(seeded::ORDER_NO_ATTEMPT_TIMEOUT));
    }
}
