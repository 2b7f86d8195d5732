//! Contract verification against the running reference system: every pact's provider is the
//! stack's service of that name, its states set through the service's test-mode
//! `POST /admin/provider-states`, its messages read from the real Kafka topic
//! ([`KafkaMessages`]). `faultline contracts verify` is [`verify_pacts`] plus the output files.
//!
//! Layer 6 (tools) of the harness ([layers](crate#layers)): may import any layer below it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_contracts::verify::{
    ActualMessage, BoxFuture, InteractionResult, MessageSource, Outcome, PactResult,
    ProviderTarget, Report, Verifier,
};
use faultline_contracts::Pact;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Map, Value};

use crate::infra::HARNESS_CLIENT;
use crate::stack::Stack;

/// Reads the messages providers publish from real Kafka topics, without a consumer group
/// (nothing is committed, nothing competes with the services' consumers).
///
/// One pair of Kafka clients serves a whole verification, created at the first message
/// interaction (or by [`KafkaMessages::warm_up`]) and shared by the clones of this reader:
/// one asks for topics' ends, the other reads records, so that an offsets request never
/// queues behind a fetch.
///
/// The reading client is assigned to a topic once, from the topic's end at its first mark,
/// and then fetches everything published to it in the background. Each interaction takes the
/// topic's end offsets before its provider state ([`MessageSource::mark`]: one request, the
/// topic's partitions are read once); a look ([`MessageSource::since`]) takes the records the
/// client has fetched from there, or waits for them to come — no metadata, offsets or
/// reassignment per look (a reassigned librdkafka consumer could take about 900 ms to fetch
/// again). A look at a mark that is not its topic's latest one (or
/// at a topic that had no partitions yet at its mark) reads from the mark afresh.
///
/// The clients are closed on a thread of their own when the last clone goes: librdkafka
/// takes about 100 ms to close one, which nothing needs to wait for.
#[derive(Clone)]
pub struct KafkaMessages {
    bootstrap: String,
    shared: Arc<std::sync::Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    clients: Option<Clients>,
    /// Each topic's partitions, once it has some: a verification does not outlive a topic's
    /// partitioning, so the metadata is read once per topic.
    partitions: Partitions,
    /// The topics the reading client is assigned to.
    watched: BTreeMap<String, Watched>,
}

type Partitions = BTreeMap<String, Vec<i32>>;

/// Partition → offset.
type Offsets = BTreeMap<i32, i64>;

struct Clients {
    /// Asks for metadata and offsets; assigned only while it reads a topic afresh.
    asker: BaseConsumer,
    /// Assigned to every topic marked so far, each from its end at its first mark.
    reader: BaseConsumer,
}

/// A topic the reading client fetches.
struct Watched {
    /// Its latest mark.
    mark: Offsets,
    /// What the client fetched from the mark on, in order: partition, offset, message.
    records: Vec<(i32, i64, ActualMessage)>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(clients) = self.clients.take() {
            // If no thread can be had, the closure (and the clients) is dropped right here.
            let _ = std::thread::Builder::new()
                .name("kafka-close".into())
                .spawn(move || drop(clients));
        }
    }
}

