use super::test_vocabulary::vocab;
use super::*;

/// A system shaped like the reference one, as far as these tests need: services with links
/// between them and to Postgres and Kafka.
pub(super) fn shop() -> Topology {
    Topology::new(
        ["payment", "inventory", "order", "gateway"],
        ["postgres", "kafka"],
        [
            ("gateway", "order"),
            ("order", "payment"),
            ("order", "inventory"),
            ("order", "postgres"),
            ("payment", "postgres"),
            ("order", "kafka"),
        ],
    )
}

const FULL: &str = r#"
name = "payment-latency-opens-circuit"
description = "Slow payments open the circuit; it closes after healing."
seed = 42

[workload]
orders = 200
concurrency = 8
duration = "60s"
duplicate_rate = 0.1
retry_rate = 0.05
[workload.mix]
good = 8
declining = 1
out_of_stock = 1

[[faults]]
start = "10s"
duration = "20s"
target = "order->payment"
kind = "latency"
latency = "2s"
jitter = "100ms"
toxicity = 0.5
stream = "upstream"

[[faults]]
start = "35s"
duration = "5s"
target = "order"
kind = "kill"

[[faults]]
start = "40s"
duration = "5s"
target = "postgres"
kind = "container_pause"

[steady_state]
[[steady_state.probes]]
name = "all services ready"
probe = "ready"
[[steady_state.probes]]
name = "good orders confirm"
probe = "success_rate"
min = 0.95

[expectations]
invariants = ["sagas-terminate", "charged-at-most-once"]
[[expectations.circuits]]
link = "order->payment"
opens_within = "5s"
closes_within = "30s"
[expectations.slo]
p99_latency = "3s"
error_rate = 0.2
"#;

fn error_of(text: &str) -> ScenarioError {
    Scenario::parse("s.toml", vocab(&shop()), text).expect_err("must be rejected")
}

/// `FULL` with `old` replaced by `new` (which must occur).
fn full_with(old: &str, new: &str) -> String {
    assert!(FULL.contains(old), "fixture lacks {old:?}");
    FULL.replacen(old, new, 1)
}

#[test]
fn a_full_scenario_reads_into_typed_values() {
    let s = Scenario::parse("s.toml", vocab(&shop()), FULL).unwrap();
    assert_eq!(s.name, "payment-latency-opens-circuit");
    assert_eq!(s.seed, 42);
    assert_eq!(s.workload.params["orders"].as_integer(), Some(200));
    assert_eq!(s.workload.duration, Duration::from_secs(60));
    assert_eq!(s.workload.params["mix"]["declining"].as_integer(), Some(1));
    assert_eq!(s.faults.len(), 3);
    assert_eq!(
        s.faults[0],
        Fault {
            start: Duration::from_secs(10),
            duration: Duration::from_secs(20),
            target: Target::Link {
                client: "order".into(),
                server: "payment".into()
            },
            kind: FaultKind::Toxic {
                toxic: ToxicKind::Latency {
                    latency_ms: 2000,
                    jitter_ms: 100
                },
                stream: Stream::Upstream,
                toxicity: 0.5,
            },
        }
    );
    assert_eq!(s.faults[1].kind, FaultKind::Kill);
    assert_eq!(
        s.faults[2].target,
        Target::Container {
            name: "postgres".into()
        }
    );
    assert_eq!(s.steady_state.len(), 2);
    assert_eq!(
        s.steady_state[1].check,
        ProbeCheck::SuccessRate {
            sample: 20,
            min: 0.95
        }
    );
    assert_eq!(
        s.expectations.invariants,
        ["sagas-terminate", "charged-at-most-once"]
    );
    assert_eq!(
        s.expectations.circuits[0].opens_within,
        Some(Duration::from_secs(5))
    );
    assert_eq!(s.expectations.slo.unwrap().error_rate, Some(0.2));
}

#[test]
fn defaults_apply_when_optional_fields_are_left_out() {
    let s = Scenario::parse("s.toml", vocab(&shop()),
        "name = \"x\"\ndescription = \"d\"\n[workload]\norders = 1\nduration = \"1s\"\n",
    )
    .unwrap();
    assert_eq!(s.seed, 0);
    assert_eq!(s.workload.concurrency, 1);
    assert!(s.faults.is_empty());
    assert_eq!(
        s.expectations.invariants.len(),
        super::test_vocabulary::SHOP_INVARIANTS.len(),
        "the system workload's invariants by default"
    );
}

#[test]
fn every_toxic_kind_maps_to_its_toxiproxy_toxic() {
    let cases = [
        (
            "kind = \"bandwidth\"\nrate_kbps = 64",
            ToxicKind::Bandwidth {
                kilobytes_per_second: 64,
            },
        ),
        (
            "kind = \"slow_close\"\ndelay = \"1s\"",
            ToxicKind::SlowClose { delay_ms: 1000 },
        ),
        (
            "kind = \"timeout\"\ntimeout = \"500ms\"",
            ToxicKind::Timeout { timeout_ms: 500 },
        ),
        (
            "kind = \"reset_peer\"",
            ToxicKind::ResetPeer { timeout_ms: 0 },
        ),
        (
            "kind = \"slicer\"\naverage_size = 64\nsize_variation = 8\ndelay = \"10us\"",
            ToxicKind::Slicer {
                average_size: 64,
                size_variation: 8,
                delay_us: 10,
            },
        ),
        (
            "kind = \"limit_data\"\nbytes = 1024",
            ToxicKind::LimitData { bytes: 1024 },
        ),
    ];
    for (fields, expected) in cases {
        let text = full_with(
            "kind = \"latency\"\nlatency = \"2s\"\njitter = \"100ms\"",
            fields,
        );
        let s =
            Scenario::parse("s.toml", vocab(&shop()), &text).unwrap_or_else(|e| panic!("{fields}: {e}"));
        match &s.faults[0].kind {
            FaultKind::Toxic { toxic, .. } => assert_eq!(toxic, &expected),
            other => panic!("{fields}: got {other:?}"),
        }
    }
}

