//! faultline on a system it did not grow up with: `examples/bank`, two Python services (a
//! teller that retries, a ledger that applies each transfer once) on Postgres and Kafka, the
//! ledger a container of an image, described by its own `faultline.toml` and judged by SQL,
//! Kafka and HTTP invariants of its own scenarios.
//!
//! Every shipped scenario passes through `faultline chaos run`, exactly as a user runs them; the
//! deliberately broken ledger (`BANK_LEDGER_DEDUPE=off`: a retried transfer is applied again)
//! is caught by the retry scenario, naming the duplicated transfers, and by the statement-level
//! fault that loses the answers of the ledger's commits.
//!
//! Needs the `faultline` binary (`cargo build --workspace --bins`), the images (among them
//! `faultline/python:3-bookworm`, the ledger's) and the Python venv that `ci/setup` prepares.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn faultline() -> PathBuf {
    faultline_harness::stack::service_bin_dir().join("faultline")
}

/// `faultline --system examples/bank/faultline.toml`, run from the repository's root.
fn bank() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(faultline());
    command.current_dir(root()).arg("--system").arg(root().join("examples/bank/faultline.toml"));
    command
}

/// `faultline --system examples/bank/faultline.toml chaos run ARGS --out OUT`, with `env`.
async fn chaos_run(args: &[&str], out: &Path, env: &[(&str, &str)]) -> Output {
    bank()
        .args(["chaos", "run"])
        .args(args)
        .arg("--out")
        .arg(out)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output()
        .await
        .expect("faultline runs")
}

