//! `explore.html` (the space as a grid of call sites × kinds) and `junit.xml`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::space::{Kind, Place};
use super::state::{Exploration, Failure, RERUNS};

/// The state of one cell of the grid: what each experiment of this kind at this place did.
fn cells(exploration: &Exploration) -> BTreeMap<(Place, Kind), (usize, usize)> {
    let mut grid: BTreeMap<(Place, Kind), (usize, usize)> = BTreeMap::new();
    for tried in &exploration.experiments {
        for fault in &tried.experiment.faults {
            let cell = grid.entry((fault.place.clone(), fault.kind)).or_default();
            cell.0 += 1;
            if !tried.ok {
                cell.1 += 1;
            }
        }
    }
    grid
}

fn escape(text: &str) -> String {
    crate::report::html::escape(text)
}

/// `explore.html`: the fault space as a grid (places × kinds; a cell is green when every
/// experiment with that fault held, red when one failed, grey when none ran), then each
/// failure with its counterexamples and report. Self-contained, like the run reports.
pub fn html(exploration: &Exploration) -> String {
    let grid = cells(exploration);
    let mut places: Vec<Place> = exploration
        .discovery
        .call_sites
        .iter()
        .chain(&exploration.discovery.statements)
        .chain(&exploration.discovery.broker_requests)
        .map(|s| s.to_string())
        .collect();
    for consumer in &exploration.discovery.consumers {
        for topic in &consumer.topics {
            places.push(format!("{} {}/{topic}", consumer.service, consumer.group));
        }
    }
    for tried in &exploration.experiments {
        for fault in &tried.experiment.faults {
            if !places.contains(&fault.place) {
                places.push(fault.place.clone());
            }
        }
    }
    let statements = !exploration.discovery.statements.is_empty();
    let broker = !exploration.discovery.broker_requests.is_empty();
    let kinds: Vec<Kind> = Kind::AT_CALL_SITES
        .iter()
        .copied()
        .chain([Kind::Redeliver])
        .chain(Kind::AT_STATEMENTS.iter().copied().filter(|_| statements))
        .chain(Kind::AT_BROKER_WRITES.iter().chain(&Kind::AT_FETCHES).copied().filter(|_| broker))
        .collect();
    let failed = exploration.failed().count();
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>exploration of {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}\
         .held{{background:#c8e6c9}}.failed{{background:#ef9a9a}}.none{{background:#eee;color:#999}}\
         code{{font-size:12px}}</style></head><body>\
         <h1>Exploration of {name}</h1><p>System <b>{system}</b>, seed {seed}. {run} experiment(s) run \
         of {total} generated ({singles} single, {combos} combination(s), {skipped} skipped as covered); \
         <b>{failed} failed</b>. {per_minute:.1} experiments per minute{first}. Stopped: {stopped}.</p>",
        name = escape(&exploration.scenario),
        system = escape(&exploration.system),
        seed = exploration.seed,
        run = exploration.experiments.len(),
        total = exploration.experiments.len() + exploration.pending.len(),
        singles = exploration.space.singles,
        combos = exploration.space.combinations,
        skipped = exploration.space.skipped_covered,
        per_minute = exploration.per_minute,
        first = exploration
            .first_failure_seconds
            .map(|s| format!("; first failure after {s:.0} s"))
            .unwrap_or_default(),
        stopped = exploration
            .stopped
            .map(|s| format!("{s:?}").to_lowercase())
            .unwrap_or_else(|| "running".into()),
    );
    if !exploration.discovery.base_failures.is_empty() {
        page.push_str(
            "<h2>The fault-free run did not hold</h2><p>Exploring a system that fails without \
             a fault finds nothing new: nothing was explored.</p><ul>",
        );
        push_failures(&mut page, &exploration.discovery.base_failures);
        page.push_str("</ul>");
        if let Some(report) = &exploration.discovery.report {
            let _ = write!(
                page,
                "<p>Report: <code>{}</code></p>",
                escape(&report.join("report.html").display().to_string())
            );
        }
    }
    page.push_str("<h2>The fault space</h2><table><tr><th>where</th>");
    for kind in &kinds {
        let _ = write!(page, "<th>{}</th>", kind.name());
    }
    page.push_str("</tr>");
    for place in &places {
        let _ = write!(page, "<tr><td><code>{}</code></td>", escape(place));
        for kind in &kinds {
            let (class, text) = match grid.get(&(place.clone(), *kind)) {
                None => ("none", "·".to_string()),
                Some((runs, 0)) => ("held", format!("{runs}")),
                Some((runs, failed)) => ("failed", format!("{failed}/{runs}")),
            };
            let _ = write!(page, "<td class=\"{class}\">{text}</td>");
        }
        page.push_str("</tr>");
    }
    page.push_str("</table><p>A cell counts the experiments with that fault (failed/run).</p>");
    page.push_str("<h2>Failures</h2>");
    if failed == 0 {
        page.push_str("<p>None.</p>");
    }
    for tried in exploration.failed() {
        let _ = write!(
            page,
            "<h3>#{} {}</h3>",
            tried.number,
            escape(&tried.experiment.id)
        );
        // When each fault was on: a window stretched past a stated give-up point shows here.
        let windows: Vec<String> = tried
            .experiment
            .faults
            .iter()
            .map(|f| {
                let at = |key: &str| f.fault.get(key).and_then(|v| v.as_str()).unwrap_or("?").to_string();
                format!("{} from {} for {}", f.kind.name(), at("start"), at("duration"))
            })
            .collect();
        let _ = write!(page, "<p>On: {}</p><ul>", escape(&windows.join("; ")));
        push_failures(&mut page, &tried.failures);
        page.push_str("</ul>");
        if let Some(report) = &tried.report {
            let _ = write!(
                page,
                "<p>Report: <code>{}</code></p>",
                escape(&report.join("report.html").display().to_string())
            );
        }
        if let Some(reproducer) = &tried.reproducer {
            match &reproducer.file {
                Some(file) => {
                    let _ = write!(
                        page,
                        "<p>Reproducer (failed {} of {RERUNS} reruns; {} run(s) shrinking it): \
                         <code>faultline chaos run {}</code></p><ul>",
                        reproducer.confirmed,
                        reproducer.runs,
                        escape(&file.display().to_string())
                    );
                    for step in &reproducer.steps {
                        let _ = write!(page, "<li>{}</li>", escape(step));
                    }
                    page.push_str("</ul>");
                }
                None => {
                    let _ = write!(
                        page,
                        "<p>Not confirmed: failed {} of {RERUNS} reruns, so not shrunk (flaky).</p>",
                        reproducer.confirmed
                    );
                }
            }
        }
    }
    page.push_str("</body></html>\n");
    page
}

/// Each failure as a list item with its counterexamples.
fn push_failures(page: &mut String, failures: &[Failure]) {
    for failure in failures {
        let _ = write!(
            page,
            "<li><b>{}</b>: {}",
            escape(&failure.checker),
            escape(&failure.summary)
        );
        if !failure.counterexamples.is_empty() {
            page.push_str("<ul>");
            for example in &failure.counterexamples {
                let _ = write!(page, "<li>{}</li>", escape(example));
            }
            page.push_str("</ul>");
        }
        page.push_str("</li>");
    }
}

/// The failures as a JUnit failure's message (the checkers) and body (each with its
/// counterexamples).
fn failure_text(failures: &[Failure]) -> (String, String) {
    let mut body = String::new();
    for failure in failures {
        let _ = writeln!(body, "{}: {}", failure.checker, failure.summary);
        for example in &failure.counterexamples {
            let _ = writeln!(body, "  - {example}");
        }
    }
    let message = failures.iter().map(|f| f.checker.as_str()).collect::<Vec<_>>().join(", ");
    (message, body)
}

/// `junit.xml`: one test case per experiment run; a fault-free run that did not hold is a
/// failed test case of its own.
pub fn junit(exploration: &Exploration) -> String {
    let suite = format!("explore.{}", exploration.scenario);
    let base_failed = usize::from(!exploration.discovery.base_failures.is_empty());
    let tests = exploration.experiments.len() + base_failed;
    let failures = exploration.failed().count() + base_failed;
    let errors = exploration
        .experiments
        .iter()
        .filter(|t| t.error.is_some())
        .count();
    let seconds = exploration.experiment_seconds;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"faultline\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{seconds:.3}\">"
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{seconds:.3}\">",
        escape(&suite)
    );
    if !exploration.discovery.base_failures.is_empty() {
        let (message, body) = failure_text(&exploration.discovery.base_failures);
        let _ = writeln!(
            xml,
            "    <testcase classname=\"{}\" name=\"discovery: the fault-free run\" time=\"{:.3}\"><failure message=\"{}\">{}</failure></testcase>",
            escape(&suite),
            exploration.discovery.seconds,
            escape(&message),
            escape(&body)
        );
    }
    for tried in &exploration.experiments {
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&suite),
            escape(&tried.experiment.id),
            tried.seconds
        );
        if let Some(error) = &tried.error {
            let _ = writeln!(
                xml,
                "><error message=\"{}\"/></testcase>",
                escape(error)
            );
        } else if tried.ok {
            xml.push_str("/>\n");
        } else {
            let (message, body) = failure_text(&tried.failures);
            let _ = writeln!(
                xml,
                "><failure message=\"{}\">{}</failure></testcase>",
                escape(&message),
                escape(&body)
            );
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}
