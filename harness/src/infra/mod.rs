//! Real infrastructure for a run: Postgres, Apache Kafka and Toxiproxy, with every client's link
//! to Postgres and to Kafka running through its own Toxiproxy proxy, so any one link can be
//! faulted alone.
//!
//! ```no_run
//! use faultline_harness::infra::{Infra, InfraConfig};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let infra = Infra::start(InfraConfig::with_clients(["order", "payment"])).await?;
//! let db_url = infra.postgres_url("order")?;        // through proxy `order-postgres`
//! let brokers = infra.kafka_bootstrap("payment")?;  // through proxy `payment-kafka`
//! infra.toxiproxy_client().disable("payment-kafka").await?; // cut payment's Kafka link only
//! infra.shutdown().await?;                          // or just drop it
//! # Ok(()) }
//! ```
//!
//! # How it is laid out
//!
//! In the default (container) mode every run creates a bridge network `faultline-<run>` and on
//! it three containers, started through testcontainers, each labelled (see [`docker`]) and
//! removed when the [`Infra`] is shut down or dropped, also when start-up fails half-way.
//! Containers publish ports on 127.0.0.1 only and reach each other by container name
//! (`faultline-<run>-postgres`). Toxiproxy publishes its API (8474) and the container ports
//! [`PROXY_PORTS`] that its proxies listen on.
//!
//! Kafka tells clients where to reconnect (advertised listeners), which would bypass a proxy.
//! So the broker gets one listener per client, advertised as the host address of that client's
//! proxy: client `order` bootstraps at `127.0.0.1:<port of proxy order-kafka>` and every later
//! connection the broker hands it goes through that proxy too. Cutting `order-kafka` leaves
//! every other client's link untouched. The harness itself is the client [`HARNESS_CLIENT`],
//! whose proxy no fault schedule touches.
//!
//! Images come from `FAULTLINE_POSTGRES_IMAGE`, `FAULTLINE_KAFKA_IMAGE` and
//! `FAULTLINE_TOXIPROXY_IMAGE` (defaults: the official images); `ci/setup` builds local
//! equivalents and writes their names to `.faultline/images.env`.
//!
//! # External mode
//!
//! With `FAULTLINE_INFRA=external` no container is started: `FAULTLINE_TOXIPROXY_URL` names a
//! running Toxiproxy, `FAULTLINE_POSTGRES_ADDR` (host:port as Toxiproxy reaches it) a Postgres
//! server (`FAULTLINE_POSTGRES_USER`/`_PASSWORD`/`_DB`, default `faultline`), and
//! `FAULTLINE_KAFKA_BOOTSTRAP` a Kafka broker. Postgres links get proxies on that Toxiproxy;
//! Kafka links are direct there, because per-client proxies need broker listeners that only the
//! container mode configures — [`Link::proxy`] is `None` for them.
//!
//! Layer 2 (infrastructure) of the harness ([layers](crate#layers)): imports the description
//! ([`system`](crate::system)) and the protocol proxies it puts on links
//! ([`intercept`](crate::intercept)).

mod cleanup;
mod config;
pub mod docker;
mod error;
mod links;
mod ready;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use faultline_chaos::toxiproxy::{NewProxy, ToxiproxyClient};
use serde::Serialize;

use docker::Engine;
pub use docker::Sweep;
pub use docker::{ContainerSpec, RunningContainer};
pub use error::InfraError;

pub use crate::system::HARNESS_CLIENT;
use cleanup::Cleanup;
pub use cleanup::{remove_own_resources, sweep_leftovers};
use config::{environment_mode, required_env};
pub use config::{Image, Images, InfraConfig, ServerContainer};
pub use links::{Link, PortProxy, PostgresServer};
pub(crate) use ready::http_ready;
use ready::{await_ready, kafka_ready, poll_until, postgres_ready, server_ready};

/// Container ports Toxiproxy publishes for proxies to listen on.
pub const PROXY_PORTS: std::ops::RangeInclusive<u16> = 20000..=20039;
/// Toxiproxy's API port inside its container.
pub const TOXIPROXY_API_PORT: u16 = 8474;

pub const DEFAULT_POSTGRES_IMAGE: &str = "postgres:17";
pub const DEFAULT_KAFKA_IMAGE: &str = "apache/kafka:4.1.1";
pub const DEFAULT_TOXIPROXY_IMAGE: &str = "ghcr.io/shopify/toxiproxy:2.12.0";

