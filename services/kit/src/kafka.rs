//! Kafka: an idempotent [`EventProducer`] and an at-least-once [`EventConsumer`] that commits
//! an offset only after its handler succeeded and sends poison messages to a dead-letter topic.
//!
//! Producing: every message carries a `traceparent` header (the caller's, else a child of the
//! current [`TraceContext`], else a new trace). The producer is idempotent (`acks=all`,
//! `enable.idempotence=true`), so librdkafka's own retries neither duplicate nor reorder
//! messages of a partition.
//!
//! Consuming: the handler sees one [`ReceivedEvent`] at a time, inside the event's trace
//! context, and answers:
//! - `Ok(())`: the offset is committed (synchronously) and the next message is read;
//! - [`HandlerError::Retryable`]: nothing is committed; the same event is handed again after a
//!   backoff growing from [`ConsumerSettings::retry_initial`] to [`ConsumerSettings::retry_max`],
//!   until it succeeds or shutdown is asked (then it is redelivered after restart);
//! - [`HandlerError::Poison`]: the event is published to `<topic>.dlt` ([`dead_letter_topic`])
//!   with the `dlt-*` headers saying why and where it came from, then committed, so one bad
//!   message never blocks the ones behind it.
//!
//! ```no_run
//! use faultline_kit::kafka::{ConsumerSettings, EventConsumer, HandlerError};
//! # async fn demo(shutdown: tokio_util::sync::CancellationToken) -> Result<(), Box<dyn std::error::Error>> {
//! #[derive(serde::Deserialize)]
//! struct OrderEvent { order_id: String }
//!
//! let consumer = EventConsumer::new(ConsumerSettings::new("127.0.0.1:9092", "notification", ["orders"]))?;
//! consumer
//!     .run(shutdown, |event| async move {
//!         let order: OrderEvent = event.json()?; // malformed JSON → Poison → orders.dlt
//!         tracing::info!(order_id = %order.order_id, "notifying");
//!         Ok::<(), HandlerError>(())
//!     })
//!     .await;
//! # Ok(()) }
//! ```
//!
//! Dropping an rdkafka client blocks while it says goodbye to the brokers; drop producers and
//! consumers before the brokers go away (and outside latency-critical tasks).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::trace::{TraceContext, TRACEPARENT};

pub use rdkafka::producer::future_producer::Delivery;

/// Header carrying an event's unique id (set by the outbox), for idempotent consumers.
pub const EVENT_ID: &str = "event-id";
/// Dead-letter headers: why the event was rejected, and where it was read.
pub const DLT_REASON: &str = "dlt-reason";
pub const DLT_ORIGINAL_TOPIC: &str = "dlt-original-topic";
pub const DLT_ORIGINAL_PARTITION: &str = "dlt-original-partition";
pub const DLT_ORIGINAL_OFFSET: &str = "dlt-original-offset";
pub const DLT_CONSUMER_GROUP: &str = "dlt-consumer-group";

/// How long a produced message may wait for the broker's acknowledgement before its delivery
/// fails (`message.timeout.ms`). Bounded, so a cut Kafka link surfaces as an error the outbox
/// relay retries rather than a task stuck for librdkafka's default five minutes.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The dead-letter topic of `topic`: `<topic>.dlt`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlt")
}

/// Settings every client shares: reconnect quickly (at most 1 s apart) after a faulted link.
fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "1000")
        .set("socket.connection.setup.timeout.ms", "5000");
    config
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("publishing to {topic}: {source}")]
    Kafka { topic: String, source: KafkaError },
    #[error("publishing to {topic}: the producer was dropped before delivery")]
    Canceled { topic: String },
}

/// An idempotent producer; cheap to clone (clones share one connection).
#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer,
}

/// A message handed to the producer whose acknowledgement is still to come.
pub struct PendingDelivery {
    topic: String,
    future: DeliveryFuture,
}

