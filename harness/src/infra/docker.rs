//! The Docker engine as the infrastructure module needs it: connect, make sure an image is
//! there, run labelled containers on a run network, read their logs, remove them, and sweep
//! what a crashed run left behind.
//!
//! Why bollard and not testcontainers: testcontainers-rs fixes the Docker API version its
//! bollard client asks for (1.53 in 0.28; 1.43 or newer in every release since 0.15) and never
//! negotiates it down, so it cannot talk to the engine Debian ships (20.10, API 1.41), which is
//! the engine `ci/setup` installs where none runs. This module negotiates the version with the
//! engine and otherwise does what testcontainers would: label, map ports on 127.0.0.1 only,
//! remove on drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, DownloadFromContainerOptions,
    ListContainersOptions, ListNetworksOptions, LogsOptions, RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::error::InfraError;

/// Every container and network faultline creates carries this label (value `true`).
pub const LABEL_MANAGED: &str = "io.faultline.managed";
/// The run a container or network belongs to (a random id per [`super::Infra`]).
pub const LABEL_RUN: &str = "io.faultline.run";
/// The process that created it; when that process is gone the resource is a leftover.
pub const LABEL_PID: &str = "io.faultline.pid";
/// The host the creating process ran on, so a shared engine never sweeps another host's runs.
pub const LABEL_HOST: &str = "io.faultline.host";

/// How long an image pull may take before it counts as "not pullable".
const PULL_TIMEOUT: Duration = Duration::from_secs(120);

/// A connected, version-negotiated Docker engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

/// What to run: the part of a container definition the stack varies.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Container name, also its DNS alias on the run network.
    pub name: String,
    pub image: String,
    pub env: Vec<(String, String)>,
    pub cmd: Option<Vec<String>>,
    /// Container ports (TCP) mapped to random ports on 127.0.0.1.
    pub ports: Vec<u16>,
}

/// A started container: its id and the host ports its container ports were mapped to.
#[derive(Debug, Clone)]
pub struct RunningContainer {
    pub id: String,
    pub name: String,
    pub host_ports: HashMap<u16, u16>,
}

impl Engine {
    /// Connects to the engine named by `DOCKER_HOST` (or the local socket) and agrees on an
    /// API version both sides speak.
    pub async fn connect() -> Result<Self, InfraError> {
        let unreachable = |source: bollard::errors::Error| InfraError::DockerUnreachable {
            docker_host: docker_host(),
            source,
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        // Ping first: negotiate_version on a dead socket reports a less helpful error.
        docker.ping().await.map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Self { docker })
    }

    /// Makes sure `image` is available locally, pulling it when it is not. `variable` is the
    /// environment variable the image name came from, so the error can say what to change.
    pub async fn ensure_image(
        &self,
        image: &str,
        variable: &'static str,
    ) -> Result<(), InfraError> {
        if self.docker.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        let unavailable = |reason: String| InfraError::ImageUnavailable {
            variable,
            image: image.to_string(),
            reason,
        };
        let (from_image, tag) = split_image(image);
        let options = CreateImageOptions {
            from_image: Some(from_image.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let pull = async {
            let mut progress = self.docker.create_image(Some(options), None, None);
            while let Some(step) = progress.next().await {
                step.map_err(|e| {
                    unavailable(format!("not present locally, and pulling failed: {e}"))
                })?;
            }
            Ok::<(), InfraError>(())
        };
        match tokio::time::timeout(PULL_TIMEOUT, pull).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(unavailable(format!(
                    "not present locally, and pulling did not finish within {PULL_TIMEOUT:?}"
                )))
            }
        }
        // Some engines report success for a pull that produced nothing usable.
        self.docker
            .inspect_image(image)
            .await
            .map(|_| ())
            .map_err(|e| unavailable(format!("pull finished but the image is still missing: {e}")))
    }

    /// Creates a bridge network carrying `labels`.
    pub async fn create_network(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), InfraError> {
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map_err(|source| InfraError::docker(format!("create network {name}"), source))?;
        Ok(())
    }

