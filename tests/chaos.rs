//! Chaos scenarios end to end: a fast subset of the shipped scenarios (`chaos/scenarios/`) runs
//! on the reference system — real service processes, Postgres, Kafka and Toxiproxy — and every
//! verdict must pass, and the run's report (`report.json` valid against the committed schema,
//! `report.html`, `junit.xml`, `summary.md`, the folder's `index.html`) says so; and a seed
//! reproduces its plan.
//!
//! Needs the service binaries (`cargo build --workspace --bins`) and the images of `ci/setup`
//! (found by themselves in `.faultline/images.env`). The whole set runs with
//! `faultline --system services/faultline.toml chaos run chaos/scenarios`.
//!
//! To keep `cargo test` within a few minutes, the scenarios here are the shipped files with a
//! shorter load phase: fewer orders over fewer seconds, and the fault schedule moved to fit,
//! with its order kept (fault during load, heal before the load ends, so traffic meets the
//! healed system). Everything else — targets, kinds, workload mix, expectations — is the file's.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_chaos::scenario::Scenario;
use faultline_harness::nemesis::Nemesis;
use faultline_harness::report;
use faultline_harness::runner;
use faultline_harness::workload::http::plan_of;

fn shipped(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("chaos/scenarios/{name}.toml"));
    Scenario::load(&path, faultline_reference::registry().vocabulary(&common::reference())).unwrap_or_else(|e| panic!("{e}"))
}

/// The scenario with `orders` orders over `load`, its single fault starting at `fault_start`
/// and lasting `fault_duration`.
fn shortened(
    mut scenario: Scenario,
    orders: u32,
    load: Duration,
    fault_start: Duration,
    fault_duration: Duration,
) -> Scenario {
    assert_eq!(scenario.faults.len(), 1, "{} has one fault", scenario.name);
    assert!(
        fault_start + fault_duration < load,
        "the fault heals during the load"
    );
    scenario
        .workload
        .http
        .as_mut()
        .expect("the reference system's workload is its description's")
        .requests = orders;
    scenario.workload.duration = load;
    scenario.faults[0].start = fault_start;
    scenario.faults[0].duration = fault_duration;
    scenario
}

/// The scenario with its single fault's target and kind replaced (its window kept).
fn with_fault(
    mut scenario: Scenario,
    target: faultline_chaos::scenario::Target,
    kind: faultline_chaos::scenario::FaultKind,
) -> Scenario {
    assert_eq!(scenario.faults.len(), 1, "{} has one fault", scenario.name);
    scenario.faults[0].target = target;
    scenario.faults[0].kind = kind;
    scenario
}

/// The events of a run's `history.json`, as JSON.
fn history_events(outcome: &runner::RunOutcome) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(outcome.out_dir.join("history.json")).unwrap();
    let history: serde_json::Value = serde_json::from_str(&text).unwrap();
    history["events"].as_array().expect("the history's events").clone()
}

fn reports_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-reports")
}

async fn run_and_require_every_verdict(scenario: Scenario) -> runner::RunOutcome {
    run_system_and_require_every_verdict(&common::reference(), scenario).await
}

async fn run_system_and_require_every_verdict(
    system: &faultline_harness::system::System,
    scenario: Scenario,
) -> runner::RunOutcome {
    let clock = Instant::now();
    let progress = |line: &str| eprintln!("[{:>6.1}s] {line}", clock.elapsed().as_secs_f64());
    let outcome = runner::run_until(
        system,
        &faultline_reference::registry(),
        &scenario,
        None,
        &reports_dir(),
        std::future::pending(),
        &progress,
    )
    .await
    .unwrap_or_else(|e| panic!("{}: the run could not be carried out: {e}", scenario.name));
    eprintln!(
        "{}: {:?} (files in {})",
        scenario.name,
        outcome.timings,
        outcome.out_dir.display()
    );
    let failures: Vec<String> = outcome
        .failures()
        .map(|v| {
            let examples: Vec<String> = v
                .counterexamples
                .iter()
                .map(|c| {
                    format!(
                        "    - {} (orders {:?}, events {:?})",
                        c.description, c.subjects, c.events
                    )
                })
                .collect();
            format!("  {}: {}\n{}", v.checker, v.summary, examples.join("\n"))
        })
        .collect();
    assert!(
        outcome.ok,
        "{} failed; see {}\n{}\nunhealed: {:?}",
        scenario.name,
        outcome.out_dir.display(),
        failures.join("\n"),
        outcome.unhealed
    );
    assert!(
        outcome.load.ok > 0,
        "the workload placed orders"
    );
    assert!(
        outcome.settlement.unsettled.is_empty(),
        "every accepted order settled"
    );
    let history = std::fs::read_to_string(outcome.out_dir.join("history.json")).unwrap();
    assert!(
        history.contains("start_fault") && history.contains("heal_fault"),
        "the fault was applied and healed"
    );
    require_a_report_of(&outcome);
    outcome
}

