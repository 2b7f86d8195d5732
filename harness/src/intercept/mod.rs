//! The request proxy: faultline's own HTTP proxy, built on hyper, on each link between two
//! services, behind the link's Toxiproxy proxy (caller → Toxiproxy → this → callee). With no
//! fault installed it forwards every request as it came. A request-level fault
//! ([`RequestFault`]) installed by the nemesis picks requests by method and path and answers
//! them itself, cuts the caller's connection (before or after forwarding), delays or holds
//! them, or forwards them twice; each request it hits is an operation of the run's history
//! (process `nemesis`, [`Op::RequestFault`]) naming the link, the request and what was done.
//!
//! The callee unreachable, the caller's connection is closed without an answer, as Toxiproxy
//! alone would do: a request proxy never invents a 502.
//!
//! Layer 2 (infrastructure) of the harness ([layers](crate#layers)): imports only the
//! [`history`](crate::history), where each fault it applies is recorded.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use faultline_chaos::scenario::intercept::{RequestAction, RequestFault, When, Which};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::history::{Op, Process, Recorder};

pub mod kafka;
pub mod postgres;

type Forwarder = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// What a program-point fault ([`RequestAction::Stop`]) asks of whoever installed it: kill
/// (or pause) `service` now, and answer on `done` once it is.
#[derive(Debug)]
pub struct StopRequest {
    /// The fault's index in the schedule.
    pub index: usize,
    pub service: String,
    pub pause: bool,
    pub done: oneshot::Sender<Result<(), String>>,
}

/// How long a request waits for its program-point fault's stop to be carried out.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// A fault in effect on one proxy.
struct Installed {
    index: usize,
    fault: RequestFault,
    seed: u64,
    recorder: Recorder,
    stops: mpsc::UnboundedSender<StopRequest>,
    /// Matching requests seen since it was installed.
    matched: u64,
    /// Whether its program point has struck (it does once).
    struck: bool,
}

/// The fault hitting one request.
struct Hit {
    index: usize,
    action: RequestAction,
    recorder: Recorder,
    stops: mpsc::UnboundedSender<StopRequest>,
}

struct Shared {
    link: String,
    upstream: SocketAddr,
    forwarder: Forwarder,
    faults: Mutex<Vec<Installed>>,
    /// Every route seen since the last [`RequestProxy::forget`], by `(method, route)`.
    seen: Mutex<BTreeMap<(String, String), Seen>>,
    /// How many requests were in flight, over time, since the last forget.
    flights: Mutex<Flights>,
    /// The header naming a request's idempotency key, when the callee promises to replay
    /// its answer (see [`RequestProxy::watch_idempotency`]).
    key_header: Mutex<Option<hyper::header::HeaderName>>,
    /// The callee's answers to keyed requests since the last forget, in the order sent.
    keyed: Mutex<Vec<KeyedAnswer>>,
    /// Delayed requests not forwarded yet: they reach the callee even when their caller gave
    /// up, and are dropped only between runs ([`RequestProxy::clear`]).
    late: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// The callee's answer to a request with an idempotency key, as the proxy saw it — also
/// when a fault then kept it from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedAnswer {
    pub key: String,
    pub method: String,
    pub target: String,
    pub status: u16,
    /// When it was sent to the callee, and when the callee's answer came.
    pub sent: std::time::Instant,
    pub answered: std::time::Instant,
}

/// A later request with a key whose earlier request had been answered with success, and
/// got another status: the callee did not replay its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenReplay {
    pub first: KeyedAnswer,
    pub later: KeyedAnswer,
}

/// Every broken replay in `answers` among requests sent from `since` on: for each key, an
/// answer 2xx, and a request sent after it came that was answered with another status.
pub fn broken_replays(answers: &[KeyedAnswer], since: std::time::Instant) -> Vec<BrokenReplay> {
    let mut by_key: BTreeMap<&str, Vec<&KeyedAnswer>> = BTreeMap::new();
    for answer in answers {
        by_key.entry(answer.key.as_str()).or_default().push(answer);
    }
    let mut broken = Vec::new();
    for later in answers.iter().filter(|a| a.sent >= since) {
        let first = by_key[later.key.as_str()].iter().find(|first| {
            (200..300).contains(&first.status)
                && first.answered <= later.sent
                && first.status != later.status
        });
        if let Some(first) = first {
            broken.push(BrokenReplay {
                first: (*first).clone(),
                later: later.clone(),
            });
        }
    }
    broken
}

/// The number of requests in flight on a link — received from the caller and neither
/// answered nor given up on (its connection closed) — and each time it changed.
#[derive(Debug, Default)]
struct Flights {
    now: u32,
    changes: Vec<(std::time::Instant, u32)>,
}

/// At most this many changes are kept (two per request): runs are bounded, this bounds them.
const MAX_FLIGHT_CHANGES: usize = 2_000_000;

impl Flights {
    fn change(&mut self, up: bool) {
        self.now = if up { self.now + 1 } else { self.now.saturating_sub(1) };
        if self.changes.len() < MAX_FLIGHT_CHANGES {
            self.changes.push((std::time::Instant::now(), self.now));
        }
    }

