//! Bounded property runs of the scenario parser: no input panics it, and every scenario it
//! accepts has a fault schedule that fits in its run. `PROPTEST_CASES=N` runs each longer
//! (see docs/properties.md).

use proptest::prelude::*;

use super::test_vocabulary::vocab;
use super::tests::shop;
use super::{Scenario, MAX_DURATION};

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

/// Duration strings: ordinary, zero, at the bounds, huge, malformed.
fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            0u64..4000,
            prop::sample::select(vec!["us", "ms", "s", "m", "h"])
        )
            .prop_map(|(n, unit)| format!("{n}{unit}")),
        (0u64..100, 0u64..1000).prop_map(|(a, b)| format!("{a}.{b}s")),
        Just("1h".to_string()),
        Just("3600.000001s".to_string()),
        "[0-9]{10,30}h",
        "[0-9.]{0,6}[a-zµ]{0,3}",
        any::<f64>().prop_map(|f| format!("{f}s")),
    ]
}

fn target() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "order->payment",
        "order->inventory",
        "gateway->order",
        "order->postgres",
        "payment->kafka",
        "payment->order",
        "order",
        "payment",
        "postgres",
        "kafka",
        "nowhere",
    ])
    .prop_map(str::to_string)
}

fn kind() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "kind = \"latency\"\nlatency = \"{d}\"\njitter = \"{d}\"",
        "kind = \"bandwidth\"\nrate_kbps = 64",
        "kind = \"slow_close\"\ndelay = \"{d}\"",
        "kind = \"timeout\"\ntimeout = \"{d}\"",
        "kind = \"reset_peer\"\ntimeout = \"{d}\"",
        "kind = \"slicer\"\naverage_size = 64\nsize_variation = 8\ndelay = \"{d}\"",
        "kind = \"limit_data\"\nbytes = 1024",
        "kind = \"partition\"",
        "kind = \"kill\"",
        "kind = \"pause\"",
        "kind = \"container_pause\"",
        "kind = \"container_stop\"",
        "kind = \"explode\"",
    ])
    .prop_map(str::to_string)
}

prop_compose! {
    fn fault()(start in duration(), length in duration(), target in target(), kind in kind(),
               inner in duration()) -> String {
        format!(
            "[[faults]]\nstart = \"{start}\"\nduration = \"{length}\"\ntarget = \"{target}\"\n{}\n",
            kind.replace("{d}", &inner)
        )
    }
}

prop_compose! {
    /// Scenario text close enough to valid that most of it reaches the field checks.
    fn scenario_text()(run in duration(), faults in prop::collection::vec(fault(), 0..4),
                       opens in duration(), closes in duration(), p99 in duration(),
                       sample in duration(), orders in -5i64..2_000_000,
                       concurrency in -1i64..300) -> String {
        format!(
            "name = \"x\"\ndescription = \"d\"\n[workload]\norders = {orders}\n\
             concurrency = {concurrency}\nduration = \"{run}\"\n{}\
             [[steady_state.probes]]\nname = \"p\"\nprobe = \"p99_latency\"\nmax = \"{sample}\"\n\
             [expectations]\n[[expectations.circuits]]\nlink = \"order->payment\"\nopens = false\n\
             opens_within = \"{opens}\"\ncloses_within = \"{closes}\"\n\
             [expectations.slo]\np99_latency = \"{p99}\"\n",
            faults.concat()
        )
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_text_never_panics_the_parser(text in any::<String>()) {
        let _ = Scenario::parse("fuzz.toml", vocab(&shop()), &text);
    }

    #[test]
    fn every_accepted_scenario_has_a_schedule_that_fits_its_run(text in scenario_text()) {
        if let Ok(scenario) = Scenario::parse("fuzz.toml", vocab(&shop()), &text) {
            let run = scenario.workload.duration;
            prop_assert!(!run.is_zero() && run <= MAX_DURATION);
            for fault in &scenario.faults {
                let end = fault.start.checked_add(fault.duration);
                prop_assert!(end.is_some_and(|end| end <= run), "{fault:?} in a run of {run:?}");
                prop_assert!(!fault.duration.is_zero());
            }
            for circuit in &scenario.expectations.circuits {
                prop_assert!(circuit.opens_within.is_none_or(|d| d <= MAX_DURATION));
                prop_assert!(circuit.closes_within.is_none_or(|d| d <= MAX_DURATION));
            }
        }
    }

    #[test]
    fn mutated_shipped_scenarios_never_panic_the_parser(
        index in 0usize..8,
        cut in any::<prop::sample::Index>(),
        insert in "[\\[\\]\"=.a-z0-9\n ]{0,12}",
    ) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let text = std::fs::read_to_string(&files[index % files.len()]).unwrap();
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let mutated = format!("{}{insert}{}", &text[..at], &text[at..]);
        let _ = Scenario::parse("fuzz.toml", vocab(&shop()), &mutated);
    }
}
