//! The report builders on synthetic runs: no containers, no browser (the page is checked in
//! Chromium by `harness/tests/report_html.rs`).

use std::path::{Path, PathBuf};

use faultline_chaos::scenario::Scenario;
use serde_json::{json, Value};

use faultline_reference::synthetic::SyntheticRun;
use faultline_harness::report::*;
use faultline_harness::checkers::{Counterexample, Verdict};
use faultline_harness::history::EventType;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../chaos/scenarios")
}

fn shipped(name: &str) -> Scenario {
    Scenario::load(
        &scenarios_dir().join(format!("{name}.toml")),
        faultline_reference::registry().vocabulary(&faultline_reference::system()),
    )
    .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "faultline-report-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A run of saga-compensation-payment-down in which `charged-at-most-once` failed: one order
/// charged twice, shown by its placement (whose recorded error holds markup).
fn failing_run() -> (Scenario, SyntheticRun, usize) {
    let scenario = shipped("saga-compensation-payment-down");
    let mut run = SyntheticRun::of(
        &scenario,
        scenario.seed,
        faultline_reference::system().topology(),
    );
    let completion = run
        .history
        .events()
        .iter()
        .find(|e| e.event_type == EventType::Ok && e.op.operation() == Some(faultline_reference::workload::PLACE_ORDER))
        .unwrap()
        .index;
    let order_id = run.history.events()[completion].value["body"]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let position = run
        .verdicts
        .iter()
        .position(|v| v.checker == "charged-at-most-once")
        .expect("the scenario expects charged-at-most-once");
    assert!(position > 0, "the failing verdict is not first by accident");
    run.verdicts[position] = Verdict {
        checker: "charged-at-most-once".into(),
        ok: false,
        summary: "1 of 40 orders was charged more than once".into(),
        counterexamples: vec![Counterexample {
            description: format!(
                "order {order_id} has 2 successful charges (200 cents, amount 100)"
            ),
            subjects: vec![order_id],
            events: vec![completion],
        }],
    };
    (scenario, run, completion)
}

#[test]
fn every_shipped_scenario_report_validates_against_the_schema() {
    let mut checked = 0;
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let scenario = Scenario::load(&path, faultline_reference::registry().vocabulary(&faultline_reference::system())).unwrap();
        let run = SyntheticRun::of(
            &scenario,
            scenario.seed,
            faultline_reference::system().topology(),
        );
        let report = Report::build(&run.facts(&scenario));
        let value = serde_json::to_value(&report).unwrap();
        let problems = schema_problems(&value);
        assert!(problems.is_empty(), "{}: {problems:#?}", scenario.name);
        assert_eq!(value["version"], json!(REPORT_VERSION));
        assert_eq!(report.faults.len(), scenario.faults.len());
        assert!(report
            .faults
            .iter()
            .all(|f| f.applied_ms.is_some() && f.healed_ms.is_some()));
        assert!(report.request_latency().is_some(), "{}", scenario.name);
        let dir = scratch(&scenario.name);
        write(&dir, &report).unwrap();
        assert_eq!(load(&dir).unwrap(), report, "{} round-trips", scenario.name);
        checked += 1;
    }
    assert_eq!(checked, 11, "the eleven shipped scenarios");
}

#[test]
fn the_schema_rejects_what_is_not_a_report() {
    let scenario = shipped("saga-recovery-order-killed");
    let run = SyntheticRun::of(&scenario, 1, faultline_reference::system().topology());
    let good = serde_json::to_value(Report::build(&run.facts(&scenario))).unwrap();

    let mut missing = good.clone();
    missing["run"].as_object_mut().unwrap().remove("seed");
    let problems = schema_problems(&missing);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("$.run") && p.contains("seed")),
        "{problems:?}"
    );

    let mut wrong_type = good.clone();
    wrong_type["verdicts"][0]["passed"] = json!("yes");
    assert!(schema_problems(&wrong_type)
        .iter()
        .any(|p| p.contains("$.verdicts.0.passed")));

    let mut unknown = good.clone();
    unknown["surprise"] = json!(1);
    assert!(!schema_problems(&unknown).is_empty());

    let mut other_version = good;
    other_version["version"] = json!(1);
    assert!(!schema_problems(&other_version).is_empty());
}