impl PendingDelivery {
    /// Waits (at most [`DELIVERY_TIMEOUT`]) until the broker acknowledged the message.
    pub async fn delivered(self) -> Result<Delivery, PublishError> {
        match self.future.await {
            Ok(Ok(delivery)) => Ok(delivery),
            Ok(Err((source, _message))) => Err(PublishError::Kafka {
                topic: self.topic,
                source,
            }),
            Err(_canceled) => Err(PublishError::Canceled { topic: self.topic }),
        }
    }
}

impl EventProducer {
    /// A producer for `bootstrap` (`host:port[,host:port...]`).
    pub fn new(bootstrap: &str) -> Result<Self, KafkaError> {
        Self::with_overrides(bootstrap, &[])
    }

    /// A producer with extra librdkafka settings on top of the kit's.
    pub fn with_overrides(bootstrap: &str, overrides: &[(&str, &str)]) -> Result<Self, KafkaError> {
        let mut config = client_config(bootstrap);
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            // The outbox relay hands a round's rows over at once and then awaits them all, so
            // lingering batches nothing more: it would only delay every event by 5 ms.
            .set("linger.ms", "0");
        for (key, value) in overrides {
            config.set(*key, *value);
        }
        Ok(Self {
            producer: config.create()?,
        })
    }

    /// Hands a message to the producer without waiting for the broker: messages enqueued one
    /// after another keep their order within a partition. `headers` without a `traceparent` get
    /// one from the current trace context.
    pub fn enqueue(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<PendingDelivery, PublishError> {
        let mut kafka_headers = OwnedHeaders::new_with_capacity(headers.len() + 1);
        for (name, value) in headers {
            kafka_headers = kafka_headers.insert(Header {
                key: name,
                value: Some(*value),
            });
        }
        if !headers.iter().any(|(name, _)| *name == TRACEPARENT) {
            let context =
                TraceContext::current().map_or_else(TraceContext::new_root, |c| c.child());
            let value = context.to_traceparent();
            kafka_headers = kafka_headers.insert(Header {
                key: TRACEPARENT,
                value: Some(&value),
            });
        }
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(kafka_headers);
        match self.producer.send_result(record) {
            Ok(future) => Ok(PendingDelivery {
                topic: topic.to_string(),
                future,
            }),
            Err((source, _record)) => Err(PublishError::Kafka {
                topic: topic.to_string(),
                source,
            }),
        }
    }

    /// Publishes one message and waits for the broker's acknowledgement.
    pub async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<Delivery, PublishError> {
        self.enqueue(topic, key, payload, headers)?
            .delivered()
            .await
    }

    /// Asks the cluster for its metadata within `timeout`: `Ok` when Kafka answers.
    pub async fn check_metadata(&self, timeout: Duration) -> Result<(), String> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
            .await
            .map_err(|error| error.to_string())?
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    /// Waits up to `timeout` for every enqueued message to be delivered.
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }
}

/// Creates each topic with `partitions` partitions and the broker's default replication, unless
/// it exists already. Services call it at start-up for the topics they write and read (and
/// their dead-letter topics), so nothing depends on broker-side auto-creation.
pub async fn ensure_topics(
    bootstrap: &str,
    topics: &[&str],
    partitions: i32,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics(&new_topics, &options).await;
    let outcome = match results {
        Ok(results) => results
            .into_iter()
            .find_map(|result| match result {
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) | Ok(_) => None,
                Err((_, code)) => Some(Err(KafkaError::AdminOp(code))),
            })
            .unwrap_or(Ok(())),
        Err(error) => Err(error),
    };
    tokio::task::spawn_blocking(move || drop(admin)).await.ok();
    outcome
}

/// What a handler says about an event it could not process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// A passing problem (database down, a dependency timing out): try the same event again.
    #[error("retryable: {0}")]
    Retryable(String),
    /// The event itself is bad (malformed, violates the contract): dead-letter it and move on.
    #[error("poison: {0}")]
    Poison(String),
}

