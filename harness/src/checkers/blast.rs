//! The verdict `blast-radius`: while a fault is on, the operations it does not reach keep
//! their fault-free success rate and latency (see [`faultline_chaos::scenario::blast`] for
//! footprints, reach and the bound).
//!
//! The footprints come from the scenario (`[expectations.blast_radius.footprints]`, which
//! `chaos explore` writes from its discovery) or, when it gives none, from the run itself:
//! before its steady state each operation was sent alone ([`MeasuredFootprints`] in the
//! run's facts). The fault-free figures of an operation come from the scenario too
//! (`[expectations.blast_radius.baseline]`: exploration's discovery ran the same load without
//! a fault, see [`baselines`]), or else from the run's load: its answers that were not in
//! flight during any fault or its recovery (the operation's `answers.recovery`, 10 s by
//! default). Probes are left out: they send their sample at once, not at the load's pace. An
//! operation with no fault-free answer is not judged, and the summary says so.
//!
//! Pure: it reads the scenario, the history and the facts.

use std::collections::BTreeSet;
use std::time::Duration;

use faultline_chaos::scenario::blast::{label, Baseline, Baselines, BlastRadius, Footprints};
use faultline_chaos::scenario::{Fault, FaultKind, Scenario, Target};
use faultline_chaos::scenario::intercept::RequestAction;

use super::{fault_events, percentile, truncate, BoxFuture, CheckContext, Checker, Counterexample, Verdict};
use crate::history::{Event, EventType, History, Op, Process};

/// The verdict's name.
pub const NAME: &str = "blast-radius";

/// The footprints a run measured before its steady state (kept in its facts).
#[derive(Debug, Clone)]
pub struct MeasuredFootprints(pub Footprints);

/// The [`Checker`] of the verdict `blast-radius`.
pub struct BlastChecker;

impl Checker for BlastChecker {
    fn name(&self) -> String {
        NAME.into()
    }

    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let measured = run.facts.get::<MeasuredFootprints>();
            let footprints = run
                .scenario
                .expectations
                .blast_radius
                .footprints
                .as_ref()
                .or(measured.as_ref().map(|m| &m.0));
            let services = run.stack.system().services.iter().map(|s| s.name.clone()).collect();
            judge(run.scenario, run.history, footprints, &services)
        })
    }
}

/// Whether `scenario` gets the verdict: it has faults, an HTTP workload, and does not say
/// `blast_radius = false`.
pub fn applies(scenario: &Scenario) -> bool {
    scenario.expectations.blast_radius.judged
        && !scenario.faults.is_empty()
        && scenario.workload.http.is_some()
}

/// An operation of the workload as the judgement sees it.
struct Operation<'s> {
    label: String,
    service: &'s str,
    recovery: Duration,
}

/// Whether `fault` reaches an operation sent to `service` whose footprint is `calls`;
/// `services` are the system's services (a link to anything else is a service's link to its
/// database, broker or another shared server).
fn reaches(fault: &Fault, service: &str, calls: &[String], services: &BTreeSet<String>) -> bool {
    let link_of = |site: &str| site.split_whitespace().next().unwrap_or("").to_string();
    let touches = |who: &str| service == who || calls.iter().any(|site| link_of(site).split("->").any(|end| end == who));
    match (&fault.target, &fault.kind) {
        // The shared servers behind every service: nothing is outside their reach.
        (Target::Container { .. }, _) => true,
        // Killed, paused, its events redelivered: everything it serves or calls.
        (Target::Process { service: who }, _) => touches(who),
        (Target::Link { client, server }, FaultKind::Request(request)) => {
            let stopped = match &request.action {
                RequestAction::Stop { service: who, .. } => touches(who),
                _ => false,
            };
            let link = format!("{client}->{server}");
            stopped
                || calls.iter().any(|site| {
                    let mut parts = site.split_whitespace();
                    let (on, method, route) = (parts.next(), parts.next(), parts.next());
                    on == Some(link.as_str()) && request.matches(method.unwrap_or(""), route.unwrap_or(""))
                })
        }
        // Between two services: every call on the link.
        (Target::Link { client, server }, _) if services.contains(server) => {
            let link = format!("{client}->{server}");
            calls.iter().any(|site| link_of(site) == link)
        }
        // A service's link to its database or broker: the service itself is impaired.
        (Target::Link { client, .. }, _) => touches(client),
    }
}

