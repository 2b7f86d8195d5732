//! The notification service: it consumes the order events on topic `orders` (consumer group
//! `notification`) and records one notification per event, exactly once in effect, however
//! often Kafka delivers it.
//!
//! - [`events`]: the event contract and how one event is applied (dedupe on `event-id` in the
//!   kit's `processed_events`, in the same transaction as the `notifications` row).
//! - [`api`]: `GET /notifications?order_id=…`.
//! - [`config`]: `NOTIFICATION_*` variables.
//!
//! The kit does the plumbing: the [`EventConsumer`] commits an event's offset only after
//! [`events::apply`] succeeded, retries it on a database failure and dead-letters a malformed
//! one to `orders.dlt`. `/health/ready` checks the database and Kafka. On shutdown the HTTP
//! server finishes its requests and the consumer finishes (and commits) the event in hand.
//!
//! ```no_run
//! # async fn demo() -> Result<(), faultline_notification::NotificationError> {
//! let config = faultline_notification::config::NotificationConfig::from_env()?;
//! let shutdown = faultline_kit::server::shutdown_on_signals();
//! faultline_notification::run(config, shutdown).await
//! # }
//! ```

pub mod api;
pub mod config;
pub mod events;

use std::net::SocketAddr;

use faultline_kit::config::ConfigErrors;
use faultline_kit::db::{self, DbError};
use faultline_kit::health::ReadyCheck;
use faultline_kit::kafka::{self, ConsumerSettings, EventConsumer, EventProducer, ReceivedEvent};
use faultline_kit::server::{BoundServer, ServeError, Server};
use sqlx::migrate::Migrator;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use api::router;
pub use config::NotificationConfig;

/// The service's name in logs and metrics.
pub const SERVICE: &str = "notification";

/// Partitions of `orders` and `orders.dlt` when this service is the first to create them.
pub const PARTITIONS: i32 = 3;

/// Database connections: the consumer uses one at a time, the API the rest.
const MAX_CONNECTIONS: u32 = 5;

/// The service's own tables (beside the kit's).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Why the service could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("creating the Kafka {client}: {reason}")]
    Kafka {
        client: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// A started service: database migrated, consumer subscribed, HTTP bound.
pub struct NotificationService {
    server: BoundServer,
    consumer: EventConsumer,
    /// Serves the `kafka` readiness check.
    producer: EventProducer,
    pool: PgPool,
    /// The test-mode failpoint, if configured.
    crash_for: Option<String>,
}

impl NotificationService {
    /// Connects and migrates the database, makes sure the topics exist, subscribes the
    /// consumer and binds `config.http_addr`.
    pub async fn start(config: &NotificationConfig) -> Result<Self, NotificationError> {
        let pool = db::connect(&config.database_url, MAX_CONNECTIONS).await?;
        db::migrate(&pool, &MIGRATOR).await?;
        let dead_letters = kafka::dead_letter_topic(events::TOPIC);
        // Not fatal: the consumer picks the topic up once someone (order) has created it.
        if let Err(error) = kafka::ensure_topics(
            &config.kafka_bootstrap,
            &[events::TOPIC, &dead_letters],
            PARTITIONS,
        )
        .await
        {
            tracing::warn!(%error, "could not make sure the topics exist; consuming anyway");
        }
        let producer =
            EventProducer::new(&config.kafka_bootstrap).map_err(kafka_error("producer"))?;
        let mut settings = ConsumerSettings::new(&config.kafka_bootstrap, events::CONSUMER, [events::TOPIC]);
        // Seeded bug: at most once — the offset goes before the notification is written.
        settings.commit_before_handling =
            faultline_kit::seeded::active(faultline_kit::seeded::NOTIFICATION_COMMITS_BEFORE_HANDLING);
        let consumer = EventConsumer::new(settings).map_err(kafka_error("consumer"))?;
        let server = Server::new(SERVICE, router(pool.clone()))
            .ready_checks(vec![
                ReadyCheck::database(pool.clone()),
                ReadyCheck::kafka(producer.clone()),
            ])
            .bind(config.http_addr)
            .await?;
        Ok(Self {
            server,
            consumer,
            producer,
            pool,
            crash_for: config.crash_after_effect_for_customer.clone(),
        })
    }

    /// Where the HTTP API listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves and consumes until `shutdown` is cancelled, then finishes the requests in flight
    /// and the event in hand (committing it), and returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), NotificationError> {
        let Self {
            server,
            consumer,
            producer,
            pool,
            crash_for,
        } = self;
        // The consumer also stops when the server fails.
        let stop_consuming = shutdown.child_token();
        let consuming = {
            let stop = stop_consuming.clone();
            let pool = pool.clone();
            tokio::spawn(async move {
                let handler = |event: ReceivedEvent| {
                    let pool = pool.clone();
                    let crash_for = crash_for.clone();
                    async move {
                        events::apply(&pool, &event, crash_for.as_deref())
                            .await
                            .map(|_| ())
                    }
                };
                consumer.run(stop, handler).await;
                consumer
            })
        };
        let served = server.run(shutdown).await;
        stop_consuming.cancel();
        match consuming.await {
            // Leaving the group blocks; keep it off the async threads.
            Ok(consumer) => drop_off_runtime((consumer, producer)).await,
            Err(error) => tracing::error!(%error, "the consumer task failed"),
        }
        pool.close().await;
        tracing::info!("notification stopped");
        served.map_err(NotificationError::from)
    }
}

fn kafka_error<E: std::fmt::Display>(client: &'static str) -> impl FnOnce(E) -> NotificationError {
    move |error| NotificationError::Kafka {
        client,
        reason: error.to_string(),
    }
}

async fn drop_off_runtime<T: Send + 'static>(value: T) {
    if let Err(error) = tokio::task::spawn_blocking(move || drop(value)).await {
        tracing::warn!(%error, "closing the Kafka clients");
    }
}

/// Starts the service and runs it until `shutdown` is cancelled.
pub async fn run(
    config: NotificationConfig,
    shutdown: CancellationToken,
) -> Result<(), NotificationError> {
    NotificationService::start(&config)
        .await?
        .run(shutdown)
        .await
}
