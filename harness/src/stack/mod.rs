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

mod data;
mod process;
mod toxiproxy;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_chaos::toxiproxy::{NewProxy, ToxiproxyClient};
use tokio::process::Child;

use crate::infra::{proxy_name, Infra, InfraError};
use crate::system::System;
use data::{
    create_databases, create_topics, delete_topics, drop_databases, empty_topics, groups_consuming,
    partitions_of, rewind, truncate_databases,
};
use process::{free_port, Running, ServiceProcess};
pub use process::{service_bin_dir, use_service_bin_dir};
use toxiproxy::{start_host_toxiproxy, HostToxiproxy};
use values::{resolve_before, resolve_env, resolve_launch, Values};

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
            resolve_before(system, spec, &values)?;
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
            let before = resolve_before(system, spec, &values)?;
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
                    before,
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

    /// Starts every service on fresh databases, a group of independent ones at a time
    /// ([`System::start_levels`]): each group is spawned in start order — each service's
    /// migration step (`before`) run to its end first —, then awaited ready together. How
    /// long each took to be ready.
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
                process.run_before(infra).await?;
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
    /// topics deleted (a consumer resumes past them), each service's migration step
    /// (`before`) run again, and each service that is not ready restarted.
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
        // The migration steps again, on the emptied tables: a migration tool finds its history
        // table kept and does nothing; a seeding step puts its rows back.
        for service in self.system.start_order().iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            let process = self.services.get_mut(&service).expect("described");
            let infra = self.infra.as_mut().expect("present until shutdown");
            process.run_before(infra).await?;
        }
        lap("before");
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

fn unknown_service(name: &str, known: &str) -> StackError {
    StackError::Unknown {
        what: "service",
        name: name.to_string(),
        known: known.to_string(),
    }
}