    /// How far, and for how long at a stretch, the count went above `bound` from `since` on.
    fn above(&self, bound: u32, since: std::time::Instant) -> InFlight {
        let mut count = self
            .changes
            .iter()
            .take_while(|(at, _)| *at < since)
            .last()
            .map_or(0, |(_, n)| *n);
        let mut result = InFlight {
            peak: count,
            ..InFlight::default()
        };
        let mut above_from = (count > bound).then_some(since);
        let close = |from: std::time::Instant, to: std::time::Instant, result: &mut InFlight| {
            let stretch = to.saturating_duration_since(from);
            if stretch > result.longest_above {
                result.longest_above = stretch;
                result.longest_from = Some(from.saturating_duration_since(since));
            }
        };
        for &(at, n) in self.changes.iter().filter(|(at, _)| *at >= since) {
            count = n;
            result.peak = result.peak.max(count);
            match (above_from, count > bound) {
                (None, true) => above_from = Some(at),
                (Some(from), false) => {
                    close(from, at, &mut result);
                    above_from = None;
                }
                _ => {}
            }
        }
        if let Some(from) = above_from {
            close(from, std::time::Instant::now(), &mut result);
        }
        result
    }
}

/// What [`RequestProxy::in_flight`] found: the most requests in flight at once, and the
/// longest stretch with more than the bound asked about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InFlight {
    pub peak: u32,
    pub longest_above: Duration,
    /// When that stretch began, from the `since` asked about.
    pub longest_from: Option<Duration>,
}

/// Counts its request in flight while it lives: until the answer is handed back, or the
/// caller gives up and the connection's task drops the request.
struct Flying<'a>(&'a Shared);

impl<'a> Flying<'a> {
    fn enter(shared: &'a Shared) -> Self {
        shared.flights.lock().expect("flights lock").change(true);
        Self(shared)
    }
}

impl Drop for Flying<'_> {
    fn drop(&mut self) {
        self.0.flights.lock().expect("flights lock").change(false);
    }
}

/// How often, and since when, a route has come through a proxy.
#[derive(Debug, Clone, Copy)]
struct Seen {
    first: std::time::Instant,
    count: u64,
}

/// A remote call site: requests of one method to one route on one link, as a request proxy
/// saw them come through.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct CallSite {
    /// `caller->callee`.
    pub link: String,
    pub method: String,
    /// The path with its query left out and each segment that looks like an identifier
    /// written `*` (see [`route_of`]), as a request fault's `path` matches it.
    pub route: String,
    /// Requests seen.
    pub count: u64,
}

impl std::fmt::Display for CallSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.link, self.method, self.route)
    }
}

/// The route of a request target: the query left out, and each path segment that holds a
/// digit and is either all digits or at least six characters long (a number, a UUID, a
/// minted id like `ord-1f3a9c`) written `*`, so requests for different resources of one kind
/// are one call site. `v1` or `charges` stay as they are.
pub fn route_of(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let segments: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let has_digit = segment.bytes().any(|b| b.is_ascii_digit());
            let all_digits = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
            if has_digit && (all_digits || segment.len() >= 6) {
                "*"
            } else {
                segment
            }
        })
        .collect();
    let route = segments.join("/");
    if route.is_empty() {
        "/".into()
    } else {
        route
    }
}

/// One link's request proxy, listening on `127.0.0.1`. Dropping it stops it and closes every
/// connection it holds.
pub struct RequestProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    _stop: StopOnDrop,
}

/// Stops a proxy's accept loop and connections when the proxy is dropped.
pub(crate) struct StopOnDrop(pub(crate) CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Accepts connections on `listener` until `stop`, serving each with `serve` on a task of its
/// own that `stop` ends too: the accept loop of the statement and broker proxies.
pub(crate) async fn serve_each<F, Fut>(listener: TcpListener, stop: CancellationToken, serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        let client = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => continue,
            },
        };
        let connection = serve(client);
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}

/// A small HTTP/1 server on `listener` until `stop`: each request, read whole, is answered by
/// `answer` (its method, path and headers, and its body). What the contract verifier's message
/// bridge and the proxy benchmark's callee serve.
pub(crate) fn serve_http<F, Fut>(listener: TcpListener, stop: CancellationToken, answer: F)
where
    F: Fn(hyper::http::request::Parts, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    tokio::spawn(serve_each(listener, stop, move |stream| {
        let answer = answer.clone();
        async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let answer = answer.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    Ok::<_, Infallible>(answer(parts, body).await)
                }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
                .map_err(std::io::Error::other)
        }
    }));
}