impl Shared {
    /// Moves what the reading client has fetched into the watched topics, waiting up to
    /// `wait` for a record that `wanted` accepts when none has come; true when one came.
    fn take_fetched(&mut self, wait: Duration, wanted: impl Fn(&str, &ActualMessage) -> bool) -> bool {
        let Some(clients) = &self.clients else {
            return false;
        };
        let deadline = Instant::now() + wait;
        let mut timeout = Duration::ZERO;
        let mut came = false;
        loop {
            match clients.reader.poll(timeout) {
                // Transient reports (a partition not yet in the client's metadata) are retried
                // by the client.
                Some(Err(_)) => {}
                Some(Ok(record)) => {
                    let topic = record.topic();
                    if let Some(watched) = self.watched.get_mut(topic) {
                        let (partition, offset) = (record.partition(), record.offset());
                        if watched.mark.get(&partition).is_some_and(|&from| offset >= from) {
                            let message = message_of(&record, topic);
                            came |= wanted(topic, &message);
                            watched.records.push((partition, offset, message));
                        }
                    }
                    timeout = Duration::ZERO;
                    continue;
                }
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if came || left.is_zero() {
                return came;
            }
            timeout = left;
        }
    }
}

impl std::fmt::Debug for KafkaMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaMessages")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl KafkaMessages {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            shared: Arc::default(),
        }
    }

    /// Runs `read` with the shared state, its clients created first if this is the first use.
    fn with_clients<T>(&self, read: impl FnOnce(&mut Shared) -> Result<T, String>) -> Result<T, String> {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if shared.clients.is_none() {
            let create = || {
                ClientConfig::new()
                    .set("bootstrap.servers", &self.bootstrap)
                    .set("group.id", "faultline-contract-verifier")
                    .set("enable.auto.commit", "false")
                    // How long the broker holds a fetch on an idle topic (500 ms by default):
                    // a fetch in flight holds up what follows it on the connection.
                    .set("fetch.wait.max.ms", "10")
                    .set("log_level", "3")
                    .create::<BaseConsumer>()
                    .map_err(|e| format!("creating a Kafka consumer for {}: {e}", self.bootstrap))
            };
            shared.clients = Some(Clients {
                asker: create()?,
                reader: create()?,
            });
        }
        read(&mut shared)
    }

    /// Creates the clients and marks `topics` now, on a thread of its own, so that the first
    /// interaction finds the clients connected and the reader fetching (it waits for a
    /// warm-up still going); a failure here is met again, and reported, there.
    pub fn warm_up(&self, topics: Vec<String>) {
        let this = self.clone();
        let _ = std::thread::Builder::new()
            .name("kafka-warm-up".into())
            .spawn(move || {
                let _ = this.with_clients(|shared| {
                    topics.iter().try_for_each(|topic| Self::mark_now(shared, topic).map(drop))
                });
            });
    }

    /// Partition → high watermark of `topic` now (empty when the topic does not exist yet):
    /// one offsets request for all its partitions, and a metadata request only the first time
    /// the topic has partitions.
    fn ends(
        asker: &BaseConsumer,
        partitions: &mut Partitions,
        topic: &str,
    ) -> Result<Offsets, String> {
        if !partitions.contains_key(topic) {
            let metadata = asker
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .map_err(|e| format!("reading the metadata of topic {topic}: {e}"))?;
            let ids: Vec<i32> = metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions())
                .map(|p| p.id())
                .collect();
            if ids.is_empty() {
                return Ok(Offsets::new());
            }
            partitions.insert(topic.to_string(), ids);
        }
        let mut latest = TopicPartitionList::new();
        for &partition in &partitions[topic] {
            // The "timestamp" -1 asks for each partition's latest offset.
            latest
                .add_partition_offset(topic, partition, Offset::End)
                .map_err(|e| e.to_string())?;
        }
        let answered = asker
            .offsets_for_times(latest, Duration::from_secs(10))
            .map_err(|e| format!("reading the end of topic {topic}: {e}"))?;
        let mut ends = Offsets::new();
        for element in answered.elements() {
            element
                .error()
                .map_err(|e| format!("reading the end of {topic}/{}: {e}", element.partition()))?;
            match element.offset() {
                Offset::Offset(end) => ends.insert(element.partition(), end),
                other => {
                    return Err(format!(
                        "reading the end of {topic}/{}: the broker answered {other:?}",
                        element.partition()
                    ))
                }
            };
        }
        Ok(ends)
    }

    /// The end of `topic` now, as its latest mark: the reader is assigned to it from there if
    /// it was not yet, and what it fetched from before the mark is dropped.
    fn mark_now(shared: &mut Shared, topic: &str) -> Result<Offsets, String> {
        let clients = shared.clients.as_ref().expect("created by with_clients");
        let ends = Self::ends(&clients.asker, &mut shared.partitions, topic)?;
        if ends.is_empty() {
            return Ok(ends);
        }
        if !shared.watched.contains_key(topic) {
            // The reader learns the topic's leader before it is assigned: assigned first, a
            // fresh client at times fetched its first record about 900 ms late.
            clients
                .reader
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .map_err(|e| format!("reading the metadata of topic {topic}: {e}"))?;
            let mut from_ends = TopicPartitionList::new();
            for (&partition, &end) in &ends {
                from_ends
                    .add_partition_offset(topic, partition, Offset::Offset(end))
                    .map_err(|e| e.to_string())?;
            }
            clients
                .reader
                .incremental_assign(&from_ends)
                .map_err(|e| format!("reading topic {topic}: {e}"))?;
            shared.watched.insert(topic.to_string(), Watched { mark: ends.clone(), records: Vec::new() });
            return Ok(ends);
        }
        shared.take_fetched(Duration::ZERO, |_, _| false);
        let watched = shared.watched.get_mut(topic).expect("checked above");
        watched.records.retain(|(p, offset, _)| ends.get(p).is_some_and(|end| offset >= end));
        watched.mark = ends.clone();
        Ok(ends)
    }

    fn read_since(
        &self,
        topic: &str,
        mark: &Value,
        key: Option<&str>,
        wait: Duration,
    ) -> Result<Vec<ActualMessage>, String> {
        let wanted = |m: &ActualMessage| key.is_none() || m.metadata.get("key").and_then(Value::as_str) == key;
        let from: Offsets = mark
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(p, offset)| Some((p.parse().ok()?, offset.as_i64()?)))
            .collect();
        self.with_clients(|shared| {
            let latest = shared.watched.get(topic).is_some_and(|w| w.mark == from && !from.is_empty());
            if !latest {
                let clients = shared.clients.as_ref().expect("created by with_clients");
                return Self::read_with(clients, &mut shared.partitions, topic, &from, key);
            }
            // What the client fetched since the last look; when none of it is wanted, the
            // first wanted record to arrive within `wait` (handed over as soon as it is
            // fetched).
            shared.take_fetched(wait, |t, m| t == topic && wanted(m));
            Ok(shared.watched[topic]
                .records
                .iter()
                .map(|(_, _, m)| m)
                .filter(|m| wanted(m))
                .cloned()
                .collect())
        })
    }

    /// Reads `topic` from `from` to its end now with the asking client (it is left
    /// unassigned).
    fn read_with(
        clients: &Clients,
        partitions: &mut Partitions,
        topic: &str,
        from: &Offsets,
        key: Option<&str>,
    ) -> Result<Vec<ActualMessage>, String> {
        let consumer = &clients.asker;
        let ends = Self::ends(consumer, partitions, topic)?;
        let mut assignment = TopicPartitionList::new();
        let mut remaining = Offsets::new();
        for (&partition, &end) in &ends {
            let start = from.get(&partition).copied().unwrap_or(0);
            if start < end {
                assignment
                    .add_partition_offset(topic, partition, Offset::Offset(start))
                    .map_err(|e| e.to_string())?;
                remaining.insert(partition, end);
            }
        }
        let mut found = Vec::new();
        if remaining.is_empty() {
            return Ok(found);
        }
        consumer.assign(&assignment).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !remaining.is_empty() && Instant::now() < deadline {
            let Some(polled) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            // Transient reports (a partition not yet in the client's metadata) are retried.
            let Ok(record) = polled else { continue };
            if let Some(&end) = remaining.get(&record.partition()) {
                if record.offset() + 1 >= end {
                    remaining.remove(&record.partition());
                }
            }
            let message = message_of(&record, topic);
            if key.is_some() && message.metadata.get("key").and_then(Value::as_str) != key {
                continue;
            }
            found.push(message);
        }
        // Back to asking only: offsets requests must not queue behind its fetches.
        let _ = consumer.unassign();
        Ok(found)
    }
}

