//! The Docker engine as the infrastructure module needs it: connect, make sure an image is
//! there, run labelled containers on a run network, read their logs, fault them, remove them,
//! and sweep what a crashed run left behind.
//!
//! Containers are testcontainers': each is a [`GenericImage`] turned into a `ContainerRequest`
//! (image, environment, command, hostname, labels, mapped ports, the run network) and started
//! with [`AsyncRunner`]; its host ports, logs, pause/unpause/stop/start, copying a file out and
//! removal — on [`super::Infra::shutdown`] and on drop — go through the [`ContainerAsync`] it
//! hands back. Readiness is not testcontainers' `WaitFor`: the caller polls a real request
//! (see [`super::Infra::start`]).
//!
//! What testcontainers does not do is added here, with the bollard client (the same bollard
//! 0.21 testcontainers is built on):
//!
//! - **Labels on networks.** testcontainers creates networks without labels, so the run network
//!   is created here, labelled, and handed to testcontainers by name; it uses an existing
//!   network as it is and leaves its removal to its creator.
//! - **Finding by label**: the sweep of leftovers of crashed runs, the removal of everything of a
//!   run or of this process (an interrupt), and of a container whose start failed half-way —
//!   testcontainers does not remove a container when starting it fails.
//! - **Ports on 127.0.0.1 only.** testcontainers binds mapped ports on every interface, and
//!   publishes every port an image declares when none is mapped; a host-config modifier
//!   ([`loopback_only`]) rewrites both before the container is created.
//! - **Whether an image is present locally**, so a missing one is reported with the variable it
//!   came from.
//! - **In-network names.** testcontainers sets no network aliases, so on the run network a
//!   container is reached by its container name ([`in_network_name`]); its hostname is the
//!   short name, for what it says about itself.
//!
//! The Docker API version: testcontainers builds its client with bollard's fixed version
//! (1.53 in 0.28) and never negotiates it, which an engine older than that (Debian's docker.io
//! 20.10 speaks 1.41) would refuse. It does not come to that, because bollard joins each
//! absolute request path onto its versioned base URL, which replaces the versioned path, so
//! requests carry no version prefix and the engine answers in its own newest version.
//! `tests/testcontainers_engine.rs` shows the round trip (start on a named network, published
//! port, exec, removal of container and network) on the engine `ci/setup` installs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{HostConfig, NetworkCreateRequest};
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use bollard::Docker;
use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::AsyncReadExt;

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

/// What to run: the part of a container definition a stack varies. Nothing in it is specific to
/// the servers faultline starts itself, so an image a system description names runs the same way.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// The short name: the container's hostname, and part of its name on the run network
    /// (see [`in_network_name`]).
    pub name: String,
    pub image: String,
    pub env: Vec<(String, String)>,
    pub cmd: Option<Vec<String>>,
    /// Container ports (TCP) mapped to random ports on 127.0.0.1.
    pub ports: Vec<u16>,
    /// Run on the host's network instead of the run network: the container listens and
    /// connects exactly as a host process would (no mapped ports, no hostname of its own).
    pub host_network: bool,
    /// Host paths the container sees: `(host, container, read_only)`.
    pub mounts: Vec<(PathBuf, String, bool)>,
}

/// A started container: its ids, the host ports its container ports were mapped to, and the
/// testcontainers handle that faults, reads and removes it. Dropping it removes the container.
pub struct RunningContainer {
    pub id: String,
    pub name: String,
    /// The name other containers on the run network reach it by.
    pub network_name: String,
    pub host_ports: HashMap<u16, u16>,
    container: ContainerAsync<GenericImage>,
    docker: Docker,
}

impl std::fmt::Debug for RunningContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningContainer")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("network_name", &self.network_name)
            .field("host_ports", &self.host_ports)
            .finish()
    }
}

