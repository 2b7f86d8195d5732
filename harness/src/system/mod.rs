//! System descriptions: the one place that says what a system under test is.
//!
//! A description (`faultline.toml` by default) names the shared servers (a Postgres with the
//! databases to create, a Kafka with the topics to create) and the services: how to start
//! each one (a command run as a host process), its environment with
//! [placeholders](template) for the addresses faultline hands out, how to tell it is ready,
//! and how to stop it. Every connection a placeholder makes — `{postgres.url:orders}`,
//! `{kafka.bootstrap}`, `{link:checkout->stock}` — is a link with its own Toxiproxy proxy, so
//! the [`Topology`] that scenarios are validated against is derived from the description and
//! nothing is listed twice. Services start in dependency order: after the services they link
//! to and those they name in `depends_on`.
//!
//! ```
//! use faultline_harness::system::System;
//! let system = System::parse("faultline.toml", ".".as_ref(), r#"
//!     name = "shop"
//!     [postgres]
//!     databases = ["stock"]
//!     [services.stock]
//!     command = ["./stock-server", "--listen", "127.0.0.1:{port}"]
//!     env = { DATABASE_URL = "{postgres.url:stock}" }
//!     ready = { http = "/health" }
//!     [services.checkout]
//!     command = ["./checkout-server"]
//!     env = { PORT = "{port}", STOCK_URL = "{link:checkout->stock}" }
//! "#).unwrap();
//! assert_eq!(system.start_order(), ["stock", "checkout"]);
//! assert_eq!(system.topology().link_names(), ["stock->postgres", "checkout->stock"]);
//! ```
//!
//! Reading is as strict as for scenarios: an unknown field, an unknown placeholder, a link to
//! a service that is not described, a database that is not declared, a dependency cycle is a
//! [`DescriptionError`] naming the file and the field, before anything starts.
//! `docs/system-description.md` is the reference of every field.
//!
//! Inside: this file holds the description's types and what a run asks of them; `read` reads a
//! whole file (top-level fields, shared servers, start order), `service` one `[services.*]`
//! table, `container` one `[containers.*]` table, `fields` the readers both share, and
//! [`template`] the placeholders (`read` → `service`, `container` → `fields` → this file).
//!
//! Layer 1 (description) of the harness ([layers](crate#layers)): data read from a file;
//! imports no other module of the harness. The checkers and workload of the extension a
//! description names are code that reads a running stack, so they travel beside it
//! ([`Registry::linked`](crate::extension::Registry::linked)), not inside it.

mod container;
mod fields;
mod read;
mod service;
pub mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use faultline_chaos::scenario::ScenarioError;
use faultline_chaos::topology::Topology;
pub use template::{Placeholder, Template};

/// The file name a description has when none is given.
pub const DEFAULT_FILE: &str = "faultline.toml";

/// The client name the harness uses for its own Postgres and Kafka access (checkers, probes).
pub const HARNESS_CLIENT: &str = "faultline";

/// Names that cannot be services: the shared servers and the harness's own client.
const RESERVED: [&str; 3] = ["postgres", "kafka", HARNESS_CLIENT];

/// A description that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {field}: {reason}")]
pub struct DescriptionError {
    /// The file.
    pub file: String,
    /// The field's path, such as `services.order.env.DATABASE_URL`; `(file)` for the whole.
    pub field: String,
    /// What was wrong and what was expected.
    pub reason: String,
}

impl From<ScenarioError> for DescriptionError {
    fn from(e: ScenarioError) -> Self {
        Self {
            file: e.file,
            field: e.field,
            reason: e.reason,
        }
    }
}

/// How a stack that runs one scenario after another ([`Stack::reset`](crate::stack::Stack::reset))
/// is made as good as new between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetMode {
    /// The services stopped and started again on databases dropped and created anew: right
    /// for any system.
    #[default]
    Fresh,
    /// The services keep running; their databases' tables are emptied (migration-history
    /// tables kept) and a service that is not ready is restarted: a fraction of the time, and
    /// right when the services hold nothing in memory that a new run must not see.
    Warm,
}