    /// Creates and starts a container on `network`, reachable there as `spec.name`, with its
    /// ports mapped on 127.0.0.1. The container id is pushed to `created` as soon as it exists,
    /// so the caller's cleanup covers a container whose start then fails.
    pub async fn run(
        &self,
        spec: &ContainerSpec,
        network: &str,
        labels: &HashMap<String, String>,
        created: &mut Vec<String>,
    ) -> Result<RunningContainer, InfraError> {
        let port_key = |port: u16| format!("{port}/tcp");
        let port_bindings = spec
            .ports
            .iter()
            .map(|&port| {
                let binding = PortBinding {
                    host_ip: Some("127.0.0.1".to_string()),
                    host_port: Some(String::new()),
                };
                (port_key(port), Some(vec![binding]))
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            hostname: Some(spec.name.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: spec.cmd.clone(),
            labels: Some(labels.clone()),
            exposed_ports: Some(spec.ports.iter().map(|&p| port_key(p)).collect()),
            host_config: Some(HostConfig {
                network_mode: Some(network.to_string()),
                port_bindings: Some(port_bindings),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.to_string(),
                    EndpointSettings {
                        aliases: Some(vec![spec.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(format!("{network}-{}", spec.name)),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|source| {
                InfraError::docker(format!("create container {}", spec.name), source)
            })?
            .id;
        created.push(id.clone());
        self.docker
            .start_container(&id, None)
            .await
            .map_err(|source| {
                InfraError::docker(format!("start container {}", spec.name), source)
            })?;

        let inspect = self
            .docker
            .inspect_container(&id, None)
            .await
            .map_err(|source| {
                InfraError::docker(format!("inspect container {}", spec.name), source)
            })?;
        let mapped = inspect
            .network_settings
            .and_then(|settings| settings.ports)
            .unwrap_or_default();
        let mut host_ports = HashMap::new();
        for &port in &spec.ports {
            let host_port = mapped
                .get(&port_key(port))
                .and_then(|bindings| bindings.as_ref())
                .and_then(|bindings| bindings.iter().find_map(|b| b.host_port.as_deref()))
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| {
                    InfraError::Config(format!(
                        "container {} started but the engine reported no host port for {port}/tcp",
                        spec.name
                    ))
                })?;
            host_ports.insert(port, host_port);
        }
        Ok(RunningContainer {
            id,
            name: spec.name.clone(),
            host_ports,
        })
    }

    /// Copies the file at `path` inside `image` to `dir`, named after the image's id, and
    /// returns where it landed; a copy already there is reused.
    pub async fn extract_file(
        &self,
        image: &str,
        path: &str,
        dir: &Path,
    ) -> Result<PathBuf, InfraError> {
        let id = self
            .docker
            .inspect_image(image)
            .await
            .map_err(|source| InfraError::docker(format!("inspect image {image}"), source))?
            .id
            .unwrap_or_default();
        let short = id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>();
        let file_name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let target = dir.join(format!("{file_name}-{short}"));
        if target.is_file() {
            return Ok(target);
        }
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(run_labels("extract")),
            ..Default::default()
        };
        let container = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(|source| {
                InfraError::docker(
                    format!("create a container of {image} to copy {path}"),
                    source,
                )
            })?
            .id;
        let mut archive = Vec::new();
        let mut stream = self.docker.download_from_container(
            &container,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(source) => {
                    failure = Some(InfraError::docker(
                        format!("copy {path} out of {image}"),
                        source,
                    ));
                    break;
                }
            }
        }
        self.remove(&[container], None).await?;
        if let Some(failure) = failure {
            return Err(failure);
        }
        let content = first_file_in_tar(&archive).ok_or_else(|| {
            InfraError::Config(format!(
                "{path} in {image}: the engine's archive holds no file"
            ))
        })?;
        std::fs::create_dir_all(dir)
            .map_err(|e| InfraError::Config(format!("creating {}: {e}", dir.display())))?;
        let partial = target.with_extension("partial");
        std::fs::write(&partial, content)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
            })
            .and_then(|()| std::fs::rename(&partial, &target))
            .map_err(|e| InfraError::Config(format!("writing {}: {e}", target.display())))?;
        Ok(target)
    }

    /// Whether the container is still running, and its exit code when it is not.
    pub async fn state(&self, id: &str) -> Result<(bool, Option<i64>), InfraError> {
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|source| InfraError::docker(format!("inspect container {id}"), source))?;
        let state = inspect.state.unwrap_or_default();
        Ok((state.running.unwrap_or(false), state.exit_code))
    }

    /// Freezes every process of the container (cgroup freezer); [`Self::unpause_container`]
    /// thaws it.
    pub async fn pause_container(&self, id: &str) -> Result<(), InfraError> {
        self.docker
            .pause_container(id)
            .await
            .map_err(|source| InfraError::docker(format!("pause container {id}"), source))
    }

    /// Thaws a container frozen by [`Self::pause_container`].
    pub async fn unpause_container(&self, id: &str) -> Result<(), InfraError> {
        self.docker
            .unpause_container(id)
            .await
            .map_err(|source| InfraError::docker(format!("unpause container {id}"), source))
    }

    /// Stops the container (SIGTERM, then SIGKILL after the engine's grace period).
    pub async fn stop_container(&self, id: &str) -> Result<(), InfraError> {
        self.docker
            .stop_container(id, None::<bollard::query_parameters::StopContainerOptions>)
            .await
            .map_err(|source| InfraError::docker(format!("stop container {id}"), source))
    }

    /// Starts a stopped container again.
    pub async fn start_container(&self, id: &str) -> Result<(), InfraError> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(|source| InfraError::docker(format!("start container {id}"), source))
    }

