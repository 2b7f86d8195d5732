//! The system under test, running: the infrastructure plus the five reference services, each
//! its own OS process, with every link between them through a Toxiproxy proxy.
//!
//! ```no_run
//! use faultline_harness::stack::{Stack, StackConfig};
//! # async fn demo() -> anyhow::Result<()> {
//! let mut stack = Stack::start(StackConfig::default()).await?;
//! let gateway = stack.gateway_url();                 // http://127.0.0.1:PORT
//! stack.kill("order")?;                             // SIGKILL: a real crash
//! stack.restart("order").await?;                    // same port, same configuration
//! let (toxiproxy, proxy) = stack.link("order->payment")?;
//! toxiproxy.disable(&proxy).await?;                 // partition order from payment
//! stack.shutdown().await?;                          // SIGTERM, then containers removed
//! # Ok(()) }
//! ```
//!
//! # Where the links are
//!
//! Services run on the host and listen on 127.0.0.1. Their links to Postgres and Kafka are the
//! infrastructure's proxies ([`crate::infra`]), in the Toxiproxy container. Their links to each
//! other (`gateway->order`, `order->payment`, `order->inventory`) are proxies of a second
//! Toxiproxy, the same server binary taken from the Toxiproxy image and run as a host process
//! on 127.0.0.1, because a container cannot reach the host's loopback. [`Stack::link`] hands
//! out the right client for either kind, so a fault schedule does not need to care.
//!
//! Each service has a database of its own (`order`, `payment`, `inventory`, `notification`)
//! on the one Postgres server, a fixed free port (so a restarted process is found where it
//! was), and its output in `<run dir>/<service>.log`. Binaries are looked up next to the
//! running executable's target folder (`target/debug`), or in `FAULTLINE_SERVICE_BIN_DIR`;
//! `cargo build --workspace --bins` builds them (`ci/test` does).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use faultline_chaos::toxiproxy::{NewProxy, ToxiproxyClient};
use sqlx::Connection;
use tokio::process::{Child, Command};

use crate::infra::{Images, Infra, InfraConfig, InfraError};

/// The reference services in start order: dependencies before their callers.
pub const SERVICES: [&str; 5] = ["payment", "inventory", "notification", "order", "gateway"];

/// Services that own a database.
const WITH_DATABASE: [&str; 4] = ["payment", "inventory", "notification", "order"];

/// The service-to-service links, each a proxy on the host Toxiproxy.
pub const SERVICE_LINKS: [(&str, &str); 3] = [
    ("gateway", "order"),
    ("order", "payment"),
    ("order", "inventory"),
];

/// The secret the stack's gateway signs tokens with; tests and the workload mint tokens with it.
pub const JWT_SECRET: &str = "faultline-stack-secret-not-for-production";

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Enables the services' test-mode endpoints (stock seeding and the like).
    pub test_mode: bool,
    /// Extra environment per service, e.g. `("order", "ORDER_STEP_DEADLINE_MS", "5000")`.
    pub env: Vec<(String, String, String)>,
    /// How long each service may take to answer `/health/ready`.
    pub ready_timeout: Duration,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            test_mode: true,
            env: Vec::new(),
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// Why the stack could not start or be driven.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Infra(#[from] InfraError),

    #[error("service binary `{binary}` not found in {dir}\nhint: build the services with `cargo build --workspace --bins` (ci/test does), or set FAULTLINE_SERVICE_BIN_DIR")]
    BinaryMissing { binary: String, dir: String },

    #[error("{service}: {message}\n--- last lines of {log} ---\n{tail}")]
    Service {
        service: String,
        message: String,
        log: String,
        tail: String,
    },

    #[error("unknown {what} `{name}`; known: {known}")]
    Unknown {
        what: &'static str,
        name: String,
        known: String,
    },

    #[error("{action}: {message}")]
    Io { action: String, message: String },

    #[error("toxiproxy: {0}")]
    Toxiproxy(#[from] faultline_chaos::toxiproxy::ToxiproxyError),
}

fn io_error(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
    let action = action.into();
    move |e| StackError::Io {
        action,
        message: e.to_string(),
    }
}