/// A described system.
#[derive(Debug, Clone)]
pub struct System {
    /// The description file.
    pub file: PathBuf,
    /// The folder relative paths (and `{dir}`) are taken from: the file's folder.
    pub dir: PathBuf,
    /// The system's name, for reports.
    pub name: String,
    /// The shared Postgres server, if the system has one.
    pub postgres: Option<PostgresSpec>,
    /// The shared Kafka broker, if the system has one.
    pub kafka: Option<KafkaSpec>,
    /// The services, in start order.
    pub services: Vec<ServiceSpec>,
    /// Other shared servers, each a container of an image (`[containers.NAME]`), started with
    /// Postgres and Kafka before the services.
    pub containers: Vec<ContainerServerSpec>,
    /// The extension the description names (`extension = "…"`): checkers and a workload
    /// written in Rust, registered by a crate linked into the program that runs it.
    pub extension: Option<String>,
    /// What "settled" means for the system: after the faults heal, a run waits until each
    /// of these queries returns no rows (work it finishes asynchronously is done).
    pub settle: Vec<SettleSpec>,
    /// The declarative workload written once for every scenario (`[workload]`): operations
    /// and set-up requests that a scenario without operations of its own sends.
    pub workload: Option<faultline_chaos::scenario::request::DescribedWorkload>,
    /// The steady-state probes of every scenario that gives none (`[steady_state]`).
    pub steady_state: Vec<faultline_chaos::scenario::Probe>,
    /// How a stack is made as good as new between runs on it (`reset`).
    pub reset: ResetMode,
    /// Environment given to services over the description's (`service`, `VARIABLE`, `value`):
    /// `--service-env`, set with [`System::set_service_env`]. Not in the file.
    pub service_env: Vec<(String, String, String)>,
    topology: Topology,
}

impl PartialEq for System {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.file,
            &self.dir,
            &self.name,
            &self.postgres,
            &self.kafka,
            &self.services,
            &self.containers,
            &self.extension,
            &self.settle,
            &self.workload,
            &self.steady_state,
            &self.topology,
        ) == (
            &other.file,
            &other.dir,
            &other.name,
            &other.postgres,
            &other.kafka,
            &other.services,
            &other.containers,
            &other.extension,
            &other.settle,
            &other.workload,
            &other.steady_state,
            &other.topology,
        ) && self.reset == other.reset
    }
}

/// A condition a run waits for after healing: `query` on `database` returns no rows, within
/// `within` at most (`[[settle]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleSpec {
    pub database: String,
    pub query: String,
    pub within: Duration,
}

/// The shared Postgres server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSpec {
    /// Databases created before the services start (and recreated by a reset).
    pub databases: Vec<String>,
}

/// The shared Kafka broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSpec {
    /// Topics created before the services start (and recreated by a reset).
    pub topics: Vec<TopicSpec>,
}

/// A Kafka topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
}

/// How to tell that a service is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// `GET http://127.0.0.1:{port}<path>` answers 2xx.
    Http { path: String },
    /// `127.0.0.1:{port}` accepts a TCP connection.
    Tcp,
    /// The service's output contains this text.
    Log { text: String },
}

/// A shared server that is a container of some image (`[containers.NAME]`): a cache, a
/// search engine, a third-party API's stand-in. Services reach it through a proxy each
/// (`{address:checkout->cache}`, or `{link:…}` for one that speaks HTTP).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerServerSpec {
    pub name: String,
    pub image: String,
    /// The container ports links lead to, the first what `{link:A->NAME}` names; each
    /// further one is `{link:A->NAME:PORT}`. A link has a proxy per port, and a fault on the
    /// link strikes them all.
    pub ports: Vec<u16>,
    /// Environment; its values may hold `{env:NAME}` and `{dir}` (the container starts
    /// before any address of the run is known).
    pub env: Vec<(String, Template)>,
    /// Replaces the image's command when given.
    pub command: Option<Vec<String>>,
    pub ready: Readiness,
    pub ready_timeout: Duration,
}

/// A host folder or file a service's container sees (`mounts = ["HOST:CONTAINER[:ro]"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute, from the description's folder.
    pub host: PathBuf,
    pub container: String,
    pub read_only: bool,
}

