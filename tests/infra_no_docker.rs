//! Without a reachable Docker engine the infrastructure refuses to start with an error that
//! says where it looked and what to do. A test binary of its own: it changes DOCKER_HOST for
//! the whole process.

use faultline_harness::infra::{Infra, InfraConfig, InfraError};

#[tokio::test]
async fn an_unreachable_docker_engine_names_docker_host_and_ci_setup() {
    let socket =
        std::env::temp_dir().join(format!("faultline-no-engine-{}.sock", std::process::id()));
    // SAFETY of the test: this binary has a single test, so nothing reads the environment concurrently.
    std::env::set_var("DOCKER_HOST", format!("unix://{}", socket.display()));
    std::env::remove_var("FAULTLINE_INFRA");

    let error = Infra::start(InfraConfig::toxiproxy_only())
        .await
        .err()
        .expect("no engine, no stack");
    assert!(
        matches!(error, InfraError::DockerUnreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("DOCKER_HOST"), "{message}");
    assert!(message.contains(&socket.display().to_string()), "{message}");
    assert!(message.contains("ci/setup"), "{message}");
}