/// An answer with `status`, `headers` and `body`.
pub(crate) fn answer(status: u16, headers: &[(&str, String)], body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// Takes the fault of schedule index `index` out of `faults`; whether it was in effect.
pub(crate) fn take_out<T>(faults: &Mutex<Vec<T>>, index: usize, index_of: impl Fn(&T) -> usize) -> bool {
    let mut faults = faults.lock().expect("faults lock");
    let before = faults.len();
    faults.retain(|f| index_of(f) != index);
    faults.len() != before
}

impl RequestProxy {
    /// Starts the proxy of `link` (`order->payment`), forwarding to `upstream`.
    pub async fn start(link: &str, upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let shared = Arc::new(Shared {
            link: link.to_string(),
            upstream,
            forwarder: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            faults: Mutex::new(Vec::new()),
            seen: Mutex::new(BTreeMap::new()),
            flights: Mutex::new(Flights::default()),
            key_header: Mutex::new(None),
            keyed: Mutex::new(Vec::new()),
            late: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, shared.clone(), stop.clone()));
        Ok(Self {
            address,
            shared,
            _stop: StopOnDrop(stop),
        })
    }

    /// Where callers reach it.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Puts fault `index` of the run's schedule in effect; the requests it hits are recorded
    /// in `recorder`'s history. A fraction is drawn from `seed`, so the same order of
    /// requests meets the same choices. A program-point fault sends its stop to `stops` and
    /// waits for it to be carried out.
    pub fn install(
        &self,
        index: usize,
        fault: RequestFault,
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
        });
        faults.sort_by_key(|f| f.index);
    }

    /// Takes fault `index` out of effect; requests it holds stay held until their callers give
    /// up. Whether it was in effect.
    pub fn remove(&self, index: usize) -> bool {
        take_out(&self.shared.faults, index, |f| f.index)
    }

    /// Takes every fault out of effect, and drops the delayed requests not forwarded yet
    /// (between runs: none may reach the callee in the next one).
    pub fn clear(&self) {
        self.shared.faults.lock().expect("faults lock").clear();
        for late in self.shared.late.lock().expect("late lock").drain(..) {
            late.abort();
        }
    }

    /// The call sites seen since the last [`forget`](Self::forget), each with when it was
    /// first seen.
    fn seen(&self) -> Vec<(std::time::Instant, CallSite)> {
        let seen = self.shared.seen.lock().expect("seen lock");
        seen.iter()
            .map(|((method, route), seen)| {
                let site = CallSite {
                    link: self.shared.link.clone(),
                    method: method.clone(),
                    route: route.clone(),
                    count: seen.count,
                };
                (seen.first, site)
            })
            .collect()
    }

    /// Forgets the call sites seen so far, and the requests in flight over time (not those
    /// in flight now).
    pub fn forget(&self) {
        self.shared.seen.lock().expect("seen lock").clear();
        self.shared.flights.lock().expect("flights lock").changes.clear();
        self.shared.keyed.lock().expect("keyed lock").clear();
    }

    /// From now on, notes the callee's answer to each request carrying `header` (an
    /// idempotency key such as `Idempotency-Key`), for [`RequestProxy::broken_replays`].
    pub fn watch_idempotency(&self, header: hyper::header::HeaderName) {
        *self.shared.key_header.lock().expect("key header lock") = Some(header);
    }

    /// The callee's answers that broke its promise to replay, among requests sent from
    /// `since` on (see [`broken_replays`]).
    pub fn broken_replays(&self, since: std::time::Instant) -> Vec<BrokenReplay> {
        broken_replays(&self.shared.keyed.lock().expect("keyed lock"), since)
    }

    /// The most requests in flight at once from `since` on, and the longest stretch with
    /// more than `bound`.
    pub fn in_flight(&self, bound: u32, since: std::time::Instant) -> InFlight {
        self.shared
            .flights
            .lock()
            .expect("flights lock")
            .above(bound, since)
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!(%error, link = %shared.link, "request proxy: accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let reset = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(Resettable {
            stream,
            reset: reset.clone(),
        });
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (shared, reset) = (shared.clone(), reset.clone());
                async move { handle(request, &shared, &reset).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, service);
            tokio::select! {
                () = stop.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}

