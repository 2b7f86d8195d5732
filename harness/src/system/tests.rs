use std::path::Path;

use super::*;

const SHOP: &str = r#"
name = "shop"
[postgres]
databases = ["stock", "orders"]
[kafka]
topics = [{ name = "orders", partitions = 3 }, { name = "orders.dlt" }]

[services.stock]
command = ["./stock", "--listen", "127.0.0.1:{port}"]
env = { DATABASE_URL = "{postgres.url:stock}" }
ready = { http = "/health" }

[services.checkout]
command = ["python3", "-m", "checkout"]
env = { PORT = "{port}", DB = "{postgres.url:orders}", BROKERS = "{kafka.bootstrap}", STOCK = "{link:checkout->stock}" }
stop_signal = "SIGINT"
stop_grace = "3s"
ready_timeout = "20s"

[services.mailer]
command = ["./mailer"]
env = { BROKERS = "{kafka.bootstrap}" }
ready = { log = "consuming" }
depends_on = ["checkout"]
"#;

fn parse(text: &str) -> Result<System, DescriptionError> {
    System::parse("shop.toml", Path::new("."), text)
}

fn error_of(text: &str) -> DescriptionError {
    parse(text).expect_err("must be rejected")
}

/// `SHOP` with `old` replaced by `new` (which must occur).
fn shop_with(old: &str, new: &str) -> String {
    assert!(SHOP.contains(old), "fixture lacks {old:?}");
    SHOP.replacen(old, new, 1)
}

#[test]
fn a_description_reads_into_services_in_dependency_order_with_derived_links() {
    let system = parse(SHOP).unwrap();
    assert_eq!(system.name, "shop");
    assert_eq!(system.start_order(), ["stock", "checkout", "mailer"]);
    let kafka = system.kafka.as_ref().unwrap();
    assert_eq!(kafka.topics[0].partitions, 3);
    assert_eq!(kafka.topics[1].partitions, 1);
    let topology = system.topology();
    assert_eq!(
        topology.link_names(),
        [
            "stock->postgres",
            "checkout->kafka",
            "checkout->postgres",
            "checkout->stock",
            "mailer->kafka"
        ]
    );
    assert_eq!(topology.servers(), ["postgres", "kafka"]);
    let checkout = system.service("checkout").unwrap();
    assert_eq!(checkout.depends_on, ["stock"]);
    assert_eq!(checkout.stop_signal.name, "SIGINT");
    assert_eq!(checkout.stop_grace, Duration::from_secs(3));
    assert_eq!(checkout.ready, Readiness::Tcp, "TCP on {{port}} by default");
    let mailer = system.service("mailer").unwrap();
    assert!(!mailer.listens);
    assert_eq!(
        mailer.ready,
        Readiness::Log {
            text: "consuming".into()
        }
    );
    // Only the described server links get proxies.
    let config = crate::infra::InfraConfig::for_system(&system);
    assert_eq!(config.clients, ["stock", "checkout", "mailer"]);
    assert!(config
        .only_links
        .as_ref()
        .unwrap()
        .contains(&("mailer".into(), "kafka".into())));
    assert!(!config
        .only_links
        .as_ref()
        .unwrap()
        .contains(&("mailer".into(), "postgres".into())));
}

