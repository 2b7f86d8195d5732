//! The report's data model (`report.json`, schema version [`REPORT_VERSION`]) and how it is
//! built from what a run recorded: the scenario, the [`History`], the verdicts and the
//! services' final state ([`Observed`]).
//!
//! Everything a rendering shows is computed here, once; the HTML, JUnit and Markdown writers
//! only lay it out. Times are milliseconds from the start of the run's history (the clock
//! every history event uses), except `*_unix_ms` fields, which are wall-clock.

use std::collections::{BTreeMap, BTreeSet};

use faultline_chaos::scenario::Scenario;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checkers::{CircuitRecord, Verdict};
use crate::history::{Event, EventType, History, Op, Process};
use crate::nemesis;
pub use crate::workload::{Durations, Outcomes, WorkloadState};

/// The version of the report format; `report.json` carries it in `version`, and the schema
/// in `harness/schemas/report-v2.schema.json` pins it.
pub const REPORT_VERSION: u32 = 2;

/// At most this many history events are kept per counterexample.
pub const MAX_SLICE_EVENTS: usize = 40;

/// A run's resilience report: the contents of `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub run: RunInfo,
    pub versions: Versions,
    pub stack: StackFacts,
    /// The fault schedule as planned and as applied (times from the history).
    pub faults: Vec<AppliedFault>,
    /// Client operations by kind: how many were invoked and how they ended.
    pub operations: Vec<OperationSummary>,
    /// HDR histograms: the workload clients' requests (`request`), and the end-to-end
    /// durations the workload read from the system (named by it, `saga` for the reference
    /// system) when it reports any.
    pub latency: Vec<LatencyHistogram>,
    pub timeseries: TimeSeries,
    /// Circuit breakers' state changes, per link.
    pub circuits: Vec<CircuitTimeline>,
    /// How the workload's units of work ended; absent when the workload does not tell or the
    /// run stopped before the system's final state was read.
    pub outcomes: Option<Outcomes>,
    /// Every expectation's verdict, failing ones first.
    pub verdicts: Vec<ReportVerdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's folder name: `<scenario>-<run id>`.
    pub id: String,
    pub scenario: String,
    pub description: String,
    pub seed: u64,
    /// Wall-clock time at which the history's clock read zero.
    pub started_unix_ms: u64,
    /// The run's length (stack start to checking).
    pub duration_ms: u64,
    /// Every expectation held and every fault healed.
    pub passed: bool,
    /// Faults that could not be healed.
    pub unhealed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// The `faultline` that ran (crate version).
    pub faultline: String,
    /// Container images by role (`postgres`, `kafka`, `toxiproxy`).
    pub images: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackFacts {
    pub services: Vec<String>,
    /// Every link faults can target (`client->server`).
    pub links: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedFault {
    /// Index in the scenario's schedule.
    pub index: usize,
    pub target: String,
    pub kind: String,
    pub description: String,
    /// Planned start and end, from the start of the load phase.
    pub planned_start_ms: f64,
    pub planned_end_ms: f64,
    /// When the nemesis applied and healed it (history times); null if it never did.
    pub applied_ms: Option<f64>,
    pub healed_ms: Option<f64>,
    /// Why applying or healing failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationSummary {
    /// `request`, `probe`, `start_fault`, `heal_fault` or `request_fault` (a request a
    /// request-level fault hit; its kind is the action) (reports of earlier versions also
    /// say `place_order` and `read_order`).
    pub op: String,
    /// For `request`, the operation's name with the workload's intent when it has one
    /// (`place_order (good)`), or `probe` for the probes' and set-up requests.
    pub kind: Option<String>,
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Invoked and never completed.
    pub pending: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// What was measured: `request` (the workload's requests) or `saga`.
    pub op: String,
    /// Which completions: `ok` or `all`.
    pub outcome: String,
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Counts per bucket, buckets doubling from 1 ms: `count` values at most `le_ms`.
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub le_ms: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    /// Width of each point's interval.
    pub bucket_ms: u64,
    pub points: Vec<TimePoint>,
}

/// The workload clients' requests completed in `[start_ms, start_ms + bucket_ms)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimePoint {
    pub start_ms: u64,
    pub completed: u64,
    pub ok: u64,
    /// Failed or unknown outcome.
    pub errors: u64,
    pub throughput_per_s: f64,
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitTimeline {
    /// `client->server`, e.g. `order->payment`.
    pub link: String,
    /// State when the services were read.
    pub final_state: String,
    pub transitions: Vec<CircuitTransition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitTransition {
    pub from: String,
    pub to: String,
    pub at_unix_ms: u64,
    /// On the history's clock; null when the run's start time is unknown.
    pub at_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportVerdict {
    /// The expectation: an invariant, `circuit <link>`, `slo` or a steady-state probe.
    pub checker: String,
    pub passed: bool,
    pub summary: String,
    pub counterexamples: Vec<ReportCounterexample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportCounterexample {
    pub description: String,
    /// What it is about: ids or keys of the system's entities (order ids, accounts).
    pub subjects: Vec<String>,
    pub events: Vec<usize>,
    /// The slice of history that shows it: the named events, their invocations and
    /// completions, and (when no event is named) the events that mention its subjects.
    pub history: Vec<HistoryLine>,
}

/// One history event, flattened for reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryLine {
    pub index: usize,
    pub time_ms: f64,
    pub process: String,
    /// `invoke`, `ok`, `fail` or `info`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// What was attempted, e.g. `place_order (good): POST /api/orders key=k-3`.
    pub op: String,
    /// The completion's value as recorded (payloads, errors): shown as text, never markup.
    pub value: Value,
}

/// The system's final state as the report shows it: its breakers, and what its workload
/// knows of the outcomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FinalState {
    pub circuits: Vec<CircuitRecord>,
    pub workload: WorkloadState,
}

/// What the runner (or a test) knows about a finished run.
pub struct RunFacts<'a> {
    pub scenario: &'a Scenario,
    /// The run's folder name.
    pub id: String,
    pub seed: u64,
    pub started_unix_ms: u64,
    pub duration_ms: u64,
    pub history: &'a History,
    pub verdicts: &'a [Verdict],
    /// The system's final state; `None` when the run stopped before it was read.
    pub final_state: Option<&'a FinalState>,
    pub unhealed: &'a [String],
    pub versions: Versions,
    pub stack: StackFacts,
}

impl Versions {
    /// This build's version and the images the environment names (`FAULTLINE_*_IMAGE`, with
    /// the infrastructure's defaults).
    pub fn of_this_run() -> Self {
        let images = crate::infra::Images::from_env();
        let images = [
            ("postgres", images.postgres.name),
            ("kafka", images.kafka.name),
            ("toxiproxy", images.toxiproxy.name),
        ]
        .into_iter()
        .map(|(role, image)| (role.to_string(), image))
        .collect();
        Self {
            faultline: env!("CARGO_PKG_VERSION").to_string(),
            images,
        }
    }
}

impl StackFacts {
    /// The reference system's services and links.
    /// The services and links of a system's topology.
    pub fn of(topology: &faultline_chaos::topology::Topology) -> Self {
        Self {
            services: topology.services().to_vec(),
            links: topology.link_names(),
        }
    }
}

impl Report {
    /// Builds the report of a finished run.
    pub fn build(facts: &RunFacts<'_>) -> Report {
        let history = facts.history;
        let mut verdicts: Vec<ReportVerdict> = facts
            .verdicts
            .iter()
            .map(|v| ReportVerdict {
                checker: v.checker.clone(),
                passed: v.ok,
                summary: v.summary.clone(),
                counterexamples: v
                    .counterexamples
                    .iter()
                    .map(|c| ReportCounterexample {
                        description: c.description.clone(),
                        subjects: c.subjects.clone(),
                        events: c.events.clone(),
                        history: history_slice(history, &c.events, &c.subjects),
                    })
                    .collect(),
            })
            .collect();
        // A stable sort: failing first, otherwise in the order the checkers ran.
        verdicts.sort_by_key(|v| v.passed);
        let passed = facts.unhealed.is_empty() && facts.verdicts.iter().all(|v| v.ok);
        Report {
            version: REPORT_VERSION,
            run: RunInfo {
                id: facts.id.clone(),
                scenario: facts.scenario.name.clone(),
                description: facts.scenario.description.clone(),
                seed: facts.seed,
                started_unix_ms: facts.started_unix_ms,
                duration_ms: facts.duration_ms,
                passed,
                unhealed: facts.unhealed.to_vec(),
            },
            versions: facts.versions.clone(),
            stack: facts.stack.clone(),
            faults: applied_faults(facts.scenario, history),
            operations: operations(history),
            latency: latency(history, facts.final_state),
            timeseries: timeseries(history),
            circuits: facts
                .final_state
                .map(|f| circuits(&f.circuits, facts.started_unix_ms))
                .unwrap_or_default(),
            outcomes: facts.final_state.and_then(|f| f.workload.outcomes.clone()),
            verdicts,
        }
    }

    /// The verdicts that failed (they come first).
    pub fn failures(&self) -> impl Iterator<Item = &ReportVerdict> {
        self.verdicts.iter().filter(|v| !v.passed)
    }

    /// The latency of the workload's requests over every completion, if any completed.
    pub fn request_latency(&self) -> Option<&LatencyHistogram> {
        self.latency
            .iter()
            .find(|h| h.op == "request" && h.outcome == "all")
    }

    /// Errors (fail + info) over the workload's completed requests.
    pub fn request_error_rate(&self) -> Option<f64> {
        let (done, errors) = self
            .operations
            .iter()
            .filter(|o| o.op == "request" && o.kind.as_deref() != Some("probe"))
            // Summed as floats: a report's counts are read from a file and may be anything.
            .fold((0.0, 0.0), |(d, e): (f64, f64), o| {
                let errors = o.fail as f64 + o.info as f64;
                (d + o.ok as f64 + errors, e + errors)
            });
        (done > 0.0).then(|| errors / done)
    }

    /// The end of the history, for chart axes.
    pub fn history_end_ms(&self) -> f64 {
        let series_end = self
            .timeseries
            .points
            .last()
            .map_or(0.0, |p| p.start_ms as f64 + self.timeseries.bucket_ms as f64);
        self.faults
            .iter()
            .filter_map(|f| f.healed_ms.or(f.applied_ms))
            .fold(series_end, f64::max)
    }
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn applied_faults(scenario: &Scenario, history: &History) -> Vec<AppliedFault> {
    scenario
        .faults
        .iter()
        .enumerate()
        .map(|(index, fault)| {
            let completion = |start: bool| {
                history.events().iter().find(|e| {
                    e.event_type != EventType::Invoke
                        && match &e.op {
                            Op::StartFault { index: i, .. } => start && *i == index,
                            Op::HealFault { index: i, .. } => !start && *i == index,
                            _ => false,
                        }
                })
            };
            let applied = completion(true);
            let healed = completion(false);
            let error = [applied, healed]
                .into_iter()
                .flatten()
                .filter(|e| e.event_type != EventType::Ok)
                .map(|e| value_text(&e.value))
                .next();
            AppliedFault {
                index,
                target: nemesis::target_name(&fault.target),
                kind: nemesis::kind_name(&fault.kind),
                description: match &fault.kind {
                    // How many requests it hit, which only the history knows.
                    faultline_chaos::scenario::FaultKind::Request(_)
                    | faultline_chaos::scenario::FaultKind::Statement(_)
                    | faultline_chaos::scenario::FaultKind::Kafka(_) => {
                        let hits = history
                            .events()
                            .iter()
                            .filter(|e| {
                                e.event_type == EventType::Invoke
                                    && matches!(&e.op, Op::RequestFault { index: i, .. } if *i == index)
                            })
                            .count();
                        let what = match fault.kind {
                            faultline_chaos::scenario::FaultKind::Statement(_) => "statement(s)",
                            _ => "request(s)",
                        };
                        format!("{}; hit {hits} {what}", nemesis::describe(fault))
                    }
                    _ => nemesis::describe(fault),
                },
                planned_start_ms: ms(fault.start),
                planned_end_ms: ms(fault.start + fault.duration),
                applied_ms: applied
                    .filter(|e| e.event_type == EventType::Ok)
                    .map(|e| ms(e.time)),
                healed_ms: healed
                    .filter(|e| e.event_type == EventType::Ok)
                    .map(|e| ms(e.time)),
                error,
            }
        })
        .collect()
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(map) => map
            .get("error")
            .or_else(|| map.get("message"))
            .and_then(Value::as_str)
            .map_or_else(|| value.to_string(), str::to_string),
        other => other.to_string(),
    }
}

fn op_name(op: &Op) -> (&'static str, Option<String>) {
    match op {
        Op::Request {
            operation, kind, ..
        } => (
            "request",
            Some(match kind {
                Some(kind) => format!("{operation} ({kind})"),
                None => operation.clone(),
            }),
        ),
        Op::StartFault { .. } => ("start_fault", None),
        Op::HealFault { .. } => ("heal_fault", None),
        Op::Probe { .. } => ("probe", None),
        Op::RequestFault { action, .. } => ("request_fault", Some(action.clone())),
    }
}

fn operations(history: &History) -> Vec<OperationSummary> {
    let mut by_op: BTreeMap<(&'static str, Option<String>), OperationSummary> = BTreeMap::new();
    let completed: BTreeSet<usize> = history
        .events()
        .iter()
        .filter_map(|e| e.invoke_index)
        .collect();
    for event in history.events() {
        if event.process == Process::Nemesis {
            continue;
        }
        let (op, mut kind) = op_name(&event.op);
        if event.process == Process::Probe && kind.is_some() {
            kind = Some("probe".into());
        }
        let summary = by_op
            .entry((op, kind.clone()))
            .or_insert_with(|| OperationSummary {
                op: op.to_string(),
                kind,
                invoked: 0,
                ok: 0,
                fail: 0,
                info: 0,
                pending: 0,
            });
        match event.event_type {
            EventType::Invoke => {
                summary.invoked += 1;
                if !completed.contains(&event.index) {
                    summary.pending += 1;
                }
            }
            EventType::Ok => summary.ok += 1,
            EventType::Fail => summary.fail += 1,
            EventType::Info => summary.info += 1,
        }
    }
    by_op.into_values().collect()
}

/// The workload clients' requests: `(completion, latency in ms)`.
fn client_requests(history: &History) -> Vec<(&Event, f64)> {
    history
        .pairs()
        .into_iter()
        .filter(|(invoke, _)| {
            matches!(invoke.process, Process::Client(_)) && invoke.op.is_workload_call()
        })
        .map(|(invoke, completion)| (completion, ms(completion.time.saturating_sub(invoke.time))))
        .collect()
}

/// Microsecond resolution, three significant figures, up to an hour.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn record(histogram: &mut Histogram<u64>, latency_ms: f64) {
    let micros = (latency_ms * 1000.0).round().max(1.0) as u64;
    histogram.saturating_record(micros);
}

fn quantile_ms(histogram: &Histogram<u64>, q: f64) -> f64 {
    histogram.value_at_quantile(q) as f64 / 1000.0
}

fn latency(history: &History, final_state: Option<&FinalState>) -> Vec<LatencyHistogram> {
    let requests = client_requests(history);
    let mut histograms: Vec<LatencyHistogram> = [("all", false), ("ok", true)]
        .into_iter()
        .filter_map(|(outcome, only_ok)| {
            let mut histogram = new_histogram();
            for (completion, latency) in &requests {
                if !only_ok || completion.event_type == EventType::Ok {
                    record(&mut histogram, *latency);
                }
            }
            (!histogram.is_empty()).then(|| summarise("request", outcome, &histogram))
        })
        .collect();
    if let Some(durations) = final_state.and_then(|f| f.workload.durations.as_ref()) {
        let mut histogram = new_histogram();
        for took in &durations.ms {
            record(&mut histogram, *took as f64);
        }
        if !histogram.is_empty() {
            histograms.push(summarise(&durations.name, "all", &histogram));
        }
    }
    histograms
}

fn summarise(op: &str, outcome: &str, histogram: &Histogram<u64>) -> LatencyHistogram {
    let mut buckets = Vec::new();
    let mut le_us = 1000u64;
    let mut below = 0u64;
    loop {
        let upto = histogram.count_between(0, le_us);
        buckets.push(Bucket {
            le_ms: le_us as f64 / 1000.0,
            count: upto - below,
        });
        below = upto;
        if upto >= histogram.len() {
            break;
        }
        le_us *= 2;
    }
    LatencyHistogram {
        op: op.to_string(),
        outcome: outcome.to_string(),
        count: histogram.len(),
        min_ms: histogram.min() as f64 / 1000.0,
        mean_ms: (histogram.mean() / 1000.0 * 1000.0).round() / 1000.0,
        p50_ms: quantile_ms(histogram, 0.5),
        p90_ms: quantile_ms(histogram, 0.9),
        p99_ms: quantile_ms(histogram, 0.99),
        p999_ms: quantile_ms(histogram, 0.999),
        max_ms: histogram.max() as f64 / 1000.0,
        buckets,
    }
}

/// At most about this many points, in intervals of at least a second.
const MAX_POINTS: u64 = 120;

fn timeseries(history: &History) -> TimeSeries {
    let requests = client_requests(history);
    let end_ms = history.events().last().map_or(0.0, |e| ms(e.time)) as u64;
    let bucket_ms = (end_ms.div_ceil(MAX_POINTS)).div_ceil(500).max(2) * 500;
    let buckets = end_ms / bucket_ms + 1;
    let mut points = Vec::new();
    for b in 0..buckets {
        let start_ms = b * bucket_ms;
        let in_bucket: Vec<&(&Event, f64)> = requests
            .iter()
            .filter(|(c, _)| (ms(c.time) as u64) / bucket_ms == b)
            .collect();
        let mut histogram = new_histogram();
        for (_, latency) in &in_bucket {
            record(&mut histogram, *latency);
        }
        let completed = in_bucket.len() as u64;
        let ok = in_bucket
            .iter()
            .filter(|(c, _)| c.event_type == EventType::Ok)
            .count() as u64;
        points.push(TimePoint {
            start_ms,
            completed,
            ok,
            errors: completed - ok,
            throughput_per_s: (completed as f64 * 1000.0 / bucket_ms as f64 * 100.0).round()
                / 100.0,
            error_rate: if completed == 0 {
                0.0
            } else {
                ((completed - ok) as f64 / completed as f64 * 10_000.0).round() / 10_000.0
            },
            p50_ms: (completed > 0).then(|| quantile_ms(&histogram, 0.5)),
            p99_ms: (completed > 0).then(|| quantile_ms(&histogram, 0.99)),
        });
    }
    TimeSeries { bucket_ms, points }
}

fn circuits(circuits: &[CircuitRecord], started_unix_ms: u64) -> Vec<CircuitTimeline> {
    let mut timelines: Vec<CircuitTimeline> = circuits
        .iter()
        .map(|c| CircuitTimeline {
            link: format!(
                "{}->{}",
                // Every reader of circuits names the service it read; a record without one
                // (written by hand) has no client to show.
                if c.service.is_empty() {
                    "?"
                } else {
                    &c.service
                },
                c.dependency
            ),
            final_state: c.state.to_ascii_lowercase(),
            transitions: c
                .transitions
                .iter()
                .map(|t| CircuitTransition {
                    from: t.from.to_ascii_lowercase(),
                    to: t.to.to_ascii_lowercase(),
                    at_unix_ms: t.at_unix_ms,
                    at_ms: (started_unix_ms > 0)
                        .then_some(t.at_unix_ms as f64 - started_unix_ms as f64),
                })
                .collect(),
        })
        .collect();
    timelines.sort_by(|a, b| a.link.cmp(&b.link));
    timelines
}

/// The events a counterexample names, each with its invocation or completions, or — when it
/// names none — the events that mention its subjects (as a request's key, or as a string
/// anywhere in a recorded value, such as the id an answer carried); in history order, at most
/// [`MAX_SLICE_EVENTS`].
fn history_slice(history: &History, events: &[usize], subjects: &[String]) -> Vec<HistoryLine> {
    let all = history.events();
    let mut wanted: BTreeSet<usize> = BTreeSet::new();
    for &index in events {
        let Some(event) = all.get(index) else {
            continue;
        };
        wanted.insert(index);
        if let Some(invoke) = event.invoke_index {
            wanted.insert(invoke);
        }
        wanted.extend(
            all.iter()
                .filter(|e| e.invoke_index == Some(index))
                .map(|e| e.index),
        );
    }
    if events.is_empty() && !subjects.is_empty() {
        let mentions = |e: &Event| {
            let keyed = match &e.op {
                Op::Request { key, .. } => subjects.iter().any(|s| s == key),
                _ => false,
            };
            keyed || mentions_any(&e.value, subjects)
        };
        for event in all.iter().filter(|e| mentions(e)) {
            wanted.insert(event.index);
            if let Some(invoke) = event.invoke_index {
                wanted.insert(invoke);
            }
        }
    }
    wanted
        .into_iter()
        .take(MAX_SLICE_EVENTS)
        .filter_map(|i| all.get(i))
        .map(history_line)
        .collect()
}

/// Whether `value` holds one of `subjects` as a string, at any depth.
fn mentions_any(value: &Value, subjects: &[String]) -> bool {
    match value {
        Value::String(text) => subjects.iter().any(|s| s == text),
        Value::Array(items) => items.iter().any(|v| mentions_any(v, subjects)),
        Value::Object(fields) => fields.values().any(|v| mentions_any(v, subjects)),
        _ => false,
    }
}

fn history_line(event: &Event) -> HistoryLine {
    HistoryLine {
        index: event.index,
        time_ms: ms(event.time),
        process: match event.process {
            Process::Client(n) => format!("client {n}"),
            Process::Nemesis => "nemesis".into(),
            Process::Probe => "probe".into(),
        },
        event_type: match event.event_type {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
        .into(),
        op: match &event.op {
            Op::Request {
                operation,
                method,
                path,
                key,
                kind,
            } => match kind {
                Some(kind) => format!("{operation} ({kind}): {method} {path} key={key}"),
                None => format!("{operation}: {method} {path} key={key}"),
            },
            Op::StartFault {
                index,
                target,
                kind,
            } => format!("start fault #{index}: {kind} of {target}"),
            Op::HealFault {
                index,
                target,
                kind,
            } => format!("heal fault #{index}: {kind} of {target}"),
            Op::Probe { name, phase } => format!("probe {name} ({phase})"),
            Op::RequestFault {
                index,
                link,
                method,
                path,
                action,
            } => format!("fault #{index} ({action}) hit {method} {path} on {link}"),
        },
        value: event.value.clone(),
    }
}
