//! The declarative HTTP workload: a scenario's `[[workload.operations]]` (see
//! [`faultline_chaos::scenario::request`]) planned from a seed and sent to a described
//! system's services, every request recorded in the [`History`](crate::history::History).
//!
//! Planning is pure: [`plan`] turns the workload and a seed into the exact requests — which
//! operation, its path, headers and body with every generator drawn, its idempotency key,
//! whether it is duplicated or retried, when it is sent — so the same seed sends the same
//! requests. [`drive`] only carries the plan out, as every workload does: `concurrency`
//! clients, requests spread over the duration, a duplicated request sent twice at the same
//! moment by a second process, a retrying client sending the same request (same key) again,
//! at most [`MAX_ATTEMPTS`] times, after an outcome that may be transient.
//!
//! Outcomes follow Jepsen: a 2xx is *ok*; a 4xx is *fail* (it certainly did not take effect;
//! 409 and 429 may be retried); a timeout, a transport error or a 5xx is *info* — it may have
//! taken effect, which is what the invariants must account for.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use faultline_chaos::scenario::blast::{label, Footprints};
use faultline_chaos::scenario::request::{Body, Generator, HttpWorkload, Operation, Piece, Text};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};

use crate::checkers::{BoxFuture, Facts};
use crate::history::{Op, Process, Recorder};
use crate::stack::Stack;
use crate::workload::{LoadSummary, PrepareError, Settlement, Workload};
use faultline_chaos::scenario::{Probe, ProbeCheck, Scenario};

/// Attempts per request (the first send plus retries) for a client that retries.
pub const MAX_ATTEMPTS: u32 = 3;

/// One request the workload will send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedRequest {
    /// Position in the plan.
    pub number: u32,
    /// When it is sent, from the start of the load phase.
    pub send_at: Duration,
    /// The operation's name.
    pub operation: String,
    /// The operation's intent, when it has one (`good`, `declining`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The service it goes to.
    pub service: String,
    pub method: String,
    pub path: String,
    /// Headers with every generator drawn; `{env:…}` and `{file:…}` are filled in at send
    /// time from [`Externals`] (they are not part of the plan, which may be saved).
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub key: String,
    /// The header that carries `key`, if the operation has one.
    pub key_header: Option<String>,
    pub duplicated: bool,
    pub retries: bool,
    /// The completion check, with its path drawn (`{response:…}` is filled at send time).
    pub completion: Option<PlannedCompletion>,
}

/// A completion check of one planned request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedCompletion {
    pub path: String,
    pub pointer: String,
    pub values: Vec<Value>,
    pub ok: Vec<Value>,
    pub within_ms: u64,
    /// False: the state is read once at the end, not awaited.
    pub wait: bool,
}

/// The requests of `scenario`'s declarative workload for `seed` (`None` without one): [`plan`]
/// with the scenario's duration and rates.
pub fn plan_of(scenario: &Scenario, seed: u64) -> Option<Vec<PlannedRequest>> {
    let workload = &scenario.workload;
    let http = workload.http.as_ref()?;
    Some(plan(
        http,
        workload.duration,
        workload.duplicate_rate,
        workload.retry_rate,
        seed,
    ))
}

/// The requests `workload` describes, for `seed`, over `duration`, with these duplicate and
/// retry rates. Pure.
pub fn plan(
    workload: &HttpWorkload,
    duration: Duration,
    duplicate_rate: f64,
    retry_rate: f64,
    seed: u64,
) -> Vec<PlannedRequest> {
    let mut rng = StdRng::seed_from_u64(seed);
    let total: f64 = workload.operations.iter().map(|o| o.weight).sum();
    let spacing = duration.as_secs_f64() / f64::from(workload.requests.max(1));
    (0..workload.requests)
        .map(|number| {
            let mut pick = rng.random::<f64>() * total;
            let operation = workload
                .operations
                .iter()
                .find(|o| {
                    pick -= o.weight;
                    pick < 0.0
                })
                .or_else(|| workload.operations.iter().rev().find(|o| o.weight > 0.0))
                .expect("validated: an operation of weight above 0");
            let key = uuid_from(&mut rng);
            let mut draw = Draw {
                rng: &mut rng,
                key: &key,
                number,
            };
            let path = draw.text(&operation.path);
            let headers = operation
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), draw.text(value)))
                .collect();
            let body = operation.body.as_ref().map(|b| draw.body(b));
            let completion = operation.completion.as_ref().map(|c| PlannedCompletion {
                path: draw.text(&c.path),
                pointer: c.pointer.clone(),
                values: c.values.clone(),
                ok: c.ok.clone(),
                within_ms: c.within.as_millis() as u64,
                wait: c.wait,
            });
            PlannedRequest {
                number,
                send_at: Duration::from_secs_f64(spacing * f64::from(number) * 0.9),
                operation: operation.name.clone(),
                kind: operation.kind.clone(),
                service: operation.service.clone(),
                method: operation.method.clone(),
                path,
                headers,
                body,
                key_header: operation.idempotency_key.clone(),
                key,
                duplicated: rng.random::<f64>() < duplicate_rate,
                retries: rng.random::<f64>() < retry_rate,
                completion,
            }
        })
        .collect()
}