/// One message as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ReceivedEvent {
    fn from_message(message: &impl Message) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }

    /// The first header `name`, if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    /// The key as UTF-8 text, if it is.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|key| std::str::from_utf8(key).ok())
    }

    /// The [`EVENT_ID`] header: the id to deduplicate on.
    pub fn event_id(&self) -> Option<&str> {
        self.header(EVENT_ID)
    }

    /// The payload as JSON; a payload that does not parse is [`HandlerError::Poison`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_slice(&self.payload).map_err(|error| {
            HandlerError::Poison(format!("payload is not the expected JSON: {error}"))
        })
    }
}

/// What an [`EventConsumer`] reads and how it behaves; [`ConsumerSettings::new`] gives the
/// kit's defaults.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub bootstrap: String,
    /// The consumer group: processes of one service share it and split the partitions.
    pub group_id: String,
    pub topics: Vec<String>,
    /// `session.timeout.ms`: how soon a dead (SIGKILLed) member's partitions move to another.
    /// Default 6 s, short so chaos runs recover quickly.
    pub session_timeout: Duration,
    /// First and largest wait between attempts at a [`HandlerError::Retryable`] event.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Extra librdkafka settings, applied last.
    pub overrides: Vec<(String, String)>,
    /// Commits each event's offset *before* handling it: at most once, an event is lost when
    /// the process dies in between. Only a seeded bug sets it (see [`crate::seeded`]).
    pub commit_before_handling: bool,
}

impl ConsumerSettings {
    pub fn new<I, S>(bootstrap: &str, group_id: &str, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            bootstrap: bootstrap.to_string(),
            group_id: group_id.to_string(),
            topics: topics.into_iter().map(Into::into).collect(),
            session_timeout: Duration::from_secs(6),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            overrides: Vec::new(),
            commit_before_handling: false,
        }
    }
}

/// A consumer-group member that commits only what its handler finished.
pub struct EventConsumer {
    consumer: Arc<StreamConsumer>,
    dead_letters: EventProducer,
    settings: ConsumerSettings,
}

enum Outcome {
    /// Processed or dead-lettered: commit.
    Done,
    /// Shutdown came while the event was still failing: leave it uncommitted.
    Abandoned,
}

impl EventConsumer {
    /// Creates the consumer and subscribes to the topics. Offsets are never committed
    /// automatically (`enable.auto.commit=false`); a group without committed offsets starts at
    /// the earliest message, so nothing produced before the first start is missed.
    pub fn new(settings: ConsumerSettings) -> Result<Self, KafkaError> {
        let mut config = client_config(&settings.bootstrap);
        config
            .set("group.id", &settings.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                settings.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (settings.session_timeout.as_millis() / 3).to_string(),
            )
            .set("enable.partition.eof", "false");
        for (key, value) in &settings.overrides {
            config.set(key, value);
        }
        let consumer: StreamConsumer = config.create()?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        let dead_letters = EventProducer::new(&settings.bootstrap)?;
        Ok(Self {
            consumer: Arc::new(consumer),
            dead_letters,
            settings,
        })
    }