#[test]
fn each_class_of_bad_description_names_the_field_and_what_was_expected() {
    let cases = [
        // Unknown field, at any depth.
        (
            shop_with("stop_grace = \"3s\"", "stop_grace = \"3s\"\nretries = 2"),
            "services.checkout.retries",
            "unknown field",
        ),
        (
            shop_with("[postgres]", "[postgres]\nversion = 17"),
            "postgres.version",
            "unknown field",
        ),
        // Unknown placeholder.
        (
            shop_with("{postgres.url:stock}", "{postgres.uri:stock}"),
            "services.stock.env.DATABASE_URL",
            "unknown placeholder {postgres.uri:stock}",
        ),
        // A link to a service that is not described.
        (
            shop_with("{link:checkout->stock}", "{link:checkout->pricing}"),
            "services.checkout.env.STOCK",
            "\"pricing\" is not another described service",
        ),
        // A link whose caller is not a described service, or is the called service.
        (
            shop_with("{link:checkout->stock}", "{link:pricing->stock}"),
            "services.checkout.env.STOCK",
            "\"pricing\" is not a described service",
        ),
        (
            shop_with("{link:checkout->stock}", "{link:stock->stock}"),
            "services.checkout.env.STOCK",
            "the called service itself",
        ),
        // A migration step that names no program, a placeholder it cannot have, a bound
        // without it.
        (
            shop_with("ready = { http = \"/health\" }", "ready = { http = \"/health\" }\nbefore = []"),
            "services.stock.before",
            "expected the program first",
        ),
        (
            shop_with("ready = { http = \"/health\" }", "ready = { http = \"/health\" }\nbefore = [\"./migrate\", \"{postgres.url:payments}\"]"),
            "services.stock.before[1]",
            "database \"payments\" is not declared",
        ),
        (
            shop_with("ready = { http = \"/health\" }", "ready = { http = \"/health\" }\nbefore_timeout = \"30s\""),
            "services.stock.before_timeout",
            "does not have",
        ),
        // A database that is not declared.
        (
            shop_with("{postgres.url:orders}", "{postgres.url:payments}"),
            "services.checkout.env.DB",
            "database \"payments\" is not declared",
        ),
        // A dependency on an unknown service.
        (
            shop_with("depends_on = [\"checkout\"]", "depends_on = [\"billing\"]"),
            "services.mailer.depends_on[0]",
            "not another described service",
        ),
        // A dependency cycle (through a link and a depends_on).
        (
            shop_with(
                "ready = { http = \"/health\" }",
                "ready = { http = \"/health\" }\ndepends_on = [\"mailer\"]",
            ),
            "services.checkout.depends_on",
            "dependency cycle checkout -> stock -> mailer -> checkout",
        ),
        // Readiness over HTTP for a service that never learns its port.
        (
            shop_with(
                "ready = { log = \"consuming\" }",
                "ready = { http = \"/ready\" }",
            ),
            "services.mailer.ready",
            "needs the service to listen on {port}",
        ),
        (
            shop_with(
                "ready = { log = \"consuming\" }",
                "ready = { log = \"x\", tcp = true }",
            ),
            "services.mailer.ready",
            "exactly one of",
        ),
        (
            shop_with("stop_signal = \"SIGINT\"", "stop_signal = \"SIGSTOP\""),
            "services.checkout.stop_signal",
            "unknown signal \"SIGSTOP\"",
        ),
        (
            shop_with("command = [\"./mailer\"]", "command = []"),
            "services.mailer.command",
            "the program first",
        ),
        (
            shop_with(
                "[services.mailer]",
                "[services.mailer]\nworkdir = \"no/such/dir\"",
            ),
            "services.mailer.workdir",
            "is not a folder",
        ),
        (
            shop_with("[services.mailer]", "[services.Mailer]"),
            "services.Mailer",
            "expected 1 to 32 characters",
        ),
        (
            shop_with("[services.mailer]", "[services.kafka]"),
            "services.kafka",
            "reserved",
        ),
        (
            shop_with("{ name = \"orders.dlt\" }", "{ name = \"orders\" }"),
            "kafka.topics[1].name",
            "distinct topic name",
        ),
        (
            shop_with("partitions = 3", "partitions = 0"),
            "kafka.topics[0].partitions",
            "an integer from 1 to 1000",
        ),
    ];
    for (text, field, says) in cases {
        let e = error_of(&text);
        assert_eq!(e.file, "shop.toml");
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(says), "{field}: {e}");
    }
}

#[test]
fn servers_must_be_described_before_a_service_uses_them() {
    let without_kafka = SHOP.replace(
        "[kafka]\ntopics = [{ name = \"orders\", partitions = 3 }, { name = \"orders.dlt\" }]\n",
        "",
    );
    let e = error_of(&without_kafka);
    assert_eq!(e.field, "services.checkout.env.BROKERS");
    assert!(e.reason.contains("no [kafka]"), "{e}");
}

#[test]
fn a_linked_service_must_listen() {
    let e = error_of(
        &shop_with(
            "command = [\"./stock\", \"--listen\", \"127.0.0.1:{port}\"]",
            "command = [\"./stock\"]\nready = { log = \"up\" }",
        )
        .replace("ready = { http = \"/health\" }\n", ""),
    );
    assert_eq!(e.field, "services.stock");
    assert!(e.reason.contains("checkout links to stock"), "{e}");
}

#[test]
fn bad_toml_and_missing_sections_are_reported() {
    let e = error_of("name = \"x\"\n");
    assert_eq!(e.field, "services");
    let e = error_of("[services]\n");
    assert_eq!(e.field, "services");
    let e = error_of("name = \"x\nbroken");
    assert_eq!(e.field, "(file)");
    assert!(e.reason.contains("not valid TOML"), "{e}");
    let e = System::load(Path::new("/nonexistent/faultline.toml")).unwrap_err();
    assert_eq!(e.field, "(file)");
    assert!(e.reason.contains("cannot read"), "{e}");
}

