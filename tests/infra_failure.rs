//! A start that fails half-way leaves nothing behind. A test binary of its own, so that
//! "every container this process created is gone" is not disturbed by parallel tests.

use faultline_harness::infra::docker::{Engine, LABEL_PID};
use faultline_harness::infra::{Infra, InfraConfig, InfraError};

#[tokio::test]
async fn a_server_exiting_during_start_up_fails_the_start_and_everything_is_removed(
) -> anyhow::Result<()> {
    let mut config = InfraConfig::with_clients(["a"]);
    // The Postgres image as "Kafka": without POSTGRES_PASSWORD its entrypoint refuses to start.
    config.images.kafka = config.images.postgres.clone();
    config.images.kafka.variable = "FAULTLINE_KAFKA_IMAGE";

    let error = Infra::start(config)
        .await
        .err()
        .expect("a Kafka that exits cannot be ready");
    match &error {
        InfraError::Exited {
            service, log_tail, ..
        } => {
            assert_eq!(service, "kafka");
            assert!(
                !log_tail.trim().is_empty(),
                "the error carries the container's log tail"
            );
        }
        other => panic!("expected Exited, got {other:?}"),
    }

    let (containers, networks) = Engine::connect()
        .await?
        .labelled(LABEL_PID, &std::process::id().to_string())
        .await?;
    assert!(
        containers.is_empty(),
        "containers left after a failed start: {containers:?}"
    );
    assert!(
        networks.is_empty(),
        "networks left after a failed start: {networks:?}"
    );
    Ok(())
}