/// The workload's set-up requests, in order, drawn from `seed` (apart from the load's).
pub fn plan_setup(workload: &HttpWorkload, seed: u64) -> Vec<PlannedRequest> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5e7u64);
    workload
        .setup
        .iter()
        .zip(0u32..)
        .map(|(operation, number)| {
            let key = uuid_from(&mut rng);
            let mut draw = Draw {
                rng: &mut rng,
                key: &key,
                number,
            };
            PlannedRequest {
                number,
                send_at: Duration::ZERO,
                operation: operation.name.clone(),
                kind: operation.kind.clone(),
                service: operation.service.clone(),
                method: operation.method.clone(),
                path: draw.text(&operation.path),
                headers: operation
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), draw.text(value)))
                    .collect(),
                body: operation.body.as_ref().map(|b| draw.body(b)),
                key_header: operation.idempotency_key.clone(),
                key,
                duplicated: false,
                retries: false,
                completion: None,
            }
        })
        .collect()
}

fn uuid_from(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

/// Draws generators for one planned request.
struct Draw<'a> {
    rng: &'a mut StdRng,
    key: &'a str,
    number: u32,
}

impl Draw<'_> {
    fn value(&mut self, generator: &Generator) -> Value {
        match generator {
            Generator::Key => Value::String(self.key.to_string()),
            Generator::Uuid => Value::String(uuid_from(self.rng)),
            Generator::Int { from, to } => json!(self.rng.random_range(*from..=*to)),
            Generator::Pick(choices) => {
                Value::String(choices[self.rng.random_range(0..choices.len())].clone())
            }
            Generator::Seq => json!(self.number),
            // Read at start or from the answer (see `Externals`, `fill_response`); kept as the
            // placeholder in the plan.
            Generator::Env(_)
            | Generator::File(_)
            | Generator::Command(_)
            | Generator::Response(_)
            | Generator::Setup { .. } => Value::String(format!("{{{generator}}}")),
        }
    }

    fn text(&mut self, text: &Text) -> String {
        let mut out = String::new();
        for piece in &text.pieces {
            match piece {
                Piece::Literal(literal) => out.push_str(literal),
                Piece::Generate(generator) => match self.value(generator) {
                    Value::String(s) => out.push_str(&s),
                    other => out.push_str(&other.to_string()),
                },
            }
        }
        out
    }

    fn body(&mut self, body: &Body) -> Value {
        match body {
            Body::Text(text) => match text.single() {
                Some(generator) => self.value(generator),
                None => Value::String(self.text(text)),
            },
            Body::Number(n) => Value::Number(n.clone()),
            Body::Bool(b) => Value::Bool(*b),
            Body::Array(items) => Value::Array(items.iter().map(|b| self.body(b)).collect()),
            Body::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.body(v)))
                    .collect(),
            ),
        }
    }
}

/// The values of `{env:…}`, `{file:…}` and `{command:…}` in the workload's headers, read once
/// before the run starts.
#[derive(Debug, Clone, Default)]
pub struct Externals {
    values: BTreeMap<String, String>,
}

impl Externals {
    /// Reads every `{env:…}`, `{file:…}` and `{command:…}` the workload's headers use (a
    /// command runs in `dir`, the system description's folder, at most 30 s); the error names
    /// the operation and header.
    pub fn read(workload: &HttpWorkload, dir: &std::path::Path) -> Result<Self, String> {
        let mut values = BTreeMap::new();
        for operation in workload.operations.iter().chain(&workload.setup) {
            for (header, text) in &operation.headers {
                for generator in text.generators() {
                    let value = match generator {
                        Generator::Env(name) => std::env::var(name).map_err(|_| {
                            format!(
                                "operation {:?}, header {header}: the variable {name} is not set",
                                operation.name
                            )
                        })?,
                        Generator::File(path) => std::fs::read_to_string(path)
                            .map_err(|e| {
                                format!(
                                    "operation {:?}, header {header}: reading {path}: {e}",
                                    operation.name
                                )
                            })?
                            .trim()
                            .to_string(),
                        Generator::Command(argv) => run_command(argv, dir).map_err(|e| {
                            format!(
                                "operation {:?}, header {header}: {}: {e}",
                                operation.name,
                                argv.join(" ")
                            )
                        })?,
                        _ => continue,
                    };
                    values.insert(format!("{{{generator}}}"), value);
                }
            }
        }
        Ok(Self { values })
    }