#[test]
fn circuits_paths_are_read_and_bad_ones_name_the_field() {
    let system = parse(&shop_with(
        "ready = { http = \"/health\" }",
        "ready = { http = \"/health\" }\ncircuits = \"/admin/circuits\"",
    ))
    .unwrap();
    assert_eq!(
        system.service("stock").unwrap().circuits.as_deref(),
        Some("/admin/circuits")
    );
    assert_eq!(system.service("checkout").unwrap().circuits, None);

    let e = error_of(&shop_with(
        "ready = { http = \"/health\" }",
        "ready = { http = \"/health\" }\ncircuits = \"admin circuits\"",
    ));
    assert_eq!(e.field, "services.stock.circuits");
    assert!(e.reason.contains("starting with `/`"), "{e}");

    let e = error_of(&shop_with(
        "ready = { log = \"consuming\" }",
        "ready = { log = \"consuming\" }\ncircuits = \"/circuits\"",
    ));
    assert_eq!(e.field, "services.mailer.circuits");
    assert!(e.reason.contains("{port}"), "{e}");
}

#[test]
fn a_named_extension_must_be_linked_and_gives_the_system_its_registry() {
    let dir = std::env::temp_dir().join(format!("faultline-extension-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("faultline.toml");
    std::fs::write(
        &file,
        format!(
            "extension = \"shop\"\n{}",
            SHOP.replacen("name = \"shop\"\n", "", 1)
        ),
    )
    .unwrap();

    let system = System::load(&file).unwrap();
    let e = crate::extension::Registry::linked(&system, &[]).unwrap_err();
    assert_eq!(e.field, "extension");
    assert!(
        e.reason.contains("no extension \"shop\"") && e.reason.contains("linked: none"),
        "{e}"
    );

    struct Shop;
    impl crate::extension::Extension for Shop {
        fn name(&self) -> &str {
            "shop"
        }
        fn checkers(&self) -> Vec<std::sync::Arc<dyn crate::checkers::Checker>> {
            vec![std::sync::Arc::new(crate::fixtures::Holds)]
        }
    }
    let registry = crate::extension::Registry::linked(&system, &[std::sync::Arc::new(Shop)]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(registry.name(), Some("shop"));
    assert_eq!(registry.vocabulary(&system).invariants, ["no-lost-writes"]);
}

#[test]
fn settle_conditions_are_read_and_bad_ones_name_the_field() {
    let settle = "[[settle]]\ndatabase = \"orders\"\nquery = \"SELECT 1 FROM outbox WHERE sent IS NULL\"\nwithin = \"20s\"\n";
    let system = parse(&format!("{SHOP}{settle}")).unwrap();
    assert_eq!(
        system.settle,
        [SettleSpec {
            database: "orders".into(),
            query: "SELECT 1 FROM outbox WHERE sent IS NULL".into(),
            within: Duration::from_secs(20),
        }]
    );
    for (text, field, reason) in [
        (
            settle.replace("\"orders\"", "\"ledger\""),
            "settle[0].database",
            "not a database",
        ),
        (
            settle.replace("within = \"20s\"", "within = \"0s\""),
            "settle[0].within",
            "more than 0s",
        ),
        (
            settle.replace("within = \"20s\"", "every = \"1s\""),
            "settle[0].every",
            "unknown field",
        ),
    ] {
        let e = error_of(&format!("{SHOP}{text}"));
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(reason), "{e}");
    }
}

/// `SHOP` plus a cache container that checkout uses, and a mailer that is an image.
const CONTAINERS: &str = r#"
[containers.cache]
image = "redis:7"
port = 6379
env = { REDIS_ARGS = "--save '' --requirepass {env:FAULTLINE_TEST_SURELY_UNSET_PASS:-secret}", CONF = "{dir}/redis.conf", BRACES = "{{x}}" }
ready = { log = "Ready to accept connections" }
"#;

#[test]
fn containers_are_shared_servers_and_services_may_be_images() {
    let text = format!(
        "{}{CONTAINERS}",
        shop_with(
            "command = [\"./mailer\"]",
            "image = \"shop/mailer:1.2\"\nmounts = [\".:/etc/mailer:ro\"]",
        )
        .replace(
            "STOCK = \"{link:checkout->stock}\"",
            "STOCK = \"{link:checkout->stock}\", CACHE = \"{address:checkout->cache}\"",
        )
    );
    let system = parse(&text).unwrap();
    let cache = &system.containers[0];
    assert_eq!(
        (cache.name.as_str(), cache.image.as_str(), cache.ports.as_slice()),
        ("cache", "redis:7", [6379].as_slice())
    );
    assert_eq!(
        cache.ready,
        Readiness::Log {
            text: "Ready to accept connections".into()
        }
    );
    assert!(system.topology().is_server("cache"));
    assert!(system
        .topology()
        .link_names()
        .contains(&"checkout->cache".to_string()));
    // The link to the container is a server link: the infrastructure's Toxiproxy carries it.
    let config = crate::infra::InfraConfig::for_system(&system);
    assert!(config
        .only_links
        .as_ref()
        .unwrap()
        .contains(&("checkout".to_string(), "cache".to_string())));
    assert_eq!(config.servers[0].ports, [6379]);
    // A container's environment resolves {env:…} and {dir} when the stack is configured.
    assert!(config.problems.is_empty(), "{:?}", config.problems);
    let env: std::collections::BTreeMap<_, _> = config.servers[0].spec.env.iter().cloned().collect();
    assert_eq!(env["REDIS_ARGS"], "--save '' --requirepass secret");
    assert_eq!(env["CONF"], "./redis.conf");
    assert_eq!(env["BRACES"], "{x}");
    assert_eq!(config.servers[0].ready, cache.ready);
    // Service images are the infrastructure's to check before it starts anything.
    assert_eq!(
        config.service_images,
        [("mailer".to_string(), "shop/mailer:1.2".to_string())]
    );

    let mailer = system.service("mailer").unwrap();
    assert_eq!(mailer.image.as_deref(), Some("shop/mailer:1.2"));
    assert!(mailer.command.is_empty());
    assert_eq!(mailer.mounts[0].container, "/etc/mailer");
    assert!(mailer.mounts[0].read_only);
    assert!(mailer.mounts[0].host.is_absolute());
}

#[test]
fn a_container_may_have_several_ports_each_a_proxy_of_one_link() {
    let text = format!(
        "{}{}",
        shop_with(
            "STOCK = \"{link:checkout->stock}\"",
            "STOCK = \"{link:checkout->stock}\", CACHE = \"{address:checkout->cache}\", ADMIN = \"{link:checkout->cache:8001}\"",
        ),
        CONTAINERS.replace("port = 6379", "ports = [6379, 8001]")
    );
    let system = parse(&text).unwrap();
    assert_eq!(system.containers[0].ports, [6379, 8001]);
    // Both ports are one link: a fault on checkout->cache strikes both proxies.
    assert_eq!(
        system
            .topology()
            .link_names()
            .iter()
            .filter(|l| l.contains("cache"))
            .collect::<Vec<_>>(),
        ["checkout->cache"]
    );
    assert_eq!(crate::infra::InfraConfig::for_system(&system).servers[0].ports, [6379, 8001]);
}

#[test]
fn an_unset_variable_in_a_containers_environment_is_refused_before_anything_starts() {
    let text = format!(
        "{SHOP}{}",
        CONTAINERS.replace(":-secret}", "}")
    );
    let system = parse(&text).unwrap();
    let config = crate::infra::InfraConfig::for_system(&system);
    let error = config.check_environment().unwrap_err();
    assert!(error.is_input(), "{error}");
    assert_eq!(
        error.to_string(),
        "shop.toml: containers.cache.env.REDIS_ARGS: {env:FAULTLINE_TEST_SURELY_UNSET_PASS}: the variable FAULTLINE_TEST_SURELY_UNSET_PASS is not set for faultline"
    );
}

#[test]
fn bad_containers_and_images_name_the_field() {
    let with_cache = format!("{SHOP}{CONTAINERS}");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            with_cache.replace("port = 6379\n", ""),
            "containers.cache.port",
            "required (or `ports`)",
        ),
        (
            with_cache.replace("port = 6379", "port = 6379\nports = [6379]"),
            "containers.cache.ports",
            "not both",
        ),
        (
            with_cache.replace("port = 6379", "ports = []"),
            "containers.cache.ports",
            "at least one",
        ),
        (
            with_cache.replace("port = 6379", "ports = [6379, 8001, 6379]"),
            "containers.cache.ports[2]",
            "listed twice",
        ),
        (
            with_cache.replace("port = 6379", "ports = [6379, 70000]"),
            "containers.cache.ports[1]",
            "expected an integer from 1 to 65535, found 70000",
        ),
        (
            with_cache.replace("CONF = \"{dir}", "CONF = \"{postgres.host}"),
            "containers.cache.env.CONF",
            "only the placeholders {env:NAME} and {dir}",
        ),
        (
            with_cache.replace("CONF = \"{dir}", "CONF = \"{nope}"),
            "containers.cache.env.CONF",
            "unknown placeholder {nope}",
        ),
        (
            format!(
                "{}{CONTAINERS}",
                shop_with("{link:checkout->stock}", "{address:checkout->cache:8001}")
            ),
            "services.checkout.env.STOCK",
            "port 8001 is not one its links lead to; the container \"cache\" has the ports 6379",
        ),
        (
            shop_with("{link:checkout->stock}", "{link:checkout->stock:8001}"),
            "services.checkout.env.STOCK",
            "\"stock\" is a service, reached on its one {port}",
        ),
        (
            with_cache.replace("image = \"redis:7\"", "image = \"redis 7\""),
            "containers.cache.image",
            "expected an image reference",
        ),
        (
            with_cache.replace("[containers.cache]", "[containers.stock]"),
            "containers.stock",
            "also a service",
        ),
        (
            with_cache.replace("[containers.cache]", "[containers.toxiproxy]"),
            "containers.toxiproxy",
            "reserved",
        ),
        (
            with_cache.replace("port = 6379", "port = 6379\nvolumes = []"),
            "containers.cache.volumes",
            "unknown field",
        ),
        (
            shop_with("{link:checkout->stock}", "{address:checkout->cache}"),
            "services.checkout.env.STOCK",
            "is not another described service or container; described: mailer, stock",
        ),
        (
            shop_with(
                "command = [\"./mailer\"]",
                "image = \"shop/mailer\"\nworkdir = \".\"",
            ),
            "services.mailer.workdir",
            "use `mounts`",
        ),
        (
            shop_with(
                "command = [\"./mailer\"]",
                "command = [\"./mailer\"]\nmounts = [\".:/x\"]",
            ),
            "services.mailer.mounts",
            "only a container service",
        ),
        (
            shop_with(
                "command = [\"./mailer\"]",
                "image = \"shop/mailer\"\nmounts = [\".:relative\"]",
            ),
            "services.mailer.mounts[0]",
            "CONTAINER an absolute path",
        ),
        (
            shop_with(
                "command = [\"./mailer\"]",
                "image = \"shop/mailer\"\nmounts = [\"no/such:/x\"]",
            ),
            "services.mailer.mounts[0]",
            "no/such",
        ),
        (
            shop_with("command = [\"./mailer\"]", ""),
            "services.mailer.command",
            "required (or `image`)",
        ),
    ];
    for (text, field, says) in cases {
        let e = error_of(&text);
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(says), "{field}: {e}");
    }
}