    /// The container's stdout and stderr so far (the last `tail` lines, or all).
    pub async fn logs(&self, id: &str, tail: Option<usize>) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(output) => text.push_str(&String::from_utf8_lossy(&output.into_bytes())),
                Err(e) => {
                    text.push_str(&format!("\n[log stream ended: {e}]\n"));
                    break;
                }
            }
        }
        text
    }

    /// Removes containers (forcefully, with their anonymous volumes) and then the network.
    /// Every removal is attempted; the first error is returned. A container or network that is
    /// already gone is not an error.
    pub async fn remove(
        &self,
        containers: &[String],
        network: Option<&str>,
    ) -> Result<(), InfraError> {
        let mut first_error = None;
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let removals = containers
            .iter()
            .map(|id| self.docker.remove_container(id, Some(options.clone())));
        for (id, result) in containers
            .iter()
            .zip(futures_util::future::join_all(removals).await)
        {
            if let Err(source) = result {
                if !is_not_found(&source) && first_error.is_none() {
                    first_error =
                        Some(InfraError::docker(format!("remove container {id}"), source));
                }
            }
        }
        if let Some(network) = network {
            if let Err(source) = self.docker.remove_network(network).await {
                if !is_not_found(&source) && first_error.is_none() {
                    first_error = Some(InfraError::docker(
                        format!("remove network {network}"),
                        source,
                    ));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Ids of the containers and names of the networks carrying `label=value`.
    pub async fn labelled(
        &self,
        label: &str,
        value: &str,
    ) -> Result<(Vec<String>, Vec<String>), InfraError> {
        let (containers, networks) = self.list_labelled(&format!("{label}={value}")).await?;
        Ok((
            containers.into_iter().map(|(id, _)| id).collect(),
            networks.into_iter().map(|(name, _)| name).collect(),
        ))
    }

    /// Containers (id, labels) and networks (name, labels) matching a label filter.
    async fn list_labelled(&self, filter: &str) -> Result<(Labelled, Labelled), InfraError> {
        let filters = HashMap::from([("label".to_string(), vec![filter.to_string()])]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .map_err(|source| InfraError::docker("list containers", source))?
            .into_iter()
            .filter_map(|c| Some((c.id?, c.labels.unwrap_or_default())))
            .collect();
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|source| InfraError::docker("list networks", source))?
            .into_iter()
            .filter_map(|n| Some((n.name?, n.labels.unwrap_or_default())))
            .collect();
        Ok((containers, networks))
    }

    /// Removes what earlier runs on this host left behind: every faultline container and
    /// network whose creating process no longer exists. Runs of live processes (a parallel
    /// test binary, say) are left alone. Returns how many containers and networks went.
    pub async fn sweep_leftovers(&self) -> Result<Sweep, InfraError> {
        let host = hostname();
        let is_leftover = |labels: &HashMap<String, String>| {
            let same_host = labels.get(LABEL_HOST).is_some_and(|h| *h == host);
            let pid_alive = labels
                .get(LABEL_PID)
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(process_alive);
            same_host && !pid_alive
        };
        let (containers, networks) = self.list_labelled(&format!("{LABEL_MANAGED}=true")).await?;
        let leftovers = |found: Labelled| -> Vec<String> {
            found
                .into_iter()
                .filter(|(_, labels)| is_leftover(labels))
                .map(|(id, _)| id)
                .collect()
        };
        let (containers, networks) = (leftovers(containers), leftovers(networks));
        self.remove(&containers, None).await?;
        for network in &networks {
            self.remove(&[], Some(network)).await?;
        }
        Ok(Sweep {
            containers: containers.len(),
            networks: networks.len(),
        })
    }
}

/// Resources found by label: (id or name, labels).
type Labelled = Vec<(String, HashMap<String, String>)>;

/// What [`Engine::sweep_leftovers`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    pub containers: usize,
    pub networks: usize,
}

/// The labels for a resource of run `run_id` created by this process.
pub fn run_labels(run_id: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_RUN.to_string(), run_id.to_string()),
        (LABEL_PID.to_string(), std::process::id().to_string()),
        (LABEL_HOST.to_string(), hostname()),
    ])
}

