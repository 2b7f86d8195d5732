//! `report.html`: one self-contained page a person reads after a run.
//!
//! Top to bottom: the verdict banner, the invariant table (failing expectations first, each
//! counterexample expandable to its slice of history), latency p50/p99, throughput and error
//! rate over time with the fault windows shaded and labelled, a circuit-breaker state timeline
//! per link, how the units of work ended, and the run's facts.
//!
//! The page has no script at all and fetches nothing: styles are inline, charts are inline SVG,
//! and a Content-Security-Policy forbids scripts and every fetch, so a recorded payload that
//! slipped through escaping still could not run. Everything recorded (payloads, error
//! messages, names) goes through [`escape`].

use std::fmt::Write;

use super::model::{AppliedFault, CircuitTimeline, Report, ReportVerdict};

/// Escapes text for HTML and XML element content and attribute values (the contracts crate's
/// [`escape_markup`], shared with contract verification's JUnit output).
pub use faultline_contracts::verify::report::escape_markup as escape;

/// No script, no fetch of any kind; inline styles and data: images only.
pub(crate) const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

pub(crate) const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#1d232a;background:#fff}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
.banner{padding:12px 16px;border-radius:6px;font-size:18px;font-weight:600;color:#fff}
.banner.passed{background:#1f7a3f}.banner.failed{background:#b3261e}
.muted{color:#5b6570}table{border-collapse:collapse;width:100%;margin:4px 0}
th,td{border:1px solid #dde;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f5f7}tr.failed td.verdict{color:#b3261e;font-weight:600}tr.passed td.verdict{color:#1f7a3f}
details{margin:4px 0}summary{cursor:pointer}pre,code{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all}
#invariants td:first-child{width:24%}#invariants td.verdict{white-space:nowrap}
table.history td:nth-child(5){min-width:18em}table.history td{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
svg.chart{display:block;margin:6px 0;background:#fbfcfd;border:1px solid #e4e7ea}
svg text{font:11px system-ui,sans-serif;fill:#333}.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
"#;

/// The page of `report`.
pub fn render(report: &Report) -> String {
    let mut page = String::new();
    let title = format!(
        "{} — {}",
        report.run.scenario,
        if report.run.passed {
            "passed"
        } else {
            "FAILED"
        }
    );
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    banner(&mut page, report);
    invariants(&mut page, &report.verdicts);
    charts(&mut page, report);
    circuits(&mut page, report);
    outcomes(&mut page, report);
    faults(&mut page, &report.faults);
    facts(&mut page, report);
    page.push_str("</body></html>\n");
    page
}

fn banner(page: &mut String, report: &Report) {
    let failed: Vec<&str> = report.failures().map(|v| v.checker.as_str()).collect();
    let total = report.verdicts.len();
    let text = if report.run.passed {
        format!("PASSED — all {total} expectations held")
    } else if failed.is_empty() {
        format!(
            "FAILED — faults left unhealed: {}",
            report.run.unhealed.join("; ")
        )
    } else {
        format!(
            "FAILED — {} of {total} expectations violated: {}",
            failed.len(),
            failed.join(", ")
        )
    };
    let _ = write!(
        page,
        "<div class=\"banner {}\" id=\"verdict\">{}</div>\n<h1>{}</h1><p>{}</p>\
         <p class=\"muted\">run {} · seed {} · {:.1} s</p>\n",
        if report.run.passed {
            "passed"
        } else {
            "failed"
        },
        escape(&text),
        escape(&report.run.scenario),
        escape(&report.run.description),
        escape(&report.run.id),
        report.run.seed,
        report.run.duration_ms as f64 / 1000.0,
    );
}

fn invariants(page: &mut String, verdicts: &[ReportVerdict]) {
    page.push_str("<h2>Expectations</h2>\n<table id=\"invariants\"><tr><th>expectation</th><th>verdict</th><th>what was judged</th></tr>\n");
    for verdict in verdicts {
        let class = if verdict.passed { "passed" } else { "failed" };
        let _ = write!(
            page,
            "<tr class=\"{class}\"><td>{}</td><td class=\"verdict\">{}</td><td>{}",
            escape(&verdict.checker),
            if verdict.passed { "held" } else { "VIOLATED" },
            escape(&verdict.summary)
        );
        for (n, example) in verdict.counterexamples.iter().enumerate() {
            let _ = write!(
                page,
                "<details class=\"counterexample\"{}><summary>counterexample {}: {}</summary>",
                if n == 0 { " open" } else { "" },
                n + 1,
                escape(&example.description)
            );
            if !example.subjects.is_empty() {
                let _ = write!(
                    page,
                    "<p>about: <code>{}</code></p>",
                    escape(&example.subjects.join(", "))
                );
            }
            if example.history.is_empty() {
                page.push_str("<p class=\"muted\">no history events named</p>");
            } else {
                page.push_str("<table class=\"history\"><tr><th>#</th><th>time</th><th>process</th><th>type</th><th>operation</th><th>value</th></tr>");
                for line in &example.history {
                    let value = if line.value.is_null() {
                        String::new()
                    } else {
                        line.value.to_string()
                    };
                    let _ = write!(
                        page,
                        "<tr><td>{}</td><td>{:.1} ms</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        line.index,
                        line.time_ms,
                        escape(&line.process),
                        escape(&line.event_type),
                        escape(&line.op),
                        escape(&value)
                    );
                }
                page.push_str("</table>");
            }
            page.push_str("</details>");
        }
        page.push_str("</td></tr>\n");
    }
    page.push_str("</table>\n");
}

/// Plot area geometry of every time chart, so they line up.
const WIDTH: f64 = 960.0;
const LEFT: f64 = 120.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const PLOT_HEIGHT: f64 = 150.0;

struct Axis {
    end_ms: f64,
}

impl Axis {
    fn x(&self, ms: f64) -> f64 {
        LEFT + (ms / self.end_ms).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }
}

struct Series<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

/// Rounds `max` up to a readable axis maximum.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * magnitude)
}

/// Shades each applied fault's window over a plot `height` high, labelling it when `label`.
fn fault_windows(svg: &mut String, axis: &Axis, faults: &[AppliedFault], height: f64, label: bool) {
    for fault in faults {
        let Some(start) = fault.applied_ms else {
            continue;
        };
        let end = fault.healed_ms.unwrap_or(axis.end_ms);
        let (x0, x1) = (axis.x(start), axis.x(end));
        let _ = write!(
            svg,
            "<rect class=\"fault-window\" x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{height:.1}\" fill=\"#d93025\" fill-opacity=\"0.12\"><title>{}</title></rect>",
            (x1 - x0).max(1.0),
            escape(&format!("fault #{}: {}", fault.index, fault.description))
        );
        if label {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#a52714\">#{} {}</text>",
                x0 + 3.0,
                TOP + 12.0 + 12.0 * (fault.index % 3) as f64,
                fault.index,
                escape(&fault.description)
            );
        }
    }
}

fn time_axis(svg: &mut String, axis: &Axis, bottom: f64) {
    let step_s = nice_max(axis.end_ms / 1000.0 / 8.0).max(1.0);
    let mut t = 0.0;
    while t * 1000.0 <= axis.end_ms {
        let x = axis.x(t * 1000.0);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#999\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t}s</text>",
            bottom + 4.0,
            bottom + 16.0
        );
        t += step_s;
    }
}

fn line_chart(
    page: &mut String,
    id: &str,
    title: &str,
    unit: &str,
    series: &[Series<'_>],
    report: &Report,
) {
    let axis = Axis {
        end_ms: report.history_end_ms().max(1.0),
    };
    let max = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let height = TOP + PLOT_HEIGHT + 24.0;
    let bottom = TOP + PLOT_HEIGHT;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\"><text x=\"{LEFT}\" y=\"16\" font-weight=\"600\">{}</text>",
        escape(title),
        escape(title)
    );
    fault_windows(&mut svg, &axis, &report.faults, PLOT_HEIGHT, true);
    for i in 0..=4 {
        let value = max * f64::from(i) / 4.0;
        let y = bottom - PLOT_HEIGHT * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e4e7ea\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}{}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            format_number(value),
            escape(unit)
        );
    }
    time_axis(&mut svg, &axis, bottom);
    for s in series {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", axis.x(*t), bottom - PLOT_HEIGHT * v / max))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"><title>{}</title></polyline>",
            s.color,
            points.join(" "),
            escape(s.name)
        );
    }
    svg.push_str("</svg>");
    page.push_str(&svg);
    page.push_str("<div class=\"legend\">");
    for s in series {
        let _ = write!(
            page,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            s.color,
            escape(s.name)
        );
    }
    page.push_str(
        "<span><i class=\"sw\" style=\"background:#f6d5d3\"></i>fault window</span></div>\n",
    );
}

fn format_number(value: f64) -> String {
    if value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn charts(page: &mut String, report: &Report) {
    page.push_str("<h2>Requests over time</h2>\n");
    let half = report.timeseries.bucket_ms as f64 / 2.0;
    let at = |start: u64| start as f64 + half;
    let points = &report.timeseries.points;
    if let Some(latency) = report.request_latency() {
        let _ = write!(
            page,
            "<p>{} requests: p50 {} ms · p90 {} ms · p99 {} ms · max {} ms{}</p>",
            latency.count,
            format_number(latency.p50_ms),
            format_number(latency.p90_ms),
            format_number(latency.p99_ms),
            format_number(latency.max_ms),
            report
                .request_error_rate()
                .map_or(String::new(), |r| format!(
                    " · error rate {}%",
                    format_number(r * 100.0)
                ))
        );
    }
    let _ = write!(
        page,
        "<p class=\"muted\">each point: requests completed in {} s</p>",
        format_number(report.timeseries.bucket_ms as f64 / 1000.0)
    );
    line_chart(
        page,
        "latency-chart",
        "Latency (ms)",
        "",
        &[
            Series {
                name: "p50",
                color: "#1a73e8",
                points: points
                    .iter()
                    .filter_map(|p| Some((at(p.start_ms), p.p50_ms?)))
                    .collect(),
            },
            Series {
                name: "p99",
                color: "#e8710a",
                points: points
                    .iter()
                    .filter_map(|p| Some((at(p.start_ms), p.p99_ms?)))
                    .collect(),
            },
        ],
        report,
    );
    line_chart(
        page,
        "throughput-chart",
        "Throughput (completed requests/s)",
        "",
        &[
            Series {
                name: "completed/s",
                color: "#188038",
                points: points
                    .iter()
                    .map(|p| (at(p.start_ms), p.throughput_per_s))
                    .collect(),
            },
            Series {
                name: "failed or unknown/s",
                color: "#b3261e",
                points: points
                    .iter()
                    .map(|p| {
                        (
                            at(p.start_ms),
                            p.errors as f64 * 1000.0 / report.timeseries.bucket_ms as f64,
                        )
                    })
                    .collect(),
            },
        ],
        report,
    );
    line_chart(
        page,
        "error-rate-chart",
        "Error rate (failed or unknown, % of completed)",
        "%",
        &[Series {
            name: "error rate",
            color: "#b3261e",
            points: points
                .iter()
                .filter(|p| p.completed > 0)
                .map(|p| (at(p.start_ms), p.error_rate * 100.0))
                .collect(),
        }],
        report,
    );
}

fn state_color(state: &str) -> &'static str {
    match state {
        "closed" => "#34a853",
        "open" => "#d93025",
        "half_open" => "#f9ab00",
        _ => "#9aa0a6",
    }
}

fn circuits(page: &mut String, report: &Report) {
    page.push_str("<h2>Circuit breakers</h2>\n");
    if report.circuits.is_empty() {
        page.push_str("<p class=\"muted\">no circuit breaker was read in this run</p>\n");
        return;
    }
    let axis = Axis {
        end_ms: report.history_end_ms().max(1.0),
    };
    let row = 26.0;
    let height = TOP + row * report.circuits.len() as f64 + 24.0;
    let bottom = TOP + row * report.circuits.len() as f64;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"circuit-chart\" role=\"img\" aria-label=\"circuit breaker states\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\"><text x=\"{LEFT}\" y=\"16\" font-weight=\"600\">Circuit-breaker state per link</text>"
    );
    fault_windows(&mut svg, &axis, &report.faults, bottom - TOP, false);
    for (i, circuit) in report.circuits.iter().enumerate() {
        let y = TOP + row * i as f64 + 4.0;
        for (from, to, state) in segments(circuit, axis.end_ms) {
            let (x0, x1) = (axis.x(from), axis.x(to));
            let _ = write!(
                svg,
                "<rect class=\"circuit-state {state}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} from {:.1}s</title></rect>",
                (x1 - x0).max(0.5),
                row - 8.0,
                state_color(&state),
                escape(&circuit.link),
                escape(&state),
                from / 1000.0
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            y + 13.0,
            escape(&circuit.link.replace("->", "→"))
        );
    }
    time_axis(&mut svg, &axis, bottom);
    svg.push_str("</svg>");
    page.push_str(&svg);
    page.push_str("<div class=\"legend\">");
    for state in ["closed", "open", "half_open"] {
        let _ = write!(
            page,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{state}</span>",
            state_color(state)
        );
    }
    page.push_str("</div>\n<table><tr><th>link</th><th>final state</th><th>transitions</th></tr>");
    for circuit in &report.circuits {
        let transitions: Vec<String> = circuit
            .transitions
            .iter()
            .map(|t| match t.at_ms {
                Some(at) => format!("{} → {} at {:.1} s", t.from, t.to, at / 1000.0),
                None => format!("{} → {}", t.from, t.to),
            })
            .collect();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&circuit.link),
            escape(&circuit.final_state),
            escape(&if transitions.is_empty() {
                "none".to_string()
            } else {
                transitions.join("; ")
            })
        );
    }
    page.push_str("</table>\n");
}