#[test]
fn circuits_from_a_prometheus_metric_are_read_and_bad_ones_name_the_field() {
    let with = |circuits: &str| {
        shop_with(
            "ready = { http = \"/health\" }",
            &format!("ready = {{ http = \"/health\" }}\ncircuits = {circuits}"),
        )
    };
    let system = parse(&with(
        "{ metrics = \"/metrics\", metric = \"faultline_circuit_state\", rejected = \"faultline_circuit_rejected_total\" }",
    ))
    .unwrap();
    let stock = system.service("stock").unwrap();
    assert_eq!(stock.circuits.as_deref(), Some("/metrics"));
    assert_eq!(
        stock.circuit_metric,
        Some(CircuitMetric {
            metric: "faultline_circuit_state".into(),
            dependency_label: "dependency".into(),
            state_label: None,
            states: vec!["CLOSED".into(), "OPEN".into(), "HALF_OPEN".into()],
            rejected: Some("faultline_circuit_rejected_total".into()),
            every: Duration::from_millis(250),
        })
    );
    let resilience4j = parse(&with(
        "{ metrics = \"/actuator/prometheus\", metric = \"resilience4j_circuitbreaker_state\", dependency_label = \"name\", state_label = \"state\", every = \"100ms\" }",
    ))
    .unwrap();
    let metric = resilience4j.service("stock").unwrap().circuit_metric.clone().unwrap();
    assert_eq!((metric.dependency_label.as_str(), metric.state_label.as_deref()), ("name", Some("state")));
    assert_eq!(metric.every, Duration::from_millis(100));
    // The JSON form is unchanged.
    let json = parse(&with("\"/admin/circuits\"")).unwrap();
    assert_eq!(json.service("stock").unwrap().circuit_metric, None);

    for (circuits, field, says) in [
        ("{ metric = \"m\" }", "services.stock.circuits.metrics", "required"),
        ("{ metrics = \"/metrics\" }", "services.stock.circuits.metric", "required"),
        ("{ metrics = \"metrics\", metric = \"m\" }", "services.stock.circuits.metrics", "starting with `/`"),
        ("{ metrics = \"/metrics\", metric = \"9lives\" }", "services.stock.circuits.metric", "a Prometheus name"),
        ("{ metrics = \"/metrics\", metric = \"m\", state_label = \"s\", states = [\"A\"] }", "services.stock.circuits.states", "with state_label"),
        ("{ metrics = \"/metrics\", metric = \"m\", every = \"1ms\" }", "services.stock.circuits.every", "from 50ms"),
        ("{ metrics = \"/metrics\", metric = \"m\", labels = 1 }", "services.stock.circuits.labels", "unknown field"),
    ] {
        let e = error_of(&with(circuits));
        assert_eq!(e.field, field, "{circuits}: {e}");
        assert!(e.reason.contains(says), "{circuits}: {e}");
    }
}

