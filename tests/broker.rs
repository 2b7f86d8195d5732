//! The contract broker on real Postgres: publish → verify (by faultline and by the official
//! verifier, `pact verifier`, both through the broker) → can-i-deploy; a new interaction nobody has
//! verified makes can-i-deploy say no and name it; a pending pact does not fail the provider's
//! build; every safety rule (tokens, immutability, malformed pacts, nothing half-written);
//! a restarted broker keeps everything; every route refuses bad input (wrong methods, oversized and non-UTF-8 input, NUL bytes)
//! with a JSON error and the broker stays healthy.
//!
//! Needs the service binaries (`cargo build --workspace --bins`), the images of `ci/setup`, and
//! the official `pact` command (`ci/setup` installs PyPI's `pact-python-cli` into
//! `.faultline/tools/pact-cli`, or `FAULTLINE_PACT_CLI`). The broker runs in the test process on
//! 127.0.0.1.

mod common;

use std::path::PathBuf;

use common::broker_database;

use faultline_contracts::files::read_pacts;
use faultline_contracts::verify::Outcome;
use faultline_contracts::{Interaction, Pact};
use faultline_broker::client::ClientError;
use faultline_broker::store::Selector;
use faultline_harness::broker_verification::{verify_from_broker, BrokerSource};
use faultline_broker::{Broker, BrokerClient, BrokerConfig};
use faultline_harness::contracts::{pact_binary, pact_verifier};
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_harness::stack::{Stack, StackConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

const WRITE: &str = "write-token-for-tests";
const READ: &str = "read-token-for-tests";
/// How long one `pact verifier` run may take (it takes about a second).
const LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

fn committed_pacts() -> Vec<Pact> {
    read_pacts(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts/pacts"))
        .expect("the committed pacts read")
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn pact_between(consumer: &str, provider: &str) -> Pact {
    committed_pacts()
        .into_iter()
        .find(|p| p.consumer.name == consumer && p.provider.name == provider)
        .expect("the committed pact exists")
}

async fn start_broker(database_url: &str, port: u16) -> Broker {
    Broker::start(
        BrokerConfig {
            database_url: database_url.to_string(),
            write_token: WRITE.into(),
            read_token: Some(READ.into()),
        },
        format!("127.0.0.1:{port}").parse().unwrap(),
    )
    .await
    .expect("the broker starts")
}

/// Postgres alone (no Kafka, no services) and a broker on it, on a free port.
async fn broker_on_postgres() -> (Infra, Broker) {
    let infra = Infra::start(InfraConfig {
        kafka: false,
        ..InfraConfig::with_clients(["broker"])
    })
    .await
    .unwrap();
    let database = broker_database(&infra).await;
    let broker = start_broker(&database, 0).await;
    (infra, broker)
}

/// The order -> payment pact of a later order version: one more charge interaction, which the
/// real payment service does not satisfy (it answers 201, the pact asks 299).
fn pact_with_a_new_interaction() -> Pact {
    let mut pact = pact_between("order", "payment");
    let mut extra = pact.interactions[0].clone();
    if let Interaction::Http(http) = &mut extra {
        http.info.description = "a charge in euros".into();
        http.info.key = None;
        http.response.status = 299;
        http.response.matching_rules = Default::default();
    }
    pact.interactions.push(extra);
    pact
}

#[tokio::test]
async fn publish_verify_and_can_i_deploy_through_the_broker() {
    let stack = Stack::start(&common::reference(), StackConfig::default())
        .await
        .unwrap();
    let database = broker_database(stack.infra()).await;
    let broker = start_broker(&database, 0).await;
    let port = broker.addr().port();
    let client = BrokerClient::new(&broker.url(), Some(WRITE.into()));

    // The consumers publish version c1 from main.
    let published = std::time::Instant::now();
    for consumer in ["gateway", "order", "notification"] {
        let pacts: Vec<Pact> = committed_pacts()
            .into_iter()
            .filter(|p| p.consumer.name == consumer)
            .collect();
        client
            .publish(consumer, "c1", Some("main"), &pacts)
            .await
            .unwrap();
    }
    eprintln!("published 4 pacts in {:?}", published.elapsed());
    client.ensure_environment("production", true).await.unwrap();

    // Payment p1 verifies with faultline through the broker: the pact is pending until then.
    let started = std::time::Instant::now();
    let first = verify_from_broker(
        &BrokerSource {
            client: &client,
            provider: "payment",
            selectors: Vec::new(),
            provider_version: "p1",
            provider_branch: Some("main"),
            publish: true,
            build_url: Some("https://ci.invalid/build/1"),
        },
        Some(&stack),
        &Default::default(),
    )
    .await
    .unwrap();
    eprintln!(
        "faultline verified through the broker in {:?}",
        started.elapsed()
    );
    assert_eq!(first.pacts.len(), 1, "order's pact with payment, once");
    assert!(first.pacts[0].pending, "never verified before: pending");
    assert!(first.report.holds(), "{}", first.report.to_text());
    assert_eq!(first.published, 1);

    // The official verifier fetches the same pact through the broker (now not pending) and
    // publishes its results as payment p2.
    let payment = reqwest::Url::parse(&stack.service_url("payment").unwrap()).unwrap();
    let official = |selector: &str, version: &str| {
        // tokio's process: the broker answers on this test's runtime while the verifier runs.
        pact_verifier(&pact_binary())
            .args(["--broker-url", &broker.url()])
            .args(["--provider-name", "payment"])
            .args(["--consumer-version-selectors", selector])
            .arg("--enable-pending")
            .args(["--token", WRITE])
            .args(["--hostname", payment.host_str().unwrap()])
            .args(["--port", &payment.port().unwrap().to_string()])
            .args([
                "--state-change-url",
                &format!("{}admin/provider-states", payment),
            ])
            .arg("--publish")
            .args(["--provider-version", version])
            .args(["--provider-branch", "main"])
            .arg("--no-colour")
            .kill_on_drop(true)
            .output()
    };
    let started = std::time::Instant::now();
    let output = tokio::time::timeout(LIMIT, official(r#"{"mainBranch": true}"#, "p2"))
        .await
        .expect("pact verifier finishes")
        .expect("pact verifier runs (ci/setup installs it)");
    eprintln!(
        "pact verifier through the broker in {:?}",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pact verifier failed:\n{text}");
    let matrix = client
        .send(
            reqwest::Method::GET,
            "/matrix?pacticipant=payment&version=p2",
            None,
        )
        .await
        .unwrap();
    let rows = matrix["matrix"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["consumer"] == "order" && r["success"] == true),
        "pact verifier published a successful result for p2: {matrix}\n{text}"
    );

    // `faultline contracts verify --broker-url … --publish` does the same from the command
    // line, here against the running payment service.
    let out = std::env::temp_dir().join(format!("faultline-broker-verify-{}", std::process::id()));
    let verified =
        tokio::process::Command::new(faultline_harness::stack::service_bin_dir().join("faultline"))
            .args(["contracts", "verify", "--broker-url", &broker.url()])
            .args(["--token", WRITE, "--provider", "payment"])
            .args(["--provider-version", "p2-cli", "--provider-branch", "main"])
            .args(["--provider-url", &stack.service_url("payment").unwrap()])
            .arg("--publish")
            .arg("--out")
            .arg(&out)
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
    let text = String::from_utf8_lossy(&verified.stdout).to_string()
        + &String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success(), "{text}");
    assert!(
        text.contains("published the results of 1 pact(s) as payment p2-cli"),
        "{text}"
    );
    assert!(out.join("verification.json").is_file());
    let _ = std::fs::remove_dir_all(&out);
    let matrix = client
        .send(
            reqwest::Method::GET,
            "/matrix?pacticipant=payment&version=p2-cli",
            None,
        )
        .await
        .unwrap();
    assert_eq!(matrix["matrix"][0]["success"], true, "{matrix}");

    // Payment p2 goes to production; order c1 may follow.
    client
        .record_deployment("payment", "p2", "production", false)
        .await
        .unwrap();
    let yes = client
        .can_i_deploy("order", "c1", "production")
        .await
        .unwrap();
    assert!(yes.deployable, "{:?}", yes.raw);
    assert!(
        yes.notices.iter().any(|n| n.contains("inventory")),
        "inventory, not deployed, is named as not checked: {:?}",
        yes.notices
    );
    let payment_ok = client
        .can_i_deploy("payment", "p2", "production")
        .await
        .unwrap();
    assert!(payment_ok.deployable, "{:?}", payment_ok.raw);

    // Order c2 (a feature branch) adds an interaction nobody has verified.
    let order_pacts = vec![
        pact_with_a_new_interaction(),
        pact_between("order", "inventory"),
    ];
    client
        .publish("order", "c2", Some("feature-euros"), &order_pacts)
        .await
        .unwrap();
    let no = client
        .can_i_deploy("order", "c2", "production")
        .await
        .unwrap();
    assert!(!no.deployable, "{:?}", no.raw);
    assert!(
        no.reason.contains("\"a charge in euros\"") && no.reason.contains("payment p2"),
        "names the missing interaction and the deployed provider: {}",
        no.reason
    );
    assert!(
        !no.reason.contains("\"a charge of an order\""),
        "only what is missing: {}",
        no.reason
    );

    // Payment verifies the feature branch's pact: pending (never verified), so its failing
    // interaction does not fail the build — with faultline and with pact verifier.
    let feature = verify_from_broker(
        &BrokerSource {
            client: &client,
            provider: "payment",
            selectors: vec![Selector {
                branch: Some("feature-euros".into()),
                ..Selector::default()
            }],
            provider_version: "p3",
            provider_branch: Some("main"),
            publish: true,
            build_url: None,
        },
        Some(&stack),
        &Default::default(),
    )
    .await
    .unwrap();
    assert!(feature.pacts[0].pending);
    let euros = feature.report.pacts[0]
        .interactions
        .iter()
        .find(|i| i.description == "a charge in euros")
        .unwrap();
    assert!(
        matches!(euros.outcome, Outcome::Failed(_)),
        "{:?}",
        euros.outcome
    );
    assert!(euros.pending);
    assert!(
        feature.report.holds(),
        "a pending pact's failure does not fail the provider: {}",
        feature.report.to_text()
    );
    let output = tokio::time::timeout(LIMIT, official(r#"{"branch": "feature-euros"}"#, "p4"))
        .await
        .expect("pact verifier finishes")
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pact verifier: a pending pact's failure does not fail the build:\n{text}"
    );
    assert!(text.contains("a charge in euros"), "{text}");

    // The main branch's pact, which payment verified, is no longer pending: a failure there
    // would fail the build.
    let again = client
        .pacts_for_verification(
            "payment",
            &[Selector {
                main_branch: Some(true),
                ..Selector::default()
            }],
            true,
            Some("main"),
        )
        .await
        .unwrap();
    assert!(!again[0].pending);

    // Payment p3 (main) published its failure for c2: can-i-deploy now names the failed
    // interaction once p3 is deployed.
    client
        .record_deployment("payment", "p3", "production", false)
        .await
        .unwrap();
    let failed = client
        .can_i_deploy("order", "c2", "production")
        .await
        .unwrap();
    assert!(!failed.deployable);
    assert!(
        failed.reason.contains("verification failed")
            && failed.reason.contains("a charge in euros"),
        "{}",
        failed.reason
    );

    // p3 never verified c1's pact, so with p3 in production c1 may no longer follow there.
    let c1_now = client
        .can_i_deploy("order", "c1", "production")
        .await
        .unwrap();
    assert!(!c1_now.deployable);
    assert!(c1_now.reason.contains("payment p3"), "{}", c1_now.reason);

    // A restarted broker keeps everything.
    broker.stop().await;
    let broker = start_broker(&database, port).await;
    let client = BrokerClient::new(&broker.url(), Some(READ.into()));
    for (version, before) in [("c1", &c1_now), ("c2", &failed)] {
        let after = client
            .can_i_deploy("order", version, "production")
            .await
            .unwrap();
        assert_eq!(after.raw, before.raw, "order {version} after the restart");
    }
    let p2 = client
        .can_i_deploy("payment", "p2", "production")
        .await
        .unwrap();
    assert!(p2.deployable, "{:?}", p2.raw);
    let version = client
        .send(
            reqwest::Method::GET,
            "/pacticipants/order/versions/c2",
            None,
        )
        .await
        .unwrap();
    assert_eq!(version["branches"], json!(["feature-euros"]));
    let pact = client
        .send(
            reqwest::Method::GET,
            "/pacts/provider/payment/consumer/order/version/c1",
            None,
        )
        .await
        .unwrap();
    assert_eq!(pact["interactions"].as_array().unwrap().len(), 3);
    broker.stop().await;
    stack.shutdown().await.unwrap();
}

fn refused(result: Result<Value, ClientError>) -> (StatusCode, String) {
    match result {
        Err(ClientError::Refused {
            status, message, ..
        }) => (status, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_broker_refuses_what_it_must_and_writes_nothing_then() {
    let (infra, broker) = broker_on_postgres().await;
    let url = broker.url();
    let writer = BrokerClient::new(&url, Some(WRITE.into()));
    let reader = BrokerClient::new(&url, Some(READ.into()));
    let nobody = BrokerClient::new(&url, None);
    let stranger = BrokerClient::new(&url, Some("not-a-token".into()));
    let payment = pact_between("order", "payment");
    let inventory = pact_between("order", "inventory");
    let publish_path = "/pacts/provider/payment/consumer/order/version/v1";
    let pact_json = serde_json::from_str::<Value>(&payment.to_json_string()).unwrap();

    // Tokens: writes need the write token; reads need a token when a read token is set.
    for (who, expected) in [
        (&nobody, StatusCode::UNAUTHORIZED),
        (&stranger, StatusCode::UNAUTHORIZED),
        (&reader, StatusCode::FORBIDDEN),
    ] {
        let (status, message) = refused(
            who.send(reqwest::Method::PUT, publish_path, Some(&pact_json))
                .await,
        );
        assert_eq!(status, expected, "{message}");
        let (status, _) = refused(
            who.send(
                reqwest::Method::POST,
                "/environments",
                Some(&json!({"name": "staging"})),
            )
            .await,
        );
        assert_eq!(status, expected);
    }
    let (status, _) = refused(nobody.send(reqwest::Method::GET, "/", None).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    reader.send(reqwest::Method::GET, "/", None).await.unwrap();
    let (status, _) = refused(reader.send(reqwest::Method::GET, publish_path, None).await);
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing was written by refused requests"
    );

    // Published contracts are immutable: the same content again is fine, another is a 409.
    writer
        .send(reqwest::Method::PUT, publish_path, Some(&pact_json))
        .await
        .unwrap();
    let again = writer
        .send(reqwest::Method::PUT, publish_path, Some(&pact_json))
        .await
        .unwrap();
    let sha = again["pactVersionSha"].as_str().unwrap().to_string();
    let mut changed = pact_json.clone();
    changed["interactions"][0]["description"] = json!("a charge, renamed");
    let (status, message) = refused(
        writer
            .send(reqwest::Method::PUT, publish_path, Some(&changed))
            .await,
    );
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        message.contains("immutable") && message.contains(&sha),
        "{message}"
    );
    let (status, _) = refused(
        writer
            .publish("order", "v1", None, &[pact_with_a_new_interaction()])
            .await,
    );
    assert_eq!(status, StatusCode::CONFLICT);
    let stored = reader
        .send(reqwest::Method::GET, publish_path, None)
        .await
        .unwrap();
    assert_eq!(
        stored["pactVersionSha"],
        json!(sha),
        "the first content stays"
    );
    assert_eq!(
        stored["interactions"][0]["description"],
        "a charge of an order"
    );

    // Malformed pacts are refused with the reason.
    let mut bad_matcher = pact_json.clone();
    bad_matcher["interactions"][0]["response"]["matchingRules"] =
        json!({"body": {"$.status": {"combine": "AND", "matchers": [{"match": "telepathy"}]}}});
    let (status, message) = refused(
        writer
            .send(
                reqwest::Method::PUT,
                "/pacts/provider/payment/consumer/order/version/v2",
                Some(&bad_matcher),
            )
            .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("a charge of an order") && message.contains("telepathy"),
        "names the interaction and the matcher: {message}"
    );
    let response = reqwest::Client::new()
        .put(format!(
            "{url}/pacts/provider/payment/consumer/order/version/v2"
        ))
        .bearer_auth(WRITE)
        .body("{\n  \"consumer\": {\"name\": \"order\"},\n  \"provider\": \n}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let message = response.text().await.unwrap();
    assert!(
        message.contains("line 4, column 1"),
        "names line and column: {message}"
    );
    let (status, message) = refused(
        writer
            .send(
                reqwest::Method::PUT,
                "/pacts/provider/inventory/consumer/order/version/v2",
                Some(&pact_json),
            )
            .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("payment"), "{message}");

    // Nothing half-written: a publication of two pacts with a bad second one stores neither,
    // nor the version or its branch.
    let body = json!({
        "pacticipantName": "order",
        "pacticipantVersionNumber": "v3",
        "branch": "feature-half",
        "contracts": [
            {"consumerName": "order", "providerName": "inventory", "specification": "pact",
             "contentType": "application/json",
             "content": base64_of(&inventory.to_json_string())},
            {"consumerName": "order", "providerName": "payment", "specification": "pact",
             "contentType": "application/json",
             "content": base64_of(&bad_matcher.to_string())},
        ]
    });
    let (status, message) = refused(
        writer
            .send(reqwest::Method::POST, "/contracts/publish", Some(&body))
            .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("contracts[1]"), "{message}");
    for path in [
        "/pacts/provider/inventory/consumer/order/version/v3",
        "/pacticipants/order/versions/v3",
    ] {
        let (status, _) = refused(reader.send(reqwest::Method::GET, path, None).await);
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} was not written");
    }
    // A conflict in the second pact also undoes the first.
    writer
        .publish("order", "v4", None, std::slice::from_ref(&payment))
        .await
        .unwrap();
    let (status, _) = refused(
        writer
            .publish(
                "order",
                "v4",
                Some("feature-late"),
                &[inventory.clone(), pact_with_a_new_interaction()],
            )
            .await,
    );
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = refused(
        reader
            .send(
                reqwest::Method::GET,
                "/pacts/provider/inventory/consumer/order/version/v4",
                None,
            )
            .await,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    let v4 = reader
        .send(
            reqwest::Method::GET,
            "/pacticipants/order/versions/v4",
            None,
        )
        .await
        .unwrap();
    assert_eq!(v4["branches"], json!([]), "the refused branch was not kept");

    // Branch names may hold slashes (they travel percent-encoded); versions may not.
    writer
        .publish(
            "order",
            "v5",
            Some("feature/slashes"),
            std::slice::from_ref(&inventory),
        )
        .await
        .unwrap();
    let v5 = reader
        .send(
            reqwest::Method::GET,
            "/pacticipants/order/versions/v5",
            None,
        )
        .await
        .unwrap();
    assert_eq!(v5["branches"], json!(["feature/slashes"]));
    let (status, message) = refused(writer.publish("order", "v/6", None, &[inventory]).await);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("without '/'"), "{message}");

    broker.stop().await;
    infra.shutdown().await.unwrap();
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Runs `ci/publish-contracts` against `broker` with the built `faultline` binary.
async fn publish_contracts_script(broker: &str, args: &[&str]) -> (i32, String) {
    let faultline = faultline_harness::stack::service_bin_dir().join("faultline");
    let output = tokio::process::Command::new(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ci/publish-contracts"),
    )
    .args(args)
    .env("FAULTLINE_BIN", &faultline)
    .env("FAULTLINE_BROKER_URL", broker)
    .env("FAULTLINE_BROKER_TOKEN", WRITE)
    .kill_on_drop(true)
    .output()
    .await
    .expect("ci/publish-contracts runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[tokio::test]
async fn ci_publish_contracts_publishes_then_says_whether_each_consumer_may_deploy() {
    let (infra, broker) = broker_on_postgres().await;
    let client = BrokerClient::new(&broker.url(), Some(WRITE.into()));
    client.ensure_environment("production", true).await.unwrap();
    let args = [
        "--to-environment",
        "production",
        "--version",
        "r1",
        "--branch",
        "main",
    ];

    // Nothing of the providers is in production yet: every consumer may go.
    let (code, text) = publish_contracts_script(&broker.url(), &args).await;
    assert_eq!(code, 0, "{text}");
    for consumer in ["gateway", "notification", "order"] {
        assert!(
            text.contains(&format!("can-i-deploy {consumer} r1 to production")),
            "{text}"
        );
    }
    let pact = client
        .send(
            reqwest::Method::GET,
            "/pacts/provider/payment/consumer/order/version/r1",
            None,
        )
        .await
        .unwrap();
    assert_eq!(pact["consumer"]["name"], "order");

    // A payment version that never verified order's pact goes to production (recorded with
    // the CLI): order r1 may no longer follow, and the script says what is missing.
    client
        .send(
            reqwest::Method::PUT,
            "/pacticipants/payment/branches/main/versions/p9",
            Some(&json!({})),
        )
        .await
        .unwrap();
    let faultline = faultline_harness::stack::service_bin_dir().join("faultline");
    let recorded = tokio::process::Command::new(&faultline)
        .args(["contracts", "record-deployment", "--pacticipant", "payment"])
        .args(["--version", "p9", "--environment", "production"])
        .args(["--broker-url", &broker.url(), "--token", WRITE])
        .output()
        .await
        .unwrap();
    assert!(recorded.status.success(), "{recorded:?}");
    let (code, text) = publish_contracts_script(&broker.url(), &args).await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("no: order r1 cannot be deployed to production")
            && text.contains("payment p9"),
        "{text}"
    );
    assert!(
        text.contains("already published with the same content"),
        "a second publication of the same pacts is idempotent: {text}"
    );

    // A release counts as being in the environment: with order r1 released in production, a
    // payment version that never verified its pact may not go there.
    client
        .record_deployment("order", "r1", "production", true)
        .await
        .unwrap();
    let payment = client
        .can_i_deploy("payment", "p9", "production")
        .await
        .unwrap();
    assert!(!payment.deployable);
    assert!(
        payment
            .reason
            .contains("pact order r1 (in production) -> payment"),
        "{}",
        payment.reason
    );

    // `faultline broker serve` names what its configuration lacks.
    let serve = tokio::process::Command::new(&faultline)
        .args(["broker", "serve", "--addr", "127.0.0.1:0"])
        .env_remove("FAULTLINE_BROKER_DATABASE_URL")
        .env("FAULTLINE_BROKER_WRITE_TOKEN", WRITE)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&serve.stderr);
    assert_eq!(serve.status.code(), Some(2), "{text}");
    assert!(
        text.contains("FAULTLINE_BROKER_DATABASE_URL: is not set"),
        "{text}"
    );

    // Another content under a published version: `faultline contracts publish` exits 1 with
    // the broker's reason.
    let dir = std::env::temp_dir().join(format!("faultline-broker-publish-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("order-payment.json"),
        pact_with_a_new_interaction().to_json_string(),
    )
    .unwrap();
    let publish = tokio::process::Command::new(&faultline)
        .args([
            "contracts",
            "publish",
            "--version",
            "r1",
            "--branch",
            "main",
        ])
        .arg(&dir)
        .args(["--broker-url", &broker.url(), "--token", WRITE])
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&publish.stderr);
    assert_eq!(publish.status.code(), Some(1), "{text}");
    assert!(text.contains("409") && text.contains("immutable"), "{text}");

    broker.stop().await;
    infra.shutdown().await.unwrap();
}

/// Sends `request` (the request line and headers, without the final blank line) as it is,
/// bytes and all, so nothing client-side normalises the path: the status and the body.
async fn raw_request(addr: std::net::SocketAddr, request: &[u8], body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream
        .write_all(
            format!(
                "\r\nHost: {addr}\r\nAuthorization: Bearer {WRITE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A refusal: a 4xx whose body is the JSON error, with nothing of the server's internals.
#[track_caller]
fn assert_json_refusal(what: &str, status: u16, content_type: Option<&str>, body: &str) {
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx, got {status}: {body}"
    );
    if let Some(content_type) = content_type {
        assert!(
            content_type.starts_with("application/json"),
            "{what}: {status} with Content-Type {content_type}: {body}"
        );
    }
    let json: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{what}: {status} body is not JSON ({e}): {body:?}"));
    assert!(json["error"].is_string(), "{what}: {json}");
    assert!(json["errors"].is_array(), "{what}: {json}");
    for internal in ["sqlx", "postgres", "SQLSTATE", "database:"] {
        assert!(
            !body.to_lowercase().contains(&internal.to_lowercase()),
            "{what}: the body shows internals ({internal}): {body}"
        );
    }
}

async fn send_raw(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, Option<String>, String) {
    let mut request = http.request(method, url).bearer_auth(WRITE);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn every_route_refuses_bad_input_with_a_json_error_and_the_broker_stays_healthy() {
    use faultline_broker::api::{MAX_BODY, MAX_URI, ROUTES};
    let (infra, broker) = broker_on_postgres().await;
    let url = broker.url();
    let writer = BrokerClient::new(&url, Some(WRITE.into()));
    let reader = BrokerClient::new(&url, Some(READ.into()));
    writer
        .publish(
            "order",
            "c1",
            Some("main"),
            &[pact_between("order", "payment")],
        )
        .await
        .unwrap();
    let env = writer.ensure_environment("staging", false).await.unwrap();
    let http = reqwest::Client::new();
    let value = |name: &str| -> String {
        match name {
            "p" => "payment".into(),
            "c" => "order".into(),
            "v" => "c1".into(),
            "b" => "main".into(),
            "t" => "rc".into(),
            "e" => env.clone(),
            "sha" => "0".repeat(64),
            "id" => "1".into(),
            _ => uuid::Uuid::new_v4().to_string(),
        }
    };
    // A body holding a NUL in every field a write reads: names, branch, display name,
    // build URL, test results.
    let nul = "a\u{0}b";
    let nul_body = json!({
        "name": nul, "mainBranch": nul, "displayName": nul, "repositoryUrl": nul,
        "pacticipantName": nul, "pacticipantVersionNumber": nul, "branch": nul, "tags": [nul],
        "contracts": [], "success": true, "providerApplicationVersion": nul, "buildUrl": nul,
        "testResults": [{"interactionDescription": nul, "success": true}],
        "currentlyDeployed": false, "currentlySupported": false,
    })
    .to_string()
    .into_bytes();
    let oversized = {
        let mut body = b"{\"name\": \"".to_vec();
        body.resize(MAX_BODY + 16, b'a');
        body.extend_from_slice(b"\"}");
        body
    };
    let mut walked = 0;
    for (template, methods) in ROUTES {
        let segments: Vec<&str> = template.split('/').collect();
        let fill = |bad: Option<(usize, &str)>| -> String {
            segments
                .iter()
                .enumerate()
                .map(
                    |(i, s)| match (s.strip_prefix('{').and_then(|s| s.strip_suffix('}')), bad) {
                        (Some(_), Some((at, text))) if at == i => text.to_string(),
                        (Some(name), _) => value(name),
                        (None, _) => s.to_string(),
                    },
                )
                .collect::<Vec<_>>()
                .join("/")
        };
        let path = fill(None);
        // A method the route does not answer.
        let wrong = ["DELETE", "PUT", "POST", "PATCH", "GET"]
            .into_iter()
            .find(|m| !methods.contains(m))
            .unwrap();
        let (status, content_type, body) = send_raw(
            &http,
            wrong.parse().unwrap(),
            &format!("{url}{path}"),
            None,
            None,
        )
        .await;
        assert_eq!(status, 405, "{wrong} {template}: {body}");
        assert_json_refusal(
            &format!("{wrong} {template}"),
            status,
            content_type.as_deref(),
            &body,
        );
        for method in methods.iter() {
            let method: reqwest::Method = method.parse().unwrap();
            let what = |case: &str| format!("{method} {template} ({case})");
            // A NUL, and bytes that are not UTF-8, in each path parameter; a NUL in the query.
            for (i, s) in segments
                .iter()
                .enumerate()
                .filter(|(_, s)| s.starts_with('{'))
            {
                for (case, text) in [("NUL in {s}", "a%00b"), ("not UTF-8 in {s}", "%FF%FE")] {
                    let (status, content_type, body) = send_raw(
                        &http,
                        method.clone(),
                        &format!("{url}{}", fill(Some((i, text)))),
                        None,
                        None,
                    )
                    .await;
                    assert_eq!(status, 400, "{}: {body}", what(case));
                    assert_json_refusal(
                        &what(&case.replace("{s}", s)),
                        status,
                        content_type.as_deref(),
                        &body,
                    );
                }
            }
            let (status, content_type, body) = send_raw(
                &http,
                method.clone(),
                &format!("{url}{path}?pacticipant=a%00b"),
                None,
                None,
            )
            .await;
            assert_eq!(status, 400, "{}: {body}", what("NUL in the query"));
            assert_json_refusal(
                &what("NUL in the query"),
                status,
                content_type.as_deref(),
                &body,
            );
            if method == reqwest::Method::GET {
                continue;
            }
            // Bodies: oversized, not JSON, and JSON with a NUL in every field.
            for (case, content_type, body, expected) in [
                (
                    "oversized body",
                    Some("application/json"),
                    oversized.clone(),
                    Some(413),
                ),
                (
                    "XML body",
                    Some("application/xml"),
                    b"<pact/>".to_vec(),
                    Some(415),
                ),
                (
                    "NUL in the body",
                    Some("application/json"),
                    nul_body.clone(),
                    None,
                ),
            ] {
                let (status, answer_type, answer) = send_raw(
                    &http,
                    method.clone(),
                    &format!("{url}{path}"),
                    content_type,
                    Some(body),
                )
                .await;
                if let Some(expected) = expected {
                    assert_eq!(status, expected, "{}: {answer}", what(case));
                }
                assert_json_refusal(&what(case), status, answer_type.as_deref(), &answer);
            }
        }
        walked += 1;
    }
    assert_eq!(walked, ROUTES.len());

    // An unknown route, a huge path, `.` and `..` as names (sent raw: HTTP clients resolve
    // dot segments before sending).
    let (status, content_type, body) = send_raw(
        &http,
        reqwest::Method::GET,
        &format!("{url}/no/such/resource"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_json_refusal("unknown route", status, content_type.as_deref(), &body);
    let huge = format!("{url}/pacticipants/{}", "a".repeat(MAX_URI + 1));
    let (status, content_type, body) =
        send_raw(&http, reqwest::Method::GET, &huge, None, None).await;
    assert_eq!(status, 414, "{body}");
    assert_json_refusal("huge path", status, content_type.as_deref(), &body);
    for name in [".", ".."] {
        let (status, body) = raw_request(
            broker.addr(),
            format!("PUT /pacticipants/{name} HTTP/1.1\r\nContent-Type: application/json")
                .as_bytes(),
            b"{}",
        )
        .await;
        assert_eq!(status, 400, "PUT /pacticipants/{name}: {body}");
        assert_json_refusal(&format!("PUT /pacticipants/{name}"), status, None, &body);
        let (status, _, body) = send_raw(
            &http,
            reqwest::Method::POST,
            &format!("{url}/pacticipants"),
            Some("application/json"),
            Some(json!({"name": name}).to_string().into_bytes()),
        )
        .await;
        assert_eq!(status, 400, "POST /pacticipants {name}: {body}");
    }
    let (status, body) =
        raw_request(broker.addr(), b"GET /pacticipants/\xFF\xFE HTTP/1.1", b"").await;
    assert_eq!(
        status, 400,
        "raw bytes that are not UTF-8 in the path: {body}"
    );
    // Control characters other than NUL in free text are refused before the database too.
    let (status, content_type, body) = send_raw(
        &http,
        reqwest::Method::POST,
        &format!("{url}/environments"),
        Some("application/json"),
        Some(
            json!({"name": "qa", "displayName": "q\u{1}a"})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_json_refusal(
        "control character in displayName",
        status,
        content_type.as_deref(),
        &body,
    );
    // A pact sent as XML is refused and not stored.
    let (status, content_type, body) = send_raw(
        &http,
        reqwest::Method::PUT,
        &format!("{url}/pacts/provider/payment/consumer/order/version/x1"),
        Some("application/xml"),
        Some(
            pact_between("order", "payment")
                .to_json_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_json_refusal("a pact as XML", status, content_type.as_deref(), &body);
    let (status, _) = refused(
        reader
            .send(
                reqwest::Method::GET,
                "/pacts/provider/payment/consumer/order/version/x1",
                None,
            )
            .await,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A fault of the server (its database refuses connections) is a 500 that says so and no
    // more.
    let mut admin = sqlx::PgConnection::connect(&infra.postgres_admin_url().unwrap())
        .await
        .unwrap();
    for statement in [
        "ALTER DATABASE broker ALLOW_CONNECTIONS false",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'broker'",
    ] {
        sqlx::query(statement).execute(&mut admin).await.unwrap();
    }
    let (status, content_type, body) = send_raw(
        &http,
        reqwest::Method::GET,
        &format!("{url}/pacticipants/order"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(content_type
        .unwrap_or_default()
        .starts_with("application/json"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "the broker failed to answer; the details are in its log"
    );
    sqlx::query("ALTER DATABASE broker ALLOW_CONNECTIONS true")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();

    // Healthy afterwards: reads and writes work.
    let order = reader
        .send(reqwest::Method::GET, "/pacticipants/order", None)
        .await
        .unwrap();
    assert_eq!(order["name"], "order");
    writer
        .publish(
            "order",
            "c2",
            Some("main"),
            &[pact_between("order", "payment")],
        )
        .await
        .unwrap();

    broker.stop().await;
    infra.shutdown().await.unwrap();
}