/// A record of `topic` as a message: its payload (JSON when it parses), with the topic, its
/// key and each header as metadata.
fn message_of(record: &rdkafka::message::BorrowedMessage<'_>, topic: &str) -> ActualMessage {
    let payload = record.payload().unwrap_or_default();
    let contents = serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
    let mut metadata = BTreeMap::from([("topic".to_string(), json!(topic))]);
    if let Some(k) = record.key() {
        metadata.insert("key".into(), json!(String::from_utf8_lossy(k)));
    }
    if let Some(headers) = record.headers() {
        for header in headers.iter() {
            let value = header.value.unwrap_or_default();
            metadata.insert(header.key.to_string(), json!(String::from_utf8_lossy(value)));
        }
    }
    ActualMessage { contents, metadata }
}

impl MessageSource for KafkaMessages {
    fn mark<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        let this = self.clone();
        let topic = topic.to_string();
        Box::pin(async move {
            let ends = tokio::task::spawn_blocking(move || {
                this.with_clients(|shared| Self::mark_now(shared, &topic))
            })
            .await
            .map_err(|e| format!("the Kafka reader stopped: {e}"))??;
            Ok(ends
                .iter()
                .map(|(p, end)| (p.to_string(), json!(end)))
                .collect::<Map<_, _>>()
                .into())
        })
    }

    fn since<'a>(
        &'a self,
        topic: &'a str,
        mark: &'a Value,
        key: Option<&'a str>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Vec<ActualMessage>, String>> {
        let this = self.clone();
        let (topic, mark, key) = (topic.to_string(), mark.clone(), key.map(str::to_string));
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.read_since(&topic, &mark, key.as_deref(), wait))
                .await
                .map_err(|e| format!("the Kafka reader stopped: {e}"))?
        })
    }
}