/// The whole time a request was in flight: from its invocation to its completion.
fn span(invoke: &Event, completion: &Event) -> (Duration, Duration) {
    (invoke.time, completion.time)
}

struct Answer<'h> {
    invoke: &'h Event,
    completion: &'h Event,
}

impl Answer<'_> {
    fn ok(&self) -> bool {
        self.completion.event_type == EventType::Ok
    }
    fn took(&self) -> Duration {
        self.completion.time.saturating_sub(self.invoke.time)
    }
}

/// Judges `history` of `scenario` with these footprints (`None`: not measured).
pub fn judge(
    scenario: &Scenario,
    history: &History,
    footprints: Option<&Footprints>,
    services: &BTreeSet<String>,
) -> Verdict {
    let settings: &BlastRadius = &scenario.expectations.blast_radius;
    let Some(footprints) = footprints else {
        return Verdict::new(
            NAME,
            "not judged: the workload's operations have no footprints (it cannot send them one by one)".into(),
            Vec::new(),
        );
    };
    let Some(http) = scenario.workload.http.as_ref() else {
        return Verdict::new(NAME, "not judged: no HTTP workload".into(), Vec::new());
    };
    let mut operations: Vec<Operation<'_>> = Vec::new();
    for op in &http.operations {
        let name = label(&op.name, op.kind.as_deref());
        if !operations.iter().any(|o| o.label == name) {
            operations.push(Operation {
                label: name,
                service: &op.service,
                recovery: op.answers.recovery,
            });
        }
    }
    let windows: Vec<(usize, Duration, Duration)> = history.fault_windows();
    let pairs = history.pairs();
    let mut notes = Vec::new();
    let mut counterexamples = Vec::new();
    for op in &operations {
        let Some(calls) = footprints.get(&op.label) else {
            notes.push(format!("{}: no footprint", op.label));
            continue;
        };
        let answers: Vec<Answer<'_>> = pairs
            .iter()
            .filter(|(invoke, _)| match &invoke.op {
                Op::Request { operation, kind, .. } => label(operation, kind.as_deref()) == op.label,
                _ => false,
            })
            .map(|(invoke, completion)| Answer { invoke, completion })
            .collect();
        let overlaps = |a: &Answer<'_>, start: Duration, end: Duration| {
            let (from, to) = span(a.invoke, a.completion);
            from < end && to > start
        };
        let fault_free: Vec<&Answer<'_>> = answers
            .iter()
            .filter(|a| matches!(a.invoke.process, Process::Client(_)))
            .filter(|a| windows.iter().all(|(_, start, end)| !overlaps(a, *start, *end + op.recovery)))
            .collect();
        let baseline = settings
            .baseline
            .as_ref()
            .and_then(|given| given.get(&op.label).copied())
            .or_else(|| figures(&fault_free));
        let reaching: Vec<&(usize, Duration, Duration)> = windows
            .iter()
            .filter(|(index, _, _)| {
                scenario.faults.get(*index).is_none_or(|fault| reaches(fault, op.service, calls, services))
            })
            .collect();
        for (index, start, end) in &windows {
            if reaching.iter().any(|(i, _, _)| i == index) {
                continue;
            }
            let during: Vec<&Answer<'_>> = answers
                .iter()
                .filter(|a| overlaps(a, *start, *end))
                .filter(|a| reaching.iter().all(|(_, s, e)| !overlaps(a, *s, *e + op.recovery)))
                .collect();
            if during.is_empty() {
                continue;
            }
            let Some(baseline) = baseline else {
                notes.push(format!("{}: no fault-free answer of the load to compare with", op.label));
                continue;
            };
            let judged = Judged::of(baseline, &during, settings);
            let fault = scenario.faults.get(*index).map_or_else(String::new, super::describe_fault);
            if let Some(reason) = judged.broken() {
                let mut events: BTreeSet<usize> =
                    fault_events(history, &BTreeSet::from([*index])).into_iter().collect();
                let mut subjects = Vec::new();
                for answer in during.iter().filter(|a| !a.ok() || a.took() > judged.bound).take(8) {
                    events.extend([answer.invoke.index, answer.completion.index]);
                    if let Op::Request { key, .. } = &answer.invoke.op {
                        subjects.push(key.clone());
                    }
                }
                let reach = if calls.is_empty() {
                    "it calls nothing between services".to_string()
                } else {
                    format!("its calls: {}", calls.join(", "))
                };
                counterexamples.push(Counterexample::new(
                    format!(
                        "{} (sent to {}) is outside the reach of fault {index} ({fault}; {reach}), yet while it was on {reason}",
                        op.label, op.service
                    ),
                    subjects,
                    events.into_iter().collect(),
                ));
            } else {
                notes.push(format!(
                    "{} kept up during fault {index}: {} of {} ok, p99 {}ms (bound {}ms)",
                    op.label,
                    judged.during_ok,
                    judged.during,
                    judged.during_p99.as_millis(),
                    judged.bound.as_millis()
                ));
            }
        }
    }
    let summary = if notes.is_empty() && counterexamples.is_empty() {
        "no operation outside a fault's reach was sent while it was on".to_string()
    } else {
        format!(
            "operations outside each fault's reach, against their fault-free answers: {} suffered{}{}",
            counterexamples.len(),
            if notes.is_empty() { "" } else { "; " },
            notes.join("; ")
        )
    };
    Verdict::new(NAME, summary, truncate(counterexamples))
}

