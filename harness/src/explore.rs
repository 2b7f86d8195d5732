//! Fault-space exploration (`faultline chaos explore`): instead of running a schedule written
//! by hand, find the faults that break a system.
//!
//! 1. **Discovery.** The base scenario's workload runs once with no fault. The request proxy on
//!    every link between two services records each remote call site it forwards (link,
//!    method, route — see [`route_of`](crate::intercept::route_of)), in the order first seen;
//!    Kafka lists the consumer groups with offsets on the described topics. A base that fails
//!    without faults stops here: exploring a system that is already broken finds nothing new.
//! 2. **Experiments.** Each is the base scenario with one or two faults (see [`Kind`]): every
//!    request-level fault at every call site, each kill at each observed point, a
//!    redelivery for every consumer group named like a service. The singles come first, in an
//!    order drawn from the seed; then combinations guided by what the singles revealed: a call
//!    site that appeared only under a fault (a refund called only when a charge failed) gets
//!    every request fault of its own on top of that fault. A single that failed gets no
//!    combinations — the failure is already its own.
//! 3. **Runs.** Every experiment runs on one stack, started once and [reset](Stack::reset)
//!    before each; its fault starts a quarter into the load and heals at three quarters (or,
//!    on calls whose caller the description says keeps trying longer, past that point: see
//!    [`Timing`]). It is
//!    judged by every checker its base names (or the workload's defaults) and by liveness: the
//!    steady-state probes after the heal — the base's, or, when it has no `success_rate` probe,
//!    [`LIVENESS`] — must hold (within their `within`), so good operations complete again
//!    once the faults are gone.
//!    The base's circuit and SLO expectations are left out: they are about the base's own
//!    fault.
//! 4. **State.** `explore.json` in the output folder is rewritten after every experiment: an
//!    interrupted or bounded exploration is resumed by running it again (`fresh` starts over).
//!    `explore.html` shows the space as a grid of call sites × kinds; `junit.xml` has one test
//!    case per experiment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_chaos::scenario::Scenario;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::intercept::CallSite;
use crate::shrink::{Candidate, Shrinker};
use crate::runner::{self, RunError};
use crate::stack::Stack;
use crate::system::System;

/// The version of `explore.json`'s format (`harness/schemas/explore-v1.schema.json`).
pub const EXPLORE_VERSION: u32 = 1;

/// The JSON Schema of `explore.json`.
pub const SCHEMA: &str = include_str!("../schemas/explore-v1.schema.json");

/// Where `exploration` (an `explore.json`, as JSON) departs from [`SCHEMA`]; empty when it
/// matches.
pub fn schema_problems(exploration: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the committed schema is JSON");
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .expect("the committed schema is a valid draft 2020-12 schema");
    validator
        .iter_errors(exploration)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// The liveness probe an experiment gets when its base has no `success_rate` probe: after the
/// heal, of `sample` new operations at least `min` complete as intended, within `within`
/// seconds (tried again with new ones until then).
pub const LIVENESS: (&str, u32, f64, &str) = (
    "liveness: good operations complete after the heal",
    10,
    0.9,
    "30s",
);

/// What a fault of an experiment does, at a call site or to a consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The proxy answers 500 without forwarding, with an empty body.
    #[serde(rename = "status-500")]
    Status500,
    /// The proxy answers 502 without forwarding, with an empty body (a load balancer that
    /// found no upstream).
    #[serde(rename = "status-502")]
    Status502,
    /// The proxy answers 503 without forwarding, with an empty body.
    #[serde(rename = "status-503")]
    Status503,
    /// The proxy answers 504 without forwarding, with an empty body (a load balancer whose
    /// upstream did not answer in time).
    #[serde(rename = "status-504")]
    Status504,
    /// The caller's connection is reset before forwarding.
    Reset,
    /// Forwarded; the answer is lost (the effect happened, the caller never hears).
    DropAnswer,
    /// Forwarded after a delay (past the caller's timeout, by default 5 s).
    Delay,
    /// Never forwarded, never answered.
    Hold,
    /// Forwarded twice.
    Duplicate,
    /// The caller killed right after its first request here was sent.
    KillCallerSent,
    /// The caller killed right after the callee answered its first request here.
    KillCallerAnswered,
    /// The callee killed right after the first request here reached it.
    KillCalleeSent,
    /// The consumer stopped, its group's offsets moved back to the start, started again.
    Redeliver,
}

impl Kind {
    /// The kinds tried at every call site, in the report's column order.
    pub const AT_CALL_SITES: [Kind; 12] = [
        Kind::Status500,
        Kind::Status502,
        Kind::Status503,
        Kind::Status504,
        Kind::Reset,
        Kind::DropAnswer,
        Kind::Delay,
        Kind::Hold,
        Kind::Duplicate,
        Kind::KillCallerSent,
        Kind::KillCallerAnswered,
        Kind::KillCalleeSent,
    ];

    /// The kinds that act on requests only (no process is stopped): the ones combined with a
    /// site revealed under another fault.
    pub const REQUEST_ONLY: [Kind; 9] = [
        Kind::Status500,
        Kind::Status502,
        Kind::Status503,
        Kind::Status504,
        Kind::Reset,
        Kind::DropAnswer,
        Kind::Delay,
        Kind::Hold,
        Kind::Duplicate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Status500 => "status-500",
            Kind::Status502 => "status-502",
            Kind::Status503 => "status-503",
            Kind::Status504 => "status-504",
            Kind::Reset => "reset",
            Kind::DropAnswer => "drop-answer",
            Kind::Delay => "delay",
            Kind::Hold => "hold",
            Kind::Duplicate => "duplicate",
            Kind::KillCallerSent => "kill-caller-sent",
            Kind::KillCallerAnswered => "kill-caller-answered",
            Kind::KillCalleeSent => "kill-callee-sent",
            Kind::Redeliver => "redeliver",
        }
    }

    /// The status a status kind answers with.
    pub fn status(self) -> Option<u16> {
        match self {
            Kind::Status500 => Some(500),
            Kind::Status502 => Some(502),
            Kind::Status503 => Some(503),
            Kind::Status504 => Some(504),
            _ => None,
        }
    }
}

/// A consumer group that a service of the description runs (named like it), and the topics
/// it has offsets on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub service: String,
    pub group: String,
    pub topics: Vec<String>,
}

/// Where a fault acts: a call site (`link method route`) or a consumer (`service group/topic`).
pub type Place = String;

/// One fault of an experiment: its kind, where, and the `[[faults]]` table that says it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    pub kind: Kind,
    pub place: Place,
    /// The scenario's `[[faults]]` table, as JSON.
    pub fault: Value,
}

/// A scenario to try: the base with these faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// `kind@place`, joined with ` + ` for a combination: the same faults, the same id.
    pub id: String,
    pub faults: Vec<PlannedFault>,
}

impl Experiment {
    /// The experiment as a [`Candidate`] of the base (`load` long): what shrinking varies.
    /// A fault that lasts past the base's load (a window stretched to a give-up point) gets
    /// a load as long as it, and a quarter of the base's after it, at the base's pace.
    pub fn candidate(&self, base: &toml::Table, load: Duration) -> Candidate {
        let requests = base
            .get("workload")
            .and_then(|w| w.get("requests"))
            .and_then(toml::Value::as_integer)
            .map(|r| r as u64);
        let faults_end = self.faults.iter().filter_map(|f| fault_end(&f.fault)).max();
        match faults_end {
            Some(end) if end + load / 4 > load && !load.is_zero() => {
                let longer = end + load / 4;
                Candidate {
                    requests: requests.map(|r| {
                        (r as f64 * longer.as_secs_f64() / load.as_secs_f64()).ceil() as u64
                    }),
                    load: longer,
                    faults: self.faults.iter().map(|f| f.fault.clone()).collect(),
                }
            }
            _ => Candidate {
                requests,
                load,
                faults: self.faults.iter().map(|f| f.fault.clone()).collect(),
            },
        }
    }

    fn of(faults: Vec<PlannedFault>) -> Self {
        let id = faults
            .iter()
            .map(|f| format!("{}@{}", f.kind.name(), f.place))
            .collect::<Vec<_>>()
            .join(" + ");
        Self { id, faults }
    }
}

/// When an experiment's faults are in effect, from the start of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Duration,
    pub duration: Duration,
}

impl Window {
    /// A quarter into a load of `load`, for half of it.
    pub fn of_load(load: Duration) -> Self {
        Self {
            start: load / 4,
            duration: load / 2,
        }
    }
}