    /// Takes the values `{setup:NAME:/POINTER}` headers want from `answer`, the JSON body the
    /// set-up request `name` was answered with; the error names the pointer the answer lacks.
    pub fn read_setup(&mut self, workload: &HttpWorkload, name: &str, answer: &Value) -> Result<(), String> {
        let headers = workload
            .operations
            .iter()
            .chain(&workload.setup)
            .flat_map(|operation| &operation.headers);
        for (header, text) in headers {
            for generator in text.generators() {
                let Generator::Setup { name: wanted, pointer } = generator else {
                    continue;
                };
                if wanted != name {
                    continue;
                }
                let value = match answer.pointer(pointer) {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Null) | None => {
                        return Err(format!(
                            "header {header} wants {{{generator}}}, but the answer has no value at {pointer}: {answer}"
                        ))
                    }
                    Some(other) => other.to_string(),
                };
                self.values.insert(format!("{{{generator}}}"), value);
            }
        }
        Ok(())
    }

    fn fill(&self, value: &str) -> String {
        let mut out = value.to_string();
        for (placeholder, replacement) in &self.values {
            out = out.replace(placeholder, replacement);
        }
        out
    }
}

/// The program a `{command:…}` runs: a bare name of a binary cargo built (the `{bin:NAME}`
/// folder, [`crate::stack::service_bin_dir`]) is that binary, so a system's own token minter
/// needs no installing; any other name is looked up on `PATH` as usual.
fn command_program(program: &str) -> std::path::PathBuf {
    if !program.contains('/') {
        let built = crate::stack::service_bin_dir().join(program);
        if built.is_file() {
            return built;
        }
    }
    std::path::PathBuf::from(program)
}

/// Runs `argv` in `dir` and gives its trimmed standard output; a program that is missing,
/// fails, prints nothing or runs longer than 30 s is an error.
fn run_command(argv: &[String], dir: &std::path::Path) -> Result<String, String> {
    let (program, args) = argv.split_first().ok_or("no program")?;
    let mut child = std::process::Command::new(command_program(program))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(_) => break,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("did not finish within 30s".into());
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let out = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if out.is_empty() {
        return Err("printed nothing".into());
    }
    Ok(out)
}

/// `path` with each `{response:/POINTER}` replaced by that value of `answer`.
pub fn fill_response(path: &str, answer: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = path;
    while let Some(at) = rest.find("{response:") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + "{response:".len()..];
        let end = tail.find('}').ok_or("unclosed {response:…}")?;
        let pointer = &tail[..end];
        let value = answer
            .pointer(pointer)
            .ok_or_else(|| format!("the answer has nothing at {pointer}"))?;
        match value {
            Value::String(s) => out.push_str(s),
            Value::Number(n) => out.push_str(&n.to_string()),
            other => return Err(format!("{pointer} of the answer is {other}, not a string or number")),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Certainly not taken effect (4xx); `retryable` for 409 and 429.
    Fail {
        retryable: bool,
    },
    /// Unknown: timeout, transport error, 5xx.
    Info,
}

/// Sends planned requests to the services' own addresses.
#[derive(Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    /// Service name → `http://127.0.0.1:PORT`.
    services: BTreeMap<String, String>,
    externals: Externals,
    /// What the workload clients' completion checks last saw, by request key.
    seen: std::sync::Arc<Mutex<BTreeMap<String, Seen>>>,
}

/// The last state a completion check read for one accepted request.
#[derive(Debug, Clone)]
struct Seen {
    operation: String,
    url: String,
    headers: Vec<(String, String)>,
    pointer: String,
    values: Vec<Value>,
    state: Value,
}

impl Seen {
    fn is_final(&self) -> bool {
        self.values.contains(&self.state)
    }
}