/// The run's report is complete, matches the schema and agrees with the run's outcome.
fn require_a_report_of(outcome: &runner::RunOutcome) {
    for file in report::FILES {
        assert!(
            outcome.out_dir.join(file).is_file(),
            "{file} in {}",
            outcome.out_dir.display()
        );
    }
    let text = std::fs::read_to_string(outcome.out_dir.join("report.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let problems = report::schema_problems(&value);
    assert!(
        problems.is_empty(),
        "report.json against the schema: {problems:#?}"
    );
    let report = report::load(&outcome.out_dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.version, report::REPORT_VERSION);
    assert!(report.run.passed, "the report says the run passed");
    assert_eq!(report.verdicts.len(), outcome.verdicts.len());
    assert!(
        report
            .faults
            .iter()
            .all(|f| f.applied_ms.is_some() && f.healed_ms.is_some()),
        "faults as applied: {:?}",
        report.faults
    );
    // The orders' final states as order's tables hold them (the reference extension's view,
    // not only what clients were answered), each cancelled one with its reason, and the saga
    // durations order measured.
    let outcomes = report.outcomes.as_ref().expect("the orders' outcomes were read");
    assert!(
        outcomes.unit == "orders"
            && outcomes.unfinished.is_empty()
            && outcomes.total > 0
            && outcomes.ended.values().sum::<u64>() == outcomes.total
            && outcomes
                .ended
                .keys()
                .all(|state| state == "CONFIRMED" || state.starts_with("CANCELLED: ")),
        "{outcomes:?}"
    );
    let sagas = report
        .latency
        .iter()
        .find(|h| h.op == "saga" && h.outcome == "all")
        .expect("a saga-duration histogram");
    assert!(sagas.count > 0 && sagas.count <= outcomes.total, "{sagas:?}");
    let latency = report.request_latency().expect("request latency");
    assert!(latency.count > 0 && latency.p50_ms <= latency.p99_ms);
    // What services/faultline.toml promises about the links, judged on the request proxies:
    // order's bulkheads, and payment's and inventory's replays of a repeated Idempotency-Key.
    for (checker, says) in [
        ("in-flight", "(bound 16)"),
        ("idempotent-replays", "order->payment"),
    ] {
        let verdict = report
            .verdicts
            .iter()
            .find(|v| v.checker == checker)
            .unwrap_or_else(|| panic!("no {checker} verdict"));
        assert!(
            verdict.passed
                && verdict.summary.contains("order->payment")
                && verdict.summary.contains(says),
            "{verdict:?}"
        );
    }
    assert!(!report.timeseries.points.is_empty());
    let junit = std::fs::read_to_string(outcome.out_dir.join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let index = std::fs::read_to_string(reports_dir().join("index.html")).unwrap();
    assert!(index.contains(&report.run.id), "the index lists the run");
}

/// The partition outlasts order's payment step deadline (20 s by default), so sagas that
/// reached CHARGE early in it give up and compensate.
#[tokio::test]
async fn saga_compensation_with_payment_partitioned_keeps_every_invariant() {
    let scenario = shortened(
        shipped("saga-compensation-payment-down"),
        30,
        Duration::from_secs(30),
        Duration::from_secs(3),
        Duration::from_secs(22),
    );
    let outcome = run_and_require_every_verdict(scenario).await;
    let outcomes = report::load(&outcome.out_dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .outcomes
        .expect("the orders' outcomes were read");
    let cancelled: u64 = outcomes
        .ended
        .iter()
        .filter(|(state, _)| state.starts_with("CANCELLED"))
        .map(|(_, n)| n)
        .sum();
    assert!(cancelled > 0, "some sagas compensated: {outcomes:?}");
}

#[tokio::test]
async fn sagas_resume_after_the_order_process_is_killed_mid_run() {
    let scenario = shortened(
        shipped("saga-recovery-order-killed"),
        30,
        Duration::from_secs(14),
        Duration::from_secs(4),
        Duration::from_secs(3),
    );
    run_and_require_every_verdict(scenario).await;
}

/// A request-level fault: half of payment's answers to charges are lost after payment
/// committed them (the request proxy on order->payment resets order's connection instead of
/// answering). Order retries with the same idempotency key; no order is charged twice, every
/// saga ends, and each request the fault hit is in the history.
#[tokio::test]
async fn lost_answers_to_charges_are_retried_and_charge_each_order_once() {
    let scenario = shortened(
        shipped("idempotency-payment-answers-lost"),
        40,
        Duration::from_secs(20),
        Duration::from_secs(2),
        Duration::from_secs(12),
    );
    let outcome = run_and_require_every_verdict(scenario).await;
    let events = history_events(&outcome);
    let dropped: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| {
            e["op"]["op"] == "request_fault"
                && e["type"] == "ok"
                && e["op"]["link"] == "order->payment"
                && e["op"]["path"] == "/payments/charges"
                && e["value"]["forwarded"] == true
                && e["value"]["answer_dropped"].is_u64()
        })
        .collect();
    assert!(
        !dropped.is_empty(),
        "answers to charges were dropped after payment answered them"
    );
    let hits = events
        .iter()
        .filter(|e| e["op"]["op"] == "request_fault" && e["type"] == "invoke")
        .count();
    let report = report::load(&outcome.out_dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.faults[0]
            .description
            .ends_with(&format!("hit {hits} request(s)")),
        "{}",
        report.faults[0].description
    );
}

/// A statement-level fault: half of inventory's commits fail with 40001 (rolled back by
/// Postgres). Unmodified, each failed transaction leaves nothing behind and every verdict
/// holds; with the seeded bug that holds a reservation's units in a statement of their own,
/// committed before the reservation is, the units stay held by no reservation and
/// stock-and-money-conserved says so.
#[tokio::test]
async fn failed_commits_in_inventory_leave_nothing_behind_unless_units_are_held_outside_the_transaction() {
    let scenario = shortened(
        shipped("transactions-inventory-commits-fail"),
        30,
        Duration::from_secs(14),
        Duration::from_secs(2),
        Duration::from_secs(8),
    );
    let outcome = run_and_require_every_verdict(scenario.clone()).await;
    let failed_commits = history_events(&outcome)
        .iter()
        .filter(|e| {
            e["op"]["op"] == "request_fault"
                && e["type"] == "invoke"
                && e["op"]["link"] == "inventory->postgres"
                && e["op"]["method"] == "SQL"
                && e["op"]["path"] == "COMMIT"
        })
        .count();
    assert!(failed_commits > 0, "inventory's commits were failed");

    let mut buggy = common::reference().clone();
    buggy
        .set_service_env(vec![(
            "inventory".into(),
            "INVENTORY_SEEDED_BUGS".into(),
            "inventory-holds-units-outside-transaction".into(),
        )])
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = Instant::now();
    let progress = |line: &str| eprintln!("[{:>6.1}s] {line}", clock.elapsed().as_secs_f64());
    let outcome = runner::run_until(&buggy, &faultline_reference::registry(), &scenario, None, &reports_dir(), std::future::pending(), &progress)
        .await
        .unwrap_or_else(|e| panic!("the run could not be carried out: {e}"));
    let failed: Vec<(&str, &str)> = outcome
        .failures()
        .map(|v| (v.checker.as_str(), v.summary.as_str()))
        .collect();
    assert_eq!(
        failed.iter().map(|(checker, _)| *checker).collect::<Vec<_>>(),
        ["stock-and-money-conserved"],
        "{failed:?}"
    );
    let violation = outcome
        .failures()
        .flat_map(|v| v.counterexamples.iter())
        .map(|c| c.description.clone())
        .collect::<Vec<_>>();
    assert!(
        violation.iter().any(|d| d.contains("reserved is") && d.contains("RESERVED reservations hold")),
        "{violation:?}"
    );
}

/// Program points on broker requests (`kind = "kafka"`): notification is killed right after
/// the broker stored one of its offset commits, then right as it sends one. Notification
/// commits only what it handled, so nothing is lost, and the event whose commit never left
/// comes again after the second kill (its log says so) and is notified once: every verdict
/// holds, with both program points struck. (That the
/// first point catches a consumer committing before it handles, the seeded
/// `notification-commits-before-handling`, `tests/explore.rs` shows with the same fault.)
#[tokio::test]
async fn notification_killed_at_its_offset_commits_loses_and_repeats_no_notification() {
    let scenario = shipped("outbox-notification-killed-at-offset-commits");
    let outcome = run_and_require_every_verdict(scenario).await;
    let struck: Vec<String> = history_events(&outcome)
        .iter()
        .filter(|e| {
            e["op"]["op"] == "request_fault"
                && e["type"] == "invoke"
                && e["op"]["link"] == "notification->kafka"
                && e["op"]["method"] == "KAFKA"
        })
        .map(|e| format!("{} {}", e["op"]["path"].as_str().unwrap_or(""), e["op"]["action"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(struck, ["offset_commit notification kill", "offset_commit notification kill"], "both program points struck");
    // The commit that never reached the broker: its event came again after the restart, and
    // notification recognised it.
    let log = std::fs::read_to_string(outcome.out_dir.join("logs/notification.log")).unwrap_or_default();
    let again = log.lines().filter(|l| l.contains("event seen before; no second notification")).count();
    assert!(again >= 1, "no event was delivered again after the kill before a commit");
}

/// A program point instead of a wall-clock time: order is killed right after payment
/// answered the third charge, before order hears (and records) it. Restarted when the fault
/// heals, order resumes its sagas from their persisted step and charges again with the same
/// idempotency key: every saga ends and no order is charged twice.
#[tokio::test]
async fn order_killed_right_after_payment_answered_a_charge_resumes_and_charges_once() {
    use faultline_chaos::scenario::intercept::{RequestAction, RequestFault, When, Which};
    use faultline_chaos::scenario::{FaultKind, Target};
    let scenario = with_fault(
        shortened(
            shipped("saga-recovery-order-killed"),
            30,
            Duration::from_secs(16),
            Duration::from_secs(2),
            Duration::from_secs(6),
        ),
        Target::Link {
            client: "order".into(),
            server: "payment".into(),
        },
        FaultKind::Request(RequestFault {
            method: Some("POST".into()),
            path: Some("/payments/charges".into()),
            which: Which::Nth(3),
            action: RequestAction::Stop {
                service: "order".into(),
                when: When::Answered,
                pause: false,
            },
        }),
    );
    let outcome = run_and_require_every_verdict(scenario).await;
    let events = history_events(&outcome);
    let struck: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["op"]["op"] == "request_fault" && e["type"] != "invoke")
        .collect();
    assert_eq!(struck.len(), 1, "the program point strikes once: {struck:?}");
    assert_eq!(struck[0]["type"], "ok", "{}", struck[0]);
    assert_eq!(struck[0]["value"]["stopped"], "order");
    assert_eq!(struck[0]["value"]["when"], "answered");
    assert!(struck[0]["value"]["answer_dropped"].is_u64(), "{}", struck[0]);
}

/// A message-level fault: notification is stopped, its group's committed offsets on `orders`
/// move back (as far as the topic goes), and it starts again when the fault heals — so it
/// reads every event it already handled a second time. It deduplicates on the event id:
/// still exactly one notification per event.
#[tokio::test]
async fn events_delivered_again_to_notification_still_notify_once() {
    use faultline_chaos::scenario::{FaultKind, Target};
    let scenario = with_fault(
        shortened(
            shipped("outbox-notification-kafka-cut"),
            30,
            Duration::from_secs(16),
            Duration::from_secs(6),
            Duration::from_secs(4),
        ),
        Target::Process {
            service: "notification".into(),
        },
        FaultKind::Redeliver {
            topic: "orders".into(),
            group: "notification".into(),
            events: 100_000,
        },
    );
    let outcome = run_and_require_every_verdict(scenario).await;
    let events = history_events(&outcome);
    let started = events
        .iter()
        .find(|e| e["op"]["op"] == "start_fault" && e["type"] == "ok")
        .expect("the redelivery started")
        .clone();
    let moved = started["value"]["moved"].as_array().expect("partitions moved").clone();
    assert!(!moved.is_empty(), "some offsets moved back: {started}");
    assert!(
        moved.iter().all(|m| m["to"].as_i64() < m["from"].as_i64()),
        "{started}"
    );
    let once = outcome
        .verdicts
        .iter()
        .find(|v| v.checker == "events-exactly-once")
        .expect("judged");
    assert!(once.ok, "{}", once.summary);
}

/// The circuit scenario with order's breakers read from its Prometheus metric instead of its
/// JSON endpoint: the same description but for `circuits`, sampled through the run, judged
/// by the same checker — opened within its bound, failed fast (the refusal counter), closed
/// again after the heal.
#[tokio::test]
async fn a_circuit_is_judged_from_its_prometheus_metric_sampled_through_the_run() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("services/faultline.toml");
    let text = std::fs::read_to_string(&reference).unwrap();
    let json = "circuits = \"/admin/circuits\"\n[services.order.env]";
    assert!(text.contains(json), "order shows its breakers as JSON");
    let metric = "circuits = { metrics = \"/metrics\", metric = \"faultline_circuit_state\", \
                  rejected = \"faultline_circuit_rejected_total\" }\n[services.order.env]";
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("circuits-from-metrics");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("faultline.toml");
    std::fs::write(&file, text.replacen(json, metric, 1)).unwrap();
    let system = faultline_harness::system::System::load(&file)
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(system.service("order").unwrap().circuit_metric.is_some());

    let scenario = shortened(
        shipped("circuit-breaker-payment-latency"),
        70,
        Duration::from_secs(30),
        Duration::from_secs(5),
        Duration::from_secs(10),
    );
    let outcome = run_system_and_require_every_verdict(&system, scenario).await;
    let circuit = outcome
        .verdicts
        .iter()
        .find(|v| v.checker == "circuit order->payment")
        .expect("the circuit was judged");
    assert!(
        circuit.summary.contains("after the first fault") && circuit.summary.contains("failed fast"),
        "{}",
        circuit.summary
    );
    let report = report::load(&outcome.out_dir).unwrap_or_else(|e| panic!("{e}"));
    let payment = report
        .circuits
        .iter()
        .find(|c| c.link == "order->payment")
        .expect("order's breaker for payment is in the report");
    assert!(payment.transitions.len() >= 2, "{payment:?}");
}

#[test]
fn the_same_seed_reproduces_the_planned_orders_and_fault_schedule() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("chaos/scenarios");
    for (_, scenario) in Scenario::load_dir(&dir, faultline_reference::registry().vocabulary(&common::reference())).unwrap() {
        let seed = scenario.seed;
        let planned = |seed| plan_of(&scenario, seed).expect("the description's workload");
        assert_eq!(planned(seed), planned(seed), "{}", scenario.name);
        assert_ne!(planned(seed), planned(seed + 1), "{}", scenario.name);
        let again = Scenario::load(
            &dir.join(format!("{}.toml", scenario.name)),
            faultline_reference::registry().vocabulary(&common::reference()),
        )
        .unwrap();
        assert_eq!(
            Nemesis::new(scenario.faults.clone()).timeline(),
            Nemesis::new(again.faults).timeline()
        );
    }
}

/// The reference system driven by a declarative workload instead of its own: stock from a
/// set-up request, a token from a command, an idempotency key, two intents of one operation
/// (`kind`), and a completion check that reads each order until its saga ended — recorded in
/// the history, judged by the reference system's checkers (which read the declarative
/// requests as orders) and generic ones, and counted in the report's outcomes.
#[tokio::test]
async fn a_declarative_workload_awaits_each_order_through_its_completion_check() {
    use faultline_harness::history::{EventType, Op};
    use faultline_harness::stack::Stack;

    let system = common::reference();
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("declarative-orders");
    std::fs::create_dir_all(&scratch).unwrap();
    let token_file = scratch.join("token");
    let token = faultline_gateway::mint_token(
        faultline_reference::JWT_SECRET,
        "declarative-test",
        &["orders:write", "orders:read"],
        "faultline",
        Duration::from_secs(3600),
    );
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    // One operation, two intents: the same request with the card that decides the intent.
    let place_order = |kind: &str, weight: u32, card: &str| {
        format!(
            r#"[[workload.operations]]
name = "place_order"
kind = "{kind}"
weight = {weight}
service = "gateway"
method = "POST"
path = "/api/orders"
idempotency_key = "Idempotency-Key"
headers = {{ Authorization = "Bearer {{command:cat {token}}}" }}
body = {{ customer_id = "c-{{int:1..5}}", sku = "sku-chaos-stocked", quantity = 1, amount_cents = "{{int:100..500}}", card = "{card}" }}
[workload.operations.completion]
path = "/api/orders/{{response:/order_id}}"
pointer = "/status"
values = ["CONFIRMED", "CANCELLED"]
within = "30s"
"#,
            token = token_file.display()
        )
    };
    let text = format!(
        r#"
name = "declarative-orders"
description = "Orders from a declarative workload, each awaited until its saga ended."
seed = 5
[workload]
requests = 16
concurrency = 4
duration = "10s"
{good}{declining}[[workload.setup]]
name = "stock"
service = "inventory"
method = "PUT"
path = "/admin/stock/sku-chaos-stocked"
body = {{ on_hand = 1000 }}
[[faults]]
start = "2s"
duration = "4s"
target = "order->payment"
kind = "latency"
latency = "200ms"
[expectations]
invariants = ["sagas-terminate", "saga-outcomes-consistent", "charged-at-most-once"]
[[expectations.sql]]
name = "no-order-left-pending"
database = "order"
query = "SELECT order_id FROM orders WHERE status = 'PENDING'"
[[expectations.http]]
name = "gateway-ready"
service = "gateway"
path = "/health/ready"
"#,
        good = place_order("good", 3, "4242424242424242"),
        declining = place_order("declining", 1, "4000000000000002"),
    );
    let scenario = Scenario::parse("declarative-orders.toml", faultline_reference::registry().vocabulary(&system), &text)
        .unwrap_or_else(|e| panic!("{e}"));

    let mut stack = Stack::start(&system, runner::stack_config(&system, &faultline_reference::registry()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = Instant::now();
    let progress = |line: &str| eprintln!("[{:>6.1}s] {line}", clock.elapsed().as_secs_f64());
    let outcome = runner::run_on_stack(&mut stack, &faultline_reference::registry(), &scenario, None, &reports_dir(), &progress).await;
    stack.shutdown().await.unwrap();
    let outcome = outcome.unwrap_or_else(|e| panic!("{e}"));
    let failures: Vec<String> = outcome
        .failures()
        .map(|v| format!("{}: {}", v.checker, v.summary))
        .collect();
    assert!(outcome.ok, "{failures:?} (files in {})", outcome.out_dir.display());

    let history: faultline_harness::history::History = serde_json::from_str(
        &std::fs::read_to_string(outcome.out_dir.join("history.json")).unwrap(),
    )
    .unwrap();
    let completed: Vec<_> = history
        .pairs()
        .into_iter()
        .filter(|(_, done)| done.event_type == EventType::Ok)
        .filter_map(|(invoke, done)| match &invoke.op {
            Op::Request { operation, kind, .. } if operation == "place_order" => {
                Some((kind.clone(), done.value["completion"].clone()))
            }
            _ => None,
        })
        .collect();
    assert!(completed.len() >= 16, "every planned order (and probe) completed: {completed:?}");
    let ended = |kind: &str, state: &str| {
        completed
            .iter()
            .filter(|(k, c)| k.as_deref() == Some(kind) && c["state"] == state && c["reads"].as_u64() >= Some(1))
            .count()
    };
    assert_eq!(
        ended("good", "CONFIRMED") + ended("declining", "CANCELLED"),
        completed.len(),
        "good orders were read until CONFIRMED, declining ones until CANCELLED: {completed:?}"
    );
    assert!(ended("declining", "CANCELLED") > 0, "the seed plans declining orders");

    // The reference checkers judged these requests as orders.
    let terminate = outcome
        .verdicts
        .iter()
        .find(|v| v.checker == "sagas-terminate")
        .expect("judged");
    assert!(
        !terminate.summary.starts_with("all 0 "),
        "the declarative orders were read as accepted orders: {}",
        terminate.summary
    );
    // The report counts the orders by the state order's tables hold (the reference
    // extension's view, with each cancellation's reason), and the operations by intent.
    let report = report::load(&outcome.out_dir).unwrap_or_else(|e| panic!("{e}"));
    let outcomes = report.outcomes.as_ref().expect("the orders' outcomes were read");
    assert_eq!(outcomes.unit, "orders");
    assert!(outcomes.unfinished.is_empty(), "{outcomes:?}");
    assert_eq!(outcomes.ended.values().sum::<u64>(), outcomes.total, "{outcomes:?}");
    assert!(
        outcomes.ended.get("CONFIRMED").copied().unwrap_or(0) > 0
            && outcomes.ended.keys().any(|state| state.starts_with("CANCELLED: ")),
        "{outcomes:?}"
    );
    for kind in ["place_order (good)", "place_order (declining)"] {
        assert!(
            report.operations.iter().any(|o| o.kind.as_deref() == Some(kind)),
            "{kind} in {:?}",
            report.operations
        );
    }
    // The set-up request is in the history too, first, answered ok.
    let (setup, answered) = history.pairs().into_iter().next().expect("a first operation");
    assert!(
        matches!(&setup.op, Op::Request { operation, method, .. } if operation == "stock" && method == "PUT"),
        "{setup:?}"
    );
    assert_eq!(setup.process, faultline_harness::history::Process::Probe);
    assert_eq!(answered.event_type, EventType::Ok);
}
