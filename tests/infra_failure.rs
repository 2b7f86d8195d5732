//! A start that fails half-way leaves nothing behind. A test binary of its own, so that
//! "every container this process created is gone" is not disturbed by parallel tests.

use faultline_harness::infra::docker::{Engine, LABEL_PID};
use faultline_harness::infra::{Infra, InfraConfig, InfraError};
use faultline_harness::stack::{Stack, StackConfig, StackError};
use faultline_harness::system::System;

#[tokio::test]
async fn a_server_exiting_during_start_up_fails_the_start_and_everything_is_removed(
) -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
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

/// Both tests look at everything this process created, so they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A service whose image cannot be had is refused before the infrastructure starts (not after
/// minutes of starting servers): the error names the service's `image` field, and nothing this
/// process created is left.
#[tokio::test]
async fn a_missing_service_image_is_named_before_anything_starts() -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("faultline-no-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("faultline.toml");
    // A shared container that never becomes ready: had the infrastructure started before the
    // service image was checked, the start would fail on it instead.
    let present = InfraConfig::toxiproxy_only().images.toxiproxy.name;
    std::fs::write(
        &file,
        format!(
            r#"
[containers.never]
image = "{present}"
port = 8474
ready = {{ log = "a line this image never prints" }}
ready_timeout = "60s"
[services.app]
image = "faultline/no-such-image:0"
env = {{ NEVER = "{{address:app->never}}", PORT = "{{port}}" }}
ready = {{ http = "/health" }}
"#
        ),
    )?;
    let system = System::load(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let error = Stack::start(&system, StackConfig::default())
        .await
        .err()
        .expect("an image that is neither present nor pullable cannot start");
    let message = error.to_string();
    assert!(message.contains("services.app.image"), "{message}");
    assert!(
        matches!(error, StackError::Infra(_)),
        "refused by the infrastructure's check, not at the service's start: {error:?}"
    );
    let (containers, networks) = Engine::connect()
        .await?
        .labelled(LABEL_PID, &std::process::id().to_string())
        .await?;
    assert!(
        containers.is_empty() && networks.is_empty(),
        "left: {containers:?} {networks:?}"
    );
    Ok(())
}
