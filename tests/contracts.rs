//! The reference system's contracts against the real providers (five service processes on
//! real Postgres and Kafka, started by the harness in test mode).
//!
//! Needs the service binaries (`cargo build --workspace --bins`) and the images of `ci/setup`;
//! the interoperability test also needs the official verifier, `pact verifier` of the `pact`
//! command that `ci/setup` installs (PyPI's `pact-python-cli`) into `.faultline/tools/pact-cli`.
//!
//! Each test starts its own stack; a lock keeps them from running at once on a small machine.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use faultline_contracts::files::read_pacts;
use faultline_contracts::verify::{Outcome, ProviderTarget, Report};
use faultline_contracts::Pact;
use faultline_harness::contracts::{verify_pacts, write_report};
use faultline_harness::stack::{Stack, StackConfig};
use serde_json::Value;
use tokio::sync::Mutex;

/// Tests run on threads of their own, each with its own runtime; tokio's mutex does not care.
static ONE_STACK_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed_pacts() -> Vec<(PathBuf, Pact)> {
    read_pacts(&workspace().join("contracts/pacts")).expect("the committed pacts read")
}

fn pact_named(name: &str) -> Vec<(PathBuf, Pact)> {
    committed_pacts()
        .into_iter()
        .filter(|(path, _)| path.file_name().is_some_and(|f| f == name))
        .collect()
}