/// How long each experiment's faults last, and how long a `delay` holds each request, at each
/// call site: the default window, stretched past the give-up point the description states for
/// the calls (`gives_up_after`), and a delay past the caller's and the callee's stated
/// `timeouts` — unless `--delay` set one for every site.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// The window of every fault the description says nothing about.
    pub window: Window,
    /// The delay of every `delay` experiment, when set (`--delay`).
    pub delay: Option<Duration>,
    /// `caller->callee` and the caller's timeout of one call on it.
    pub timeouts: BTreeMap<String, Duration>,
    /// `caller->callee`, `METHOD /route` when said of some calls only, and how long the
    /// caller keeps trying them.
    pub gives_up: Vec<(String, Option<String>, Duration)>,
}

impl Timing {
    /// The least `delay` when nothing longer is called for: past most callers' timeouts.
    pub const DELAY: Duration = Duration::from_secs(5);
    /// How far past a stated timeout a `delay` goes, and past a give-up point a window.
    pub const PAST: Duration = Duration::from_secs(2);

    /// The timing of an exploration of `system` with a base whose load lasts `load`.
    pub fn of(system: &System, load: Duration, delay: Option<Duration>) -> Self {
        let mut timeouts = BTreeMap::new();
        let mut gives_up = Vec::new();
        for service in system.start_order() {
            let Some(spec) = system.service(service) else { continue };
            for (callee, timeout) in &spec.timeouts {
                timeouts.insert(format!("{service}->{callee}"), *timeout);
            }
            for give_up in &spec.gives_up {
                gives_up.push((format!("{service}->{}", give_up.callee), give_up.calls.clone(), give_up.after));
            }
        }
        Self {
            window: Window::of_load(load),
            delay,
            timeouts,
            gives_up,
        }
    }

    /// The delay at `site`: the one set, or [`Self::DELAY`] — longer when the caller's timeout
    /// on the link, or one of the callee's own, is not [`Self::PAST`] short of it.
    pub fn delay_at(&self, site: &CallSite) -> Duration {
        if let Some(delay) = self.delay {
            return delay;
        }
        let callee = site.link.split_once("->").map_or("", |(_, callee)| callee);
        let longest = self
            .timeouts
            .iter()
            .filter(|(link, _)| **link == site.link || link.split_once("->").is_some_and(|(caller, _)| caller == callee))
            .map(|(_, timeout)| *timeout + Self::PAST)
            .max()
            .unwrap_or_default();
        longest.max(Self::DELAY)
    }

    /// The window of a `kind` fault at `site`: the default, or — when the caller gives up on
    /// the calls later than the default window ends — long enough for the caller to give up
    /// while it is on, for one kind of each way a call can fail: refused and known not done
    /// (`status-503`), never answered (`hold`), done and never heard (`drop-answer`), done late
    /// (`delay`). The other failing kinds fail calls as one of these does and keep the default
    /// window: a stretched experiment lasts as long as the give-up point.
    pub fn window_at(&self, kind: Kind, site: &CallSite) -> Window {
        let fails_calls = matches!(kind, Kind::Status503 | Kind::Hold | Kind::DropAnswer | Kind::Delay);
        let calls = format!("{} {}", site.method, site.route);
        let gives_up = self
            .gives_up
            .iter()
            .filter(|(link, only, _)| *link == site.link && only.as_ref().is_none_or(|only| *only == calls))
            .map(|(_, _, after)| *after)
            .max();
        match gives_up {
            Some(after) if fails_calls && after + Self::PAST > self.window.duration => Window {
                start: self.window.start,
                duration: after + Self::PAST,
            },
            _ => self.window,
        }
    }
}

/// When a planned fault's window ends, from the start of the load.
fn fault_end(fault: &Value) -> Option<Duration> {
    let millis = |key: &str| -> Option<Duration> {
        let text = fault.get(key)?.as_str()?;
        Some(Duration::from_millis(text.strip_suffix("ms")?.parse().ok()?))
    };
    Some(millis("start")? + millis("duration")?)
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The `[[faults]]` table of `kind` at call site `site`.
pub fn site_fault(kind: Kind, site: &CallSite, timing: &Timing) -> PlannedFault {
    let window = timing.window_at(kind, site);
    let delay = timing.delay_at(site);
    let (caller, callee) = site.link.split_once("->").unwrap_or((&site.link, ""));
    let mut fault = serde_json::json!({
        "start": ms(window.start),
        "duration": ms(window.duration),
        "target": site.link,
        "kind": "request",
        "method": site.method,
        "path": site.route,
    });
    let extra = match kind {
        // Empty, as real upstreams and load balancers often answer: a caller that needs a
        // JSON error body to handle the failure is found out.
        Kind::Status500 | Kind::Status502 | Kind::Status503 | Kind::Status504 => {
            serde_json::json!({"action": "status", "status": kind.status(), "body": ""})
        }
        Kind::Reset => serde_json::json!({"action": "reset"}),
        Kind::DropAnswer => serde_json::json!({"action": "drop_answer"}),
        Kind::Delay => serde_json::json!({"action": "delay", "delay": ms(delay)}),
        Kind::Hold => serde_json::json!({"action": "hold"}),
        Kind::Duplicate => serde_json::json!({"action": "duplicate"}),
        Kind::KillCallerSent => {
            serde_json::json!({"action": "kill", "service": caller, "when": "sent", "nth": 1})
        }
        Kind::KillCallerAnswered => {
            serde_json::json!({"action": "kill", "service": caller, "when": "answered", "nth": 1})
        }
        Kind::KillCalleeSent => {
            serde_json::json!({"action": "kill", "service": callee, "when": "sent", "nth": 1})
        }
        Kind::Redeliver => unreachable!("a redelivery is a consumer's, not a call site's"),
    };
    for (key, value) in extra.as_object().expect("an object") {
        fault[key] = value.clone();
    }
    PlannedFault {
        kind,
        place: site.to_string(),
        fault,
    }
}

/// The `[[faults]]` table redelivering everything `consumer` read of `topic`.
pub fn redeliver_fault(consumer: &Consumer, topic: &str, window: Window) -> PlannedFault {
    PlannedFault {
        kind: Kind::Redeliver,
        place: format!("{} {}/{topic}", consumer.service, consumer.group),
        fault: serde_json::json!({
            "start": ms(window.start),
            "duration": ms(window.duration),
            "target": consumer.service,
            "kind": "redeliver",
            "topic": topic,
            "group": consumer.group,
            "events": 1_000_000,
        }),
    }
}

/// Every single-fault experiment on what discovery saw, shuffled by `seed`.
pub fn singles(sites: &[CallSite], consumers: &[Consumer], timing: &Timing, seed: u64) -> Vec<Experiment> {
    let mut experiments: Vec<Experiment> = sites
        .iter()
        .flat_map(|site| {
            Kind::AT_CALL_SITES
                .iter()
                .map(move |kind| Experiment::of(vec![site_fault(*kind, site, timing)]))
        })
        .collect();
    for consumer in consumers {
        for topic in &consumer.topics {
            experiments.push(Experiment::of(vec![redeliver_fault(consumer, topic, timing.window)]));
        }
    }
    experiments.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    experiments
}

/// The combinations a passing single reveals: every request-only fault at each call site
/// that it saw and discovery did not, on top of its own fault.
pub fn combinations(
    single: &Experiment,
    revealed: &[CallSite],
    timing: &Timing,
) -> Vec<Experiment> {
    revealed
        .iter()
        .flat_map(|site| {
            Kind::REQUEST_ONLY.iter().map(move |kind| {
                let mut faults = single.faults.clone();
                faults.push(site_fault(*kind, site, timing));
                Experiment::of(faults)
            })
        })
        .collect()
}

/// The scenario text of `candidate`: the base's, renamed and described, with the
/// candidate's operations, load and faults in place of the base's, its circuit and SLO
/// expectations left out, and the liveness probe added when the base has no `success_rate`
/// probe of its own.
pub fn scenario_text(
    base: &toml::Table,
    name: &str,
    description: &str,
    candidate: &Candidate,
) -> Result<String, String> {
    let mut table = base.clone();
    table.insert("name".into(), toml::Value::String(name.into()));
    table.insert("description".into(), toml::Value::String(description.into()));
    if let Some(toml::Value::Table(workload)) = table.get_mut("workload") {
        if let Some(requests) = candidate.requests {
            workload.insert("requests".into(), toml::Value::Integer(requests as i64));
        }
        workload.insert(
            "duration".into(),
            toml::Value::String(format!("{}ms", candidate.load.as_millis())),
        );
    }
    let faults: Vec<toml::Value> = candidate
        .faults
        .iter()
        .map(|f| toml::Value::try_from(f).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    table.insert("faults".into(), toml::Value::Array(faults));
    if let Some(toml::Value::Table(expectations)) = table.get_mut("expectations") {
        expectations.remove("circuits");
        expectations.remove("slo");
    }
    let has_rate = table
        .get("steady_state")
        .and_then(|s| s.get("probes"))
        .and_then(|p| p.as_array())
        .is_some_and(|probes| {
            probes
                .iter()
                .any(|p| p.get("probe").and_then(|k| k.as_str()) == Some("success_rate"))
        });
    if !has_rate {
        let steady = table
            .entry("steady_state")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(steady) = steady {
            let probes = steady
                .entry("probes")
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            if let toml::Value::Array(probes) = probes {
                let (name, sample, min, within) = LIVENESS;
                let mut probe = toml::Table::new();
                probe.insert("name".into(), name.into());
                probe.insert("probe".into(), "success_rate".into());
                probe.insert("sample".into(), i64::from(sample).into());
                probe.insert("min".into(), min.into());
                probe.insert("within".into(), within.into());
                probes.push(toml::Value::Table(probe));
            }
        }
    }
    toml::to_string(&table).map_err(|e| e.to_string())
}

/// `base` with `[expectations.blast_radius]`'s `footprints` and `baseline` set to what
/// `discovery` learnt, unless the base gives its own or says `blast_radius = false`.
pub fn with_footprints(base: &toml::Table, discovery: &Discovery) -> toml::Table {
    let mut table = base.clone();
    let Some(footprints) = &discovery.footprints else {
        return table;
    };
    let expectations = table
        .entry("expectations")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(expectations) = expectations.as_table_mut() else {
        return table;
    };
    let blast = expectations
        .entry("blast_radius")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(blast) = blast.as_table_mut() else {
        return table;
    };
    if !blast.contains_key("footprints") {
        let sites: toml::Table = footprints
            .iter()
            .map(|(operation, calls)| {
                let calls = calls.iter().cloned().map(toml::Value::String).collect();
                (operation.clone(), toml::Value::Array(calls))
            })
            .collect();
        blast.insert("footprints".into(), toml::Value::Table(sites));
    }
    if let (false, Some(baseline)) = (blast.contains_key("baseline"), &discovery.baseline) {
        let figures: toml::Table = baseline
            .iter()
            .map(|(operation, figures)| {
                let mut row = toml::Table::new();
                row.insert("answers".into(), i64::from(figures.answers).into());
                row.insert("ok".into(), i64::from(figures.ok).into());
                row.insert("p99".into(), format!("{}us", (figures.p99_ms * 1000.0).round() as u64).into());
                (operation.clone(), toml::Value::Table(row))
            })
            .collect();
        blast.insert("baseline".into(), toml::Value::Table(figures));
    }
    table
}

/// A verdict that failed, as the exploration keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub checker: String,
    pub summary: String,
    /// The first counterexamples' descriptions (at most five).
    pub counterexamples: Vec<String>,
}

/// How one experiment came out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tried {
    /// Its place in the exploration, from 1.
    pub number: usize,
    #[serde(flatten)]
    pub experiment: Experiment,
    /// Every verdict held and every fault healed.
    pub ok: bool,
    pub failures: Vec<Failure>,
    /// The run could not be carried out (the stack broke): neither held nor failed a check.
    pub error: Option<String>,
    /// The run's report folder.
    pub report: Option<PathBuf>,
    pub reset_seconds: f64,
    /// The reset's phases (see [`Stack::last_reset`]), in seconds.
    pub reset_phases: BTreeMap<String, f64>,
    /// The run's phases (see [`runner::RunTimings`]), in seconds: where an experiment's time
    /// goes besides the reset.
    #[serde(default)]
    pub run_phases: BTreeMap<String, f64>,
    pub seconds: f64,
    /// Call sites this run saw that discovery did not.
    pub revealed: Vec<CallSite>,
    /// For a failure (when shrinking is on): its reproducer.
    pub reproducer: Option<Reproducer>,
}