#[test]
fn the_programs_built_from_source_are_the_bin_placeholders_each_once() {
    assert!(parse(SHOP).unwrap().binaries().is_empty(), "no {{bin:…}} in the shop");
    let text = SHOP
        .replace("command = [\"./stock\",", "command = [\"{bin:stock}\",")
        .replace("command = [\"./mailer\"]", "command = [\"{bin:mailer}\", \"--also\", \"{bin:stock}\"]");
    assert_eq!(parse(&text).unwrap().binaries(), ["mailer", "stock"]);
}

const SHOP_WORKLOAD: &str = r#"
[workload]
[[workload.operations]]
name = "buy"
kind = "in-stock"
service = "checkout"
method = "POST"
path = "/buy"
weight = 3
body = { sku = "{pick:a|b}" }
[[workload.operations]]
name = "buy"
kind = "sold-out"
service = "checkout"
method = "POST"
path = "/buy"
weight = 0
body = { sku = "gone" }
[[workload.setup]]
name = "stock"
service = "stock"
method = "PUT"
path = "/stock/a"
[steady_state]
[[steady_state.probes]]
name = "buying works"
probe = "success_rate"
sample = 4
min = 0.75
"#;

#[test]
fn a_described_workload_is_what_scenarios_without_operations_send_weighted_by_kind() {
    use faultline_chaos::scenario::{ProbeCheck, Scenario};
    let system = parse(&format!("{SHOP}{SHOP_WORKLOAD}")).unwrap();
    let described = system.workload.as_ref().unwrap();
    assert_eq!(described.operations.len(), 2);
    assert_eq!(described.setup.len(), 1);
    let scenario = |workload: &str| {
        Scenario::parse(
            "s.toml",
            crate::extension::Registry::default().vocabulary(&system),
            &format!("name = \"s\"\ndescription = \"d\"\n[workload]\nduration = \"5s\"\n{workload}"),
        )
    };

    // Without weights: the description's, and weight 0 is not sent.
    let plain = scenario("requests = 7").unwrap();
    let http = plain.workload.http.as_ref().unwrap();
    assert_eq!(http.requests, 7);
    let kinds: Vec<_> = http.operations.iter().map(|o| o.kind.as_deref()).collect();
    assert_eq!(kinds, [Some("in-stock")]);
    assert_eq!(http.setup.len(), 1);
    // The description's steady state, as the scenario gives none.
    assert_eq!(plain.steady_state.len(), 1);
    assert_eq!(
        plain.steady_state[0].check,
        ProbeCheck::SuccessRate { sample: 4, min: 0.75 }
    );

    // Weights by kind replace the description's; kinds left out are not sent.
    let weighted = scenario("requests = 7\n[workload.weights]\nsold-out = 2\n").unwrap();
    let ops = &weighted.workload.http.as_ref().unwrap().operations;
    assert_eq!(ops.len(), 1);
    assert_eq!((ops[0].kind.as_deref(), ops[0].weight), (Some("sold-out"), 2.0));

    // A scenario's own operations replace the description's, and bring no default invariants.
    let own = scenario(
        "requests = 2\n[[workload.operations]]\nname = \"peek\"\nservice = \"stock\"\npath = \"/stock/a\"\n",
    )
    .unwrap();
    let ops = &own.workload.http.as_ref().unwrap().operations;
    assert_eq!(ops[0].name, "peek");
    assert!(own.workload.http.as_ref().unwrap().setup.is_empty());

    for (workload, field, says) in [
        ("duration_is_all = 1", "workload.requests", "required"),
        ("requests = 7\n[workload.weights]\nbroken = 1\n", "workload.weights.broken", "in-stock, sold-out"),
        ("requests = 7\n[workload.weights]\nin-stock = 0\n", "workload.weights", "above 0"),
        ("requests = 7\n[workload.weights]\nin-stock = \"lots\"\n", "workload.weights.in-stock", "a number"),
        ("requests = 7\nweights = 3\n", "workload.weights", "a table"),
        ("requests = 7\n[[workload.setup]]\nname = \"x\"\nservice = \"stock\"\npath = \"/x\"\n", "workload.setup", "unknown"),
    ] {
        let error = scenario(&workload.replace("duration_is_all = 1", "")).unwrap_err();
        assert_eq!(error.field, field, "{workload}: {error}");
        assert!(error.reason.contains(says), "{workload}: {error}");
    }
}

