//! `slo`: the scenario's service-level objectives over the whole run, on the requests of the
//! workload's clients:
//!
//! - p99 latency: nearest-rank 99th percentile of invocation → completion over every completed
//!   workload request (ok, fail and info alike), at most `slo.p99_latency`;
//! - error rate: workload requests that did not end ok (fail, info, or never completed) over
//!   all of their invocations, at most `slo.error_rate`.
//!
//! The probe process's requests (steady-state probes, set-up, a workload's reads while it
//! awaits its orders) are not counted: how often a workload polls would otherwise move the
//! rate.

use std::time::Duration;

use faultline_chaos::scenario::Slo;

use super::{ms, percentile, BoxFuture, CheckContext, Checker, Counterexample, Verdict};
use crate::history::{EventType, History, Op};

pub const NAME: &str = "slo";

/// The checker of a scenario's `[expectations.slo]`.
pub struct SloChecker(pub Slo);

impl Checker for SloChecker {
    fn name(&self) -> String {
        NAME.into()
    }

    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move { check(&self.0, run.history) })
    }
}

/// A request of one of the workload's clients (not of the probe process).
fn is_client_call(event: &crate::history::Event) -> bool {
    matches!(event.process, crate::history::Process::Client(_)) && event.op.is_workload_call()
}

pub fn check(slo: &Slo, history: &History) -> Verdict {
    let requests: Vec<_> = history
        .pairs()
        .into_iter()
        .filter(|(i, _)| is_client_call(i))
        .collect();
    let pending: Vec<usize> = history
        .pending()
        .iter()
        .filter(|e| is_client_call(e))
        .map(|e| e.index)
        .collect();
    let total = requests.len() + pending.len();
    let latencies: Vec<Duration> = requests
        .iter()
        .map(|(i, c)| c.time.saturating_sub(i.time))
        .collect();
    let p99 = percentile(&latencies, 0.99);
    let failed: Vec<_> = requests
        .iter()
        .filter(|(_, c)| c.event_type != EventType::Ok)
        .collect();
    let errors = failed.len() + pending.len();
    let error_rate = if total == 0 {
        0.0
    } else {
        errors as f64 / total as f64
    };

    let mut parts = vec![format!(
        "{total} requests: p99 {}, error rate {:.2}% ({errors} not ok)",
        p99.map_or("n/a".into(), ms),
        error_rate * 100.0
    )];
    let mut counterexamples = Vec::new();
    if let Some(max) = slo.p99_latency {
        parts.push(format!("p99 bound {}", ms(max)));
        if p99.is_some_and(|p| p > max) {
            let mut slow: Vec<_> = requests
                .iter()
                .filter(|(i, c)| c.time.saturating_sub(i.time) > max)
                .collect();
            slow.sort_by_key(|(i, c)| std::cmp::Reverse(c.time.saturating_sub(i.time)));
            let events: Vec<usize> = slow
                .iter()
                .take(10)
                .flat_map(|(i, c)| [i.index, c.index])
                .collect();
            // Named by their requests' keys (an idempotency key, an account), when they have one.
            let keys: Vec<String> = slow
                .iter()
                .take(10)
                .filter_map(|(i, _)| match &i.op {
                    Op::Request { key, .. } if !key.is_empty() => Some(key.clone()),
                    _ => None,
                })
                .collect();
            counterexamples.push(Counterexample::new(
                format!("p99 latency {} exceeds {}: {} requests slower than the bound (slowest 10 listed)", ms(p99.unwrap_or_default()), ms(max), slow.len()),
                keys,
                events,
            ));
        }
    }
    if let Some(max) = slo.error_rate {
        parts.push(format!("error rate bound {:.2}%", max * 100.0));
        if error_rate > max {
            let mut events: Vec<usize> = failed
                .iter()
                .take(20)
                .flat_map(|(i, c)| [i.index, c.index])
                .collect();
            events.extend(pending.iter().take(20));
            counterexamples.push(Counterexample::new(
                format!(
                    "error rate {:.2}% exceeds {:.2}%: {} failed, {} unknown, {} never completed (first 20 of each listed)",
                    error_rate * 100.0,
                    max * 100.0,
                    failed.iter().filter(|(_, c)| c.event_type == EventType::Fail).count(),
                    failed.iter().filter(|(_, c)| c.event_type == EventType::Info).count(),
                    pending.len()
                ),
                vec![],
                events,
            ));
        }
    }
    Verdict::new(NAME, parts.join("; "), counterexamples)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn slo(p99_ms: Option<u64>, error_rate: Option<f64>) -> Slo {
        Slo {
            p99_latency: p99_ms.map(Duration::from_millis),
            error_rate,
        }
    }

    /// 100 requests taking 1..=100 ms, the last `failures` of them failed.
    fn history(failures: usize) -> (History, Vec<(usize, usize)>) {
        let mut builder = HistoryBuilder::default();
        let mut events = Vec::new();
        for n in 1..=100u64 {
            let outcome = if n as usize > 100 - failures {
                EventType::Fail
            } else {
                EventType::Ok
            };
            events.push(builder.place(
                &format!("k{n}"),
                "good",
                0,
                n,
                outcome,
                Some(&format!("o{n}")),
            ));
        }
        (builder.build(), events)
    }

    #[test]
    fn latency_and_errors_within_the_objectives_pass() {
        let (history, _) = history(1);
        let verdict = check(&slo(Some(99), Some(0.01)), &history);
        assert!(verdict.ok, "{verdict:?}");
        assert!(verdict.summary.contains("p99 99ms"), "{}", verdict.summary);
    }

    #[test]
    fn a_p99_above_the_bound_fails_with_the_slow_placements() {
        let (history, events) = history(0);
        let verdict = check(&slo(Some(98), None), &history);
        assert!(!verdict.ok);
        assert_eq!(
            verdict.counterexamples[0].events,
            [events[99].0, events[99].1, events[98].0, events[98].1]
        );
        assert_eq!(verdict.counterexamples[0].subjects, ["k100", "k99"]);
    }

    #[test]
    fn too_many_failed_or_unfinished_placements_fail() {
        let (history, events) = history(2);
        let verdict = check(&slo(None, Some(0.01)), &history);
        assert!(!verdict.ok);
        assert_eq!(
            verdict.counterexamples[0].events,
            [events[98].0, events[98].1, events[99].0, events[99].1]
        );
        assert!(verdict.counterexamples[0].description.contains("2 failed"));

        let mut builder = HistoryBuilder::default();
        builder.placed("k", "a", 0);
        let pending = builder.pending_place("k2", 5);
        let verdict = check(&slo(None, Some(0.1)), &builder.build());
        assert!(!verdict.ok, "1 of 2 never completed");
        assert_eq!(verdict.counterexamples[0].events, [pending]);
    }
}