/// The fault-free figures of `answers`; `None` without any.
fn figures(answers: &[&Answer<'_>]) -> Option<Baseline> {
    if answers.is_empty() {
        return None;
    }
    let ok_times: Vec<Duration> = answers.iter().filter(|a| a.ok()).map(|a| a.took()).collect();
    Some(Baseline {
        answers: answers.len() as u32,
        ok: ok_times.len() as u32,
        p99: percentile(&ok_times, 0.99).unwrap_or_default(),
    })
}

/// Each operation's fault-free figures in `history`: the load's answers that no fault of the
/// run touched (all of them in a run without faults), by label.
pub fn baselines(scenario: &Scenario, history: &History) -> Baselines {
    let windows = history.fault_windows();
    let mut by_label: std::collections::BTreeMap<String, Vec<Answer<'_>>> = Default::default();
    for (invoke, completion) in history.pairs() {
        let Op::Request { operation, kind, .. } = &invoke.op else { continue };
        if !matches!(invoke.process, Process::Client(_)) {
            continue;
        }
        let recovery = scenario
            .workload
            .http
            .as_ref()
            .and_then(|h| h.operations.iter().find(|o| &o.name == operation && &o.kind == kind))
            .map_or(faultline_chaos::scenario::answers::DEFAULT_RECOVERY, |o| o.answers.recovery);
        let touched = windows
            .iter()
            .any(|(_, start, end)| invoke.time < *end + recovery && completion.time > *start);
        if !touched {
            by_label.entry(label(operation, kind.as_deref())).or_default().push(Answer { invoke, completion });
        }
    }
    by_label
        .into_iter()
        .filter_map(|(name, answers)| {
            let refs: Vec<&Answer<'_>> = answers.iter().collect();
            Some((name, figures(&refs)?))
        })
        .collect()
}

/// One operation's answers during a fault against its fault-free figures.
struct Judged {
    fault_free: u32,
    fault_free_rate: f64,
    fault_free_p99: Duration,
    during: usize,
    during_ok: usize,
    during_p99: Duration,
    bound: Duration,
    slack: f64,
}

impl Judged {
    fn of(baseline: Baseline, during: &[&Answer<'_>], settings: &BlastRadius) -> Self {
        let bound = baseline
            .p99
            .mul_f64(settings.latency_factor)
            .max(baseline.p99 + settings.latency_margin);
        let times: Vec<Duration> = during.iter().map(|a| a.took()).collect();
        Self {
            fault_free: baseline.answers,
            fault_free_rate: f64::from(baseline.ok) / f64::from(baseline.answers.max(1)),
            fault_free_p99: baseline.p99,
            during: during.len(),
            during_ok: during.iter().filter(|a| a.ok()).count(),
            during_p99: percentile(&times, 0.99).unwrap_or_default(),
            bound,
            slack: settings.success_slack,
        }
    }

    fn broken(&self) -> Option<String> {
        let rate = self.during_ok as f64 / self.during as f64;
        let mut reasons = Vec::new();
        if rate < self.fault_free_rate - self.slack {
            reasons.push(format!(
                "{} of its {} answers were ok ({:.0}%, against {:.0}% of {} fault-free)",
                self.during_ok,
                self.during,
                rate * 100.0,
                self.fault_free_rate * 100.0,
                self.fault_free
            ));
        }
        if self.during_p99 > self.bound {
            reasons.push(format!(
                "its p99 was {}ms over {} requests, against a bound of {}ms (fault-free p99 {}ms over {})",
                self.during_p99.as_millis(),
                self.during,
                self.bound.as_millis(),
                self.fault_free_p99.as_millis(),
                self.fault_free
            ));
        }
        (!reasons.is_empty()).then(|| reasons.join(", and "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;
    use serde_json::json;

    /// A teller with two operations: `transfer` (calls the ledger) and `fees` (calls
    /// nothing), and these `[[faults]]`.
    fn scenario(faults: &str) -> Scenario {
        let topology = faultline_chaos::topology::Topology::new(
            ["teller", "ledger"],
            ["postgres"],
            [("teller", "ledger"), ("ledger", "postgres")],
        );
        let text = format!(
            "name = \"t\"\ndescription = \"d\"\n[workload]\nrequests = 10\nduration = \"60s\"\n\
             [[workload.operations]]\nname = \"transfer\"\nservice = \"teller\"\nmethod = \"POST\"\npath = \"/transfers\"\n\
             [[workload.operations]]\nname = \"fees\"\nservice = \"teller\"\npath = \"/fees\"\n{faults}"
        );
        let registry = crate::extension::Registry::default();
        Scenario::parse("t.toml", registry.vocabulary_on(&topology), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    const DELAY_ON_TRANSFERS: &str = "[[faults]]\nstart = \"10s\"\nduration = \"10s\"\ntarget = \"teller->ledger\"\n\
        kind = \"request\"\nmethod = \"POST\"\npath = \"/transfers\"\naction = \"delay\"\ndelay = \"5s\"";

    fn footprints() -> Footprints {
        [
            ("transfer".to_string(), vec!["teller->ledger POST /transfers".to_string()]),
            ("fees".to_string(), vec![]),
        ]
        .into()
    }

    fn services() -> BTreeSet<String> {
        ["teller".to_string(), "ledger".to_string()].into()
    }

    /// Builds a history: requests (operation, sent ms, answered ms, ok) and fault 0's window.
    fn history(requests: &[(&str, u64, u64, bool)], fault: Option<(u64, u64)>) -> History {
        let mut timeline: Vec<(u64, EventType, Op, Option<usize>)> = Vec::new();
        for (n, (operation, sent, answered, ok)) in requests.iter().enumerate() {
            let op = Op::Request {
                operation: operation.to_string(),
                method: "GET".into(),
                path: "/".into(),
                key: format!("k{n}"),
                kind: None,
            };
            timeline.push((*sent, EventType::Invoke, op.clone(), None));
            timeline.push((*answered, if *ok { EventType::Ok } else { EventType::Info }, op, Some(n)));
        }
        if let Some((start, heal)) = fault {
            let (index, target, kind) = (0, "teller->ledger".to_string(), "delay".to_string());
            timeline.push((start, EventType::Ok, Op::StartFault { index, target: target.clone(), kind: kind.clone() }, None));
            timeline.push((heal, EventType::Ok, Op::HealFault { index, target, kind }, None));
        }
        // Invocations are numbered by request; completions name theirs.
        let mut order: Vec<usize> = (0..timeline.len()).collect();
        order.sort_by_key(|i| timeline[*i].0);
        let mut invoke_at = vec![0; requests.len()];
        let mut events = Vec::new();
        for (index, i) in order.iter().enumerate() {
            let (ms, event_type, op, request) = timeline[*i].clone();
            let invoke_index = match (event_type, request) {
                (EventType::Invoke, _) => None,
                (_, Some(n)) => Some(invoke_at[n]),
                (_, None) => None,
            };
            if event_type == EventType::Invoke {
                // Each request pushed its invocation, then its completion: request i / 2.
                invoke_at[*i / 2] = index;
            }
            events.push(Event {
                index,
                time: Duration::from_millis(ms),
                process: if request.is_some() || event_type == EventType::Invoke { Process::Client(0) } else { Process::Nemesis },
                event_type,
                op,
                value: json!({}),
                invoke_index,
            });
        }
        History::from_events(events)
    }

    #[test]
    fn an_operation_outside_the_faults_reach_that_stalls_while_it_is_on_breaks_the_verdict() {
        let fault_free: Vec<(&str, u64, u64, bool)> = (0..5).map(|i| ("fees", i * 100, i * 100 + 20, true)).collect();
        let mut stalled = fault_free.clone();
        stalled.extend([("fees", 11_000, 15_000, true), ("transfer", 11_000, 16_000, true), ("fees", 12_000, 12_010, true)]);
        let verdict = judge(&scenario(DELAY_ON_TRANSFERS), &history(&stalled, Some((10_000, 20_000))), Some(&footprints()), &services());
        assert!(!verdict.ok, "{verdict:?}");
        assert_eq!(verdict.counterexamples.len(), 1);
        let text = &verdict.counterexamples[0].description;
        assert!(text.starts_with("fees (sent to teller) is outside the reach of fault 0"), "{text}");
        assert!(text.contains("it calls nothing between services"), "{text}");
        assert!(text.contains("its p99 was 4000ms over 2 requests, against a bound of 1020ms"), "{text}");
        assert_eq!(verdict.counterexamples[0].subjects, ["k5"]);

        // Quick while the fault is on: it holds, and the transfer (in its reach) is not judged.
        let mut quick = fault_free;
        quick.extend([("fees", 11_000, 11_030, true), ("transfer", 11_000, 16_000, false)]);
        let verdict = judge(&scenario(DELAY_ON_TRANSFERS), &history(&quick, Some((10_000, 20_000))), Some(&footprints()), &services());
        assert!(verdict.ok, "{verdict:?}");
        assert!(verdict.summary.contains("fees kept up during fault 0: 1 of 1 ok"), "{}", verdict.summary);
        assert!(!verdict.summary.contains("transfer kept up"), "{}", verdict.summary);
    }

    #[test]
    fn failures_outside_the_reach_break_it_and_without_footprints_nothing_is_judged() {
        let mut requests: Vec<(&str, u64, u64, bool)> = (0..10).map(|i| ("fees", i * 100, i * 100 + 20, true)).collect();
        requests.extend([("fees", 11_000, 11_010, false), ("fees", 11_100, 11_110, false), ("fees", 11_200, 11_210, true)]);
        let verdict = judge(&scenario(DELAY_ON_TRANSFERS), &history(&requests, Some((10_000, 20_000))), Some(&footprints()), &services());
        assert!(verdict.counterexamples[0].description.contains("1 of its 3 answers were ok (33%, against 100% of 10 fault-free)"), "{verdict:?}");
        let verdict = judge(&scenario(DELAY_ON_TRANSFERS), &history(&requests, Some((10_000, 20_000))), None, &services());
        assert!(verdict.ok && verdict.summary.starts_with("not judged"), "{verdict:?}");
    }

    #[test]
    fn reach_follows_the_footprint_the_stopped_service_and_a_services_own_database() {
        let transfer = vec!["teller->ledger POST /transfers".to_string()];
        let fault = |faults: &str| scenario(faults).faults[0].clone();
        let delay = fault(DELAY_ON_TRANSFERS);
        assert!(reaches(&delay, "teller", &transfer, &services()));
        assert!(!reaches(&delay, "teller", &[], &services()));
        let lookup = fault(&DELAY_ON_TRANSFERS.replace("path = \"/transfers\"", "path = \"/transfers/*\""));
        assert!(!reaches(&lookup, "teller", &transfer, &services()), "another route of the link");
        let kill_teller = fault(&DELAY_ON_TRANSFERS.replace("action = \"delay\"\ndelay = \"5s\"", "action = \"kill\"\nwhen = \"sent\""));
        assert!(reaches(&kill_teller, "teller", &[], &services()), "the service it is sent to, killed");
        let database = fault("[[faults]]\nstart = \"1s\"\nduration = \"1s\"\ntarget = \"ledger->postgres\"\nkind = \"latency\"\nlatency = \"1s\"");
        assert!(reaches(&database, "teller", &transfer, &services()), "the ledger it calls is slowed");
        assert!(!reaches(&database, "teller", &[], &services()));
    }
}
