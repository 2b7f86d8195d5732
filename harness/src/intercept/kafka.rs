//! The broker proxy: faultline's own proxy on a client's link to Kafka, in front of the link's
//! Toxiproxy proxy (client → this → Toxiproxy → Kafka), so TCP toxics keep working behind it.
//! The broker advertises this proxy's address to that client (see [`crate::infra`]), so every
//! connection the client opens — bootstrap, partition leader, group coordinator — passes here.
//!
//! It reads Kafka's frames (a length, then a request or response) with `kafka-protocol`'s
//! message types and forwards every frame as it came unless a broker-request fault
//! ([`KafkaFault`]) picks the request:
//!
//! - `error`: answered with the chosen error code on every partition it names, never
//!   forwarded (a produce not appended, offsets not stored);
//! - `drop_answer`: forwarded, and once the broker has answered, the client's connection is
//!   cut instead (the records were appended, the offsets stored; the client cannot know);
//! - `delay`: forwarded late; `hold`: forwarded when the fault heals; requests behind it on
//!   the same connection wait too, as they would behind a slow broker;
//! - a program point: the client is killed (or paused) when it sends the request, which never
//!   reaches the broker, or once the broker answered, before the client hears.
//!
//! Answers go back in the order their requests came, as Kafka's protocol requires, also when
//! an error answer of faultline's stands between the broker's. A request that cannot be read
//! (a version newer than the crate knows) is forwarded untouched. Each request hit is an
//! operation of the run's history (process `nemesis`, [`Op::RequestFault`] with method
//! `KAFKA` and `produce <topic>`, `fetch <topic>` or `offset_commit <group>` as its path).
//! Every produce, fetch and offset commit is counted, for the call sites discovery learns.
//!
//! Topics named by id rather than by name (newer produce and fetch versions) are named through
//! the ids the broker's metadata answers gave on any connection of the link.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use faultline_chaos::scenario::intercept::When;
use faultline_chaos::scenario::kafka::{KafkaAction, KafkaFault, KafkaRequest};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, MetadataResponse, OffsetCommitRequest, OffsetCommitResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{StopRequest, StopOnDrop};
use crate::history::{Op, Process, Recorder};

/// Kafka's own bound on a request (`socket.request.max.bytes`); a larger length is a stream
/// that is not Kafka's protocol.
const LARGEST_FRAME: usize = 100 * 1024 * 1024;

/// A fault in effect on the proxy.
struct Installed {
    index: usize,
    fault: KafkaFault,
    seed: u64,
    recorder: Recorder,
    stops: mpsc::UnboundedSender<StopRequest>,
    /// Matching requests seen since it was installed.
    matched: u64,
    /// Whether its program point has struck (it does once).
    struck: bool,
    /// Cancelled when it is taken out of effect: what a held request waits for.
    healed: CancellationToken,
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.healed.cancel();
    }
}

struct Shared {
    link: String,
    /// The link's client: whom a program point stops.
    client: String,
    upstream: SocketAddr,
    faults: Mutex<Vec<Installed>>,
    /// Each request seen since the last forget, by `(request, topic or group)`.
    seen: Mutex<BTreeMap<(KafkaRequest, String), u64>>,
    /// Topic names by id, from the broker's metadata answers.
    topic_names: Mutex<HashMap<[u8; 16], String>>,
}

/// The broker proxy of one client's link to Kafka.
pub struct BrokerProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    _stop: StopOnDrop,
}

