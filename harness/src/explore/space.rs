//! The fault space: the kinds of fault, where each acts, when (the [`Timing`] of each call
//! site), and each experiment as a scenario of the base. No I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::intercept::CallSite;
use crate::system::System;

use super::shrink::Candidate;

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
    /// Forwarded after a delay (past the caller's timeout: see [`Timing::delay_at`]), also
    /// when the caller gave up meanwhile.
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
    /// A statement fails with SQLSTATE 40001 (serialization failure), raised by the server
    /// in its place: its transaction aborted, a `COMMIT` rolled back.
    #[serde(rename = "sql-error")]
    SqlError,
    /// A statement runs; its answer is lost (a `COMMIT` applied, the service never hears).
    #[serde(rename = "sql-drop-answer")]
    SqlDropAnswer,
    /// A statement sent to the server late ([`Timing::STATEMENT_DELAY`]).
    #[serde(rename = "sql-delay")]
    SqlDelay,
    /// A produce or offset commit answered with a broker error in the broker's place
    /// (`NOT_LEADER_OR_FOLLOWER`, `REBALANCE_IN_PROGRESS`): not appended, not stored.
    #[serde(rename = "kafka-error")]
    KafkaError,
    /// A produce or offset commit carried out; its answer is lost (the client's connection
    /// cut).
    #[serde(rename = "kafka-drop-answer")]
    KafkaDropAnswer,
    /// The client killed right as it sends its first produce or offset commit here, which
    /// never reaches the broker.
    #[serde(rename = "kafka-kill-sent")]
    KafkaKillSent,
    /// The client killed right after the broker answered its first produce or offset commit
    /// here, before it hears.
    #[serde(rename = "kafka-kill-answered")]
    KafkaKillAnswered,
    /// A consumer's fetches held until the fault heals: a backlog builds.
    #[serde(rename = "kafka-hold")]
    KafkaHold,
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

    /// The kinds tried at every statement of a service's conversation with Postgres
    /// (`chaos explore --statements`).
    pub const AT_STATEMENTS: [Kind; 3] = [Kind::SqlError, Kind::SqlDropAnswer, Kind::SqlDelay];

    /// The kinds tried at every produce and offset commit of a service's conversation with
    /// Kafka (`chaos explore --broker-requests`).
    pub const AT_BROKER_WRITES: [Kind; 4] =
        [Kind::KafkaError, Kind::KafkaDropAnswer, Kind::KafkaKillSent, Kind::KafkaKillAnswered];
    /// The kinds tried at every fetch.
    pub const AT_FETCHES: [Kind; 1] = [Kind::KafkaHold];

    /// The kinds tried at `site`: statement kinds at a statement (method `SQL`), broker kinds
    /// at a broker request (method `KAFKA`), the others at an HTTP call site.
    pub fn at(site: &CallSite) -> &'static [Kind] {
        if site.method == STATEMENT {
            &Self::AT_STATEMENTS
        } else if site.method == BROKER && site.route.starts_with("fetch ") {
            &Self::AT_FETCHES
        } else if site.method == BROKER {
            &Self::AT_BROKER_WRITES
        } else {
            &Self::AT_CALL_SITES
        }
    }

    /// The kinds that act on requests only (no process is stopped): the ones combined with a
    /// site revealed under another fault. The first of [`Self::AT_CALL_SITES`], before the kills.
    pub const REQUEST_ONLY: &[Kind] = Self::AT_CALL_SITES.split_at(9).0;

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
            Kind::SqlError => "sql-error",
            Kind::SqlDropAnswer => "sql-drop-answer",
            Kind::SqlDelay => "sql-delay",
            Kind::KafkaError => "kafka-error",
            Kind::KafkaDropAnswer => "kafka-drop-answer",
            Kind::KafkaKillSent => "kafka-kill-sent",
            Kind::KafkaKillAnswered => "kafka-kill-answered",
            Kind::KafkaHold => "kafka-hold",
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

/// The method of a call site that is a statement to Postgres, its route the statement's
/// fingerprint (as [`crate::intercept::postgres::StatementProxy::sites`] gives them).
pub const STATEMENT: &str = "SQL";