#[test]
fn unknown_fields_are_rejected_with_their_path_and_the_allowed_ones() {
    let e = error_of(&full_with(
        "latency = \"2s\"",
        "latency = \"2s\"\nlatencyy = \"1s\"",
    ));
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("s.toml", "faults[0].latencyy")
    );
    assert!(
        e.reason.contains("unknown field") && e.reason.contains("latency"),
        "{e}"
    );

    let e = error_of(&full_with("seed = 42", "seed = 42\ncolour = \"red\""));
    assert_eq!(e.field, "colour");

    let e = error_of(&full_with("orders = 200", "orders = 200\nusers = 3"));
    assert_eq!(e.field, "workload.users");
}

#[test]
fn unknown_targets_and_kinds_are_rejected_naming_the_choices() {
    let e = error_of(&full_with(
        "target = \"order->payment\"",
        "target = \"payment->order\"",
    ));
    assert_eq!(e.field, "faults[0].target");
    assert!(
        e.reason.contains("unknown link") && e.reason.contains("order->payment"),
        "{e}"
    );

    let e = error_of(&full_with("target = \"order\"", "target = \"billing\""));
    assert_eq!(e.field, "faults[1].target");
    assert!(e.reason.contains("unknown target \"billing\""), "{e}");

    let e = error_of(&full_with("kind = \"kill\"", "kind = \"explode\""));
    assert_eq!(e.field, "faults[1].kind");
    assert!(
        e.reason.contains("unknown fault kind \"explode\"") && e.reason.contains("partition"),
        "{e}"
    );
}

#[test]
fn a_kind_on_the_wrong_kind_of_target_is_rejected() {
    let e = error_of(&full_with("kind = \"kill\"", "kind = \"partition\""));
    assert_eq!(e.field, "faults[1].target");
    assert!(e.reason.contains("applies to a link"), "{e}");

    let e = error_of(&full_with(
        "kind = \"container_pause\"",
        "kind = \"latency\"\nlatency = \"1s\"",
    ));
    assert_eq!(e.field, "faults[2].target");
}

#[test]
fn impossible_values_are_rejected() {
    let cases = [
        (
            full_with("toxicity = 0.5", "toxicity = 1.5"),
            "faults[0].toxicity",
            "from 0 to 1",
        ),
        (
            full_with("latency = \"2s\"", "latency = \"soon\""),
            "faults[0].latency",
            "duration",
        ),
        (
            full_with("duration = \"20s\"", "duration = \"0s\""),
            "faults[0].duration",
            "more than 0s",
        ),
        (
            full_with("start = \"10s\"", "start = \"50s\""),
            "faults[0].duration",
            "after the workload's duration",
        ),
        (
            full_with("concurrency = 8", "concurrency = 0"),
            "workload.concurrency",
            "from 1 to 256",
        ),
        (
            full_with("orders = 200", "orders = \"many\""),
            "workload.orders",
            "found the string",
        ),
        (
            full_with("duplicate_rate = 0.1", "duplicate_rate = -0.1"),
            "workload.duplicate_rate",
            "from 0 to 1",
        ),
        (
            full_with("stream = \"upstream\"", "stream = \"sideways\""),
            "faults[0].stream",
            "upstream",
        ),
        (
            full_with("min = 0.95", "min = 2"),
            "steady_state.probes[1].min",
            "from 0 to 1",
        ),
        (
            full_with("probe = \"ready\"", "probe = \"vibes\""),
            "steady_state.probes[0].probe",
            "unknown probe",
        ),
        (
            full_with("good = 8\ndeclining = 1\nout_of_stock = 1", "good = 0"),
            "workload.mix",
            "above 0",
        ),
        (
            full_with(
                "name = \"payment-latency-opens-circuit\"",
                "name = \"Has Spaces\"",
            ),
            "name",
            "kebab-case",
        ),
    ];
    for (text, field, reason) in cases {
        let e = error_of(&text);
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(reason), "{field}: {e}");
    }
}

#[test]
fn expectations_are_checked_against_the_system_topology() {
    let e = error_of(&full_with(
        "\"charged-at-most-once\"]",
        "\"charged-twice\"]",
    ));
    assert_eq!(e.field, "expectations.invariants");

    let e = error_of(&full_with(
        "link = \"order->payment\"",
        "link = \"order->postgres\"",
    ));
    assert_eq!(e.field, "expectations.circuits[0].link");
    assert!(e.reason.contains("no circuit breaker"), "{e}");

    let e = error_of(&full_with(
        "link = \"order->payment\"",
        "link = \"order->inventory\"",
    ));
    assert_eq!(e.field, "expectations.circuits[0].opens");
    assert!(
        e.reason.contains("no fault targets order->inventory"),
        "{e}"
    );
}

#[test]
fn missing_required_fields_and_bad_toml_are_reported() {
    let e = error_of("name = \"x\"\ndescription = \"d\"\n");
    assert_eq!(e.field, "workload");
    let e = error_of("name = \"x\"\n[workload]\norders = 1\nduration = \"1s\"\n");
    assert_eq!(e.field, "description");
    let e = error_of("name = \"x\nbroken");
    assert_eq!(e.field, "(file)");
    assert!(
        e.reason.contains("not valid TOML") && e.reason.contains("line"),
        "{e}"
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let e = Scenario::load(Path::new("/nonexistent/scenario.toml"), &shop()).unwrap_err();
    assert_eq!(e.file, "/nonexistent/scenario.toml");
    assert!(
        e.to_string()
            .starts_with("/nonexistent/scenario.toml: (file): cannot read"),
        "{e}"
    );
}

#[test]
fn huge_durations_in_any_field_are_errors_naming_the_field() {
    const HUGE: &str = "\"99999999999999999999999h\"";
    let cases = [
        ("duration = \"60s\"", "workload.duration"),
        ("start = \"10s\"", "faults[0].start"),
        ("duration = \"20s\"", "faults[0].duration"),
        ("latency = \"2s\"", "faults[0].latency"),
        ("jitter = \"100ms\"", "faults[0].jitter"),
        (
            "opens_within = \"5s\"",
            "expectations.circuits[0].opens_within",
        ),
        (
            "closes_within = \"30s\"",
            "expectations.circuits[0].closes_within",
        ),
        ("p99_latency = \"3s\"", "expectations.slo.p99_latency"),
    ];
    for (old, field) in cases {
        let key = old.split(" = ").next().unwrap();
        let e = error_of(&full_with(old, &format!("{key} = {HUGE}")));
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains("99999999999999999999999h"), "{e}");
    }
    // Large enough to parse as a Duration, but beyond any run.
    let e = error_of(&full_with("latency = \"2s\"", "latency = \"2h\""));
    assert_eq!(e.field, "faults[0].latency");
    assert!(e.reason.contains("at most 1h"), "{e}");
}

