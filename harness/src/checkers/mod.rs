//! Checkers: after a chaos run, judge whether the system kept its promises.
//!
//! A checker is one [`Checker`]: given the run as it ended ([`CheckContext`]: the scenario,
//! the [`History`], the running stack and facts the run gathered), it gives a [`Verdict`] with
//! [`Counterexample`]s that name the history events (by index) and the entities a person needs
//! to see the failure. Checkers never inject faults. Every checker a run uses comes from one
//! place, [`Registry::checkers_for`](crate::extension::Registry::checkers_for): the generic
//! ones any described system can use from its scenario —
//! [`sql`] invariants, expected [`circuits`], the [`slo`] — and the named invariants the
//! system's [extension](crate::extension) registers, whose names are also what scenario
//! validation accepts (`expectations.invariants`).
//!
//! ```no_run
//! # async fn demo(run: &faultline_harness::checkers::CheckContext<'_>,
//! #               registry: &faultline_harness::extension::Registry) {
//! for checker in registry.checkers_for(run.scenario) {
//!     let verdict = checker.check(run).await;
//!     println!("{} {}: {}", if verdict.ok { "ok" } else { "FAIL" }, verdict.checker, verdict.summary);
//! }
//! # }
//! ```
//!
//! | checker | judges | file |
//! |---|---|---|
//! | `sql <name>` | a query returns no rows, or two queries agree | [`sql`] |
//! | `kafka <name>` | a topic's records: each identity once, none lost, per-key order | [`kafka`] |
//! | `http <name>` | a service answers a request as expected after the run | [`http`] |
//! | `circuit <link>` | the link's breaker opens / closes as the scenario expects | [`circuits`] |
//! | `slo` | p99 latency and error rate of the workload's calls | [`slo`] |
//! | `answers` | every answer the workload got kept its operation's promise, with and without a fault on | [`answers`] |
//! | `blast-radius` | the operations a fault does not reach kept their fault-free success rate and latency while it was on | [`blast`] |
//! | a registered name | whatever the system's extension says (the reference system's sagas, money, events) | the extension |
//!
//! Layer 3 (run roles) of the harness ([layers](crate#layers)): imports the history, the
//! description and the stack; the registry that picks checkers for a scenario is the
//! [extension](crate::extension)'s, above it.

pub mod answers;
pub mod blast;
pub mod circuits;
pub mod http;
pub mod kafka;
pub mod slo;
pub mod sql;

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_chaos::scenario::{Scenario, Target};
use serde::Serialize;

use crate::history::{History, Op};
use crate::stack::Stack;

pub use circuits::{CircuitRecord, CircuitTransitionRecord, Circuits};

/// A boxed future, as [`Checker`] and [`Workload`](crate::workload::Workload) return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One judge of a finished run.
pub trait Checker: Send + Sync {
    /// The verdict's name: `sql <name>`, `circuit <link>`, `slo`, or a registered invariant.
    fn name(&self) -> String;
    /// Judges the run. A checker that cannot read what it needs fails
    /// ([`Verdict::cannot_judge`]): an invariant that cannot be judged does not pass.
    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict>;
}

/// The run as the checkers see it: healed and settled.
pub struct CheckContext<'a> {
    pub scenario: &'a Scenario,
    pub history: &'a History,
    /// The running system: its databases (directly, not through a proxy) and services.
    pub stack: &'a Stack,
    /// Wall clock (ms since the Unix epoch) when the history's clock read zero.
    pub run_started_unix_ms: u64,
    /// What the run gathered for its checkers.
    pub facts: &'a Facts,
}

/// Facts a run gathers for its checkers and report, one value per type: what the workload
/// set up (the reference system's initial stock), and what one checker read and others reuse
/// (the services' final state is read once, not once per checker).
#[derive(Default)]
pub struct Facts {
    values: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Facts {
    /// Keeps `value`, replacing one of the same type.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) -> Arc<T> {
        let value = Arc::new(value);
        self.values
            .lock()
            .expect("facts lock")
            .insert(TypeId::of::<T>(), value.clone());
        value
    }

    /// The value of type `T`, if one was kept.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let value = self
            .values
            .lock()
            .expect("facts lock")
            .get(&TypeId::of::<T>())
            .cloned()?;
        value.downcast::<T>().ok()
    }
}

/// Why the final state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("checkers: {0}")]
    Stack(#[from] crate::stack::StackError),

    #[error("checkers: reading database {service} ({what}): {source}\nhint: is the database up and migrated? Checkers read it directly, not through Toxiproxy")]
    Database {
        service: String,
        what: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("checkers: GET {url}: {message}\nhint: the service must be running (and healed) when the checkers read its circuits")]
    Http { url: String, message: String },
}

