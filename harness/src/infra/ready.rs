//! Waiting for servers to be ready: Postgres answering, Kafka serving metadata, a container's
//! own readiness check, each polled within a bound.

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use sqlx::Connection;

use super::docker::RunningContainer;
use super::{InfraError, POLL_INTERVAL};

pub(super) async fn postgres_ready(url: &str) -> Result<(), String> {
    let mut connection = sqlx::postgres::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    let _ = connection.close().await;
    if one == 1 {
        Ok(())
    } else {
        Err(format!("SELECT 1 returned {one}"))
    }
}

pub(super) async fn kafka_ready(bootstrap: String) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("log_level", "3")
            .create()
            .map_err(|e| e.to_string())?;
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(3))
            .map_err(|e| e.to_string())?;
        if metadata.brokers().is_empty() {
            Err("metadata lists no broker".to_string())
        } else {
            Ok(())
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Polls `check` until it succeeds. With a container, fails early when it exits, and with its
/// log tail when `timeout` passes; without one (external servers) just with the last error.
/// Whether a further server answers as its readiness says, through its published port.
pub(super) async fn server_ready(
    ready: &crate::system::Readiness,
    http: &reqwest::Client,
    container: &RunningContainer,
    address: &str,
) -> Result<(), String> {
    use crate::system::Readiness;
    use tokio::io::AsyncReadExt;
    match ready {
        Readiness::Tcp => {
            let mut stream = tokio::net::TcpStream::connect(address)
                .await
                .map_err(|e| format!("connecting to {address}: {e}"))?;
            // The engine's port forwarder accepts before anything listens behind it, then
            // closes: a connection still open after a moment reached the server.
            let mut byte = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await {
                Err(_) | Ok(Ok(1..)) => Ok(()),
                Ok(Ok(0)) => Err(format!("{address} closed the connection at once")),
                Ok(Err(e)) => Err(format!("{address}: {e}")),
            }
        }
        Readiness::Http { path } => http_ready(http, &format!("http://{address}{path}")).await,
        Readiness::Log { text } => {
            if container.logs(None).await.contains(text.as_str()) {
                Ok(())
            } else {
                Err(format!("its output does not say {text:?} yet"))
            }
        }
    }
}

/// Whether `GET url` answers 2xx within 2 s; why not, when it does not.
pub(crate) async fn http_ready(http: &reqwest::Client, url: &str) -> Result<(), String> {
    match http.get(url).timeout(Duration::from_secs(2)).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("{url} answered {}", response.status())),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

pub(super) async fn await_ready<F, Fut>(
    container: &RunningContainer,
    timeout: Duration,
    check: F,
) -> Result<(), InfraError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    poll_ready(Some(container), &container.name, timeout, check).await
}

pub(super) async fn poll_until<F, Fut>(timeout: Duration, service: &str, check: F) -> Result<(), InfraError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    poll_ready(None, service, timeout, check).await
}

pub(super) async fn poll_ready<F, Fut>(
    container: Option<&RunningContainer>,
    service: &str,
    timeout: Duration,
    mut check: F,
) -> Result<(), InfraError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last_error = match check().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Some(container) = container {
            let (running, exit_code) = container.state().await?;
            if !running {
                return Err(InfraError::Exited {
                    service: service.to_string(),
                    exit_code,
                    log_tail: container.logs(Some(40)).await,
                });
            }
        }
        if Instant::now() >= deadline {
            let log_tail = match container {
                Some(container) => container.logs(Some(40)).await,
                None => "(external server: no container log)".to_string(),
            };
            return Err(InfraError::NotReady {
                service: service.to_string(),
                timeout,
                last_error,
                log_tail,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