#[test]
fn a_fault_whose_start_plus_duration_overflows_is_an_error() {
    let text = full_with(
        "start = \"10s\"\nduration = \"20s\"",
        "start = \"5000000000000000h\"\nduration = \"5000000000000000h\"",
    );
    let e = error_of(&text);
    assert!(e.field.starts_with("faults[0]."), "{e}");
}

#[test]
fn a_probe_sample_duration_beyond_the_longest_run_is_an_error() {
    let text = full_with(
        "probe = \"ready\"",
        "probe = \"p99_latency\"\nmax = \"99999999999999999999999h\"",
    );
    let e = error_of(&text);
    assert_eq!(e.field, "steady_state.probes[0].max", "{e}");
}

#[test]
fn a_toml_error_on_a_long_line_shows_a_short_excerpt() {
    // A deeply nested file on one line: the parser gives up somewhere inside it.
    let text = format!("name = {}", "[".repeat(40_000));
    let e = error_of(&text);
    assert_eq!(e.field, "(file)");
    assert!(e.reason.contains("line 1, column"), "{e}");
    assert!(
        e.reason.len() < 400,
        "the excerpt is short: {} bytes",
        e.reason.len()
    );
}

#[test]
fn a_single_file_whose_name_differs_from_its_file_name_is_refused() {
    let dir = std::env::temp_dir().join(format!("faultline-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("right-name.toml");
    std::fs::write(
        &path,
        "name = \"wrong-name\"\ndescription = \"d\"\n[workload]\norders = 1\nduration = \"1s\"\n",
    )
    .unwrap();
    let e = Scenario::load(&path, vocab(&shop())).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.field, "name");
    assert!(e.reason.contains("\"right-name\""), "{e}");
}

const HTTP: &str = r#"
name = "transfers"
description = "d"
[workload]
requests = 10
duration = "10s"
[[workload.operations]]
name = "transfer"
service = "payment"
method = "POST"
path = "/transfers"
idempotency_key = "Idempotency-Key"
body = { id = "{key}", amount = "{int:1..5}", to = ["{pick:a|b}"] }
[expectations]
[[expectations.sql]]
name = "money-conserved"
database = "payment"
query = "SELECT sum(balance) FROM accounts"
equals = "SELECT 100"
"#;

fn http_with(old: &str, new: &str) -> String {
    assert!(HTTP.contains(old), "fixture lacks {old:?}");
    HTTP.replacen(old, new, 1)
}

fn databases() -> Topology {
    shop().with_databases(["payment", "order"])
}

#[test]
fn an_http_workload_and_sql_invariants_read_into_typed_values() {
    let s = Scenario::parse("s.toml", vocab(&databases()), HTTP).unwrap();
    let http = s.workload.http.as_ref().unwrap();
    assert_eq!(http.requests, 10);
    assert!(s.workload.params.is_empty());
    let op = &http.operations[0];
    assert_eq!((op.name.as_str(), op.method.as_str()), ("transfer", "POST"));
    assert_eq!(op.idempotency_key.as_deref(), Some("Idempotency-Key"));
    assert!(matches!(op.body, Some(request::Body::Object(_))));
    assert!(
        s.expectations.invariants.is_empty(),
        "no reference invariants by default"
    );
    assert_eq!(s.expectations.sql[0].equals.as_deref(), Some("SELECT 100"));
    assert_eq!((s.expectations.sql[0].equals_database.as_ref(), s.expectations.sql[0].rows.as_ref()), (None, None));
    // Across databases: `in` / `not_in`, and `equals` on another one.
    let across = http_with(
        "equals = \"SELECT 100\"",
        "not_in = { database = \"order\", query = \"SELECT order_id FROM refunds\" }",
    );
    let s = Scenario::parse("s.toml", vocab(&databases()), &across).unwrap();
    assert_eq!(
        s.expectations.sql[0].rows,
        Some(SqlRows { among: false, database: "order".into(), query: "SELECT order_id FROM refunds".into() })
    );
    let other = http_with("equals = \"SELECT 100\"", "equals = { database = \"order\", query = \"SELECT count(*) FROM orders\" }");
    let s = Scenario::parse("s.toml", vocab(&databases()), &other).unwrap();
    assert_eq!(
        (s.expectations.sql[0].equals.as_deref(), s.expectations.sql[0].equals_database.as_deref()),
        (Some("SELECT count(*) FROM orders"), Some("order"))
    );
}

#[test]
fn a_workloads_client_timeout_is_five_seconds_unless_it_says() {
    let s = Scenario::parse("s.toml", vocab(&databases()), HTTP).unwrap();
    assert_eq!(s.workload.client_timeout, Duration::from_secs(5));
    let text = http_with("requests = 10", "requests = 10\nclient_timeout = \"30s\"");
    let s = Scenario::parse("s.toml", vocab(&databases()), &text).unwrap();
    assert_eq!(s.workload.client_timeout, Duration::from_secs(30));
    for bad in ["\"0s\"", "\"11m\""] {
        let text = http_with("requests = 10", &format!("requests = 10\nclient_timeout = {bad}"));
        let e = Scenario::parse("s.toml", vocab(&databases()), &text).unwrap_err();
        assert_eq!(e.field, "workload.client_timeout", "{e}");
        assert!(e.reason.contains("at most 10m"), "{e}");
    }
}

#[test]
fn an_operation_has_objectives_of_its_own() {
    let text = http_with(
        "[expectations]",
        "[expectations.slo]\np99_latency = \"2s\"\n[expectations.slo.operations.transfer]\np99_latency = \"300ms\"\nerror_rate = 0.01\n[expectations]",
    );
    let s = Scenario::parse("s.toml", vocab(&databases()), &text).unwrap();
    let slo = s.expectations.slo.unwrap();
    assert_eq!(slo.p99_latency, Some(Duration::from_secs(2)));
    assert_eq!(
        slo.operations,
        [OperationSlo {
            operation: "transfer".into(),
            p99_latency: Some(Duration::from_millis(300)),
            error_rate: Some(0.01),
        }]
    );
    assert!(slo.operations[0].covers("transfer", Some("overdraft")));
    assert!(!slo.operations[0].covers("refund", None));

    for (objectives, field, says) in [
        (
            "[expectations.slo.operations.refund]\nerror_rate = 0.1",
            "expectations.slo.operations.refund",
            "not an operation of the workload: expected an operation's name, or its name and kind as `name (kind)`; the workload has: transfer",
        ),
        (
            "[expectations.slo.operations.transfer]",
            "expectations.slo.operations.transfer",
            "expected p99_latency, error_rate or both",
        ),
        (
            "[expectations.slo.operations.transfer]\nerror_rate = 2",
            "expectations.slo.operations.transfer.error_rate",
            "",
        ),
        (
            "[expectations.slo.operations.transfer]\np99 = \"1s\"",
            "expectations.slo.operations.transfer.p99",
            "unknown field",
        ),
    ] {
        let text = http_with("[expectations]", &format!("{objectives}\n[expectations]"));
        let e = Scenario::parse("s.toml", vocab(&databases()), &text).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(says), "{e}");
    }
}