impl RunningContainer {
    /// Whether the container is still running, and its exit code when it is not.
    pub async fn state(&self) -> Result<(bool, Option<i64>), InfraError> {
        let exit_code = self
            .container
            .exit_code()
            .await
            .map_err(|source| tc_error(format!("inspect container {}", self.name), source))?;
        Ok((exit_code.is_none(), exit_code))
    }

    /// Freezes every process of the container (cgroup freezer); [`Self::unpause`] thaws it.
    pub async fn pause(&self) -> Result<(), InfraError> {
        self.act("pause", self.container.pause()).await
    }

    /// Sends `signal` (such as `SIGKILL`) to the container's main process.
    pub async fn signal(&self, signal: &str) -> Result<(), InfraError> {
        let options = bollard::query_parameters::KillContainerOptionsBuilder::new()
            .signal(signal)
            .build();
        self.docker
            .kill_container(&self.id, Some(options))
            .await
            .map_err(|source| {
                InfraError::docker(format!("send {signal} to container {}", self.name), source)
            })
    }

    /// Appends everything the container writes, from its start and as it goes, to `log`
    /// (stdout and stderr interleaved as they arrive), until the container stops.
    pub fn follow_logs(&self, log: &Path) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let file = std::sync::Arc::new(std::sync::Mutex::new(file));
        for stream in [self.container.stdout(true), self.container.stderr(true)] {
            let file = file.clone();
            tokio::spawn(async move {
                use std::io::Write;
                use tokio::io::AsyncBufReadExt;
                let mut lines = stream.lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = writeln!(file, "{line}");
                }
            });
        }
        Ok(())
    }

    /// Thaws a container frozen by [`Self::pause`].
    pub async fn unpause(&self) -> Result<(), InfraError> {
        self.act("unpause", self.container.unpause()).await
    }

    /// Stops the container (SIGTERM, then SIGKILL after the engine's grace period).
    pub async fn stop(&self) -> Result<(), InfraError> {
        self.act("stop", self.container.stop()).await
    }

    /// Starts a stopped container again. The engine maps its ports anew: host ports read
    /// before the stop may no longer lead to it, its name on the run network still does.
    pub async fn start(&self) -> Result<(), InfraError> {
        self.act("start", self.container.start()).await
    }

    async fn act(
        &self,
        action: &str,
        call: impl std::future::Future<Output = Result<(), testcontainers::TestcontainersError>>,
    ) -> Result<(), InfraError> {
        call.await
            .map_err(|source| tc_error(format!("{action} container {}", self.name), source))
    }

    /// The container's output so far: stdout, then stderr under a marker line (testcontainers
    /// reads the two streams apart). With `tail`, the last `tail` lines of each.
    pub async fn logs(&self, tail: Option<usize>) -> String {
        let read = |mut stream: std::pin::Pin<Box<dyn tokio::io::AsyncBufRead + Send>>| async move {
            let mut bytes = Vec::new();
            match stream.read_to_end(&mut bytes).await {
                Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) => format!(
                    "{}\n[log stream ended: {e}]\n",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        };
        let (stdout, stderr) = tokio::join!(
            read(self.container.stdout(false)),
            read(self.container.stderr(false))
        );
        let (stdout, stderr) = match tail {
            Some(n) => (last_lines(&stdout, n), last_lines(&stderr, n)),
            None => (stdout, stderr),
        };
        if stderr.is_empty() {
            stdout
        } else {
            format!("{stdout}--- stderr ---\n{stderr}")
        }
    }

    /// The container's output from `since` (whole seconds since the epoch, as the engine
    /// counts them: up to a second before it is included) on: stdout, then stderr under the
    /// same marker line as [`Self::logs`].
    pub async fn logs_since(&self, since: i32) -> String {
        use futures_util::StreamExt;
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .since(since)
            .build();
        let mut stream = self.docker.logs(&self.id, Some(options));
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut ended = None;
        while let Some(frame) = stream.next().await {
            match frame {
                Ok(bollard::container::LogOutput::StdErr { message }) => stderr.extend_from_slice(&message),
                Ok(other) => stdout.extend_from_slice(other.as_ref()),
                Err(e) => {
                    ended = Some(e.to_string());
                    break;
                }
            }
        }
        let mut text = String::from_utf8_lossy(&stdout).into_owned();
        if !stderr.is_empty() {
            text.push_str("--- stderr ---\n");
            text.push_str(&String::from_utf8_lossy(&stderr));
        }
        if let Some(e) = ended {
            text.push_str(&format!("\n[log stream ended: {e}]\n"));
        }
        text
    }

    /// Removes the container (forcefully, with its anonymous volumes).
    pub async fn remove(self) -> Result<(), InfraError> {
        let name = self.name;
        self.container
            .rm()
            .await
            .map_err(|source| tc_error(format!("remove container {name}"), source))
    }
}

