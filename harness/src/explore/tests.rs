use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use faultline_chaos::scenario::{ProbeCheck, Scenario};

use super::shrink::Candidate;
use super::*;
use crate::intercept::CallSite;

fn site(link: &str, method: &str, route: &str) -> CallSite {
    CallSite {
        link: link.into(),
        method: method.into(),
        route: route.into(),
        count: 3,
    }
}

fn timing() -> Timing {
    Timing {
        window: Window::of_load(Duration::from_secs(8)),
        delay: None,
        timeouts: BTreeMap::new(),
        gives_up: Vec::new(),
    }
}

#[test]
fn every_kind_at_every_site_and_a_redelivery_per_consumed_topic_is_one_single() {
    let sites = [
        site("order->payment", "POST", "/payments/charges"),
        site("gateway->order", "GET", "/orders/*"),
    ];
    let consumers = [Consumer {
        service: "notification".into(),
        group: "notification".into(),
        topics: vec!["orders".into()],
    }];
    let experiments = singles(&sites, &consumers, &timing(), 7);
    assert_eq!(experiments.len(), 2 * Kind::AT_CALL_SITES.len() + 1);
    let ids: BTreeSet<&str> = experiments.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), experiments.len(), "no experiment twice");
    assert!(ids.contains("drop-answer@order->payment POST /payments/charges"));
    assert!(ids.contains("kill-callee-sent@gateway->order GET /orders/*"));
    assert!(ids.contains("redeliver@notification notification/orders"));
    // The order is the seed's: the same seed, the same order; another, another.
    assert_eq!(experiments, singles(&sites, &consumers, &timing(), 7));
    assert_ne!(experiments, singles(&sites, &consumers, &timing(), 8));
}

#[test]
fn each_kind_is_written_in_json_as_its_name() {
    for kind in Kind::AT_CALL_SITES.iter().chain([&Kind::Redeliver]).chain(&Kind::AT_STATEMENTS) {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
    }
}

#[test]
fn a_fault_is_written_as_a_scenario_says_it() {
    let fault = site_fault(
        Kind::KillCallerAnswered,
        &site("order->payment", "POST", "/payments/charges"),
        &timing(),
    );
    assert_eq!(
        fault.fault,
        serde_json::json!({
            "start": "2000ms", "duration": "4000ms", "target": "order->payment",
            "kind": "request", "method": "POST", "path": "/payments/charges",
            "action": "kill", "service": "order", "when": "answered", "nth": 1,
        })
    );
    let delay = site_fault(
        Kind::Delay,
        &site("order->payment", "POST", "/payments/charges"),
        &Timing { delay: Some(Duration::from_millis(4500)), ..timing() },
    );
    assert_eq!(delay.fault["delay"], "4500ms");
    let empty_502 = site_fault(
        Kind::Status502,
        &site("order->payment", "POST", "/payments/charges"),
        &timing(),
    );
    assert_eq!((&empty_502.fault["status"], &empty_502.fault["body"]), (&serde_json::json!(502), &serde_json::json!("")));
}

