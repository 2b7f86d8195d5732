//! `explore.json`: what discovery found, each experiment tried and its reproducer, and the
//! exploration's figures; its schema.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::intercept::CallSite;

use super::shrink::Candidate;
use super::space::{Consumer, Experiment};

/// The version of `explore.json`'s format (`harness/schemas/explore-v1.schema.json`).
pub const EXPLORE_VERSION: u32 = 1;

/// The JSON Schema of `explore.json`.
pub const SCHEMA: &str = include_str!("../../schemas/explore-v1.schema.json");

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
    /// The statements of each service's conversation with Postgres, when they are explored
    /// (`--statements`): method `SQL`, the statement's fingerprint as the route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<CallSite>,
    /// The produces, fetches and offset commits of each service's conversation with Kafka,
    /// when they are explored (`--broker-requests`): method `KAFKA`, `produce <topic>`,
    /// `fetch <topic>` or `offset_commit <group>` as the route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broker_requests: Vec<CallSite>,
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

/// How many runs of a reduction (and of the failure itself, first) must all fail for it to
/// count: "fails on 3 reruns of 3".
pub const RERUNS: usize = 3;

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