/// One service process and how to start it again.
struct ServiceProcess {
    name: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    fn spawn(&mut self) -> Result<(), StackError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io_error(format!("opening {}", self.log.display())))?;
        let stderr = log
            .try_clone()
            .map_err(io_error("duplicating a log handle"))?;
        let mut command = Command::new(&self.binary);
        die_with_parent(&mut command);
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(io_error(format!("starting {}", self.binary.display())))?;
        self.child = Some(child);
        Ok(())
    }

    fn pid(&self) -> Option<i32> {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .map(|pid| pid as i32)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn failure(&self, message: impl Into<String>) -> StackError {
        StackError::Service {
            service: self.name.clone(),
            message: message.into(),
            log: self.log.display().to_string(),
            tail: self.tail(30),
        }
    }

    /// Polls `/health/ready` until it answers 200; fails early if the process exits.
    async fn await_ready(
        &mut self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Duration, StackError> {
        let clock = Instant::now();
        let url = format!("{}/health/ready", self.url());
        loop {
            let last = match http.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(response) if response.status().is_success() => return Ok(clock.elapsed()),
                Ok(response) => format!("{url} answered {}", response.status()),
                Err(e) => format!("{url}: {e}"),
            };
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(self.failure(format!("exited during start-up ({status})")));
                }
            }
            if clock.elapsed() > timeout {
                return Err(
                    self.failure(format!("not ready within {timeout:?}; last check: {last}"))
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The host Toxiproxy process carrying the service-to-service links.
struct HostToxiproxy {
    child: Child,
    client: ToxiproxyClient,
}

/// A running reference system. Dropping it kills every process and removes the containers.
pub struct Stack {
    infra: Option<Infra>,
    host_proxy: HostToxiproxy,
    services: BTreeMap<String, ServiceProcess>,
    link_ports: BTreeMap<String, u16>,
    run_dir: PathBuf,
    http: reqwest::Client,
    ready_timeout: Duration,
    timings: BTreeMap<String, Duration>,
}

impl Stack {
    /// Starts the infrastructure, the host Toxiproxy, the databases and the five services,
    /// and waits until each service answers `/health/ready`.
    pub async fn start(config: StackConfig) -> Result<Self, StackError> {
        let clock = Instant::now();
        let bin_dir = service_bin_dir();
        for service in SERVICES {
            if !bin_dir.join(service).is_file() {
                return Err(StackError::BinaryMissing {
                    binary: service.to_string(),
                    dir: bin_dir.display().to_string(),
                });
            }
        }
        let infra_config = InfraConfig::with_clients(SERVICES);
        let images = infra_config.images.clone();
        let infra = Infra::start(infra_config).await?;
        let mut timings = BTreeMap::from([("infrastructure".to_string(), clock.elapsed())]);

        let run_dir = std::env::temp_dir().join(format!("faultline-run-{}", infra.run_id()));
        std::fs::create_dir_all(&run_dir)
            .map_err(io_error(format!("creating {}", run_dir.display())))?;

        create_databases(&infra).await?;
        let host_proxy = start_host_toxiproxy(&infra, &images, &run_dir).await?;

        // Every port is chosen before anything starts, so each side can be told the other's.
        let service_ports: BTreeMap<&str, u16> = SERVICES
            .iter()
            .map(|s| Ok((*s, free_port()?)))
            .collect::<Result<_, StackError>>()?;
        let mut link_ports = BTreeMap::new();
        for (client, server) in SERVICE_LINKS {
            let port = free_port()?;
            host_proxy
                .client
                .create_proxy(&NewProxy::new(
                    format!("{client}-{server}"),
                    format!("127.0.0.1:{port}"),
                    format!("127.0.0.1:{}", service_ports[server]),
                ))
                .await?;
            link_ports.insert(format!("{client}->{server}"), port);
        }

        let bin = |name: &str| bin_dir.join(name);
        let mut services = BTreeMap::new();
        for service in SERVICES {
            let prefix = service.to_ascii_uppercase();
            let mut env = vec![
                (
                    format!("{prefix}_HTTP_ADDR"),
                    format!("127.0.0.1:{}", service_ports[service]),
                ),
                (format!("{prefix}_TEST_MODE"), config.test_mode.to_string()),
                ("RUST_LOG".to_string(), "info".to_string()),
            ];
            if WITH_DATABASE.contains(&service) {
                env.push((
                    format!("{prefix}_DATABASE_URL"),
                    infra.postgres_url_for(service, service)?,
                ));
            }
            if matches!(service, "order" | "notification") {
                env.push((
                    format!("{prefix}_KAFKA_BOOTSTRAP"),
                    infra.kafka_bootstrap(service)?,
                ));
            }
            let via = |link: &str| format!("http://127.0.0.1:{}", link_ports[link]);
            match service {
                "order" => {
                    env.push(("ORDER_PAYMENT_URL".into(), via("order->payment")));
                    env.push(("ORDER_INVENTORY_URL".into(), via("order->inventory")));
                }
                "gateway" => {
                    env.push(("GATEWAY_ORDER_URL".into(), via("gateway->order")));
                    env.push(("GATEWAY_JWT_SECRET".into(), JWT_SECRET.into()));
                }
                _ => {}
            }
            for (target, key, value) in &config.env {
                if target == service {
                    env.push((key.clone(), value.clone()));
                }
            }
            services.insert(
                service.to_string(),
                ServiceProcess {
                    name: service.to_string(),
                    binary: bin(service),
                    env,
                    port: service_ports[service],
                    log: run_dir.join(format!("{service}.log")),
                    child: None,
                },
            );
        }

        let mut stack = Stack {
            infra: Some(infra),
            host_proxy,
            services,
            link_ports,
            run_dir,
            http: reqwest::Client::new(),
            ready_timeout: config.ready_timeout,
            timings: BTreeMap::new(),
        };
        for service in SERVICES {
            let took = stack.start_service(service).await?;
            timings.insert(service.to_string(), took);
        }
        timings.insert("whole stack".to_string(), clock.elapsed());
        stack.timings = timings;
        Ok(stack)
    }

    async fn start_service(&mut self, name: &str) -> Result<Duration, StackError> {
        let process = self
            .services
            .get_mut(name)
            .ok_or_else(|| unknown_service(name))?;
        process.spawn()?;
        process.await_ready(&self.http, self.ready_timeout).await
    }

    /// The infrastructure under the services.
    pub fn infra(&self) -> &Infra {
        self.infra.as_ref().expect("present until shutdown")
    }

    /// The gateway, where clients send requests.
    pub fn gateway_url(&self) -> String {
        self.services["gateway"].url()
    }

    /// A service's own address, bypassing every proxy (for checkers and set-up).
    pub fn service_url(&self, service: &str) -> Result<String, StackError> {
        self.services
            .get(service)
            .map(ServiceProcess::url)
            .ok_or_else(|| unknown_service(service))
    }

    /// A direct (unproxied) URL to a service's database, for checkers.
    pub fn database_url(&self, service: &str) -> Result<String, StackError> {
        if !WITH_DATABASE.contains(&service) {
            return Err(StackError::Unknown {
                what: "database",
                name: service.to_string(),
                known: WITH_DATABASE.join(", "),
            });
        }
        Ok(self.infra().postgres_admin_url_for(service)?)
    }

    /// The Toxiproxy client and proxy name that carry `link` (`client->server`).
    pub fn link(&self, link: &str) -> Result<(ToxiproxyClient, String), StackError> {
        if self.link_ports.contains_key(link) {
            let (client, server) = link.split_once("->").expect("service links have an arrow");
            return Ok((self.host_proxy.client.clone(), format!("{client}-{server}")));
        }
        match self.infra().link(link).and_then(|l| l.proxy.clone()) {
            Some(proxy) => Ok((self.infra().toxiproxy_client(), proxy)),
            None => {
                let mut known: Vec<String> = self.link_ports.keys().cloned().collect();
                known.extend(
                    self.infra()
                        .links()
                        .filter(|l| l.proxy.is_some())
                        .map(|l| l.name.clone()),
                );
                Err(StackError::Unknown {
                    what: "link",
                    name: link.to_string(),
                    known: known.join(", "),
                })
            }
        }
    }

    /// Sends `signal` to a service process.
    fn signal(&self, service: &str, signal: i32) -> Result<(), StackError> {
        let process = self
            .services
            .get(service)
            .ok_or_else(|| unknown_service(service))?;
        let pid = process
            .pid()
            .ok_or_else(|| process.failure("is not running"))?;
        // SAFETY: kill(2) with a pid this stack spawned and still holds; no memory is shared.
        let result = unsafe { libc::kill(pid, signal) };
        if result != 0 {
            return Err(process.failure(format!(
                "signal {signal} failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Kills a service with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self, service: &str) -> Result<(), StackError> {
        self.signal(service, libc::SIGKILL)?;
        let process = self
            .services
            .get_mut(service)
            .expect("signal checked the name");
        if let Some(mut child) = process.child.take() {
            // The process is gone; reaping it cannot block for long.
            let _ = child.start_kill();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    let _ = runtime.block_on(child.wait());
                }
            });
        }
        Ok(())
    }

    /// Waits (bounded) until a service process exits by itself — a crash a test provoked —
    /// and describes how it ended.
    pub async fn await_exit(
        &mut self,
        service: &str,
        timeout: Duration,
    ) -> Result<String, StackError> {
        let process = self
            .services
            .get_mut(service)
            .ok_or_else(|| unknown_service(service))?;
        let Some(child) = process.child.as_mut() else {
            return Err(process.failure("is not running"));
        };
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => {
                process.child = None;
                Ok(status.to_string())
            }
            Ok(Err(e)) => Err(process.failure(format!("waiting for it failed: {e}"))),
            Err(_) => Err(process.failure(format!("still running after {timeout:?}"))),
        }
    }

    /// Stops a service with SIGSTOP (it keeps its connections but answers nothing).
    pub fn pause(&self, service: &str) -> Result<(), StackError> {
        self.signal(service, libc::SIGSTOP)
    }

    /// Continues a service stopped by [`pause`](Self::pause).
    pub fn resume(&self, service: &str) -> Result<(), StackError> {
        self.signal(service, libc::SIGCONT)
    }

    /// Starts a killed service again with the same port and configuration, and waits until
    /// it is ready.
    pub async fn restart(&mut self, service: &str) -> Result<Duration, StackError> {
        let running = self
            .services
            .get_mut(service)
            .ok_or_else(|| unknown_service(service))?;
        if let Some(child) = running.child.as_mut() {
            if child.try_wait().ok().flatten().is_none() {
                return Err(running.failure("is still running; kill it before restarting"));
            }
        }
        self.start_service(service).await
    }

    /// The text a service has written to its log so far.
    pub fn service_log(&self, service: &str) -> Result<String, StackError> {
        let process = self
            .services
            .get(service)
            .ok_or_else(|| unknown_service(service))?;
        std::fs::read_to_string(&process.log)
            .map_err(io_error(format!("reading {}", process.log.display())))
    }

    /// Where the services' logs are written.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// How long each part took to become ready.
    pub fn timings(&self) -> &BTreeMap<String, Duration> {
        &self.timings
    }

    /// Stops every service with SIGTERM (graceful: requests in flight finish, offsets are
    /// committed), waits for each (killing it after 10 s), stops the host Toxiproxy and tears
    /// the infrastructure down.
    pub async fn shutdown(mut self) -> Result<(), StackError> {
        self.stop_services().await;
        let _ = self.host_proxy.child.kill().await;
        if let Some(infra) = self.infra.take() {
            infra.shutdown().await?;
        }
        Ok(())
    }
}

impl Stack {
    /// Stops every service with SIGTERM, in reverse start order, killing one that has not
    /// stopped after 10 s.
    async fn stop_services(&mut self) {
        for service in SERVICES.iter().rev() {
            let Some(process) = self.services.get_mut(*service) else {
                continue;
            };
            let Some(mut child) = process.child.take() else {
                continue;
            };
            if let Some(pid) = child.id() {
                // SAFETY: as in `signal`.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    /// Makes the running stack as good as new for another run, without restarting its
    /// containers: stops the services, removes every toxic and re-enables every proxy, drops
    /// and recreates the services' databases, deletes their Kafka topics (and so the consumer
    /// offsets on them), and starts the services again. Returns how long it took.
    pub async fn reset(&mut self) -> Result<Duration, StackError> {
        let clock = Instant::now();
        self.stop_services().await;
        self.host_proxy.client.reset().await?;
        self.infra().toxiproxy_client().reset().await?;
        drop_databases(self.infra()).await?;
        create_databases(self.infra()).await?;
        delete_topics(self.infra(), &["orders", "orders.dlt"]).await?;
        for service in SERVICES {
            self.start_service(service).await?;
        }
        Ok(clock.elapsed())
    }
}

async fn drop_databases(infra: &Infra) -> Result<(), StackError> {
    let url = infra.postgres_admin_url()?;
    let mut admin = sqlx::postgres::PgConnection::connect(&url)
        .await
        .map_err(|e| StackError::Io {
            action: "connecting to Postgres to drop databases".into(),
            message: e.to_string(),
        })?;
    for database in WITH_DATABASE {
        // The names are this module's constants, not input.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .map_err(|e| StackError::Io {
            action: format!("dropping database {database}"),
            message: e.to_string(),
        })?;
    }
    let _ = admin.close().await;
    Ok(())
}

/// Deletes `topics` and waits (bounded) until the broker no longer lists them, so a service
/// starting next can create them afresh.
async fn delete_topics(infra: &Infra, topics: &[&str]) -> Result<(), StackError> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let bootstrap = infra.kafka_bootstrap(crate::infra::HARNESS_CLIENT)?;
    let kafka_error = |action: &str| {
        let action = action.to_string();
        move |e: rdkafka::error::KafkaError| StackError::Io {
            action,
            message: e.to_string(),
        }
    };
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("log_level", "3")
        .create()
        .map_err(kafka_error("connecting to Kafka to delete topics"))?;
    // Unknown topics are fine: a run may not have created them.
    let _ = admin
        .delete_topics(topics, &AdminOptions::new())
        .await
        .map_err(kafka_error("deleting topics"))?;
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    let gone = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(metadata) = admin.inner().fetch_metadata(None, Duration::from_secs(5)) {
                if !metadata
                    .topics()
                    .iter()
                    .any(|t| topics.iter().any(|name| name == t.name()))
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    })
    .await
    .unwrap_or(false);
    if gone {
        Ok(())
    } else {
        Err(StackError::Io {
            action: "deleting Kafka topics".into(),
            message: "still listed after 30 s".into(),
        })
    }
}

/// Has the kernel kill the child when the process that started it dies, however it dies: a
/// test binary killed by a timeout must not leave services running. (`kill_on_drop` covers
/// the orderly paths.)
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn unknown_service(name: &str) -> StackError {
    StackError::Unknown {
        what: "service",
        name: name.to_string(),
        known: SERVICES.join(", "),
    }
}

/// Where the service binaries are: `FAULTLINE_SERVICE_BIN_DIR`, or the target folder of the
/// running executable (`target/debug` for `target/debug/deps/<test>` and `target/debug/<bin>`).
pub fn service_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FAULTLINE_SERVICE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16, StackError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io_error("finding a free port"))?
        .port())
}

