//! A described system, running: the infrastructure its description asks for plus each of its
//! services as its own OS process, with every link between them through a Toxiproxy proxy.
//!
//! ```no_run
//! use faultline_harness::stack::{Stack, StackConfig};
//! use faultline_harness::system::System;
//! # async fn demo() -> anyhow::Result<()> {
//! let system = System::load("services/faultline.toml".as_ref())?;
//! let mut stack = Stack::start(&system, StackConfig::default()).await?;
//! let gateway = stack.service_url("gateway")?;       // http://127.0.0.1:PORT
//! stack.kill("order").await?;                       // SIGKILL: a real crash
//! stack.restart("order").await?;                    // same port, same configuration
//! let (toxiproxy, proxy) = stack.link("order->payment")?;
//! toxiproxy.disable(&proxy).await?;                 // partition order from payment
//! stack.shutdown().await?;                          // stop signals, then containers removed
//! # Ok(()) }
//! ```
//!
//! # Where the links are
//!
//! Services run on the host and listen on 127.0.0.1, each on a port chosen before anything
//! starts (so each side can be told the other's, and a restarted process is found where it
//! was) and handed to it as `{port}`. Their links to Postgres and Kafka are the
//! infrastructure's proxies ([`crate::infra`]), in the Toxiproxy container. Their links to each
//! other (`{link:order->payment}`) are proxies of a second Toxiproxy, the same server binary
//! taken from the Toxiproxy image and run as a host process on 127.0.0.1, because a container
//! cannot reach the host's loopback. [`Stack::link`] hands out the right client for either
//! kind, so a fault schedule does not need to care.
//!
//! The databases and topics the description declares are created before the services start,
//! and created afresh by [`Stack::reset`]. Each service's output goes to
//! `<run dir>/<service>.log`. `{bin:NAME}` binaries are looked up next to the running
//! executable's target folder (`target/debug`), or in `FAULTLINE_SERVICE_BIN_DIR`.
//!
//! Layer 2 (infrastructure) of the harness ([layers](crate#layers)): imports the description,
//! the infrastructure and the proxies; nothing that runs or judges a scenario.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use faultline_chaos::toxiproxy::{NewProxy, ToxiproxyClient};
use sqlx::Connection;
use tokio::process::{Child, Command};

use crate::infra::{ContainerSpec, Images, Infra, InfraError, RunningContainer};
use crate::system::{Placeholder, Readiness, ServiceSpec, System};

/// How to start the stack, beyond what the description says.
#[derive(Debug, Clone, Default)]
pub struct StackConfig {
    /// Extra environment per service, e.g. `("order", "ORDER_STEP_DEADLINE_MS", "5000")`;
    /// it overrides the description's.
    pub env: Vec<(String, String, String)>,
    /// Links between services go from Toxiproxy straight to the callee, without the request
    /// proxy: for benchmarks, which inject no request-level faults and measure the system,
    /// not faultline's proxy. Request-level faults then cannot start.
    pub without_request_proxies: bool,
    /// Services reach Postgres and each other straight, not through Toxiproxy (nor request
    /// proxies): for benchmarks that set the saga beside pgbench, which connects straight.
    /// Kafka stays behind its per-client proxies (broker proxy, then Toxiproxy), which its
    /// broker advertises. No fault can strike a direct link: [`Stack::link_proxies`] refuses
    /// it.
    pub direct_links: bool,
}

/// Why the stack could not start or be driven.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Infra(#[from] InfraError),

    #[error("{service}: program `{program}` not found\nhint: {hint}")]
    BinaryMissing {
        service: String,
        program: String,
        hint: String,
    },

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

    #[error("{file}: services.{service}: {message}")]
    Resolve {
        file: String,
        service: String,
        message: String,
    },

    #[error("{action}: {message}")]
    Io { action: String, message: String },

    #[error("toxiproxy: {0}")]
    Toxiproxy(#[from] faultline_chaos::toxiproxy::ToxiproxyError),
}

/// The length of each file in `dir` (none when it cannot be read).
fn log_lengths(dir: &Path) -> BTreeMap<std::ffi::OsString, u64> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| Some((entry.file_name(), entry.metadata().ok()?.len())))
        .collect()
}

fn io_error(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
    let action = action.into();
    move |e| StackError::Io {
        action,
        message: e.to_string(),
    }
}

/// How a service is started: a host process, or a container on the host's network.
enum Launch {
    Process { program: PathBuf, args: Vec<String> },
    Container(ContainerSpec),
}

/// A started service.
enum Running {
    Process(Child),
    Container(RunningContainer),
}

/// One service and how to start it again.
struct ServiceProcess {
    spec: ServiceSpec,
    launch: Launch,
    env: Vec<(String, String)>,
    port: Option<u16>,
    log: PathBuf,
    running: Option<Running>,
}

