//! Every scenario shipped under `chaos/scenarios/` is valid for the reference system its
//! description (`services/faultline.toml`) gives, and together they cover the patterns the
//! reference system must demonstrate.

use std::path::{Path, PathBuf};

use faultline_chaos::scenario::{FaultKind, Scenario, Target};
use faultline_harness::system::System;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reference() -> System {
    faultline_reference::system()
}

fn shipped() -> Vec<Scenario> {
    let dir = root().join("chaos/scenarios");
    Scenario::load_dir(&dir, faultline_reference::registry().vocabulary(&reference()))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|(_, scenario)| scenario)
        .collect()
}

#[test]
fn every_shipped_scenario_is_valid_and_named_for_its_file() {
    let scenarios = shipped();
    assert!(
        scenarios.len() >= 8,
        "at least eight shipped scenarios, found {}",
        scenarios.len()
    );
}

#[test]
fn the_shipped_scenarios_cover_link_process_faults_and_circuits() {
    let scenarios = shipped();
    let faults: Vec<_> = scenarios.iter().flat_map(|s| &s.faults).collect();
    assert!(faults.iter().any(|f| f.kind == FaultKind::Partition));
    assert!(faults
        .iter()
        .any(|f| f.kind == FaultKind::Kill && matches!(f.target, Target::Process { .. })));
    assert!(faults
        .iter()
        .any(|f| matches!(f.kind, FaultKind::Toxic { .. })));
    assert!(scenarios
        .iter()
        .any(|s| s.expectations.circuits.iter().any(|c| c.opens)));
    assert!(scenarios.iter().any(|s| s
        .expectations
        .invariants
        .iter()
        .any(|i| i == "bulkhead-isolation")));
}

#[test]
fn a_directory_with_a_misnamed_scenario_is_refused() {
    let dir = std::env::temp_dir().join(format!("faultline-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("right-name.toml"),
        "name = \"wrong-name\"\ndescription = \"d\"\n[workload]\nrequests = 1\nduration = \"1s\"\n",
    )
    .unwrap();
    let error = Scenario::load_dir(&dir, faultline_reference::registry().vocabulary(&reference())).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(error.field, "name");
    assert!(error.file.ends_with("right-name.toml"), "{error}");
}