/// The last `n` lines of `text`, each ending in a newline.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The name a container started from `spec_name` on `network` has, and is reached by from the
/// other containers there.
pub fn in_network_name(network: &str, spec_name: &str) -> String {
    format!("{network}-{spec_name}")
}

/// Publishes every mapped port on 127.0.0.1 only, at a port the engine picks, and nothing else.
pub fn loopback_only(host_config: &mut HostConfig) {
    host_config.publish_all_ports = Some(false);
    for binding in host_config
        .port_bindings
        .iter_mut()
        .flat_map(|bindings| bindings.values_mut())
        .flatten()
        .flatten()
    {
        binding.host_ip = Some("127.0.0.1".to_string());
        binding.host_port = Some(String::new());
    }
}

fn tc_error(action: String, source: testcontainers::TestcontainersError) -> InfraError {
    InfraError::Testcontainers {
        action,
        source: Box::new(source),
    }
}

fn generic_image(image: &str) -> GenericImage {
    let (repository, tag) = split_image(image);
    GenericImage::new(repository, tag)
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
        match tokio::time::timeout(PULL_TIMEOUT, generic_image(image).pull_image()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(unavailable(format!(
                    "not present locally, and pulling failed: {e}"
                )))
            }
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

    /// Starts a container of `spec` on `network`, carrying `labels`, with its ports mapped on
    /// 127.0.0.1. A container whose start fails after its creation carries the labels, so the
    /// caller's cleanup by label removes it.
    pub async fn run(
        &self,
        spec: &ContainerSpec,
        network: &str,
        labels: &HashMap<String, String>,
    ) -> Result<RunningContainer, InfraError> {
        let network_name = in_network_name(network, &spec.name);
        let mut request = generic_image(&spec.image)
            .with_container_name(&network_name)
            .with_labels(labels.clone())
            .with_host_config_modifier(loopback_only);
        request = if spec.host_network {
            // The engine refuses a hostname on the host's network. A tiny init (the engine's
            // docker-init) is the container's first process, so the program gets signals as a
            // host process would: as process 1 it would ignore a SIGTERM it has no handler for.
            request
                .with_network("host")
                .with_host_config_modifier(|host_config| {
                    loopback_only(host_config);
                    host_config.init = Some(true);
                })
        } else {
            request.with_hostname(&spec.name).with_network(network)
        };
        for (host, container, read_only) in &spec.mounts {
            let mode = if *read_only {
                testcontainers::core::AccessMode::ReadOnly
            } else {
                testcontainers::core::AccessMode::ReadWrite
            };
            request = request.with_mount(
                testcontainers::core::Mount::bind_mount(host.display().to_string(), container)
                    .with_access_mode(mode),
            );
        }
        for (name, value) in &spec.env {
            request = request.with_env_var(name, value);
        }
        if let Some(cmd) = &spec.cmd {
            request = request.with_cmd(cmd);
        }
        for &port in &spec.ports {
            request = request.with_mapped_port(0, port.tcp());
        }
        let container = request
            .start()
            .await
            .map_err(|source| tc_error(format!("start container {}", spec.name), source))?;
        let ports = container
            .ports()
            .await
            .map_err(|source| tc_error(format!("inspect container {}", spec.name), source))?;
        let mut host_ports = HashMap::new();
        for &port in &spec.ports {
            let host_port = ports.map_to_host_port_ipv4(port.tcp()).ok_or_else(|| {
                InfraError::Config(format!(
                    "container {} started but the engine reported no host port for {port}/tcp",
                    spec.name
                ))
            })?;
            host_ports.insert(port, host_port);
        }
        Ok(RunningContainer {
            id: container.id().to_string(),
            name: spec.name.clone(),
            network_name,
            host_ports,
            container,
            docker: self.docker.clone(),
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
        // testcontainers copies files only out of a container it started; this one runs for
        // the copy alone.
        let container = generic_image(image)
            .with_labels(run_labels("extract"))
            .with_host_config_modifier(loopback_only)
            .start()
            .await
            .map_err(|source| {
                tc_error(
                    format!("start a container of {image} to copy {path}"),
                    source,
                )
            })?;
        let copied = container.copy_file_from(path, Vec::new()).await;
        let removed = container.rm().await;
        let content =
            copied.map_err(|source| tc_error(format!("copy {path} out of {image}"), source))?;
        removed.map_err(|source| {
            tc_error(
                format!("remove the container of {image} {path} was copied from"),
                source,
            )
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
                if !is_gone_or_going(&source) && first_error.is_none() {
                    first_error =
                        Some(InfraError::docker(format!("remove container {id}"), source));
                }
            }
        }
        if let Some(network) = network {
            if let Err(source) = self.docker.remove_network(network).await {
                if !is_gone_or_going(&source) && first_error.is_none() {
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
            // Another run sweeping at the same moment may still be removing a container on
            // this network; the engine then refuses, and the next sweep takes the network.
            match self.docker.remove_network(network).await {
                Err(source) if !is_gone_or_going(&source) && !is_in_use(&source) => {
                    return Err(InfraError::docker(format!("remove network {network}"), source));
                }
                _ => {}
            }
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

fn split_image(image: &str) -> (&str, &str) {
    // A colon after the last slash separates the tag; one before it belongs to a registry port.
    match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => (&image[..colon], &image[colon + 1..]),
        _ => (image, "latest"),
    }
}

/// A removal that found nothing to remove, or found another caller already removing it (two
/// runs sweeping the same leftovers at once).
fn is_gone_or_going(error: &bollard::errors::Error) -> bool {
    is_not_found(error)
        || matches!(
            error,
            bollard::errors::Error::DockerResponseServerError { status_code: 409, message }
                if message.contains("already in progress")
        )
}

/// A network the engine will not remove yet because a container is still attached (403 on the
/// engines seen here, 409 on others).
fn is_in_use(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError { status_code: 403 | 409, message }
            if message.contains("active endpoints")
    )
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
    fn mapped_ports_are_bound_on_loopback_and_nothing_else_is_published() {
        use bollard::models::PortBinding;
        let mut host_config = HostConfig {
            publish_all_ports: Some(true),
            port_bindings: Some(HashMap::from([(
                "5432/tcp".to_string(),
                Some(vec![PortBinding {
                    host_ip: None,
                    host_port: Some("0".to_string()),
                }]),
            )])),
            ..Default::default()
        };
        loopback_only(&mut host_config);
        assert_eq!(host_config.publish_all_ports, Some(false));
        let bindings = host_config.port_bindings.expect("bindings kept");
        let binding = &bindings["5432/tcp"].as_ref().expect("one binding")[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some(""), "the engine picks");
    }

    #[test]
    fn a_log_tail_keeps_the_last_lines() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("only", 5), "only\n");
        assert_eq!(last_lines("", 3), "");
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