/// The verification target for `provider` on `stack` (its messages read from Kafka).
pub fn target(stack: &Stack, provider: &str) -> Option<ProviderTarget> {
    let url = stack.service_url(provider).ok()?;
    let mut target = ProviderTarget::http(provider, &url);
    if let Ok(bootstrap) = stack.infra().kafka_bootstrap(HARNESS_CLIENT) {
        target = target.with_messages(Arc::new(KafkaMessages::new(bootstrap)));
    }
    Some(target)
}

/// The topics `pacts`' message interactions name, each once.
fn message_topics<'a>(pacts: impl IntoIterator<Item = &'a Pact>) -> Vec<String> {
    let mut topics: Vec<String> = pacts
        .into_iter()
        .flat_map(|p| &p.interactions)
        .filter_map(|i| match i {
            faultline_contracts::Interaction::Message(m) => {
                m.metadata.get("topic").and_then(Value::as_str).map(str::to_string)
            }
            _ => None,
        })
        .collect();
    topics.sort();
    topics.dedup();
    topics
}

/// Verifies `pacts` against `stack` (or, for a provider in `overrides`, against that target).
/// The stack's message providers share one Kafka reader, which connects while the pacts
/// without messages are verified: those go first (the report keeps the given order).
pub async fn verify_pacts(
    stack: Option<&Stack>,
    pacts: &[(PathBuf, Pact)],
    overrides: &BTreeMap<String, ProviderTarget>,
) -> Report {
    let verifier = Verifier::new();
    let started = Instant::now();
    let topics = message_topics(pacts.iter().map(|(_, p)| p));
    let reader = stack
        .filter(|_| !topics.is_empty())
        .and_then(|s| s.infra().kafka_bootstrap(HARNESS_CLIENT).ok())
        .map(|bootstrap| {
            let reader = Arc::new(KafkaMessages::new(bootstrap));
            reader.warm_up(topics);
            reader
        });
    // Pacts without messages go first, while the reader connects; the report keeps the
    // pacts' order.
    let mut order: Vec<usize> = (0..pacts.len()).collect();
    order.sort_by_key(|&i| !message_topics([&pacts[i].1]).is_empty());
    let mut results: Vec<Option<PactResult>> = vec![None; pacts.len()];
    for i in order {
        let (path, pact) = &pacts[i];
        let name = &pact.provider.name;
        let source = path.display().to_string();
        let found = overrides.get(name).cloned().or_else(|| {
            let target = stack.and_then(|s| target(s, name))?;
            Some(match &reader {
                Some(reader) => target.with_messages(reader.clone()),
                None => target,
            })
        });
        let result = match found {
            Some(target) => verifier.verify_pact(pact, &source, &target).await,
            None => {
                let known: Vec<&str> = stack.map(|s| s.system().start_order()).unwrap_or_default();
                unknown_provider(pact, &source, &known)
            }
        };
        results[i] = Some(result);
    }
    Report {
        pacts: results.into_iter().flatten().collect(),
        duration: started.elapsed(),
    }
}