const POSTGRES_PORT: u16 = 5432;
const KAFKA_INTERNAL_PORT: u16 = 9092;
const KAFKA_CONTROLLER_PORT: u16 = 9093;
const KAFKA_CLIENT_PORTS_FROM: u16 = 29000;
const CREDENTIAL: &str = "faultline";

/// Start-up timings, measured from the container's creation to its readiness condition.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StartTimings {
    pub toxiproxy: Duration,
    pub postgres: Option<Duration>,
    pub kafka: Option<Duration>,
    /// From [`Infra::start`] to everything ready, links included.
    pub total: Duration,
}

/// One container's log, captured for reports.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerLog {
    pub container: String,
    pub text: String,
}

/// A started infrastructure. Dropping it removes everything it started.
pub struct Infra {
    run_id: String,
    mode: Mode,
    engine: Option<Engine>,
    cleanup: Cleanup,
    containers: Vec<RunningContainer>,
    toxiproxy_url: String,
    /// Set as soon as the URL is known; every `Infra` handed out has it.
    toxiproxy: Option<ToxiproxyClient>,
    toxiproxy_ports: BTreeMap<u16, u16>,
    postgres: Option<PostgresServer>,
    links: BTreeMap<String, Link>,
    /// Each client's broker proxy on its link to Kafka (container mode), by link name.
    broker_proxies: BTreeMap<String, crate::intercept::kafka::BrokerProxy>,
    timings: StartTimings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Containers,
    External,
}

impl Infra {
    /// Starts what `config` asks for and waits until each server answers a real request:
    /// Toxiproxy its API, Postgres a `SELECT 1`, Kafka a metadata request through a proxy.
    /// In container mode it first sweeps leftovers of crashed runs (see
    /// [`docker::Engine::sweep_leftovers`]).
    pub async fn start(config: InfraConfig) -> Result<Self, InfraError> {
        config.validate()?;
        config.refuse_problems()?;
        match environment_mode(config.postgres, config.kafka)? {
            Mode::External => Self::start_external(config).await,
            Mode::Containers => Self::start_containers(config).await,
        }
    }

