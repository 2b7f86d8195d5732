//! `circuit <link>`: a link's circuit breaker behaves as the scenario's
//! [`CircuitExpectation`] says. The breaker is the one the link's client holds for the link's
//! server (`order->payment` → order's breaker for dependency `payment`), read from the HTTP
//! path the client's description gives (`circuits = "/admin/circuits"`): a JSON array of
//! [`CircuitRecord`]s, `[{"dependency": "payment", "state": "CLOSED", "transitions":
//! [{"from": "CLOSED", "to": "OPEN", "at_unix_ms": 1700000000000}]}]`, with
//! `rejected_calls_total` and `wait_in_open_ms` when the service knows them.
//!
//! - `opens = true`: a CLOSED→OPEN transition happened; with `opens_within`, the first one at
//!   or after the first fault window on the link began came at most that long after it.
//! - `closes_within`: the breaker was CLOSED again at most that long after the last fault on
//!   the link healed (its state at that moment, from the transitions, is CLOSED).
//! - `opens = false`: it never entered OPEN.
//!
//! Timing needs [`Circuits::run_started_unix_ms`] to place the breaker's wall-clock
//! transitions on the history's clock; without it only the direction is judged (opened at all,
//! CLOSED when read) and the summary says so. Breakers keep a bounded list of recent
//! transitions and a restarted process starts a fresh one, so a scenario that kills the
//! client service cannot be judged on its circuits.

use std::collections::BTreeSet;
use std::time::Duration;

use faultline_chaos::scenario::{CircuitExpectation, Scenario, Target};

use serde::{Deserialize, Serialize};

pub mod metrics;

use super::{fault_events, ms, windows_where, BoxFuture, CheckContext, CheckError, Checker, Counterexample, Verdict};
use crate::history::History;
use crate::stack::Stack;

/// One circuit breaker, as a service's circuits path shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CircuitRecord {
    /// The service holding the breaker (the link's client).
    #[serde(default)]
    pub service: String,
    /// The dependency it guards (the link's server).
    pub dependency: String,
    /// `CLOSED`, `OPEN` or `HALF_OPEN` when read.
    pub state: String,
    /// Calls the breaker refused since it was created: how often it failed fast (`None` when
    /// the service does not report it; then failing fast is not judged).
    #[serde(default)]
    pub rejected_calls_total: Option<u64>,
    /// Its wait in OPEN before probing, in milliseconds (0 when the service does not say).
    #[serde(default)]
    pub wait_in_open_ms: u64,
    /// The most recent transitions, oldest first. The breaker keeps a bounded number, and a
    /// restarted process starts with none.
    pub transitions: Vec<CircuitTransitionRecord>,
}

/// One state change of a breaker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CircuitTransitionRecord {
    pub from: String,
    pub to: String,
    pub at_unix_ms: u64,
}

/// Every breaker the system's services show after a run, and when the run began.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Circuits {
    pub circuits: Vec<CircuitRecord>,
    /// Wall-clock time (ms since the Unix epoch) at which the history's clock read zero:
    /// breakers' transitions carry wall-clock times and the history monotonic ones. Without
    /// it the checker judges only *whether* a breaker opened or closed, not *when*.
    pub run_started_unix_ms: Option<u64>,
}

/// Reads the breakers of every service whose description gives a `circuits` path. Breakers
/// read from a Prometheus metric have the transitions a [`CircuitSampler`] saw, when one ran
/// (without, only their state now).
pub async fn read(stack: &Stack) -> Result<Vec<CircuitRecord>, CheckError> {
    read_sampled(stack, Tracks::default()).await
}

