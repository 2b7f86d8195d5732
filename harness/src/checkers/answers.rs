//! The verdict `answers`: what the workload's clients were answered, judged against what each
//! operation promises (its `answers`, see [`faultline_chaos::scenario::answers`]) — while a
//! fault was on, against its promise under a fault; otherwise against its normal one.
//!
//! An answer counts as given under a fault when its request was in flight at any moment from
//! the fault's start to the operation's `recovery` after the heal. Each answer that breaks
//! its promise is a counterexample naming the operation, the request's key, the status and
//! why it broke the promise, the faults that were on, and the history events: the request's
//! invocation and completion, the faults' start and heal, and the requests the faults hit on
//! their link while it was in flight.
//!
//! Pure: it reads the scenario and the recorded history, nothing else. Judged on every run
//! whose scenario does not say `answers = false` in its `[expectations]`.
//!
//! ```
//! use faultline_harness::checkers::answers::judge;
//! use faultline_harness::history::{History, Op, Process, Recorder};
//! # let scenario = faultline_harness::fixtures::scenario("");
//! let recorder = Recorder::new();
//! recorder
//!     .invoke(Process::Client(0), Op::Request {
//!         operation: "pay".into(), method: "POST".into(), path: "/pay".into(),
//!         key: "k-1".into(), kind: None,
//!     })
//!     .info(serde_json::json!({"status": 500, "body": "", "latency_ms": 3.0}));
//! let verdict = judge(&scenario, &recorder.finish());
//! assert!(!verdict.ok, "a 500 breaks the promise of an operation that declares none");
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use faultline_chaos::scenario::answers::{Answers, Promise};
use faultline_chaos::scenario::Scenario;
use serde_json::Value;

use super::{truncate, BoxFuture, CheckContext, Checker, Counterexample, Verdict};
use crate::history::{Event, EventType, History, Op};

/// The verdict's name.
pub const NAME: &str = "answers";

/// How many requests a fault hit a counterexample names at most, per fault.
const HITS_NAMED: usize = 4;

/// The [`Checker`] of the verdict `answers`.
pub struct AnswersChecker;

impl Checker for AnswersChecker {
    fn name(&self) -> String {
        NAME.into()
    }

    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move { judge(run.scenario, run.history) })
    }
}

/// The promises of the operation `name` of intent `kind` in `scenario`'s workload (its
/// set-up requests included); the default for one the workload does not declare (a Rust
/// workload's).
fn answers_of<'s>(scenario: &'s Scenario, name: &str, kind: Option<&str>) -> Option<&'s Answers> {
    let http = scenario.workload.http.as_ref()?;
    http.operations
        .iter()
        .chain(&http.setup)
        .find(|op| op.name == name && op.kind.as_deref() == kind)
        .map(|op| &op.answers)
}

/// A fault of the run as the history recorded it: schedule index, window, target, what it
/// did.
struct FaultOn<'h> {
    index: usize,
    start: Duration,
    end: Duration,
    target: &'h str,
    kind: &'h str,
}

fn faults_of(history: &History) -> Vec<FaultOn<'_>> {
    history
        .fault_windows()
        .into_iter()
        .filter_map(|(index, start, end)| {
            history.events().iter().find_map(|e| match &e.op {
                Op::StartFault { index: i, target, kind } if *i == index && e.event_type == EventType::Ok => {
                    Some(FaultOn { index, start, end, target, kind })
                }
                _ => None,
            })
        })
        .collect()
}

/// Judges every answer in `history` against its operation's promise in `scenario`.
pub fn judge(scenario: &Scenario, history: &History) -> Verdict {
    let defaults = Answers::default();
    let faults = faults_of(history);
    let (mut judged, mut under_fault) = (0usize, 0usize);
    let mut counterexamples = Vec::new();
    for (invoke, completion) in history.pairs() {
        let Op::Request { operation, key, kind, method, path } = &invoke.op else {
            continue;
        };
        let answers = answers_of(scenario, operation, kind.as_deref()).unwrap_or(&defaults);
        let on: Vec<&FaultOn<'_>> = faults
            .iter()
            .filter(|f| invoke.time < f.end + answers.recovery && completion.time > f.start)
            .collect();
        let promise = if on.is_empty() { &answers.normal } else { &answers.under_fault };
        // A request with no answer is judged only against a promised time.
        let reason = broken(promise, completion);
        if completion.value.get("status").is_some() || reason.is_some() {
            judged += 1;
            under_fault += usize::from(!on.is_empty());
        }
        let Some(reason) = reason else {
            continue;
        };
        let label = match kind {
            Some(kind) => format!("{operation} ({kind})"),
            None => operation.clone(),
        };
        let when = if on.is_empty() {
            "with no fault on".to_string()
        } else {
            let names: Vec<String> = on
                .iter()
                .map(|f| match scenario.faults.get(f.index) {
                    Some(fault) => format!("fault {} ({})", f.index, super::describe_fault(fault)),
                    None => format!("fault {} ({} on {})", f.index, f.kind, f.target),
                })
                .collect();
            format!("while {} was on", names.join(" and "))
        };
        let mut events: BTreeSet<usize> = [invoke.index, completion.index].into();
        let indexes: BTreeSet<usize> = on.iter().map(|f| f.index).collect();
        events.extend(super::fault_events(history, &indexes));
        for fault in &on {
            events.extend(history.fault_events_on(fault.target, invoke.time, completion.time, HITS_NAMED));
        }
        counterexamples.push(Counterexample::new(
            format!(
                "{label} {method} {path} (key {key}), sent at {:.2}s {when}: {reason}",
                invoke.time.as_secs_f64()
            ),
            vec![key.clone()],
            events.into_iter().collect(),
        ));
    }
    let summary = format!(
        "{judged} answers judged against their operations' promises ({under_fault} given while a fault was on or recovering): {} broke them",
        counterexamples.len()
    );
    Verdict::new(NAME, summary, truncate(counterexamples))
}