#[test]
fn faults_that_fail_calls_outlast_the_stated_give_up_and_a_delay_outlasts_stated_timeouts() {
    let timing = Timing {
        timeouts: BTreeMap::from([
            ("order->payment".to_string(), Duration::from_secs(1)),
            ("payment->bank".to_string(), Duration::from_secs(9)),
        ]),
        gives_up: vec![("order->payment".into(), Some("POST /payments/charges".into()), Duration::from_secs(20))],
        ..timing()
    };
    let charges = site("order->payment", "POST", "/payments/charges");
    let refunds = site("order->payment", "POST", "/payments/*/refund");
    let stretched = Window { start: Duration::from_secs(2), duration: Duration::from_secs(22) };
    for kind in [Kind::Status503, Kind::DropAnswer, Kind::Delay, Kind::Hold] {
        assert_eq!(timing.window_at(kind, &charges), stretched, "{kind:?}");
    }
    // One kind of each way a call fails is stretched; a kill acts once and a duplicate
    // fails nothing; and a give-up said of some calls leaves the link's others alone.
    for kind in [Kind::Status500, Kind::Status504, Kind::Reset, Kind::Duplicate, Kind::KillCallerSent] {
        assert_eq!(timing.window_at(kind, &charges), timing.window, "{kind:?}");
    }
    assert_eq!(timing.window_at(Kind::Hold, &refunds), timing.window);
    let whole_link = Timing {
        gives_up: vec![("order->payment".into(), None, Duration::from_secs(20))],
        ..timing.clone()
    };
    assert_eq!(whole_link.window_at(Kind::Hold, &refunds), stretched);
    // Shorter than the default window: nothing to stretch.
    let quick = Timing { gives_up: vec![("order->payment".into(), None, Duration::from_secs(1))], ..timing.clone() };
    assert_eq!(quick.window_at(Kind::Hold, &charges), timing.window);

    // Past the callee's own 9 s timeout; past nothing stated, the least delay.
    assert_eq!(timing.delay_at(&charges), Duration::from_secs(11));
    assert_eq!(timing.delay_at(&site("gateway->order", "POST", "/orders")), Timing::DELAY);
    let set = Timing { delay: Some(Duration::from_secs(3)), ..timing.clone() };
    assert_eq!(set.delay_at(&charges), Duration::from_secs(3));

    // The experiment's load covers the stretched window and a quarter of the base's after
    // it, at the base's pace.
    let base: toml::Table = toml::from_str(BASE).unwrap();
    let hold = Experiment::of(vec![site_fault(Kind::Hold, &charges, &timing)]);
    let candidate = hold.candidate(&base, Duration::from_secs(8));
    assert_eq!(candidate.load, Duration::from_secs(26));
    assert_eq!(candidate.requests, Some(33));
    let plain = Experiment::of(vec![site_fault(Kind::Hold, &refunds, &timing)]);
    assert_eq!(plain.candidate(&base, Duration::from_secs(8)).load, Duration::from_secs(8));
}

#[test]
fn a_combination_adds_each_request_fault_at_each_revealed_site() {
    let single = Experiment::of(vec![site_fault(
        Kind::Status503,
        &site("order->payment", "POST", "/payments/charges"),
        &timing(),
    )]);
    let revealed = [site("order->inventory", "POST", "/reservations/*/release")];
    let combos = combinations(&single, &revealed, &timing());
    assert_eq!(combos.len(), Kind::REQUEST_ONLY.len());
    assert_eq!(Kind::REQUEST_ONLY.len(), 9);
    assert!(Kind::REQUEST_ONLY
        .iter()
        .all(|k| !matches!(k, Kind::KillCallerSent | Kind::KillCallerAnswered | Kind::KillCalleeSent)));
    assert!(combos.iter().all(|c| c.faults.len() == 2 && c.faults[0] == single.faults[0]));
    assert_eq!(
        combos[5].id,
        "status-503@order->payment POST /payments/charges + drop-answer@order->inventory POST /reservations/*/release"
    );
}

const BASE: &str = r#"
name = "base"
description = "d"
seed = 3
[workload]
requests = 10
duration = "8s"
[[workload.operations]]
name = "place"
service = "gateway"
method = "POST"
path = "/orders"
[[faults]]
start = "1s"
duration = "2s"
target = "order->payment"
kind = "partition"
[expectations]
invariants = []
[[expectations.circuits]]
link = "order->payment"
[expectations.slo]
p99_latency = "1s"
"#;