#[test]
fn bad_http_workloads_and_sql_invariants_name_the_field() {
    let cases = [
        (
            http_with("service = \"payment\"", "service = \"billing\""),
            "workload.operations[0].service",
            "unknown service \"billing\"",
        ),
        (
            http_with("requests = 10", "requests = 10\norders = 5"),
            "workload.orders",
            "unknown field",
        ),
        (
            http_with("requests = 10\n", ""),
            "workload.requests",
            "required",
        ),
        (
            http_with("{int:1..5}", "{int:5..1}"),
            "workload.operations[0].body.amount",
            "A <= B",
        ),
        (
            http_with("{pick:a|b}", "{env:X}"),
            "workload.operations[0].body.to[0]",
            "only allowed in header",
        ),
        (
            http_with("path = \"/transfers\"", "path = \"transfers\""),
            "workload.operations[0].path",
            "starting with `/`",
        ),
        (
            http_with("method = \"POST\"", "method = \"BREW\""),
            "workload.operations[0].method",
            "expected GET",
        ),
        (
            http_with(
                "[expectations]",
                "[expectations]\ninvariants = [\"sagas-stuck\"]",
            ),
            "expectations.invariants",
            "unknown invariant \"sagas-stuck\"",
        ),
        (
            http_with("database = \"payment\"", "database = \"ledger\""),
            "expectations.sql[0].database",
            "unknown database \"ledger\"",
        ),
        (
            http_with("name = \"money-conserved\"", "name = \"Money\""),
            "expectations.sql[0].name",
            "kebab-case",
        ),
        // Across databases: one relation at a time, each on a described database.
        (
            http_with("equals = \"SELECT 100\"", "in = { database = \"order\", query = \"SELECT 1\" }\nnot_in = { database = \"order\", query = \"SELECT 2\" }"),
            "expectations.sql[0].not_in",
            "one of equals, in and not_in",
        ),
        (
            http_with("equals = \"SELECT 100\"", "equals = \"SELECT 100\"\nin = { database = \"order\", query = \"SELECT 1\" }"),
            "expectations.sql[0].in",
            "one of equals, in and not_in",
        ),
        (
            http_with("equals = \"SELECT 100\"", "in = { database = \"ledger\", query = \"SELECT 1\" }"),
            "expectations.sql[0].in.database",
            "unknown database \"ledger\"",
        ),
        (
            http_with("equals = \"SELECT 100\"", "not_in = { database = \"order\" }"),
            "expectations.sql[0].not_in.query",
            "required",
        ),
        (
            http_with("equals = \"SELECT 100\"", "equals = { database = \"order\", query = \"SELECT 1\", rows = 2 }"),
            "expectations.sql[0].equals.rows",
            "unknown field",
        ),
        (
            http_with("equals = \"SELECT 100\"", "equals = 100"),
            "expectations.sql[0].equals",
            "or { database, query }",
        ),
    ];
    for (text, field, says) in cases {
        let e = Scenario::parse("s.toml", vocab(&databases()), &text).expect_err(field);
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(says), "{field}: {e}");
    }
}

const KAFKA: &str = r#"
[[expectations.kafka]]
name = "published-once"
topic = "ledger-events"
unique = "header:event-id"
expected = { database = "payment", query = "SELECT transfer_id FROM transfers" }
ordered_by = "/seq"
"#;

fn with_kafka(old: &str, new: &str) -> String {
    assert!(KAFKA.contains(old), "fixture lacks {old:?}");
    format!("{HTTP}{}", KAFKA.replacen(old, new, 1))
}

fn with_topics() -> Topology {
    databases().with_topics(["ledger-events"])
}

#[test]
fn kafka_invariants_read_into_typed_values() {
    let s = Scenario::parse("s.toml", vocab(&with_topics()), &with_kafka("", "")).unwrap();
    let check = &s.expectations.kafka[0];
    assert_eq!(check.topic, "ledger-events");
    assert_eq!(check.unique, Some(RecordId::Header("event-id".into())));
    assert_eq!(
        check.expected,
        Some(("payment".into(), "SELECT transfer_id FROM transfers".into()))
    );
    assert_eq!(check.ordered_by.as_deref(), Some("/seq"));
    let by_value = with_kafka("header:event-id", "value:/transfer_id");
    let s = Scenario::parse("s.toml", vocab(&with_topics()), &by_value).unwrap();
    assert_eq!(
        s.expectations.kafka[0].unique,
        Some(RecordId::Value("/transfer_id".into()))
    );
}

#[test]
fn bad_kafka_invariants_name_the_field() {
    let cases = [
        (
            with_kafka("topic = \"ledger-events\"", "topic = \"ledger\""),
            "expectations.kafka[0].topic",
            "unknown topic \"ledger\"; the system's topics: ledger-events",
        ),
        (
            with_kafka("header:event-id", "column:id"),
            "expectations.kafka[0].unique",
            "expected key, header:NAME or value:/json/pointer",
        ),
        (
            with_kafka("header:event-id", "value:id"),
            "expectations.kafka[0].unique",
            "JSON pointer starting with `/`",
        ),
        (
            with_kafka("database = \"payment\"", "database = \"ledger\""),
            "expectations.kafka[0].expected.database",
            "unknown database \"ledger\"",
        ),
        (
            with_kafka("unique = \"header:event-id\"\n", ""),
            "expectations.kafka[0].expected",
            "give `unique` too",
        ),
        (
            with_kafka(
                "unique = \"header:event-id\"\nexpected = { database = \"payment\", query = \"SELECT transfer_id FROM transfers\" }\nordered_by = \"/seq\"\n",
                "",
            ),
            "expectations.kafka[0].unique",
            "required",
        ),
        (
            with_kafka("ordered_by = \"/seq\"", "ordered_by = \"seq\""),
            "expectations.kafka[0].ordered_by",
            "JSON pointer",
        ),
        (
            with_kafka("ordered_by = \"/seq\"", "ordered_by = \"/seq\"\npartition = 1"),
            "expectations.kafka[0].partition",
            "unknown field",
        ),
    ];
    for (text, field, reason) in cases {
        let e = Scenario::parse("s.toml", vocab(&with_topics()), &text).expect_err(field);
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(reason), "{field}: {e}");
    }
}