/// Why the completion `answer` breaks `promise`, or `None`.
fn broken(promise: &Promise, answer: &Event) -> Option<String> {
    let value = &answer.value;
    let Some(status) = value.get("status").and_then(Value::as_u64).map(|s| s as u16) else {
        let within = promise.within?;
        let error = value.get("error").and_then(Value::as_str).unwrap_or("no answer");
        return Some(format!("no answer ({error}); promised one within {}", super::ms(within)));
    };
    let body = value.get("body").cloned().unwrap_or(Value::Null);
    let mut reasons = Vec::new();
    if !promise.allows(status) {
        reasons.push(format!(
            "answered {status}{}, where it promises {}",
            describe_body(&body),
            promise.statuses()
        ));
    } else if (200..300).contains(&status) {
        if let Some(why) = promise.body_broken_by(&body) {
            reasons.push(format!("answered {status} {}: {why}", excerpt(&body)));
        }
    }
    if let (Some(within), Some(latency)) = (promise.within, value.get("latency_ms").and_then(Value::as_f64)) {
        if latency > within.as_secs_f64() * 1000.0 {
            reasons.push(format!(
                "answered after {latency:.0}ms, where it promises an answer within {}",
                super::ms(within)
            ));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn describe_body(body: &Value) -> String {
    match body {
        Value::String(text) if text.is_empty() => " with an empty body".into(),
        other => format!(" {}", excerpt(other)),
    }
}

/// The body, shortened for a counterexample line.
fn excerpt(body: &Value) -> String {
    let text = match body {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    };
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, Process};
    use serde_json::json;

    /// A scenario whose one operation, `pay`, promises `answers` (the body of its
    /// `[workload.operations.answers]`; the default when empty).
    fn scenario(answers: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\ndescription = \"d\"\n[workload]\nrequests = 10\nduration = \"60s\"\n\
             [[workload.operations]]\nname = \"pay\"\nservice = \"order\"\nmethod = \"POST\"\npath = \"/pay\"\n\
             [workload.operations.answers]\n{answers}\n"
        );
        let topology = crate::fixtures::shop();
        let registry = crate::fixtures::registry();
        Scenario::parse("t.toml", registry.vocabulary_on(&topology), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// Builds a history with explicit times (ms).
    #[derive(Default)]
    struct Timeline(Vec<Event>);

    impl Timeline {
        fn push(&mut self, ms: u64, event_type: EventType, op: Op, value: Value, invoke_index: Option<usize>) {
            let index = self.0.len();
            let process = if matches!(op, Op::Request { .. }) { Process::Client(0) } else { Process::Nemesis };
            self.0.push(Event { index, time: Duration::from_millis(ms), process, event_type, op, value, invoke_index });
        }

        /// A `pay` request sent at `at` and answered `value` at `done`.
        fn request(mut self, key: &str, at: u64, done: u64, value: Value) -> Self {
            let op = Op::Request { operation: "pay".into(), method: "POST".into(), path: "/pay".into(), key: key.into(), kind: None };
            let invoke = self.0.len();
            self.push(at, EventType::Invoke, op.clone(), Value::Null, None);
            self.push(done, EventType::Ok, op, value, Some(invoke));
            self
        }

        /// Fault 0 (status 500 on order->payment) from `start` to `heal`.
        fn fault(mut self, start: u64, heal: u64) -> Self {
            let (index, target, kind) = (0, "order->payment".to_string(), "status 500".to_string());
            for (at, op) in [
                (start, Op::StartFault { index, target: target.clone(), kind: kind.clone() }),
                (heal, Op::HealFault { index, target: target.clone(), kind: kind.clone() }),
            ] {
                let invoke = self.0.len();
                self.push(at, EventType::Invoke, op.clone(), Value::Null, None);
                self.push(at, EventType::Ok, op, Value::Null, Some(invoke));
            }
            self
        }

        fn history(mut self) -> History {
            self.0.sort_by_key(|e| e.time);
            let renumber: Vec<usize> = {
                let mut order = vec![0; self.0.len()];
                for (new, e) in self.0.iter().enumerate() {
                    order[e.index] = new;
                }
                order
            };
            for e in &mut self.0 {
                e.index = renumber[e.index];
                e.invoke_index = e.invoke_index.map(|i| renumber[i]);
            }
            History::from_events(self.0)
        }
    }

    fn answered(status: u16, body: Value) -> Value {
        json!({"status": status, "body": body, "latency_ms": 5.0})
    }

    #[test]
    fn a_500_breaks_the_default_promise_and_names_the_fault_that_was_on() {
        let history = Timeline::default()
            .request("before", 0, 10, answered(201, json!({})))
            .fault(100, 500)
            .request("during-503", 200, 210, answered(503, json!("")))
            .request("during-500", 300, 310, answered(500, json!("")))
            .history();
        let verdict = judge(&scenario(""), &history);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples.len(), 1, "{verdict:?}");
        let broken = &verdict.counterexamples[0];
        let text = &broken.description;
        assert!(text.contains("pay POST /pay (key during-500), sent at 0.30s"), "{text}");
        assert!(text.contains("while fault 0 (status 500 on order->payment) was on"), "{text}");
        assert!(text.contains("answered 500 with an empty body"), "{text}");
        assert_eq!(broken.subjects, ["during-500"]);
        // The fault's start (2, 3), the request (6, 7) and the heal (8, 9).
        assert_eq!(broken.events, [2, 3, 6, 7, 8, 9]);
        assert!(verdict.summary.starts_with("3 answers judged"), "{}", verdict.summary);
        assert!(verdict.summary.contains("(2 given while a fault was on"), "{}", verdict.summary);
    }

    #[test]
    fn without_a_fault_the_normal_promise_judges_and_under_one_its_widened_form() {
        let strict = "status = [201]\nbody = [{ pointer = \"/id\" }]";
        let no_fault = Timeline::default().request("a", 0, 10, answered(503, json!(""))).history();
        assert!(!judge(&scenario(strict), &no_fault).ok, "a 503 breaks a promise of 201");
        let faulted = Timeline::default()
            .fault(0, 1000)
            .request("a", 100, 110, answered(503, json!("")))
            .request("b", 200, 210, answered(201, json!({"status": "queued"})))
            .history();
        let verdict = judge(&scenario(strict), &faulted);
        assert_eq!(verdict.counterexamples.len(), 1, "{verdict:?}");
        assert_eq!(verdict.counterexamples[0].subjects, ["b"]);
        assert!(verdict.counterexamples[0].description.contains("its body has no /id"));
        let with_fallback = format!("{strict}\n[workload.operations.answers.under_fault]\nfallback = [{{ status = \"queued\" }}]");
        assert!(judge(&scenario(&with_fallback), &faulted).ok, "a fallback body is acceptable under the fault");
        // And a request that overlaps the fault's start only is under the fault too.
        let overlapping = Timeline::default()
            .request("a", 0, 150, answered(503, json!("")))
            .fault(100, 1000)
            .history();
        assert!(judge(&scenario(strict), &overlapping).ok);
    }

    #[test]
    fn a_promised_time_is_broken_by_a_slow_answer_or_none() {
        let history = Timeline::default()
            .request("fast", 0, 5, answered(201, json!({})))
            .request("slow", 10, 260, json!({"status": 201, "body": {}, "latency_ms": 250.0}))
            .request("none", 300, 5300, json!({"error": "operation timed out", "timeout": true}))
            .history();
        let verdict = judge(&scenario("within = \"100ms\""), &history);
        let keys: Vec<&str> = verdict.counterexamples.iter().map(|c| c.subjects[0].as_str()).collect();
        assert_eq!(keys, ["slow", "none"]);
        assert!(judge(&scenario(""), &history).ok, "with no time promised, no answer is not judged");
    }

    #[test]
    fn an_answer_within_the_recovery_after_a_heal_counts_as_under_the_fault() {
        let after_heal = Timeline::default()
            .fault(0, 1000)
            .request("after", 3000, 3010, answered(503, json!("")))
            .history();
        assert!(judge(&scenario("status = [201]\nrecovery = \"5s\""), &after_heal).ok);
        assert!(!judge(&scenario("status = [201]\nrecovery = \"1s\""), &after_heal).ok);
    }

    #[test]
    fn an_operation_the_workload_does_not_declare_gets_the_default_promise() {
        let history = Timeline::default().request("k", 0, 5, answered(500, json!({}))).history();
        let mut scenario = scenario("status = [500]");
        assert!(judge(&scenario, &history).ok, "its own promise allows the 500");
        scenario.workload.http = None;
        assert!(!judge(&scenario, &history).ok, "the default does not");
    }
}
