//! A release pipeline run with the official Pact tools against faultline's contract broker on
//! real Postgres: the consolidated `pact` command of PyPI's `pact-python-cli` (its
//! `pact broker …` client and its `pact verifier`), exactly as a team's CI calls it. Each
//! command's exit code and the key lines of its output are asserted, and at each can-i-deploy
//! `faultline contracts can-i-deploy` is asked the same question and must give the same
//! verdict.
//!
//! Needs the service binaries (`cargo build --workspace --bins`), the images of `ci/setup`,
//! and the `pact` command (`ci/setup` installs it into `.faultline/tools/pact-cli`, or
//! `FAULTLINE_PACT_CLI`). The broker runs in the test process on 127.0.0.1; the verifier
//! checks the real payment service of a started reference system.

mod common;

use std::path::{Path, PathBuf};

use common::broker_database;

use faultline_broker::{Broker, BrokerClient, BrokerConfig};
use faultline_harness::contracts::pact_binary;
use faultline_harness::stack::{service_bin_dir, Stack, StackConfig};
use serde_json::Value;

const WRITE: &str = "write-token-for-tests";
const READ: &str = "read-token-for-tests";
/// How long one `pact` or `faultline` command may take (each takes about a second).
const LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A finished command: its exit code and what it printed (stdout, then stderr).
struct Run {
    code: i32,
    text: String,
}

impl Run {
    /// Asserts the exit code and that each line is in the output.
    #[track_caller]
    fn expect(&self, code: i32, lines: &[&str]) -> &Self {
        assert_eq!(self.code, code, "exit code; output:\n{}", self.text);
        for line in lines {
            assert!(
                self.text.contains(line),
                "expected {line:?} in the output:\n{}",
                self.text
            );
        }
        self
    }
}

async fn run(program: &Path, args: &[&str], broker: &str) -> Run {
    let output = tokio::time::timeout(
        LIMIT,
        tokio::process::Command::new(program)
            .args(args)
            .env("PACT_BROKER_BASE_URL", broker)
            .env("PACT_BROKER_TOKEN", WRITE)
            .env("NO_COLOR", "1")
            .current_dir(repo())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{} {args:?} finishes", program.display()))
    .unwrap_or_else(|e| {
        panic!(
            "{} runs (ci/setup installs it, or set FAULTLINE_PACT_CLI): {e}",
            program.display()
        )
    });
    Run {
        code: output.status.code().unwrap_or(-1),
        text: String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr),
    }
}

/// `pact broker ARGS` against `broker`, with the write token.
async fn pact_broker(broker: &str, args: &[&str]) -> Run {
    let mut all = vec!["broker"];
    all.extend_from_slice(args);
    run(&pact_binary(), &all, broker).await
}

/// `faultline contracts can-i-deploy` for the same question; its exit code is the verdict.
async fn faultline_can_i_deploy(broker: &str, pacticipant: &str, version: &str, env: &str) -> Run {
    run(
        &service_bin_dir().join("faultline"),
        &[
            "contracts",
            "can-i-deploy",
            "--pacticipant",
            pacticipant,
            "--version",
            version,
            "--to-environment",
            env,
            "--broker-url",
            broker,
            "--token",
            WRITE,
        ],
        broker,
    )
    .await
}

/// The official client's and faultline's can-i-deploy of `pacticipant` `version` to `env`:
/// both must say `deployable` (exit 0), or both not (exit 1).
async fn both_say(
    broker: &str,
    pacticipant: &str,
    version: &str,
    env: &str,
    deployable: bool,
) -> Run {
    let official = pact_broker(
        broker,
        &[
            "can-i-deploy",
            "--pacticipant",
            pacticipant,
            "--version",
            version,
            "--to-environment",
            env,
        ],
    )
    .await;
    let (code, verdict) = if deployable {
        (0, "Computer says yes")
    } else {
        (1, "Computer says no")
    };
    official.expect(code, &[verdict]);
    faultline_can_i_deploy(broker, pacticipant, version, env)
        .await
        .expect(code, &[if deployable { "yes: " } else { "no: " }]);
    official
}

/// The official can-i-deploy of order c1 with payment `version`, no environment.
async fn order_c1_with_payment(broker: &str, version: &str) -> Run {
    pact_broker(
        broker,
        &[
            "can-i-deploy",
            "--pacticipant",
            "order",
            "--version",
            "c1",
            "--pacticipant",
            "payment",
            "--version",
            version,
        ],
    )
    .await
}

