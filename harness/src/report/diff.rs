//! `faultline report diff A B`: what changed between two runs — verdicts that flipped,
//! appeared or disappeared, and the workload requests' latency and error rate.

use std::fmt::Write;

use super::model::Report;

/// What changed from `a` to `b`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDiff {
    /// `(expectation, before, after)`; `None` where a run has no such expectation.
    pub verdicts: Vec<(String, Option<bool>, Option<bool>)>,
    /// `(measure, before, after)`: p50, p99, max in ms, error rate in percent.
    pub latency: Vec<(&'static str, Option<f64>, Option<f64>)>,
}

impl ReportDiff {
    /// Compares two reports.
    pub fn between(a: &Report, b: &Report) -> Self {
        let mut names: Vec<&str> = a.verdicts.iter().map(|v| v.checker.as_str()).collect();
        for v in &b.verdicts {
            if !names.contains(&v.checker.as_str()) {
                names.push(&v.checker);
            }
        }
        let verdict = |r: &Report, name: &str| {
            r.verdicts
                .iter()
                .find(|v| v.checker == name)
                .map(|v| v.passed)
        };
        let verdicts = names
            .into_iter()
            .map(|n| (n.to_string(), verdict(a, n), verdict(b, n)))
            .filter(|(_, before, after)| before != after)
            .collect();
        let (la, lb) = (a.request_latency(), b.request_latency());
        let latency = vec![
            ("p50 ms", la.map(|l| l.p50_ms), lb.map(|l| l.p50_ms)),
            ("p99 ms", la.map(|l| l.p99_ms), lb.map(|l| l.p99_ms)),
            ("max ms", la.map(|l| l.max_ms), lb.map(|l| l.max_ms)),
            (
                "error rate %",
                a.request_error_rate().map(|r| r * 100.0),
                b.request_error_rate().map(|r| r * 100.0),
            ),
        ];
        Self { verdicts, latency }
    }

    /// The diff as text for a terminal.
    pub fn render(&self, a: &Report, b: &Report) -> String {
        let mut out = String::new();
        let word = |v: Option<bool>| match v {
            Some(true) => "held",
            Some(false) => "VIOLATED",
            None => "absent",
        };
        let _ = writeln!(
            out,
            "A: {} ({}, seed {})\nB: {} ({}, seed {})\n",
            a.run.id,
            if a.run.passed { "passed" } else { "FAILED" },
            a.run.seed,
            b.run.id,
            if b.run.passed { "passed" } else { "FAILED" },
            b.run.seed
        );
        if a.run.scenario != b.run.scenario {
            out.push_str("note: the runs are of different scenarios\n\n");
        }
        if self.verdicts.is_empty() {
            out.push_str("verdicts: unchanged\n");
        } else {
            out.push_str("verdicts:\n");
            for (name, before, after) in &self.verdicts {
                let _ = writeln!(out, "  {name}: {} -> {}", word(*before), word(*after));
            }
        }
        out.push_str("\nrequests:\n");
        for (measure, before, after) in &self.latency {
            let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
            let change = match (before, after) {
                (Some(x), Some(y)) if *x > 0.0 => format!("  ({:+.0}%)", (y - x) / x * 100.0),
                (Some(x), Some(y)) => format!("  ({:+.1})", y - x),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {measure:<13} {:>9} -> {:>9}{change}",
                show(*before),
                show(*after)
            );
        }
        out
    }
}