/// One checker's judgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The checker's name (see [`Checker::name`]).
    pub checker: String,
    pub ok: bool,
    /// One or two sentences: what was judged, on how much, and how it came out.
    pub summary: String,
    /// Why it failed (empty when `ok`).
    pub counterexamples: Vec<Counterexample>,
}

/// One concrete violation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counterexample {
    pub description: String,
    /// What it is about: ids or keys of the system's entities (order ids, accounts, message
    /// keys); the report shows the history events that mention them.
    pub subjects: Vec<String>,
    /// Indexes of the history events involved (see [`crate::history::Event::index`]).
    pub events: Vec<usize>,
}

impl Verdict {
    /// A verdict that holds when there is no counterexample.
    pub fn new(checker: &str, summary: String, counterexamples: Vec<Counterexample>) -> Self {
        Self {
            checker: checker.to_string(),
            ok: counterexamples.is_empty(),
            summary,
            counterexamples,
        }
    }

    /// A verdict that fails without a counterexample: the run does not let the checker judge.
    pub fn cannot_judge(checker: &str, summary: String) -> Self {
        Self {
            checker: checker.to_string(),
            ok: false,
            summary,
            counterexamples: Vec::new(),
        }
    }
}

impl Counterexample {
    pub fn new(description: impl Into<String>, subjects: Vec<String>, events: Vec<usize>) -> Self {
        Self {
            description: description.into(),
            subjects,
            events,
        }
    }
}

/// Fault windows `(schedule index, start, end)` whose fault matches `hits`, from the history.
pub fn windows_where(
    scenario: &Scenario,
    history: &History,
    hits: impl Fn(&Target) -> bool,
) -> Vec<(usize, Duration, Duration)> {
    history
        .fault_windows()
        .into_iter()
        .filter(|(index, _, _)| scenario.faults.get(*index).is_some_and(|f| hits(&f.target)))
        .collect()
}

/// History events of faults (start and heal, invocations and completions) with these indexes.
pub fn fault_events(history: &History, indexes: &BTreeSet<usize>) -> Vec<usize> {
    history
        .events()
        .iter()
        .filter(|e| match &e.op {
            Op::StartFault { index, .. } | Op::HealFault { index, .. } => indexes.contains(index),
            _ => false,
        })
        .map(|e| e.index)
        .collect()
}

/// A fault as verdicts name it: `hold of POST /transfers, every one on teller->ledger`.
pub fn describe_fault(fault: &faultline_chaos::scenario::Fault) -> String {
    use faultline_chaos::scenario::FaultKind;
    let target = match &fault.target {
        Target::Link { client, server } => format!("{client}->{server}"),
        Target::Process { service } => service.clone(),
        Target::Container { name } => name.clone(),
    };
    let kind = match &fault.kind {
        FaultKind::Request(request) => request.describe(),
        FaultKind::Statement(statement) => statement.describe(),
        FaultKind::Kafka(kafka) => kafka.describe(),
        FaultKind::Toxic { toxic, .. } => format!("{toxic:?}").to_lowercase(),
        other => format!("{other:?}").split([' ', '{', '(']).next().unwrap_or("").to_lowercase(),
    };
    format!("{kind} on {target}")
}

/// Nearest-rank percentile (`q` in 0..=1) of sorted-or-not samples; `None` when empty.
pub fn percentile(samples: &[Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// `1234ms`.
pub fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Counterexamples beyond this many are summarised, not listed: a report stays readable.
pub const MAX_COUNTEREXAMPLES: usize = 50;

/// At most [`MAX_COUNTEREXAMPLES`], the rest summarised in one more.
pub fn truncate(mut counterexamples: Vec<Counterexample>) -> Vec<Counterexample> {
    if counterexamples.len() > MAX_COUNTEREXAMPLES {
        let more = counterexamples.len() - MAX_COUNTEREXAMPLES;
        counterexamples.truncate(MAX_COUNTEREXAMPLES);
        counterexamples.push(Counterexample::new(
            format!("… and {more} more like these"),
            vec![],
            vec![],
        ));
    }
    counterexamples
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_keep_one_value_per_type() {
        let facts = Facts::default();
        assert!(facts.get::<u32>().is_none());
        facts.insert(7u32);
        facts.insert(8u32);
        facts.insert("seven");
        assert_eq!(*facts.get::<u32>().unwrap(), 8);
        assert_eq!(*facts.get::<&str>().unwrap(), "seven");
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&samples[..1], 0.99),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 0.99), None);
    }
}