/// `(from_ms, to_ms, state)` spans of a breaker over the run, on the history's clock.
fn segments(circuit: &CircuitTimeline, end_ms: f64) -> Vec<(f64, f64, String)> {
    let mut spans = Vec::new();
    let mut state = circuit
        .transitions
        .first()
        .map_or(circuit.final_state.clone(), |t| t.from.clone());
    let mut since = 0.0;
    for transition in &circuit.transitions {
        let Some(at) = transition.at_ms else {
            continue;
        };
        let at = at.clamp(0.0, end_ms);
        spans.push((since, at, state));
        state = transition.to.clone();
        since = at;
    }
    spans.push((since, end_ms, state));
    spans
}

fn outcomes(page: &mut String, report: &Report) {
    page.push_str("<h2>Outcomes</h2>\n");
    let Some(outcomes) = &report.outcomes else {
        page.push_str(
            "<p class=\"muted\">the workload did not report how its units of work ended, or the run stopped before the system's final state was read</p>\n",
        );
        return;
    };
    let mut rows: Vec<(String, u64, &str)> = outcomes
        .ended
        .iter()
        .map(|(state, count)| (state.clone(), *count, "#1a73e8"))
        .collect();
    rows.push((
        "unfinished".into(),
        outcomes.unfinished.len() as u64,
        "#d93025",
    ));
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let row = 22.0;
    let height = 12.0 + row * rows.len() as f64;
    let label_width = 260.0;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"outcome-chart\" role=\"img\" aria-label=\"outcomes\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">"
    );
    for (i, (label, count, color)) in rows.iter().enumerate() {
        let y = 6.0 + row * i as f64;
        let width = (WIDTH - label_width - 80.0) * *count as f64 / max;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{label_width}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\">{count}</text>",
            label_width - 6.0,
            y + 13.0,
            escape(label),
            row - 6.0,
            label_width + width + 6.0,
            y + 13.0
        );
    }
    svg.push_str("</svg>");
    page.push_str(&svg);
    let _ = write!(page, "<p>{} {} in all.", outcomes.total, escape(&outcomes.unit));
    if !outcomes.unfinished.is_empty() {
        let _ = write!(
            page,
            " Unfinished: <code>{}</code>",
            escape(&outcomes.unfinished.join(", "))
        );
    }
    page.push_str("</p>\n");
}