#[test]
fn http_invariants_read_and_bad_ones_name_the_field() {
    let check = "[[expectations.http]]\nname = \"reads\"\nservice = \"payment\"\npath = \"/accounts/a\"\nstatus = 200\npointer = \"/balance\"\nequals = 100\n";
    let s = Scenario::parse("s.toml", vocab(&databases()), &format!("{HTTP}{check}")).unwrap();
    let http = &s.expectations.http[0];
    assert_eq!((http.method.as_str(), http.status), ("GET", Some(200)));
    assert_eq!(http.body, Some(("/balance".into(), serde_json::json!(100))));
    for (old, new, field, reason) in [
        ("service = \"payment\"", "service = \"bank\"", "service", "unknown service \"bank\""),
        ("path = \"/accounts/a\"", "path = \"accounts\"", "path", "starting with `/`"),
        ("status = 200", "status = 42", "status", "from 100 to 599"),
        ("pointer = \"/balance\"\n", "", "pointer", "required with `equals`"),
        ("equals = 100\n", "", "equals", "required with `pointer`"),
        ("status = 200", "status = 200\nheaders = {}", "headers", "unknown field"),
    ] {
        let text = format!("{HTTP}{}", check.replacen(old, new, 1));
        let e = Scenario::parse("s.toml", vocab(&databases()), &text).expect_err(field);
        assert_eq!(e.field, format!("expectations.http[0].{field}"), "{e}");
        assert!(e.reason.contains(reason), "{field}: {e}");
    }
}

#[test]
fn completion_checks_and_command_headers_read_and_bad_ones_name_the_field() {
    let completion = "headers = { Authorization = \"Bearer {command:./mint --scope orders}\" }\n[workload.operations.completion]\npath = \"/orders/{response:/order_id}\"\npointer = \"/status\"\nvalues = [\"CONFIRMED\", \"CANCELLED\"]\nok = [\"CONFIRMED\"]\nwithin = \"20s\"\n";
    let text = |c: &str| http_with("[expectations]", &format!("{c}[expectations]"));
    let s = Scenario::parse("s.toml", vocab(&databases()), &text(completion)).unwrap();
    let op = &s.workload.http.as_ref().unwrap().operations[0];
    let check = op.completion.as_ref().unwrap();
    assert_eq!(check.pointer, "/status");
    assert_eq!(check.ok, [serde_json::json!("CONFIRMED")]);
    assert_eq!(check.within, Duration::from_secs(20));
    assert!(op.headers[0]
        .1
        .generators()
        .any(|g| *g == request::Generator::Command(vec!["./mint".into(), "--scope".into(), "orders".into()])));
    for (old, new, field, reason) in [
        ("{response:/order_id}", "{uuid}", "completion.path", "not allowed in a completion path"),
        ("{response:/order_id}", "{response:order_id}", "completion.path", "a JSON pointer"),
        ("pointer = \"/status\"", "pointer = \"status\"", "completion.pointer", "starting with `/`"),
        ("ok = [\"CONFIRMED\"]", "ok = [\"PAID\"]", "completion.ok", "not one of `values`"),
        ("values = [\"CONFIRMED\", \"CANCELLED\"]", "values = []", "completion.values", "non-empty"),
        ("within = \"20s\"", "within = \"1h\"", "completion.within", "at most 10m"),
        ("Bearer {command:./mint --scope orders}", "Bearer {response:/x}", "headers.Authorization", "unknown generator"),
    ] {
        let e = Scenario::parse("s.toml", vocab(&databases()), &text(&completion.replacen(old, new, 1)))
            .expect_err(field);
        assert_eq!(e.field, format!("workload.operations[0].{field}"), "{e}");
        assert!(e.reason.contains(reason), "{field}: {e}");
    }
    let e = Scenario::parse(
        "s.toml",
        vocab(&databases()),
        &http_with("path = \"/transfers\"", "path = \"/transfers/{command:id}\""),
    )
    .unwrap_err();
    assert!(e.reason.contains("only allowed in header values"), "{e}");
}

#[test]
fn setup_requests_read_like_operations_and_bad_ones_name_the_field() {
    let setup = "[[workload.setup]]\nname = \"open\"\nservice = \"payment\"\nmethod = \"PUT\"\npath = \"/accounts/a\"\nbody = { balance = 100 }\n";
    let text = |c: &str| http_with("[expectations]", &format!("{c}[expectations]"));
    let s = Scenario::parse("s.toml", vocab(&databases()), &text(setup)).unwrap();
    let http = s.workload.http.as_ref().unwrap();
    assert_eq!(http.setup.len(), 1);
    assert_eq!((http.setup[0].name.as_str(), http.setup[0].method.as_str()), ("open", "PUT"));
    let e = Scenario::parse(
        "s.toml",
        vocab(&databases()),
        &text(&setup.replace("service = \"payment\"", "service = \"vault\"")),
    )
    .unwrap_err();
    assert_eq!(e.field, "workload.setup[0].service", "{e}");
}

