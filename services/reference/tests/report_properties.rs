//! Bounded property runs of the report reader: no text panics it, and a report it accepts —
//! however edited — renders in every format and diffs without panicking.
//! `PROPTEST_CASES=N` runs longer (see docs/properties.md).

use std::path::Path;

use faultline_chaos::scenario::Scenario;
use proptest::prelude::*;
use serde_json::Value;

use faultline_reference::synthetic::SyntheticRun;
use faultline_harness::report::{diff::ReportDiff, from_json_str, html, junit, markdown, Report};

/// `default_cases` unless `PROPTEST_CASES` asks for another number, from a fixed seed unless
/// `PROPTEST_RNG_SEED` gives another: the suite tries the same cases on every run (a failure
/// reproduces), and a search for more sets either variable.
fn config(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x0fa1_7115);
    }
    config.failure_persistence = None;
    config
}

/// A valid report of a shipped scenario, as JSON (built once).
fn valid_report() -> Value {
    static REPORT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    REPORT
        .get_or_init(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../chaos/scenarios/circuit-breaker-payment-latency.toml");
            let system = faultline_reference::system();
            let scenario = Scenario::load(&path, faultline_reference::registry().vocabulary(&system)).unwrap();
            let run = SyntheticRun::of(&scenario, scenario.seed, system.topology());
            serde_json::to_value(Report::build(&run.facts(&scenario))).unwrap()
        })
        .clone()
}

/// Every scalar's JSON pointer in `value`.
fn leaves(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                leaves(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

/// Values a report's fields could be edited to: kept within the schema's types often, so
/// the edited report still passes validation and reaches the renderers.
fn edit() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        Just(Value::from(0)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        any::<u32>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,16}".prop_map(Value::from),
        Just(Value::from("<script>alert(1)</script>")),
        Just(Value::Array(Vec::new())),
    ]
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn arbitrary_text_never_panics_the_report_reader(text in any::<String>()) {
        let _ = from_json_str(Path::new("report.json"), &text);
    }

    #[test]
    fn cut_reports_are_errors_not_panics(cut in any::<prop::sample::Index>()) {
        let text = serde_json::to_string_pretty(&valid_report()).unwrap();
        let mut at = cut.index(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        prop_assert!(from_json_str(Path::new("report.json"), &text[..at]).is_err());
    }

    #[test]
    fn edited_reports_are_refused_or_render_and_diff(
        edits in prop::collection::vec((any::<prop::sample::Index>(), edit()), 1..4),
    ) {
        let original = valid_report();
        let mut doc = original.clone();
        let mut all = Vec::new();
        leaves(&doc, String::new(), &mut all);
        for (pick, value) in edits {
            if let Some(node) = doc.pointer_mut(&all[pick.index(all.len())]) {
                *node = value;
            }
        }
        let text = serde_json::to_string(&doc).unwrap();
        if let Ok(edited) = from_json_str(Path::new("report.json"), &text) {
            let _ = (html::render(&edited), junit::render(&edited), markdown::render(&edited));
            let before: Report = serde_json::from_value(original).unwrap();
            let _ = ReportDiff::between(&before, &edited).render(&before, &edited);
        }
    }
}

/// The two overflows the edited-report property found (the error rate's sum of counts, and the
/// chart axis end), kept as a plain case: counts and times at the top of their range render.
#[test]
fn counts_and_times_at_their_limit_render() {
    let mut doc = valid_report();
    for operation in doc["operations"].as_array_mut().unwrap() {
        for count in ["ok", "fail", "info"] {
            operation[count] = Value::from(u64::MAX);
        }
    }
    doc["timeseries"]["bucket_ms"] = Value::from(u64::MAX);
    for point in doc["timeseries"]["points"].as_array_mut().unwrap() {
        point["start_ms"] = Value::from(u64::MAX);
    }
    let text = serde_json::to_string(&doc).unwrap();
    let edited = from_json_str(Path::new("report.json"), &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(edited.request_error_rate().is_some_and(|r| r.is_finite()));
    let page = html::render(&edited);
    assert!(page.contains("</html>"));
    let _ = (junit::render(&edited), markdown::render(&edited));
}