/// What discovery found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Discovery {
    pub report: Option<PathBuf>,
    pub seconds: f64,
    pub call_sites: Vec<CallSite>,
    /// Each operation's call sites when it was sent alone (see
    /// [`faultline_chaos::scenario::blast`]): written into every experiment, so that each
    /// judges its blast radius without measuring them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footprints: Option<faultline_chaos::scenario::blast::Footprints>,
    /// Each operation's fault-free figures in this run (answers, ok, p99 in ms): the blast
    /// radius's baseline, written into every experiment with the footprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BTreeMap<String, BaselineFigures>>,
    pub consumers: Vec<Consumer>,
    /// Consumer groups with offsets on a described topic but no service of their name: no
    /// redelivery is tried for them.
    pub unmatched_groups: Vec<String>,
    /// What failed in the fault-free run, when it did not hold (then nothing is explored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_failures: Vec<Failure>,
}

/// An operation's fault-free figures as `explore.json` keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineFigures {
    pub answers: u32,
    pub ok: u32,
    pub p99_ms: f64,
}

impl From<faultline_chaos::scenario::blast::Baseline> for BaselineFigures {
    fn from(b: faultline_chaos::scenario::blast::Baseline) -> Self {
        Self { answers: b.answers, ok: b.ok, p99_ms: b.p99.as_secs_f64() * 1000.0 }
    }
}

/// The size of the fault space.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Space {
    /// Single-fault experiments: call sites × kinds, plus one redelivery per consumed topic.
    pub singles: usize,
    /// Combinations generated from what passing singles revealed.
    pub combinations: usize,
    /// Combinations not generated because their first fault alone already failed.
    pub skipped_covered: usize,
    /// Experiments run (this and earlier sessions of the same exploration).
    pub run: usize,
}

/// Why an exploration stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// Every experiment generated (that `only` chooses) has run.
    Exhausted,
    /// A failure was found, and the exploration was to stop at the first.
    Failure,
    Budget,
    Time,
    Interrupted,
    /// The fault-free run did not hold: nothing was explored.
    BaseFailed,
}

/// `explore.json`: the exploration so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exploration {
    pub version: u32,
    pub system: String,
    /// The base scenario's name and file.
    pub scenario: String,
    pub file: PathBuf,
    pub seed: u64,
    /// The delay of `delay` experiments, in milliseconds: the one `--delay` set, or the least
    /// one (longer at a call site whose caller or callee states a longer timeout).
    pub delay_ms: u64,
    pub discovery: Discovery,
    pub space: Space,
    /// In the order run.
    pub experiments: Vec<Tried>,
    /// Experiments generated and not run yet, in the order they would run.
    pub pending: Vec<Experiment>,
    pub stopped: Option<Stopped>,
    /// Wall time spent running experiments (resets included), over every session.
    pub experiment_seconds: f64,
    /// Wall time spent confirming and shrinking failures, over every session.
    pub shrink_seconds: f64,
    /// Experiments per minute of experiment time.
    pub per_minute: f64,
    /// Seconds of experiment time until the first failure was found.
    pub first_failure_seconds: Option<f64>,
    /// Seconds of experiment and shrinking time until the first reproducer was written.
    pub first_reproducer_seconds: Option<f64>,
}

impl Exploration {
    /// The experiments that failed a check.
    pub fn failed(&self) -> impl Iterator<Item = &Tried> {
        self.experiments.iter().filter(|t| !t.ok && t.error.is_none())
    }
}

/// The bounds and choices of an exploration.
#[derive(Debug, Clone)]
pub struct Options {
    /// At most this many experiments in this session.
    pub budget: Option<usize>,
    /// No new experiment starts after this long (this session).
    pub time: Option<Duration>,
    /// The workload's seed and the experiments' order (default: the base scenario's seed).
    pub seed: Option<u64>,
    /// How long a `delay` experiment holds each request, at every call site (default: past the
    /// stated timeouts, at least [`Timing::DELAY`]).
    pub delay: Option<Duration>,
    /// Start over even if the folder holds an exploration of the same base and seed.
    pub fresh: bool,
    /// Confirm and shrink each failure to a reproducer.
    pub shrink: bool,
    /// At most this many runs for confirming and shrinking one failure.
    pub shrink_runs: usize,
    /// Extra environment per service (`service`, `VARIABLE`, `value`), over the description's.
    pub env: Vec<(String, String, String)>,
    /// Run only the experiments whose id contains one of these (all when empty); the others
    /// stay pending.
    pub only: Vec<String>,
    /// Stop once a failure has been found (and shrunk).
    pub until_failure: bool,
    /// How the stack is reset between experiments, over the description's `reset`.
    pub reset: Option<crate::system::ResetMode>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            budget: None,
            time: None,
            seed: None,
            delay: None,
            fresh: false,
            shrink: true,
            shrink_runs: 30,
            env: Vec::new(),
            only: Vec::new(),
            until_failure: false,
            reset: None,
        }
    }
}