/// `{setup:NAME:/POINTER}` (a login's token in a header) names a set-up request sent before
/// the request that uses it, and only a header may use it.
#[test]
fn a_setup_answer_is_named_in_headers_and_only_of_an_earlier_setup_request() {
    let login = "[[workload.setup]]\nname = \"login\"\nservice = \"payment\"\nmethod = \"POST\"\npath = \"/login\"\n";
    let header = "idempotency_key = \"Idempotency-Key\"\nheaders = { Authorization = \"Bearer {setup:login:/token}\" }";
    let text = |setup: &str, header: &str| {
        http_with("idempotency_key = \"Idempotency-Key\"", header).replace("[expectations]\n", &format!("{setup}[expectations]\n"))
    };
    let s = Scenario::parse("s.toml", vocab(&databases()), &text(login, header)).unwrap();
    let http = s.workload.http.as_ref().unwrap();
    assert!(http.operations[0].headers[0].1.generators().any(|g| *g
        == request::Generator::Setup { name: "login".into(), pointer: "/token".into() }));
    // No such set-up request.
    let e = Scenario::parse("s.toml", vocab(&databases()), &text("", header)).unwrap_err();
    assert_eq!(e.field, "workload.operations[0].headers.Authorization", "{e}");
    assert!(e.to_string().contains("no [[setup]] request \"login\""), "{e}");
    // A set-up request may use only an earlier one's answer.
    let own = login.replace("path = \"/login\"", "path = \"/login\"\nheaders = { Authorization = \"Bearer {setup:login:/token}\" }");
    let e = Scenario::parse("s.toml", vocab(&databases()), &text(&own, header)).unwrap_err();
    assert_eq!(e.field, "workload.setup[0].headers.Authorization", "{e}");
    // Not in a path or body; a pointer must be a JSON pointer.
    let e = Scenario::parse("s.toml", vocab(&databases()), &text(login, header).replace("path = \"/transfers\"", "path = \"/t/{setup:login:/token}\"")).unwrap_err();
    assert!(e.to_string().contains("only allowed in header values"), "{e}");
    let e = Scenario::parse("s.toml", vocab(&databases()), &text(login, &header.replace(":/token", ":token"))).unwrap_err();
    assert!(e.to_string().contains("expected {setup:NAME:/POINTER}"), "{e}");
}

#[test]
fn operations_may_share_a_name_when_their_kinds_differ() {
    let second = |kind: &str| {
        format!(
            "{kind}[[workload.operations]]\nname = \"transfer\"\nkind = \"overdraft\"\nservice = \"payment\"\nmethod = \"POST\"\npath = \"/transfers\"\n[expectations]"
        )
    };
    let text = http_with("[expectations]", &second("kind = \"good\"\n"));
    let s = Scenario::parse("s.toml", vocab(&databases()), &text).unwrap();
    let kinds: Vec<_> = s.workload.http.as_ref().unwrap().operations.iter().map(|o| o.kind.as_deref()).collect();
    assert_eq!(kinds, [Some("good"), Some("overdraft")]);

    let text = http_with("[expectations]", &second("kind = \"overdraft\"\n"));
    let e = Scenario::parse("s.toml", vocab(&databases()), &text).unwrap_err();
    assert_eq!(e.field, "workload.operations[1].name", "{e}");
    assert!(e.reason.contains("distinct `kind`s"), "{e}");

    let text = http_with("[expectations]", &second("kind = \"not good\"\n"));
    let e = Scenario::parse("s.toml", vocab(&databases()), &text).unwrap_err();
    assert_eq!(e.field, "workload.operations[0].kind", "{e}");
}

/// `FULL`'s first fault replaced by a request-level fault with `fields`.
fn with_request_fault(fields: &str) -> String {
    full_with(
        "kind = \"latency\"\nlatency = \"2s\"\njitter = \"100ms\"\ntoxicity = 0.5\nstream = \"upstream\"",
        &format!("kind = \"request\"\n{fields}"),
    )
}

#[test]
fn request_faults_read_into_typed_values() {
    use intercept::{RequestAction, Which};
    let scenario = Scenario::parse(
        "s.toml",
        vocab(&shop()),
        &with_request_fault("method = \"post\"\npath = \"/payments*\"\naction = \"drop_answer\"\nnth = 2"),
    )
    .unwrap();
    let FaultKind::Request(fault) = &scenario.faults[0].kind else {
        panic!("a request fault: {:?}", scenario.faults[0].kind)
    };
    assert_eq!(fault.method.as_deref(), Some("POST"));
    assert_eq!(fault.path.as_deref(), Some("/payments*"));
    assert_eq!(fault.which, Which::Nth(2));
    assert_eq!(fault.action, RequestAction::DropAnswer);

    for (fields, action, which) in [
        ("action = \"status\"\nstatus = 503\nfraction = 0.25", RequestAction::Status(503, None), Which::Fraction(0.25)),
        ("action = \"status\"\nstatus = 502\nbody = \"\"", RequestAction::Status(502, Some(String::new())), Which::Every),
        ("action = \"delay\"\ndelay = \"3s\"", RequestAction::Delay(Duration::from_secs(3)), Which::Every),
        ("action = \"hold\"", RequestAction::Hold, Which::Every),
        ("action = \"duplicate\"", RequestAction::Duplicate, Which::Every),
        ("action = \"reset\"", RequestAction::Reset, Which::Every),
        (
            "action = \"kill\"\nwhen = \"answered\"",
            RequestAction::Stop { service: "order".into(), when: intercept::When::Answered, pause: false },
            Which::Every,
        ),
        (
            "action = \"pause\"\nservice = \"payment\"\nwhen = \"sent\"\nnth = 3",
            RequestAction::Stop { service: "payment".into(), when: intercept::When::Sent, pause: true },
            Which::Nth(3),
        ),
    ] {
        let scenario =
            Scenario::parse("s.toml", vocab(&shop()), &with_request_fault(fields)).unwrap();
        let FaultKind::Request(fault) = &scenario.faults[0].kind else {
            panic!("a request fault")
        };
        assert_eq!((&fault.action, fault.which), (&action, which), "{fields}");
        assert_eq!((fault.method.as_deref(), fault.path.as_deref()), (None, None));
    }
}

/// `FULL`'s first fault replaced by a statement-level fault on `payment->postgres`.
fn with_statement_fault(fields: &str) -> String {
    with_request_fault("")
        .replace("kind = \"request\"\n", &format!("kind = \"statement\"\n{fields}"))
        .replace("target = \"order->payment\"", "target = \"payment->postgres\"")
        .replace("[[expectations.circuits]]\nlink = \"order->payment\"\nopens_within = \"5s\"\ncloses_within = \"30s\"\n", "")
}