fn unknown_provider(pact: &Pact, source: &str, known: &[&str]) -> PactResult {
    let why = format!(
        "no provider named {:?} to verify against (the system has {})",
        pact.provider.name,
        known.join(", ")
    );
    PactResult {
        source: source.to_string(),
        consumer: pact.consumer.name.clone(),
        provider: pact.provider.name.clone(),
        interactions: pact
            .interactions
            .iter()
            .map(|i| InteractionResult {
                description: i.description().to_string(),
                kind: i.kind().to_string(),
                provider_states: i
                    .info()
                    .provider_states
                    .iter()
                    .map(|s| s.name.clone())
                    .collect(),
                pending: i.info().pending,
                outcome: Outcome::Error(why.clone()),
                duration: Duration::ZERO,
            })
            .collect(),
        duration: Duration::ZERO,
    }
}

/// Writes `verification.json`, `verification.junit.xml` and `verification.html` into `dir`,
/// each atomically.
pub fn write_report(report: &Report, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(&report.to_json()).expect("JSON always serialises");
    for (name, text) in [
        ("verification.json", json),
        ("verification.junit.xml", report.to_junit()),
        (
            "verification.html",
            crate::report::contracts_html::render(report),
        ),
    ] {
        let temporary = dir.join(format!(".{name}.tmp"));
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, dir.join(name))?;
    }
    Ok(())
}

/// Where the official consolidated `pact` command is (PyPI's `pact-python-cli`, prebuilt:
/// `pact verifier` is the official Pact verifier, `pact broker …` the official broker client):
/// `$FAULTLINE_PACT_CLI`, else `.faultline/tools/pact-cli/bin/pact` of the source tree, where
/// `ci/setup` installs the pinned version.
pub fn pact_binary() -> PathBuf {
    std::env::var_os("FAULTLINE_PACT_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.faultline/tools/pact-cli/bin/pact")
        })
}

/// The official verifier, `pact verifier` of the `pact` command at `binary`, ready for its
/// arguments.
pub fn pact_verifier(binary: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command.arg("verifier");
    command
}

/// What the official verifier said, by interaction description: `Ok` when it passed, else its
/// mismatches as JSON text.
pub type OfficialVerdicts = BTreeMap<String, Result<(), String>>;

