//! Fault-space exploration end to end on the reference system: discovery sees the calls the
//! workload makes, the experiments generated from them run on one reset stack and are judged,
//! the state on disk matches its schema, and a second exploration into the same folder
//! resumes where the first stopped instead of starting over.
//!
//! Needs the service binaries (`cargo build --workspace --bins`) and the images of `ci/setup`.

mod common;

use std::path::{Path, PathBuf};

use faultline_harness::explore::{self, Exploration, Options, Stopped};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

async fn explore(out: &Path, budget: usize, fresh: bool) -> Exploration {
    let options = Options {
        budget: Some(budget),
        fresh,
        ..Options::default()
    };
    explore::explore_until(
        &common::reference(),
        &root().join("chaos/explore/place-orders.toml"),
        &options,
        out,
        std::future::pending(),
        &|line| eprintln!("{line}"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn an_exploration_sees_the_workloads_calls_judges_its_experiments_and_resumes_where_it_stopped() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("explore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);

    let first = explore(&out, 2, true).await;
    let sites: Vec<String> = first.discovery.call_sites.iter().map(|s| s.to_string()).collect();
    for expected in [
        "gateway->order POST /orders",
        "order->inventory POST /inventory/reservations",
        "order->payment POST /payments/charges",
        "order->inventory POST /inventory/reservations/*/commit",
    ] {
        assert!(sites.iter().any(|s| s == expected), "{expected} in {sites:?}");
    }
    let consumers: Vec<(String, String, Vec<String>)> = first
        .discovery
        .consumers
        .iter()
        .map(|c| (c.service.clone(), c.group.clone(), c.topics.clone()))
        .collect();
    assert_eq!(consumers, vec![("notification".into(), "notification".into(), vec!["orders".into()])]);
    assert_eq!(first.space.singles, sites.len() * 9 + 1);
    assert_eq!(first.experiments.len(), 2);
    assert_eq!(first.stopped, Some(Stopped::Budget));
    assert_eq!(
        first.experiments.len() + first.pending.len(),
        first.space.singles + first.space.combinations
    );
    // The unmodified system holds under these faults: an exploration raises no false alarm.
    for tried in &first.experiments {
        assert!(tried.ok, "{}: {:?} {:?}", tried.experiment.id, tried.failures, tried.error);
        assert!(tried.report.as_ref().is_some_and(|r| r.join("report.json").is_file()));
    }
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("explore.json")).unwrap()).unwrap();
    assert_eq!(explore::schema_problems(&on_disk), Vec::<String>::new());

    // Run again into the same folder: no new discovery, the next pending experiment runs.
    let second = explore(&out, 1, false).await;
    assert_eq!(second.discovery.report, first.discovery.report);
    assert_eq!(second.experiments.len(), 3);
    for (a, b) in first.experiments.iter().zip(&second.experiments) {
        assert_eq!(a.experiment.id, b.experiment.id);
    }
    assert_eq!(second.experiments[2].number, 3);
    assert_eq!(second.experiments[2].experiment.id, first.pending[0].id);
    assert!(second.experiments[2].ok, "{:?}", second.experiments[2].failures);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 3, "{junit}");
    let html = std::fs::read_to_string(out.join("explore.html")).unwrap();
    assert!(html.contains("order-&gt;payment POST /payments/charges") || html.contains("order->payment POST /payments/charges"), "the grid lists the call sites");
    let _ = std::fs::remove_dir_all(&out);
}