#[test]
fn statement_faults_read_into_typed_values_and_bad_ones_name_the_field() {
    use intercept::Which;
    use statement::StatementAction;
    for (fields, statement, action, which) in [
        (
            "statement = \"INSERT INTO charges\"\naction = \"error\"\nnth = 1",
            Some("INSERT INTO charges"),
            StatementAction::Error("40001".into()),
            Which::Nth(1),
        ),
        (
            "statement = \"COMMIT\"\naction = \"error\"\nsqlstate = \"40P01\"",
            Some("COMMIT"),
            StatementAction::Error("40P01".into()),
            Which::Every,
        ),
        ("action = \"delay\"\ndelay = \"2s\"\nfraction = 0.5", None, StatementAction::Delay(Duration::from_secs(2)), Which::Fraction(0.5)),
        ("statement = \"COMMIT\"\naction = \"drop_answer\"", Some("COMMIT"), StatementAction::DropAnswer, Which::Every),
        ("statement = \"UPDATE stock\"\naction = \"hold\"\nnth = 2", Some("UPDATE stock"), StatementAction::Hold, Which::Nth(2)),
        ("fingerprint = \"SELECT FROM charges\"\naction = \"drop_answer\"", None, StatementAction::DropAnswer, Which::Every),
    ] {
        let scenario = Scenario::parse("s.toml", vocab(&shop()), &with_statement_fault(fields))
            .unwrap_or_else(|e| panic!("{fields}: {e}"));
        let FaultKind::Statement(fault) = &scenario.faults[0].kind else {
            panic!("a statement fault: {:?}", scenario.faults[0].kind)
        };
        assert_eq!(
            (fault.statement.as_deref(), &fault.action, fault.which),
            (statement, &action, which),
            "{fields}"
        );
    }
    let cases = [
        ("action = \"status\"", "faults[0].action", "unknown action \"status\""),
        ("action = \"error\"\nsqlstate = \"4001\"", "faults[0].sqlstate", "five digits or capital letters"),
        ("action = \"error\"\nsqlstate = \"00000\"", "faults[0].sqlstate", "success class"),
        ("action = \"delay\"", "faults[0].delay", "required"),
        ("statement = \"  \"\naction = \"drop_answer\"", "faults[0].statement", "start of a statement"),
        ("fingerprint = \"\"\naction = \"drop_answer\"", "faults[0].fingerprint", "a fingerprint such as"),
        ("action = \"drop_answer\"\npath = \"/x\"", "faults[0].path", "unknown field"),
    ];
    for (fields, field, reason) in cases {
        let e = error_of(&with_statement_fault(fields));
        assert_eq!(e.field, field, "{fields}: {e}");
        assert!(e.reason.contains(reason), "{fields}: {e}");
    }
    // Only links to postgres carry its protocol through a statement proxy.
    let e = error_of(&with_statement_fault("action = \"drop_answer\"").replace(
        "target = \"payment->postgres\"",
        "target = \"order->payment\"",
    ));
    assert_eq!(e.field, "faults[0].target");
    assert!(e.reason.contains("order->postgres, payment->postgres"), "{e}");
}

/// `FULL`'s first fault replaced by a broker-request fault on `order->kafka`.
fn with_kafka_fault(fields: &str) -> String {
    with_statement_fault(fields)
        .replace("kind = \"statement\"\n", "kind = \"kafka\"\n")
        .replace("target = \"payment->postgres\"", "target = \"order->kafka\"")
}

#[test]
fn kafka_faults_read_into_typed_values_and_bad_ones_name_the_field() {
    use intercept::{When, Which};
    use kafka::{KafkaAction, KafkaError, KafkaRequest};
    let error = |name| KafkaAction::Error(KafkaError::named(name).unwrap());
    for (fields, request, topic, group, action, which) in [
        (
            "request = \"produce\"\ntopic = \"order.events\"\naction = \"drop_answer\"\nnth = 1",
            KafkaRequest::Produce,
            Some("order.events"),
            None,
            KafkaAction::DropAnswer,
            Which::Nth(1),
        ),
        ("request = \"produce\"\naction = \"error\"", KafkaRequest::Produce, None, None, error("NOT_LEADER_OR_FOLLOWER"), Which::Every),
        (
            "request = \"offset_commit\"\ngroup = \"notification\"\naction = \"error\"\nerror = \"not_coordinator\"",
            KafkaRequest::OffsetCommit,
            None,
            Some("notification"),
            error("NOT_COORDINATOR"),
            Which::Every,
        ),
        (
            "request = \"offset_commit\"\naction = \"kill\"\nfraction = 0.5",
            KafkaRequest::OffsetCommit,
            None,
            None,
            KafkaAction::Stop { when: When::Sent, pause: false },
            Which::Fraction(0.5),
        ),
        (
            "request = \"produce\"\naction = \"pause\"\nwhen = \"answered\"",
            KafkaRequest::Produce,
            None,
            None,
            KafkaAction::Stop { when: When::Answered, pause: true },
            Which::Every,
        ),
        ("request = \"fetch\"\naction = \"hold\"", KafkaRequest::Fetch, None, None, KafkaAction::Hold, Which::Every),
        ("request = \"fetch\"\ntopic = \"t\"\naction = \"delay\"\ndelay = \"2s\"", KafkaRequest::Fetch, Some("t"), None, KafkaAction::Delay(Duration::from_secs(2)), Which::Every),
    ] {
        let scenario = Scenario::parse("s.toml", vocab(&shop()), &with_kafka_fault(fields))
            .unwrap_or_else(|e| panic!("{fields}: {e}"));
        let FaultKind::Kafka(fault) = &scenario.faults[0].kind else {
            panic!("a kafka fault: {:?}", scenario.faults[0].kind)
        };
        assert_eq!(
            (fault.request, fault.topic.as_deref(), fault.group.as_deref(), &fault.action, fault.which),
            (request, topic, group, &action, which),
            "{fields}"
        );
    }
    let cases = [
        ("action = \"drop_answer\"", "faults[0].request", "required"),
        ("request = \"metadata\"\naction = \"hold\"", "faults[0].request", "unknown request \"metadata\""),
        ("request = \"produce\"\naction = \"status\"", "faults[0].action", "unknown action \"status\""),
        ("request = \"produce\"\naction = \"error\"\nerror = \"OOPS\"", "faults[0].error", "NOT_LEADER_OR_FOLLOWER"),
        ("request = \"fetch\"\naction = \"error\"", "faults[0].action", "cannot be answered with an error"),
        ("request = \"fetch\"\naction = \"drop_answer\"", "faults[0].action", "delay or hold it"),
        ("request = \"produce\"\ngroup = \"g\"\naction = \"hold\"", "faults[0].group", "only an offset commit"),
        ("request = \"produce\"\ntopic = \"\"\naction = \"hold\"", "faults[0].topic", "topic name"),
        ("request = \"produce\"\naction = \"delay\"", "faults[0].delay", "required"),
        ("request = \"produce\"\naction = \"kill\"\nwhen = \"later\"", "faults[0].when", "\"sent\" or \"answered\""),
        ("request = \"produce\"\naction = \"hold\"\nsqlstate = \"40001\"", "faults[0].sqlstate", "unknown field"),
    ];
    for (fields, field, reason) in cases {
        let e = error_of(&with_kafka_fault(fields));
        assert_eq!(e.field, field, "{fields}: {e}");
        assert!(e.reason.contains(reason), "{fields}: {e}");
    }
    // Only links to kafka carry its protocol through a broker proxy.
    let e = error_of(&with_kafka_fault("request = \"produce\"\naction = \"hold\"").replace(
        "target = \"order->kafka\"",
        "target = \"order->postgres\"",
    ));
    assert_eq!(e.field, "faults[0].target");
    assert!(e.reason.contains("order->kafka"), "{e}");
}

