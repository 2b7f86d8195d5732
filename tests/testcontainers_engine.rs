//! testcontainers-rs on the Docker engine this machine runs, tried the way a new user would: a
//! container of the locally built Postgres image on a named network, its port published, an
//! exec in it, container and network removed.
//!
//! testcontainers builds its bollard client with a fixed API version
//! (`bollard::API_DEFAULT_VERSION`, 1.53) and never negotiates it; Debian's docker.io 20.10
//! speaks at most 1.41 and refuses a request that names a newer version ("client version 1.53 is
//! too new"). The round trip still works, because the requests bollard sends name no version
//! (see `harness/src/infra/docker.rs`); this test is what says so, and fails if a release of
//! either crate changes that.
//!
//! Needs a Docker engine and the images `ci/setup` builds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use faultline_harness::infra::Images;
use testcontainers::bollard::query_parameters::{
    InspectContainerOptions, InspectNetworkOptions, ListContainersOptions,
};
use testcontainers::bollard::{Docker, API_DEFAULT_VERSION};
use testcontainers::core::{ExecCommand, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

const PROBE_LABEL: &str = "io.faultline.testcontainers-probe";

/// The engine's newest API version, as (major, minor), asked with a negotiated client.
async fn engine_api_version(docker: &Docker) -> anyhow::Result<(usize, usize)> {
    let version = docker.version().await?;
    let api = version
        .api_version
        .ok_or_else(|| anyhow::anyhow!("the engine reports no API version"))?;
    let (major, minor) = api
        .split_once('.')
        .ok_or_else(|| anyhow::anyhow!("API version `{api}` is not MAJOR.MINOR"))?;
    Ok((major.parse()?, minor.parse()?))
}

/// Containers still carrying this probe's label.
async fn left_behind(docker: &Docker, probe: &str) -> anyhow::Result<usize> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{PROBE_LABEL}={probe}")])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    Ok(containers.len())
}

#[tokio::test]
async fn testcontainers_starts_on_a_named_network_publishes_execs_and_removes_on_this_engine(
) -> anyhow::Result<()> {
    let docker = Docker::connect_with_defaults()?.negotiate_version().await?;
    let engine = engine_api_version(&docker).await?;
    let fixed = (
        API_DEFAULT_VERSION.major_version,
        API_DEFAULT_VERSION.minor_version,
    );
    let context = format!("engine API {engine:?}, testcontainers' fixed API {fixed:?}");

    let image = Images::from_env().postgres.name;
    let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), "latest"));
    let probe = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let network = format!("faultline-tc-probe-{probe}");
    let container = GenericImage::new(name, tag)
        .with_wait_for(WaitFor::message_on_stderr(
            "database system is ready to accept connections",
        ))
        .with_network(&network)
        .with_mapped_port(0, 5432.tcp())
        .with_env_var("POSTGRES_PASSWORD", "probe")
        .with_label(PROBE_LABEL, &probe)
        .start()
        .await
        .map_err(|e| anyhow::anyhow!("start ({context}): {e}"))?;

    let inspect = docker
        .inspect_container(container.id(), None::<InspectContainerOptions>)
        .await?;
    let networks = inspect
        .network_settings
        .and_then(|settings| settings.networks)
        .unwrap_or_default();
    assert!(
        networks.contains_key(&network),
        "on network {network}: {networks:?}"
    );
    let port = container.get_host_port_ipv4(5432.tcp()).await?;
    assert_ne!(port, 0, "a published host port");
    let mut exec = container
        .exec(ExecCommand::new(["pg_isready", "-h", "127.0.0.1"]))
        .await
        .map_err(|e| anyhow::anyhow!("exec ({context}): {e}"))?;
    let out = String::from_utf8_lossy(&exec.stdout_to_vec().await?).to_string();
    assert!(out.contains("accepting connections"), "pg_isready: {out}");
    assert_eq!(exec.exit_code().await?, Some(0), "pg_isready: {out}");

    container.rm().await?;
    assert_eq!(left_behind(&docker, &probe).await?, 0, "container removed");
    // testcontainers removes the network it created once its last container is gone, on a task
    // of its own: awaited, not assumed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while docker
        .inspect_network(&network, None::<InspectNetworkOptions>)
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "network {network} still exists 30 s after its last container went"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