#[test]
fn a_bad_described_workload_names_its_field_in_the_description() {
    for (workload, field, says) in [
        ("[workload]\n", "workload.operations", "at least one"),
        (
            &SHOP_WORKLOAD.replace("weight = 3", "weight = 0") as &str,
            "workload.operations",
            "weight above 0",
        ),
        (
            &SHOP_WORKLOAD.replace("service = \"checkout\"", "service = \"till\""),
            "workload.operations[0].service",
            "till",
        ),
        (
            &SHOP_WORKLOAD.replace("kind = \"sold-out\"", "kind = \"in-stock\""),
            "workload.operations[1].name",
            "distinct `kind`s",
        ),
        (&SHOP_WORKLOAD.replace("sample = 4", "sample = 0"), "steady_state.probes[0].sample", ""),
    ] {
        let error = error_of(&format!("{SHOP}{workload}"));
        assert_eq!(error.file, "shop.toml");
        assert_eq!(error.field, field, "{error}");
        assert!(error.reason.contains(says), "{error}");
    }
}

#[test]
fn independent_services_share_a_start_level() {
    let text = shop_with(
        "[services.mailer]",
        "[services.audit]\ncommand = [\"./audit\"]\nready = { log = \"up\" }\n\n[services.mailer]",
    );
    let system = parse(&text).unwrap();
    assert_eq!(
        system.start_levels(),
        vec![vec!["audit", "stock"], vec!["checkout"], vec!["mailer"]]
    );
}