    /// Consumes until `shutdown` is cancelled. An event being handled when shutdown comes is
    /// finished and committed first; one that is waiting to be retried is left uncommitted.
    /// Errors of the consumer itself (brokers unreachable, a rebalance) are logged and
    /// outlived, never fatal.
    pub async fn run<H, Fut>(&self, shutdown: CancellationToken, handler: H)
    where
        H: Fn(ReceivedEvent) -> Fut,
        Fut: Future<Output = Result<(), HandlerError>>,
    {
        loop {
            let received = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                received = self.consumer.recv() => received,
            };
            let event = match received {
                Ok(message) => ReceivedEvent::from_message(&message),
                Err(error) => {
                    tracing::warn!(group = %self.settings.group_id, %error, "kafka consumer error; continuing");
                    if !pause(Duration::from_millis(500), &shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            if self.settings.commit_before_handling {
                self.commit(&event).await;
            }
            match self.process(&event, &handler, &shutdown).await {
                Outcome::Done if !self.settings.commit_before_handling => self.commit(&event).await,
                Outcome::Done => {}
                Outcome::Abandoned => return,
            }
        }
    }

    async fn process<H, Fut>(
        &self,
        event: &ReceivedEvent,
        handler: &H,
        shutdown: &CancellationToken,
    ) -> Outcome
    where
        H: Fn(ReceivedEvent) -> Fut,
        Fut: Future<Output = Result<(), HandlerError>>,
    {
        let context = event
            .header(TRACEPARENT)
            .and_then(TraceContext::parse)
            .map_or_else(TraceContext::new_root, |parent| parent.child());
        let mut delay = self.settings.retry_initial;
        loop {
            let result = context.scope(handler(event.clone())).await;
            let (outcome, reason) = match result {
                Ok(()) => {
                    metrics::counter!("kafka_consumer_events_total", "topic" => event.topic.clone(), "outcome" => "processed").increment(1);
                    return Outcome::Done;
                }
                Err(HandlerError::Poison(reason)) => {
                    match context.scope(self.dead_letter(event, &reason)).await {
                        Ok(()) => {
                            metrics::counter!("kafka_consumer_events_total", "topic" => event.topic.clone(), "outcome" => "dead_lettered").increment(1);
                            return Outcome::Done;
                        }
                        Err(error) => ("dead-lettering failed", error.to_string()),
                    }
                }
                Err(HandlerError::Retryable(reason)) => ("handler failed", reason),
            };
            metrics::counter!("kafka_consumer_events_total", "topic" => event.topic.clone(), "outcome" => "retried").increment(1);
            context
                .scope(async {
                    tracing::warn!(
                        topic = %event.topic, partition = event.partition, offset = event.offset,
                        %reason, retry_in_ms = delay.as_millis() as u64, "{outcome}; will retry"
                    );
                })
                .await;
            if !pause(delay, shutdown).await {
                return Outcome::Abandoned;
            }
            delay = (delay * 2).min(self.settings.retry_max);
        }
    }

    async fn dead_letter(&self, event: &ReceivedEvent, reason: &str) -> Result<(), PublishError> {
        let topic = dead_letter_topic(&event.topic);
        tracing::warn!(from = %event.topic, offset = event.offset, %reason, "dead-lettering event to {topic}");
        let partition = event.partition.to_string();
        let offset = event.offset.to_string();
        let mut headers: Vec<(&str, &str)> = event
            .headers
            .iter()
            .filter(|(name, _)| !name.starts_with("dlt-"))
            .filter_map(|(name, value)| Some((name.as_str(), std::str::from_utf8(value).ok()?)))
            .collect();
        headers.extend([
            (DLT_REASON, reason),
            (DLT_ORIGINAL_TOPIC, event.topic.as_str()),
            (DLT_ORIGINAL_PARTITION, partition.as_str()),
            (DLT_ORIGINAL_OFFSET, offset.as_str()),
            (DLT_CONSUMER_GROUP, self.settings.group_id.as_str()),
        ]);
        let key = event.key_str().unwrap_or_default();
        self.dead_letters
            .send(&topic, key, &event.payload, &headers)
            .await
            .map(|_| ())
    }

    /// Commits "`event` and everything before it in its partition" and waits for the broker.
    /// A failed commit (e.g. the partition moved in a rebalance) is logged: the event will be
    /// delivered again, which at-least-once consumers must tolerate anyway.
    async fn commit(&self, event: &ReceivedEvent) {
        let mut offsets = TopicPartitionList::new();
        if let Err(error) = offsets.add_partition_offset(
            &event.topic,
            event.partition,
            Offset::Offset(event.offset + 1),
        ) {
            tracing::warn!(%error, "building the commit");
            return;
        }
        let consumer = Arc::clone(&self.consumer);
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync)).await;
        match committed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(topic = %event.topic, offset = event.offset, %error, "commit failed; the event will be redelivered")
            }
            Err(error) => tracing::warn!(%error, "commit task failed"),
        }
    }
}

/// Sleeps `duration` unless shutdown comes first; `false` when it did.
async fn pause(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}
