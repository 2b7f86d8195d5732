//! `slo`: the scenario's service-level objectives over the whole run, on the requests of the
//! workload's clients:
//!
//! - p99 latency: nearest-rank 99th percentile of invocation → completion over every completed
//!   workload request (ok, fail and info alike), at most `slo.p99_latency`;
//! - error rate: workload requests that did not end ok (fail, info, or never completed) over
//!   all of their invocations, at most `slo.error_rate`.
//!
//! - per operation (`[expectations.slo.operations.NAME]`): the same two over that operation's
//!   requests only (every kind of it, or `name (kind)` for one); an operation with objectives
//!   and no request fails, as nothing shows they hold.
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
    let mut parts = Vec::new();
    let mut counterexamples = Vec::new();
    let (summary, found, _) = judge(history, &|_| true, slo.p99_latency, slo.error_rate, "");
    parts.push(summary);
    counterexamples.extend(found);
    for objective in &slo.operations {
        let of_it = |op: &Op| match op {
            Op::Request { operation, kind, .. } => objective.covers(operation, kind.as_deref()),
            _ => false,
        };
        let prefix = format!("{}: ", objective.operation);
        let (summary, found, total) =
            judge(history, &of_it, objective.p99_latency, objective.error_rate, &prefix);
        parts.push(summary);
        // Objectives over no request at all are missed: nothing shows they hold.
        if total == 0 {
            counterexamples.push(Counterexample::new(
                format!("{prefix}no request was sent by the workload's clients: the objectives cannot be shown to hold"),
                vec![],
                vec![],
            ));
        }
        counterexamples.extend(found);
    }
    Verdict::new(NAME, parts.join(" | "), counterexamples)
}

/// The objectives over the clients' requests whose op `covers` says are meant: a summary, a
/// counterexample per objective missed (each written after `prefix`), and how many requests
/// there were.
fn judge(
    history: &History,
    covers: &dyn Fn(&Op) -> bool,
    p99_latency: Option<Duration>,
    error_rate_bound: Option<f64>,
    prefix: &str,
) -> (String, Vec<Counterexample>, usize) {
    let requests: Vec<_> = history
        .pairs()
        .into_iter()
        .filter(|(i, _)| is_client_call(i) && covers(&i.op))
        .collect();
    let pending: Vec<usize> = history
        .pending()
        .iter()
        .filter(|e| is_client_call(e) && covers(&e.op))
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
        "{prefix}{total} requests: p99 {}, error rate {:.2}% ({errors} not ok)",
        p99.map_or("n/a".into(), ms),
        error_rate * 100.0
    )];
    let mut counterexamples = Vec::new();
    if let Some(max) = p99_latency {
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
                format!("{prefix}p99 latency {} exceeds {}: {} requests slower than the bound (slowest 10 listed)", ms(p99.unwrap_or_default()), ms(max), slow.len()),
                keys,
                events,
            ));
        }
    }
    if let Some(max) = error_rate_bound {
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
                    "{prefix}error rate {:.2}% exceeds {:.2}%: {} failed, {} unknown, {} never completed (first 20 of each listed)",
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
    (parts.join("; "), counterexamples, total)
}

/// A p99 probe's verdict on the latencies of the `sample` calls that succeeded: every one must
/// have, and the nearest-rank 99th percentile must be within `max`.
pub fn p99_verdict(latencies: &[Duration], sample: u32, max: Duration, what: &str) -> (bool, String) {
    match super::percentile(latencies, 0.99) {
        Some(p99) if latencies.len() == sample as usize => (
            p99 <= max,
            format!(
                "p99 latency {:.0} ms over {sample} {what} (at most {:.0} ms expected)",
                p99.as_secs_f64() * 1000.0,
                max.as_secs_f64() * 1000.0
            ),
        ),
        _ => (
            false,
            format!(
                "only {} of {sample} probe {what} succeeded",
                latencies.len()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::fixtures::*;
    use super::*;
    use faultline_chaos::scenario::OperationSlo;

    fn slo(p99_ms: Option<u64>, error_rate: Option<f64>) -> Slo {
        Slo {
            p99_latency: p99_ms.map(Duration::from_millis),
            error_rate,
            operations: Vec::new(),
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
    fn an_operations_objectives_are_judged_over_its_own_requests() {
        // 90 good placements of 10 ms, 10 declining ones of 500 ms, 2 of them failed.
        let mut builder = HistoryBuilder::default();
        for n in 0..100u64 {
            let (kind, took, outcome) = match n {
                0..90 => ("good", 10, EventType::Ok),
                90..98 => ("declining", 500, EventType::Ok),
                _ => ("declining", 500, EventType::Fail),
            };
            builder.place(&format!("k{n}"), kind, n * 1000, n * 1000 + took, outcome, Some("o"));
        }
        let history = builder.build();
        let objective = |operation: &str, p99_ms: Option<u64>, error_rate: Option<f64>| OperationSlo {
            operation: operation.into(),
            p99_latency: p99_ms.map(Duration::from_millis),
            error_rate,
        };
        let with = |operations| Slo { p99_latency: None, error_rate: Some(0.05), operations };

        // The whole run keeps 2 % errors; the good placements are fast.
        let verdict = check(&with(vec![objective("place_order (good)", Some(50), Some(0.0))]), &history);
        assert!(verdict.ok, "{verdict:?}");
        assert!(verdict.summary.contains("place_order (good): 90 requests: p99 10ms"), "{}", verdict.summary);

        // The declining ones are slow and 20 % fail: both objectives missed, each named.
        let verdict = check(&with(vec![objective("place_order (declining)", Some(100), Some(0.1))]), &history);
        assert!(!verdict.ok);
        let said: Vec<&str> = verdict.counterexamples.iter().map(|c| c.description.as_str()).collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("place_order (declining): p99 latency 500ms exceeds 100ms"), "{said:?}");
        assert!(said[1].starts_with("place_order (declining): error rate 20.00% exceeds 10.00%"), "{said:?}");

        // Every kind of an operation by its name alone.
        let verdict = check(&with(vec![objective("place_order", None, Some(0.01))]), &history);
        assert!(!verdict.ok);
        assert!(verdict.summary.contains("place_order: 100 requests"), "{}", verdict.summary);

        // Objectives over an operation that sent nothing are not shown to hold.
        let verdict = check(&with(vec![objective("refund", Some(100), None)]), &history);
        assert!(!verdict.ok);
        assert!(verdict.counterexamples[0].description.contains("refund: no request was sent"));
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