#[tokio::test]
async fn a_release_pipeline_with_the_official_pact_client_runs_against_the_broker() {
    let pact = pact_binary();
    assert!(
        pact.is_file(),
        "{} is missing: ci/setup installs pact-python-cli there (or set FAULTLINE_PACT_CLI)",
        pact.display()
    );
    let stack = Stack::start(&common::reference(), StackConfig::default())
        .await
        .unwrap();
    let database = broker_database(stack.infra()).await;
    let broker = Broker::start(
        BrokerConfig {
            database_url: database,
            write_token: WRITE.into(),
            read_token: Some(READ.into()),
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = broker.url();
    let url = url.as_str();
    let reader = BrokerClient::new(url, Some(READ.into()));

    // The consumer's CI publishes with the official client…
    pact_broker(
        url,
        &[
            "publish",
            "contracts/pacts/order-payment.json",
            "contracts/pacts/order-inventory.json",
            "--consumer-app-version",
            "c1",
            "--branch",
            "main",
            "--tag",
            "rc",
        ],
    )
    .await
    .expect(
        0,
        &[
            "order version c1 on branch main, tagged rc",
            "Pact between order (c1) and payment published",
            "Pact between order (c1) and inventory published",
        ],
    );
    // …and the same contracts again with faultline: the client re-serialised them (its
    // metadata differs), yet they are the same contracts, so not a 409.
    run(
        &service_bin_dir().join("faultline"),
        &[
            "contracts",
            "publish",
            "--version",
            "c1",
            "--branch",
            "main",
            "contracts/pacts/order-payment.json",
            "--broker-url",
            url,
            "--token",
            WRITE,
        ],
        url,
    )
    .await
    .expect(
        0,
        &["Pact between order (c1) and payment already published with the same content"],
    );
    let stored = reader
        .send(
            reqwest::Method::GET,
            "/pacts/provider/payment/consumer/order/version/c1",
            None,
        )
        .await
        .unwrap();
    assert!(
        stored["metadata"].get("pactRust").is_some(),
        "the text kept is the official client's, the first published: {}",
        stored["metadata"]
    );

    pact_broker(url, &["describe-version", "--pacticipant", "order"])
        .await
        .expect(0, &["c1", "rc"]);
    pact_broker(
        url,
        &[
            "create-environment",
            "--name",
            "staging",
            "--display-name",
            "Staging",
        ],
    )
    .await
    .expect(0, &["Created staging environment in the Pact Broker"]);
    let environments = reader
        .send(reqwest::Method::GET, "/environments", None)
        .await
        .unwrap();
    assert!(
        environments["_embedded"]["environments"][0]["createdAt"].is_string(),
        "{environments}"
    );

    // Payment p1 is in staging and has not verified order c1's pact: no, from both tools.
    pact_broker(
        url,
        &[
            "create-or-update-version",
            "--pacticipant",
            "payment",
            "--version",
            "p1",
            "--branch",
            "main",
        ],
    )
    .await
    .expect(0, &[]);
    pact_broker(
        url,
        &[
            "record-deployment",
            "--pacticipant",
            "payment",
            "--version",
            "p1",
            "--environment",
            "staging",
        ],
    )
    .await
    .expect(
        0,
        &["Recorded deployment of payment version p1 to staging environment"],
    );
    both_say(url, "order", "c1", "staging", false).await.expect(
        1,
        &[
            "no verification result by payment p1 (in staging)",
            "inventory has no version in staging",
        ],
    );

    // The provider's CI verifies with the official verifier through the broker and publishes.
    let payment = reqwest::Url::parse(&stack.service_url("payment").unwrap()).unwrap();
    run(
        &pact,
        &[
            "verifier",
            "--broker-url",
            url,
            "--provider-name",
            "payment",
            "--consumer-version-selectors",
            r#"{"mainBranch": true}"#,
            "--enable-pending",
            "--hostname",
            payment.host_str().unwrap(),
            "--port",
            &payment.port().unwrap().to_string(),
            "--state-change-url",
            &format!("{payment}admin/provider-states"),
            "--publish",
            "--provider-version",
            "p1",
            "--provider-branch",
            "main",
            "--no-colour",
        ],
        url,
    )
    .await
    .expect(0, &["a charge of an order"]);
    both_say(url, "order", "c1", "staging", true)
        .await
        .expect(0, &["verified by payment p1 (in staging)"]);

    // Two pacticipant versions with each other, no environment: yes for the verified pair,
    // no for a payment version that never verified.
    pact_broker(
        url,
        &[
            "create-or-update-version",
            "--pacticipant",
            "payment",
            "--version",
            "p0",
        ],
    )
    .await
    .expect(0, &[]);
    order_c1_with_payment(url, "p1").await.expect(
        0,
        &["Computer says yes", "verified by payment p1 (selected)"],
    );
    order_c1_with_payment(url, "p0").await.expect(
        1,
        &["Computer says no", "no verification result by payment p0"],
    );

    // `--to TAG`: against the latest payment version tagged prod.
    pact_broker(
        url,
        &[
            "create-version-tag",
            "--pacticipant",
            "payment",
            "--version",
            "p1",
            "--tag",
            "prod",
        ],
    )
    .await
    .expect(0, &["Success"]);
    pact_broker(
        url,
        &[
            "can-i-deploy",
            "--pacticipant",
            "order",
            "--version",
            "c1",
            "--to",
            "prod",
        ],
    )
    .await
    .expect(0, &["Computer says yes", "(latest tagged prod)"]);

    // A release of order c1 in staging blocks a payment version that never verified it; once
    // its support has ended, it does not.
    pact_broker(
        url,
        &[
            "record-release",
            "--pacticipant",
            "order",
            "--version",
            "c1",
            "--environment",
            "staging",
        ],
    )
    .await
    .expect(
        0,
        &["Recorded release of order version c1 to staging environment"],
    );
    both_say(url, "payment", "p0", "staging", false)
        .await
        .expect(1, &["pact order c1 (in staging) -> payment"]);
    pact_broker(
        url,
        &[
            "record-support-ended",
            "--pacticipant",
            "order",
            "--version",
            "c1",
            "--environment",
            "staging",
        ],
    )
    .await
    .expect(0, &["Recorded support ended"]);
    both_say(url, "payment", "p0", "staging", true).await;

    // Payment p0 replaces p1 in staging: order c1 may not follow; once payment is undeployed
    // from staging, can-i-deploy judges without it.
    pact_broker(
        url,
        &[
            "record-deployment",
            "--pacticipant",
            "payment",
            "--version",
            "p0",
            "--environment",
            "staging",
        ],
    )
    .await
    .expect(0, &[]);
    both_say(url, "order", "c1", "staging", false)
        .await
        .expect(1, &["no verification result by payment p0 (in staging)"]);
    pact_broker(
        url,
        &[
            "describe-version",
            "--pacticipant",
            "payment",
            "--environment",
            "staging",
        ],
    )
    .await
    .expect(0, &["p0", "Deployed"]);
    pact_broker(
        url,
        &[
            "record-undeployment",
            "--pacticipant",
            "payment",
            "--environment",
            "staging",
        ],
    )
    .await
    .expect(0, &["Undeployed payment from staging environment"]);
    let after = pact_broker(
        url,
        &[
            "describe-version",
            "--pacticipant",
            "payment",
            "--environment",
            "staging",
            "--output",
            "json",
        ],
    )
    .await;
    after.expect(0, &[]);
    let deployed: Value = serde_json::from_str(after.text.trim()).unwrap();
    assert_eq!(
        deployed,
        serde_json::json!([]),
        "nothing of payment in staging"
    );
    both_say(url, "order", "c1", "staging", true)
        .await
        .expect(0, &["payment has no version in staging"]);

    // Listing and describing.
    pact_broker(url, &["list-latest-pact-versions"])
        .await
        .expect(0, &["\"order\"", "\"c1\"", "\"payment\"", "\"inventory\""]);
    pact_broker(
        url,
        &[
            "create-or-update-pacticipant",
            "--name",
            "order",
            "--display-name",
            "Order service",
            "--repository-url",
            "https://git.invalid/order",
        ],
    )
    .await
    .expect(0, &[]);
    pact_broker(url, &["list-pacticipants"])
        .await
        .expect(0, &["\"order\"", "\"Order service\"", "\"payment\""]);
    pact_broker(url, &["describe-pacticipant", "--name", "order"])
        .await
        .expect(
            0,
            &[
                "Display Name: Order service",
                "Repo URL: https://git.invalid/order",
                "Main Branch: main",
            ],
        );

    broker.stop().await;
    stack.shutdown().await.unwrap();
}