/// [`read`], with what a sampler saw of the metric-read breakers during the run.
pub async fn read_sampled(stack: &Stack, mut tracks: Tracks) -> Result<Vec<CircuitRecord>, CheckError> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| CheckError::Http {
            url: "(client)".into(),
            message: e.to_string(),
        })?;
    let mut circuits = Vec::new();
    for service in &stack.system().services {
        let Some(path) = &service.circuits else {
            continue;
        };
        let url = format!("{}{path}", stack.service_url(&service.name)?);
        match &service.circuit_metric {
            None => circuits.extend(read_one(&http, &url, &service.name).await?),
            Some(metric) => {
                let text = fetch(&http, &url).await?;
                let breakers = tracks.observe_exposition(&service.name, &text, metric);
                for ((owner, dependency), track) in &tracks.0 {
                    if owner != &service.name {
                        continue;
                    }
                    circuits.push(CircuitRecord {
                        service: owner.clone(),
                        dependency: dependency.clone(),
                        state: track.state.clone(),
                        rejected_calls_total: match metric.rejected {
                            None => None,
                            Some(_) => Some(breakers.get(dependency).and_then(|b| b.1).unwrap_or(0)),
                        },
                        wait_in_open_ms: 0,
                        transitions: track.transitions.clone(),
                    });
                }
            }
        }
    }
    Ok(circuits)
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<String, CheckError> {
    let failed = |message: String| CheckError::Http {
        url: url.to_string(),
        message,
    };
    let response = http.get(url).send().await.map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| failed(e.to_string()))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(failed(format!("answered {status}: {body}")))
    }
}

/// What a sampler saw of each metric-read breaker: its last state and every change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracks(std::collections::BTreeMap<(String, String), Track>);

/// One breaker's sampled state and the transitions between samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    pub state: String,
    pub transitions: Vec<CircuitTransitionRecord>,
}

impl Tracks {
    /// Takes `state`, seen at `at_unix_ms`, as the breaker's state; a change from the last
    /// one seen is a transition at that time.
    pub fn observe(&mut self, service: &str, dependency: &str, state: &str, at_unix_ms: u64) {
        let track = self
            .0
            .entry((service.to_string(), dependency.to_string()))
            .or_insert_with(|| Track {
                state: state.to_string(),
                transitions: Vec::new(),
            });
        if track.state != state {
            track.transitions.push(CircuitTransitionRecord {
                from: std::mem::replace(&mut track.state, state.to_string()),
                to: state.to_string(),
                at_unix_ms,
            });
        }
    }

    /// Observes every breaker `service`'s exposition `text` shows, now; hands them back.
    fn observe_exposition(
        &mut self,
        service: &str,
        text: &str,
        metric: &crate::system::CircuitMetric,
    ) -> std::collections::BTreeMap<String, (String, Option<u64>)> {
        let now = crate::history::unix_ms();
        let breakers = metrics::breakers_in(text, metric);
        for (dependency, (state, _)) in &breakers {
            self.observe(service, dependency, state, now);
        }
        breakers
    }

    /// The breaker of `service` for `dependency`, as sampled.
    pub fn get(&self, service: &str, dependency: &str) -> Option<&Track> {
        self.0.get(&(service.to_string(), dependency.to_string()))
    }
}

/// Samples the breakers that services show as a Prometheus metric, every `every` of theirs,
/// from [`CircuitSampler::start`] until [`CircuitSampler::finish`]: a metric has no history,
/// so the changes between samples are the transitions (timed to the sample, so up to one
/// interval late). A sample that fails (a service killed or paused) is skipped.
pub struct CircuitSampler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Tracks>,
}