/// One service, as the description gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    /// For a host process: the program and arguments; the program is looked up on `PATH`
    /// unless it holds a `/`. For a container: the command replacing the image's (empty: the
    /// image's own).
    pub command: Vec<Template>,
    /// The migration step (`before`): a program and arguments run to its end, with the
    /// service's environment (and, for a container service, in a container of its image with
    /// its mounts), after the service's databases exist and before it starts on fresh ones —
    /// at stack start and at each fresh reset —, and again after a warm reset has emptied the
    /// tables (a migration tool finds its history table kept; a seeding step puts its rows
    /// back); not when a fault restarts the service. Empty when none. It failing, or
    /// outlasting `before_timeout`, is a start that failed.
    pub before: Vec<Template>,
    /// How long `before` may run (120 s unless given).
    pub before_timeout: Duration,
    /// Set when the service is a container of this image rather than a host process. It runs
    /// on the host's network, so `{port}` and every address mean what they mean for a process.
    pub image: Option<String>,
    /// What a container service sees of the host's files.
    pub mounts: Vec<Mount>,
    /// Where the command runs (the description's folder when not given; host processes only).
    pub workdir: PathBuf,
    /// Environment, added to faultline's own.
    pub env: Vec<(String, Template)>,
    pub ready: Readiness,
    pub ready_timeout: Duration,
    /// Sent to stop the service; it is killed if it has not exited after `stop_grace`.
    pub stop_signal: Signal,
    pub stop_grace: Duration,
    /// Services started before this one: those named in `depends_on` and those it links to.
    pub depends_on: Vec<String>,
    /// What the service connects to, each a link `<service>->X`, in the order first used.
    pub uses: Vec<String>,
    /// Links of other services whose addresses this one hands over (`{link:A->B}` in its
    /// settings, A another service): (caller A, called B). Each is A's link, among A's `uses`.
    pub hands_over: Vec<(String, String)>,
    /// Whether its command or environment uses `{port}`: only then does it listen where
    /// faultline can find it.
    pub listens: bool,
    /// Where the service shows its circuit breakers: an HTTP path answering a JSON array of
    /// breakers (see [`crate::checkers::circuits`]), or — with [`Self::circuit_metric`] — a
    /// Prometheus exposition.
    pub circuits: Option<String>,
    /// Set when the breakers are read from a Prometheus metric at the `circuits` path.
    pub circuit_metric: Option<CircuitMetric>,
    /// The most calls the service means to have in flight to each service it calls, at once
    /// (`in_flight = { payment = 16 }`, its bulkheads): judged on every run by the request
    /// proxy of the link, which sees them (the verdict `in-flight`).
    pub in_flight: Vec<(String, u32)>,
    /// How long the service waits for one call to each service it calls (`timeouts = {
    /// payment = "1s" }`): exploration's `delay` goes past it.
    pub timeouts: Vec<(String, Duration)>,
    /// How long the service keeps trying calls to a service (its retries, its breaker's waits)
    /// before it gives up and takes its fallback (`gives_up_after = { payment = "20s" }`, or
    /// for some calls only: `"payment POST /payments" = "20s"`): exploration keeps the faults
    /// that fail those calls on past it.
    pub gives_up: Vec<GiveUp>,
    /// The header its callers name an idempotency key with (`idempotency_key =
    /// "Idempotency-Key"`), when the service promises to replay its answer: once a request
    /// with a key was answered with success, every later one with that key gets the same
    /// status. Judged on every run by the request proxies of the links to it (the verdict
    /// `idempotent-replays`).
    pub idempotency_key: Option<hyper::header::HeaderName>,
}

/// How long a service keeps trying calls to one service before it gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveUp {
    /// The service called.
    pub callee: String,
    /// `METHOD /route` of the calls meant, when not every call to `callee`.
    pub calls: Option<String>,
    pub after: Duration,
}

/// A Prometheus metric a service's circuit breakers are read from:
/// `circuits = { metrics = "/metrics", metric = "…", dependency_label = "…", … }`. A metric
/// shows a breaker's state now, not its history, so faultline samples it through the run and
/// takes each change it sees as a transition at the time of that sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitMetric {
    /// The gauge's name.
    pub metric: String,
    /// The label naming the dependency a breaker guards.
    pub dependency_label: String,
    /// One series per state, this label naming it and the current one valued 1 (the shape
    /// resilience4j exports); `None`: one series per breaker, its value the index of its
    /// state in [`Self::states`].
    pub state_label: Option<String>,
    /// State names by value (default `CLOSED`, `OPEN`, `HALF_OPEN`).
    pub states: Vec<String>,
    /// A counter of calls a breaker refused (same dependency label), if the service has one.
    pub rejected: Option<String>,
    /// How often the metric is sampled during a run.
    pub every: Duration,
}

