//! faultline's verifier reads and verifies a V4 pact written by the official Rust consumer
//! library (`pact_consumer`), against the real payment service on a real Postgres.
//!
//! The consumer side here is pact_consumer's own: its builder, its mock server, its pact file.
//! Needs the images `ci/setup` builds (found by themselves in `.faultline/images.env`).

use std::time::Duration;

use faultline_contracts::files::read_pact;
use faultline_contracts::verify::{Outcome, ProviderTarget, Verifier};
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_kit::config::HttpDatabaseConfig;
use pact_consumer::prelude::*;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const EXAMPLE_ORDER: &str = "6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11";

#[tokio::test]
async fn faultline_verifies_a_v4_pact_written_by_pact_consumer() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("faultline-pact-consumer-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // The consumer test, written with pact_consumer: a reader of an order's money.
    let mut builder = PactBuilder::new_v4("money-reader", "payment");
    builder
        .with_output_dir(&dir)
        .interaction("the money of a charged order", "", |mut i| {
            i.given_with_params("an order has been charged", &json!({"amount_cents": 1500}));
            i.request.get().path_from_provider_state(
                "/payments/orders/${order_id}",
                format!("/payments/orders/{EXAMPLE_ORDER}"),
            );
            i.response.ok().json_body(json_pattern!({
                "order_id": term!("^[0-9a-f-]{36}$", EXAMPLE_ORDER),
                "charged_cents": like!(1500),
                "net_cents": like!(1500),
                "charges": like!(1),
                "voided": like!(false),
            }));
            i
        });
    let mock = builder.start_mock_server(None, None);
    let answer: Value = reqwest::get(mock.path(&format!("/payments/orders/{EXAMPLE_ORDER}")))
        .await?
        .json()
        .await?;
    assert_eq!(answer["charged_cents"], 1500);
    drop(mock); // verifies the mock's expectations and writes the pact file

    let file = dir.join("money-reader-payment.json");
    let text = std::fs::read_to_string(&file)?;
    let written: Value = serde_json::from_str(&text)?;
    assert_eq!(written["metadata"]["pactSpecification"]["version"], "4.0");
    let pact = read_pact(&file)?;

    // The provider: the real payment service in test mode, on real Postgres.
    let infra = Infra::start(InfraConfig {
        kafka: false,
        ..InfraConfig::with_clients(["payment"])
    })
    .await?;
    let config = HttpDatabaseConfig {
        test_mode: true,
        ..HttpDatabaseConfig::local(infra.postgres_url("payment")?)
    };
    let server = faultline_payment::bind(&config).await?;
    let base = format!("http://{}", server.local_addr());
    let stop = CancellationToken::new();
    let serving = tokio::spawn(server.run(stop.clone()));

    let target = ProviderTarget {
        request_timeout: Duration::from_secs(10),
        ..ProviderTarget::http("payment", &base)
    };
    let result = Verifier::new()
        .verify_pact(&pact, &file.display().to_string(), &target)
        .await;
    stop.cancel();
    serving.await??;
    infra.shutdown().await?;
    std::fs::remove_dir_all(&dir)?;

    assert_eq!(result.interactions.len(), 1);
    assert_eq!(
        result.interactions[0].outcome,
        Outcome::Passed,
        "{result:#?}"
    );
    Ok(())
}
