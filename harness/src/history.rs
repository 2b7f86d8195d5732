//! The history of a chaos run: every client operation and every fault, as plain data, in the
//! order they happened. Jepsen's model: an operation is *invoked*, then completes *ok*, *fails*
//! (it certainly did not take effect) or ends *info* (unknown: it may or may not have taken
//! effect, e.g. a timeout). Timestamps are monotonic, from the start of the run.
//!
//! The workload and the nemesis write to a [`Recorder`]; checkers read the finished
//! [`History`]. A failing run's history alone should explain the failure.
//!
//! ```
//! use faultline_harness::history::{Op, Process, Recorder};
//! let recorder = Recorder::new();
//! let pending = recorder.invoke(Process::Client(0), Op::Request {
//!     operation: "transfer".into(), method: "POST".into(), path: "/transfers".into(),
//!     key: "k-1".into(), kind: None,
//! });
//! pending.ok(serde_json::json!({"order_id": "…"}));
//! let history = recorder.finish();
//! assert_eq!(history.events().len(), 2);
//! ```
//!
//! Layer 1 (description) of the harness ([layers](crate#layers)): plain data; imports no other
//! module of the harness.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who performed an operation: a workload client, or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum Process {
    Client(u32),
    Nemesis,
    /// Steady-state probes and final reads.
    Probe,
}

/// What was attempted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Op {
    /// One request a workload made of the system: the operation's name, method, the path as
    /// sent, and the planned request's key (`{key}`: the same on duplicates and retries; for
    /// a read, what it reads). `kind` is the workload's intent for it, when it has one (the
    /// reference system's orders are `good`, `declining` or `out_of_stock`).
    Request {
        operation: String,
        method: String,
        path: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
    },
    /// A fault applied: `index` into the scenario's schedule, with a human description.
    StartFault {
        index: usize,
        target: String,
        kind: String,
    },
    /// The same fault healed.
    HealFault {
        index: usize,
        target: String,
        kind: String,
    },
    /// A steady-state probe.
    Probe { name: String, phase: String },
    /// A request a request-level fault hit on its way across `link` (fault `index` of the
    /// schedule), and what was done to it (`action`: `status`, `reset`, `drop_answer`,
    /// `delay`, `hold`, `duplicate`).
    RequestFault {
        index: usize,
        link: String,
        method: String,
        path: String,
        action: String,
    },
}

impl Op {
    /// Whether this is a call of the workload proper: what SLOs and latency figures are
    /// about.
    pub fn is_workload_call(&self) -> bool {
        matches!(self, Op::Request { .. })
    }

    /// A request's operation name, if this is one.
    pub fn operation(&self) -> Option<&str> {
        match self {
            Op::Request { operation, .. } => Some(operation),
            _ => None,
        }
    }
}

/// Wall-clock time now, in milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Where an operation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    /// Unknown outcome: it may have taken effect.
    Info,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history.
    pub index: usize,
    /// Time since the start of the run (monotonic).
    #[serde(with = "duration_ms")]
    pub time: Duration,
    pub process: Process,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub op: Op,
    /// The result of a completion (`order_id`, `status`, `error`…); null on invocations.
    pub value: Value,
    /// For a completion, the index of its invocation.
    pub invoke_index: Option<usize>,
}

/// A finished history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    events: Vec<Event>,
}