fn faults(page: &mut String, faults: &[AppliedFault]) {
    page.push_str("<h2>Fault schedule</h2>\n");
    if faults.is_empty() {
        page.push_str("<p class=\"muted\">no faults scheduled</p>\n");
        return;
    }
    page.push_str("<table id=\"faults\"><tr><th>#</th><th>fault</th><th>planned (from load start)</th><th>applied</th><th>healed</th><th>error</th></tr>");
    let at = |t: Option<f64>| t.map_or("never".to_string(), |t| format!("{:.1} s", t / 1000.0));
    for fault in faults {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{:.1} s – {:.1} s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            fault.index,
            escape(&fault.description),
            fault.planned_start_ms / 1000.0,
            fault.planned_end_ms / 1000.0,
            at(fault.applied_ms),
            at(fault.healed_ms),
            escape(fault.error.as_deref().unwrap_or(""))
        );
    }
    page.push_str("</table>\n");
}

fn facts(page: &mut String, report: &Report) {
    page.push_str("<h2>Operations</h2>\n<table id=\"operations\"><tr><th>operation</th><th>invoked</th><th>ok</th><th>fail</th><th>unknown</th><th>never completed</th></tr>");
    for op in &report.operations {
        let name = match &op.kind {
            Some(kind) => format!("{} ({kind})", op.op),
            None => op.op.clone(),
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&name),
            op.invoked,
            op.ok,
            op.fail,
            op.info,
            op.pending
        );
    }
    page.push_str("</table>\n<h2>Latency distribution</h2>\n");
    for histogram in &report.latency {
        let buckets: Vec<String> = histogram
            .buckets
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| format!("≤{} ms: {}", format_number(b.le_ms), b.count))
            .collect();
        let _ = write!(
            page,
            "<p><b>{} ({})</b>: {} · min {} · mean {} · p50 {} · p90 {} · p99 {} · p99.9 {} · max {} ms<br><span class=\"muted\">{}</span></p>",
            escape(&histogram.op),
            escape(&histogram.outcome),
            histogram.count,
            format_number(histogram.min_ms),
            format_number(histogram.mean_ms),
            format_number(histogram.p50_ms),
            format_number(histogram.p90_ms),
            format_number(histogram.p99_ms),
            format_number(histogram.p999_ms),
            format_number(histogram.max_ms),
            escape(&buckets.join(" · "))
        );
    }
    page.push_str("<h2>Run</h2>\n<table id=\"facts\">");
    let images: Vec<String> = report
        .versions
        .images
        .iter()
        .map(|(role, image)| format!("{role}: {image}"))
        .collect();
    for (name, value) in [
        ("faultline", report.versions.faultline.clone()),
        ("images", images.join(", ")),
        ("services", report.stack.services.join(", ")),
        ("links", report.stack.links.join(", ")),
        ("report format", format!("version {}", report.version)),
    ] {
        let _ = write!(
            page,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    page.push_str("</table>\n");
}