/// Why an exploration could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// The folder holds another exploration (another base or seed): resuming it would mix two.
    #[error("{}: holds an exploration of {scenario} with seed {seed}; pass --fresh to start over, or choose another --out", path.display())]
    Mismatch {
        path: PathBuf,
        scenario: String,
        seed: u64,
    },
    #[error("{}: {message}", path.display())]
    State { path: PathBuf, message: String },
    /// The base scenario failed with no fault at all.
    #[error("the fault-free run of {scenario} did not hold ({failures}); see {}: exploring a system that already fails finds nothing new", report.display())]
    BaseFails {
        scenario: String,
        failures: String,
        report: PathBuf,
    },
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Explores around `base` (a scenario file of `system`), writing into `out`; stops early at
/// `interrupt`, healing and saving the state first (then the error is
/// [`RunError::Interrupted`]).
pub async fn explore_until(
    system: &System,
    base_file: &Path,
    options: &Options,
    out: &Path,
    interrupt: impl Future<Output = ()>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Exploration, ExploreError> {
    let file = base_file.display().to_string();
    let bad_base = |message: String| ExploreError::State {
        path: base_file.to_path_buf(),
        message,
    };
    let base = Scenario::load(base_file, system.vocabulary()).map_err(|e| bad_base(e.to_string()))?;
    // Read again as a table: each experiment's scenario is the base's text with its faults.
    let table: toml::Table = std::fs::read_to_string(base_file)
        .map_err(|e| e.to_string())
        .and_then(|text| toml::from_str(&text).map_err(|e| e.to_string()))
        .map_err(bad_base)?;
    let seed = options.seed.unwrap_or(base.seed);
    let state_path = out.join("explore.json");
    let earlier = if options.fresh { None } else { load(&state_path)? };
    if let Some(earlier) = &earlier {
        if earlier.scenario != base.name || earlier.seed != seed || earlier.system != system.name {
            return Err(ExploreError::Mismatch {
                path: state_path,
                scenario: earlier.scenario.clone(),
                seed: earlier.seed,
            });
        }
    }
    std::fs::create_dir_all(out).map_err(|source| RunError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let timing = Timing::of(system, base.workload.duration, options.delay);
    tokio::pin!(interrupt);

    let system = &match options.reset {
        Some(reset) => {
            let mut system = system.clone();
            system.reset = reset;
            system
        }
        None => system.clone(),
    };
    let mut config = runner::stack_config(system);
    config.env.extend(options.env.iter().cloned());
    progress("starting the stack (shared by every experiment)");
    let mut stack = tokio::select! {
        started = Stack::start(system, config) => started.map_err(RunError::from)?,
        () = &mut interrupt => return Err(RunError::Interrupted { out_dir: out.to_path_buf() }.into()),
    };
    let result = explore_on(
        &mut stack, system, &base, &file, &table, seed, options, out, earlier, &timing,
        &mut interrupt, progress,
    )
    .await;
    progress("shutting the stack down");
    let shutdown = stack.shutdown().await;
    let exploration = result?;
    shutdown.map_err(RunError::from)?;
    Ok(exploration)
}

#[allow(clippy::too_many_arguments)]
async fn explore_on<I: Future<Output = ()> + Unpin>(
    stack: &mut Stack,
    system: &System,
    base: &Scenario,
    file: &str,
    table: &toml::Table,
    seed: u64,
    options: &Options,
    out: &Path,
    earlier: Option<Exploration>,
    timing: &Timing,
    interrupt: &mut I,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Exploration, ExploreError> {
    let session = Instant::now();
    let mut exploration = match earlier {
        Some(earlier) => {
            progress(&format!(
                "resuming: {} experiment(s) done, {} pending",
                earlier.experiments.len(),
                earlier.pending.len()
            ));
            earlier
        }
        None => {
            let discovery = discover(stack, system, base, seed, out, interrupt, progress).await?;
            // A base that fails without a fault is not explored; the folder says why.
            let base_failed = !discovery.base_failures.is_empty();
            let pending = if base_failed {
                Vec::new()
            } else {
                singles(&discovery.call_sites, &discovery.consumers, timing, seed)
            };
            progress(&format!(
                "discovery: {} call site(s), {} consumer(s): {} single-fault experiment(s)",
                discovery.call_sites.len(),
                discovery.consumers.len(),
                pending.len()
            ));
            let exploration = Exploration {
                version: EXPLORE_VERSION,
                system: system.name.clone(),
                scenario: base.name.clone(),
                file: PathBuf::from(file),
                seed,
                delay_ms: options.delay.unwrap_or(Timing::DELAY).as_millis() as u64,
                space: Space {
                    singles: pending.len(),
                    ..Space::default()
                },
                discovery,
                experiments: Vec::new(),
                pending,
                stopped: base_failed.then_some(Stopped::BaseFailed),
                experiment_seconds: 0.0,
                shrink_seconds: 0.0,
                per_minute: 0.0,
                first_failure_seconds: None,
                first_reproducer_seconds: None,
            };
            save(&exploration, out)?;
            if base_failed {
                let discovery = &exploration.discovery;
                return Err(ExploreError::BaseFails {
                    scenario: base.name.clone(),
                    failures: discovery
                        .base_failures
                        .iter()
                        .map(|f| format!("{}: {}", f.checker, f.summary))
                        .collect::<Vec<_>>()
                        .join("; "),
                    report: discovery.report.clone().unwrap_or_default(),
                });
            }
            exploration
        }
    };
    exploration.stopped = None;
    // Every experiment (and reproducer) judges its blast radius by discovery's footprints.
    let table = &with_footprints(table, &exploration.discovery);
    let known: BTreeSet<(String, String, String)> = exploration
        .discovery
        .call_sites
        .iter()
        .map(|s| (s.link.clone(), s.method.clone(), s.route.clone()))
        .collect();
    let mut ran = 0usize;
    let runs_dir = out.join("runs");
    loop {
        if options.until_failure && exploration.failed().next().is_some() {
            exploration.stopped = Some(Stopped::Failure);
            break;
        }
        let chosen = exploration.pending.iter().position(|e| {
            options.only.is_empty() || options.only.iter().any(|o| e.id.contains(o.as_str()))
        });
        let Some(chosen) = chosen else {
            exploration.stopped = Some(Stopped::Exhausted);
            break;
        };
        if options.budget.is_some_and(|b| ran >= b) {
            exploration.stopped = Some(Stopped::Budget);
            break;
        }
        if options.time.is_some_and(|t| session.elapsed() >= t) {
            exploration.stopped = Some(Stopped::Time);
            break;
        }
        let experiment = exploration.pending.remove(chosen);
        let number = exploration.experiments.len() + 1;
        let name = format!("{}-x{number:03}", base.name);
        let clock = Instant::now();
        progress(&format!(
            "[{number}/{}] {}",
            number + exploration.pending.len(),
            experiment.id
        ));
        let candidate = experiment.candidate(table, base.workload.duration);
        let description = format!("Explored: {}", experiment.id);
        let after_failure = exploration.experiments.last().is_some_and(|t| !t.ok);
        let outcome = run_candidate(
            stack, system, table, &name, &description, &candidate, seed, &runs_dir, after_failure,
            interrupt,
        )
        .await;
        let seconds = clock.elapsed().as_secs_f64();
        let (ok, failures, error, report, reset, run_phases) = match outcome {
            Ok((reset, outcome)) => {
                let failures = failures_of(&outcome);
                let phases = run_phases_of(&outcome.timings);
                (failures.is_empty(), failures, None, Some(outcome.out_dir), reset, phases)
            }
            Err(RunError::Interrupted { .. }) => {
                exploration.pending.insert(chosen, experiment);
                exploration.stopped = Some(Stopped::Interrupted);
                exploration.experiment_seconds += seconds;
                save(&exploration, out)?;
                return Err(RunError::Interrupted {
                    out_dir: out.to_path_buf(),
                }
                .into());
            }
            Err(error @ RunError::Stack(_)) => {
                // The stack itself broke (its reset failed): no later experiment could run.
                exploration.pending.insert(chosen, experiment);
                save(&exploration, out)?;
                return Err(error.into());
            }
            Err(error) => (
                false,
                Vec::new(),
                Some(error.to_string()),
                None,
                Duration::ZERO,
                BTreeMap::new(),
            ),
        };
        let revealed: Vec<CallSite> = stack
            .call_sites()
            .into_iter()
            .filter(|s| !known.contains(&(s.link.clone(), s.method.clone(), s.route.clone())))
            .collect();
        if experiment.faults.len() == 1 && !revealed.is_empty() {
            let combos = combinations(&experiment, &revealed, timing);
            if ok {
                let queued: BTreeSet<String> = exploration
                    .pending
                    .iter()
                    .chain(exploration.experiments.iter().map(|t| &t.experiment))
                    .map(|e| e.id.clone())
                    .collect();
                let fresh: Vec<Experiment> =
                    combos.into_iter().filter(|c| !queued.contains(&c.id)).collect();
                exploration.space.combinations += fresh.len();
                exploration.pending.extend(fresh);
            } else {
                exploration.space.skipped_covered += combos.len();
            }
        }
        exploration.experiment_seconds += seconds;
        if !ok && error.is_none() && exploration.first_failure_seconds.is_none() {
            exploration.first_failure_seconds = Some(exploration.experiment_seconds);
        }
        let reset_phases: BTreeMap<String, f64> = stack
            .last_reset()
            .iter()
            .map(|(phase, took)| (phase.to_string(), took.as_secs_f64()))
            .collect();
        let phases: String = stack
            .last_reset()
            .iter()
            .map(|(phase, took)| format!(", {phase} {:.2}", took.as_secs_f64()))
            .collect();
        let ran_phases: String = RUN_PHASES
            .iter()
            .filter_map(|phase| run_phases.get(*phase).map(|took| format!(", {phase} {took:.1}")))
            .collect();
        progress(&format!(
            "[{number}] {} in {seconds:.1}s (reset {:.1}s{phases}; run{ran_phases}){}",
            match (&error, ok) {
                (Some(_), _) => "ERROR",
                (None, true) => "held",
                (None, false) => "FAILED",
            },
            reset.as_secs_f64(),
            failures
                .iter()
                .map(|f| format!("\n      {}: {}", f.checker, f.summary))
                .chain(error.iter().map(|e| format!("\n      {e}")))
                .collect::<String>()
        ));
        let reproducer = if !ok && error.is_none() && options.shrink {
            let shrinking = ShrinkRun {
                system,
                table,
                name: &name,
                id: &experiment.id,
                seed,
                dir: &out.join("shrink"),
                checkers: failures.iter().map(|f| f.checker.clone()).collect(),
                progress,
                last_failed: std::cell::Cell::new(true),
            };
            let reproducer = shrinking
                .run(stack, candidate, options.shrink_runs, out, interrupt)
                .await?;
            exploration.shrink_seconds += reproducer.seconds;
            if reproducer.file.is_some() && exploration.first_reproducer_seconds.is_none() {
                exploration.first_reproducer_seconds =
                    Some(exploration.experiment_seconds + exploration.shrink_seconds);
            }
            Some(reproducer)
        } else {
            None
        };
        exploration.experiments.push(Tried {
            number,
            experiment,
            ok,
            failures,
            error,
            report,
            reset_seconds: reset.as_secs_f64(),
            reset_phases,
            run_phases,
            seconds,
            revealed,
            reproducer,
        });
        exploration.space.run = exploration.experiments.len();
        exploration.per_minute =
            exploration.experiments.len() as f64 / (exploration.experiment_seconds / 60.0).max(1e-9);
        save(&exploration, out)?;
        ran += 1;
    }
    save(&exploration, out)?;
    Ok(exploration)
}

/// A run's phases, in order: the steady state before the faults, the load (faults inside),
/// healing and settling, the steady state after, the checkers.
pub const RUN_PHASES: [&str; 5] = ["before", "load", "settle", "after", "checking"];

/// A run's phases as an experiment records them: seconds by name.
fn run_phases_of(timings: &runner::RunTimings) -> BTreeMap<String, f64> {
    [
        timings.steady_state_before_ms,
        timings.load_ms,
        timings.heal_and_settle_ms,
        timings.steady_state_after_ms,
        timings.checking_ms,
    ]
    .into_iter()
    .zip(RUN_PHASES)
    .map(|(ms, phase)| (phase.to_string(), ms as f64 / 1000.0))
    .collect()
}

/// How many runs of a reduction (and of the failure itself, first) must all fail for it to
/// count: "fails on 3 reruns of 3".
pub const RERUNS: usize = 3;

/// The verdicts that failed in `outcome`, as the exploration keeps them (an unhealed fault
/// is one).
fn failures_of(outcome: &runner::RunOutcome) -> Vec<Failure> {
    let mut failures: Vec<Failure> = outcome
        .failures()
        .map(|v| Failure {
            checker: v.checker.clone(),
            summary: v.summary.clone(),
            counterexamples: v
                .counterexamples
                .iter()
                .take(5)
                .map(|c| c.description.clone())
                .collect(),
        })
        .collect();
    failures.extend(outcome.unhealed.iter().map(|u| Failure {
        checker: "fault healed".into(),
        summary: u.clone(),
        counterexamples: Vec::new(),
    }));
    failures
}

/// Resets the stack and runs `candidate` as scenario `name`; the reset's time and the outcome.
#[allow(clippy::too_many_arguments)]
async fn run_candidate<I: Future<Output = ()> + Unpin>(
    stack: &mut Stack,
    system: &System,
    table: &toml::Table,
    name: &str,
    description: &str,
    candidate: &Candidate,
    seed: u64,
    runs_dir: &Path,
    after_failure: bool,
    interrupt: &mut I,
) -> Result<(Duration, runner::RunOutcome), RunError> {
    let scenario = scenario_text(table, name, description, candidate)
        .and_then(|text| Scenario::parse(name, system.vocabulary(), &text).map_err(|e| e.to_string()))
        .map_err(|message| RunError::Setup {
            action: format!("writing the scenario {name}"),
            message,
        })?;
    // A run that failed may have left a process stuck in a way its readiness does not show:
    // the next run starts from restarted services, however the description resets.
    let reset = if after_failure {
        stack.fresh_reset().await?
    } else {
        stack.reset().await?
    };
    let quiet = |_: &str| {};
    let outcome =
        runner::run_on_stack_until(stack, &scenario, Some(seed), runs_dir, interrupt, &quiet).await?;
    Ok((reset, outcome))
}

/// A failing experiment made into a reproducer: confirmed, shrunk, written as a scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reproducer {
    /// Of [`RERUNS`] reruns of the failing experiment as it was, how many failed the same way
    /// (at least one of its failing checkers failed again). Shrunk only when all did.
    pub confirmed: usize,
    /// The scenario file `faultline chaos run` replays (absent when not confirmed).
    pub file: Option<PathBuf>,
    /// A failing run of it, for its report.
    pub report: Option<PathBuf>,
    /// The reductions kept, in order.
    pub steps: Vec<String>,
    /// The reproducer's size: operations, load, faults.
    pub candidate: Candidate,
    /// Runs spent confirming and shrinking.
    pub runs: usize,
    /// The shrinking's run budget ran out before every reduction was tried.
    pub exhausted_budget: bool,
    pub seconds: f64,
}

/// What shrinking one failure needs besides the stack.
struct ShrinkRun<'a> {
    system: &'a System,
    table: &'a toml::Table,
    /// The experiment's scenario name.
    name: &'a str,
    id: &'a str,
    seed: u64,
    dir: &'a Path,
    /// Its failing checkers: a run "fails the same way" when one of them fails again.
    checkers: Vec<String>,
    progress: &'a (dyn Fn(&str) + Sync),
    /// Whether the last run on the stack failed (the experiment's own did).
    last_failed: std::cell::Cell<bool>,
}

impl ShrinkRun<'_> {
    /// Whether `candidate` failed the same way, and its report folder.
    async fn fails<I: Future<Output = ()> + Unpin>(
        &self,
        stack: &mut Stack,
        candidate: &Candidate,
        run: usize,
        interrupt: &mut I,
    ) -> Result<(bool, Option<PathBuf>), ExploreError> {
        let name = format!("{}-s{run:02}", self.name);
        let description = format!("Shrinking: {}", self.id);
        let result = run_candidate(
            stack,
            self.system,
            self.table,
            &name,
            &description,
            candidate,
            self.seed,
            self.dir,
            self.last_failed.get(),
            interrupt,
        )
        .await;
        match result {
            Ok((_, outcome)) => {
                let failures = failures_of(&outcome);
                self.last_failed.set(!failures.is_empty());
                let same = failures.iter().any(|f| self.checkers.contains(&f.checker));
                Ok((same, Some(outcome.out_dir)))
            }
            Err(error @ (RunError::Interrupted { .. } | RunError::Stack(_))) => Err(error.into()),
            Err(_) => {
                self.last_failed.set(true);
                Ok((false, None))
            }
        }
    }

    /// Confirms the failure with [`RERUNS`] reruns, shrinks it within `max_runs` runs, and
    /// writes the reproducer into `out/reproducers/`.
    async fn run<I: Future<Output = ()> + Unpin>(
        &self,
        stack: &mut Stack,
        start: Candidate,
        max_runs: usize,
        out: &Path,
        interrupt: &mut I,
    ) -> Result<Reproducer, ExploreError> {
        let clock = Instant::now();
        let mut runs = 0;
        let mut confirmed = 0;
        let mut report = None;
        for _ in 0..RERUNS {
            runs += 1;
            let (failed, folder) = self.fails(stack, &start, runs, interrupt).await?;
            if !failed {
                break;
            }
            confirmed += 1;
            report = folder;
        }
        (self.progress)(&format!("    confirmed: failed {confirmed} of {RERUNS} reruns"));
        if confirmed < RERUNS {
            return Ok(Reproducer {
                confirmed,
                file: None,
                report,
                steps: Vec::new(),
                candidate: start,
                runs,
                exhausted_budget: false,
                seconds: clock.elapsed().as_secs_f64(),
            });
        }
        let mut shrinker = Shrinker::new(start, RERUNS, max_runs);
        while let Some(candidate) = shrinker.next() {
            runs += 1;
            let (failed, folder) = self.fails(stack, &candidate, runs, interrupt).await?;
            if failed {
                report = folder;
            }
            let kept = shrinker.steps_taken();
            shrinker.record(failed);
            if shrinker.steps_taken() > kept {
                (self.progress)(&format!(
                    "    shrunk: {} ({} run(s) so far)",
                    shrinker.last_step().unwrap_or_default(),
                    shrinker.runs()
                ));
            }
        }
        let shrunk = shrinker.finish();
        let stem = format!("{}-min", self.name);
        let dir = out.join("reproducers");
        let description = format!(
            "Reproducer of {} (shrunk by faultline chaos explore: {}); fails {}.",
            self.id,
            if shrunk.steps.is_empty() {
                "nothing smaller failed".to_string()
            } else {
                shrunk.steps.join("; ")
            },
            self.checkers.join(", ")
        );
        let text = scenario_text(self.table, &stem, &description, &shrunk.candidate).map_err(|message| {
            RunError::Setup {
                action: format!("writing the reproducer {stem}"),
                message,
            }
        })?;
        std::fs::create_dir_all(&dir).map_err(|source| RunError::Write {
            path: dir.clone(),
            source,
        })?;
        let file = dir.join(format!("{stem}.toml"));
        std::fs::write(&file, text).map_err(|source| RunError::Write {
            path: file.clone(),
            source,
        })?;
        (self.progress)(&format!("    reproducer: {}", file.display()));
        Ok(Reproducer {
            confirmed,
            file: Some(file),
            report,
            steps: shrunk.steps,
            candidate: shrunk.candidate,
            runs,
            exhausted_budget: shrunk.exhausted_budget,
            seconds: clock.elapsed().as_secs_f64(),
        })
    }
}

