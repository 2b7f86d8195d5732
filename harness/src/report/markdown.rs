//! `summary.md`: a run in a few lines, for a pull-request comment. The verdict, the failing
//! expectations with their first counterexample, one latency line and the faults; the rest is
//! in `report.html`.

use std::fmt::Write;

use super::model::Report;

/// Counterexamples shown per failing expectation; the HTML report has all of them.
const EXAMPLES_SHOWN: usize = 2;

/// Makes text safe inside a Markdown table cell or line: no pipes, no newlines, no HTML tags
/// (`<` is written as an entity; a lone `>` starts nothing inside a line).
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace(['\n', '\r'], " ")
}

/// The Markdown summary of `report`.
pub fn render(report: &Report) -> String {
    let mut md = String::new();
    let failures: Vec<_> = report.failures().collect();
    let _ = writeln!(
        md,
        "### {} `{}` — {}\n",
        if report.run.passed { "✅" } else { "❌" },
        cell(&report.run.scenario),
        if report.run.passed {
            format!("passed ({} expectations held)", report.verdicts.len())
        } else {
            format!(
                "FAILED ({} of {} expectations violated)",
                failures.len(),
                report.verdicts.len()
            )
        }
    );
    let _ = writeln!(
        md,
        "seed {} · run `{}` · {:.1} s\n",
        report.run.seed,
        cell(&report.run.id),
        report.run.duration_ms as f64 / 1000.0
    );
    md.push_str("| expectation | verdict | summary |\n|---|---|---|\n");
    for verdict in &report.verdicts {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            cell(&verdict.checker),
            if verdict.passed {
                "held"
            } else {
                "**VIOLATED**"
            },
            cell(&verdict.summary)
        );
    }
    for fault in &report.run.unhealed {
        let _ = writeln!(md, "| faults healed | **VIOLATED** | {} |", cell(fault));
    }
    md.push('\n');
    if let Some(latency) = report.request_latency() {
        let _ = writeln!(
            md,
            "**Requests:** {} completed · p50 {:.0} ms · p99 {:.0} ms · error rate {:.1}%\n",
            latency.count,
            latency.p50_ms,
            latency.p99_ms,
            report.request_error_rate().unwrap_or(0.0) * 100.0
        );
    }
    // End-to-end durations the workload read from the system (`saga` for the reference one).
    for durations in report.latency.iter().filter(|h| h.op != "request") {
        let _ = writeln!(
            md,
            "**End to end, `{}`**: {} · p50 {:.0} ms · p99 {:.0} ms · max {:.0} ms\n",
            durations.op, durations.count, durations.p50_ms, durations.p99_ms, durations.max_ms
        );
    }
    if !report.faults.is_empty() {
        let faults: Vec<String> = report
            .faults
            .iter()
            .map(|f| {
                format!(
                    "{} ({:.0}–{:.0} s)",
                    cell(&f.description),
                    f.planned_start_ms / 1000.0,
                    f.planned_end_ms / 1000.0
                )
            })
            .collect();
        let _ = writeln!(md, "**Faults:** {}\n", faults.join(", "));
    }
    for verdict in failures {
        let _ = writeln!(
            md,
            "<details><summary>{}</summary>\n",
            cell(&verdict.checker)
        );
        for example in verdict.counterexamples.iter().take(EXAMPLES_SHOWN) {
            let _ = writeln!(md, "- {}", cell(&example.description));
            if !example.subjects.is_empty() {
                let _ = writeln!(md, "  about: `{}`", cell(&example.subjects.join(", ")));
            }
            if !example.events.is_empty() {
                let events: Vec<String> = example.events.iter().map(|e| e.to_string()).collect();
                let _ = writeln!(md, "  history events: {}", events.join(", "));
            }
        }
        let more = verdict.counterexamples.len().saturating_sub(EXAMPLES_SHOWN);
        if more > 0 {
            let _ = writeln!(md, "- … and {more} more in report.html");
        }
        md.push_str("\n</details>\n\n");
    }
    md.push_str("Full report: `report.html` in the run's folder.\n");
    md
}