#[test]
fn the_reset_is_fresh_unless_the_description_says_warm() {
    assert_eq!(parse(SHOP).unwrap().reset, ResetMode::Fresh);
    let warm = format!("reset = \"warm\"\n{SHOP}");
    assert_eq!(parse(&warm).unwrap().reset, ResetMode::Warm);
    let e = error_of(&format!("reset = \"tepid\"\n{SHOP}"));
    assert_eq!(e.field, "reset", "{e}");
    assert!(e.reason.contains("\"fresh\" or \"warm\""), "{e}");
}

#[test]
fn a_service_bounds_its_calls_in_flight_to_services_it_calls() {
    let system = parse(&shop_with(
        "ready_timeout = \"20s\"",
        "ready_timeout = \"20s\"\nin_flight = { stock = 8 }",
    ))
    .unwrap();
    assert_eq!(
        system.service("checkout").unwrap().in_flight,
        [("stock".to_string(), 8)]
    );
    assert!(system.service("stock").unwrap().in_flight.is_empty());

    for (bounds, field, says) in [
        (
            "{ mailer = 8 }",
            "services.checkout.in_flight.mailer",
            "checkout does not call a service \"mailer\"",
        ),
        (
            "{ postgres = 8 }",
            "services.checkout.in_flight.postgres",
            "it calls: stock",
        ),
        (
            "{ stock = 0 }",
            "services.checkout.in_flight.stock",
            "expected an integer from 1 to 100000, found 0",
        ),
        (
            "{ stock = \"8\" }",
            "services.checkout.in_flight.stock",
            "expected an integer from 1 to 100000",
        ),
    ] {
        let e = error_of(&shop_with(
            "ready_timeout = \"20s\"",
            &format!("ready_timeout = \"20s\"\nin_flight = {bounds}"),
        ));
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(says), "{e}");
    }
}