/// The fault-free run: which call sites and consumers the workload exercises.
async fn discover<I: Future<Output = ()> + Unpin>(
    stack: &mut Stack,
    system: &System,
    base: &Scenario,
    seed: u64,
    out: &Path,
    interrupt: &mut I,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Discovery, ExploreError> {
    let clock = Instant::now();
    let mut plain = base.clone();
    plain.faults.clear();
    plain.expectations.circuits.clear();
    plain.expectations.slo = None;
    plain.name = format!("{}-discovery", base.name);
    plain.expectations.blast_radius.measure = true;
    progress(&format!("discovery: {} with no fault", base.name));
    stack.forget_call_sites();
    let outcome =
        runner::run_on_stack_until(stack, &plain, Some(seed), &out.join("runs"), interrupt, progress)
            .await?;
    let call_sites = stack.call_sites();
    let base_failures = failures_of(&outcome);
    if !base_failures.is_empty() {
        return Ok(Discovery {
            report: Some(outcome.out_dir),
            seconds: clock.elapsed().as_secs_f64(),
            call_sites,
            footprints: outcome.footprints,
            base_failures,
            ..Discovery::default()
        });
    }
    let services: BTreeSet<&str> = system.start_order().into_iter().collect();
    let mut consumers = Vec::new();
    let mut unmatched_groups = Vec::new();
    for (group, topics) in stack.consumer_groups().await.map_err(RunError::from)? {
        if services.contains(group.as_str()) {
            consumers.push(Consumer {
                service: group.clone(),
                group,
                topics,
            });
        } else {
            unmatched_groups.push(group);
        }
    }
    Ok(Discovery {
        report: Some(outcome.out_dir),
        seconds: clock.elapsed().as_secs_f64(),
        call_sites,
        footprints: outcome.footprints,
        baseline: outcome
            .baseline
            .map(|b| b.into_iter().map(|(op, figures)| (op, figures.into())).collect()),
        consumers,
        unmatched_groups,
        base_failures,
    })
}

/// The exploration saved in `path`, if there is one.
fn load(path: &Path) -> Result<Option<Exploration>, ExploreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ExploreError::State {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    let state: Exploration = serde_json::from_str(&text).map_err(|e| ExploreError::State {
        path: path.to_path_buf(),
        message: format!("not an exploration this faultline can resume ({e}); pass --fresh"),
    })?;
    if state.version != EXPLORE_VERSION {
        return Err(ExploreError::State {
            path: path.to_path_buf(),
            message: format!(
                "version {} where {EXPLORE_VERSION} was expected; pass --fresh",
                state.version
            ),
        });
    }
    Ok(Some(state))
}

/// Writes `explore.json` (whole, through a temporary file), `explore.html` and `junit.xml`.
fn save(exploration: &Exploration, out: &Path) -> Result<(), ExploreError> {
    let write = |name: &str, text: String| -> Result<(), ExploreError> {
        let path = out.join(name);
        let partial = out.join(format!(".{name}.partial"));
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|source| RunError::Write { path, source }.into())
    };
    let json = serde_json::to_string_pretty(exploration).expect("an exploration serializes");
    write("explore.json", json)?;
    write("explore.html", html(exploration))?;
    write("junit.xml", junit(exploration))
}