impl CircuitSampler {
    /// Starts sampling, or `None` when no service's breakers come from a metric.
    pub fn start(stack: &Stack) -> Option<Self> {
        let sources: Vec<(String, String, crate::system::CircuitMetric)> = stack
            .system()
            .services
            .iter()
            .filter_map(|service| {
                let metric = service.circuit_metric.clone()?;
                let base = stack.service_url(&service.name).ok()?;
                Some((service.name.clone(), format!("{base}{}", service.circuits.as_deref()?), metric))
            })
            .collect();
        let every = sources.iter().map(|s| s.2.every).min()?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tracks = Tracks::default();
            loop {
                for (service, url, metric) in &sources {
                    let answer = http.get(url).timeout(every.max(Duration::from_secs(1))).send().await;
                    let Ok(response) = answer else { continue };
                    let Ok(text) = response.text().await else { continue };
                    tracks.observe_exposition(service, &text, metric);
                }
                tokio::select! {
                    _ = stopped.changed() => return tracks,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
        Some(Self { stop, task })
    }

    /// Stops sampling and hands over what it saw.
    pub async fn finish(self) -> Tracks {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

async fn read_one(
    http: &reqwest::Client,
    url: &str,
    service: &str,
) -> Result<Vec<CircuitRecord>, CheckError> {
    let text = fetch(http, url).await?;
    let mut circuits: Vec<CircuitRecord> =
        serde_json::from_str(&text).map_err(|e| CheckError::Http {
            url: url.to_string(),
            message: format!("not a JSON array of circuit snapshots: {e}"),
        })?;
    for circuit in &mut circuits {
        circuit.service = service.to_string();
    }
    Ok(circuits)
}

/// The checker of one [`CircuitExpectation`], on the [`Circuits`] the run read.
pub struct CircuitChecker(pub CircuitExpectation);

impl Checker for CircuitChecker {
    fn name(&self) -> String {
        format!("circuit {}", self.0.link)
    }

    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let circuits = match run.facts.get::<Circuits>() {
                Some(circuits) => circuits,
                None => match read(run.stack).await {
                    Ok(circuits) => run.facts.insert(Circuits {
                        circuits,
                        run_started_unix_ms: Some(run.run_started_unix_ms),
                    }),
                    Err(e) => return Verdict::cannot_judge(&self.name(), e.to_string()),
                },
            };
            check(&self.0, run.scenario, run.history, &circuits)
        })
    }
}

pub fn check(
    expectation: &CircuitExpectation,
    scenario: &Scenario,
    history: &History,
    observed: &Circuits,
) -> Verdict {
    let name = format!("circuit {}", expectation.link);
    let Some((client, server)) = expectation
        .link
        .split_once("->")
        .map(|(c, s)| (c.trim(), s.trim()))
    else {
        return Verdict::cannot_judge(
            &name,
            format!("link {:?} is not client->server", expectation.link),
        );
    };
    let Some(breaker) = observed
        .circuits
        .iter()
        .find(|c| c.dependency == server && (c.service == client || c.service.is_empty()))
    else {
        let known: Vec<String> = observed
            .circuits
            .iter()
            .map(|c| format!("{}->{}", c.service, c.dependency))
            .collect();
        return Verdict::cannot_judge(
            &name,
            format!(
                "{client} shows no circuit breaker for {server} (breakers read: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        );
    };
    let windows = windows_where(
        scenario,
        history,
        |t| matches!(t, Target::Link { client: c, server: s } if c == client && s == server),
    );
    let indexes: BTreeSet<usize> = windows.iter().map(|w| w.0).collect();
    let events = fault_events(history, &indexes);
    let to_unix = |d: Duration| {
        observed
            .run_started_unix_ms
            .map(|start| start + d.as_millis() as u64)
    };
    let at = |unix_ms: u64| match observed.run_started_unix_ms {
        Some(start) if unix_ms >= start => format!(
            "{} into the run",
            ms(Duration::from_millis(unix_ms - start))
        ),
        Some(start) => format!(
            "{} before the run",
            ms(Duration::from_millis(start - unix_ms))
        ),
        None => format!("at unix ms {unix_ms}"),
    };

    let opens: Vec<u64> = breaker
        .transitions
        .iter()
        .filter(|t| t.from == "CLOSED" && t.to == "OPEN")
        .map(|t| t.at_unix_ms)
        .collect();
    let mut counterexamples = Vec::new();
    let mut notes = Vec::new();

    if !expectation.opens {
        let entered_open: Vec<String> = breaker
            .transitions
            .iter()
            .filter(|t| t.to == "OPEN")
            .map(|t| at(t.at_unix_ms))
            .collect();
        if !entered_open.is_empty() || breaker.state == "OPEN" {
            counterexamples.push(Counterexample::new(
                format!("{client}'s breaker for {server} opened although it must not: OPEN {}; state when read {}", entered_open.join(", "), breaker.state),
                vec![],
                events.clone(),
            ));
        } else {
            notes.push("never opened".to_string());
        }
    } else if opens.is_empty() {
        counterexamples.push(Counterexample::new(
            format!("{client}'s breaker for {server} never went CLOSED→OPEN (state when read {}, {} transitions recorded)", breaker.state, breaker.transitions.len()),
            vec![],
            events.clone(),
        ));
    } else if let Some(within) = expectation.opens_within {
        match (windows.iter().map(|w| w.1).min(), windows.is_empty()) {
            (_, true) => counterexamples.push(Counterexample::new(
                format!("the history holds no applied fault on {}: cannot time the opening", expectation.link),
                vec![],
                vec![],
            )),
            (Some(first_fault), false) => match to_unix(first_fault) {
                None => notes.push(format!("opened (not timed against opens_within {}: run_started_unix_ms unknown)", ms(within))),
                Some(fault_unix) => match opens.iter().find(|&&t| t >= fault_unix) {
                    Some(&opened) if opened - fault_unix <= within.as_millis() as u64 => {
                        notes.push(format!("opened {} after the first fault (bound {})", ms(Duration::from_millis(opened - fault_unix)), ms(within)))
                    }
                    Some(&opened) => counterexamples.push(Counterexample::new(
                        format!(
                            "{client}'s breaker for {server} opened {} after the first fault on the link began ({}), later than opens_within {}",
                            ms(Duration::from_millis(opened - fault_unix)),
                            at(opened),
                            ms(within)
                        ),
                        vec![],
                        events.clone(),
                    )),
                    None => counterexamples.push(Counterexample::new(
                        format!("{client}'s breaker for {server} opened only before the first fault on the link began ({})", at(opens[0])),
                        vec![],
                        events.clone(),
                    )),
                },
            },
            (None, false) => unreachable!("windows is not empty"),
        }
    } else {
        notes.push(format!("opened {}", at(opens[0])));
    }

    if expectation.opens && !opens.is_empty() {
        // Fails fast while open: calls were refused without reaching the dependency.
        match breaker.rejected_calls_total {
            None => notes.push("refused calls not reported: failing fast not judged".into()),
            Some(0) => counterexamples.push(Counterexample::new(
                format!("{client}'s breaker for {server} opened but refused no call: calls did not fail fast while it was OPEN"),
                vec![],
                events.clone(),
            )),
            Some(refused) => notes.push(format!("failed fast {refused} times")),
        }
        // Half-opens after its wait, not before.
        if breaker.wait_in_open_ms > 0 {
            let mut entered_open = None;
            let mut half_opens = 0;
            for t in &breaker.transitions {
                if t.from == "OPEN" && t.to == "HALF_OPEN" {
                    if let Some(opened) = entered_open {
                        let waited = t.at_unix_ms.saturating_sub(opened);
                        if waited < breaker.wait_in_open_ms {
                            counterexamples.push(Counterexample::new(
                                format!(
                                    "{client}'s breaker for {server} half-opened {} after opening, before its wait of {} ({})",
                                    ms(Duration::from_millis(waited)),
                                    ms(Duration::from_millis(breaker.wait_in_open_ms)),
                                    at(t.at_unix_ms)
                                ),
                                vec![],
                                events.clone(),
                            ));
                        } else {
                            half_opens += 1;
                        }
                    }
                }
                if t.to == "OPEN" {
                    entered_open = Some(t.at_unix_ms);
                }
            }
            if half_opens > 0 {
                notes.push(format!(
                    "half-opened {half_opens} times, each after its {} wait",
                    ms(Duration::from_millis(breaker.wait_in_open_ms))
                ));
            }
        }
    }

    if let Some(within) = expectation.closes_within {
        let last_heal = windows.iter().map(|w| w.2).max();
        match (last_heal.and_then(to_unix), last_heal) {
            (Some(healed_unix), Some(_)) => {
                let deadline = healed_unix + within.as_millis() as u64;
                let state = state_at(breaker, deadline);
                if state == "CLOSED" {
                    notes.push(format!("CLOSED within {} of the last heal", ms(within)));
                } else {
                    counterexamples.push(Counterexample::new(
                        format!(
                            "{client}'s breaker for {server} was {state} {} after the last fault on the link healed (closes_within); transitions: {}",
                            ms(within),
                            describe(breaker, &at)
                        ),
                        vec![],
                        events.clone(),
                    ));
                }
            }
            _ => {
                if breaker.state == "CLOSED" {
                    notes.push(format!(
                        "CLOSED when read (not timed against closes_within {}: {})",
                        ms(within),
                        if last_heal.is_none() {
                            "no healed fault on the link in the history"
                        } else {
                            "run_started_unix_ms unknown"
                        }
                    ));
                } else {
                    counterexamples.push(Counterexample::new(
                        format!("{client}'s breaker for {server} is {} when read, expected CLOSED after healing", breaker.state),
                        vec![],
                        events.clone(),
                    ));
                }
            }
        }
    }

    let summary = if counterexamples.is_empty() {
        format!("{client}'s breaker for {server}: {}", notes.join("; "))
    } else {
        format!(
            "{client}'s breaker for {server} did not behave as expected ({} transitions recorded)",
            breaker.transitions.len()
        )
    };
    Verdict::new(&name, summary, counterexamples)
}

/// The breaker's state at `unix_ms`, from its transitions (CLOSED before the first).
fn state_at(breaker: &CircuitRecord, unix_ms: u64) -> &str {
    breaker
        .transitions
        .iter()
        .rfind(|t| t.at_unix_ms <= unix_ms)
        .map_or_else(
            || {
                breaker
                    .transitions
                    .first()
                    .map_or("CLOSED", |t| t.from.as_str())
            },
            |t| t.to.as_str(),
        )
}

fn describe(breaker: &CircuitRecord, at: &dyn Fn(u64) -> String) -> String {
    breaker
        .transitions
        .iter()
        .map(|t| format!("{}→{} {}", t.from, t.to, at(t.at_unix_ms)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use crate::fixtures::*;
    use super::*;

    #[test]
    fn circuit_snapshots_of_the_admin_endpoint_decode() {
        // The shape of `faultline_kit::resilience::CircuitSnapshot` as `/admin/circuits` serves it.
        let body = r#"[{"dependency": "payment", "state": "HALF_OPEN", "failure_rate": 60.0,
            "slow_call_rate": null, "buffered_calls": 10, "failed_calls": 6, "slow_calls": 0,
            "not_permitted_calls": 4, "transitions": [
              {"from": "CLOSED", "to": "OPEN", "at_unix_ms": 1700000000000},
              {"from": "OPEN", "to": "HALF_OPEN", "at_unix_ms": 1700000005000}]}]"#;
        let circuits: Vec<CircuitRecord> = serde_json::from_str(body).unwrap();
        assert_eq!(circuits[0].dependency, "payment");
        assert_eq!(circuits[0].state, "HALF_OPEN");
        assert_eq!(circuits[0].transitions[1].at_unix_ms, 1_700_000_005_000);
        assert_eq!(circuits[0].service, "", "filled in by read");
    }

    const START: u64 = 1_700_000_000_000;

    fn breaker(transitions: &[(&str, &str, u64)]) -> CircuitRecord {
        CircuitRecord {
            service: "order".into(),
            dependency: "payment".into(),
            state: transitions.last().map_or("CLOSED", |t| t.1).into(),
            rejected_calls_total: Some(1),
            wait_in_open_ms: 0,
            transitions: transitions
                .iter()
                .map(|(from, to, at_ms)| CircuitTransitionRecord {
                    from: from.to_string(),
                    to: to.to_string(),
                    at_unix_ms: START + at_ms,
                })
                .collect(),
        }
    }

    fn observed(transitions: &[(&str, &str, u64)]) -> Circuits {
        Circuits {
            circuits: vec![breaker(transitions)],
            run_started_unix_ms: Some(START),
        }
    }

    fn expecting(rule: &str) -> (Scenario, CircuitExpectation) {
        let scenario = scenario(&format!(
            "[[expectations.circuits]]\nlink = \"order->payment\"\n{rule}"
        ));
        let expectation = scenario.expectations.circuits[0].clone();
        (scenario, expectation)
    }

    /// Fault 0 on order->payment from 5 s to 15 s.
    fn faulted() -> (History, Vec<usize>) {
        let mut history = HistoryBuilder::default();
        let events = history.fault(0, "order->payment", 5_000, Some(15_000));
        history.placed("k", "a", 30_000);
        (history.build(), events)
    }

    const OPEN_AND_CLOSE: &[(&str, &str, u64)] = &[
        ("CLOSED", "OPEN", 7_000),
        ("OPEN", "HALF_OPEN", 12_000),
        ("HALF_OPEN", "OPEN", 12_100),
        ("OPEN", "HALF_OPEN", 17_000),
        ("HALF_OPEN", "CLOSED", 17_500),
    ];

    #[test]
    fn opening_and_closing_within_their_bounds_pass() {
        let (scenario, expectation) = expecting("opens_within = \"5s\"\ncloses_within = \"10s\"");
        let (history, _) = faulted();
        let verdict = check(&expectation, &scenario, &history, &observed(OPEN_AND_CLOSE));
        assert!(verdict.ok, "{verdict:?}");
        assert_eq!(verdict.checker, "circuit order->payment");
        assert!(
            verdict.summary.contains("opened 2000ms after"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn opening_too_late_fails_with_the_fault_events() {
        let (scenario, expectation) = expecting("opens_within = \"1s\"");
        let (history, fault_events) = faulted();
        let verdict = check(&expectation, &scenario, &history, &observed(OPEN_AND_CLOSE));
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples[0].events, fault_events);
        assert!(
            verdict.counterexamples[0]
                .description
                .contains("2000ms after"),
            "{:?}",
            verdict.counterexamples
        );
    }

    #[test]
    fn never_opening_fails() {
        let (scenario, expectation) = expecting("");
        let (history, _) = faulted();
        let verdict = check(&expectation, &scenario, &history, &observed(&[]));
        assert!(!verdict.ok);
        assert!(verdict.counterexamples[0]
            .description
            .contains("never went CLOSED→OPEN"));
    }

    #[test]
    fn still_open_after_the_close_bound_fails() {
        let (scenario, expectation) = expecting("closes_within = \"1s\"");
        let (history, _) = faulted();
        let verdict = check(&expectation, &scenario, &history, &observed(OPEN_AND_CLOSE));
        assert!(!verdict.ok, "at 16 s it was OPEN");
        assert!(
            verdict.counterexamples[0]
                .description
                .contains("was OPEN 1000ms after"),
            "{:?}",
            verdict.counterexamples
        );
    }

    #[test]
    fn a_breaker_that_must_stay_closed_fails_when_it_opened() {
        let (scenario, expectation) = expecting("opens = false");
        let (history, _) = faulted();
        assert!(check(&expectation, &scenario, &history, &observed(&[])).ok);
        let verdict = check(&expectation, &scenario, &history, &observed(OPEN_AND_CLOSE));
        assert!(!verdict.ok);
        assert!(verdict.counterexamples[0].description.contains("must not"));
    }

    #[test]
    fn without_the_run_start_only_the_direction_is_judged_and_said() {
        let (scenario, expectation) = expecting("opens_within = \"1s\"\ncloses_within = \"1s\"");
        let (history, _) = faulted();
        let mut observed = observed(OPEN_AND_CLOSE);
        observed.run_started_unix_ms = None;
        let verdict = check(&expectation, &scenario, &history, &observed);
        assert!(verdict.ok, "{verdict:?}");
        assert!(
            verdict.summary.contains("run_started_unix_ms unknown"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn a_missing_breaker_cannot_be_judged() {
        let (scenario, expectation) = expecting("");
        let (history, _) = faulted();
        let verdict = check(&expectation, &scenario, &history, &Circuits::default());
        assert!(!verdict.ok);
        assert!(verdict.summary.contains("no circuit breaker for payment"));
    }
    #[test]
    fn an_open_breaker_that_refused_nothing_did_not_fail_fast() {
        let (scenario, expectation) = expecting("opens = true");
        let (history, _) = faulted();
        let mut observed = observed(&[
            ("CLOSED", "OPEN", 6_000),
            ("OPEN", "HALF_OPEN", 12_000),
            ("HALF_OPEN", "CLOSED", 13_000),
        ]);
        observed.circuits[0].rejected_calls_total = Some(0);
        let verdict = check(&expectation, &scenario, &history, &observed);
        assert!(!verdict.ok, "{verdict:?}");
        assert!(
            verdict.counterexamples[0]
                .description
                .contains("did not fail fast"),
            "{verdict:?}"
        );
    }

    #[test]
    fn half_opening_before_the_wait_is_a_violation_and_after_it_is_not() {
        let (scenario, expectation) = expecting("opens = true");
        let (history, _) = faulted();
        let transitions = [
            ("CLOSED", "OPEN", 6_000),
            ("OPEN", "HALF_OPEN", 8_000),
            ("HALF_OPEN", "CLOSED", 9_000),
        ];
        let mut early = observed(&transitions);
        early.circuits[0].wait_in_open_ms = 5_000;
        let verdict = check(&expectation, &scenario, &history, &early);
        assert!(!verdict.ok, "{verdict:?}");
        assert!(
            verdict.counterexamples[0]
                .description
                .contains("before its wait"),
            "{verdict:?}"
        );

        let mut patient = observed(&[
            ("CLOSED", "OPEN", 6_000),
            ("OPEN", "HALF_OPEN", 11_500),
            ("HALF_OPEN", "CLOSED", 12_000),
        ]);
        patient.circuits[0].wait_in_open_ms = 5_000;
        let verdict = check(&expectation, &scenario, &history, &patient);
        assert!(verdict.ok, "{verdict:?}");
        assert!(
            verdict.summary.contains("half-opened 1 times"),
            "{verdict:?}"
        );
    }

    #[test]
    fn sampled_states_become_transitions_at_the_sample_that_saw_them() {
        let mut tracks = Tracks::default();
        tracks.observe("order", "payment", "CLOSED", 1_000);
        tracks.observe("order", "payment", "CLOSED", 1_250);
        tracks.observe("order", "payment", "OPEN", 1_500);
        tracks.observe("order", "inventory", "CLOSED", 1_500);
        tracks.observe("order", "payment", "HALF_OPEN", 6_750);
        tracks.observe("order", "payment", "CLOSED", 7_000);
        let payment = tracks.get("order", "payment").unwrap();
        assert_eq!(payment.state, "CLOSED");
        let seen: Vec<(&str, &str, u64)> = payment
            .transitions
            .iter()
            .map(|t| (t.from.as_str(), t.to.as_str(), t.at_unix_ms))
            .collect();
        assert_eq!(
            seen,
            [
                ("CLOSED", "OPEN", 1_500),
                ("OPEN", "HALF_OPEN", 6_750),
                ("HALF_OPEN", "CLOSED", 7_000)
            ]
        );
        assert!(tracks.get("order", "inventory").unwrap().transitions.is_empty());
    }

    #[test]
    fn a_breaker_that_does_not_report_refusals_is_not_judged_on_failing_fast() {
        let (scenario, expectation) = expecting("");
        let (history, _) = faulted();
        let mut unreported = observed(OPEN_AND_CLOSE);
        unreported.circuits[0].rejected_calls_total = None;
        let verdict = check(&expectation, &scenario, &history, &unreported);
        assert!(verdict.ok, "{verdict:?}");
        assert!(verdict.summary.contains("failing fast not judged"), "{verdict:?}");
    }
}