impl History {
    /// Builds a history from events (checker tests craft histories this way).
    pub fn from_events(events: Vec<Event>) -> Self {
        Self { events }
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Completions with their invocation: `(invoke, completion)`; operations never completed
    /// are left out (see [`History::pending`]).
    pub fn pairs(&self) -> Vec<(&Event, &Event)> {
        self.events
            .iter()
            .filter(|e| e.event_type != EventType::Invoke)
            .filter_map(|completion| {
                let invoke = self.events.get(completion.invoke_index?)?;
                Some((invoke, completion))
            })
            .collect()
    }

    /// Invocations that never completed.
    pub fn pending(&self) -> Vec<&Event> {
        let completed: std::collections::HashSet<usize> =
            self.events.iter().filter_map(|e| e.invoke_index).collect();
        self.events
            .iter()
            .filter(|e| e.event_type == EventType::Invoke && !completed.contains(&e.index))
            .collect()
    }

    /// The nemesis' events about `link` that bear on the span `from..to` of the run: the
    /// applications and heals of every fault on it whose window overlaps the span, and each
    /// request a fault hit on it within the span (at most `limit` of those, the first ones).
    /// Indexes, in order: what a counterexample about the link's requests names.
    pub fn fault_events_on(&self, link: &str, from: Duration, to: Duration, limit: usize) -> Vec<usize> {
        let overlapping: std::collections::BTreeSet<usize> = self
            .fault_windows()
            .into_iter()
            .filter(|(_, start, end)| *start < to && *end > from)
            .map(|(index, _, _)| index)
            .collect();
        let mut hits = 0;
        self.events
            .iter()
            .filter(|e| e.event_type == EventType::Ok)
            .filter(|e| match &e.op {
                Op::StartFault { index, target, .. } | Op::HealFault { index, target, .. } => {
                    target == link && overlapping.contains(index)
                }
                Op::RequestFault { link: hit, .. } => {
                    let within = hit == link && e.time >= from && e.time < to && hits < limit;
                    hits += usize::from(within);
                    within
                }
                _ => false,
            })
            .map(|e| e.index)
            .collect()
    }

    /// The fault windows: `(index in the schedule, start, end)`; an unhealed fault ends at the
    /// history's last event.
    pub fn fault_windows(&self) -> Vec<(usize, Duration, Duration)> {
        let end_of_run = self.events.last().map_or(Duration::ZERO, |e| e.time);
        let mut windows = Vec::new();
        for event in &self.events {
            if let Op::StartFault { index, .. } = &event.op {
                if event.event_type == EventType::Ok {
                    let healed = self.events.iter().find(|e| {
                        matches!(&e.op, Op::HealFault { index: i, .. } if i == index)
                            && e.event_type == EventType::Ok
                    });
                    windows.push((*index, event.time, healed.map_or(end_of_run, |e| e.time)));
                }
            }
        }
        windows
    }
}

/// Records a history from many tasks at once.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// Starts the clock.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Time since the recorder started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// An instant as a time of this history (since the recorder started; zero before that).
    pub fn time_of(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.start)
    }

    fn push(
        &self,
        process: Process,
        event_type: EventType,
        op: Op,
        value: Value,
        invoke_index: Option<usize>,
    ) -> usize {
        let mut events = self.events.lock().expect("history lock");
        let index = events.len();
        events.push(Event {
            index,
            time: self.start.elapsed(),
            process,
            event_type,
            op,
            value,
            invoke_index,
        });
        index
    }

    /// Records an invocation; complete it through the returned [`Pending`].
    pub fn invoke(&self, process: Process, op: Op) -> Pending {
        let index = self.push(process, EventType::Invoke, op.clone(), Value::Null, None);
        Pending {
            recorder: self.clone(),
            process,
            op,
            index,
        }
    }

    /// The history so far, ordered by index.
    pub fn finish(&self) -> History {
        History {
            events: self.events.lock().expect("history lock").clone(),
        }
    }
}

/// An invoked operation awaiting its outcome. Dropped without one, it stays pending in the
/// history (what a crashed client looks like).
pub struct Pending {
    recorder: Recorder,
    process: Process,
    op: Op,
    index: usize,
}

impl Pending {
    fn complete(self, event_type: EventType, value: Value) -> usize {
        self.recorder
            .push(self.process, event_type, self.op, value, Some(self.index))
    }

    /// It took effect.
    pub fn ok(self, value: Value) -> usize {
        self.complete(EventType::Ok, value)
    }

    /// It certainly did not take effect.
    pub fn fail(self, value: Value) -> usize {
        self.complete(EventType::Fail, value)
    }

    /// It may or may not have taken effect.
    pub fn info(self, value: Value) -> usize {
        self.complete(EventType::Info, value)
    }