/// The state of one cell of the grid: what each experiment of this kind at this place did.
fn cells(exploration: &Exploration) -> BTreeMap<(Place, Kind), (usize, usize)> {
    let mut grid: BTreeMap<(Place, Kind), (usize, usize)> = BTreeMap::new();
    for tried in &exploration.experiments {
        for fault in &tried.experiment.faults {
            let cell = grid.entry((fault.place.clone(), fault.kind)).or_default();
            cell.0 += 1;
            if !tried.ok {
                cell.1 += 1;
            }
        }
    }
    grid
}

fn escape(text: &str) -> String {
    crate::report::html::escape(text)
}

/// `explore.html`: the fault space as a grid (places × kinds; a cell is green when every
/// experiment with that fault held, red when one failed, grey when none ran), then each
/// failure with its counterexamples and report. Self-contained, like the run reports.
pub fn html(exploration: &Exploration) -> String {
    let grid = cells(exploration);
    let mut places: Vec<Place> = exploration
        .discovery
        .call_sites
        .iter()
        .map(|s| s.to_string())
        .collect();
    for consumer in &exploration.discovery.consumers {
        for topic in &consumer.topics {
            places.push(format!("{} {}/{topic}", consumer.service, consumer.group));
        }
    }
    for tried in &exploration.experiments {
        for fault in &tried.experiment.faults {
            if !places.contains(&fault.place) {
                places.push(fault.place.clone());
            }
        }
    }
    let kinds: Vec<Kind> = Kind::AT_CALL_SITES
        .iter()
        .copied()
        .chain([Kind::Redeliver])
        .collect();
    let failed = exploration.failed().count();
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>exploration of {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}\
         .held{{background:#c8e6c9}}.failed{{background:#ef9a9a}}.none{{background:#eee;color:#999}}\
         code{{font-size:12px}}</style></head><body>\
         <h1>Exploration of {name}</h1><p>System <b>{system}</b>, seed {seed}. {run} experiment(s) run \
         of {total} generated ({singles} single, {combos} combination(s), {skipped} skipped as covered); \
         <b>{failed} failed</b>. {per_minute:.1} experiments per minute{first}. Stopped: {stopped}.</p>",
        name = escape(&exploration.scenario),
        system = escape(&exploration.system),
        seed = exploration.seed,
        run = exploration.experiments.len(),
        total = exploration.experiments.len() + exploration.pending.len(),
        singles = exploration.space.singles,
        combos = exploration.space.combinations,
        skipped = exploration.space.skipped_covered,
        per_minute = exploration.per_minute,
        first = exploration
            .first_failure_seconds
            .map(|s| format!("; first failure after {s:.0} s"))
            .unwrap_or_default(),
        stopped = exploration
            .stopped
            .map(|s| format!("{s:?}").to_lowercase())
            .unwrap_or_else(|| "running".into()),
    );
    if !exploration.discovery.base_failures.is_empty() {
        page.push_str(
            "<h2>The fault-free run did not hold</h2><p>Exploring a system that fails without \
             a fault finds nothing new: nothing was explored.</p><ul>",
        );
        push_failures(&mut page, &exploration.discovery.base_failures);
        page.push_str("</ul>");
        if let Some(report) = &exploration.discovery.report {
            let _ = write!(
                page,
                "<p>Report: <code>{}</code></p>",
                escape(&report.join("report.html").display().to_string())
            );
        }
    }
    page.push_str("<h2>The fault space</h2><table><tr><th>where</th>");
    for kind in &kinds {
        let _ = write!(page, "<th>{}</th>", kind.name());
    }
    page.push_str("</tr>");
    for place in &places {
        let _ = write!(page, "<tr><td><code>{}</code></td>", escape(place));
        for kind in &kinds {
            let (class, text) = match grid.get(&(place.clone(), *kind)) {
                None => ("none", "·".to_string()),
                Some((runs, 0)) => ("held", format!("{runs}")),
                Some((runs, failed)) => ("failed", format!("{failed}/{runs}")),
            };
            let _ = write!(page, "<td class=\"{class}\">{text}</td>");
        }
        page.push_str("</tr>");
    }
    page.push_str("</table><p>A cell counts the experiments with that fault (failed/run).</p>");
    page.push_str("<h2>Failures</h2>");
    if failed == 0 {
        page.push_str("<p>None.</p>");
    }
    for tried in exploration.failed() {
        let _ = write!(
            page,
            "<h3>#{} {}</h3><ul>",
            tried.number,
            escape(&tried.experiment.id)
        );
        push_failures(&mut page, &tried.failures);
        page.push_str("</ul>");
        if let Some(report) = &tried.report {
            let _ = write!(
                page,
                "<p>Report: <code>{}</code></p>",
                escape(&report.join("report.html").display().to_string())
            );
        }
        if let Some(reproducer) = &tried.reproducer {
            match &reproducer.file {
                Some(file) => {
                    let _ = write!(
                        page,
                        "<p>Reproducer (failed {} of {RERUNS} reruns; {} run(s) shrinking it): \
                         <code>faultline chaos run {}</code></p><ul>",
                        reproducer.confirmed,
                        reproducer.runs,
                        escape(&file.display().to_string())
                    );
                    for step in &reproducer.steps {
                        let _ = write!(page, "<li>{}</li>", escape(step));
                    }
                    page.push_str("</ul>");
                }
                None => {
                    let _ = write!(
                        page,
                        "<p>Not confirmed: failed {} of {RERUNS} reruns, so not shrunk (flaky).</p>",
                        reproducer.confirmed
                    );
                }
            }
        }
    }
    page.push_str("</body></html>\n");
    page
}

/// Each failure as a list item with its counterexamples.
fn push_failures(page: &mut String, failures: &[Failure]) {
    for failure in failures {
        let _ = write!(
            page,
            "<li><b>{}</b>: {}",
            escape(&failure.checker),
            escape(&failure.summary)
        );
        if !failure.counterexamples.is_empty() {
            page.push_str("<ul>");
            for example in &failure.counterexamples {
                let _ = write!(page, "<li>{}</li>", escape(example));
            }
            page.push_str("</ul>");
        }
        page.push_str("</li>");
    }
}

/// The failures as a JUnit failure's message (the checkers) and body (each with its
/// counterexamples).
fn failure_text(failures: &[Failure]) -> (String, String) {
    let mut body = String::new();
    for failure in failures {
        let _ = writeln!(body, "{}: {}", failure.checker, failure.summary);
        for example in &failure.counterexamples {
            let _ = writeln!(body, "  - {example}");
        }
    }
    let message = failures.iter().map(|f| f.checker.as_str()).collect::<Vec<_>>().join(", ");
    (message, body)
}

/// `junit.xml`: one test case per experiment run; a fault-free run that did not hold is a
/// failed test case of its own.
pub fn junit(exploration: &Exploration) -> String {
    let suite = format!("explore.{}", exploration.scenario);
    let base_failed = usize::from(!exploration.discovery.base_failures.is_empty());
    let tests = exploration.experiments.len() + base_failed;
    let failures = exploration.failed().count() + base_failed;
    let errors = exploration
        .experiments
        .iter()
        .filter(|t| t.error.is_some())
        .count();
    let seconds = exploration.experiment_seconds;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"faultline\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{seconds:.3}\">"
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{seconds:.3}\">",
        escape(&suite)
    );
    if !exploration.discovery.base_failures.is_empty() {
        let (message, body) = failure_text(&exploration.discovery.base_failures);
        let _ = writeln!(
            xml,
            "    <testcase classname=\"{}\" name=\"discovery: the fault-free run\" time=\"{:.3}\"><failure message=\"{}\">{}</failure></testcase>",
            escape(&suite),
            exploration.discovery.seconds,
            escape(&message),
            escape(&body)
        );
    }
    for tried in &exploration.experiments {
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&suite),
            escape(&tried.experiment.id),
            tried.seconds
        );
        if let Some(error) = &tried.error {
            let _ = writeln!(
                xml,
                "><error message=\"{}\"/></testcase>",
                escape(error)
            );
        } else if tried.ok {
            xml.push_str("/>\n");
        } else {
            let (message, body) = failure_text(&tried.failures);
            let _ = writeln!(
                xml,
                "><failure message=\"{}\">{}</failure></testcase>",
                escape(&message),
                escape(&body)
            );
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_chaos::scenario::ProbeCheck;

    fn site(link: &str, method: &str, route: &str) -> CallSite {
        CallSite {
            link: link.into(),
            method: method.into(),
            route: route.into(),
            count: 3,
        }
    }

    fn timing() -> Timing {
        Timing {
            window: Window::of_load(Duration::from_secs(8)),
            delay: None,
            timeouts: BTreeMap::new(),
            gives_up: Vec::new(),
        }
    }

    #[test]
    fn every_kind_at_every_site_and_a_redelivery_per_consumed_topic_is_one_single() {
        let sites = [
            site("order->payment", "POST", "/payments/charges"),
            site("gateway->order", "GET", "/orders/*"),
        ];
        let consumers = [Consumer {
            service: "notification".into(),
            group: "notification".into(),
            topics: vec!["orders".into()],
        }];
        let experiments = singles(&sites, &consumers, &timing(), 7);
        assert_eq!(experiments.len(), 2 * Kind::AT_CALL_SITES.len() + 1);
        let ids: BTreeSet<&str> = experiments.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), experiments.len(), "no experiment twice");
        assert!(ids.contains("drop-answer@order->payment POST /payments/charges"));
        assert!(ids.contains("kill-callee-sent@gateway->order GET /orders/*"));
        assert!(ids.contains("redeliver@notification notification/orders"));
        // The order is the seed's: the same seed, the same order; another, another.
        assert_eq!(experiments, singles(&sites, &consumers, &timing(), 7));
        assert_ne!(experiments, singles(&sites, &consumers, &timing(), 8));
    }

    #[test]
    fn each_kind_is_written_in_json_as_its_name() {
        for kind in Kind::AT_CALL_SITES.iter().chain([&Kind::Redeliver]) {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
    }

    #[test]
    fn a_fault_is_written_as_a_scenario_says_it() {
        let fault = site_fault(
            Kind::KillCallerAnswered,
            &site("order->payment", "POST", "/payments/charges"),
            &timing(),
        );
        assert_eq!(
            fault.fault,
            serde_json::json!({
                "start": "2000ms", "duration": "4000ms", "target": "order->payment",
                "kind": "request", "method": "POST", "path": "/payments/charges",
                "action": "kill", "service": "order", "when": "answered", "nth": 1,
            })
        );
        let delay = site_fault(
            Kind::Delay,
            &site("order->payment", "POST", "/payments/charges"),
            &Timing { delay: Some(Duration::from_millis(4500)), ..timing() },
        );
        assert_eq!(delay.fault["delay"], "4500ms");
        let empty_502 = site_fault(
            Kind::Status502,
            &site("order->payment", "POST", "/payments/charges"),
            &timing(),
        );
        assert_eq!((&empty_502.fault["status"], &empty_502.fault["body"]), (&serde_json::json!(502), &serde_json::json!("")));
    }

    #[test]
    fn faults_that_fail_calls_outlast_the_stated_give_up_and_a_delay_outlasts_stated_timeouts() {
        let timing = Timing {
            timeouts: BTreeMap::from([
                ("order->payment".to_string(), Duration::from_secs(1)),
                ("payment->bank".to_string(), Duration::from_secs(9)),
            ]),
            gives_up: vec![("order->payment".into(), Some("POST /payments/charges".into()), Duration::from_secs(20))],
            ..timing()
        };
        let charges = site("order->payment", "POST", "/payments/charges");
        let refunds = site("order->payment", "POST", "/payments/*/refund");
        let stretched = Window { start: Duration::from_secs(2), duration: Duration::from_secs(22) };
        for kind in [Kind::Status503, Kind::DropAnswer, Kind::Delay, Kind::Hold] {
            assert_eq!(timing.window_at(kind, &charges), stretched, "{kind:?}");
        }
        // One kind of each way a call fails is stretched; a kill acts once and a duplicate
        // fails nothing; and a give-up said of some calls leaves the link's others alone.
        for kind in [Kind::Status500, Kind::Status504, Kind::Reset, Kind::Duplicate, Kind::KillCallerSent] {
            assert_eq!(timing.window_at(kind, &charges), timing.window, "{kind:?}");
        }
        assert_eq!(timing.window_at(Kind::Hold, &refunds), timing.window);
        let whole_link = Timing {
            gives_up: vec![("order->payment".into(), None, Duration::from_secs(20))],
            ..timing.clone()
        };
        assert_eq!(whole_link.window_at(Kind::Hold, &refunds), stretched);
        // Shorter than the default window: nothing to stretch.
        let quick = Timing { gives_up: vec![("order->payment".into(), None, Duration::from_secs(1))], ..timing.clone() };
        assert_eq!(quick.window_at(Kind::Hold, &charges), timing.window);

        // Past the callee's own 9 s timeout; past nothing stated, the least delay.
        assert_eq!(timing.delay_at(&charges), Duration::from_secs(11));
        assert_eq!(timing.delay_at(&site("gateway->order", "POST", "/orders")), Timing::DELAY);
        let set = Timing { delay: Some(Duration::from_secs(3)), ..timing.clone() };
        assert_eq!(set.delay_at(&charges), Duration::from_secs(3));

        // The experiment's load covers the stretched window and a quarter of the base's after
        // it, at the base's pace.
        let base: toml::Table = toml::from_str(BASE).unwrap();
        let hold = Experiment::of(vec![site_fault(Kind::Hold, &charges, &timing)]);
        let candidate = hold.candidate(&base, Duration::from_secs(8));
        assert_eq!(candidate.load, Duration::from_secs(26));
        assert_eq!(candidate.requests, Some(33));
        let plain = Experiment::of(vec![site_fault(Kind::Hold, &refunds, &timing)]);
        assert_eq!(plain.candidate(&base, Duration::from_secs(8)).load, Duration::from_secs(8));
    }

    #[test]
    fn a_combination_adds_each_request_fault_at_each_revealed_site() {
        let single = Experiment::of(vec![site_fault(
            Kind::Status503,
            &site("order->payment", "POST", "/payments/charges"),
            &timing(),
        )]);
        let revealed = [site("order->inventory", "POST", "/reservations/*/release")];
        let combos = combinations(&single, &revealed, &timing());
        assert_eq!(combos.len(), Kind::REQUEST_ONLY.len());
        assert!(combos.iter().all(|c| c.faults.len() == 2 && c.faults[0] == single.faults[0]));
        assert_eq!(
            combos[5].id,
            "status-503@order->payment POST /payments/charges + drop-answer@order->inventory POST /reservations/*/release"
        );
    }

    const BASE: &str = r#"
name = "base"
description = "d"
seed = 3
[workload]
requests = 10
duration = "8s"
[[workload.operations]]
name = "place"
service = "gateway"
method = "POST"
path = "/orders"
[[faults]]
start = "1s"
duration = "2s"
target = "order->payment"
kind = "partition"
[expectations]
invariants = []
[[expectations.circuits]]
link = "order->payment"
[expectations.slo]
p99_latency = "1s"
"#;

    #[test]
    fn an_experiments_scenario_is_the_base_with_its_faults_and_a_liveness_probe() {
        let base: toml::Table = toml::from_str(BASE).unwrap();
        let experiment = Experiment::of(vec![site_fault(
            Kind::DropAnswer,
            &site("order->payment", "POST", "/payments/charges"),
            &timing(),
        )]);
        let candidate = experiment.candidate(&base, Duration::from_secs(8));
        assert_eq!(candidate.requests, Some(10));
        let text = scenario_text(&base, "base-x001", "d", &candidate).unwrap();
        let scenario = Scenario::parse(
            "base-x001",
            &crate::checkers::fixtures::shop(),
            &text,
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(scenario.name, "base-x001");
        assert_eq!(scenario.faults.len(), 1);
        assert_eq!(scenario.faults[0].start, Duration::from_secs(2));
        assert!(matches!(
            scenario.faults[0].kind,
            faultline_chaos::scenario::FaultKind::Request(_)
        ));
        assert!(scenario.expectations.circuits.is_empty());
        assert!(scenario.expectations.slo.is_none());
        assert!(scenario.expectations.invariants.is_empty());
        let rates: Vec<_> = scenario
            .steady_state
            .iter()
            .filter(|p| matches!(p.check, ProbeCheck::SuccessRate { .. }))
            .collect();
        assert_eq!(rates.len(), 1);
        assert_eq!(rates[0].name, LIVENESS.0);
        assert_eq!(rates[0].within, Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_base_with_its_own_success_rate_probe_keeps_it_alone() {
        let mut base: toml::Table = toml::from_str(BASE).unwrap();
        let own: toml::Table = toml::from_str(
            "[[steady_state.probes]]\nname = \"own\"\nprobe = \"success_rate\"\nmin = 0.5\n",
        )
        .unwrap();
        base.extend(own);
        let experiment = Experiment::of(vec![site_fault(
            Kind::Hold,
            &site("order->payment", "POST", "/payments/charges"),
            &timing(),
        )]);
        let candidate = experiment.candidate(&base, Duration::from_secs(8));
        let text = scenario_text(&base, "base-x002", "d", &candidate).unwrap();
        let scenario =
            Scenario::parse("base-x002", &crate::checkers::fixtures::shop(), &text).unwrap();
        let names: Vec<_> = scenario.steady_state.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["own"]);
    }

    #[test]
    fn the_grid_marks_each_fault_held_or_failed_and_junit_has_a_case_per_experiment() {
        let charges = site("order->payment", "POST", "/payments/charges");
        let experiment = |kind| Experiment::of(vec![site_fault(kind, &charges, &timing())]);
        let tried = |number, experiment: Experiment, ok: bool| Tried {
            number,
            experiment,
            ok,
            failures: if ok {
                Vec::new()
            } else {
                vec![Failure {
                    checker: "charged-at-most-once".into(),
                    summary: "1 order charged twice".into(),
                    counterexamples: vec!["order o-1 <charged> twice".into()],
                }]
            },
            error: None,
            report: None,
            reset_seconds: 1.0,
            reset_phases: BTreeMap::from([("databases".to_string(), 0.5)]),
            run_phases: BTreeMap::from([("load".to_string(), 8.0)]),
            seconds: 9.0,
            revealed: Vec::new(),
            reproducer: (!ok).then(|| Reproducer {
                confirmed: 3,
                file: Some("reproducers/base-x002-min.toml".into()),
                report: None,
                steps: vec!["requests 16 -> 8".into()],
                candidate: Candidate {
                    requests: Some(8),
                    load: Duration::from_secs(8),
                    faults: Vec::new(),
                },
                runs: 7,
                exhausted_budget: false,
                seconds: 70.0,
            }),
        };
        let exploration = Exploration {
            version: EXPLORE_VERSION,
            system: "shop".into(),
            scenario: "base".into(),
            file: "base.toml".into(),
            seed: 1,
            delay_ms: 5000,
            discovery: Discovery {
                call_sites: vec![charges.clone()],
                ..Discovery::default()
            },
            space: Space::default(),
            experiments: vec![
                tried(1, experiment(Kind::Reset), true),
                tried(2, experiment(Kind::DropAnswer), false),
            ],
            pending: vec![experiment(Kind::Hold)],
            stopped: Some(Stopped::Budget),
            experiment_seconds: 18.0,
            shrink_seconds: 70.0,
            per_minute: 6.6,
            first_failure_seconds: Some(18.0),
            first_reproducer_seconds: Some(88.0),
        };
        let page = html(&exploration);
        assert!(page.contains("<td class=\"held\">1</td>"), "{page}");
        assert!(page.contains("<td class=\"failed\">1/1</td>"), "{page}");
        assert!(page.contains("order o-1 &lt;charged&gt; twice"), "{page}");
        assert!(page.contains("faultline chaos run reproducers/base-x002-min.toml"), "{page}");
        let xml = junit(&exploration);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 2);
        // The state matches its schema and reads back as it was written.
        let value = serde_json::to_value(&exploration).unwrap();
        assert_eq!(schema_problems(&value), Vec::<String>::new());
        let json = serde_json::to_string(&exploration).unwrap();
        let back: Exploration = serde_json::from_str(&json).unwrap();
        assert_eq!(back.experiments[1].experiment, exploration.experiments[1].experiment);
        assert_eq!(back.pending, exploration.pending);
    }
}
