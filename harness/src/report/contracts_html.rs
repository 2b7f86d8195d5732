//! `verification.html`: contract verification results as a page, in the same style and under
//! the same rules as `report.html` (no script, nothing fetched, everything escaped): a verdict
//! banner, then one table per pact with failing interactions first, each failure expandable to
//! its mismatches (part, JSON path, expected, actual, rule).

use std::fmt::Write;

use faultline_contracts::verify::{Outcome, Report};

use super::html::{escape, CONTENT_SECURITY_POLICY, STYLE};

/// The page of a verification `report`.
pub fn render(report: &Report) -> String {
    let (n, passed, failed, errors, pending) = report.counts();
    let ok = report.holds();
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\
         <title>contract verification — {}</title><style>{STYLE}</style></head><body>\n",
        if ok { "passed" } else { "FAILED" }
    );
    let _ = write!(
        page,
        "<div class=\"banner {}\" id=\"verdict\">{} — {n} interactions: {passed} passed, {failed} failed, {errors} errors, {pending} pending failures</div>\n\
         <h1>Contract verification</h1><p class=\"muted\">{:.2} s · {:.1} interactions/s</p>\n",
        if ok { "passed" } else { "failed" },
        if ok { "PASSED" } else { "FAILED" },
        report.duration.as_secs_f64(),
        report.throughput()
    );
    let mut pacts: Vec<_> = report.pacts.iter().collect();
    pacts.sort_by_key(|p| p.holds());
    for pact in pacts {
        let _ = write!(
            page,
            "<h2>{} → {} <span class=\"muted\">{}</span></h2>\n<table class=\"pact\"><tr><th>interaction</th><th>type</th><th>provider states</th><th>verdict</th><th>ms</th></tr>\n",
            escape(&pact.consumer),
            escape(&pact.provider),
            escape(&pact.source)
        );
        let mut interactions: Vec<_> = pact.interactions.iter().collect();
        interactions.sort_by_key(|i| i.holds());
        for i in interactions {
            let verdict = match (&i.outcome, i.pending) {
                (Outcome::Passed, _) => "passed".to_string(),
                (_, true) => "pending (failed)".to_string(),
                (Outcome::Failed(m), false) => format!("FAILED ({} mismatches)", m.len()),
                (Outcome::Error(_), false) => "ERROR".to_string(),
            };
            let detail = match &i.outcome {
                Outcome::Passed => String::new(),
                Outcome::Failed(mismatches) => {
                    let mut rows = String::from(
                        "<details><summary>mismatches</summary><table><tr><th>part</th><th>path</th><th>expected</th><th>actual</th><th>rule</th></tr>",
                    );
                    for m in mismatches {
                        let _ = write!(
                            rows,
                            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                            escape(&m.part.to_string()),
                            escape(&m.path),
                            escape(&m.expected),
                            escape(&m.actual),
                            escape(&m.rule)
                        );
                    }
                    rows.push_str("</table></details>");
                    rows
                }
                Outcome::Error(why) => format!(
                    "<details><summary>error</summary><pre>{}</pre></details>",
                    escape(why)
                ),
            };
            let _ = writeln!(
                page,
                "<tr class=\"{}\"><td>{}{detail}</td><td>{}</td><td>{}</td><td class=\"verdict\">{verdict}</td><td>{}</td></tr>",
                if i.holds() { "passed" } else { "failed" },
                escape(&i.description),
                escape(&i.kind),
                escape(&i.provider_states.join("; ")),
                i.duration.as_millis()
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use faultline_contracts::matching::{Mismatch, Part};
    use faultline_contracts::verify::{InteractionResult, PactResult};

    use super::*;

    fn interaction(description: &str, outcome: Outcome) -> InteractionResult {
        InteractionResult {
            description: description.into(),
            kind: "Synchronous/HTTP".into(),
            provider_states: vec!["a state".into()],
            pending: false,
            outcome,
            duration: Duration::from_millis(3),
        }
    }

    #[test]
    fn failures_come_first_escaped_with_their_mismatches() {
        let report = Report {
            pacts: vec![PactResult {
                source: "order-payment.json".into(),
                consumer: "order".into(),
                provider: "payment".into(),
                interactions: vec![
                    interaction("fine", Outcome::Passed),
                    interaction(
                        "a charge <script>alert(1)</script>",
                        Outcome::Failed(vec![Mismatch {
                            part: Part::Body,
                            path: "$.status".into(),
                            expected: "\"CHARGED\"".into(),
                            actual: "<img src=x onerror=alert(1)>".into(),
                            rule: "equality".into(),
                            message: "differs".into(),
                        }]),
                    ),
                ],
                duration: Duration::from_millis(10),
            }],
            duration: Duration::from_millis(12),
        };
        let page = render(&report);
        assert!(page.contains("banner failed"));
        assert!(!page.contains("<script>") && !page.contains("<img"));
        assert!(page.contains("a charge &lt;script&gt;"));
        let failing = page.find("a charge &lt;script&gt;").unwrap();
        let passing = page.find("<td>fine").unwrap();
        assert!(failing < passing, "the failing interaction is listed first");
        assert!(page.contains("<code>$.status</code>"));
    }
}