#[test]
fn a_service_states_its_timeouts_and_when_it_gives_up_on_services_it_calls() {
    let system = parse(&shop_with(
        "ready_timeout = \"20s\"",
        "ready_timeout = \"20s\"\ntimeouts = { stock = \"1500ms\" }\ngives_up_after = { stock = \"20s\", \"stock post /stock/*/holds\" = \"30s\" }",
    ))
    .unwrap();
    let checkout = system.service("checkout").unwrap();
    assert_eq!(checkout.timeouts, [("stock".to_string(), Duration::from_millis(1500))]);
    assert_eq!(
        checkout.gives_up,
        [
            GiveUp { callee: "stock".into(), calls: None, after: Duration::from_secs(20) },
            GiveUp {
                callee: "stock".into(),
                calls: Some("POST /stock/*/holds".into()),
                after: Duration::from_secs(30),
            },
        ]
    );
    assert!(system.service("stock").unwrap().gives_up.is_empty());

    for (line, field, says) in [
        (
            "timeouts = { mailer = \"1s\" }",
            "services.checkout.timeouts.mailer",
            "checkout does not call a service \"mailer\"",
        ),
        (
            "timeouts = { stock = \"soon\" }",
            "services.checkout.timeouts.stock",
            "expected a duration of more than 0s and at most 10m",
        ),
        (
            "timeouts = { stock = 1 }",
            "services.checkout.timeouts.stock",
            "a string",
        ),
        (
            "gives_up_after = { stock = \"0s\" }",
            "services.checkout.gives_up_after.stock",
            "found \"0s\"",
        ),
        (
            "gives_up_after = { \"postgres POST /x\" = \"5s\" }",
            "services.checkout.gives_up_after.postgres POST /x",
            "it calls: stock",
        ),
        (
            "gives_up_after = { \"stock holds\" = \"5s\" }",
            "services.checkout.gives_up_after.stock holds",
            "expected a method and a route after \"stock\"",
        ),
    ] {
        let e = error_of(&shop_with("ready_timeout = \"20s\"", &format!("ready_timeout = \"20s\"\n{line}")));
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(says), "{e}");
    }
}

#[test]
fn a_service_may_promise_to_replay_answers_to_a_repeated_key() {
    let system = parse(&shop_with(
        "ready = { http = \"/health\" }\n\n[services.checkout]",
        "ready = { http = \"/health\" }\nidempotency_key = \"Idempotency-Key\"\n\n[services.checkout]",
    ))
    .unwrap();
    assert_eq!(
        system.service("stock").unwrap().idempotency_key.as_ref().map(|h| h.as_str()),
        Some("idempotency-key")
    );
    for (text, field, says) in [
        (
            shop_with(
                "ready = { http = \"/health\" }\n\n[services.checkout]",
                "ready = { http = \"/health\" }\nidempotency_key = \"Idempotency Key\"\n\n[services.checkout]",
            ),
            "services.stock.idempotency_key",
            "is not a header name",
        ),
        (
            shop_with(
                "depends_on = [\"checkout\"]",
                "depends_on = [\"checkout\"]\nidempotency_key = \"Idempotency-Key\"",
            ),
            "services.mailer.idempotency_key",
            "only a service that listens on {port}",
        ),
    ] {
        let e = error_of(&text);
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(says), "{e}");
    }
}

#[test]
fn a_migration_step_reads_with_its_placeholders_and_a_default_bound() {
    let system = parse(&shop_with(
        "ready = { http = \"/health\" }",
        "ready = { http = \"/health\" }\nbefore = [\"alembic\", \"-x\", \"url={postgresql.url:stock}\", \"upgrade\", \"head\"]",
    ))
    .unwrap();
    let stock = system.service("stock").unwrap();
    assert_eq!(stock.before.len(), 5);
    assert_eq!(stock.before_timeout, Duration::from_secs(120));
    assert!(system.service("checkout").unwrap().before.is_empty());
    // Its placeholders are the service's: the link to Postgres is the one the service uses.
    assert_eq!(stock.uses, ["postgres"]);
    let bounded = parse(&shop_with(
        "ready = { http = \"/health\" }",
        "ready = { http = \"/health\" }\nbefore = [\"./migrate\"]\nbefore_timeout = \"5m\"",
    ))
    .unwrap();
    assert_eq!(bounded.service("stock").unwrap().before_timeout, Duration::from_secs(300));
}

/// An address one service hands to another (a content engine answering with the delivery
/// service's URL, which the app then calls): the link is the caller's, whose settings need
/// not name it.
#[test]
fn a_handed_over_link_belongs_to_its_caller() {
    let system = parse(&shop_with("{link:checkout->stock}", "{link:mailer->stock}")).unwrap();
    let checkout = system.service("checkout").unwrap();
    assert_eq!(checkout.hands_over, [("mailer".to_string(), "stock".to_string())]);
    assert!(!checkout.uses.contains(&"stock".to_string()), "{:?}", checkout.uses);
    assert!(system.service("mailer").unwrap().uses.contains(&"stock".to_string()));
    assert!(system.topology().link_names().contains(&"mailer->stock".to_string()));
    assert!(!system.topology().link_names().contains(&"checkout->stock".to_string()));
    // The caller starts after what it calls.
    let order = system.start_order();
    let at = |name: &str| order.iter().position(|s| *s == name).unwrap();
    assert!(at("stock") < at("mailer"), "{order:?}");
}