    /// The invocation's index in the history.
    pub fn index(&self) -> usize {
        self.index
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn place(key: &str) -> Op {
        Op::Request {
            operation: "place_order".into(),
            method: "POST".into(),
            path: "/api/orders".into(),
            key: key.into(),
            kind: Some("good".into()),
        }
    }

    #[test]
    fn completions_pair_with_their_invocations_and_pending_ones_are_found() {
        let recorder = Recorder::new();
        let a = recorder.invoke(Process::Client(0), place("a"));
        let b = recorder.invoke(Process::Client(1), place("b"));
        a.ok(json!({"order_id": "1"}));
        drop(b);
        let history = recorder.finish();
        let pairs = history.pairs();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].0.op, place("a"));
        assert_eq!(history.pending().len(), 1);
        assert!(
            history.events().windows(2).all(|w| w[0].time <= w[1].time),
            "monotonic"
        );
    }

    #[test]
    fn fault_windows_run_from_start_to_heal() {
        let recorder = Recorder::new();
        let fault = || Op::StartFault {
            index: 0,
            target: "order->payment".into(),
            kind: "partition".into(),
        };
        recorder.invoke(Process::Nemesis, fault()).ok(Value::Null);
        let heal = Op::HealFault {
            index: 0,
            target: "order->payment".into(),
            kind: "partition".into(),
        };
        recorder.invoke(Process::Nemesis, heal).ok(Value::Null);
        let windows = recorder.finish().fault_windows();
        assert_eq!(windows.len(), 1);
        assert!(windows[0].1 <= windows[0].2);
    }

    #[test]
    fn the_fault_events_on_a_link_are_those_of_faults_overlapping_the_span_and_hits_within_it() {
        let recorder = Recorder::new();
        let nemesis = |op: Op| recorder.invoke(Process::Nemesis, op).ok(Value::Null);
        let start = |index, target: &str| Op::StartFault { index, target: target.into(), kind: "request".into() };
        let heal = |index, target: &str| Op::HealFault { index, target: target.into(), kind: "request".into() };
        let hit = |index, link: &str| Op::RequestFault {
            index,
            link: link.into(),
            method: "POST".into(),
            path: "/payments/charges".into(),
            action: "hold".into(),
        };
        let early_start = nemesis(start(0, "order->payment"));
        let early_heal = nemesis(heal(0, "order->payment"));
        let from = recorder.elapsed();
        let on_link = nemesis(start(1, "order->payment"));
        let elsewhere = nemesis(start(2, "order->inventory"));
        let hits: Vec<usize> = (0..3).map(|_| nemesis(hit(1, "order->payment"))).collect();
        nemesis(hit(2, "order->inventory"));
        let to = recorder.elapsed();
        let late_hit = nemesis(hit(1, "order->payment"));
        let history = recorder.finish();

        let named = history.fault_events_on("order->payment", from, to, 2);
        // Fault 1 is on the link and open during the span (never healed: open to the end).
        assert_eq!(named, vec![on_link, hits[0], hits[1]], "at most 2 hits, the first ones");
        for left_out in [early_start, early_heal, elsewhere, hits[2], late_hit] {
            assert!(!named.contains(&left_out), "{left_out} in {named:?}");
        }
        // A span covering the first fault names its start and heal too.
        let all = history.fault_events_on("order->payment", Duration::ZERO, to, 10);
        assert!(all.starts_with(&[early_start, early_heal, on_link]), "{all:?}");
    }

    #[test]
    fn a_history_round_trips_through_json() {
        let recorder = Recorder::new();
        recorder
            .invoke(Process::Client(3), place("x"))
            .info(json!({"error": "timeout"}));
        let history = recorder.finish();
        let text = serde_json::to_string(&history).unwrap();
        let back: History = serde_json::from_str(&text).unwrap();
        assert_eq!(back.events().len(), history.events().len());
        assert_eq!(back.events()[1].event_type, EventType::Info);
    }
}