    async fn start_containers(config: InfraConfig) -> Result<Self, InfraError> {
        let started = Instant::now();
        let engine = Engine::connect().await?;
        engine.sweep_leftovers().await?;

        let images = &config.images;
        let mut wanted = vec![&images.toxiproxy];
        if config.postgres {
            wanted.push(&images.postgres);
        }
        if config.kafka {
            wanted.push(&images.kafka);
        }
        for image in wanted {
            engine.ensure_image(&image.name, image.variable).await?;
        }
        ensure_described_images(&engine, &config).await?;

        let run_id = new_run_id();
        let network = format!("faultline-{run_id}");
        let labels = docker::run_labels(&run_id);
        let mut infra = Infra {
            run_id: run_id.clone(),
            mode: Mode::Containers,
            engine: Some(engine.clone()),
            cleanup: Cleanup::default(),
            containers: Vec::new(),
            toxiproxy_url: String::new(),
            toxiproxy: None,
            toxiproxy_ports: BTreeMap::new(),
            postgres: None,
            links: BTreeMap::new(),
            broker_proxies: BTreeMap::new(),
            timings: StartTimings::default(),
        };
        infra.cleanup.run_id = Some(run_id.clone());
        engine.create_network(&network, &labels).await?;
        infra.cleanup.network = Some(network.clone());

        // Toxiproxy first: Kafka's advertised listeners are the host ports of its proxies.
        let toxiproxy_spec = ContainerSpec {
            name: "toxiproxy".into(),
            image: images.toxiproxy.name.clone(),
            ports: std::iter::once(TOXIPROXY_API_PORT)
                .chain(PROXY_PORTS)
                .collect(),
            ..Default::default()
        };
        let clock = Instant::now();
        let toxiproxy = engine.run(&toxiproxy_spec, &network, &labels).await?;
        infra.cleanup.containers.push(toxiproxy.id.clone());
        infra.toxiproxy_url = format!(
            "http://127.0.0.1:{}",
            toxiproxy.host_ports[&TOXIPROXY_API_PORT]
        );
        infra.toxiproxy = Some(ToxiproxyClient::new(&infra.toxiproxy_url)?);
        infra.toxiproxy_ports = toxiproxy.host_ports.iter().map(|(c, h)| (*c, *h)).collect();
        let client = infra.toxiproxy_client();
        await_ready(&toxiproxy, config.ready_timeout, || async {
            client
                .version()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await?;
        infra.timings.toxiproxy = clock.elapsed();
        infra.containers.push(toxiproxy);

        let clients = config.all_clients();
        let mut free_ports = PROXY_PORTS;
        let mut next_port = move || free_ports.next().expect("validated: enough proxy ports");

        // Plan every link before starting servers, so Kafka can advertise them.
        // A further server's link has a proxy per container port; the others one.
        let mut planned = Vec::new();
        for client in &clients {
            for server in config.server_names() {
                if config.wants(client, server) {
                    let port = next_port();
                    planned.push((client.clone(), server, port));
                }
            }
        }
        let mut further_ports: Vec<(String, &str, u16, u16)> = Vec::new();
        for (client, server, _) in &planned {
            for container_port in config.ports_of(server).iter().skip(1) {
                further_ports.push((client.clone(), server, *container_port, next_port()));
            }
        }

        let postgres_spec = config.postgres.then(|| ContainerSpec {
            name: "postgres".into(),
            image: images.postgres.name.clone(),
            env: vec![
                ("POSTGRES_USER".into(), CREDENTIAL.into()),
                ("POSTGRES_PASSWORD".into(), CREDENTIAL.into()),
                ("POSTGRES_DB".into(), CREDENTIAL.into()),
            ],
            cmd: Some(vec![
                "postgres".into(),
                "-c".into(),
                "max_connections=300".into(),
            ]),
            ports: vec![POSTGRES_PORT],
            ..Default::default()
        });
        // Each client's broker proxy listens before the broker starts, which advertises it:
        // client -> broker proxy -> Toxiproxy -> the client's own listener on the broker.
        let mut broker_listeners = BTreeMap::new();
        for (client, server, _) in &planned {
            if *server == "kafka" {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| {
                    InfraError::Config(format!("binding the broker proxy of {client}->kafka: {e}"))
                })?;
                broker_listeners.insert(client.clone(), listener);
            }
        }
        let kafka_clients: Vec<(String, u16, u16)> = planned
            .iter()
            .filter(|(_, server, _)| *server == "kafka")
            .enumerate()
            .map(|(i, (client, _, _))| {
                let listener_port = KAFKA_CLIENT_PORTS_FROM + i as u16;
                let advertised = broker_listeners[client]
                    .local_addr()
                    .map_or(0, |address| address.port());
                (client.clone(), listener_port, advertised)
            })
            .collect();
        let kafka_spec = config.kafka.then(|| ContainerSpec {
            name: "kafka".into(),
            image: images.kafka.name.clone(),
            env: kafka_env(&kafka_clients),
            ports: vec![],
            ..Default::default()
        });

        // Proxies exist before the servers answer; a client may connect as soon as it likes.
        for (client, server, port) in &planned {
            let other = config.servers.iter().find(|s| s.spec.name == *server);
            let upstream = match *server {
                "postgres" => format!(
                    "{}:{POSTGRES_PORT}",
                    docker::in_network_name(&network, "postgres")
                ),
                _ if other.is_some() => format!(
                    "{}:{}",
                    docker::in_network_name(&network, server),
                    other.map_or(0, |s| s.ports[0])
                ),
                _ => {
                    let listener = kafka_clients
                        .iter()
                        .find(|(c, ..)| c == client)
                        .expect("planned")
                        .1;
                    format!("{}:{listener}", docker::in_network_name(&network, "kafka"))
                }
            };
            let proxy = proxy_name(client, server);
            let mut address = infra.open_proxy(&proxy, *port, upstream).await?;
            let listener = if *server == "kafka" { broker_listeners.remove(client) } else { None };
            if let Some(listener) = listener {
                let link = format!("{client}->kafka");
                let behind = address
                    .parse()
                    .map_err(|e| InfraError::Config(format!("the address {address} of {proxy}: {e}")))?;
                let broker_proxy = crate::intercept::kafka::BrokerProxy::start_on(listener, &link, behind)
                    .map_err(|e| InfraError::Config(format!("starting the broker proxy of {link}: {e}")))?;
                address = broker_proxy.address().to_string();
                infra.broker_proxies.insert(link, broker_proxy);
            }
            infra.add_link(client, server, Some(proxy), address);
        }
        for (client, server, container_port, port) in &further_ports {
            let proxy = format!("{}-{container_port}", proxy_name(client, server));
            let upstream = format!("{}:{container_port}", docker::in_network_name(&network, server));
            let address = infra.open_proxy(&proxy, *port, upstream).await?;
            let link = infra
                .links
                .get_mut(&format!("{client}->{server}"))
                .expect("the link's first port was added above");
            link.more.push(PortProxy {
                port: *container_port,
                proxy,
                address,
            });
        }

        // Postgres and Kafka start side by side. A container whose start fails half-way carries
        // the run's label, which the cleanup removes by.
        let ready_timeout = config.ready_timeout;
        let postgres_start = async {
            let Some(spec) = &postgres_spec else {
                return None;
            };
            let clock = Instant::now();
            let outcome = async {
                let container = engine.run(spec, &network, &labels).await?;
                let server = PostgresServer {
                    user: CREDENTIAL.into(),
                    password: CREDENTIAL.into(),
                    database: CREDENTIAL.into(),
                    direct_address: format!("127.0.0.1:{}", container.host_ports[&POSTGRES_PORT]),
                };
                let url = server.url(&server.direct_address);
                await_ready(&container, ready_timeout, || postgres_ready(&url)).await?;
                Ok::<_, InfraError>((container, server, clock.elapsed()))
            }
            .await;
            Some(outcome)
        };
        let kafka_start = async {
            let Some(spec) = &kafka_spec else {
                return None;
            };
            let clock = Instant::now();
            let bootstrap = infra.links[&format!("{HARNESS_CLIENT}->kafka")]
                .address
                .clone();
            let outcome = async {
                let container = engine.run(spec, &network, &labels).await?;
                await_ready(&container, ready_timeout, || kafka_ready(bootstrap.clone())).await?;
                Ok::<_, InfraError>((container, clock.elapsed()))
            }
            .await;
            Some(outcome)
        };
        let (postgres, kafka) = tokio::join!(postgres_start, kafka_start);
        if let Some(outcome) = postgres {
            let (container, server, took) = outcome?;
            infra.cleanup.containers.push(container.id.clone());
            infra.containers.push(container);
            infra.postgres = Some(server);
            infra.timings.postgres = Some(took);
        }
        if let Some(outcome) = kafka {
            let (container, took) = outcome?;
            infra.cleanup.containers.push(container.id.clone());
            infra.containers.push(container);
            infra.timings.kafka = Some(took);
        }
        for server in &config.servers {
            let spec = ContainerSpec {
                ports: server.ports.clone(),
                ..server.spec.clone()
            };
            let container = engine.run(&spec, &network, &labels).await?;
            infra.cleanup.containers.push(container.id.clone());
            let address = format!("127.0.0.1:{}", container.host_ports[&server.ports[0]]);
            let http = reqwest::Client::new();
            let outcome = await_ready(&container, server.ready_timeout, || {
                server_ready(&server.ready, &http, &container, &address)
            })
            .await;
            infra.containers.push(container);
            outcome?;
        }
        infra.timings.total = started.elapsed();
        Ok(infra)
    }

    async fn start_external(config: InfraConfig) -> Result<Self, InfraError> {
        if let Some(server) = config.servers.first() {
            return Err(InfraError::Environment {
                variable: "FAULTLINE_INFRA",
                problem: format!(
                    "`external` starts no containers, but the system has the container `{}`; unset it to run in container mode",
                    server.spec.name
                ),
            });
        }
        if !config.service_images.is_empty() {
            // Services from images still run in containers of their own.
            ensure_described_images(&Engine::connect().await?, &config).await?;
        }
        let started = Instant::now();
        let toxiproxy_url = required_env("FAULTLINE_TOXIPROXY_URL")?;
        let mut infra = Infra {
            run_id: new_run_id(),
            mode: Mode::External,
            engine: None,
            cleanup: Cleanup::default(),
            containers: Vec::new(),
            toxiproxy_url: toxiproxy_url.trim_end_matches('/').to_string(),
            toxiproxy: Some(ToxiproxyClient::new(&toxiproxy_url)?),
            toxiproxy_ports: BTreeMap::new(),
            postgres: None,
            links: BTreeMap::new(),
            broker_proxies: BTreeMap::new(),
            timings: StartTimings::default(),
        };
        infra.cleanup.toxiproxy_url = Some(infra.toxiproxy_url.clone());
        let client = infra.toxiproxy_client();
        client.version().await?;
        infra.timings.toxiproxy = started.elapsed();
        let proxy_host = toxiproxy_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split([':', '/']).next())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                InfraError::Config(format!(
                    "FAULTLINE_TOXIPROXY_URL=`{toxiproxy_url}`: expected http://HOST:PORT"
                ))
            })?
            .to_string();

        if config.postgres {
            let clock = Instant::now();
            let upstream = required_env("FAULTLINE_POSTGRES_ADDR")?;
            let env_or =
                |name: &str| std::env::var(name).unwrap_or_else(|_| CREDENTIAL.to_string());
            let server = PostgresServer {
                user: env_or("FAULTLINE_POSTGRES_USER"),
                password: env_or("FAULTLINE_POSTGRES_PASSWORD"),
                database: env_or("FAULTLINE_POSTGRES_DB"),
                direct_address: upstream.clone(),
            };
            for client_name in config.all_clients() {
                if !config.wants(&client_name, "postgres") {
                    continue;
                }
                let proxy = format!("{}-{}", proxy_name(&client_name, "postgres"), infra.run_id);
                let created = client
                    .create_proxy(&NewProxy {
                        name: proxy.clone(),
                        listen: format!("{proxy_host}:0"),
                        upstream: upstream.clone(),
                        enabled: true,
                    })
                    .await?;
                infra.cleanup.proxies.push(proxy.clone());
                infra.add_link(&client_name, "postgres", Some(proxy), created.listen);
            }
            let url = server.url(&server.direct_address);
            poll_until(config.ready_timeout, "postgres", || postgres_ready(&url)).await?;
            infra.postgres = Some(server);
            infra.timings.postgres = Some(clock.elapsed());
        }
        if config.kafka {
            let clock = Instant::now();
            let bootstrap = required_env("FAULTLINE_KAFKA_BOOTSTRAP")?;
            for client_name in config.all_clients() {
                if !config.wants(&client_name, "kafka") {
                    continue;
                }
                infra.add_link(&client_name, "kafka", None, bootstrap.clone());
            }
            poll_until(config.ready_timeout, "kafka", || {
                kafka_ready(bootstrap.clone())
            })
            .await?;
            infra.timings.kafka = Some(clock.elapsed());
        }
        infra.timings.total = started.elapsed();
        Ok(infra)
    }

    /// Creates the Toxiproxy proxy `name`, listening on its container's `port` and leading to
    /// `upstream`; where clients reach it.
    async fn open_proxy(&self, name: &str, port: u16, upstream: String) -> Result<String, InfraError> {
        self.toxiproxy_client()
            .create_proxy(&NewProxy {
                name: name.to_string(),
                listen: format!("0.0.0.0:{port}"),
                upstream,
                enabled: true,
            })
            .await?;
        Ok(format!("127.0.0.1:{}", self.toxiproxy_ports[&port]))
    }

    fn add_link(&mut self, client: &str, server: &str, proxy: Option<String>, address: String) {
        let name = format!("{client}->{server}");
        self.links.insert(
            name.clone(),
            Link {
                name,
                client: client.to_string(),
                server: server.to_string(),
                proxy,
                address,
                more: Vec::new(),
            },
        );
    }

    /// The random id of this run; it names the network and labels every container.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Toxiproxy's API, e.g. `http://127.0.0.1:32771`.
    pub fn toxiproxy_url(&self) -> &str {
        &self.toxiproxy_url
    }

    /// A client for this run's Toxiproxy.
    pub fn toxiproxy_client(&self) -> ToxiproxyClient {
        self.toxiproxy
            .clone()
            .expect("Infra::start sets the Toxiproxy client before returning")
    }

    /// The host port that Toxiproxy's container port `container_port` is published on.
    ///
    /// # Panics
    /// When `container_port` is neither the API port nor in [`PROXY_PORTS`], or in external
    /// mode, where Toxiproxy's ports are its own business: both are programming errors.
    pub fn toxiproxy_host_port(&self, container_port: u16) -> u16 {
        *self.toxiproxy_ports.get(&container_port).unwrap_or_else(|| {
            panic!("Toxiproxy container port {container_port} is not published (published: 8474 and {PROXY_PORTS:?}, container mode only)")
        })
    }

    /// Every link, by name (`client->server`).
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }

    /// The link `name` (`client->server`), if this stack has it.
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.get(name)
    }

    /// The broker proxy on `link`, a client's link to Kafka (`order->kafka`): container mode
    /// only.
    pub fn broker_proxy(&self, link: &str) -> Option<&crate::intercept::kafka::BrokerProxy> {
        self.broker_proxies.get(link)
    }

    /// Every broker proxy, by link name.
    pub fn broker_proxies(&self) -> impl Iterator<Item = (&String, &crate::intercept::kafka::BrokerProxy)> {
        self.broker_proxies.iter()
    }

    fn link_of(&self, client: &str, server: &'static str) -> Result<&Link, InfraError> {
        self.links.get(&format!("{client}->{server}")).ok_or_else(|| {
            InfraError::Config(format!(
                "no link {client}->{server}: `{client}` is not a client of this stack, or {server} was not started"
            ))
        })
    }

    /// Postgres credentials and direct address.
    pub fn postgres(&self) -> Result<&PostgresServer, InfraError> {
        self.postgres
            .as_ref()
            .ok_or(InfraError::Missing("postgres"))
    }

    /// A Postgres URL for `client`, through its proxy.
    pub fn postgres_url(&self, client: &str) -> Result<String, InfraError> {
        let server = self.postgres()?;
        Ok(server.url(&self.link_of(client, "postgres")?.address))
    }

    /// A Postgres URL for `client` to `database` (one per service), through its proxy.
    pub fn postgres_url_for(&self, client: &str, database: &str) -> Result<String, InfraError> {
        let server = self.postgres()?;
        Ok(server.url_to(&self.link_of(client, "postgres")?.address, database))
    }

    /// A Postgres URL that bypasses every proxy, for checkers and set-up.
    pub fn postgres_admin_url(&self) -> Result<String, InfraError> {
        let server = self.postgres()?;
        Ok(server.url(&server.direct_address))
    }

    /// A direct URL to `database`, bypassing every proxy: what checkers read.
    pub fn postgres_admin_url_for(&self, database: &str) -> Result<String, InfraError> {
        let server = self.postgres()?;
        Ok(server.url_to(&server.direct_address, database))
    }

    /// The Toxiproxy image's server binary, extracted to `dir` (once per image), so proxies can
    /// also run as a host process where their upstreams are host processes.
    pub async fn toxiproxy_binary(
        &self,
        images: &Images,
        dir: &Path,
    ) -> Result<std::path::PathBuf, InfraError> {
        let engine = match &self.engine {
            Some(engine) => engine.clone(),
            None => Engine::connect().await?,
        };
        engine
            .extract_file(&images.toxiproxy.name, "/toxiproxy", dir)
            .await
    }

    /// Kafka `bootstrap.servers` for `client`, through its proxy.
    pub fn kafka_bootstrap(&self, client: &str) -> Result<String, InfraError> {
        Ok(self.link_of(client, "kafka")?.address.clone())
    }

    pub fn timings(&self) -> &StartTimings {
        &self.timings
    }

    /// The logs of every container of this run so far.
    pub async fn container_logs(&self) -> Vec<ContainerLog> {
        let mut logs = Vec::new();
        for container in &self.containers {
            logs.push(ContainerLog {
                container: container.name.clone(),
                text: container.logs(None).await,
            });
        }
        logs
    }

    /// Writes each container's log to `dir/<container>.log`: all of it, or with `since` what
    /// it wrote from that second on.
    pub async fn save_logs(
        &self,
        dir: &Path,
        since: Option<std::time::SystemTime>,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let since = since.map(|at| {
            let seconds = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
            i32::try_from(seconds).unwrap_or(i32::MAX)
        });
        for container in &self.containers {
            let text = match since {
                Some(since) => container.logs_since(since).await,
                None => container.logs(None).await,
            };
            std::fs::write(dir.join(format!("{}.log", container.name)), text)?;
        }
        Ok(())
    }

    /// This run's container `name` (`postgres`, `kafka`, `toxiproxy`).
    fn container(&self, name: &str) -> Result<&RunningContainer, InfraError> {
        if self.mode == Mode::External {
            return Err(InfraError::Config(format!(
                "container `{name}`: external infrastructure has no containers to fault"
            )));
        }
        self.containers
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                InfraError::Config(format!(
                    "no container `{name}` in this run; it has: {}",
                    self.containers
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Freezes this run's container `name` (a chaos fault); see [`Self::unpause_container`].
    pub async fn pause_container(&self, name: &str) -> Result<(), InfraError> {
        self.container(name)?.pause().await
    }

    /// Thaws a container frozen by [`Self::pause_container`].
    pub async fn unpause_container(&self, name: &str) -> Result<(), InfraError> {
        self.container(name)?.unpause().await
    }

    /// Stops this run's container `name` (a chaos fault); see [`Self::start_container`].
    pub async fn stop_container(&self, name: &str) -> Result<(), InfraError> {
        self.container(name)?.stop().await
    }

    /// Starts a container stopped by [`Self::stop_container`] again.
    pub async fn start_container(&self, name: &str) -> Result<(), InfraError> {
        self.container(name)?.start().await
    }

    /// Starts a container on the host's network for one of the system's services, labelled
    /// with this run so [`Infra::shutdown`] (or a later sweep) removes it whatever happens to
    /// the handle. The caller owns the handle: it stops, kills and removes the container.
    pub async fn run_service_container(
        &mut self,
        spec: &ContainerSpec,
    ) -> Result<RunningContainer, InfraError> {
        let engine = match &self.engine {
            Some(engine) => engine.clone(),
            None => {
                let engine = Engine::connect().await?;
                self.engine = Some(engine.clone());
                engine
            }
        };
        // Its image was checked when the infrastructure started (`service_images`).
        self.cleanup.run_id = Some(self.run_id.clone());
        let spec = ContainerSpec {
            host_network: true,
            ports: Vec::new(),
            ..spec.clone()
        };
        engine
            .run(
                &spec,
                &format!("faultline-{}", self.run_id),
                &docker::run_labels(&self.run_id),
            )
            .await
    }

    /// Removes every container, the network and (external mode) the proxies this run created,
    /// and says how long that took.
    pub async fn shutdown(mut self) -> Result<Duration, InfraError> {
        let clock = Instant::now();
        let removals = std::mem::take(&mut self.containers)
            .into_iter()
            .map(|container| async {
                let id = container.id.clone();
                (id, container.remove().await)
            });
        let mut first_error = None;
        for (id, result) in futures_util::future::join_all(removals).await {
            match result {
                Ok(()) => self.cleanup.containers.retain(|c| *c != id),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // The network, and whatever carries the run's label but was never handed back (a
        // container whose start failed): testcontainers knows neither.
        self.cleanup.run(self.engine.clone()).await?;
        first_error.map_or(Ok(clock.elapsed()), Err)
    }
}

impl Drop for Infra {
    // testcontainers removes a dropped container from within the tokio runtime it is dropped
    // in, and panics outside one; dropped outside, the containers go on a runtime of their
    // own. What they leave (the network, a half-started container) goes with `Cleanup`.
    fn drop(&mut self) {
        let containers = std::mem::take(&mut self.containers);
        if containers.is_empty() || tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                futures_util::future::join_all(
                    containers.into_iter().map(RunningContainer::remove),
                )
                .await;
            });
            Ok::<(), std::io::Error>(())
        })
        .join();
        if !matches!(outcome, Ok(Ok(()))) {
            eprintln!("faultline: removing containers after drop failed (a later run sweeps them)");
        }
    }
}