/// Runs the official verifier (`pact verifier` of the `pact` command at `binary`) on `pact`
/// against `target` (its base URL and state-change URL) and reads its JSON report.
pub async fn run_pact_verifier(
    binary: &Path,
    pact: &Path,
    target: &ProviderTarget,
) -> Result<OfficialVerdicts, String> {
    let url =
        reqwest::Url::parse(&target.base_url).map_err(|e| format!("{}: {e}", target.base_url))?;
    let report = std::env::temp_dir().join(format!(
        "faultline-pact-verifier-{}-{}.json",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    let mut command = pact_verifier(binary);
    command
        .arg("--file")
        .arg(pact)
        .args(["--hostname", url.host_str().unwrap_or("127.0.0.1")])
        .args([
            "--port",
            &url.port_or_known_default().unwrap_or(80).to_string(),
        ])
        .args(["--provider-name", &target.name])
        .arg("--no-colour")
        .arg("--json")
        .arg(&report)
        .kill_on_drop(true);
    if let Some(states) = &target.state_change_url {
        command.args(["--state-change-url", states]);
    }
    let output = command.output().await.map_err(|e| {
        format!(
            "running {}: {e}\nhint: ci/setup installs pact-python-cli into .faultline/tools/pact-cli, or set FAULTLINE_PACT_CLI",
            binary.display()
        )
    })?;
    let text = std::fs::read_to_string(&report).map_err(|e| {
        format!(
            "{} wrote no JSON report ({e}); it exited {:?}: {}",
            binary.display(),
            output.status.code(),
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    let _ = std::fs::remove_file(&report);
    let json: Value = serde_json::from_str(&text).map_err(|e| format!("its report: {e}"))?;
    let results = json["interactionResults"]
        .as_array()
        .ok_or_else(|| format!("its report has no interactionResults: {text}"))?;
    Ok(results
        .iter()
        .map(|r| {
            let verdict = if r["result"] == "OK" {
                Ok(())
            } else {
                Err(r["mismatch"].to_string())
            };
            (
                r["description"].as_str().unwrap_or_default().to_string(),
                verdict,
            )
        })
        .collect())
}

/// Lets the official verifier (`pact verifier`) verify message pacts against a provider that
/// publishes to Kafka. That verifier asks the provider for a message over HTTP (`POST /` with
/// `{"description", "providerStates"}`, the message in the answer, its metadata base64 JSON in
/// the `Pact-Message-Metadata` header); the reference system publishes through its outbox to
/// Kafka instead. The bridge stands where the verifier expects the provider:
///
/// - `POST /admin/provider-states` notes where each of the pact's topics ends, forwards the
///   state to the real provider (which makes the real producer publish) and keeps the values
///   the state answered;
/// - `POST /` reads the topic the described message names, from that mark, for records with
///   the key the state made, and answers the first record that matches the interaction (the
///   producer publishes several events per key), else the last one seen — so a provider that
///   broke the contract is answered with what it really published, and the official verifier
///   judges it. Nothing is invented: every answer is a record read from Kafka.
pub struct MessageBridge {
    address: std::net::SocketAddr,
    _stop: crate::intercept::StopOnDrop,
}

/// An answer of the bridge: status, headers, body.
type BridgeAnswer = (u16, Vec<(&'static str, String)>, String);

/// A state's values, and each topic's end when it was set up.
type LastState = (Map<String, Value>, BTreeMap<String, Value>);

#[derive(Clone)]
struct BridgeState {
    pact: Arc<Pact>,
    provider_states_url: String,
    messages: KafkaMessages,
    http: reqwest::Client,
    /// The values of the last state set up, and the topic marks taken before it.
    last: Arc<tokio::sync::Mutex<LastState>>,
}

impl MessageBridge {
    /// Serves the bridge on 127.0.0.1 for `pact`'s messages, published by the provider whose
    /// states are at `provider_states_url` to the Kafka at `bootstrap`.
    pub async fn start(
        pact: Pact,
        provider_states_url: &str,
        bootstrap: &str,
    ) -> std::io::Result<Self> {
        let messages = KafkaMessages::new(bootstrap);
        messages.warm_up(message_topics([&pact]));
        let state = BridgeState {
            pact: Arc::new(pact),
            provider_states_url: provider_states_url.to_string(),
            messages,
            http: reqwest::Client::new(),
            last: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let stop = tokio_util::sync::CancellationToken::new();
        crate::intercept::serve_http(listener, stop.clone(), move |head, body| {
            bridge(state.clone(), head.method, head.uri.path().to_string(), body)
        });
        Ok(Self {
            address,
            _stop: crate::intercept::StopOnDrop(stop),
        })
    }

    /// The bridge's base URL: give it to the verifier as the provider.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// One request to the bridge: `POST /admin/provider-states` or `POST /` (a message).
async fn bridge(
    state: BridgeState,
    method: hyper::Method,
    path: String,
    body: bytes::Bytes,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, headers, body) = match (method, path.as_str()) {
        (hyper::Method::POST, "/admin/provider-states") => bridge_state(state, body).await,
        (hyper::Method::POST, "/") => match serde_json::from_slice::<Value>(&body) {
            Ok(request) => bridge_message(state, request).await,
            Err(e) => bridge_error(400, format!("the body is not JSON: {e}")),
        },
        (method, path) => bridge_error(404, format!("no route {method} {path}")),
    };
    crate::intercept::answer(status, &headers, body)
}

fn bridge_error(status: u16, message: String) -> BridgeAnswer {
    (
        status,
        vec![("content-type", "application/json".to_string())],
        json!({"error": message}).to_string(),
    )
}

async fn bridge_state(bridge: BridgeState, body: bytes::Bytes) -> BridgeAnswer {
    let mut marks = BTreeMap::new();
    for topic in message_topics([&*bridge.pact]) {
        match bridge.messages.mark(&topic).await {
            Ok(mark) => {
                marks.insert(topic, mark);
            }
            Err(e) => return bridge_error(502, e),
        }
    }
    let answer = bridge
        .http
        .post(&bridge.provider_states_url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return bridge_error(502, format!("{}: {e}", bridge.provider_states_url)),
    };
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap_or_default();
    let values = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(values)) => values,
        _ => Map::new(),
    };
    if (200..300).contains(&status) {
        let mut last = bridge.last.lock().await;
        // Several states for one interaction: their values add up; a new mark starts a new one.
        last.0.extend(values);
        last.1 = marks;
    }
    (status, vec![("content-type", "application/json".to_string())], text)
}

async fn bridge_message(bridge: BridgeState, request: Value) -> BridgeAnswer {
    use base64::Engine as _;
    let description = request["description"].as_str().unwrap_or_default();
    let Some(message) = bridge.pact.interactions.iter().find_map(|i| match i {
        faultline_contracts::Interaction::Message(m) if m.info.description == description => {
            Some(m)
        }
        _ => None,
    }) else {
        return bridge_error(
            404,
            format!("no message interaction {description:?} in the pact"),
        );
    };
    let (values, marks) = std::mem::take(&mut *bridge.last.lock().await);
    let expected = match faultline_contracts::verify::expected_message(message, &values) {
        Ok(expected) => expected,
        Err(e) => return bridge_error(500, e),
    };
    let Some(topic) = expected.metadata.get("topic").and_then(Value::as_str) else {
        return bridge_error(500, "the message has no `topic` metadata".into());
    };
    let key = expected.metadata.get("key").and_then(Value::as_str);
    let mark = marks.get(topic).cloned().unwrap_or(Value::Null);
    let mut seen: Option<ActualMessage> = None;
    // Looked at as faultline's own verifier looks, so the comparison is of the verifiers.
    let looked = faultline_contracts::verify::look_for(
        &bridge.messages,
        topic,
        &mark,
        key,
        Duration::from_secs(15),
        |found| {
            let hit = found.iter().find(|a| {
                faultline_contracts::match_message(&expected, &a.contents, &a.metadata).is_empty()
            });
            seen = hit.or(found.last()).cloned().or(seen.take());
            hit.is_some()
        },
    )
    .await;
    if let Err(e) = looked {
        return bridge_error(502, e);
    }
    let Some(record) = seen else {
        return bridge_error(
            404,
            format!("nothing was published to {topic} with key {key:?} after the provider state"),
        );
    };
    let metadata = serde_json::to_vec(&record.metadata).expect("JSON always serialises");
    (
        200,
        vec![
            ("content-type", "application/json".to_string()),
            (
                "pact-message-metadata",
                base64::engine::general_purpose::STANDARD.encode(metadata),
            ),
        ],
        record.contents.to_string(),
    )
}