#[test]
fn bad_request_faults_name_the_field() {
    let cases = [
        ("action = \"drop\"", "faults[0].action", "unknown action \"drop\""),
        ("method = \"GET\"", "faults[0].action", "required"),
        ("action = \"status\"", "faults[0].status", "required"),
        ("action = \"status\"\nstatus = 99", "faults[0].status", "from 100 to 599"),
        ("action = \"delay\"", "faults[0].delay", "required"),
        ("action = \"reset\"\nnth = 1\nfraction = 0.5", "faults[0].fraction", "not both"),
        ("action = \"reset\"\nnth = 0", "faults[0].nth", "from 1"),
        ("action = \"reset\"\nfraction = 0", "faults[0].fraction", "more than 0"),
        ("action = \"reset\"\npath = \"payments\"", "faults[0].path", "starting with /"),
        ("action = \"reset\"\npath = \"/a*/b\"", "faults[0].path", "names or *"),
        ("action = \"reset\"\nmethod = \"PO ST\"", "faults[0].method", "HTTP method"),
        ("action = \"reset\"\nlatency = \"1s\"", "faults[0].latency", "unknown field"),
        ("action = \"kill\"", "faults[0].when", "required"),
        ("action = \"kill\"\nwhen = \"later\"", "faults[0].when", "\"sent\" or \"answered\""),
        (
            "action = \"kill\"\nwhen = \"sent\"\nservice = \"gateway\"",
            "faults[0].service",
            "caller (\"order\") or callee (\"payment\")",
        ),
        ("action = \"reset\"\nservice = \"order\"", "faults[0].service", "unknown field"),
    ];
    for (fields, field, reason) in cases {
        let e = error_of(&with_request_fault(fields));
        assert_eq!(e.field, field, "{fields}: {e}");
        assert!(e.reason.contains(reason), "{fields}: {e}");
    }
    // Only links between services carry HTTP through a request proxy.
    let e = error_of(&with_request_fault("action = \"reset\"").replace(
        "target = \"order->payment\"",
        "target = \"order->postgres\"",
    ));
    assert_eq!(e.field, "faults[0].target");
    assert!(
        e.reason.contains("between two services") && e.reason.contains("order->payment"),
        "{e}"
    );
}

#[test]
fn redeliveries_read_and_bad_ones_name_the_field() {
    let topology = shop().with_topics(["orders"]);
    let redeliver = |fields: &str| {
        full_with(
            "target = \"order\"\nkind = \"kill\"",
            &format!("target = \"order\"\nkind = \"redeliver\"\n{fields}"),
        )
    };
    let scenario = Scenario::parse(
        "s.toml",
        vocab(&topology),
        &redeliver("topic = \"orders\"\ngroup = \"notification\"\nevents = 20"),
    )
    .unwrap();
    assert_eq!(
        scenario.faults[1].kind,
        FaultKind::Redeliver {
            topic: "orders".into(),
            group: "notification".into(),
            events: 20
        }
    );
    for (fields, field, reason) in [
        ("group = \"g\"\nevents = 1", "faults[1].topic", "required"),
        ("topic = \"payments\"\ngroup = \"g\"\nevents = 1", "faults[1].topic", "unknown topic \"payments\""),
        ("topic = \"orders\"\nevents = 1", "faults[1].group", "required"),
        ("topic = \"orders\"\ngroup = \"g\"", "faults[1].events", "required"),
        ("topic = \"orders\"\ngroup = \"g\"\nevents = 0", "faults[1].events", "from 1"),
    ] {
        let e = Scenario::parse("s.toml", vocab(&topology), &redeliver(fields))
            .expect_err("must be rejected");
        assert_eq!(e.field, field, "{fields}: {e}");
        assert!(e.reason.contains(reason), "{fields}: {e}");
    }
    let on_a_link = redeliver("topic = \"orders\"\ngroup = \"g\"\nevents = 1")
        .replace("target = \"order\"\nkind = \"redeliver\"", "target = \"order->kafka\"\nkind = \"redeliver\"");
    let e = Scenario::parse("s.toml", vocab(&topology), &on_a_link).expect_err("a link");
    assert_eq!(e.field, "faults[1].target");
    assert!(e.reason.contains("a service that consumes"), "{e}");
}

#[test]
fn a_probe_may_be_tried_again_within_a_bound_of_at_most_ten_minutes() {
    let text = full_with("min = 0.95\n", "min = 0.95\nwithin = \"30s\"\n");
    let s = Scenario::parse("s.toml", vocab(&shop()), &text).unwrap();
    assert_eq!(s.steady_state[0].within, None);
    assert_eq!(s.steady_state[1].within, Some(Duration::from_secs(30)));
    let e = error_of(&full_with("min = 0.95\n", "min = 0.95\nwithin = \"11m\"\n"));
    assert_eq!(e.field, "steady_state.probes[1].within", "{e}");
    let e = error_of(&full_with("min = 0.95\n", "min = 0.95\nwithin = \"soon\"\n"));
    assert_eq!(e.field, "steady_state.probes[1].within", "{e}");
}