/// Checks that every image a system description names — its further servers' and its
/// services' — is present (pulling it when it is not and can be), naming the description's
/// `image` field of one that cannot be had.
async fn ensure_described_images(engine: &Engine, config: &InfraConfig) -> Result<(), InfraError> {
    let servers = config
        .servers
        .iter()
        .map(|s| (format!("containers.{}.image", s.spec.name), &s.spec.image));
    let services = config
        .service_images
        .iter()
        .map(|(service, image)| (format!("services.{service}.image"), image));
    for (field, image) in servers.chain(services) {
        engine
            .ensure_image(image, "")
            .await
            .map_err(|e| e.named_by(field))?;
    }
    Ok(())
}

/// The Toxiproxy proxy name of a link.
pub fn proxy_name(client: &str, server: &str) -> String {
    format!("{client}-{server}")
}

fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Broker settings in the official `apache/kafka` image's environment convention, which the
/// image `ci/setup` builds follows too: one combined KRaft node, an in-network listener, and
/// one listener per client advertised as that client's proxy on the host.
fn kafka_env(clients: &[(String, u16, u16)]) -> Vec<(String, String)> {
    let listener = |client: &str| format!("C_{}", client.to_ascii_uppercase().replace('-', "_"));
    let mut listeners = vec![
        format!("CONTROLLER://0.0.0.0:{KAFKA_CONTROLLER_PORT}"),
        format!("INTERNAL://0.0.0.0:{KAFKA_INTERNAL_PORT}"),
    ];
    let mut advertised = vec![format!("INTERNAL://kafka:{KAFKA_INTERNAL_PORT}")];
    let mut protocols = vec![
        "CONTROLLER:PLAINTEXT".to_string(),
        "INTERNAL:PLAINTEXT".to_string(),
    ];
    for (client, listener_port, proxy_host_port) in clients {
        let name = listener(client);
        listeners.push(format!("{name}://0.0.0.0:{listener_port}"));
        advertised.push(format!("{name}://127.0.0.1:{proxy_host_port}"));
        protocols.push(format!("{name}:PLAINTEXT"));
    }
    [
        ("KAFKA_NODE_ID", "1".to_string()),
        ("KAFKA_PROCESS_ROLES", "broker,controller".to_string()),
        (
            "KAFKA_CONTROLLER_QUORUM_VOTERS",
            format!("1@localhost:{KAFKA_CONTROLLER_PORT}"),
        ),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".to_string()),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "INTERNAL".to_string()),
        ("KAFKA_LISTENERS", listeners.join(",")),
        ("KAFKA_ADVERTISED_LISTENERS", advertised.join(",")),
        ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", protocols.join(",")),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".to_string()),
        (
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "1".to_string(),
        ),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".to_string()),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".to_string()),
        ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true".to_string()),
        ("KAFKA_HEAP_OPTS", "-Xmx512m -Xms256m".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::config::parse_images_env;
    use super::*;

    #[test]
    fn kafka_listeners_are_advertised_per_client_as_proxy_addresses() {
        let env: BTreeMap<_, _> = kafka_env(&[
            ("faultline".into(), 29000, 41001),
            ("order-x".into(), 29001, 41002),
        ])
        .into_iter()
        .collect();
        assert_eq!(
            env["KAFKA_ADVERTISED_LISTENERS"],
            "INTERNAL://kafka:9092,C_FAULTLINE://127.0.0.1:41001,C_ORDER_X://127.0.0.1:41002"
        );
        assert_eq!(
            env["KAFKA_LISTENERS"],
            "CONTROLLER://0.0.0.0:9093,INTERNAL://0.0.0.0:9092,C_FAULTLINE://0.0.0.0:29000,C_ORDER_X://0.0.0.0:29001"
        );
        assert!(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].contains("C_ORDER_X:PLAINTEXT"));
    }

    #[test]
    fn client_names_are_validated_with_the_reason() {
        let mut config = InfraConfig::with_clients(["order", "Bad Name"]);
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("`Bad Name`") && error.contains("a-z"),
            "{error}"
        );
        config.clients = (0..40).map(|i| format!("c{i}")).collect();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("proxy ports"), "{error}");
    }

    #[test]
    fn the_harness_client_is_always_present_once() {
        let config = InfraConfig::with_clients(["faultline", "order"]);
        assert_eq!(config.all_clients(), vec!["faultline", "order"]);
    }

    #[test]
    fn images_default_to_the_official_ones() {
        // Only the defaulting rule is tested; the environment of the test process may set them.
        let image = Image::from_env(
            "FAULTLINE_TEST_UNSET_IMAGE_VARIABLE",
            DEFAULT_KAFKA_IMAGE,
            &BTreeMap::new(),
        );
        assert_eq!(image.name, DEFAULT_KAFKA_IMAGE);
        assert_eq!(image.variable, "FAULTLINE_TEST_UNSET_IMAGE_VARIABLE");
    }

    #[test]
    fn images_built_by_setup_are_taken_when_the_variable_is_unset() {
        let built = parse_images_env(
            "# Written by ci/setup\nexport FAULTLINE_TEST_UNSET_IMAGE_VARIABLE=faultline/kafka:abc\n\
             export PATH=/nope\nnot an export\n",
        );
        assert_eq!(built.len(), 1, "only FAULTLINE_ names: {built:?}");
        let image = Image::from_env(
            "FAULTLINE_TEST_UNSET_IMAGE_VARIABLE",
            DEFAULT_KAFKA_IMAGE,
            &built,
        );
        assert_eq!(image.name, "faultline/kafka:abc");
    }

    #[test]
    fn only_described_links_get_proxies_and_the_harness_keeps_both() {
        let mut config = InfraConfig::with_clients(["order", "gateway"]);
        config.only_links = Some([("order".to_string(), "postgres".to_string())].into());
        assert!(config.wants("order", "postgres"));
        assert!(!config.wants("order", "kafka"));
        assert!(!config.wants("gateway", "postgres"));
        assert!(config.wants(HARNESS_CLIENT, "kafka"));
    }
}