/// Outcome per (pact file, interaction), `true` for passed.
fn verdicts(report: &Report) -> BTreeMap<(String, String), bool> {
    report
        .pacts
        .iter()
        .flat_map(|p| {
            let file = Path::new(&p.source)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            p.interactions.iter().map(move |i| {
                (
                    (file.clone(), i.description.clone()),
                    i.outcome == Outcome::Passed,
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn every_committed_pact_verifies_against_the_real_providers() {
    let _serial = ONE_STACK_AT_A_TIME.lock().await;
    let pacts = committed_pacts();
    let names: Vec<String> = pacts
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "gateway-order.json",
            "notification-order.json",
            "order-inventory.json",
            "order-payment.json"
        ]
    );
    let stack = Stack::start(&common::reference(), StackConfig::default())
        .await
        .unwrap();
    let report = verify_pacts(Some(&stack), &pacts, &BTreeMap::new()).await;
    stack.shutdown().await.unwrap();
    assert!(report.holds(), "{}", report.to_text());
    let (interactions, passed, ..) = report.counts();
    assert_eq!(interactions, passed);
    assert!(interactions >= 14, "{}", report.to_text());
    let kinds: Vec<&str> = report
        .pacts
        .iter()
        .flat_map(|p| p.interactions.iter().map(|i| i.kind.as_str()))
        .collect();
    assert!(kinds.contains(&"Asynchronous/Messages") && kinds.contains(&"Synchronous/HTTP"));

    let out = std::env::temp_dir().join(format!("faultline-verification-{}", std::process::id()));
    write_report(&report, &out).unwrap();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("verification.json")).unwrap())
            .unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["summary"]["interactions"], interactions);
    let junit = std::fs::read_to_string(out.join("verification.junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), interactions);
    assert!(!junit.contains("<failure"));
    let html = std::fs::read_to_string(out.join("verification.html")).unwrap();
    assert!(html.contains("banner passed"), "{html}");
    std::fs::remove_dir_all(out).unwrap();
}

/// A payment that renamed `status` to `state` and answers charges with 200 instead of 201:
/// a proxy in front of the real one that rewrites the answers of `POST /payments/charges`.
#[derive(Clone)]
struct Rewriter {
    upstream: String,
    client: reqwest::Client,
}

async fn rewrite(State(proxy): State<Rewriter>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let headers: HeaderMap = request.headers().clone();
    let body: Bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let mut forward = proxy
        .client
        .request(method.clone(), format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    let Ok(answer) = forward.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut status = answer.status();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut body = bytes.to_vec();
    if method == "POST" && path.starts_with("/payments/charges") {
        if let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&bytes) {
            if let Some(value) = fields.remove("status") {
                fields.insert("state".into(), value);
            }
            body = serde_json::to_vec(&fields).unwrap();
        }
        if status == StatusCode::CREATED {
            status = StatusCode::OK;
        }
    }
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

async fn rewriting_payment(upstream: String) -> String {
    let app = axum::Router::new().fallback(rewrite).with_state(Rewriter {
        upstream,
        client: reqwest::Client::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

#[tokio::test]
async fn a_provider_that_renames_a_field_and_changes_a_status_fails_naming_interaction_and_path() {
    let _serial = ONE_STACK_AT_A_TIME.lock().await;
    let stack = Stack::start(&common::reference(), StackConfig::default())
        .await
        .unwrap();
    let broken = rewriting_payment(stack.service_url("payment").unwrap()).await;
    let overrides = BTreeMap::from([(
        "payment".to_string(),
        ProviderTarget::http("payment", &broken),
    )]);
    let report = verify_pacts(Some(&stack), &pact_named("order-payment.json"), &overrides).await;
    stack.shutdown().await.unwrap();

    assert!(!report.holds());
    let text = report.to_text();
    let charge = &report.pacts[0].interactions[0];
    assert_eq!(charge.description, "a charge of an order");
    let Outcome::Failed(mismatches) = &charge.outcome else {
        panic!("the charge fails: {text}")
    };
    let paths: Vec<(String, &str)> = mismatches
        .iter()
        .map(|m| (m.part.to_string(), m.path.as_str()))
        .collect();
    assert!(paths.contains(&("body".to_string(), "$.status")), "{text}");
    assert!(paths.iter().any(|(part, _)| part == "status"), "{text}");
    let problems = charge.problems().join("\n");
    assert!(
        problems.contains("interaction \"a charge of an order\""),
        "{problems}"
    );
    assert!(problems.contains("$.status"), "{problems}");
    // The refund, which the change does not touch, still holds.
    let refund = &report.pacts[0].interactions[2];
    assert_eq!(
        (refund.description.as_str(), &refund.outcome),
        ("a refund of a charged order", &Outcome::Passed)
    );
}

/// Faultline's verdicts on one pact, by interaction description.
fn by_description(report: &Report) -> BTreeMap<String, bool> {
    verdicts(report)
        .into_iter()
        .map(|((_, description), passed)| (description, passed))
        .collect()
}

#[tokio::test]
async fn the_official_pact_verifier_gives_the_same_verdicts_as_faultline_on_the_same_files() {
    let _serial = ONE_STACK_AT_A_TIME.lock().await;
    let binary = faultline_harness::contracts::pact_binary();
    assert!(
        binary.is_file(),
        "{} is missing: ci/setup installs pact-python-cli there (or set FAULTLINE_PACT_CLI)",
        binary.display()
    );
    let stack = Stack::start(&common::reference(), StackConfig::default())
        .await
        .unwrap();
    let broken_payment = rewriting_payment(stack.service_url("payment").unwrap()).await;
    // The official verifier asks a provider for messages over HTTP; the reference system
    // publishes them to Kafka, so for the message pact it talks to a bridge that reads them
    // there (see MessageBridge).
    let (_, messages) = pact_named("notification-order.json").remove(0);
    let bridge = faultline_harness::contracts::MessageBridge::start(
        messages,
        &format!(
            "{}/admin/provider-states",
            stack.service_url("order").unwrap()
        ),
        &stack
            .infra()
            .kafka_bootstrap(faultline_harness::infra::HARNESS_CLIENT)
            .unwrap(),
    )
    .await
    .unwrap();
    let cases = [
        ("gateway-order.json", None, None),
        ("order-inventory.json", None, None),
        ("order-payment.json", None, None),
        ("order-payment.json", Some(broken_payment), None),
        ("notification-order.json", None, Some(bridge.url())),
    ];
    let mut compared = 0;
    let mut failures_seen = 0;
    for (file, url, official_url) in cases {
        let pacts = pact_named(file);
        let provider = pacts[0].1.provider.name.clone();
        let target = match &url {
            Some(url) => ProviderTarget::http(&provider, url),
            None => faultline_harness::contracts::target(&stack, &provider).unwrap(),
        };
        let overrides = BTreeMap::from([(provider.clone(), target.clone())]);
        let ours = by_description(&verify_pacts(Some(&stack), &pacts, &overrides).await);
        let official_target = match &official_url {
            Some(url) => ProviderTarget::http(&provider, url),
            None => target.clone(),
        };
        let official =
            faultline_harness::contracts::run_pact_verifier(&binary, &pacts[0].0, &official_target)
                .await
                .unwrap();
        let theirs: BTreeMap<String, bool> = official
            .iter()
            .map(|(d, v)| (d.clone(), v.is_ok()))
            .collect();
        assert_eq!(
            ours, theirs,
            "{file} against {}: {official:#?}",
            official_target.base_url
        );
        compared += ours.len();
        failures_seen += ours.values().filter(|passed| !**passed).count();
    }
    drop(bridge);
    stack.shutdown().await.unwrap();
    assert_eq!(compared, 17);
    assert!(
        failures_seen >= 1,
        "the broken provider fails for both verifiers"
    );
}
