//! `junit.xml`: the run as test results for CI. One `<testcase>` per expectation (steady-state
//! probes, invariants, circuits, SLO), in the report's order (failing first); a failing one
//! carries its summary as the message and its counterexamples, with their history slices, as
//! the body. An unhealed fault is a failing test case of its own.

use std::fmt::Write;

use super::html::escape;
use super::model::Report;

/// The JUnit XML of `report`.
pub fn render(report: &Report) -> String {
    let suite = format!("chaos.{}", report.run.scenario);
    let unhealed = usize::from(!report.run.unhealed.is_empty());
    let tests = report.verdicts.len() + unhealed;
    let failures = report.failures().count() + unhealed;
    let seconds = report.run.duration_ms as f64 / 1000.0;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"faultline\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{seconds:.3}\">"
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{seconds:.3}\">",
        escape(&suite)
    );
    let _ = writeln!(
        xml,
        "    <properties>\n      <property name=\"run\" value=\"{}\"/>\n      <property name=\"seed\" value=\"{}\"/>\n      <property name=\"faultline\" value=\"{}\"/>\n    </properties>",
        escape(&report.run.id),
        report.run.seed,
        escape(&report.versions.faultline)
    );
    for verdict in &report.verdicts {
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            escape(&suite),
            escape(&verdict.checker)
        );
        if verdict.passed {
            xml.push_str("/>\n");
            continue;
        }
        let mut body = format!("{}\n", verdict.summary);
        for (n, example) in verdict.counterexamples.iter().enumerate() {
            let _ = writeln!(body, "\ncounterexample {}: {}", n + 1, example.description);
            if !example.subjects.is_empty() {
                let _ = writeln!(body, "  about: {}", example.subjects.join(", "));
            }
            for line in &example.history {
                let _ = writeln!(
                    body,
                    "  #{} {:.1} ms {} {} {} {}",
                    line.index,
                    line.time_ms,
                    line.process,
                    line.event_type,
                    line.op,
                    if line.value.is_null() {
                        String::new()
                    } else {
                        line.value.to_string()
                    }
                );
            }
        }
        let _ = write!(
            xml,
            ">\n      <failure message=\"{}\" type=\"expectation violated\">{}</failure>\n    </testcase>\n",
            escape(&verdict.summary),
            escape(&body)
        );
    }
    if unhealed > 0 {
        let text = report.run.unhealed.join("\n");
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"faults healed\" time=\"0\">\n      <failure message=\"faults left unhealed\" type=\"unhealed fault\">{}</failure>\n    </testcase>\n",
            escape(&suite),
            escape(&text)
        );
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}