/// A stop signal, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub name: &'static str,
    pub number: i32,
}

const SIGNALS: [(&str, i32); 7] = [
    ("SIGTERM", libc::SIGTERM),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGHUP", libc::SIGHUP),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGKILL", libc::SIGKILL),
];

impl System {
    /// The faults' view of the system: services, shared servers, links.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Service names in start order.
    pub fn start_order(&self) -> Vec<&str> {
        self.services.iter().map(|s| s.name.as_str()).collect()
    }

    /// The described Kafka topics' names (none without Kafka).
    pub fn topic_names(&self) -> Vec<String> {
        self.kafka
            .iter()
            .flat_map(|k| k.topics.iter().map(|t| t.name.clone()))
            .collect()
    }

    /// Service names in groups that can start side by side: each group's services depend
    /// only on those of earlier groups (start order within a group).
    pub fn start_levels(&self) -> Vec<Vec<&str>> {
        let mut level: BTreeMap<&str, usize> = BTreeMap::new();
        let mut levels: Vec<Vec<&str>> = Vec::new();
        for service in &self.services {
            let at = service
                .depends_on
                .iter()
                .filter_map(|d| level.get(d.as_str()))
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            level.insert(&service.name, at);
            if levels.len() <= at {
                levels.resize_with(at + 1, Vec::new);
            }
            levels[at].push(&service.name);
        }
        levels
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The value of a placeholder the description alone decides (`{dir}`, `{env:NAME}`), or
    /// `None` for one only a running stack can resolve. The one place those two are resolved:
    /// for a shared server container's environment and for a service's.
    pub fn described_value(&self, placeholder: &Placeholder) -> Option<Result<String, String>> {
        match placeholder {
            Placeholder::Dir => Some(Ok(self.dir.display().to_string())),
            Placeholder::Env { name, default } => Some(template::environment_value(name, default.as_deref())),
            _ => None,
        }
    }

    /// The environment of the shared server container `c` (`[containers.NAME] env`), its
    /// `{env:…}` and `{dir}` placeholders resolved; what could not be resolved is pushed to
    /// `problems` (naming the file and field) and left empty.
    pub fn container_env(&self, c: &ContainerServerSpec, problems: &mut Vec<String>) -> Vec<(String, String)> {
        c.env
            .iter()
            .map(|(key, template)| {
                let value = template.render(&ContainerValues(self)).unwrap_or_else(|problem| {
                    problems.push(format!("{}: containers.{}.env.{key}: {problem}", self.file.display(), c.name));
                    String::new()
                });
                (key.clone(), value)
            })
            .collect()
    }

    /// The programs its services run through `{bin:NAME}`, by name, each once.
    pub fn binaries(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .services
            .iter()
            .flat_map(|s| s.command.iter())
            .flat_map(|t| t.placeholders())
            .filter_map(|p| match p {
                crate::system::Placeholder::Bin(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The `(client, server)` pairs that need a proxy on the infrastructure (links to
    /// Postgres and Kafka).
    pub fn server_links(&self) -> BTreeSet<(String, String)> {
        self.topology
            .links()
            .iter()
            .filter(|l| self.topology.is_server(&l.server))
            .map(|l| (l.client.clone(), l.server.clone()))
            .collect()
    }
}

/// What a `[containers.*]` environment's placeholders resolve to: `{env:…}` and `{dir}`
/// (reading refuses every other).
struct ContainerValues<'a>(&'a System);

impl template::Resolve for ContainerValues<'_> {
    fn resolve(&self, placeholder: &Placeholder) -> Result<String, String> {
        self.0.described_value(placeholder).unwrap_or_else(|| {
            Err("only {env:NAME} and {dir} are resolved in a container's environment".into())
        })
    }
}

/// A breaker state as faultline names them: `half-open` and `half_open` are `HALF_OPEN`.
pub fn normal_state(state: &str) -> String {
    state.trim().to_ascii_uppercase().replace('-', "_")
}

fn is_name(text: &str, extra: &[u8]) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
}

fn is_topic_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 249
        && text != "."
        && text != ".."
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests;