/// The caller's connection, which resets (RST, not FIN) when it is dropped after a fault
/// asked for it.
struct Resettable {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for Resettable {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Resettable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Resettable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Why a connection is cut instead of answered.
#[derive(Debug)]
struct Cut(&'static str);

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Cut {}

/// A request as it came, kept whole so it can be sent twice.
struct Buffered {
    method: hyper::Method,
    /// The path and query, as the caller sent them.
    target: String,
    /// The end-to-end headers (hop-by-hop ones dropped).
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// Headers that describe one connection, not the message: the proxy buffers whole bodies and
/// opens its own connections, so it passes none of them on (RFC 9110, section 7.6.1), nor any
/// header a `Connection` header names.
fn end_to_end(mut headers: hyper::HeaderMap) -> hyper::HeaderMap {
    use hyper::header;
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    headers
}

/// The fault that hits this request, if any: the first installed one that matches it and
/// whose choice (every, n-th, fraction) falls on it; a program point strikes once.
fn hit(shared: &Shared, method: &str, path: &str) -> Option<Hit> {
    let mut faults = shared.faults.lock().expect("faults lock");
    for installed in faults.iter_mut() {
        if !installed.fault.matches(method, path) {
            continue;
        }
        installed.matched += 1;
        let chosen = chosen(installed.fault.which, installed.seed, installed.index, installed.matched);
        let once = matches!(installed.fault.action, RequestAction::Stop { .. });
        if chosen && !(once && installed.struck) {
            installed.struck = true;
            return Some(Hit {
                index: installed.index,
                action: installed.fault.action.clone(),
                recorder: installed.recorder.clone(),
                stops: installed.stops.clone(),
            });
        }
    }
    None
}

/// Asks for `service` to be stopped and waits until it is.
async fn stop(hit: &Hit, service: &str, pause: bool) -> Result<(), String> {
    ask_stop(&hit.stops, hit.index, service, pause).await
}

/// Asks `stops` (the nemesis) to stop `service` for fault `index`, and waits until it is.
pub(crate) async fn ask_stop(
    stops: &mpsc::UnboundedSender<StopRequest>,
    index: usize,
    service: &str,
    pause: bool,
) -> Result<(), String> {
    let (done, stopped) = oneshot::channel();
    stops
        .send(StopRequest {
            index,
            service: service.to_string(),
            pause,
            done,
        })
        .map_err(|_| "no nemesis is listening".to_string())?;
    match tokio::time::timeout(STOP_WAIT, stopped).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Err("the nemesis dropped the stop".into()),
        Err(_) => Err(format!("not stopped within {}s", STOP_WAIT.as_secs())),
    }
}

/// Whether fault `index`, with `which`, hits the `matched`-th request (or statement) it
/// matched since it started: every one, only the n-th, or a fraction drawn from `seed`.
pub(crate) fn chosen(which: Which, seed: u64, index: usize, matched: u64) -> bool {
    match which {
        Which::Every => true,
        Which::Nth(n) => matched == u64::from(n),
        Which::Fraction(f) => draw(seed, index, matched) < f,
    }
}

/// A number in [0, 1) from the seed, the fault and the request's place among those matching.
fn draw(seed: u64, index: usize, nth: u64) -> f64 {
    let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nth.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

async fn handle(
    request: Request<Incoming>,
    shared: &Arc<Shared>,
    reset: &AtomicBool,
) -> Result<Response<Full<Bytes>>, Cut> {
    let _flying = Flying::enter(shared);
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| Cut("the caller's request body broke off"))?
        .to_bytes();
    let request = Buffered {
        method: parts.method,
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
        headers: end_to_end(parts.headers),
        body,
    };
    {
        let mut seen = shared.seen.lock().expect("seen lock");
        seen.entry((request.method.to_string(), route_of(&request.target)))
            .and_modify(|s| s.count += 1)
            .or_insert(Seen {
                first: std::time::Instant::now(),
                count: 1,
            });
    }
    let Some(hit) = hit(shared, request.method.as_str(), &request.target) else {
        return forward(shared, &request).await;
    };
    let index = hit.index;
    let pending = hit.recorder.invoke(
        Process::Nemesis,
        Op::RequestFault {
            index,
            link: shared.link.clone(),
            method: request.method.to_string(),
            path: request.target.clone(),
            action: hit.action.name().to_string(),
        },
    );
    match hit.action.clone() {
        RequestAction::Status(code, body) => {
            pending.ok(json!({ "answered": code }));
            let answer = Response::builder().status(code);
            Ok(match body {
                // As the scenario gives it, without a content type: an upstream's empty 502.
                Some(body) => answer.body(Full::new(Bytes::from(body))),
                None => {
                    let body = json!({
                        "error": "injected",
                        "message": format!("faultline's request fault {index} on {} answered {code}", shared.link),
                    });
                    answer
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body.to_string())))
                }
            }
            .expect("a valid status and header"))
        }
        RequestAction::Reset => {
            pending.ok(json!({ "forwarded": false }));
            reset.store(true, Ordering::SeqCst);
            Err(Cut("reset by a request fault"))
        }
        RequestAction::DropAnswer => {
            let answered = forward(shared, &request).await;
            match &answered {
                Ok(response) => pending.ok(json!({ "forwarded": true, "answer_dropped": response.status().as_u16() })),
                Err(cut) => pending.info(json!({ "forwarded": true, "error": cut.to_string() })),
            };
            reset.store(true, Ordering::SeqCst);
            Err(Cut("answer dropped by a request fault"))
        }
        RequestAction::Delay(delay) => {
            // Recorded when the delay begins. The request reaches the callee late whether or
            // not its caller still waits, as one a slow network held does: a delay past the
            // caller's timeout is work done that the caller never hears of, not a hold.
            pending.ok(json!({ "delayed_ms": delay.as_millis() as u64 }));
            let owner = Arc::clone(shared);
            let late = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                forward(&owner, &request).await
            });
            {
                let mut waiting = shared.late.lock().expect("late lock");
                waiting.retain(|handle| !handle.is_finished());
                waiting.push(late.abort_handle());
            }
            late.await.unwrap_or(Err(Cut("a delayed request dropped between runs")))
        }
        RequestAction::Hold => {
            pending.ok(json!({ "held": true }));
            // Never answered: the caller's giving up (or the heal's reset) drops it.
            match std::future::pending::<Infallible>().await {}
        }
        RequestAction::Duplicate => {
            let first = forward(shared, &request).await;
            let second = forward(shared, &request).await;
            let status = |r: &Result<Response<Full<Bytes>>, Cut>| {
                r.as_ref().map_or(json!(null), |r| json!(r.status().as_u16()))
            };
            pending.ok(json!({ "forwarded": 2, "first": status(&first), "second": status(&second) }));
            first
        }
        RequestAction::Stop {
            service,
            when: When::Sent,
            pause,
        } => {
            // The caller sent it: the service stops now, and the request still goes on.
            let stopped = stop(&hit, &service, pause).await;
            let answered = forward(shared, &request).await;
            match &stopped {
                Ok(()) => pending.ok(json!({ "stopped": service, "when": "sent" })),
                Err(error) => pending.fail(json!({ "error": error })),
            };
            answered
        }
        RequestAction::Stop {
            service,
            when: When::Answered,
            pause,
        } => {
            // The callee answered; the service stops before the caller hears, and the answer
            // is not passed on.
            let answered = forward(shared, &request).await;
            let stopped = stop(&hit, &service, pause).await;
            let status = answered.as_ref().map_or(json!(null), |r| json!(r.status().as_u16()));
            match &stopped {
                Ok(()) => pending.ok(json!({ "stopped": service, "when": "answered", "answer_dropped": status })),
                Err(error) => pending.fail(json!({ "error": error, "answer": status })),
            };
            reset.store(true, Ordering::SeqCst);
            Err(Cut("the answer was not passed on: a program-point fault struck"))
        }
    }
}