/// The method of a call site that is a request to Kafka, its route the request and what it
/// names — `produce orders`, `fetch orders`, `offset_commit notification` (as
/// [`crate::intercept::kafka::BrokerProxy::sites`] gives them).
pub const BROKER: &str = "KAFKA";

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

    pub(crate) fn of(faults: Vec<PlannedFault>) -> Self {
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
    /// How late a `sql-delay` sends each statement: longer than a database call takes on a
    /// busy machine, short of the usual pool and statement timeouts.
    pub const STATEMENT_DELAY: Duration = Duration::from_secs(2);

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
    let at = |key: &str| faultline_chaos::scenario::fields::parse_duration(fault.get(key)?.as_str()?);
    Some(at("start")? + at("duration")?)
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The fault of `kind` at `site`: its table, `common` with `extra`'s fields added.
fn planned(kind: Kind, site: &CallSite, mut common: Value, extra: Value) -> PlannedFault {
    for (key, value) in extra.as_object().expect("an object") {
        common[key] = value.clone();
    }
    PlannedFault {
        kind,
        place: site.to_string(),
        fault: common,
    }
}

/// The `[[faults]]` table of statement kind `kind` at the statement `site`, in the default
/// window.
fn statement_fault(kind: Kind, site: &CallSite, timing: &Timing) -> PlannedFault {
    let window = timing.window;
    let fault = serde_json::json!({
        "start": ms(window.start),
        "duration": ms(window.duration),
        "target": site.link,
        "kind": "statement",
        "fingerprint": site.route,
    });
    let extra = match kind {
        Kind::SqlError => serde_json::json!({"action": "error", "sqlstate": "40001"}),
        Kind::SqlDropAnswer => serde_json::json!({"action": "drop_answer"}),
        Kind::SqlDelay => {
            serde_json::json!({"action": "delay", "delay": ms(Timing::STATEMENT_DELAY)})
        }
        other => unreachable!("{} is not a statement kind", other.name()),
    };
    planned(kind, site, fault, extra)
}

/// The `[[faults]]` table of broker kind `kind` at the broker request `site`, in the default
/// window.
fn broker_fault(kind: Kind, site: &CallSite, timing: &Timing) -> PlannedFault {
    let window = timing.window;
    let (request, name) = site.route.split_once(' ').unwrap_or((&site.route, ""));
    let mut fault = serde_json::json!({
        "start": ms(window.start),
        "duration": ms(window.duration),
        "target": site.link,
        "kind": "kafka",
        "request": request,
    });
    if !name.is_empty() {
        fault[if request == "offset_commit" { "group" } else { "topic" }] = name.into();
    }
    let extra = match kind {
        Kind::KafkaError => serde_json::json!({"action": "error"}),
        Kind::KafkaDropAnswer => serde_json::json!({"action": "drop_answer"}),
        Kind::KafkaKillSent => serde_json::json!({"action": "kill", "when": "sent", "nth": 1}),
        Kind::KafkaKillAnswered => serde_json::json!({"action": "kill", "when": "answered", "nth": 1}),
        Kind::KafkaHold => serde_json::json!({"action": "hold"}),
        other => unreachable!("{} is not a broker kind", other.name()),
    };
    planned(kind, site, fault, extra)
}

/// The `[[faults]]` table of `kind` at call site `site`.
pub fn site_fault(kind: Kind, site: &CallSite, timing: &Timing) -> PlannedFault {
    if Kind::AT_STATEMENTS.contains(&kind) {
        return statement_fault(kind, site, timing);
    }
    if Kind::AT_BROKER_WRITES.contains(&kind) || Kind::AT_FETCHES.contains(&kind) {
        return broker_fault(kind, site, timing);
    }
    let window = timing.window_at(kind, site);
    let delay = timing.delay_at(site);
    let (caller, callee) = site.link.split_once("->").unwrap_or((&site.link, ""));
    let fault = serde_json::json!({
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
        Kind::SqlError
        | Kind::SqlDropAnswer
        | Kind::SqlDelay
        | Kind::KafkaError
        | Kind::KafkaDropAnswer
        | Kind::KafkaKillSent
        | Kind::KafkaKillAnswered
        | Kind::KafkaHold => unreachable!("handled above"),
    };
    planned(kind, site, fault, extra)
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

/// Every single-fault experiment on what discovery saw (HTTP call sites and, when explored,
/// statements), shuffled by `seed`.
pub fn singles(sites: &[CallSite], consumers: &[Consumer], timing: &Timing, seed: u64) -> Vec<Experiment> {
    let mut experiments: Vec<Experiment> = sites
        .iter()
        .flat_map(|site| {
            Kind::at(site)
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