/// The `report.json` of the one run of `scenario` in `out`.
fn report_of(out: &Path, scenario: &str) -> Value {
    let run = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{scenario}-")))
        })
        .unwrap_or_else(|| panic!("no run of {scenario} in {}", out.display()));
    let text = std::fs::read_to_string(run.join("report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn verdicts(report: &Value) -> Vec<(String, bool)> {
    report["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|v| {
            (
                v["checker"].as_str().unwrap().to_string(),
                v["passed"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_bank_keeps_its_invariants_and_its_broken_ledger_is_caught() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples-bank");
    let _ = std::fs::remove_dir_all(&out);

    // Every scenario, on one stack reset between them.
    let output = chaos_run(&["examples/bank/scenarios"], &out.join("correct"), &[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let retries = report_of(&out.join("correct"), "retried-transfers-apply-once");
    assert_eq!(
        verdicts(&retries),
        [
            ("steady-state before: ready".to_string(), true),
            ("steady-state after: ready".to_string(), true),
            ("settled".to_string(), true),
            ("sql each-transfer-applied-once".to_string(), true),
            ("sql money-conserved".to_string(), true),
            ("answers".to_string(), true),
            ("blast-radius".to_string(), true),
        ]
    );
    assert_eq!(
        retries["stack"]["services"],
        serde_json::json!(["ledger", "teller"])
    );
    assert_eq!(
        retries["stack"]["links"],
        serde_json::json!(["ledger->postgres", "ledger->kafka", "teller->ledger"])
    );
    let events = report_of(&out.join("correct"), "events-published-once");
    assert_eq!(
        verdicts(&events),
        [
            ("steady-state before: ready".to_string(), true),
            ("steady-state after: ready".to_string(), true),
            ("settled".to_string(), true),
            ("sql money-conserved".to_string(), true),
            (
                "kafka each-applied-transfer-published-once".to_string(),
                true
            ),
            ("kafka events-in-order-per-account".to_string(), true),
            ("answers".to_string(), true),
            ("blast-radius".to_string(), true),
        ]
    );
    // The reads sent the token the login answered (a read without it is a 401, which the
    // objective counts as an error).
    let login = report_of(&out.join("correct"), "balances-behind-a-login");
    assert!(
        verdicts(&login).contains(&("slo".to_string(), true)),
        "{:?}",
        verdicts(&login)
    );
    let outage = report_of(&out.join("correct"), "ledger-database-outage");
    assert!(
        verdicts(&outage).iter().all(|(_, ok)| *ok),
        "{:?}",
        verdicts(&outage)
    );
    for checker in [
        "sql balances-match-transfers",
        "http balances-readable-after-the-outage",
    ] {
        assert!(
            verdicts(&outage).iter().any(|(name, _)| name == checker),
            "{checker}: {:?}",
            verdicts(&outage)
        );
    }

    // Each operation keeps its own objectives while the ledger is slow.
    let fees = report_of(&out.join("correct"), "fees-stay-quick-while-the-ledger-is-slow");
    let slo = fees["verdicts"].as_array().unwrap().iter().find(|v| v["checker"] == "slo").expect("an slo verdict");
    assert_eq!(slo["passed"], true, "{slo}");
    assert!(slo["summary"].as_str().unwrap().contains("| fees: "), "{slo}");

    // The ledger is a container: killed mid-run, it is started afresh and the run holds.
    let crash = report_of(&out.join("correct"), "ledger-crash");
    assert_eq!(
        verdicts(&crash),
        [
            ("steady-state before: ready".to_string(), true),
            ("steady-state after: ready".to_string(), true),
            ("settled".to_string(), true),
            ("sql each-transfer-applied-once".to_string(), true),
            ("sql money-conserved".to_string(), true),
            ("sql outbox-drained".to_string(), true),
            ("answers".to_string(), true),
            ("blast-radius".to_string(), true),
        ]
    );
    let kill = &crash["faults"][0];
    assert_eq!(
        (kill["target"].as_str(), kill["kind"].as_str()),
        (Some("ledger"), Some("kill"))
    );
    assert!(
        kill["applied_ms"].is_number() && kill["healed_ms"].is_number() && kill["error"].is_null(),
        "killed and restarted: {kill}"
    );

    // The broken ledger applies a retried transfer again: the same scenario catches it (which
    // also shows the fault made the teller retry, so the correct ledger's pass means something).
    let output = chaos_run(
        &["examples/bank/scenarios/retried-transfers-apply-once.toml"],
        &out.join("broken"),
        &[("BANK_LEDGER_DEDUPE", "off")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report = report_of(&out.join("broken"), "retried-transfers-apply-once");
    let failed: Vec<&Value> = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["checker"], "sql each-transfer-applied-once");
    let examples = failed[0]["counterexamples"].as_array().unwrap();
    assert!(!examples.is_empty());
    let first = examples[0]["description"].as_str().unwrap();
    assert!(
        first.contains("\"transfer_id\"") && first.contains("\"times\""),
        "a counterexample is a duplicated transfer's row: {first}"
    );
    assert!(
        !examples[0]["events"].as_array().unwrap().is_empty(),
        "and names the requests that carried its key"
    );
    let subjects = examples[0]["subjects"].as_array().unwrap();
    assert_eq!(subjects.len(), 1, "about the transfer: {}", examples[0]);
    assert!(
        first.contains(&format!("\"transfer_id\":{}", subjects[0])),
        "the key the row holds: {}",
        examples[0]
    );
    assert!(
        stderr.contains(&format!("(about: {}; history events: ", subjects[0].as_str().unwrap())),
        "{stderr}"
    );

    // A statement-level fault through psycopg and libpq: half of the ledger's commits are
    // applied and their answers lost. The ledger answers 503, the teller retries with the same
    // transfer id: the correct ledger applies each once; the broken one applies the retries.
    let lost = report_of(&out.join("correct"), "commit-answers-lost");
    assert!(verdicts(&lost).iter().all(|(_, ok)| *ok), "{:?}", verdicts(&lost));
    let fault = lost["faults"][0]["description"].as_str().unwrap();
    assert!(
        fault.starts_with("statement fault on ledger->postgres: drop_answer on COMMIT")
            && !fault.ends_with("hit 0 statement(s)"),
        "{fault}"
    );
    let output = chaos_run(
        &["examples/bank/scenarios/commit-answers-lost.toml"],
        &out.join("broken-commits"),
        &[("BANK_LEDGER_DEDUPE", "off")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report = report_of(&out.join("broken-commits"), "commit-answers-lost");
    let failed: Vec<(String, bool)> = verdicts(&report).into_iter().filter(|(_, ok)| !ok).collect();
    assert_eq!(failed, [("sql each-transfer-applied-once".to_string(), false)]);

    // A broker-request fault through confluent-kafka (librdkafka): half of the ledger's
    // produces appended and their answers lost. The idempotent producer's retries are
    // appended once (the correct run above); a plain producer's are appended again.
    let lost = report_of(&out.join("correct"), "produce-answers-lost");
    assert!(verdicts(&lost).iter().all(|(_, ok)| *ok), "{:?}", verdicts(&lost));
    let fault = lost["faults"][0]["description"].as_str().unwrap();
    assert!(
        fault.starts_with("kafka fault on ledger->kafka: drop_answer on produce to ledger-events")
            && !fault.ends_with("hit 0 request(s)"),
        "{fault}"
    );
    let output = chaos_run(
        &["examples/bank/scenarios/produce-answers-lost.toml"],
        &out.join("plain-producer"),
        &[("BANK_LEDGER_PRODUCER", "plain")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report = report_of(&out.join("plain-producer"), "produce-answers-lost");
    assert!(
        verdicts(&report).contains(&("kafka each-applied-transfer-published-once".to_string(), false)),
        "{:?}",
        verdicts(&report)
    );

    // The broken relay publishes events again while they are in flight: the database is right
    // (the SQL invariant holds), and the Kafka invariants catch the duplicates on the topic.
    let output = chaos_run(
        &["examples/bank/scenarios/events-published-once.toml"],
        &out.join("broken-relay"),
        &[("BANK_LEDGER_RELAY", "resend")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report = report_of(&out.join("broken-relay"), "events-published-once");
    let outcomes = verdicts(&report);
    assert!(
        outcomes.contains(&(
            "kafka each-applied-transfer-published-once".to_string(),
            false
        )),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("sql money-conserved".to_string(), true)),
        "{outcomes:?}"
    );
    let duplicated = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["checker"] == "kafka each-applied-transfer-published-once")
        .unwrap();
    let first = duplicated["counterexamples"][0]["description"]
        .as_str()
        .unwrap();
    assert!(
        first.contains("is on ledger-events") && first.contains("times (partition@offset:"),
        "a counterexample names the copies of one event: {first}"
    );
}

/// A repository of its own (`examples/bank-cargo-test`, its own Cargo workspace depending on
/// faultline by path) runs the bank's scenarios from its own `cargo test` through the library,
/// and one scenario with a workload and a checker of its own written in Rust.
/// Built in `target/examples` beside the workspace's target, so a rerun reuses its build.
#[tokio::test]
async fn a_users_own_cargo_test_runs_the_banks_scenarios_through_the_library() {
    let target = faultline_harness::stack::service_bin_dir()
        .parent()
        .map(|t| t.join("examples"))
        .expect("the binaries live in a target folder");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let run = tokio::process::Command::new(cargo)
        .current_dir(root().join("examples/bank-cargo-test"))
        .args(["test", "--locked"])
        .env("CARGO_TARGET_DIR", &target)
        .kill_on_drop(true)
        .output();
    // Bounded: a first build of faultline's dependency tree takes minutes on 2 cores.
    let output = tokio::time::timeout(std::time::Duration::from_secs(25 * 60), run)
        .await
        .expect("cargo test of examples/bank-cargo-test finished within 25 minutes")
        .expect("cargo runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    for test in [
        "the_bank_keeps_its_promises_through_a_database_outage_and_slow_answers ... ok",
        "a_scenario_that_targets_what_the_bank_lacks_is_refused_before_anything_starts ... ok",
        // A workload and a checker written in Rust against `faultline::extend`, run for real.
        "payday_through_a_slow_ledger_is_explained_by_the_tellers_answers ... ok",
        "a_payment_applied_twice_is_outside_what_the_answers_allow ... ok",
    ] {
        assert!(text.contains(test), "{test}\n{text}");
    }
}

/// Exploration's second stage on a system it did not grow up with. The teller asks the ledger
/// `GET /transfers/ID` only when no attempt of a transfer got an answer, so the fault-free
/// discovery never sees that call; the single that loses the ledger's answers reveals it, and
/// each request fault at the revealed call site is queued on top of that single and run.
#[tokio::test]
async fn exploring_the_bank_combines_faults_at_a_call_site_that_only_a_fault_revealed() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("examples-bank-explore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let single = "drop-answer@teller->ledger POST /transfers";
    let output = bank()
        .args(["chaos", "explore", "examples/bank/explore/transfers.toml", "--only", single])
        .args(["--budget", "2", "--no-shrink", "--out"])
        .arg(&out)
        .kill_on_drop(true)
        .output()
        .await
        .expect("faultline runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("explore.json")).unwrap_or_else(|e| panic!("{e}\n{stderr}")),
    )
    .unwrap();
    let sites: Vec<&str> = state["discovery"]["call_sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["route"].as_str().unwrap())
        .collect();
    assert!(!sites.contains(&"/transfers/*"), "discovery has no fault, so no lookup: {sites:?}");

    let experiments = state["experiments"].as_array().unwrap();
    assert_eq!(experiments.len(), 2, "{stderr}");
    let first = &experiments[0];
    assert_eq!(first["id"], single);
    assert_eq!(first["ok"], true, "the ledger's answers lost, the lookup finds each transfer: {first}");
    let revealed: Vec<(&str, &str, &str)> = first["revealed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["link"].as_str().unwrap(), s["method"].as_str().unwrap(), s["route"].as_str().unwrap()))
        .collect();
    assert_eq!(revealed, vec![("teller->ledger", "GET", "/transfers/*")]);
    assert_eq!(
        state["space"]["combinations"],
        faultline_harness::explore::Kind::REQUEST_ONLY.len(),
        "each request fault at the lookup"
    );

    let second = &experiments[1];
    let id = second["id"].as_str().unwrap();
    assert!(id.starts_with(&format!("{single} + ")) && id.ends_with("@teller->ledger GET /transfers/*"), "{id}");
    assert_eq!(second["faults"].as_array().unwrap().len(), 2);
    assert!(second["report"].is_string(), "the combination ran: {second}");
    let pending: Vec<&str> = state["pending"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        pending.iter().filter(|p| p.starts_with(&format!("{single} + "))).count(),
        faultline_harness::explore::Kind::REQUEST_ONLY.len() - 1,
        "the other combinations wait their turn: {pending:?}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// `faultline --system examples/bank/faultline.toml chaos explore` of the bank's base, as
/// many experiments as `only` names (each the first whose id contains it), not shrunk, with
/// `env`: the exit status, `explore.json` and the standard error.
async fn explore_only(only: &[&str], out: &Path, env: &[(&str, &str)]) -> (Option<i32>, Value, String) {
    let mut command = bank();
    command.args(["chaos", "explore", "examples/bank/explore/transfers.toml"]);
    for experiment in only {
        command.args(["--only", experiment]);
    }
    let output = command
        .args(["--no-shrink", "--fresh", "--budget"])
        .arg(only.len().to_string())
        .arg("--out")
        .arg(out)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output()
        .await
        .expect("faultline runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let state = serde_json::from_str(
        &std::fs::read_to_string(out.join("explore.json")).unwrap_or_else(|e| panic!("{e}\n{stderr}")),
    )
    .unwrap();
    (output.status.code(), state, stderr)
}

/// Faults judged by what the users got, on a teller with two bugs no table shows.
///
/// - `TELLER_ERRORS=relay` reads the ledger's error message out of every 5xx's JSON body: the
///   ledger's own 503s and faultline's JSON error body parse, an empty 502 — a proxy's, as
///   exploration now sends — does not, and the teller's catch-all answers 500. The verdict
///   `answers` shows it (an operation that declares nothing promises no 500).
/// - `TELLER_SERVER=single` serves one request at a time: while the ledger's answers are held,
///   the fee schedule (`GET /fees`, which never asks the ledger) stalls too. The verdict
///   `blast-radius` shows it: discovery found `fees`' footprint empty.
///
/// The correct teller holds under the same two experiments.
#[tokio::test]
async fn faults_as_users_see_them_find_a_teller_that_answers_500_and_one_that_stalls_its_fees() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("examples-bank-users-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (empty_502, hold) = ("status-502@teller->ledger POST /transfers", "hold@teller->ledger POST /transfers");
    let broken = [("BANK_TELLER_ERRORS", "relay"), ("BANK_TELLER_SERVER", "single")];
    let (code, state, stderr) = explore_only(&[empty_502, hold], &out.join("broken"), &broken).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(state["discovery"]["footprints"]["fees"], serde_json::json!([]), "{}", state["discovery"]);
    let experiments = state["experiments"].as_array().unwrap();
    assert_eq!(experiments.len(), 2, "{stderr}");
    for tried in experiments {
        let failures: Vec<&str> = tried["failures"].as_array().unwrap().iter().map(|f| f["checker"].as_str().unwrap()).collect();
        let example = tried["failures"][0]["counterexamples"][0].as_str().unwrap_or_default();
        if tried["id"] == empty_502 {
            assert_eq!(failures, ["answers"], "{tried}");
            assert!(example.starts_with("transfer POST /transfers") && example.contains("answered 500"), "{example}");
        } else {
            assert_eq!(tried["id"], hold);
            assert_eq!(failures, ["blast-radius"], "{tried}");
            assert!(example.starts_with("fees (sent to teller) is outside the reach of fault 0"), "{example}");
        }
    }

    let (code, state, stderr) = explore_only(&[empty_502, hold], &out.join("correct"), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let held: Vec<bool> = state["experiments"].as_array().unwrap().iter().map(|e| e["ok"] == true).collect();
    assert_eq!(held, [true, true], "{}", state["experiments"]);
    let _ = std::fs::remove_dir_all(&out);
}

/// Per-operation objectives judge each operation on its own requests: with the teller serving
/// one request at a time (`BANK_TELLER_SERVER=single`), the fee schedule waits behind transfers
/// the ledger answers slowly, and `[expectations.slo.operations.fees]` (p99 at most 500 ms)
/// names it, though every answer was a success. The unmodified teller holds the same scenario
/// (`the_bank_keeps_its_invariants_and_its_broken_ledger_is_caught`).
#[tokio::test]
async fn an_operations_own_objectives_catch_fees_stalled_behind_slow_transfers() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("examples-bank-slo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = chaos_run(
        &["examples/bank/scenarios/fees-stay-quick-while-the-ledger-is-slow.toml"],
        &out,
        &[("BANK_TELLER_SERVER", "single")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let report = report_of(&out, "fees-stay-quick-while-the-ledger-is-slow");
    let slo = report["verdicts"].as_array().unwrap().iter().find(|v| v["checker"] == "slo").expect("an slo verdict");
    assert_eq!(slo["passed"], false, "{slo}");
    let said: Vec<&str> = slo["counterexamples"].as_array().unwrap().iter().map(|c| c["description"].as_str().unwrap()).collect();
    assert_eq!(said.len(), 1, "only fees missed its objective: {said:?}");
    assert!(said[0].starts_with("fees: p99 latency ") && said[0].contains("exceeds 500ms"), "{said:?}");
    let _ = std::fs::remove_dir_all(&out);
}

/// A base that fails without any fault is not explored, and says so where an exploration's
/// results are read: `explore.json` (stopped `base_failed`, with what failed), `explore.html`
/// and `junit.xml` (a failed test case for the fault-free run). Exit 1: the system broke a
/// promise with no fault at all.
#[tokio::test]
async fn a_base_that_fails_without_a_fault_leaves_an_exploration_that_says_so() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("examples-bank-base-fails-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let base = std::fs::read_to_string(root().join("examples/bank/explore/transfers.toml")).unwrap();
    // A scenario file is named as its scenario.
    std::fs::create_dir_all(out.join("broken")).unwrap();
    let broken = out.join("broken/transfers.toml");
    std::fs::write(
        &broken,
        format!("{base}\n[[expectations.sql]]\nname = \"never-holds\"\ndatabase = \"ledger\"\nquery = \"SELECT 1 AS always\"\n"),
    )
    .unwrap();
    let output = bank()
        .args(["chaos", "explore"])
        .arg(&broken)
        .arg("--out")
        .arg(out.join("explored"))
        .kill_on_drop(true)
        .output()
        .await
        .expect("faultline runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let explored = out.join("explored");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(explored.join("explore.json")).unwrap()).unwrap();
    assert_eq!(state["stopped"], "base_failed");
    assert_eq!(state["experiments"], serde_json::json!([]));
    assert_eq!(faultline_harness::explore::schema_problems(&state), Vec::<String>::new());
    let failed: Vec<&str> = state["discovery"]["base_failures"].as_array().unwrap().iter().map(|f| f["checker"].as_str().unwrap()).collect();
    assert_eq!(failed, ["sql never-holds"]);
    let junit = std::fs::read_to_string(explored.join("junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"discovery: the fault-free run\"") && junit.contains("<failure message=\"sql never-holds\""),
        "{junit}"
    );
    let page = std::fs::read_to_string(explored.join("explore.html")).unwrap();
    assert!(page.contains("The fault-free run did not hold"), "{page}");
    let _ = std::fs::remove_dir_all(&out);
}