#[test]
fn loading_a_malformed_report_is_an_error_naming_file_and_place() {
    let dir = scratch("malformed");
    let path = dir.join("report.json");
    std::fs::write(&path, "{\n  \"version\": 2,\n  \"run\": {").unwrap();
    let error = load(&path).unwrap_err();
    assert!(
        matches!(error, ReportError::Parse { line: 3, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("report.json:3:"), "{error}");

    std::fs::write(&path, r#"{"version": 7}"#).unwrap();
    let error = load(&path).unwrap_err();
    assert!(error.to_string().contains("report version 7"), "{error}");

    std::fs::write(&path, r#"{"version": 2, "run": {}}"#).unwrap();
    let error = load(&path).unwrap_err().to_string();
    assert!(
        error.contains("does not match the report schema") && error.contains("$.run"),
        "{error}"
    );

    let error = load(&dir.join("absent.json")).unwrap_err();
    assert!(matches!(error, ReportError::Io { .. }), "{error:?}");
}

#[test]
fn writing_leaves_the_four_files_and_no_temporary_ones() {
    let scenario = shipped("bulkhead-payment-overloaded");
    let run = SyntheticRun::of(
        &scenario,
        scenario.seed,
        faultline_reference::system().topology(),
    );
    let dir = scratch("files");
    write(&dir, &Report::build(&run.facts(&scenario))).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["junit.xml", "report.html", "report.json", "summary.md"]
    );
}

#[test]
fn a_failing_run_shows_its_failing_verdict_first_with_its_counterexample() {
    let (scenario, run, completion) = failing_run();
    let report = Report::build(&run.facts(&scenario));
    assert!(!report.run.passed);
    let first = &report.verdicts[0];
    assert_eq!(first.checker, "charged-at-most-once");
    assert!(!first.passed);
    let slice: Vec<usize> = first.counterexamples[0]
        .history
        .iter()
        .map(|l| l.index)
        .collect();
    let invoke = run.history.events()[completion].invoke_index.unwrap();
    assert_eq!(
        slice,
        [invoke, completion],
        "the placement, invoked and answered"
    );
    assert!(report.verdicts[1..].iter().all(|v| v.passed));

    let page = html::render(&report);
    let banner = page.find("id=\"verdict\"").unwrap();
    assert!(
        page[banner..].starts_with("id=\"verdict\">FAILED — 1 of"),
        "{}",
        &page[banner..banner + 80]
    );
    let table = page.find("id=\"invariants\"").unwrap();
    let first_row = page[table..]
        .find("<tr class=")
        .map(|i| &page[table + i..])
        .unwrap();
    assert!(first_row.starts_with("<tr class=\"failed\"><td>charged-at-most-once"));
    assert!(first_row
        .contains("<details class=\"counterexample\" open><summary>counterexample 1: order "));

    let xml = junit::render(&report);
    assert!(xml.contains("failures=\"1\""));
    assert!(xml.contains("has 2 successful charges"));
    let md = markdown::render(&report);
    assert!(md.starts_with("### ❌ `saga-compensation-payment-down` — FAILED (1 of"));
}

/// Volatile parts of the text files: run ids, wall-clock times, durations, history times.
fn redactions() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"run `[^`]+`", "run `[run]`"),
        (r#"name="run" value="[^"]+""#, r#"name="run" value="[run]""#),
        (r"\d+\.\d s\b", "[duration] s"),
        (r#"time="[0-9.]+""#, r#"time="[duration]""#),
        (r"#(\d+) [0-9.]+ ms", "#$1 [time] ms"),
    ]
}

#[test]
fn the_summary_and_junit_of_a_failing_run_match_their_snapshots() {
    let (scenario, run, _) = failing_run();
    let report = Report::build(&run.facts(&scenario));
    insta::with_settings!({filters => redactions()}, {
        insta::assert_snapshot!("failing_summary_md", markdown::render(&report));
        insta::assert_snapshot!("failing_junit_xml", junit::render(&report));
    });
}

#[test]
fn the_summary_and_junit_of_a_passing_run_match_their_snapshots() {
    let scenario = shipped("circuit-breaker-payment-latency");
    let run = SyntheticRun::of(
        &scenario,
        scenario.seed,
        faultline_reference::system().topology(),
    );
    let report = Report::build(&run.facts(&scenario));
    insta::with_settings!({filters => redactions()}, {
        insta::assert_snapshot!("passing_summary_md", markdown::render(&report));
        insta::assert_snapshot!("passing_junit_xml", junit::render(&report));
    });
}

#[test]
fn recorded_markup_is_escaped_in_every_format() {
    let (scenario, mut run, completion) = failing_run();
    let payload = "<script>document.title='pwned'</script>";
    let mut events = run.history.events().to_vec();
    events[completion].value =
        json!({"error": payload, "order_id": events[completion].value["body"]["order_id"]});
    run.history = faultline_harness::history::History::from_events(events);
    run.verdicts[0].summary = format!("summary with {payload}");
    let report = Report::build(&run.facts(&scenario));
    let page = html::render(&report);
    assert!(!page.contains("<script"), "no script element in the page");
    assert!(page.contains("&lt;script&gt;document.title="));
    let xml = junit::render(&report);
    assert!(!xml.contains("<script"));
    let md = markdown::render(&report);
    assert!(!md.contains("<script"));
}

#[test]
fn the_page_has_its_charts_and_fetches_nothing() {
    let scenario = shipped("circuit-breaker-payment-latency");
    let run = SyntheticRun::of(
        &scenario,
        scenario.seed,
        faultline_reference::system().topology(),
    );
    let report = Report::build(&run.facts(&scenario));
    let page = html::render(&report);
    for id in [
        "latency-chart",
        "throughput-chart",
        "error-rate-chart",
        "circuit-chart",
        "outcome-chart",
    ] {
        assert!(
            page.contains(&format!("<svg class=\"chart\" id=\"{id}\"")),
            "{id}"
        );
    }
    assert!(page.contains("class=\"fault-window\""));
    assert!(page.contains("circuit-state open"));
    for external in ["src=", "href=\"http", "url(", "@import"] {
        assert!(!page.contains(external), "{external}");
    }
    let outcomes = report.outcomes.as_ref().unwrap();
    assert!(outcomes.ended["CONFIRMED"] > 0 && outcomes.unfinished.is_empty());
    assert!(report.circuits[0].transitions.len() >= 2);
}

#[test]
fn the_index_lists_runs_newest_first_and_names_unreadable_ones() {
    let dir = scratch("index");
    let scenario = shipped("saga-recovery-order-killed");
    for (name, started, fail) in [("old", 1_000, false), ("new", 9_000, true)] {
        let mut run = SyntheticRun::of(&scenario, 1, faultline_reference::system().topology());
        if fail {
            run.verdicts[0].ok = false;
        }
        let mut report = Report::build(&run.facts(&scenario));
        report.run.id = name.into();
        report.run.started_unix_ms = started;
        let run_dir = dir.join(name);
        std::fs::create_dir_all(&run_dir).unwrap();
        write(&run_dir, &report).unwrap();
    }
    std::fs::create_dir_all(dir.join("broken")).unwrap();
    std::fs::write(dir.join("broken/report.json"), "not json").unwrap();
    let runs = list_runs(&dir).unwrap();
    let names: Vec<String> = runs.iter().map(RunEntry::name).collect();
    assert_eq!(names, ["new", "old", "broken"]);
    write_index(&dir).unwrap();
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let (new, old) = (
        page.find("new/report.html").unwrap(),
        page.find("old/report.html").unwrap(),
    );
    assert!(new < old);
    assert!(page.contains("FAILED") && page.contains("unreadable"));
    assert_eq!(index::utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");

    // The index keeps what it read: an unchanged report is not read again, a changed one is.
    let cache_path = dir.join(".index.json");
    let mut cache: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_path).unwrap()).unwrap();
    let cached: Vec<&String> = cache["runs"].as_object().unwrap().keys().collect();
    assert_eq!(cached, ["new", "old"], "readable reports only");
    cache["runs"]["new"]["summary"]["run"]["scenario"] = "as cached".into();
    std::fs::write(&cache_path, cache.to_string()).unwrap();
    let mut rerun = SyntheticRun::of(&scenario, 1, faultline_reference::system().topology());
    rerun.verdicts[0].ok = false;
    let mut changed = Report::build(&rerun.facts(&scenario));
    changed.run.id = "old".into();
    changed.run.started_unix_ms = 1_000;
    changed.run.description = "rewritten, and so a little longer than before".into();
    write(&dir.join("old"), &changed).unwrap();
    let runs = list_runs(&dir).unwrap();
    let summary = |name: &str| runs.iter().find(|r| r.name() == name).unwrap().report.as_ref().unwrap();
    assert_eq!(summary("new").run.scenario, "as cached");
    assert!(!summary("old").run.passed && !summary("old").failed.is_empty(), "read again");
}

#[test]
fn diff_names_flipped_verdicts_and_latency_changes() {
    let scenario = shipped("saga-compensation-payment-down");
    let run = SyntheticRun::of(
        &scenario,
        scenario.seed,
        faultline_reference::system().topology(),
    );
    let before = Report::build(&run.facts(&scenario));
    let (_, failing, _) = failing_run();
    let after = Report::build(&failing.facts(&scenario));
    let diff = diff::ReportDiff::between(&before, &after);
    assert_eq!(
        diff.verdicts,
        [("charged-at-most-once".to_string(), Some(true), Some(false))]
    );
    let text = diff.render(&before, &after);
    assert!(
        text.contains("charged-at-most-once: held -> VIOLATED"),
        "{text}"
    );
    assert!(text.contains("p99 ms"));
    let same = diff::ReportDiff::between(&before, &before);
    assert!(same.verdicts.is_empty());
    assert!(same
        .render(&before, &before)
        .contains("verdicts: unchanged"));
}

#[test]
fn the_time_series_and_histogram_account_for_every_placement() {
    let scenario = shipped("retry-inventory-connection-resets");
    let run = SyntheticRun::of(
        &scenario,
        scenario.seed,
        faultline_reference::system().topology(),
    );
    let report = Report::build(&run.facts(&scenario));
    let placed: u64 = report
        .operations
        .iter()
        .filter(|o| o.op == "request" && o.kind.as_deref() != Some("probe"))
        .map(|o| o.ok + o.fail + o.info)
        .sum();
    let series: u64 = report.timeseries.points.iter().map(|p| p.completed).sum();
    let histogram = report.request_latency().unwrap();
    assert_eq!(series, placed);
    assert_eq!(histogram.count, placed);
    assert_eq!(
        histogram.buckets.iter().map(|b| b.count).sum::<u64>(),
        placed
    );
    assert!(histogram.p50_ms <= histogram.p99_ms && histogram.p99_ms <= histogram.max_ms);
    let value: Value = serde_json::to_value(&report).unwrap();
    assert!(value["timeseries"]["points"].as_array().unwrap().len() <= 121);
}