impl BrokerProxy {
    /// Starts the proxy of `link` (`order->kafka`, whose client is `order`) on `listener`,
    /// forwarding to `upstream` (the link's Toxiproxy proxy). The listener is bound first so
    /// the broker can advertise its address before it starts.
    ///
    /// The proxy runs on a runtime of its own (two threads shared by every broker proxy of
    /// the process), not the caller's: librdkafka's blocking calls (a commit, an offset or
    /// metadata lookup) made on the caller's runtime thread must not stop the conversation
    /// they wait for.
    pub fn start_on(listener: std::net::TcpListener, link: &str, upstream: SocketAddr) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let client = link.split_once("->").map_or(link, |(client, _)| client);
        let shared = Arc::new(Shared {
            link: link.to_string(),
            client: client.to_string(),
            upstream,
            faults: Mutex::new(Vec::new()),
            seen: Mutex::new(BTreeMap::new()),
            topic_names: Mutex::new(HashMap::new()),
        });
        let stop = CancellationToken::new();
        let runtime = runtime()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        runtime.spawn(accept(listener, shared.clone(), stop.clone()));
        Ok(Self {
            address,
            shared,
            _stop: StopOnDrop(stop),
        })
    }

    /// Where the client connects, and what the broker advertises to it.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Puts fault `index` of the run's schedule in effect; the requests it hits are recorded in
    /// `recorder`'s history, and its program point (if any) asks `stops` to stop the client.
    /// A fraction is drawn from `seed`.
    pub fn install(
        &self,
        index: usize,
        fault: KafkaFault,
        seed: u64,
        recorder: Recorder,
        stops: mpsc::UnboundedSender<StopRequest>,
    ) {
        let mut faults = self.shared.faults.lock().expect("faults lock");
        faults.retain(|f| f.index != index);
        faults.push(Installed {
            index,
            fault,
            seed,
            recorder,
            stops,
            matched: 0,
            struck: false,
            healed: CancellationToken::new(),
        });
        faults.sort_by_key(|f| f.index);
    }

    /// Takes fault `index` out of effect: requests it holds are forwarded now, those it delays
    /// still late. Whether it was in effect.
    pub fn remove(&self, index: usize) -> bool {
        super::take_out(&self.shared.faults, index, |f| f.index)
    }

    /// Takes every fault out of effect (held requests are forwarded).
    pub fn clear(&self) {
        self.shared.faults.lock().expect("faults lock").clear();
    }

    /// The produces, fetches and offset commits seen since the last
    /// [`forget`](Self::forget) as call sites: method `KAFKA`, and `produce <topic>`,
    /// `fetch <topic>` or `offset_commit <group>` as the route.
    pub fn sites(&self) -> Vec<super::CallSite> {
        self.shared
            .seen
            .lock()
            .expect("seen lock")
            .iter()
            .map(|((request, name), count)| super::CallSite {
                link: self.shared.link.clone(),
                method: "KAFKA".into(),
                route: format!("{} {name}", request.name()),
                count: *count,
            })
            .collect()
    }

    /// Forgets the requests seen so far.
    pub fn forget(&self) {
        self.shared.seen.lock().expect("seen lock").clear();
    }
}

/// The runtime every broker proxy of the process runs on, started with the first.
fn runtime() -> std::io::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("faultline-broker-proxy")
        .enable_all()
        .build()?;
    // Two first starts at once: one runtime is kept, the other dropped unused (on a thread
    // of its own, as a runtime may not be dropped inside another).
    if let Err(spare) = RUNTIME.set(runtime) {
        std::thread::spawn(move || drop(spare));
    }
    Ok(RUNTIME.get().expect("set above"))
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    super::serve_each(listener, stop, |client| serve(shared.clone(), client)).await;
}

/// What a request picked by a fault names: its kind, and its topics (and group).
struct Named {
    request: KafkaRequest,
    topics: Vec<String>,
    group: Option<String>,
    /// A produce with `acks = 0`: the broker never answers it.
    unanswered: bool,
    /// The partitions it names, by topic, for an error answer.
    partitions: Vec<(String, Vec<i32>)>,
}

/// The fault hitting one request.
struct Hit {
    index: usize,
    action: KafkaAction,
    healed: CancellationToken,
    stops: mpsc::UnboundedSender<StopRequest>,
}