#[test]
fn a_statement_gets_the_statement_kinds_written_as_statement_faults_a_scenario_reads() {
    use faultline_chaos::scenario::statement::StatementAction;
    use faultline_chaos::scenario::FaultKind;
    let statement = site("order->postgres", space::STATEMENT, "SELECT FROM charges");
    let experiments = singles(&[statement], &[], &timing(), 7);
    let kinds: BTreeSet<Kind> = experiments.iter().map(|e| e.faults[0].kind).collect();
    assert_eq!(kinds, Kind::AT_STATEMENTS.into_iter().collect());
    let base: toml::Table = toml::from_str(BASE).unwrap();
    for experiment in &experiments {
        let candidate = experiment.candidate(&base, Duration::from_secs(8));
        let text = scenario_text(&base, "base-x001", "d", &candidate).unwrap();
        let scenario = Scenario::parse("base-x001", &crate::fixtures::shop(), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let FaultKind::Statement(fault) = &scenario.faults[0].kind else {
            panic!("a statement fault: {text}")
        };
        assert_eq!(fault.fingerprint.as_deref(), Some("SELECT FROM charges"));
        assert!(fault.matches("SELECT amount_cents FROM charges WHERE order_id = $1"));
        assert!(!fault.matches("SELECT 1 FROM order_voids"));
        let expected = match experiment.faults[0].kind {
            Kind::SqlError => StatementAction::Error("40001".into()),
            Kind::SqlDropAnswer => StatementAction::DropAnswer,
            _ => StatementAction::Delay(Timing::STATEMENT_DELAY),
        };
        assert_eq!(fault.action, expected);
    }
}

#[test]
fn broker_requests_get_the_broker_kinds_written_as_kafka_faults_a_scenario_reads() {
    use faultline_chaos::scenario::intercept::When;
    use faultline_chaos::scenario::kafka::{KafkaAction, KafkaRequest};
    use faultline_chaos::scenario::FaultKind;
    let commit = site("order->kafka", space::BROKER, "offset_commit order");
    let produce = site("order->kafka", space::BROKER, "produce orders");
    let fetch = site("order->kafka", space::BROKER, "fetch orders");
    let experiments = singles(&[commit, produce, fetch], &[], &timing(), 7);
    assert_eq!(experiments.len(), 4 + 4 + 1);
    let base: toml::Table = toml::from_str(BASE).unwrap();
    for experiment in &experiments {
        let candidate = experiment.candidate(&base, Duration::from_secs(8));
        let text = scenario_text(&base, "base-x001", "d", &candidate).unwrap();
        let with_kafka = faultline_chaos::topology::Topology::new(
            ["payment", "inventory", "order", "gateway"],
            ["postgres", "kafka"],
            [("gateway", "order"), ("order", "payment"), ("order", "inventory"), ("order", "postgres"), ("order", "kafka")],
        );
        let scenario = Scenario::parse("base-x001", &with_kafka, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let FaultKind::Kafka(fault) = &scenario.faults[0].kind else {
            panic!("a kafka fault: {text}")
        };
        let place = &experiment.faults[0].place;
        let (request, topic, group) = match place.rsplit_once("KAFKA ").map(|(_, r)| r) {
            Some("offset_commit order") => (KafkaRequest::OffsetCommit, None, Some("order")),
            Some("produce orders") => (KafkaRequest::Produce, Some("orders"), None),
            _ => (KafkaRequest::Fetch, Some("orders"), None),
        };
        assert_eq!((fault.request, fault.topic.as_deref(), fault.group.as_deref()), (request, topic, group), "{place}");
        let expected = match experiment.faults[0].kind {
            Kind::KafkaError => KafkaAction::Error(request.default_error().expect("a write")),
            Kind::KafkaDropAnswer => KafkaAction::DropAnswer,
            Kind::KafkaKillSent => KafkaAction::Stop { when: When::Sent, pause: false },
            Kind::KafkaKillAnswered => KafkaAction::Stop { when: When::Answered, pause: false },
            _ => KafkaAction::Hold,
        };
        assert_eq!(fault.action, expected, "{place}");
    }
}

#[test]
fn an_experiments_scenario_is_the_base_with_its_faults_and_a_liveness_probe() {
    let base: toml::Table = toml::from_str(BASE).unwrap();
    let experiment = Experiment::of(vec![site_fault(
        Kind::DropAnswer,
        &site("order->payment", "POST", "/payments/charges"),
        &timing(),
    )]);
    let candidate = experiment.candidate(&base, Duration::from_secs(8));
    assert_eq!(candidate.requests, Some(10));
    let text = scenario_text(&base, "base-x001", "d", &candidate).unwrap();
    let scenario = Scenario::parse(
        "base-x001",
        &crate::fixtures::shop(),
        &text,
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(scenario.name, "base-x001");
    assert_eq!(scenario.faults.len(), 1);
    assert_eq!(scenario.faults[0].start, Duration::from_secs(2));
    assert!(matches!(
        scenario.faults[0].kind,
        faultline_chaos::scenario::FaultKind::Request(_)
    ));
    assert!(scenario.expectations.circuits.is_empty());
    assert!(scenario.expectations.slo.is_none());
    assert!(scenario.expectations.invariants.is_empty());
    let rates: Vec<_> = scenario
        .steady_state
        .iter()
        .filter(|p| matches!(p.check, ProbeCheck::SuccessRate { .. }))
        .collect();
    assert_eq!(rates.len(), 1);
    assert_eq!(rates[0].name, LIVENESS.0);
    assert_eq!(rates[0].within, Some(Duration::from_secs(30)));
}

#[test]
fn a_base_with_its_own_success_rate_probe_keeps_it_alone() {
    let mut base: toml::Table = toml::from_str(BASE).unwrap();
    let own: toml::Table = toml::from_str(
        "[[steady_state.probes]]\nname = \"own\"\nprobe = \"success_rate\"\nmin = 0.5\n",
    )
    .unwrap();
    base.extend(own);
    let experiment = Experiment::of(vec![site_fault(
        Kind::Hold,
        &site("order->payment", "POST", "/payments/charges"),
        &timing(),
    )]);
    let candidate = experiment.candidate(&base, Duration::from_secs(8));
    let text = scenario_text(&base, "base-x002", "d", &candidate).unwrap();
    let scenario =
        Scenario::parse("base-x002", &crate::fixtures::shop(), &text).unwrap();
    let names: Vec<_> = scenario.steady_state.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["own"]);
}

#[test]
fn the_grid_marks_each_fault_held_or_failed_and_junit_has_a_case_per_experiment() {
    let charges = site("order->payment", "POST", "/payments/charges");
    let experiment = |kind| Experiment::of(vec![site_fault(kind, &charges, &timing())]);
    let tried = |number, experiment: Experiment, ok: bool| Tried {
        number,
        experiment,
        ok,
        failures: if ok {
            Vec::new()
        } else {
            vec![Failure {
                checker: "charged-at-most-once".into(),
                summary: "1 order charged twice".into(),
                counterexamples: vec!["order o-1 <charged> twice".into()],
            }]
        },
        error: None,
        report: None,
        reset_seconds: 1.0,
        reset_phases: BTreeMap::from([("databases".to_string(), 0.5)]),
        run_phases: BTreeMap::from([("load".to_string(), 8.0)]),
        seconds: 9.0,
        revealed: Vec::new(),
        reproducer: (!ok).then(|| Reproducer {
            confirmed: 3,
            file: Some("reproducers/base-x002-min.toml".into()),
            report: None,
            steps: vec!["requests 16 -> 8".into()],
            candidate: Candidate {
                requests: Some(8),
                load: Duration::from_secs(8),
                faults: Vec::new(),
            },
            runs: 7,
            exhausted_budget: false,
            seconds: 70.0,
        }),
    };
    let exploration = Exploration {
        version: EXPLORE_VERSION,
        system: "shop".into(),
        scenario: "base".into(),
        file: "base.toml".into(),
        seed: 1,
        delay_ms: 5000,
        discovery: Discovery {
            call_sites: vec![charges.clone()],
            ..Discovery::default()
        },
        space: Space::default(),
        experiments: vec![
            tried(1, experiment(Kind::Reset), true),
            tried(2, experiment(Kind::DropAnswer), false),
        ],
        pending: vec![experiment(Kind::Hold)],
        stopped: Some(Stopped::Budget),
        experiment_seconds: 18.0,
        shrink_seconds: 70.0,
        per_minute: 6.6,
        first_failure_seconds: Some(18.0),
        first_reproducer_seconds: Some(88.0),
    };
    let page = html(&exploration);
    assert!(page.contains("<td class=\"held\">1</td>"), "{page}");
    assert!(page.contains("<td class=\"failed\">1/1</td>"), "{page}");
    assert!(page.contains("order o-1 &lt;charged&gt; twice"), "{page}");
    assert!(page.contains("faultline chaos run reproducers/base-x002-min.toml"), "{page}");
    assert!(page.contains("<p>On: drop-answer from 2000ms for 4000ms</p>"), "when the failed one's fault was on: {page}");
    let xml = junit(&exploration);
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 2);
    // The state matches its schema and reads back as it was written.
    let value = serde_json::to_value(&exploration).unwrap();
    assert_eq!(schema_problems(&value), Vec::<String>::new());
    let json = serde_json::to_string(&exploration).unwrap();
    let back: Exploration = serde_json::from_str(&json).unwrap();
    assert_eq!(back.experiments[1].experiment, exploration.experiments[1].experiment);
    assert_eq!(back.pending, exploration.pending);
}