/// The engine address as the user configured it, for error messages.
pub fn docker_host() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => format!("{host} (from DOCKER_HOST)"),
        _ => "unix:///var/run/docker.sock (the default; DOCKER_HOST is unset)".to_string(),
    }
}

/// The content of the first regular file in a tar archive (ustar: 512-byte headers, the size in
/// octal at bytes 124..136, the type flag at 156).
fn first_file_in_tar(archive: &[u8]) -> Option<&[u8]> {
    let mut offset = 0;
    while offset + 512 <= archive.len() {
        let header = &archive[offset..offset + 512];
        if header.iter().all(|&b| b == 0) {
            return None;
        }
        let size_field = std::str::from_utf8(&header[124..136]).ok()?;
        let size =
            usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                .ok()?;
        let data = offset + 512;
        if matches!(header[156], b'0' | b'\0') {
            return archive.get(data..data + size);
        }
        offset = data + size.div_ceil(512) * 512;
    }
    None
}

fn split_image(image: &str) -> (&str, &str) {
    // A colon after the last slash separates the tag; one before it belongs to a registry port.
    match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => (&image[..colon], &image[colon + 1..]),
        _ => (image, "latest"),
    }
}

fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_into_repository_and_tag() {
        assert_eq!(split_image("postgres"), ("postgres", "latest"));
        assert_eq!(split_image("apache/kafka:4.1.1"), ("apache/kafka", "4.1.1"));
        assert_eq!(
            split_image("localhost:5000/toxiproxy"),
            ("localhost:5000/toxiproxy", "latest")
        );
        assert_eq!(
            split_image("ghcr.io/shopify/toxiproxy:2.12.0"),
            ("ghcr.io/shopify/toxiproxy", "2.12.0")
        );
    }

    #[test]
    fn labels_name_this_process_and_run() {
        let labels = run_labels("abc");
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_RUN], "abc");
        assert_eq!(labels[LABEL_PID], std::process::id().to_string());
        assert!(process_alive(std::process::id()));
    }
}