impl Shared {
    fn topic_name(&self, name: &str, id: &[u8; 16]) -> String {
        if !name.is_empty() || id == &[0; 16] {
            return name.to_string();
        }
        self.topic_names
            .lock()
            .expect("topic names lock")
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// What the request of `header` with body `body` names, when faults can pick its kind and
    /// its body can be read.
    fn read(&self, header: &RequestHeader, mut body: Bytes, fetched: &mut BTreeSet<String>) -> Option<Named> {
        let version = header.request_api_version;
        let request = KafkaRequest::from_api_key(header.request_api_key)?;
        match request {
            KafkaRequest::Produce => {
                let produce = ProduceRequest::decode(&mut body, version).ok()?;
                let partitions: Vec<(String, Vec<i32>)> = produce
                    .topic_data
                    .iter()
                    .map(|t| {
                        (
                            self.topic_name(&t.name.0, t.topic_id.as_bytes()),
                            t.partition_data.iter().map(|p| p.index).collect(),
                        )
                    })
                    .collect();
                Some(Named {
                    request,
                    topics: partitions.iter().map(|(t, _)| t.clone()).collect(),
                    group: None,
                    unanswered: produce.acks == 0,
                    partitions,
                })
            }
            KafkaRequest::Fetch => {
                let fetch = FetchRequest::decode(&mut body, version).ok()?;
                for forgotten in &fetch.forgotten_topics_data {
                    fetched.remove(&self.topic_name(&forgotten.topic.0, forgotten.topic_id.as_bytes()));
                }
                let named: Vec<String> = fetch
                    .topics
                    .iter()
                    .map(|t| self.topic_name(&t.topic.0, t.topic_id.as_bytes()))
                    .collect();
                // An incremental fetch (a session's later epoch) names only what changed;
                // it still fetches every topic of its session.
                if fetch.session_epoch <= 0 {
                    fetched.clear();
                }
                fetched.extend(named);
                Some(Named {
                    request,
                    topics: fetched.iter().cloned().collect(),
                    group: None,
                    unanswered: false,
                    partitions: Vec::new(),
                })
            }
            KafkaRequest::OffsetCommit => {
                let commit = OffsetCommitRequest::decode(&mut body, version).ok()?;
                let partitions: Vec<(String, Vec<i32>)> = commit
                    .topics
                    .iter()
                    .map(|t| {
                        (
                            self.topic_name(&t.name.0, t.topic_id.as_bytes()),
                            t.partitions.iter().map(|p| p.partition_index).collect(),
                        )
                    })
                    .collect();
                Some(Named {
                    request,
                    topics: partitions.iter().map(|(t, _)| t.clone()).collect(),
                    group: Some(commit.group_id.0.to_string()),
                    unanswered: false,
                    partitions,
                })
            }
        }
    }

    /// Counts the request, and returns the fault (if any) that picks it, recorded in the
    /// history: the first installed one that matches it and whose choice falls on it; a
    /// program point strikes once.
    fn decide(&self, named: &Named) -> Option<Hit> {
        let sites: Vec<String> = match &named.group {
            Some(group) => vec![group.clone()],
            None => named.topics.clone(),
        };
        {
            let mut seen = self.seen.lock().expect("seen lock");
            for site in sites.iter().filter(|s| !s.is_empty()) {
                *seen.entry((named.request, site.clone())).or_default() += 1;
            }
        }
        let mut faults = self.faults.lock().expect("faults lock");
        for installed in faults.iter_mut() {
            if !installed.fault.matches(named.request, &named.topics, named.group.as_deref()) {
                continue;
            }
            installed.matched += 1;
            let chosen = super::chosen(installed.fault.which, installed.seed, installed.index, installed.matched);
            let once = matches!(installed.fault.action, KafkaAction::Stop { .. });
            if !chosen || (once && installed.struck) {
                continue;
            }
            installed.struck = true;
            let on = match (&installed.fault.topic, &installed.fault.group) {
                (_, Some(group)) => group.clone(),
                (Some(topic), None) => topic.clone(),
                (None, None) => sites.join(","),
            };
            installed
                .recorder
                .invoke(
                    Process::Nemesis,
                    Op::RequestFault {
                        index: installed.index,
                        link: self.link.clone(),
                        method: "KAFKA".into(),
                        path: format!("{} {on}", named.request.name()),
                        action: installed.fault.action.name().into(),
                    },
                )
                .ok(json!({"topics": named.topics, "group": named.group}));
            return Some(Hit {
                index: installed.index,
                action: installed.fault.action.clone(),
                healed: installed.healed.clone(),
                stops: installed.stops.clone(),
            });
        }
        None
    }

    /// Learns the topic ids a metadata answer names.
    fn learn(&self, version: i16, mut body: Bytes) {
        let Ok(metadata) = MetadataResponse::decode(&mut body, version) else {
            return;
        };
        let mut names = self.topic_names.lock().expect("topic names lock");
        for topic in metadata.topics {
            if let Some(name) = topic.name.filter(|_| !topic.topic_id.is_nil()) {
                names.insert(*topic.topic_id.as_bytes(), name.0.to_string());
            }
        }
    }
}

/// What becomes of the broker's answer to a forwarded request, or an answer of faultline's.
enum Fate {
    /// Passed on as it came.
    Pass,
    /// Not passed on: the client's connection is cut instead.
    Drop,
    /// The client is stopped, then its connection cut.
    Stop(Hit),
    /// Not forwarded; this is its answer, sent in its turn.
    Answer(Bytes),
}

struct Pending {
    correlation: i32,
    api_key: i16,
    version: i16,
    fate: Fate,
}

/// Requests awaiting their answers on one connection, in the order they came.
type Queue = Arc<Mutex<VecDeque<Pending>>>;
type ClientWriter = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

async fn serve(shared: Arc<Shared>, client: TcpStream) -> std::io::Result<()> {
    // The broker unreachable, the client's connection is closed without an answer.
    let server = TcpStream::connect(shared.upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let queue: Queue = Arc::default();
    let writer: ClientWriter = Arc::new(tokio::sync::Mutex::new(client_write));
    tokio::select! {
        result = requests(&shared, client_read, server_write, queue.clone(), writer.clone()) => result,
        result = answers(&shared, server_read, writer, queue) => result,
    }
}

fn cut(reason: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, reason.to_string())
}

/// The client's requests, forwarded to the broker unless a fault decides otherwise.
async fn requests(
    shared: &Shared,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    queue: Queue,
    writer: ClientWriter,
) -> std::io::Result<()> {
    let mut fetched = BTreeSet::new();
    while let Some(frame) = read_frame(&mut from).await? {
        // One buffer: the body is read from a slice of it, and it is what is forwarded.
        let frame = frame.freeze();
        let mut payload = frame.slice(4..);
        let header = kafka_protocol::protocol::decode_request_header_from_buffer(&mut payload).ok();
        let Some(header) = header else {
            // Not readable: forwarded untouched, its answer passed on as it comes.
            let correlation = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
            let (api_key, version) = (i16::from_be_bytes([frame[4], frame[5]]), i16::from_be_bytes([frame[6], frame[7]]));
            queue.lock().expect("queue lock").push_back(Pending { correlation, api_key, version, fate: Fate::Pass });
            to.write_all(&frame).await?;
            continue;
        };
        let named = shared.read(&header, payload, &mut fetched);
        let hit = named.as_ref().and_then(|named| shared.decide(named));
        let unanswered = named.as_ref().is_some_and(|n| n.unanswered);
        let pending = |fate| Pending {
            correlation: header.correlation_id,
            api_key: header.request_api_key,
            version: header.request_api_version,
            fate,
        };
        let fate = match hit {
            None => Fate::Pass,
            Some(hit) => match &hit.action {
                KafkaAction::Error(error) => {
                    let named = named.as_ref().expect("a hit request was read");
                    if !unanswered {
                        let answer = error_answer(&header, named, error.code)
                            .map_err(|e| std::io::Error::other(e.to_string()))?;
                        let mut writer = writer.lock().await;
                        queue.lock().expect("queue lock").push_back(pending(Fate::Answer(answer)));
                        flush_answers(&mut writer, &queue).await?;
                    }
                    continue;
                }
                KafkaAction::Delay(delay) => {
                    tokio::time::sleep(*delay).await;
                    Fate::Pass
                }
                KafkaAction::Hold => {
                    hit.healed.cancelled().await;
                    Fate::Pass
                }
                KafkaAction::DropAnswer => Fate::Drop,
                KafkaAction::Stop { when: When::Sent, pause } => {
                    let pause = *pause;
                    let outcome = stop(&hit, &shared.client, pause).await;
                    tracing::debug!(link = %shared.link, ?outcome, "a program point struck at a request");
                    return Err(cut("the request was not forwarded: a program-point fault struck"));
                }
                KafkaAction::Stop { when: When::Answered, .. } => Fate::Stop(hit),
            },
        };
        if !unanswered {
            queue.lock().expect("queue lock").push_back(pending(fate));
        }
        to.write_all(&frame).await?;
    }
    Ok(())
}

/// The broker's answers, passed on in their requests' order with faultline's own between them.
async fn answers(
    shared: &Shared,
    mut from: tokio::net::tcp::OwnedReadHalf,
    writer: ClientWriter,
    queue: Queue,
) -> std::io::Result<()> {
    while let Some(frame) = read_frame(&mut from).await? {
        let frame = frame.freeze();
        let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let mut writer = writer.lock().await;
        let pending = {
            let mut queue = queue.lock().expect("queue lock");
            let at = queue
                .iter()
                .position(|p| p.correlation == correlation && !matches!(p.fate, Fate::Answer(_)));
            at.and_then(|at| queue.remove(at))
        };
        match pending {
            None | Some(Pending { fate: Fate::Pass, .. }) => {
                if let Some(Pending { api_key, version, .. }) = &pending {
                    if *api_key == ApiKey::Metadata as i16 {
                        learn_from(shared, *version, &frame);
                    }
                }
                writer.write_all(&frame).await?;
            }
            Some(Pending { fate: Fate::Drop, .. }) => {
                return Err(cut("the answer was not passed on: a fault dropped it"));
            }
            Some(Pending { fate: Fate::Stop(hit), .. }) => {
                let outcome = stop(&hit, &shared.client, matches!(hit.action, KafkaAction::Stop { pause: true, .. })).await;
                tracing::debug!(link = %shared.link, ?outcome, "a program point struck at an answer");
                return Err(cut("the answer was not passed on: a program-point fault struck"));
            }
            Some(Pending { fate: Fate::Answer(_), .. }) => unreachable!("never matched above"),
        }
        flush_answers(&mut writer, &queue).await?;
    }
    Ok(())
}

fn learn_from(shared: &Shared, version: i16, frame: &Bytes) {
    let mut body = frame.slice(4..);
    let header_version = ApiKey::Metadata.response_header_version(version);
    if ResponseHeader::decode(&mut body, header_version).is_ok() {
        shared.learn(version, body);
    }
}

/// Sends faultline's answers that are next in turn.
async fn flush_answers(writer: &mut OwnedWriteHalf, queue: &Queue) -> std::io::Result<()> {
    loop {
        let answer = {
            let mut queue = queue.lock().expect("queue lock");
            match queue.front() {
                Some(Pending { fate: Fate::Answer(_), .. }) => match queue.pop_front() {
                    Some(Pending { fate: Fate::Answer(answer), .. }) => answer,
                    _ => unreachable!("the front was an answer"),
                },
                _ => return Ok(()),
            }
        };
        writer.write_all(&answer).await?;
    }
}

/// The frame answering `named` with `code` on every partition it names.
fn error_answer(header: &RequestHeader, named: &Named, code: i16) -> anyhow::Result<Bytes> {
    let version = header.request_api_version;
    let api_key = ApiKey::try_from(header.request_api_key).map_err(|_| anyhow::anyhow!("unknown API key"))?;
    let mut body = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut body, api_key.response_header_version(version))?;
    match named.request {
        KafkaRequest::Produce => {
            use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
            let responses = named
                .partitions
                .iter()
                .map(|(topic, partitions)| {
                    TopicProduceResponse::default()
                        .with_name(kafka_protocol::messages::TopicName(topic.clone().into()))
                        .with_partition_responses(
                            partitions
                                .iter()
                                .map(|index| {
                                    PartitionProduceResponse::default()
                                        .with_index(*index)
                                        .with_error_code(code)
                                        .with_base_offset(-1)
                                        .with_log_append_time_ms(-1)
                                        .with_log_start_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
            ProduceResponse::default().with_responses(responses).encode(&mut body, version)?;
        }
        KafkaRequest::OffsetCommit => {
            use kafka_protocol::messages::offset_commit_response::{
                OffsetCommitResponsePartition, OffsetCommitResponseTopic,
            };
            let topics = named
                .partitions
                .iter()
                .map(|(topic, partitions)| {
                    OffsetCommitResponseTopic::default()
                        .with_name(kafka_protocol::messages::TopicName(topic.clone().into()))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|index| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(*index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetCommitResponse::default().with_topics(topics).encode(&mut body, version)?;
        }
        KafkaRequest::Fetch => anyhow::bail!("a fetch is not answered with an error"),
    }
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    Ok(frame.freeze())
}

/// Asks for `service` to be stopped and waits until it is.
async fn stop(hit: &Hit, service: &str, pause: bool) -> Result<(), String> {
    super::ask_stop(&hit.stops, hit.index, service, pause).await
}

/// One frame (its length, then as many bytes) as it came; `None` at the end of the stream.
async fn read_frame(from: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<BytesMut>> {
    let mut length = [0u8; 4];
    match from.read_exact(&mut length).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = i32::from_be_bytes(length);
    // A request header or response header is at least this long.
    if len < 8 || len as usize > LARGEST_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a Kafka frame"));
    }
    let mut frame = BytesMut::zeroed(len as usize + 4);
    frame[..4].copy_from_slice(&length);
    from.read_exact(&mut frame[4..]).await?;
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::TopicName;

    fn produce_frame(version: i16, acks: i16) -> (RequestHeader, Bytes) {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(version)
            .with_correlation_id(7);
        let request = ProduceRequest::default().with_acks(acks).with_timeout_ms(1000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName("order.events".into()))
                .with_partition_data(vec![PartitionProduceData::default().with_index(2)]),
        ]);
        let mut body = BytesMut::new();
        request.encode(&mut body, version).expect("encodes");
        (header, body.freeze())
    }

    fn shared() -> Shared {
        Shared {
            link: "order->kafka".into(),
            client: "order".into(),
            upstream: "127.0.0.1:9".parse().expect("an address"),
            faults: Mutex::new(Vec::new()),
            seen: Mutex::new(BTreeMap::new()),
            topic_names: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn a_produce_is_read_for_its_topics_partitions_and_acks() {
        let shared = shared();
        for version in [3, 7, 9, 11] {
            let (header, body) = produce_frame(version, -1);
            let named = shared.read(&header, body, &mut BTreeSet::new()).expect("read");
            assert_eq!(named.topics, vec!["order.events".to_string()], "v{version}");
            assert_eq!(named.partitions, vec![("order.events".to_string(), vec![2])]);
            assert!(!named.unanswered);
        }
        let (header, body) = produce_frame(9, 0);
        assert!(shared.read(&header, body, &mut BTreeSet::new()).expect("read").unanswered);
    }

    #[test]
    fn an_error_answer_decodes_as_the_clients_response_with_the_code_on_each_partition() {
        let shared = shared();
        for version in [3, 8, 9, 11] {
            let (header, body) = produce_frame(version, -1);
            let named = shared.read(&header, body, &mut BTreeSet::new()).expect("read");
            let frame = error_answer(&header, &named, 6).expect("encodes");
            let mut rest = frame.slice(4..);
            assert_eq!((&frame[..4]).get_i32() as usize, rest.len());
            let head = ResponseHeader::decode(&mut rest, ApiKey::Produce.response_header_version(version))
                .expect("a header");
            assert_eq!(head.correlation_id, 7);
            let response = ProduceResponse::decode(&mut rest, version).expect("a produce response");
            assert!(rest.is_empty(), "v{version}: nothing left over");
            let partition = &response.responses[0].partition_responses[0];
            assert_eq!((partition.index, partition.error_code, partition.base_offset), (2, 6, -1));
        }
    }
}