/// Sends `request` to the link's callee and reads its whole answer; an answer to a request
/// with an idempotency key is noted.
async fn forward(shared: &Shared, request: &Buffered) -> Result<Response<Full<Bytes>>, Cut> {
    let sent = std::time::Instant::now();
    let answer = forward_once(shared, request).await;
    if let Ok(response) = &answer {
        let header = shared.key_header.lock().expect("key header lock").clone();
        let key = header
            .and_then(|h| request.headers.get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(key) = key {
            let mut keyed = shared.keyed.lock().expect("keyed lock");
            if keyed.len() < MAX_KEYED_ANSWERS {
                keyed.push(KeyedAnswer {
                    key,
                    method: request.method.to_string(),
                    target: request.target.clone(),
                    status: response.status().as_u16(),
                    sent,
                    answered: std::time::Instant::now(),
                });
            }
        }
    }
    answer
}

/// At most this many keyed answers are kept: runs are bounded, this bounds them.
const MAX_KEYED_ANSWERS: usize = 200_000;

async fn forward_once(shared: &Shared, request: &Buffered) -> Result<Response<Full<Bytes>>, Cut> {
    let uri: hyper::Uri = format!("http://{}{}", shared.upstream, request.target)
        .parse()
        .map_err(|_| Cut("the request's path is not a valid URI"))?;
    let mut builder = Request::builder().method(request.method.clone()).uri(uri);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let outgoing = builder
        .body(Full::new(request.body.clone()))
        .map_err(|_| Cut("the request could not be rebuilt"))?;
    let response = shared
        .forwarder
        .request(outgoing)
        .await
        .map_err(|_| Cut("the callee did not answer"))?;
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| Cut("the callee's answer broke off"))?
        .to_bytes();
    parts.headers = end_to_end(parts.headers);
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// The request proxies of a stack, by link name.
#[derive(Default)]
pub struct RequestProxies {
    proxies: BTreeMap<String, RequestProxy>,
}

impl RequestProxies {
    /// Adds the proxy of `link`.
    pub fn insert(&mut self, link: String, proxy: RequestProxy) {
        self.proxies.insert(link, proxy);
    }

    /// The proxy of `link`, if the stack has one.
    pub fn get(&self, link: &str) -> Option<&RequestProxy> {
        self.proxies.get(link)
    }

    /// Takes every fault out of effect on every link.
    pub fn clear(&self) {
        for proxy in self.proxies.values() {
            proxy.clear();
        }
    }

    /// Every call site the proxies saw since they last forgot, in the order they were first
    /// seen (their place in the flow).
    pub fn call_sites(&self) -> Vec<CallSite> {
        let mut seen: Vec<_> = self.proxies.values().flat_map(RequestProxy::seen).collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        seen.into_iter().map(|(_, site)| site).collect()
    }

    /// Forgets the call sites seen on every link.
    pub fn forget(&self) {
        for proxy in self.proxies.values() {
            proxy.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_chaos::scenario::intercept::RequestAction;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_fraction_is_drawn_from_the_seed_alone() {
        let draws: Vec<f64> = (1..=1000).map(|n| draw(7, 0, n)).collect();
        assert_eq!(draws, (1..=1000).map(|n| draw(7, 0, n)).collect::<Vec<_>>());
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let below = draws.iter().filter(|d| **d < 0.3).count();
        assert!((230..370).contains(&below), "about 30% below 0.3: {below}");
        assert_ne!(draw(7, 0, 1), draw(8, 0, 1));
        assert_ne!(draw(7, 0, 1), draw(7, 1, 1));
    }

    /// A callee on 127.0.0.1 that counts the requests it served and echoes their body.
    async fn callee() -> (SocketAddr, Arc<AtomicUsize>) {
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Serves as long as the test runs (nothing cancels it).
        serve_http(listener, CancellationToken::new(), move |_, body| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let body = format!("echo {}", String::from_utf8_lossy(&body));
            async move { answer(201, &[("x-served", n.to_string())], body) }
        });
        (address, served)
    }

    fn fault(path: &str, which: Which, action: RequestAction) -> RequestFault {
        RequestFault {
            method: Some("POST".into()),
            path: Some(path.into()),
            which,
            action,
        }
    }

    /// Sends `POST path` with a fresh connection each time (as a client with no pool would).
    async fn post(proxy: &RequestProxy, path: &str, timeout: Duration) -> Result<(u16, String), String> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(timeout)
            .build()
            .unwrap();
        let answer = client
            .post(format!("http://{}{path}", proxy.address()))
            .body("hello")
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = answer.status().as_u16();
        Ok((status, answer.text().await.map_err(|e| e.to_string())?))
    }

    async fn served_reaches(served: &AtomicUsize, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while served.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the callee served {} requests, not {n}", served.load(Ordering::SeqCst)));
    }

    const QUICK: Duration = Duration::from_secs(5);

    /// Where a fault's stops go when a test expects none.
    fn no_stops() -> mpsc::UnboundedSender<StopRequest> {
        mpsc::unbounded_channel().0
    }

    #[test]
    fn in_flight_counts_the_peak_and_the_longest_stretch_above_a_bound() {
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let flights = Flights {
            now: 0,
            // 1, 2, 3 in flight; back to 1; up to 3 for 300 ms; down to 0.
            changes: vec![
                (at(0), 1),
                (at(10), 2),
                (at(20), 3),
                (at(70), 2),
                (at(80), 1),
                (at(100), 2),
                (at(110), 3),
                (at(410), 2),
                (at(420), 0),
            ],
        };
        let above_two = flights.above(2, t0);
        assert_eq!(above_two.peak, 3);
        assert_eq!(above_two.longest_above, Duration::from_millis(300));
        assert_eq!(above_two.longest_from, Some(Duration::from_millis(110)));
        // From a later point, counting from what was in flight then.
        let later = flights.above(0, at(50));
        assert_eq!(later.peak, 3);
        assert_eq!(later.longest_above, Duration::from_millis(370));
        assert_eq!(later.longest_from, Some(Duration::ZERO));
        assert_eq!(flights.above(3, t0), InFlight { peak: 3, ..InFlight::default() });
    }

    #[tokio::test]
    async fn requests_count_in_flight_until_answered_or_given_up_on() {
        let (address, _served) = callee().await;
        let proxy = RequestProxy::start("a->b", address).await.unwrap();
        let since = std::time::Instant::now();
        post(&proxy, "/quick", QUICK).await.unwrap();
        assert_eq!(proxy.in_flight(0, since).peak, 1);
        assert_eq!(proxy.shared.flights.lock().unwrap().now, 0, "answered: no longer in flight");

        // Three held requests are in flight together until their callers give up.
        proxy.install(0, fault("/held", Which::Every, RequestAction::Hold), 1, Recorder::new(), no_stops());
        let give_up = Duration::from_millis(700);
        let (a, b, c) = tokio::join!(
            post(&proxy, "/held", give_up),
            post(&proxy, "/held", give_up),
            post(&proxy, "/held", give_up)
        );
        assert!(a.is_err() && b.is_err() && c.is_err());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while proxy.shared.flights.lock().unwrap().now > 0 {
            assert!(std::time::Instant::now() < deadline, "given-up requests stay in flight");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let held = proxy.in_flight(2, since);
        assert_eq!(held.peak, 3);
        assert!(held.longest_above > Duration::from_millis(400), "{held:?}");
        assert!(held.longest_above < Duration::from_secs(5), "{held:?}");
        proxy.forget();
        assert_eq!(proxy.in_flight(0, since), InFlight::default());
    }

    #[test]
    fn connection_headers_are_not_passed_on_and_the_rest_are() {
        let mut headers = hyper::HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-hop", "1"),
            ("authorization", "Bearer t"),
            ("idempotency-key", "k-1"),
            ("content-type", "application/json"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let kept = end_to_end(headers);
        let mut names: Vec<_> = kept.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["authorization", "content-type", "idempotency-key"]);
    }

    #[test]
    fn a_route_writes_identifiers_as_any_segment() {
        assert_eq!(route_of("/payments/charges"), "/payments/charges");
        assert_eq!(route_of("/payments/charges?x=1"), "/payments/charges");
        assert_eq!(route_of("/api/orders/4f1c2b9e-8d7a-4c1e-9b3a-2f6d8e0a1b2c"), "/api/orders/*");
        assert_eq!(route_of("/reservations/42/commit"), "/reservations/*/commit");
        assert_eq!(route_of("/api/v1/orders/ord-1f3a9c"), "/api/v1/orders/*");
        assert_eq!(route_of("/"), "/");
        assert_eq!(route_of(""), "/");
    }

    #[tokio::test]
    async fn with_no_fault_requests_pass_through_unchanged() {
        let (address, served) = callee().await;
        let proxy = RequestProxy::start("a->b", address).await.unwrap();
        assert_eq!(post(&proxy, "/x?y=1", QUICK).await.unwrap(), (201, "echo hello".into()));
        assert_eq!(served.load(Ordering::SeqCst), 1);
    }

    /// A callee that keeps each `Idempotency-Key`'s first answer (201), and on a repeat
    /// either replays it or, when `forgets`, refuses the repeat (409).
    async fn keyed_callee(forgets: bool) -> SocketAddr {
        let seen = Arc::new(Mutex::new(std::collections::BTreeSet::<String>::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        serve_http(listener, CancellationToken::new(), move |head, _| {
            let key = head
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let repeated = !seen.lock().unwrap().insert(key);
            async move { answer(if repeated && forgets { 409 } else { 201 }, &[], "") }
        });
        address
    }

    async fn post_keyed(proxy: &RequestProxy, key: &str) -> Result<u16, String> {
        reqwest::Client::new()
            .post(format!("http://{}/charges", proxy.address()))
            .header("Idempotency-Key", key)
            .timeout(QUICK)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn a_repeated_key_answered_otherwise_after_a_success_is_a_broken_replay() {
        for forgets in [false, true] {
            let proxy = RequestProxy::start("a->b", keyed_callee(forgets).await).await.unwrap();
            proxy.watch_idempotency(hyper::header::HeaderName::from_static("idempotency-key"));
            let since = std::time::Instant::now();
            assert_eq!(post_keyed(&proxy, "k-1").await, Ok(201));
            // The answer to the repeat is lost on the way back; the proxy saw it all the same.
            proxy.install(0, fault("/charges", Which::Every, RequestAction::DropAnswer), 1, Recorder::new(), no_stops());
            assert!(post_keyed(&proxy, "k-1").await.is_err());
            proxy.remove(0);
            assert_eq!(post_keyed(&proxy, "k-2").await, Ok(201));
            let broken = proxy.broken_replays(since);
            if forgets {
                assert_eq!(broken.len(), 1, "{broken:?}");
                assert_eq!((broken[0].first.status, broken[0].later.status), (201, 409));
                assert_eq!(broken[0].later.key, "k-1");
                assert!(broken[0].first.answered <= broken[0].later.sent);
            } else {
                assert_eq!(broken, [], "a callee that replays breaks nothing");
            }
            proxy.forget();
            assert_eq!(proxy.broken_replays(since), []);
        }
    }

    #[test]
    fn only_a_success_answered_before_the_repeat_was_sent_binds_it() {
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let answer = |key: &str, status: u16, sent: u64, answered: u64| KeyedAnswer {
            key: key.into(),
            method: "POST".into(),
            target: "/charges".into(),
            status,
            sent: at(sent),
            answered: at(answered),
        };
        let answers = [
            // Overlapping: the second was sent before the first's success came back.
            answer("a", 201, 0, 50),
            answer("a", 409, 10, 20),
            // A failure binds nothing: the retry may succeed.
            answer("b", 503, 0, 10),
            answer("b", 201, 20, 30),
            // A success, then another status to a later repeat: broken.
            answer("c", 201, 0, 10),
            answer("c", 201, 20, 30),
            answer("c", 409, 40, 50),
        ];
        let broken = broken_replays(&answers, t0);
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert_eq!((broken[0].later.key.as_str(), broken[0].later.status), ("c", 409));
        assert_eq!(broken_replays(&answers, at(45)), []);
    }

    #[tokio::test]
    async fn the_call_sites_seen_are_listed_in_the_order_first_seen_and_forgotten_on_demand() {
        let (address, _served) = callee().await;
        let mut proxies = RequestProxies::default();
        proxies.insert("a->b".into(), RequestProxy::start("a->b", address).await.unwrap());
        proxies.insert("c->b".into(), RequestProxy::start("c->b", address).await.unwrap());
        let (ab, cb) = (proxies.get("a->b").unwrap(), proxies.get("c->b").unwrap());
        post(cb, "/z", QUICK).await.unwrap();
        post(ab, "/items/12345/hold", QUICK).await.unwrap();
        post(ab, "/items/67890/hold?now=1", QUICK).await.unwrap();
        let sites: Vec<(String, String, u64)> = proxies
            .call_sites()
            .into_iter()
            .map(|s| (s.link, s.route, s.count))
            .collect();
        assert_eq!(
            sites,
            vec![
                ("c->b".into(), "/z".into(), 1),
                ("a->b".into(), "/items/*/hold".into(), 2)
            ]
        );
        proxies.forget();
        assert!(proxies.call_sites().is_empty());
    }

    #[tokio::test]
    async fn each_action_does_what_it_says_and_is_recorded() {
        let (address, served) = callee().await;
        let proxy = RequestProxy::start("a->b", address).await.unwrap();
        let recorder = Recorder::new();

        // status: answered here, never forwarded.
        proxy.install(0, fault("/pay*", Which::Every, RequestAction::Status(503, None)), 1, recorder.clone(), no_stops());
        let (status, body) = post(&proxy, "/pay/1", QUICK).await.unwrap();
        assert_eq!(status, 503);
        assert!(body.contains("injected"), "{body}");
        // Other paths are not matched.
        assert_eq!(post(&proxy, "/other", QUICK).await.unwrap().0, 201);
        assert_eq!(served.load(Ordering::SeqCst), 1);
        assert!(proxy.remove(0));
        // status with a body of the scenario's: here none, as a load balancer's 502.
        proxy.install(0, fault("/pay*", Which::Every, RequestAction::Status(502, Some(String::new()))), 1, recorder.clone(), no_stops());
        assert_eq!(post(&proxy, "/pay/1", QUICK).await.unwrap(), (502, String::new()));
        assert_eq!(served.load(Ordering::SeqCst), 1);
        assert!(proxy.remove(0));

        // reset: the caller's connection is cut, nothing forwarded.
        proxy.install(1, fault("/pay*", Which::Every, RequestAction::Reset), 1, recorder.clone(), no_stops());
        let error = post(&proxy, "/pay/2", QUICK).await.unwrap_err();
        assert!(!error.contains("TimedOut"), "cut, not timed out: {error}");
        assert_eq!(served.load(Ordering::SeqCst), 1);
        proxy.remove(1);

        // drop_answer: forwarded (the callee served it), the answer never arrives.
        proxy.install(2, fault("/pay*", Which::Every, RequestAction::DropAnswer), 1, recorder.clone(), no_stops());
        post(&proxy, "/pay/3", QUICK).await.unwrap_err();
        assert_eq!(served.load(Ordering::SeqCst), 2);
        proxy.remove(2);

        // duplicate: the callee serves it twice, the caller hears the first answer.
        proxy.install(3, fault("/pay*", Which::Every, RequestAction::Duplicate), 1, recorder.clone(), no_stops());
        assert_eq!(post(&proxy, "/pay/4", QUICK).await.unwrap(), (201, "echo hello".into()));
        assert_eq!(served.load(Ordering::SeqCst), 4);
        proxy.remove(3);

        // hold: never forwarded, never answered; the caller gives up.
        proxy.install(4, fault("/pay*", Which::Every, RequestAction::Hold), 1, recorder.clone(), no_stops());
        let error = post(&proxy, "/pay/5", Duration::from_millis(300)).await.unwrap_err();
        assert!(error.contains("TimedOut"), "{error}");
        assert_eq!(served.load(Ordering::SeqCst), 4);
        proxy.remove(4);

        // delay: the caller gives up before it is forwarded, and the callee gets it late
        // all the same (work done that the caller never hears of), after the heal too.
        proxy.install(
            5,
            fault("/pay*", Which::Every, RequestAction::Delay(Duration::from_millis(600))),
            1,
            recorder.clone(),
            no_stops(),
        );
        let error = post(&proxy, "/pay/6", Duration::from_millis(200)).await.unwrap_err();
        assert!(error.contains("TimedOut"), "{error}");
        proxy.remove(5);
        assert_eq!(served.load(Ordering::SeqCst), 4, "not before its delay");
        served_reaches(&served, 5).await;
        // Healed: requests pass again.
        assert_eq!(post(&proxy, "/pay/7", QUICK).await.unwrap().0, 201);
        assert_eq!(served.load(Ordering::SeqCst), 6);
        // Between runs, a delayed request not forwarded yet is dropped: it never reaches the
        // next run.
        proxy.install(6, fault("/late", Which::Every, RequestAction::Delay(Duration::from_millis(300))), 1, recorder.clone(), no_stops());
        post(&proxy, "/late", Duration::from_millis(100)).await.unwrap_err();
        proxy.clear();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(served.load(Ordering::SeqCst), 6, "dropped by clear");

        let history = recorder.finish();
        let hits: Vec<(usize, String, String)> = history
            .events()
            .iter()
            .filter_map(|e| match &e.op {
                Op::RequestFault { index, path, action, link, method } if e.event_type == crate::history::EventType::Invoke => {
                    assert_eq!((link.as_str(), method.as_str()), ("a->b", "POST"));
                    Some((*index, path.clone(), action.clone()))
                }
                _ => None,
            })
            .collect();
        let expected: Vec<(usize, String, String)> = [
            (0, "/pay/1", "status"),
            (0, "/pay/1", "status"),
            (1, "/pay/2", "reset"),
            (2, "/pay/3", "drop_answer"),
            (3, "/pay/4", "duplicate"),
            (4, "/pay/5", "hold"),
            (5, "/pay/6", "delay"),
            (6, "/late", "delay"),
        ]
        .into_iter()
        .map(|(i, p, a)| (i, p.to_string(), a.to_string()))
        .collect();
        assert_eq!(hits, expected, "each hit request is in the history");
    }

    #[tokio::test]
    async fn the_nth_and_a_fraction_pick_requests_by_their_place_among_the_matching() {
        let (address, served) = callee().await;
        let proxy = RequestProxy::start("a->b", address).await.unwrap();
        let recorder = Recorder::new();
        proxy.install(0, fault("/pay", Which::Nth(2), RequestAction::Status(500, None)), 1, recorder.clone(), no_stops());
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(post(&proxy, "/pay", QUICK).await.unwrap().0);
        }
        assert_eq!(statuses, [201, 500, 201, 201]);
        served_reaches(&served, 3).await;
        proxy.remove(0);

        proxy.install(1, fault("/pay", Which::Fraction(0.5), RequestAction::Status(500, None)), 9, recorder.clone(), no_stops());
        let mut hit = Vec::new();
        for _ in 0..40 {
            hit.push(post(&proxy, "/pay", QUICK).await.unwrap().0 == 500);
        }
        let expected: Vec<bool> = (1..=40).map(|n| draw(9, 1, n) < 0.5).collect();
        assert_eq!(hit, expected, "the seed decides which requests are hit");
        assert!(hit.iter().any(|h| *h) && hit.iter().any(|h| !*h));
    }

    #[tokio::test]
    async fn a_program_point_stops_a_service_once_when_the_request_is_sent_or_answered() {
        let (address, served) = callee().await;
        let proxy = RequestProxy::start("a->b", address).await.unwrap();
        let recorder = Recorder::new();
        let stop_of = |when| RequestAction::Stop {
            service: "a".into(),
            when,
            pause: false,
        };

        // Answered: the callee served it before the stop is asked for; the caller never hears.
        let (stops, mut asked) = mpsc::unbounded_channel();
        proxy.install(0, fault("/pay", Which::Every, stop_of(When::Answered)), 1, recorder.clone(), stops);
        let (answer, ()) = tokio::join!(post(&proxy, "/pay", QUICK), async {
            let stop = asked.recv().await.expect("a stop is asked for");
            assert_eq!(served.load(Ordering::SeqCst), 1, "asked after the callee answered");
            assert_eq!((stop.index, stop.service.as_str(), stop.pause), (0, "a", false));
            stop.done.send(Ok(())).unwrap();
        });
        assert!(answer.is_err(), "the caller never hears: {answer:?}");
        // Once per fault: the next matching request passes untouched.
        assert_eq!(post(&proxy, "/pay", QUICK).await.unwrap().0, 201);
        assert!(asked.try_recv().is_err(), "no second stop");
        proxy.remove(0);

        // Sent: asked for before the callee sees it; the request still goes on.
        let (stops, mut asked) = mpsc::unbounded_channel();
        proxy.install(1, fault("/pay", Which::Every, stop_of(When::Sent)), 1, recorder.clone(), stops);
        let (answer, ()) = tokio::join!(post(&proxy, "/pay", QUICK), async {
            let stop = asked.recv().await.expect("a stop is asked for");
            assert_eq!(served.load(Ordering::SeqCst), 2, "asked before the callee saw it");
            stop.done.send(Ok(())).unwrap();
        });
        assert_eq!(answer.unwrap().0, 201);
        assert_eq!(served.load(Ordering::SeqCst), 3);

        let values: Vec<serde_json::Value> = recorder
            .finish()
            .events()
            .iter()
            .filter(|e| matches!(e.op, Op::RequestFault { .. }) && e.event_type == crate::history::EventType::Ok)
            .map(|e| e.value.clone())
            .collect();
        assert_eq!(values.len(), 2, "{values:?}");
        assert_eq!(values[0]["when"], "answered");
        assert_eq!(values[0]["answer_dropped"], 201);
        assert_eq!(values[1]["stopped"], "a");
    }
}