async fn create_databases(infra: &Infra) -> Result<(), StackError> {
    let url = infra.postgres_admin_url()?;
    let mut admin = sqlx::postgres::PgConnection::connect(&url)
        .await
        .map_err(|e| StackError::Io {
            action: "connecting to Postgres to create databases".into(),
            message: e.to_string(),
        })?;
    for database in WITH_DATABASE {
        // The names are this module's constants, not input.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{database}\""
        )))
        .execute(&mut admin)
        .await
        .map_err(|e| StackError::Io {
            action: format!("creating database {database}"),
            message: e.to_string(),
        })?;
    }
    let _ = admin.close().await;
    Ok(())
}

async fn start_host_toxiproxy(
    infra: &Infra,
    images: &Images,
    run_dir: &Path,
) -> Result<HostToxiproxy, StackError> {
    let cache = service_bin_dir().join("faultline-tools");
    let binary = infra.toxiproxy_binary(images, &cache).await?;
    let port = free_port()?;
    let log = run_dir.join("toxiproxy-host.log");
    let log_file =
        std::fs::File::create(&log).map_err(io_error(format!("creating {}", log.display())))?;
    let mut command = Command::new(&binary);
    die_with_parent(&mut command);
    let child = command
        .args(["-host", "127.0.0.1", "-port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            log_file
                .try_clone()
                .map_err(io_error("duplicating a log handle"))?,
        ))
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .map_err(io_error(format!("starting {}", binary.display())))?;
    let client = ToxiproxyClient::new(format!("http://127.0.0.1:{port}"))?;
    let clock = Instant::now();
    loop {
        match client.version().await {
            Ok(_) => break,
            Err(e) if clock.elapsed() > Duration::from_secs(20) => {
                return Err(StackError::Io {
                    action: format!("starting the host Toxiproxy ({})", binary.display()),
                    message: format!("{e}; log: {}", log.display()),
                })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(HostToxiproxy { child, client })
}
