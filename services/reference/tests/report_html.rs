//! `report.html` in a real headless Chromium (Debian's `chromium`, installed by `ci/setup`):
//! the page loads with no console message and no network request, its charts are there, the
//! failing verdict comes first, and a recorded payload holding markup shows as text and never
//! runs. A screenshot is kept under `target/tmp/report-html/` as a test artefact.
//!
//! The checks themselves are shown able to fail: a page that logs, throws and fetches is
//! caught on every count.

mod support;

use std::path::{Path, PathBuf};

use faultline_chaos::scenario::Scenario;
use faultline_harness::checkers::{Counterexample, Verdict};
use faultline_harness::history::{EventType, History};
use faultline_harness::report::{self, Report};
use faultline_reference::synthetic::SyntheticRun;
use serde_json::json;
use support::chromium::Chromium;

/// What a hostile payload would do if it ran: mark the window, retitle the page, log, fetch.
const PAYLOAD: &str = "<script>window.__pwned=1;document.title='pwned';console.error('pwned')</script><img src=\"http://127.0.0.1:9/x.png\" onerror=\"console.error('img')\">";

fn artefacts(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-html")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A circuit-breaker run whose `charged-at-most-once` failed, on an order whose recorded
/// answer holds [`PAYLOAD`].
fn failing_report_with_payload() -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../chaos/scenarios/circuit-breaker-payment-latency.toml");
    let system = faultline_reference::system();
    let scenario = Scenario::load(&path, faultline_reference::registry().vocabulary(&system)).unwrap();
    let mut run = SyntheticRun::of(&scenario, scenario.seed, system.topology());
    let mut events = run.history.events().to_vec();
    let completion = events
        .iter()
        .position(|e| e.event_type == EventType::Ok && e.op.operation() == Some(faultline_reference::workload::PLACE_ORDER))
        .unwrap();
    let order_id = events[completion].value["body"]["order_id"].clone();
    events[completion].value = json!({"order_id": order_id, "error": PAYLOAD});
    run.history = History::from_events(events);
    let last = run.verdicts.len() - 1;
    run.verdicts[last] = Verdict {
        checker: "charged-at-most-once".into(),
        ok: false,
        summary: format!("1 order charged twice; its answer was {PAYLOAD}"),
        counterexamples: vec![Counterexample {
            description: "order charged twice".into(),
            subjects: vec![order_id.as_str().unwrap().to_string()],
            events: vec![completion],
        }],
    };
    // Keep facts borrowed from `run` and `scenario` only for the build.
    Report::build(&run.facts(&scenario))
}

#[test]
fn the_report_page_loads_cleanly_in_chromium_with_its_charts_and_failing_verdict_first() {
    let dir = artefacts("failing-run");
    let report = failing_report_with_payload();
    report::write(&dir, &report).unwrap();
    report::write_index(dir.parent().unwrap()).unwrap();

    let mut browser = Chromium::launch().unwrap();
    let page = browser.load(&dir.join("report.html")).unwrap();
    assert!(page.console.is_empty(), "console: {:#?}", page.console);
    assert!(page.requests.is_empty(), "requests: {:#?}", page.requests);

    let eval = |browser: &mut Chromium, js: &str| browser.evaluate(js).unwrap();
    assert_eq!(
        eval(
            &mut browser,
            "[...document.querySelectorAll('svg.chart')].map(s => s.id).join(',')"
        ),
        json!("latency-chart,throughput-chart,error-rate-chart,circuit-chart,outcome-chart")
    );
    for (what, js) in [
        (
            "latency lines",
            "document.querySelectorAll('#latency-chart polyline.series').length",
        ),
        (
            "shaded fault windows",
            "document.querySelectorAll('#latency-chart rect.fault-window').length",
        ),
        (
            "circuit states",
            "document.querySelectorAll('#circuit-chart rect.circuit-state').length",
        ),
    ] {
        let count = eval(&mut browser, js).as_u64().unwrap();
        assert!(count >= 1, "{what}: {count}");
    }
    let drawn = eval(
        &mut browser,
        "document.querySelector('#latency-chart polyline.series').getBBox().width",
    );
    assert!(
        drawn.as_f64().unwrap() > 100.0,
        "the latency line is drawn across the chart: {drawn}"
    );
    let banner = eval(&mut browser, "document.querySelector('#verdict').innerText");
    assert!(
        banner.as_str().unwrap().starts_with("FAILED — 1 of"),
        "{banner}"
    );
    let first_row = eval(
        &mut browser,
        "document.querySelector('#invariants tr.failed, #invariants tr.passed').innerText",
    );
    assert!(
        first_row
            .as_str()
            .unwrap()
            .starts_with("charged-at-most-once"),
        "{first_row}"
    );

    // The payload is on the page as text, and nothing of it ran.
    assert_eq!(eval(&mut browser, "document.scripts.length"), json!(0));
    assert_eq!(
        eval(&mut browser, "typeof window.__pwned"),
        json!("undefined")
    );
    assert_eq!(
        eval(&mut browser, "document.title"),
        json!("circuit-breaker-payment-latency — FAILED")
    );
    assert_eq!(eval(&mut browser, "document.images.length"), json!(0));
    let shown = eval(
        &mut browser,
        "document.body.innerText.includes(\"<script>window.__pwned=1;document.title='pwned'\")",
    );
    assert_eq!(shown, json!(true), "the recorded payload is shown as text");

    let png = browser.screenshot().unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    std::fs::write(dir.join("report.png"), &png).unwrap();
    eprintln!("screenshot: {}", dir.join("report.png").display());

    let index = browser
        .load(&dir.parent().unwrap().join("index.html"))
        .unwrap();
    assert!(
        index.console.is_empty() && index.requests.is_empty(),
        "{index:#?}"
    );
}

#[test]
fn the_browser_check_catches_console_errors_exceptions_and_requests() {
    let dir = artefacts("bad-page");
    let page = dir.join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>bad</p>\
         <img src=\"http://127.0.0.1:9/pixel.png\">\
         <script>console.error('boom'); fetch('http://127.0.0.1:9/beacon').catch(() => {}); \
         setTimeout(() => { throw new Error('thrown late') }, 10);</script></body></html>",
    )
    .unwrap();
    let mut browser = Chromium::launch().unwrap();
    let load = browser.load(&page).unwrap();
    assert!(load.console.iter().any(|m| m.contains("boom")), "{load:#?}");
    assert!(
        load.console.iter().any(|m| m.contains("thrown late")),
        "{load:#?}"
    );
    assert!(
        load.requests
            .iter()
            .any(|u| u == "http://127.0.0.1:9/pixel.png"),
        "{load:#?}"
    );
    assert!(
        load.requests
            .iter()
            .any(|u| u == "http://127.0.0.1:9/beacon"),
        "{load:#?}"
    );
}