/// A state as the report names it: a string as it is, anything else as JSON.
fn state_name(state: &Value) -> String {
    match state {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl HttpClient {
    /// A client of `services` that waits `timeout` for each answer.
    pub fn new(
        services: BTreeMap<String, String>,
        externals: Externals,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            services,
            externals,
            seen: Default::default(),
        })
    }

    /// How the load's operations with a completion check ended, read at the end: a request
    /// whose check had not seen a final state is read once more now (the system may have
    /// finished it while the run settled).
    pub async fn outcomes(&self) -> Option<crate::workload::Outcomes> {
        let seen: Vec<(String, Seen)> = self
            .seen
            .lock()
            .expect("seen lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if seen.is_empty() {
            return None;
        }
        let mut names: Vec<&str> = seen.iter().map(|(_, s)| s.operation.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let mut outcomes = crate::workload::Outcomes {
            unit: format!("{} operations", names.join("/")),
            total: seen.len() as u64,
            ended: BTreeMap::new(),
            unfinished: Vec::new(),
        };
        for (key, mut entry) in seen {
            if !entry.is_final() {
                if let Some(state) = self.read_state(&entry).await {
                    entry.state = state;
                }
            }
            if entry.is_final() {
                *outcomes.ended.entry(state_name(&entry.state)).or_default() += 1;
            } else {
                outcomes.unfinished.push(key);
            }
        }
        Some(outcomes)
    }

    /// One read of a completion path, with the operation's headers (a token, say; not its key
    /// or body): the value at its pointer, if the read answered JSON.
    async fn read_state(&self, seen: &Seen) -> Option<Value> {
        let mut read = self.http.get(&seen.url);
        for (name, header) in &seen.headers {
            read = read.header(name, self.externals.fill(header));
        }
        let body = read.send().await.ok()?.json::<Value>().await.ok()?;
        Some(body.pointer(&seen.pointer).cloned().unwrap_or(Value::Null))
    }

    /// Sends `request` once, recorded as an `Op::Request` of `process`.
    pub async fn send(
        &self,
        process: Process,
        request: &PlannedRequest,
        recorder: &Recorder,
    ) -> Outcome {
        let pending = recorder.invoke(
            process,
            Op::Request {
                operation: request.operation.clone(),
                method: request.method.clone(),
                path: request.path.clone(),
                key: request.key.clone(),
                kind: request.kind.clone(),
            },
        );
        let Some(base) = self.services.get(&request.service) else {
            pending.fail(json!({"error": format!("service {} has no address", request.service)}));
            return Outcome::Fail { retryable: false };
        };
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut builder = self.http.request(method, format!("{base}{}", request.path));
        for (name, value) in &request.headers {
            builder = builder.header(name, self.externals.fill(value));
        }
        if let Some(header) = &request.key_header {
            builder = builder.header(header, &request.key);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let sent = Instant::now();
        match builder.send().await {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                let value = json!({
                    "status": status.as_u16(),
                    "body": answer,
                    "latency_ms": sent.elapsed().as_secs_f64() * 1000.0,
                });
                if status.is_success() {
                    match &request.completion {
                        None => {
                            pending.ok(value);
                            Outcome::Ok
                        }
                        Some(completion) => {
                            self.await_completion(
                                base,
                                request,
                                completion,
                                value,
                                pending,
                                matches!(process, Process::Client(_)),
                            )
                            .await
                        }
                    }
                } else if status.is_client_error() {
                    pending.fail(value);
                    Outcome::Fail {
                        retryable: matches!(status.as_u16(), 409 | 429),
                    }
                } else {
                    pending.info(value);
                    Outcome::Info
                }
            }
            Err(error) => {
                pending.info(json!({
                    "error": error.to_string(),
                    "timeout": error.is_timeout(),
                }));
                Outcome::Info
            }
        }
    }

    /// Reads the completion path (with the operation's headers) until its state is final
    /// (pausing as [`crate::workload::Pauses`] says): ok or fail by the state, info when the bound passes first. The completion's
    /// reads and final state join the answer's value; a workload client's last read is kept
    /// for [`HttpClient::outcomes`].
    async fn await_completion(
        &self,
        base: &str,
        request: &PlannedRequest,
        completion: &PlannedCompletion,
        mut value: Value,
        pending: crate::history::Pending,
        keep: bool,
    ) -> Outcome {
        let path = match fill_response(&completion.path, &value["body"]) {
            Ok(path) => path,
            Err(error) => {
                value["completion"] = json!({"error": error});
                pending.info(value);
                return Outcome::Info;
            }
        };
        let mut seen = Seen {
            operation: request.operation.clone(),
            url: format!("{base}{path}"),
            headers: request.headers.clone(),
            pointer: completion.pointer.clone(),
            values: completion.values.clone(),
            state: Value::Null,
        };
        let remember = |seen: &Seen| {
            if keep {
                self.seen
                    .lock()
                    .expect("seen lock")
                    .insert(request.key.clone(), seen.clone());
            }
        };
        if !completion.wait && keep {
            // Read once when the run ends (`outcomes`); the answer decides this operation.
            // (A steady-state probe always waits: it asks whether the effect happens.)
            remember(&seen);
            value["completion"] = json!({"path": path, "read": "at the end"});
            pending.ok(value);
            return Outcome::Ok;
        }
        let started = Instant::now();
        let within = Duration::from_millis(completion.within_ms);
        let mut reads = 0u32;
        let mut pauses = crate::workload::Pauses::default();
        loop {
            reads += 1;
            // A read that fails keeps the last state seen.
            if let Some(state) = self.read_state(&seen).await {
                seen.state = state;
            }
            let last = &seen.state;
            if seen.is_final() {
                remember(&seen);
                let took = started.elapsed().as_secs_f64() * 1000.0;
                value["completion"] = json!({"path": path, "state": last, "reads": reads, "ms": took});
                return if completion.ok.contains(last) {
                    pending.ok(value);
                    Outcome::Ok
                } else {
                    pending.fail(value);
                    Outcome::Fail { retryable: false }
                };
            }
            if started.elapsed() >= within {
                remember(&seen);
                value["completion"] = json!({
                    "path": path,
                    "state": last,
                    "reads": reads,
                    "error": format!("no final state within {}ms", completion.within_ms),
                });
                pending.info(value);
                return Outcome::Info;
            }
            pauses.wait().await;
        }
    }

    /// Sends `request`, and again (same key) after an unknown or retryable outcome when the
    /// plan says this client retries.
    pub async fn send_with_retries(
        &self,
        process: Process,
        request: &PlannedRequest,
        recorder: &Recorder,
    ) -> Outcome {
        let attempts = if request.retries { MAX_ATTEMPTS } else { 1 };
        let mut outcome = Outcome::Info;
        for attempt in 0..attempts {
            if attempt > 0 {
                // A short pause, as a real client's backoff would have.
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            outcome = self.send(process, request, recorder).await;
            match outcome {
                Outcome::Ok | Outcome::Fail { retryable: false } => break,
                Outcome::Fail { retryable: true } | Outcome::Info => {}
            }
        }
        outcome
    }
}

impl crate::workload::Planned for PlannedRequest {
    fn send_at(&self) -> Duration {
        self.send_at
    }
    fn duplicated(&self) -> bool {
        self.duplicated
    }
}

/// How many requests of each operation, sent alone one after the other, tell its footprint.
pub const FOOTPRINT_SAMPLE: u32 = 2;
/// After them, how long no new call must be seen for the footprint to be complete…
const FOOTPRINT_QUIET: Duration = Duration::from_millis(250);
/// … at most.
const FOOTPRINT_BOUND: Duration = Duration::from_secs(5);

/// Requests seen so far at each call site of the stack (`link METHOD route`).
fn site_counts(stack: &Stack) -> BTreeMap<String, u64> {
    stack.call_sites().into_iter().map(|site| (site.to_string(), site.count)).collect()
}

/// Carries `plan` out (see [`crate::workload::drive_plan`]); `ok` counts each planned
/// request whose first send (not its duplicate) ended ok.
pub async fn drive(
    plan: &[PlannedRequest],
    client: &HttpClient,
    concurrency: u32,
    load_start: tokio::time::Instant,
    duration: Duration,
    recorder: &Recorder,
) -> LoadSummary {
    let driven = crate::workload::drive_plan(plan, concurrency, load_start, duration, |process, request| async move {
        let outcome = client.send_with_retries(process, request, recorder).await;
        (process, outcome)
    })
    .await;
    LoadSummary {
        planned: plan.len(),
        sent: driven.sent,
        ok: driven
            .results
            .iter()
            .filter(|(process, outcome)| {
                matches!(process, Process::Client(n) if *n < concurrency.max(1))
                    && *outcome == Outcome::Ok
            })
            .count(),
    }
}

/// A scenario's declarative workload, as the runner drives it: the load's plan, and the
/// workload's own requests (planned anew for each probe) as its steady-state probes.
pub struct HttpRun {
    http: HttpWorkload,
    seed: u64,
    concurrency: u32,
    duration: Duration,
    client_timeout: Duration,
    plan: Vec<PlannedRequest>,
    client: Option<HttpClient>,
}

impl HttpRun {
    /// The run of `scenario`'s `[[workload.operations]]` (`None` when it has none) for `seed`.
    pub fn new(scenario: &Scenario, seed: u64) -> Option<Self> {
        let http = scenario.workload.http.clone()?;
        let workload = &scenario.workload;
        let plan = plan_of(scenario, seed)?;
        Some(Self {
            http,
            seed,
            concurrency: workload.concurrency,
            duration: workload.duration,
            client_timeout: workload.client_timeout,
            plan,
            client: None,
        })
    }

    fn client(&self) -> &HttpClient {
        self.client
            .as_ref()
            .expect("the runner prepares a workload before it probes or drives it")
    }

    /// `sample` requests of the workload, planned from the seed and the probe's place, so
    /// they differ from the load's and from every other probe's.
    fn sample(&self, sample: u32, index: usize, phase: &str) -> Vec<PlannedRequest> {
        let salt = if phase == "before" { 1 } else { 2 } + 10 * index as u64;
        let requests = HttpWorkload {
            requests: sample,
            operations: self.http.operations.clone(),
            setup: Vec::new(),
        };
        plan(
            &requests,
            Duration::ZERO,
            0.0,
            0.0,
            self.seed.wrapping_mul(31).wrapping_add(salt),
        )
    }

    /// Sends `requests`, `at_once` at a time; each one's outcome and latency.
    async fn send_all(
        &self,
        requests: Vec<PlannedRequest>,
        at_once: usize,
        recorder: &Recorder,
    ) -> Vec<(Outcome, Duration)> {
        use futures_util::StreamExt;
        let client = self.client();
        futures_util::stream::iter(requests)
            .map(|request| async move {
                let clock = Instant::now();
                let outcome = client.send(Process::Probe, &request, recorder).await;
                (outcome, clock.elapsed())
            })
            .buffer_unordered(at_once.max(1))
            .collect::<Vec<_>>()
            .await
    }
}

impl Workload for HttpRun {
    fn describe(&self) -> String {
        format!("{} requests", self.plan.len())
    }

    fn plan(&self) -> Value {
        json!({ "setup": plan_setup(&self.http, self.seed), "requests": self.plan })
    }

    fn prepare<'a>(
        &'a mut self,
        stack: &'a Stack,
        _facts: &'a Facts,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, Result<(), PrepareError>> {
        Box::pin(async move {
            let externals = Externals::read(&self.http, &stack.system().dir).map_err(|message| PrepareError::Setup {
                action: "reading the workload's headers".into(),
                message,
            })?;
            let mut services = BTreeMap::new();
            for operation in self.http.operations.iter().chain(&self.http.setup) {
                services.insert(
                    operation.service.clone(),
                    stack.service_url(&operation.service)?,
                );
            }
            self.client =
                Some(
                    HttpClient::new(services, externals, self.client_timeout).map_err(|e| PrepareError::Setup {
                        action: "building the workload's client".into(),
                        message: e.to_string(),
                    })?,
                );
            // The set-up requests, in order: the load needs what they make. They are in the
            // run's history, as the probes' requests are.
            for request in plan_setup(&self.http, self.seed) {
                let outcome = self.client().send(Process::Probe, &request, recorder).await;
                let answer = recorder
                    .finish()
                    .events()
                    .last()
                    .map(|e| e.value.clone())
                    .unwrap_or_default();
                let action = format!(
                    "set-up request {:?}: {} {}",
                    request.operation, request.method, request.path
                );
                if outcome != Outcome::Ok {
                    return Err(PrepareError::Setup {
                        action,
                        message: format!("expected a 2xx, got {answer}"),
                    });
                }
                // What later requests send from its answer (a login's token).
                let client = self.client.as_mut().expect("built above");
                client
                    .externals
                    .read_setup(&self.http, &request.operation, &answer["body"])
                    .map_err(|message| PrepareError::Setup { action, message })?;
            }
            Ok(())
        })
    }

    fn default_probes(&self) -> Vec<Probe> {
        vec![Probe {
            name: "ready".into(),
            check: ProbeCheck::Ready,
            within: None,
        }]
    }

    fn probe<'a>(
        &'a self,
        probe: &'a Probe,
        index: usize,
        phase: &'a str,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, (bool, String)> {
        Box::pin(async move {
            match probe.check {
                ProbeCheck::Ready => (true, "judged by the runner".into()),
                ProbeCheck::SuccessRate { sample, min } => {
                    // Whether they succeed, not how fast: all at once (up to 16).
                    let outcomes = self
                        .send_all(self.sample(sample, index, phase), 16, recorder)
                        .await;
                    let good = outcomes.iter().filter(|(o, _)| *o == Outcome::Ok).count();
                    let rate = good as f64 / f64::from(sample.max(1));
                    (
                        rate >= min,
                        format!(
                            "{good} of {sample} requests ok ({:.0}%, at least {:.0}% expected)",
                            rate * 100.0,
                            min * 100.0
                        ),
                    )
                }
                ProbeCheck::P99Latency { sample, max } => {
                    // A latency under a light load, not under a burst: four at a time.
                    let outcomes = self
                        .send_all(self.sample(sample, index, phase), 4, recorder)
                        .await;
                    let latencies: Vec<Duration> = outcomes
                        .iter()
                        .filter(|(o, _)| *o == Outcome::Ok)
                        .map(|(_, d)| *d)
                        .collect();
                    crate::checkers::slo::p99_verdict(&latencies, sample, max, "requests")
                }
            }
        })
    }

    fn drive<'a>(
        &'a self,
        load_start: tokio::time::Instant,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, LoadSummary> {
        Box::pin(drive(
            &self.plan,
            self.client(),
            self.concurrency,
            load_start,
            self.duration,
            recorder,
        ))
    }

    fn settle<'a>(
        &'a self,
        _stack: &'a Stack,
        _recorder: &'a Recorder,
        _progress: &'a (dyn Fn(&str) + Sync),
    ) -> BoxFuture<'a, Settlement> {
        // Requests complete when answered (or their completion check ends them); what the
        // system finishes on its own afterwards is what its description's [[settle]]
        // conditions say, which the runner awaits for every workload.
        Box::pin(async { Settlement::default() })
    }

    fn footprints<'a>(
        &'a self,
        stack: &'a Stack,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, Option<Footprints>> {
        Box::pin(async move {
            let mut footprints = Footprints::new();
            for (index, operation) in self.http.operations.iter().enumerate() {
                let alone = HttpWorkload {
                    requests: FOOTPRINT_SAMPLE,
                    operations: vec![Operation { weight: 1.0, ..operation.clone() }],
                    setup: Vec::new(),
                };
                let salt = 1000 + index as u64;
                let requests = plan(&alone, Duration::ZERO, 0.0, 0.0, self.seed.wrapping_mul(31).wrapping_add(salt));
                let before = site_counts(stack);
                for request in &requests {
                    self.client().send(Process::Probe, request, recorder).await;
                }
                // What the requests set going after their answers (a saga's calls): the
                // description's settle conditions, then no new call for a moment.
                crate::workload::settle_described(stack, &|_| {}).await;
                let mut counts = site_counts(stack);
                let waiting_since = Instant::now();
                let mut last_change = Instant::now();
                while last_change.elapsed() < FOOTPRINT_QUIET && waiting_since.elapsed() < FOOTPRINT_BOUND {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    let now = site_counts(stack);
                    if now != counts {
                        counts = now;
                        last_change = Instant::now();
                    }
                }
                let calls = counts
                    .into_iter()
                    .filter(|(site, count)| before.get(site).is_none_or(|earlier| count > earlier))
                    .map(|(site, _)| site)
                    .collect();
                footprints.insert(label(&operation.name, operation.kind.as_deref()), calls);
            }
            Some(footprints)
        })
    }

    fn final_state<'a>(
        &'a self,
        _stack: &'a Stack,
        _facts: &'a Facts,
    ) -> BoxFuture<'a, crate::workload::WorkloadState> {
        Box::pin(async move {
            crate::workload::WorkloadState {
                outcomes: match &self.client {
                    Some(client) => client.outcomes().await,
                    None => None,
                },
                durations: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_chaos::scenario::Scenario;
    use faultline_chaos::topology::Topology;

    fn workload() -> HttpWorkload {
        let topology = Topology::new(
            ["api"],
            Vec::<String>::new(),
            Vec::<(String, String)>::new(),
        );
        let scenario = Scenario::parse(
            "s.toml",
            &topology,
            r#"
            name = "s"
            description = "d"
            [workload]
            requests = 50
            duration = "10s"
            [[workload.operations]]
            name = "transfer"
            service = "api"
            method = "POST"
            path = "/transfers/{seq}"
            weight = 3
            idempotency_key = "Idempotency-Key"
            headers = { Authorization = "Bearer {env:FAULTLINE_TEST_TOKEN}" }
            body = { id = "{key}", from = "{pick:alice|bob}", amount = "{int:1..5}", note = "n{seq}", fixed = [1, true] }
            [[workload.operations]]
            name = "balance"
            service = "api"
            path = "/accounts/{pick:alice|bob}"
            [workload.operations.completion]
            path = "/accounts/{response:/name}/{key}"
            pointer = "/state"
            values = ["settled", "refused"]
            ok = ["settled"]
            within = "5s"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        scenario.workload.http.unwrap()
    }

    /// A server that accepts and never answers: the request is unknown (info, a timeout)
    /// once the client's own timeout passed, not the default 5 s.
    #[tokio::test]
    async fn a_request_unanswered_within_the_client_timeout_is_unknown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let services = BTreeMap::from([("api".to_string(), format!("http://{address}"))]);
        let client = HttpClient::new(services, Externals::default(), Duration::from_millis(300)).unwrap();
        let planned = plan(&workload(), Duration::from_secs(10), 0.0, 0.0, 3);
        let balance = planned.iter().find(|r| r.operation == "balance").unwrap();
        let recorder = Recorder::new();
        let sent = Instant::now();
        let outcome = client.send(Process::Client(0), balance, &recorder).await;
        let took = sent.elapsed();
        silent.abort();
        assert!(matches!(outcome, Outcome::Info), "{outcome:?}");
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(4), "{took:?}");
        let history = recorder.finish();
        let completed = &history.events()[1];
        assert_eq!(completed.value["timeout"], true, "{:?}", completed.value);
    }

    #[test]
    fn a_completion_is_planned_with_its_key_and_leaves_the_answer_for_send_time() {
        let planned = plan(&workload(), Duration::from_secs(10), 0.0, 0.0, 3);
        let balance = planned.iter().find(|r| r.operation == "balance").unwrap();
        let completion = balance.completion.as_ref().unwrap();
        assert_eq!(
            completion.path,
            format!("/accounts/{{response:/name}}/{}", balance.key)
        );
        assert_eq!(completion.ok, [json!("settled")]);
        assert_eq!(completion.within_ms, 5000);
        let transfer = planned.iter().find(|r| r.operation == "transfer").unwrap();
        assert!(transfer.completion.is_none());
    }

    #[test]
    fn the_answer_fills_a_completion_path_or_says_what_is_missing() {
        let answer = json!({"name": "alice", "id": 7, "nested": {"x": "y"}});
        assert_eq!(
            fill_response("/a/{response:/name}/{response:/id}", &answer).unwrap(),
            "/a/alice/7"
        );
        assert_eq!(
            fill_response("/a/{response:/missing}", &answer).unwrap_err(),
            "the answer has nothing at /missing"
        );
        assert!(fill_response("/a/{response:/nested}", &answer)
            .unwrap_err()
            .contains("not a string or number"));
    }

    #[test]
    fn a_command_header_is_the_programs_trimmed_output_run_in_the_description_folder() {
        let dir = std::env::temp_dir();
        let argv = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(run_command(&argv("printf  token-1\n"), &dir).unwrap(), "token-1");
        assert_eq!(
            run_command(&argv("pwd"), &dir).unwrap(),
            std::fs::canonicalize(&dir).unwrap().display().to_string()
        );
        assert!(run_command(&argv("false"), &dir).unwrap_err().contains("exited with"));
        assert!(run_command(&argv("true"), &dir).unwrap_err().contains("printed nothing"));
        assert!(run_command(&argv("no-such-program-here"), &dir)
            .unwrap_err()
            .contains("cannot start it"));
    }

    #[test]
    fn the_same_seed_plans_the_same_requests_and_another_seed_others() {
        let w = workload();
        let a = plan(&w, Duration::from_secs(10), 0.2, 0.3, 7);
        assert_eq!(a, plan(&w, Duration::from_secs(10), 0.2, 0.3, 7));
        assert_ne!(a, plan(&w, Duration::from_secs(10), 0.2, 0.3, 8));
        assert_eq!(a.len(), 50);
        assert!(a.windows(2).all(|p| p[0].send_at <= p[1].send_at));
        assert!(a.iter().all(|r| r.send_at < Duration::from_secs(10)));
    }

    #[test]
    fn generators_give_typed_values_within_their_ranges() {
        let requests = plan(&workload(), Duration::from_secs(10), 0.0, 0.0, 1);
        let transfers: Vec<_> = requests
            .iter()
            .filter(|r| r.operation == "transfer")
            .collect();
        let balances = requests.len() - transfers.len();
        assert!(
            transfers.len() > balances,
            "weights 3:1 ({} vs {balances})",
            transfers.len()
        );
        for r in &transfers {
            let body = r.body.as_ref().unwrap();
            assert_eq!(body["id"], r.key.as_str(), "{{key}} is the idempotency key");
            assert!(uuid::Uuid::parse_str(&r.key).is_ok());
            let amount = body["amount"].as_i64().expect("a number, not a string");
            assert!((1..=5).contains(&amount));
            assert!(["alice", "bob"].contains(&body["from"].as_str().unwrap()));
            assert_eq!(body["note"], format!("n{}", r.number));
            assert_eq!(body["fixed"], json!([1, true]));
            assert_eq!(r.path, format!("/transfers/{}", r.number));
            assert_eq!(r.key_header.as_deref(), Some("Idempotency-Key"));
            assert_eq!(r.headers[0].1, "Bearer {env:FAULTLINE_TEST_TOKEN}");
        }
        let keys: std::collections::BTreeSet<_> = requests.iter().map(|r| &r.key).collect();
        assert_eq!(keys.len(), requests.len(), "every request its own key");
    }

    #[test]
    fn rates_decide_duplicates_and_retries() {
        let all = plan(&workload(), Duration::from_secs(10), 1.0, 1.0, 3);
        assert!(all.iter().all(|r| r.duplicated && r.retries));
        let none = plan(&workload(), Duration::from_secs(10), 0.0, 0.0, 3);
        assert!(none.iter().all(|r| !r.duplicated && !r.retries));
    }

    #[test]
    fn externals_fill_headers_at_send_time_and_name_what_is_missing() {
        let w = workload();
        let error = Externals::read(&w, std::path::Path::new(".")).unwrap_err();
        assert!(error.contains("FAULTLINE_TEST_TOKEN is not set"), "{error}");
        let externals = Externals {
            values: BTreeMap::from([(
                "{env:FAULTLINE_TEST_TOKEN}".to_string(),
                "t0k3n".to_string(),
            )]),
        };
        assert_eq!(
            externals.fill("Bearer {env:FAULTLINE_TEST_TOKEN}"),
            "Bearer t0k3n"
        );
    }

    #[test]
    fn a_setup_answer_fills_the_headers_that_name_it() {
        let topology = Topology::new(["api"], Vec::<String>::new(), Vec::<(String, String)>::new());
        let scenario = Scenario::parse(
            "s.toml",
            &topology,
            r#"
            name = "s"
            description = "d"
            [workload]
            requests = 5
            duration = "1s"
            [[workload.operations]]
            name = "balance"
            service = "api"
            path = "/accounts/alice"
            headers = { Authorization = "Bearer {setup:login:/session/token}" }
            [[workload.setup]]
            name = "login"
            service = "api"
            method = "POST"
            path = "/login"
            "#,
        )
        .unwrap();
        let w = scenario.workload.http.unwrap();
        let mut externals = Externals::read(&w, std::path::Path::new(".")).unwrap();
        // The planned header keeps the generator; the value comes at send time.
        let planned = &plan(&w, Duration::from_secs(1), 0.0, 0.0, 1)[0];
        assert_eq!(planned.headers[0].1, "Bearer {setup:login:/session/token}");
        let error = externals
            .read_setup(&w, "login", &json!({"session": {}}))
            .unwrap_err();
        assert!(error.contains("Authorization") && error.contains("/session/token"), "{error}");
        externals
            .read_setup(&w, "login", &json!({"session": {"token": "s3cr3t"}}))
            .unwrap();
        assert_eq!(externals.fill(&planned.headers[0].1), "Bearer s3cr3t");
    }
}