impl ServiceProcess {
    async fn spawn(&mut self, infra: &mut Infra) -> Result<(), StackError> {
        match &self.launch {
            Launch::Process { program, args } => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .map_err(io_error(format!("opening {}", self.log.display())))?;
                let stderr = log
                    .try_clone()
                    .map_err(io_error("duplicating a log handle"))?;
                let mut command = Command::new(program);
                die_with_parent(&mut command);
                let child = command
                    .args(args)
                    .current_dir(&self.spec.workdir)
                    .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .stdin(Stdio::null())
                    .stdout(Stdio::from(log))
                    .stderr(Stdio::from(stderr))
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(io_error(format!("starting {}", program.display())))?;
                self.running = Some(Running::Process(child));
            }
            Launch::Container(spec) => {
                let spec = ContainerSpec {
                    env: self.env.clone(),
                    ..spec.clone()
                };
                let container = infra.run_service_container(&spec).await?;
                container
                    .follow_logs(&self.log)
                    .map_err(io_error(format!("opening {}", self.log.display())))?;
                self.running = Some(Running::Container(container));
            }
        }
        Ok(())
    }

    /// Whether the service has ended by itself, and how; `None` while it runs (or was never
    /// started).
    async fn exited(&mut self) -> Option<String> {
        match self.running.as_mut()? {
            Running::Process(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                _ => None,
            },
            Running::Container(container) => match container.state().await {
                Ok((false, code)) => Some(format!(
                    "container exited with code {}",
                    code.map_or_else(|| "unknown".to_string(), |c| c.to_string())
                )),
                _ => None,
            },
        }
    }

    /// Stops the service with its stop signal, killing it after its grace period; a
    /// container is removed afterwards.
    async fn stop(&mut self) {
        let signal = self.spec.stop_signal;
        match self.running.take() {
            None => {}
            Some(Running::Process(mut child)) => {
                if let Some(pid) = child.id() {
                    // SAFETY: kill(2) with a pid this stack spawned and still holds.
                    unsafe { libc::kill(pid as i32, signal.number) };
                }
                if tokio::time::timeout(self.spec.stop_grace, child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            }
            Some(Running::Container(container)) => {
                let _ = container.signal(signal.name).await;
                let deadline = Instant::now() + self.spec.stop_grace;
                while Instant::now() < deadline && matches!(container.state().await, Ok((true, _)))
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = container.remove().await;
            }
        }
    }

    fn url(&self) -> Option<String> {
        self.port.map(|port| format!("http://127.0.0.1:{port}"))
    }

    fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn failure(&self, message: impl Into<String>) -> StackError {
        StackError::Service {
            service: self.spec.name.clone(),
            message: message.into(),
            log: self.log.display().to_string(),
            tail: self.tail(30),
        }
    }

    /// Waits until the service is ready as its description says; fails early if the process
    /// exits. `log_from` is the log's length when this start began (a log check only looks
    /// at what this start wrote).
    async fn await_ready(
        &mut self,
        http: &reqwest::Client,
        log_from: u64,
    ) -> Result<Duration, StackError> {
        let clock = Instant::now();
        let timeout = self.spec.ready_timeout;
        loop {
            let last = match self.check_ready(http, log_from).await {
                Ok(()) => return Ok(clock.elapsed()),
                Err(last) => last,
            };
            if let Some(status) = self.exited().await {
                return Err(self.failure(format!("exited during start-up ({status})")));
            }
            if clock.elapsed() > timeout {
                return Err(
                    self.failure(format!("not ready within {timeout:?}; last check: {last}"))
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn check_ready(&self, http: &reqwest::Client, log_from: u64) -> Result<(), String> {
        let address = self.port.map(|port| format!("127.0.0.1:{port}"));
        match (&self.spec.ready, address) {
            (Readiness::Http { path }, Some(address)) => {
                crate::infra::http_ready(http, &format!("http://{address}{path}")).await
            }
            (Readiness::Tcp, Some(address)) => tokio::net::TcpStream::connect(&address)
                .await
                .map(drop)
                .map_err(|e| format!("connecting to {address}: {e}")),
            (Readiness::Log { text }, _) => {
                let written = std::fs::read(&self.log).unwrap_or_default();
                let new = written.get(log_from as usize..).unwrap_or_default();
                if String::from_utf8_lossy(new).contains(text.as_str()) {
                    Ok(())
                } else {
                    Err(format!("its log does not say {text:?} yet"))
                }
            }
            (_, None) => Err("it has no {port} to check".into()),
        }
    }
}

/// The host Toxiproxy process carrying the service-to-service links.
struct HostToxiproxy {
    child: Child,
    client: ToxiproxyClient,
}

/// A running system. Dropping it kills every process and removes the containers.
pub struct Stack {
    system: System,
    infra: Option<Infra>,
    host_proxy: HostToxiproxy,
    /// Behind the host Toxiproxy on each link between services: request-level faults.
    request_proxies: crate::intercept::RequestProxies,
    /// The statement proxy of each service's link to Postgres, by link name.
    statement_proxies: BTreeMap<String, crate::intercept::postgres::StatementProxy>,
    services: BTreeMap<String, ServiceProcess>,
    link_ports: BTreeMap<String, u16>,
    /// Started with [`StackConfig::direct_links`].
    direct_links: bool,
    run_dir: PathBuf,
    http: reqwest::Client,
    timings: BTreeMap<String, Duration>,
    last_reset: BTreeMap<&'static str, Duration>,
    /// How long each log in `run_dir` was, and the time, when the last reset began: a run on
    /// a reused stack keeps what was written from there on (see [`Stack::save_logs`]).
    log_marks: BTreeMap<std::ffi::OsString, u64>,
    reset_began: Option<std::time::SystemTime>,
}

impl Stack {
    /// Starts the infrastructure `system` needs, the host Toxiproxy, its databases and topics
    /// and its services in start order, each awaited until ready.
    ///
    /// Every program is found and every placeholder resolved before anything starts: a
    /// missing binary or an unset `{env:…}` variable is an error with nothing to clean up.
    pub async fn start(system: &System, config: StackConfig) -> Result<Self, StackError> {
        let clock = Instant::now();
        let bin_dir = service_bin_dir();
        // The ports first: every service's environment may name any other's.
        let mut service_ports = BTreeMap::new();
        for spec in &system.services {
            if spec.listens {
                service_ports.insert(spec.name.clone(), free_port()?);
            }
        }
        let mut link_ports = BTreeMap::new();
        for link in system.topology().service_links() {
            link_ports.insert(link.name(), free_port()?);
        }
        // Programs and the placeholders that need no infrastructure, checked up front.
        for spec in &system.services {
            let values = Values::preflight(system, spec, &bin_dir, &service_ports, &link_ports);
            resolve_launch(system, spec, &values)?;
            resolve_env(system, spec, &values)?;
        }

        let infra_config = crate::infra::InfraConfig::for_system(system);
        let images = infra_config.images.clone();
        let infra = Infra::start(infra_config).await?;
        let mut timings = BTreeMap::from([("infrastructure".to_string(), clock.elapsed())]);

        let run_dir = std::env::temp_dir().join(format!("faultline-run-{}", infra.run_id()));
        std::fs::create_dir_all(&run_dir)
            .map_err(io_error(format!("creating {}", run_dir.display())))?;

        create_databases(system, &infra).await?;
        create_topics(system, &infra).await?;
        let host_proxy = start_host_toxiproxy(&infra, &images, &run_dir).await?;
        // caller -> Toxiproxy (the link's port) -> request proxy -> callee. With direct links
        // nothing listens on a link's port: the caller is given the callee's own.
        let mut request_proxies = crate::intercept::RequestProxies::default();
        let proxied = !config.direct_links;
        for link in system.topology().service_links().filter(|_| proxied) {
            let port = link_ports[&link.name()];
            let callee = std::net::SocketAddr::from(([127, 0, 0, 1], service_ports[&link.server]));
            let upstream = if config.without_request_proxies {
                callee
            } else {
                let request_proxy = crate::intercept::RequestProxy::start(&link.name(), callee)
                    .await
                    .map_err(io_error(format!("starting the request proxy of {}", link.name())))?;
                if let Some(header) = system.service(&link.server).and_then(|s| s.idempotency_key.clone()) {
                    request_proxy.watch_idempotency(header);
                }
                let address = request_proxy.address();
                request_proxies.insert(link.name(), request_proxy);
                address
            };
            host_proxy
                .client
                .create_proxy(&NewProxy::new(
                    proxy_name(&link.client, &link.server),
                    format!("127.0.0.1:{port}"),
                    upstream.to_string(),
                ))
                .await?;
        }

        // service -> statement proxy -> Toxiproxy (the link's proxy) -> Postgres.
        let mut statement_proxies = BTreeMap::new();
        let to_postgres = system.topology().links().iter().filter(|l| l.server == "postgres");
        for link in to_postgres.filter(|_| proxied && !config.without_request_proxies) {
            let name = link.name();
            let Some(upstream) = infra.link(&name).and_then(|l| l.address.parse().ok()) else {
                continue;
            };
            let proxy = crate::intercept::postgres::StatementProxy::start(&name, upstream)
                .await
                .map_err(io_error(format!("starting the statement proxy of {name}")))?;
            statement_proxies.insert(name, proxy);
        }
        let statement_addresses: BTreeMap<String, String> = statement_proxies
            .iter()
            .map(|(link, proxy)| (link.clone(), proxy.address().to_string()))
            .collect();

        let mut services = BTreeMap::new();
        for spec in &system.services {
            let values = Values {
                infra: Some(&infra),
                statement_proxies: Some(&statement_addresses),
                direct_links: config.direct_links,
                ..Values::preflight(system, spec, &bin_dir, &service_ports, &link_ports)
            };
            let launch = resolve_launch(system, spec, &values)?;
            let mut env = resolve_env(system, spec, &values)?;
            for (target, key, value) in &config.env {
                if target == &spec.name {
                    env.retain(|(k, _)| k != key);
                    env.push((key.clone(), value.clone()));
                }
            }
            services.insert(
                spec.name.clone(),
                ServiceProcess {
                    spec: spec.clone(),
                    launch,
                    env,
                    port: service_ports.get(&spec.name).copied(),
                    log: run_dir.join(format!("{}.log", spec.name)),
                    running: None,
                },
            );
        }

        let mut stack = Stack {
            system: system.clone(),
            infra: Some(infra),
            host_proxy,
            request_proxies,
            statement_proxies,
            last_reset: BTreeMap::new(),
            log_marks: BTreeMap::new(),
            reset_began: None,
            services,
            link_ports,
            direct_links: config.direct_links,
            run_dir,
            http: reqwest::Client::new(),
            timings: BTreeMap::new(),
        };
        timings.extend(stack.start_services().await?);
        timings.insert("whole stack".to_string(), clock.elapsed());
        stack.timings = timings;
        Ok(stack)
    }

    /// The description this stack was started from.
    pub fn system(&self) -> &System {
        &self.system
    }

    /// Starts every service, a group of independent ones at a time
    /// ([`System::start_levels`]): each group is spawned in start order, then awaited ready
    /// together. How long each took to be ready.
    async fn start_services(&mut self) -> Result<Vec<(String, Duration)>, StackError> {
        let levels: Vec<Vec<String>> = self
            .system
            .start_levels()
            .into_iter()
            .map(|level| level.into_iter().map(str::to_string).collect())
            .collect();
        let mut took = Vec::new();
        for level in levels {
            let mut log_from = BTreeMap::new();
            for name in &level {
                let process = self.services.get_mut(name).expect("described");
                log_from.insert(name.clone(), std::fs::metadata(&process.log).map_or(0, |m| m.len()));
                let infra = self.infra.as_mut().expect("present until shutdown");
                process.spawn(infra).await?;
            }
            let http = &self.http;
            let ready = futures_util::future::join_all(
                self.services
                    .iter_mut()
                    .filter(|(name, _)| log_from.contains_key(*name))
                    .map(|(name, process)| {
                        let from = log_from[name];
                        async move { (name.clone(), process.await_ready(http, from).await) }
                    }),
            )
            .await;
            for (name, result) in ready {
                took.push((name, result?));
            }
        }
        Ok(took)
    }

    async fn start_service(&mut self, name: &str) -> Result<Duration, StackError> {
        let known = self.known_services();
        let process = self
            .services
            .get_mut(name)
            .ok_or_else(|| unknown_service(name, &known))?;
        let log_from = std::fs::metadata(&process.log).map_or(0, |m| m.len());
        let infra = self.infra.as_mut().expect("present until shutdown");
        process.spawn(infra).await?;
        process.await_ready(&self.http, log_from).await
    }

    /// Whether `service` passes its readiness check now (a log check: whether its log ever
    /// said so); why not, when it does not.
    pub async fn check_ready(&self, service: &str) -> Result<(), String> {
        let process = self
            .services
            .get(service)
            .ok_or_else(|| unknown_service(service, &self.known_services()).to_string())?;
        process.check_ready(&self.http, 0).await
    }

    fn known_services(&self) -> String {
        self.system.start_order().join(", ")
    }

    /// The infrastructure under the services.
    pub fn infra(&self) -> &Infra {
        self.infra.as_ref().expect("present until shutdown")
    }

    /// A service's own address, `http://127.0.0.1:{port}`, bypassing every proxy (for
    /// workloads, checkers and set-up).
    pub fn service_url(&self, service: &str) -> Result<String, StackError> {
        let process = self
            .services
            .get(service)
            .ok_or_else(|| unknown_service(service, &self.known_services()))?;
        process.url().ok_or_else(|| StackError::Unknown {
            what: "listening service",
            name: service.to_string(),
            known: self
                .services
                .values()
                .filter(|p| p.port.is_some())
                .map(|p| p.spec.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// A direct (unproxied) URL to one of the described databases, for checkers.
    pub fn database_url(&self, database: &str) -> Result<String, StackError> {
        let databases = self
            .system
            .postgres
            .as_ref()
            .map(|p| p.databases.clone())
            .unwrap_or_default();
        if !databases.iter().any(|d| d == database) {
            return Err(StackError::Unknown {
                what: "database",
                name: database.to_string(),
                known: databases.join(", "),
            });
        }
        Ok(self.infra().postgres_admin_url_for(database)?)
    }

    /// The Toxiproxy client and proxy name that carry `link` (`client->server`); for a link
    /// to a container with several ports, the first port's (see [`Stack::link_proxies`]).
    pub fn link(&self, link: &str) -> Result<(ToxiproxyClient, String), StackError> {
        let (client, mut proxies) = self.link_proxies(link)?;
        Ok((client, proxies.remove(0)))
    }

    /// The Toxiproxy client and every proxy that carries `link`: one, or one per port of a
    /// container with several. A fault on the link strikes them all.
    pub fn link_proxies(&self, link: &str) -> Result<(ToxiproxyClient, Vec<String>), StackError> {
        let to_postgres = self.infra().link(link).is_some_and(|l| l.server == "postgres");
        if self.direct_links && (self.link_ports.contains_key(link) || to_postgres) {
            return Err(StackError::Io {
                action: format!("faulting {link}"),
                message: "this stack was started with direct links (a benchmark's): the link does not pass through Toxiproxy".into(),
            });
        }
        if self.link_ports.contains_key(link) {
            let (client, server) = link.split_once("->").expect("service links have an arrow");
            return Ok((self.host_proxy.client.clone(), vec![proxy_name(client, server)]));
        }
        match self.infra().link(link).filter(|l| l.proxy.is_some()) {
            Some(found) => Ok((self.infra().toxiproxy_client(), found.proxies())),
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

    /// The request proxy on `link`, a link between two services (`order->payment`).
    pub fn request_proxy(&self, link: &str) -> Result<&crate::intercept::RequestProxy, StackError> {
        self.request_proxies
            .get(link)
            .ok_or_else(|| StackError::Unknown {
                what: "link between services",
                name: link.to_string(),
                known: self.link_ports.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// The statement proxy on `link`, a service's link to Postgres (`inventory->postgres`).
    pub fn statement_proxy(
        &self,
        link: &str,
    ) -> Result<&crate::intercept::postgres::StatementProxy, StackError> {
        self.statement_proxies.get(link).ok_or_else(|| StackError::Unknown {
            what: "link to postgres with a statement proxy",
            name: link.to_string(),
            known: self.statement_proxies.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The broker proxy on `link`, a service's link to Kafka (`order->kafka`).
    pub fn broker_proxy(&self, link: &str) -> Result<&crate::intercept::kafka::BrokerProxy, StackError> {
        self.infra().broker_proxy(link).ok_or_else(|| StackError::Unknown {
            what: "link to kafka with a broker proxy",
            name: link.to_string(),
            known: self.infra().broker_proxies().map(|(l, _)| l.clone()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Every call site the request proxies saw since the last reset or
    /// [`forget_call_sites`](Self::forget_call_sites), in the order first seen.
    pub fn call_sites(&self) -> Vec<crate::intercept::CallSite> {
        self.request_proxies.call_sites()
    }

    /// The most requests in flight at once on `link` (a link between two services) from
    /// `since` on, and the longest stretch with more than `bound`; `None` without a request
    /// proxy there (a stack started without them).
    pub fn in_flight(
        &self,
        link: &str,
        bound: u32,
        since: std::time::Instant,
    ) -> Option<crate::intercept::InFlight> {
        self.request_proxies
            .get(link)
            .map(|proxy| proxy.in_flight(bound, since))
    }

    /// The answers on `link` that broke its callee's promise to replay them, among requests
    /// sent from `since` on; `None` without a request proxy there.
    pub fn broken_replays(
        &self,
        link: &str,
        since: std::time::Instant,
    ) -> Option<Vec<crate::intercept::BrokenReplay>> {
        self.request_proxies
            .get(link)
            .map(|proxy| proxy.broken_replays(since))
    }

    /// Every statement the statement proxies saw since the last reset or
    /// [`forget_call_sites`](Self::forget_call_sites), as call sites (method `SQL`, the
    /// statement's fingerprint as the route), by link and fingerprint.
    pub fn statement_sites(&self) -> Vec<crate::intercept::CallSite> {
        self.statement_proxies.values().flat_map(|proxy| proxy.sites()).collect()
    }

    /// Every produce, fetch and offset commit the broker proxies saw since the last reset or
    /// [`forget_call_sites`](Self::forget_call_sites): method `KAFKA`.
    pub fn broker_sites(&self) -> Vec<crate::intercept::CallSite> {
        self.infra().broker_proxies().flat_map(|(_, proxy)| proxy.sites()).collect()
    }

    /// Forgets the call sites (statements and broker requests) seen so far.
    pub fn forget_call_sites(&self) {
        self.request_proxies.forget();
        for proxy in self.statement_proxies.values() {
            proxy.forget();
        }
        for (_, proxy) in self.infra().broker_proxies() {
            proxy.forget();
        }
    }

    /// The consumer groups known to Kafka, each with the described topics it has committed
    /// offsets on (a group with none is left out).
    pub async fn consumer_groups(&self) -> Result<Vec<(String, Vec<String>)>, StackError> {
        let topics = self.system.topic_names();
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let bootstrap = self.infra().kafka_bootstrap(crate::infra::HARNESS_CLIENT)?;
        tokio::task::spawn_blocking(move || {
            groups_consuming(&bootstrap, &partitions_of(&bootstrap, &topics)?)
        })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|message| StackError::Io {
                action: "listing Kafka's consumer groups".into(),
                message,
            })
    }

    fn process(&self, service: &str) -> Result<&ServiceProcess, StackError> {
        self.services
            .get(service)
            .ok_or_else(|| unknown_service(service, &self.known_services()))
    }

    fn process_mut(&mut self, service: &str) -> Result<&mut ServiceProcess, StackError> {
        let known = self.known_services();
        self.services
            .get_mut(service)
            .ok_or_else(|| unknown_service(service, &known))
    }

    /// Sends `signal` to a service process with kill(2).
    fn signal_process(process: &ServiceProcess, child: &Child, signal: i32) -> Result<(), StackError> {
        let pid = child
            .id()
            .ok_or_else(|| process.failure("is not running"))?;
        // SAFETY: kill(2) with a pid this stack spawned and still holds; no memory is shared.
        let result = unsafe { libc::kill(pid as i32, signal) };
        if result != 0 {
            return Err(process.failure(format!(
                "signal {signal} failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Freezes (`SIGSTOP`; a container: the engine's freezer) or thaws (`SIGCONT`) a service.
    async fn freeze(&self, service: &str, frozen: bool) -> Result<(), StackError> {
        let process = self.process(service)?;
        match &process.running {
            None => Err(process.failure("is not running")),
            Some(Running::Process(child)) => {
                let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
                Self::signal_process(process, child, signal)
            }
            Some(Running::Container(container)) => {
                let outcome = if frozen {
                    container.pause().await
                } else {
                    container.unpause().await
                };
                outcome.map_err(|e| process.failure(e.to_string()))
            }
        }
    }

    /// Kills a service with SIGKILL, as a crash would, and reaps it (a container is removed
    /// by force, which kills it: [`Stack::restart`] starts a fresh one, as an orchestrator
    /// would).
    pub async fn kill(&mut self, service: &str) -> Result<(), StackError> {
        let process = self.process_mut(service)?;
        match process.running.take() {
            None => Err(process.failure("is not running")),
            Some(Running::Process(mut child)) => {
                Self::signal_process(process, &child, libc::SIGKILL)?;
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
                Ok(())
            }
            Some(Running::Container(container)) => container
                .remove()
                .await
                .map_err(|e| process.failure(e.to_string())),
        }
    }

    /// Stops a service gracefully, with its stop signal (killing it after its grace period),
    /// as a deployment would: requests in flight finish, a consumer leaves its group.
    pub async fn stop(&mut self, service: &str) -> Result<(), StackError> {
        let process = self.process_mut(service)?;
        if process.running.is_none() {
            return Err(process.failure("is not running"));
        }
        process.stop().await;
        Ok(())
    }

    /// Moves consumer group `group`'s committed offsets on `topic` back by `events` per
    /// partition, never before a partition's first retained record (a partition the group has
    /// committed nothing on is left alone). The group must have no members: stop its consumers
    /// first. Returns `(partition, from, to)` for each partition moved.
    pub async fn rewind_group(
        &self,
        group: &str,
        topic: &str,
        events: u32,
    ) -> Result<Vec<(i32, i64, i64)>, StackError> {
        let bootstrap = self.infra().kafka_bootstrap(crate::infra::HARNESS_CLIENT)?;
        let (group, topic) = (group.to_string(), topic.to_string());
        let action = format!("moving consumer group {group}'s offsets on {topic} back");
        tokio::task::spawn_blocking(move || rewind(&bootstrap, &group, &topic, events))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|message| StackError::Io { action, message })
    }

    /// Waits (bounded) until a service exits by itself — a crash a test provoked — and
    /// describes how it ended.
    pub async fn await_exit(
        &mut self,
        service: &str,
        timeout: Duration,
    ) -> Result<String, StackError> {
        let process = self.process_mut(service)?;
        let clock = Instant::now();
        loop {
            match &mut process.running {
                None => return Err(process.failure("is not running")),
                Some(Running::Process(child)) => {
                    let left = timeout.saturating_sub(clock.elapsed());
                    return match tokio::time::timeout(left, child.wait()).await {
                        Ok(Ok(status)) => {
                            process.running = None;
                            Ok(status.to_string())
                        }
                        Ok(Err(e)) => Err(process.failure(format!("waiting for it failed: {e}"))),
                        Err(_) => Err(process.failure(format!("still running after {timeout:?}"))),
                    };
                }
                Some(Running::Container(_)) => {
                    if let Some(status) = process.exited().await {
                        if let Some(Running::Container(container)) = process.running.take() {
                            let _ = container.remove().await;
                        }
                        return Ok(status);
                    }
                    if clock.elapsed() > timeout {
                        return Err(process.failure(format!("still running after {timeout:?}")));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Stops a service with SIGSTOP (a container: the engine's freezer): it keeps its
    /// connections but answers nothing.
    pub async fn pause(&self, service: &str) -> Result<(), StackError> {
        self.freeze(service, true).await
    }

    /// Continues a service stopped by [`pause`](Self::pause).
    pub async fn resume(&self, service: &str) -> Result<(), StackError> {
        self.freeze(service, false).await
    }

    /// Starts a killed service again with the same port and configuration, and waits until
    /// it is ready.
    pub async fn restart(&mut self, service: &str) -> Result<Duration, StackError> {
        let running = self.process_mut(service)?;
        if running.running.is_some() && running.exited().await.is_none() {
            return Err(running.failure("is still running; kill it before restarting"));
        }
        if let Some(Running::Container(container)) = running.running.take() {
            let _ = container.remove().await;
        }
        self.start_service(service).await
    }

    /// The text a service has written to its log so far.
    pub fn service_log(&self, service: &str) -> Result<String, StackError> {
        let process = self
            .services
            .get(service)
            .ok_or_else(|| unknown_service(service, &self.known_services()))?;
        std::fs::read_to_string(&process.log)
            .map_err(io_error(format!("reading {}", process.log.display())))
    }

    /// Where the services' logs are written.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Copies the logs into `dir`: those the stack's processes write (each service's, the host
    /// Toxiproxy's) and its containers'. On a stack that was reset, only what was written since
    /// the last reset began (the restarts it made included; for a container, from that second
    /// on), so that the run after it gets its own part, not every earlier run's; otherwise
    /// everything since the stack started. A log shorter than its mark (written afresh) is
    /// copied whole.
    pub async fn save_logs(&self, dir: &Path) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(&self.run_dir)?.flatten() {
            let target = dir.join(entry.file_name());
            let mut source = std::fs::File::open(entry.path())?;
            let length = source.metadata()?.len();
            let from = match self.log_marks.get(&entry.file_name()) {
                Some(&mark) if mark <= length => mark,
                _ => 0,
            };
            source.seek(SeekFrom::Start(from))?;
            std::io::copy(&mut source, &mut std::fs::File::create(&target)?)?;
        }
        self.infra().save_logs(dir, self.reset_began).await
    }

    /// How long each part took to become ready.
    pub fn timings(&self) -> &BTreeMap<String, Duration> {
        &self.timings
    }

    /// Stops every service with its stop signal (graceful: requests in flight finish, offsets
    /// are committed), waits for each (killing it after its grace period), stops the host
    /// Toxiproxy, tears the infrastructure down and removes the stack's folder of logs (a
    /// run has copied them into its report by then).
    pub async fn shutdown(mut self) -> Result<(), StackError> {
        self.stop_services().await;
        let _ = self.host_proxy.child.kill().await;
        if let Some(infra) = self.infra.take() {
            infra.shutdown().await?;
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
        Ok(())
    }
}

impl Stack {
    /// Stops every service with its stop signal, in reverse start order, killing one that has
    /// not stopped after its grace period.
    /// Stops every service at once (each with its signal and grace period).
    async fn stop_services(&mut self) {
        futures_util::future::join_all(self.services.values_mut().map(ServiceProcess::stop)).await;
    }

    /// Makes the running stack as good as new for another run, without restarting its
    /// containers: stops the services, removes every toxic and re-enables every proxy, drops
    /// and recreates the described databases, empties the described Kafka topics (their
    /// records and the consumer groups reading them deleted; recreated when that fails), and
    /// starts the services again. Returns how long it took ([`Stack::last_reset`] by phase).
    pub async fn reset(&mut self) -> Result<Duration, StackError> {
        self.log_marks = log_lengths(&self.run_dir);
        self.reset_began = Some(std::time::SystemTime::now());
        if self.system.reset == crate::system::ResetMode::Warm {
            match self.warm_reset().await {
                Ok(took) => return Ok(took),
                Err(why) => tracing::info!(%why, "a warm reset failed: resetting afresh"),
            }
        }
        self.fresh_reset().await
    }

    /// The description's `reset = "warm"`: the services keep running. Every proxy cleared,
    /// every table of the described databases emptied (`TRUNCATE … RESTART IDENTITY`, the
    /// migration-history tables of the common tools kept), every record of the described
    /// topics deleted (a consumer resumes past them), and each service that is not ready
    /// restarted.
    async fn warm_reset(&mut self) -> Result<Duration, StackError> {
        let clock = Instant::now();
        let mut phases = BTreeMap::new();
        let mut phase = Instant::now();
        let mut lap = |name: &'static str| {
            phases.insert(name, phase.elapsed());
            phase = Instant::now();
        };
        self.reset_proxies().await?;
        lap("proxies");
        truncate_databases(&self.system, self.infra()).await?;
        lap("databases");
        let topics = self.system.topic_names();
        empty_topics(self.infra(), &topics, false)
            .await
            .map_err(|message| StackError::Io {
                action: "emptying the topics".into(),
                message,
            })?;
        lap("topics");
        for service in self.system.start_order().iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            let process = self.services.get_mut(&service).expect("described");
            let ready = process.exited().await.is_none() && process.check_ready(&self.http, 0).await.is_ok();
            if !ready {
                process.stop().await;
                self.start_service(&service).await?;
            }
        }
        lap("services");
        self.last_reset = phases;
        Ok(clock.elapsed())
    }

    /// Every proxy as it was at start: Toxiproxy's toxics gone and proxies enabled, and no
    /// request or statement fault in effect, nothing remembered of the calls seen.
    async fn reset_proxies(&self) -> Result<(), StackError> {
        self.host_proxy.client.reset().await?;
        self.request_proxies.clear();
        self.request_proxies.forget();
        for proxy in self.statement_proxies.values() {
            proxy.clear();
            proxy.forget();
        }
        for (_, proxy) in self.infra().broker_proxies() {
            proxy.clear();
            proxy.forget();
        }
        self.infra().toxiproxy_client().reset().await?;
        Ok(())
    }

    /// A fresh reset whatever the description says: services restarted on new databases
    /// and emptied topics. After a run that failed, a warm reset could hand its broken
    /// in-memory state (a stuck consumer, calls that never return holding bulkhead slots) to
    /// the next run.
    pub async fn fresh_reset(&mut self) -> Result<Duration, StackError> {
        let clock = Instant::now();
        let mut phases = BTreeMap::new();
        let mut phase = Instant::now();
        let mut lap = |name: &'static str| {
            phases.insert(name, phase.elapsed());
            phase = Instant::now();
        };
        self.stop_services().await;
        lap("stop services");
        self.reset_proxies().await?;
        lap("proxies");
        drop_databases(&self.system, self.infra()).await?;
        create_databases(&self.system, self.infra()).await?;
        lap("databases");
        let topics = self.system.topic_names();
        // Emptying the topics is quick; recreating them is the way back when it fails.
        if let Err(why) = empty_topics(self.infra(), &topics, true).await {
            tracing::info!(%why, "emptying the topics failed: recreating them");
            delete_topics(self.infra(), &topics).await?;
            create_topics(&self.system, self.infra()).await?;
        }
        lap("topics");
        self.start_services().await?;
        lap("start services");
        self.last_reset = phases;
        Ok(clock.elapsed())
    }

    /// How long each phase of the last [`reset`](Self::reset) took.
    pub fn last_reset(&self) -> &BTreeMap<&'static str, Duration> {
        &self.last_reset
    }
}

/// Tables that record which migrations ran (sqlx, Flyway, Liquibase, golang-migrate, Rails,
/// goose, Diesel, Alembic): kept by a warm reset, so a service does not migrate again.
const MIGRATION_TABLES: [&str; 9] = [
    "_sqlx_migrations",
    "flyway_schema_history",
    "databasechangelog",
    "databasechangeloglock",
    "schema_migrations",
    "goose_db_version",
    "__diesel_schema_migrations",
    "alembic_version",
    "ar_internal_metadata",
];

/// Empties every table of every described database but the migration-history ones, in one
/// `TRUNCATE … RESTART IDENTITY CASCADE` per database (bounded by a lock timeout: a
/// transaction left open by a service fails the reset instead of hanging it).
async fn truncate_databases(system: &System, infra: &Infra) -> Result<(), StackError> {
    let Some(postgres) = &system.postgres else {
        return Ok(());
    };
    let keep = MIGRATION_TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let statement = format!(
        "DO $$ DECLARE tables text; BEGIN \
         SET LOCAL lock_timeout = '5s'; \
         SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') INTO tables FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND tablename NOT IN ({keep}); \
         IF tables IS NOT NULL THEN EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY CASCADE'; END IF; \
         END $$"
    );
    let work = postgres.databases.iter().map(|database| {
        let statement = statement.clone();
        async move {
            let io = |e: sqlx::Error| StackError::Io {
                action: format!("emptying the tables of database {database}"),
                message: e.to_string(),
            };
            let url = infra.postgres_admin_url_for(database)?;
            let mut connection = sqlx::postgres::PgConnection::connect(&url).await.map_err(io)?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut connection)
                .await
                .map_err(io)?;
            let _ = connection.close().await;
            Ok::<(), StackError>(())
        }
    });
    for result in futures_util::future::join_all(work).await {
        result?;
    }
    Ok(())
}

async fn drop_databases(system: &System, infra: &Infra) -> Result<(), StackError> {
    let Some(postgres) = &system.postgres else {
        return Ok(());
    };
    let url = infra.postgres_admin_url()?;
    let mut admin = sqlx::postgres::PgConnection::connect(&url)
        .await
        .map_err(|e| StackError::Io {
            action: "connecting to Postgres to drop databases".into(),
            message: e.to_string(),
        })?;
    for database in &postgres.databases {
        // The names were validated when the description was read (a-z, 0-9, `_`, `-`).
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

/// [`Stack::rewind_group`], on a blocking thread: the group's committed offsets read, moved
/// and committed again through the group coordinator (an empty group accepts a commit from a
/// client that is no member of it).
fn rewind(bootstrap: &str, group: &str, topic: &str, events: u32) -> Result<Vec<(i32, i64, i64)>, String> {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let timeout = Duration::from_secs(15);
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| e.to_string())?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic {topic} has no partitions"));
    }
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer
        .committed_offsets(wanted, timeout)
        .map_err(|e| e.to_string())?;
    let mut moves = Vec::new();
    let mut to_commit = TopicPartitionList::new();
    for element in committed.elements() {
        let Offset::Offset(from) = element.offset() else {
            continue;
        };
        let (low, _) = consumer
            .fetch_watermarks(topic, element.partition(), timeout)
            .map_err(|e| e.to_string())?;
        let to = (from - i64::from(events)).max(low);
        if to < from {
            to_commit
                .add_partition_offset(topic, element.partition(), Offset::Offset(to))
                .map_err(|e| e.to_string())?;
            moves.push((element.partition(), from, to));
        }
    }
    if !moves.is_empty() {
        consumer
            .commit(&to_commit, CommitMode::Sync)
            .map_err(|e| format!("{e} (does the group still have members? stop them first)"))?;
    }
    Ok(moves)
}

/// Makes `topics` as good as new without recreating them: every record deleted (each
/// partition's start moved to its end, so a reader from the start reads nothing old) and,
/// with `delete_groups`, every consumer group with offsets on them deleted (so a consumer
/// starting again begins where the topic now starts; the services must be stopped, as a
/// group with members cannot be deleted). A running consumer goes on from where it was,
/// or from the new start if that was before it.
async fn empty_topics(infra: &Infra, topics: &[String], delete_groups: bool) -> Result<(), String> {
    use rdkafka::admin::AdminOptions;
    use rdkafka::{Offset, TopicPartitionList};
    if topics.is_empty() {
        return Ok(());
    }
    let bootstrap = infra
        .kafka_bootstrap(crate::infra::HARNESS_CLIENT)
        .map_err(|e| e.to_string())?;
    let admin = kafka_admin(infra, "connecting to Kafka to empty topics").map_err(|e| e.to_string())?;
    // Partitions and groups are read on a blocking thread: librdkafka's calls wait.
    let (partitions, groups) = {
        let topics = topics.to_vec();
        tokio::task::spawn_blocking(move || -> Result<_, String> {
            let partitions = partitions_of(&bootstrap, &topics)?;
            for name in &topics {
                if !partitions.iter().any(|(topic, _)| topic == name) {
                    return Err(format!("topic {name} is not there"));
                }
            }
            let groups = if delete_groups {
                groups_consuming(&bootstrap, &partitions)?
            } else {
                Vec::new()
            };
            Ok((partitions, groups))
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let mut everything = TopicPartitionList::new();
    for (topic, partition) in &partitions {
        everything
            .add_partition_offset(topic, *partition, Offset::End)
            .map_err(|e| e.to_string())?;
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let deleted = admin
        .delete_records(&everything, &options)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(failed) = deleted.elements().iter().find(|e| e.error().is_err()) {
        return Err(format!(
            "deleting the records of {}/{}: {:?}",
            failed.topic(),
            failed.partition(),
            failed.error()
        ));
    }
    let group_names: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
    if !group_names.is_empty() {
        for result in admin
            .delete_groups(&group_names, &options)
            .await
            .map_err(|e| e.to_string())?
        {
            if let Err((group, code)) = result {
                return Err(format!("deleting consumer group {group}: {code}"));
            }
        }
    }
    Ok(())
}

/// Every `(topic, partition)` of those of `topics` that exist, topic by topic; blocking.
fn partitions_of(bootstrap: &str, topics: &[String]) -> Result<Vec<(String, i32)>, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(15))
        .map_err(|e| e.to_string())?;
    let mut partitions = Vec::new();
    for name in topics {
        for topic in metadata.topics().iter().filter(|t| t.name() == name) {
            partitions.extend(topic.partitions().iter().map(|p| (name.clone(), p.id())));
        }
    }
    Ok(partitions)
}

/// The consumer groups with committed offsets on any of `partitions` (as
/// [`partitions_of`] reads them), each with those topics; blocking.
fn groups_consuming(
    bootstrap: &str,
    partitions: &[(String, i32)],
) -> Result<Vec<(String, Vec<String>)>, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let timeout = Duration::from_secs(15);
    let config = |group: &str| {
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("log_level", "3")
            .create::<BaseConsumer>()
            .map_err(|e| e.to_string())
    };
    let mut wanted = TopicPartitionList::new();
    for (topic, partition) in partitions {
        wanted.add_partition(topic, *partition);
    }
    let lister = config("faultline-harness-lister")?;
    let groups = lister.fetch_group_list(None, timeout).map_err(|e| e.to_string())?;
    let mut consuming = Vec::new();
    for group in groups.groups() {
        let consumer = config(group.name())?;
        let committed = consumer
            .committed_offsets(wanted.clone(), timeout)
            .map_err(|e| e.to_string())?;
        let mut on: Vec<String> = committed
            .elements()
            .iter()
            .filter(|e| matches!(e.offset(), Offset::Offset(_)))
            .map(|e| e.topic().to_string())
            .collect();
        on.dedup();
        if !on.is_empty() {
            consuming.push((group.name().to_string(), on));
        }
    }
    consuming.sort();
    Ok(consuming)
}

fn kafka_admin(
    infra: &Infra,
    action: &str,
) -> Result<rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>, StackError> {
    let bootstrap = infra.kafka_bootstrap(crate::infra::HARNESS_CLIENT)?;
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("log_level", "3")
        .create()
        .map_err(|e: rdkafka::error::KafkaError| StackError::Io {
            action: action.to_string(),
            message: e.to_string(),
        })
}

/// Creates the described topics (a topic that exists already is fine).
async fn create_topics(system: &System, infra: &Infra) -> Result<(), StackError> {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    use rdkafka::types::RDKafkaErrorCode;
    let Some(kafka) = &system.kafka else {
        return Ok(());
    };
    if kafka.topics.is_empty() {
        return Ok(());
    }
    let admin = kafka_admin(infra, "connecting to Kafka to create topics")?;
    let new_topics: Vec<NewTopic<'_>> = kafka
        .topics
        .iter()
        .map(|t| NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| StackError::Io {
            action: "creating Kafka topics".into(),
            message: e.to_string(),
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(StackError::Io {
                    action: format!("creating Kafka topic {topic}"),
                    message: code.to_string(),
                })
            }
        }
    }
    // Closing an rdkafka client blocks while it talks to the broker.
    let _ = tokio::task::spawn_blocking(move || drop(admin)).await;
    Ok(())
}

/// Deletes `topics` and waits (bounded) until the broker no longer lists them, so they can
/// be created afresh.
async fn delete_topics(infra: &Infra, topics: &[String]) -> Result<(), StackError> {
    use rdkafka::admin::AdminOptions;
    if topics.is_empty() {
        return Ok(());
    }
    let admin = kafka_admin(infra, "connecting to Kafka to delete topics")?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    // Unknown topics are fine: a run may not have created them.
    let _ = admin
        .delete_topics(&names, &AdminOptions::new())
        .await
        .map_err(|e| StackError::Io {
            action: "deleting topics".into(),
            message: e.to_string(),
        })?;
    let topics = topics.to_vec();
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

fn unknown_service(name: &str, known: &str) -> StackError {
    StackError::Unknown {
        what: "service",
        name: name.to_string(),
        known: known.to_string(),
    }
}

/// The Toxiproxy proxy carrying `client->server`.
fn proxy_name(client: &str, server: &str) -> String {
    format!("{client}-{server}")
}

/// What one service's placeholders resolve to. Before the infrastructure runs (`infra` is
/// `None`) only the placeholders that need none resolve; the others render as themselves,
/// which is enough to find programs and unset variables before anything starts.
struct Values<'a> {
    system: &'a System,
    service: &'a ServiceSpec,
    bin_dir: &'a Path,
    ports: &'a BTreeMap<String, u16>,
    link_ports: &'a BTreeMap<String, u16>,
    infra: Option<&'a Infra>,
    /// Where each service's link to Postgres is reached when a statement proxy fronts it.
    statement_proxies: Option<&'a BTreeMap<String, String>>,
    /// Postgres and service links resolve to their servers' own addresses.
    direct_links: bool,
}

impl<'a> Values<'a> {
    fn preflight(
        system: &'a System,
        service: &'a ServiceSpec,
        bin_dir: &'a Path,
        ports: &'a BTreeMap<String, u16>,
        link_ports: &'a BTreeMap<String, u16>,
    ) -> Self {
        Self {
            system,
            service,
            bin_dir,
            ports,
            link_ports,
            infra: None,
            statement_proxies: None,
            direct_links: false,
        }
    }
}

impl crate::system::template::Resolve for Values<'_> {
    fn resolve(&self, placeholder: &Placeholder) -> Result<String, String> {
        let name = &self.service.name;
        let postgres = |part: &dyn Fn(&crate::infra::PostgresServer, &str) -> String| {
            let Some(infra) = self.infra else {
                return Ok("{postgres}".to_string());
            };
            let server = infra.postgres().map_err(|e| e.to_string())?;
            let link = format!("{name}->postgres");
            let fronted = self.statement_proxies.and_then(|proxies| proxies.get(&link));
            let address = if self.direct_links {
                server.direct_address.clone()
            } else if let Some(address) = fronted {
                address.clone()
            } else {
                infra
                    .link(&format!("{name}->postgres"))
                    .map(|l| l.address.clone())
                    .ok_or_else(|| format!("no link {name}->postgres"))?
            };
            Ok(part(server, &address))
        };
        match placeholder {
            Placeholder::Port => self
                .ports
                .get(name)
                .map(u16::to_string)
                .ok_or_else(|| "{port}: the service has no port".to_string()),
            Placeholder::Dir => Ok(self.system.dir.display().to_string()),
            Placeholder::Bin(binary) => Ok(self.bin_dir.join(binary).display().to_string()),
            Placeholder::Env { name, default } => {
                crate::system::template::environment_value(name, default.as_deref())
            }
            Placeholder::Link {
                client,
                server,
                port,
                url,
            } => {
                let link = format!("{client}->{server}");
                let address = match (self.link_ports.get(&link), self.infra) {
                    (Some(_), Some(_)) if self.direct_links => {
                        let port = self
                            .ports
                            .get(server.as_str())
                            .ok_or_else(|| format!("{server} has no port"))?;
                        format!("127.0.0.1:{port}")
                    }
                    (Some(port), _) => format!("127.0.0.1:{port}"),
                    (None, Some(infra)) => infra
                        .link(&link)
                        .and_then(|l| l.address_of(*port))
                        .map(str::to_string)
                        .ok_or_else(|| match port {
                            Some(port) => format!("no link {link} to port {port}"),
                            None => format!("no link {link}"),
                        })?,
                    (None, None) => return Ok(format!("{{{link}}}")),
                };
                Ok(if *url { format!("http://{address}") } else { address })
            }
            Placeholder::PostgresUrl(database) => {
                postgres(&|server, address| server.url_to(address, database))
            }
            Placeholder::PostgresqlUrl(database) => postgres(&|server, address| {
                let url = server.url_to(address, database);
                match url.strip_prefix("postgres://") {
                    Some(rest) => format!("postgresql://{rest}"),
                    None => url,
                }
            }),
            Placeholder::PostgresHost => postgres(&|_, address| {
                address
                    .rsplit_once(':')
                    .map_or(address, |(h, _)| h)
                    .to_string()
            }),
            Placeholder::PostgresPort => {
                postgres(&|_, address| address.rsplit_once(':').map_or("", |(_, p)| p).to_string())
            }
            Placeholder::PostgresUser => postgres(&|server, _| server.user.clone()),
            Placeholder::PostgresPassword => postgres(&|server, _| server.password.clone()),
            Placeholder::KafkaBootstrap => match self.infra {
                None => Ok("{kafka}".to_string()),
                Some(infra) => infra.kafka_bootstrap(name).map_err(|e| e.to_string()),
            },
        }
    }
}

/// `spec`'s environment with every placeholder resolved.
fn resolve_env(
    system: &System,
    spec: &ServiceSpec,
    values: &Values<'_>,
) -> Result<Vec<(String, String)>, StackError> {
    spec.env
        .iter()
        .map(|(key, template)| {
            let value = template
                .render(values)
                .map_err(|message| StackError::Resolve {
                    file: system.file.display().to_string(),
                    service: spec.name.clone(),
                    message: format!("env.{key}: {message}"),
                })?;
            Ok((key.clone(), value))
        })
        .collect()
}

/// How `spec` starts: its container, or its program and arguments — the program must exist
/// (a bare name is looked up on `PATH`).
fn resolve_launch(
    system: &System,
    spec: &ServiceSpec,
    values: &Values<'_>,
) -> Result<Launch, StackError> {
    let mut argv = Vec::new();
    for (i, template) in spec.command.iter().enumerate() {
        argv.push(
            template
                .render(values)
                .map_err(|message| StackError::Resolve {
                    file: system.file.display().to_string(),
                    service: spec.name.clone(),
                    message: format!("command[{i}]: {message}"),
                })?,
        );
    }
    if let Some(image) = &spec.image {
        return Ok(Launch::Container(ContainerSpec {
            name: spec.name.clone(),
            image: image.clone(),
            cmd: (!argv.is_empty()).then_some(argv),
            mounts: spec
                .mounts
                .iter()
                .map(|m| (m.host.clone(), m.container.clone(), m.read_only))
                .collect(),
            ..Default::default()
        }));
    }
    let program = argv.remove(0);
    let found = if program.contains('/') {
        let path = spec.workdir.join(&program);
        path.is_file().then_some(path)
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(&program))
                .find(|candidate| candidate.is_file())
        })
    };
    let uses_bin = spec
        .command
        .first()
        .is_some_and(|t| t.placeholders().any(|p| matches!(p, Placeholder::Bin(_))));
    match found {
        Some(program) => Ok(Launch::Process {
            program,
            args: argv,
        }),
        None => Err(StackError::BinaryMissing {
            service: spec.name.clone(),
            program,
            hint: if uses_bin {
                "build the binaries with `cargo build --workspace --bins` (ci/test does), or set FAULTLINE_SERVICE_BIN_DIR".into()
            } else {
                format!(
                    "the first element of services.{}.command in {} must be a program on PATH or a path relative to the service's workdir",
                    spec.name,
                    system.file.display()
                )
            },
        }),
    }
}

static SERVICE_BIN_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes every later stack of this process run its `{bin:…}` programs from `dir`: what
/// `faultline bench` does with the release build it made. Once per process; a second call
/// gives the folder back.
pub fn use_service_bin_dir(dir: PathBuf) -> Result<(), PathBuf> {
    SERVICE_BIN_DIR.set(dir)
}

/// Where the service binaries are: the folder [`use_service_bin_dir`] set,
/// `FAULTLINE_SERVICE_BIN_DIR`, or the target folder of the running executable (`target/debug`
/// for `target/debug/deps/<test>` and `target/debug/<bin>`).
pub fn service_bin_dir() -> PathBuf {
    if let Some(dir) = SERVICE_BIN_DIR.get() {
        return dir.clone();
    }
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

/// A port that was free a moment ago on 127.0.0.1, for a service or proxy to listen on later.
///
/// Between choosing a port and its listener binding it there are seconds (the infrastructure
/// starts in between), so the port is taken below the kernel's ephemeral range — where
/// outgoing connections (to Postgres, Kafka, the services) get their local ports and would
/// otherwise steal it — and never handed out twice by this process, so stacks started side by
/// side in one test binary do not collide either.
fn free_port() -> Result<u16, StackError> {
    use rand::Rng;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<std::collections::BTreeSet<u16>> =
        Mutex::new(std::collections::BTreeSet::new());
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_from.max(12_000) - 1);
    let mut rng = rand::rng();
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..1000 {
        let port = rng.random_range(low..=high);
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return Ok(port);
        }
    }
    // Everything tried is taken: fall back on a port the kernel picks.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("finding a free port"))?
        .port();
    handed_out.insert(port);
    Ok(port)
}

async fn create_databases(system: &System, infra: &Infra) -> Result<(), StackError> {
    let Some(postgres) = &system.postgres else {
        return Ok(());
    };
    let url = infra.postgres_admin_url()?;
    let mut admin = sqlx::postgres::PgConnection::connect(&url)
        .await
        .map_err(|e| StackError::Io {
            action: "connecting to Postgres to create databases".into(),
            message: e.to_string(),
        })?;
    for database in &postgres.databases {
        // The names were validated when the description was read (a-z, 0-9, `_`, `-`).
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
