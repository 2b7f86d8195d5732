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
//! Layer 1 (description) of the harness ([layers](crate#layers)): data read from a file;
//! imports no other module of the harness. The checkers and workload of the extension a
//! description names are code that reads a running stack, so they travel beside it
//! ([`Registry::linked`](crate::extension::Registry::linked)), not inside it.

pub mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use faultline_chaos::scenario::fields::Fields;
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
    /// Reads and validates the description at `path`. The extension it names (`extension =
    /// "…"`) is looked up among those the program links by
    /// [`Registry::linked`](crate::extension::Registry::linked).
    pub fn load(path: &Path) -> Result<Self, DescriptionError> {
        Self::read(path)
    }

    /// Gives services environment over the description's (`--service-env`): each
    /// (`service`, `VARIABLE`, `value`) must name a described service, or nothing is set and
    /// the error says which service is unknown and which there are.
    pub fn set_service_env(&mut self, env: Vec<(String, String, String)>) -> Result<(), String> {
        for (service, variable, _) in &env {
            if self.service(service).is_none() {
                return Err(format!(
                    "--service-env {service}:{variable}=…: {service:?} is not a service of {}; its services: {}",
                    self.file.display(),
                    self.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        self.service_env = env;
        Ok(())
    }


    fn read(path: &Path) -> Result<Self, DescriptionError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DescriptionError {
            file: file.clone(),
            field: "(file)".into(),
            reason: format!("cannot read: {e}"),
        })?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        Self::parse(&file, &dir, &text)
    }

    /// Parses and validates description text; `file` names it in errors, `dir` is where
    /// relative paths start.
    pub fn parse(file: &str, dir: &Path, text: &str) -> Result<Self, DescriptionError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| DescriptionError {
            file: file.into(),
            field: "(file)".into(),
            reason: format!("not valid TOML: {}", e.to_string().trim()),
        })?;
        let mut top = Fields::new(file, "", table);
        let name = top.string("name", "the system's name")?.unwrap_or_else(|| {
            dir.file_name()
                .map_or_else(|| "system".into(), |n| n.to_string_lossy().into_owned())
        });
        let extension = top.string(
            "extension",
            "the name of an extension (checkers and a workload in Rust) linked into the program",
        )?;
        let reset = match top.string("reset", "fresh or warm")?.as_deref() {
            None | Some("fresh") => ResetMode::Fresh,
            Some("warm") => ResetMode::Warm,
            Some(other) => {
                return Err(top
                    .error("reset", format!("expected \"fresh\" or \"warm\", found {other:?}"))
                    .into())
            }
        };

        let postgres = match top.table("postgres")? {
            None => None,
            Some(mut fields) => {
                let databases = fields.strings("databases")?.unwrap_or_default();
                for (i, database) in databases.iter().enumerate() {
                    if !is_name(database, b"_-") || databases[..i].contains(database) {
                        return Err(fields
                            .error(
                                "databases",
                                format!("{database:?}: expected distinct names of a-z, 0-9, `_` and `-`"),
                            )
                            .into());
                    }
                }
                fields.finish()?;
                Some(PostgresSpec { databases })
            }
        };
        let kafka = match top.table("kafka")? {
            None => None,
            Some(mut fields) => {
                let mut topics: Vec<TopicSpec> = Vec::new();
                for mut topic in fields.tables("topics")? {
                    let name = topic.required_string("name", "the topic's name")?;
                    if !is_topic_name(&name) || topics.iter().any(|t| t.name == name) {
                        return Err(topic
                            .error(
                                "name",
                                format!("{name:?}: expected a distinct topic name of letters, digits, `.`, `_` and `-`"),
                            )
                            .into());
                    }
                    let partitions = topic.integer_in("partitions", 1..=1000)?.unwrap_or(1) as i32;
                    topic.finish()?;
                    topics.push(TopicSpec { name, partitions });
                }
                fields.finish()?;
                Some(KafkaSpec { topics })
            }
        };

        let mut settle = Vec::new();
        for mut condition in top.tables("settle")? {
            let database = condition.required_string("database", "a database of [postgres]")?;
            let declared = postgres
                .as_ref()
                .is_some_and(|p| p.databases.contains(&database));
            if !declared {
                return Err(condition
                    .error(
                        "database",
                        format!("{database:?} is not a database of [postgres]"),
                    )
                    .into());
            }
            let query = condition.required_string(
                "query",
                "a SELECT that returns no rows once the system has settled",
            )?;
            if query.trim().is_empty() || query.contains('\0') {
                return Err(condition.error("query", "expected a SQL query").into());
            }
            let within = condition
                .duration("within")?
                .unwrap_or(Duration::from_secs(30));
            if within.is_zero() || within > Duration::from_secs(600) {
                return Err(condition
                    .error("within", "expected more than 0s and at most 10m")
                    .into());
            }
            condition.finish()?;
            settle.push(SettleSpec {
                database,
                query,
                within,
            });
        }

        let mut containers = Vec::new();
        if let Some(mut containers_fields) = top.table("containers")? {
            for (name, fields) in containers_fields.named_tables()? {
                containers.push(read_container(file, &name, fields)?);
            }
            containers_fields.finish()?;
        }
        let container_names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        // Read against the topology once the services are known (below).
        let workload_fields = top.table("workload")?;
        let steady_state = match top.table("steady_state")? {
            None => Vec::new(),
            Some(mut fields) => {
                let probes = faultline_chaos::scenario::read_steady_state(&mut fields)?;
                fields.finish()?;
                probes
            }
        };

        let mut services_fields = top
            .table("services")?
            .ok_or_else(|| top.error("services", "required: at least one [services.NAME] table"))?;
        let named = services_fields.named_tables()?;
        services_fields.finish()?;
        if named.is_empty() {
            return Err(top
                .error("services", "expected at least one [services.NAME] table")
                .into());
        }
        let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
        if let Some(both) = names.iter().find(|n| container_names.contains(n)) {
            return Err(DescriptionError {
                file: file.into(),
                field: format!("containers.{both}"),
                reason: format!("{both:?} is also a service: a name is a service or a container"),
            });
        }
        let mut services = Vec::new();
        for (service, fields) in named {
            services.push(read_service(
                file,
                &service,
                fields,
                dir,
                Known {
                    services: &names,
                    containers: &containers,
                    postgres: postgres.as_ref(),
                    kafka: kafka.is_some(),
                },
            )?);
        }
        top.finish()?;

        for service in &services {
            for server in &service.uses {
                let called = services.iter().find(|s| &s.name == server);
                if called.is_some_and(|s| !s.listens) {
                    return Err(DescriptionError {
                        file: file.into(),
                        field: format!("services.{server}"),
                        reason: format!(
                            "{} links to {server}, which does not listen on {{port}}: use {{port}} in its command or env",
                            service.name
                        ),
                    });
                }
            }
        }
        let services = in_start_order(file, services)?;
        let mut servers = Vec::new();
        if postgres.is_some() {
            servers.push("postgres");
        }
        if kafka.is_some() {
            servers.push("kafka");
        }
        servers.extend(container_names.iter().map(String::as_str));
        let topology = Topology::new(
            services.iter().map(|s| s.name.clone()),
            servers,
            services
                .iter()
                .flat_map(|s| s.uses.iter().map(|u| (s.name.clone(), u.clone()))),
        )
        .with_databases(postgres.iter().flat_map(|p| p.databases.clone()))
        .with_topics(
            kafka
                .iter()
                .flat_map(|k| k.topics.iter().map(|t| t.name.clone())),
        );
        let workload = match workload_fields {
            None => None,
            Some(mut fields) => {
                let workload = faultline_chaos::scenario::read_operations(&mut fields, &topology)?;
                fields.finish()?;
                Some(workload)
            }
        };
        Ok(Self {
            file: PathBuf::from(file),
            dir: dir.to_path_buf(),
            name,
            postgres,
            kafka,
            services,
            containers,
            extension,
            settle,
            workload,
            steady_state,
            reset,
            service_env: Vec::new(),
            topology,
        })
    }

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

/// What else the description has, for checking what a service's placeholders connect to.
struct Known<'a> {
    services: &'a [String],
    containers: &'a [ContainerServerSpec],
    postgres: Option<&'a PostgresSpec>,
    kafka: bool,
}

fn read_service(
    file: &str,
    service: &str,
    mut fields: Fields<'_>,
    dir: &Path,
    known: Known<'_>,
) -> Result<ServiceSpec, DescriptionError> {
    let Known {
        services,
        containers,
        postgres,
        kafka: has_kafka,
    } = known;
    let error = field_error(file, "services", service);
    check_table_name("service", service, &RESERVED, &error)?;

    let image = fields.string(
        "image",
        "a container image such as \"shop/checkout:1.4\", run instead of a command",
    )?;
    if let Some(image) = &image {
        check_image(image).map_err(|reason| error("image", reason))?;
    }
    let argv = match (fields.strings("command")?, &image) {
        (Some(argv), _) => argv,
        (None, Some(_)) => Vec::new(),
        (None, None) => {
            return Err(error(
                "command",
                "required (or `image`): the program and its arguments, e.g. [\"./server\", \"--port\", \"{port}\"]"
                    .into(),
            ))
        }
    };
    if image.is_none() && (argv.is_empty() || argv[0].trim().is_empty()) {
        return Err(error(
            "command",
            "expected the program first, then its arguments".into(),
        ));
    }
    let mut command = Vec::new();
    for (i, arg) in argv.iter().enumerate() {
        command.push(Template::parse(arg).map_err(|e| error(&format!("command[{i}]"), e))?);
    }
    let workdir = match fields.string("workdir", "a folder, relative to the description's")? {
        None => dir.to_path_buf(),
        Some(_) if image.is_some() => {
            return Err(error(
                "workdir",
                "a container service runs in its image's working directory; use `mounts` to show it host files".into(),
            ))
        }
        Some(w) => {
            let full = dir.join(&w);
            if !full.is_dir() {
                return Err(error(
                    "workdir",
                    format!("{} is not a folder", full.display()),
                ));
            }
            full
        }
    };
    let mut mounts = Vec::new();
    let mount_texts = fields.strings("mounts")?.unwrap_or_default();
    if !mount_texts.is_empty() && image.is_none() {
        return Err(error(
            "mounts",
            "only a container service (one with `image`) has mounts".into(),
        ));
    }
    for (i, text) in mount_texts.iter().enumerate() {
        mounts
            .push(read_mount(dir, text).map_err(|reason| error(&format!("mounts[{i}]"), reason))?);
    }
    let mut env = Vec::new();
    for (key, value) in read_env(&mut fields, &error)? {
        let template = Template::parse(&value).map_err(|e| error(&format!("env.{key}"), e))?;
        env.push((key, template));
    }

    // What the placeholders connect to, checked against what the description has.
    let mut uses: Vec<String> = Vec::new();
    let mut listens = false;
    let located = command
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("command[{i}]"), t))
        .chain(env.iter().map(|(k, t)| (format!("env.{k}"), t)));
    for (field, template) in located {
        for placeholder in template.placeholders() {
            match placeholder {
                Placeholder::Port => listens = true,
                Placeholder::PostgresUrl(database) | Placeholder::PostgresqlUrl(database) => match postgres {
                    None => {
                        return Err(error(
                            &field,
                            "uses Postgres, but the description has no [postgres]".into(),
                        ))
                    }
                    Some(pg) if !pg.databases.contains(database) => {
                        return Err(error(
                            &field,
                            format!(
                                "database {database:?} is not declared; [postgres] databases: {}",
                                pg.databases.join(", ")
                            ),
                        ))
                    }
                    Some(_) => {}
                },
                Placeholder::PostgresHost
                | Placeholder::PostgresPort
                | Placeholder::PostgresUser
                | Placeholder::PostgresPassword
                    if postgres.is_none() =>
                {
                    return Err(error(
                        &field,
                        "uses Postgres, but the description has no [postgres]".into(),
                    ))
                }
                Placeholder::KafkaBootstrap if !has_kafka => {
                    return Err(error(
                        &field,
                        "uses Kafka, but the description has no [kafka]".into(),
                    ))
                }
                Placeholder::Link {
                    client,
                    server,
                    port,
                    url,
                } => {
                    let head = if *url { "link" } else { "address" };
                    if client != service {
                        return Err(error(
                            &field,
                            format!("{{{head}:{client}->{server}}}: a service's links start at itself: {{{head}:{service}->{server}}}"),
                        ));
                    }
                    let container = containers.iter().find(|c| &c.name == server);
                    let known = (services.contains(server) && server != service)
                        || container.is_some();
                    if !known {
                        let mut others: Vec<&str> = services
                            .iter()
                            .map(String::as_str)
                            .chain(containers.iter().map(|c| c.name.as_str()))
                            .filter(|s| *s != service)
                            .collect();
                        others.sort_unstable();
                        return Err(error(
                            &field,
                            format!(
                                "{{{head}:{client}->{server}}}: {server:?} is not another described service or container; described: {}",
                                if others.is_empty() { "none".to_string() } else { others.join(", ") }
                            ),
                        ));
                    }
                    if let Some(port) = port {
                        let ports = container.map(|c| c.ports.as_slice()).unwrap_or_default();
                        if !ports.contains(port) {
                            let has = if container.is_some() {
                                format!(
                                    "the container {server:?} has the ports {}",
                                    ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                                )
                            } else {
                                format!("{server:?} is a service, reached on its one {{port}}: {{{head}:{client}->{server}}}")
                            };
                            return Err(error(
                                &field,
                                format!("{{{head}:{client}->{server}:{port}}}: port {port} is not one its links lead to; {has}"),
                            ));
                        }
                    }
                }
                _ => {}
            }
            if let Some(server) = placeholder.server() {
                if !uses.iter().any(|u| u == server) {
                    uses.push(server.to_string());
                }
            }
        }
    }

    let mut depends_on = fields.strings("depends_on")?.unwrap_or_default();
    for (i, other) in depends_on.iter().enumerate() {
        if !services.contains(other) || other == service {
            return Err(error(
                &format!("depends_on[{i}]"),
                format!(
                    "{other:?} is not another described service; services: {}",
                    services.join(", ")
                ),
            ));
        }
    }
    for server in &uses {
        if services.contains(server) && !depends_on.contains(server) {
            depends_on.push(server.clone());
        }
    }

    let ready = read_ready(&mut fields, &error)?;
    if matches!(ready, Readiness::Http { .. } | Readiness::Tcp) && !listens {
        return Err(error(
            "ready",
            "checking readiness over HTTP or TCP needs the service to listen on {port}: use {port} in its command or env, or use ready = { log = \"…\" }".into(),
        ));
    }
    let ready_timeout = fields
        .duration("ready_timeout")?
        .unwrap_or(Duration::from_secs(60));
    let stop_grace = fields
        .duration("stop_grace")?
        .unwrap_or(Duration::from_secs(10));
    for (field, value) in [("ready_timeout", ready_timeout), ("stop_grace", stop_grace)] {
        if value.is_zero() || value > Duration::from_secs(3600) {
            return Err(error(field, "expected more than 0s and at most 1h".into()));
        }
    }
    let stop_signal = match fields.string("stop_signal", "a signal name such as \"SIGTERM\"")? {
        None => Signal {
            name: "SIGTERM",
            number: libc::SIGTERM,
        },
        Some(name) => SIGNALS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(name, number)| Signal {
                name,
                number: *number,
            })
            .ok_or_else(|| {
                error(
                    "stop_signal",
                    format!(
                        "unknown signal {name:?}; expected one of: {}",
                        SIGNALS.map(|(n, _)| n).join(", ")
                    ),
                )
            })?,
    };
    let (circuits, circuit_metric) = read_circuits(&mut fields, &error)?;
    if circuits.is_some() && !listens {
        return Err(error(
            "circuits",
            "reading circuits over HTTP needs the service to listen on {port}".into(),
        ));
    }
    let idempotency_key = match fields.string(
        "idempotency_key",
        "the header that carries an idempotency key, such as \"Idempotency-Key\"",
    )? {
        None => None,
        Some(header) => Some(hyper::header::HeaderName::from_bytes(header.as_bytes()).map_err(
            |_| {
                error(
                    "idempotency_key",
                    format!("{header:?} is not a header name (letters, digits and - _ only)"),
                )
            },
        )?),
    };
    if idempotency_key.is_some() && !listens {
        return Err(error(
            "idempotency_key",
            "only a service that listens on {port} is called through a link".into(),
        ));
    }
    let calls_service = |field: &str, callee: &str| {
        if services.iter().any(|s| s == callee) && uses.iter().any(|u| u == callee) {
            return Ok(());
        }
        Err(error(
            &format!("{field}.{callee}"),
            format!(
                "{service} does not call a service {callee:?}: this is said of a link to a service it names with {{link:{service}->…}}; it calls: {}",
                uses.iter().filter(|u| services.contains(u)).cloned().collect::<Vec<_>>().join(", ")
            ),
        ))
    };
    let mut in_flight = Vec::new();
    if let Some(mut bounds) = fields.table("in_flight")? {
        for (callee, bound) in bounds.named_integers_in(1..=100_000)? {
            calls_service("in_flight", &callee)?;
            in_flight.push((callee, bound as u32));
        }
        bounds.finish()?;
    }
    let mut timeouts = Vec::new();
    if let Some(mut table) = fields.table("timeouts")? {
        for (callee, text) in table.named_strings()? {
            calls_service("timeouts", &callee)?;
            timeouts.push((callee.clone(), call_duration(&error, "timeouts", &callee, &text)?));
        }
        table.finish()?;
    }
    let mut gives_up = Vec::new();
    if let Some(mut table) = fields.table("gives_up_after")? {
        for (key, text) in table.named_strings()? {
            let (callee, calls) = match key.split_once(' ') {
                Some((callee, calls)) => (callee, Some(calls.trim())),
                None => (key.as_str(), None),
            };
            calls_service("gives_up_after", callee).map_err(|_| {
                error(
                    &format!("gives_up_after.{key}"),
                    format!(
                        "expected a service {service} calls, optionally followed by a method and a route as the exploration report names call sites (\"payment\", \"payment POST /payments\"); it calls: {}",
                        uses.iter().filter(|u| services.contains(u)).cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            let calls = match calls {
                None => None,
                Some(calls) => match calls.split_once(' ') {
                    Some((method, route)) if !method.is_empty() && route.starts_with('/') => {
                        Some(format!("{} {}", method.to_ascii_uppercase(), route.trim()))
                    }
                    _ => {
                        return Err(error(
                            &format!("gives_up_after.{key}"),
                            format!("expected a method and a route after {callee:?}, such as \"{callee} POST /payments\" (`*` for an identifier); found {calls:?}"),
                        ))
                    }
                },
            };
            gives_up.push(GiveUp {
                callee: callee.to_string(),
                calls,
                after: call_duration(&error, "gives_up_after", &key, &text)?,
            });
        }
        table.finish()?;
    }
    fields.finish()?;
    Ok(ServiceSpec {
        name: service.to_string(),
        command,
        image,
        mounts,
        workdir,
        env,
        ready,
        ready_timeout,
        stop_signal,
        stop_grace,
        depends_on,
        uses,
        listens,
        circuits,
        circuit_metric,
        in_flight,
        timeouts,
        gives_up,
        idempotency_key,
    })
}

/// A duration of a service's calls (`timeouts`, `gives_up_after`): more than 0 s, at most 10 min.
fn call_duration(
    error: &dyn Fn(&str, String) -> DescriptionError,
    field: &str,
    key: &str,
    text: &str,
) -> Result<Duration, DescriptionError> {
    match faultline_chaos::scenario::fields::parse_duration(text) {
        Some(d) if !d.is_zero() && d <= Duration::from_secs(600) => Ok(d),
        _ => Err(error(
            &format!("{field}.{key}"),
            format!("expected a duration of more than 0s and at most 10m, such as \"1s\" or \"20s\"; found {text:?}"),
        )),
    }
}

/// `circuits = "/path"` (JSON) or `circuits = { metrics = "/path", metric = "…", … }`.
fn read_circuits(
    fields: &mut Fields<'_>,
    error: &dyn Fn(&str, String) -> DescriptionError,
) -> Result<(Option<String>, Option<CircuitMetric>), DescriptionError> {
    let check_path = |field: &str, path: &str| {
        if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
            Err(error(
                field,
                format!("expected an HTTP path starting with `/`, found {path:?}"),
            ))
        } else {
            Ok(())
        }
    };
    if !fields.raw().get("circuits").is_some_and(toml::Value::is_table) {
        let path = fields.string(
            "circuits",
            "an HTTP path such as \"/admin/circuits\" answering the service's circuit breakers as JSON, or a table { metrics = \"/metrics\", metric = \"…\", dependency_label = \"…\" }",
        )?;
        if let Some(path) = &path {
            check_path("circuits", path)?;
        }
        return Ok((path, None));
    }
    let mut table = fields.table("circuits")?.expect("checked: a table");
    let path = table.required_string("metrics", "the HTTP path of the Prometheus exposition, such as \"/metrics\"")?;
    check_path("circuits.metrics", &path)?;
    let metric_name = |table: &mut Fields<'_>, key: &'static str, required: bool| {
        let value = table.string(key, "a Prometheus metric or label name")?;
        match value {
            None if required => Err(error(
                &format!("circuits.{key}"),
                "required: a Prometheus metric or label name".into(),
            )),
            Some(name) if !is_metric_name(&name) => Err(error(
                &format!("circuits.{key}"),
                format!("{name:?}: expected a Prometheus name (letters, digits, `_`, `:`, not starting with a digit)"),
            )),
            other => Ok(other),
        }
    };
    let metric = metric_name(&mut table, "metric", true)?.expect("required");
    let dependency_label =
        metric_name(&mut table, "dependency_label", false)?.unwrap_or_else(|| "dependency".into());
    let state_label = metric_name(&mut table, "state_label", false)?;
    let rejected = metric_name(&mut table, "rejected", false)?;
    let has_states = table.raw().contains_key("states");
    let states = table.strings("states")?.unwrap_or_else(|| {
        ["CLOSED", "OPEN", "HALF_OPEN"].map(String::from).to_vec()
    });
    if states.is_empty() || states.iter().any(|s| s.trim().is_empty()) {
        return Err(error("circuits.states", "expected state names, the one valued 0 first".into()));
    }
    if state_label.is_some() && has_states {
        return Err(error(
            "circuits.states",
            "with state_label the label names the states; states is for a gauge valued by state".into(),
        ));
    }
    let every = table.duration("every")?.unwrap_or(Duration::from_millis(250));
    if every < Duration::from_millis(50) || every > Duration::from_secs(10) {
        return Err(error("circuits.every", "expected from 50ms to 10s".into()));
    }
    table.finish()?;
    Ok((
        Some(path),
        Some(CircuitMetric {
            metric,
            dependency_label,
            state_label,
            states: states.iter().map(|s| normal_state(s)).collect(),
            rejected,
            every,
        }),
    ))
}

/// A breaker state as faultline names them: `half-open` and `half_open` are `HALF_OPEN`.
pub fn normal_state(state: &str) -> String {
    state.trim().to_ascii_uppercase().replace('-', "_")
}

fn is_metric_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// `env = { NAME = "value", … }`: names checked, values as written.
fn read_env(
    fields: &mut Fields<'_>,
    error: &dyn Fn(&str, String) -> DescriptionError,
) -> Result<Vec<(String, String)>, DescriptionError> {
    let Some(mut env_fields) = fields.table("env")? else {
        return Ok(Vec::new());
    };
    let env = env_fields.named_strings()?;
    if let Some((key, _)) = env
        .iter()
        .find(|(key, _)| key.is_empty() || key.contains('=') || key.contains('\0'))
    {
        return Err(error(
            &format!("env.{key}"),
            "expected a variable name without `=`".into(),
        ));
    }
    env_fields.finish()?;
    Ok(env)
}

/// `ready = { http = "/path" } | { tcp = true } | { log = "text" }`; TCP when not given.
fn read_ready(
    fields: &mut Fields<'_>,
    error: &dyn Fn(&str, String) -> DescriptionError,
) -> Result<Readiness, DescriptionError> {
    let Some(mut ready_fields) = fields.table("ready")? else {
        return Ok(Readiness::Tcp);
    };
    let http = ready_fields.string("http", "a path such as \"/health\"")?;
    let tcp = ready_fields.boolean("tcp")?;
    let log = ready_fields.string("log", "text written once it is ready")?;
    ready_fields.finish()?;
    match (http, tcp, log) {
        (Some(path), None, None) if path.starts_with('/') => Ok(Readiness::Http { path }),
        (Some(path), None, None) => Err(error(
            "ready.http",
            format!("expected a path starting with `/`, found {path:?}"),
        )),
        (None, Some(true), None) => Ok(Readiness::Tcp),
        (None, None, Some(text)) if !text.is_empty() => Ok(Readiness::Log { text }),
        _ => Err(error(
            "ready",
            "expected exactly one of: http = \"/path\", tcp = true, log = \"text\"".into(),
        )),
    }
}

/// An image reference: no spaces, no scheme, not empty.
fn check_image(image: &str) -> Result<(), String> {
    let plausible = !image.is_empty()
        && !image.contains("://")
        && image
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b));
    if plausible {
        Ok(())
    } else {
        Err(format!(
            "{image:?}: expected an image reference such as \"shop/checkout:1.4\""
        ))
    }
}

/// `HOST:CONTAINER` or `HOST:CONTAINER:ro`, the host side relative to `dir` and existing.
fn read_mount(dir: &Path, text: &str) -> Result<Mount, String> {
    let expected = || {
        format!("{text:?}: expected \"HOST:CONTAINER\" or \"HOST:CONTAINER:ro\", CONTAINER an absolute path")
    };
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [host, container] => (*host, *container, false),
        [host, container, "ro"] => (*host, *container, true),
        [host, container, "rw"] => (*host, *container, false),
        _ => return Err(expected()),
    };
    if host.is_empty() || !container.starts_with('/') {
        return Err(expected());
    }
    let full = dir.join(host);
    let host = std::fs::canonicalize(&full).map_err(|e| format!("{}: {e}", full.display()))?;
    Ok(Mount {
        host,
        container: container.to_string(),
        read_only,
    })
}

/// Errors for the fields of `[SECTION.NAME]` (`""` for the table itself).
fn field_error<'a>(
    file: &'a str,
    section: &'a str,
    name: &'a str,
) -> impl Fn(&str, String) -> DescriptionError + 'a {
    move |field: &str, reason: String| DescriptionError {
        file: file.to_string(),
        field: if field.is_empty() {
            format!("{section}.{name}")
        } else {
            format!("{section}.{name}.{field}")
        },
        reason,
    }
}

/// A service's or container's name: short, lower-case, not one faultline uses itself.
fn check_table_name(
    kind: &str,
    name: &str,
    reserved: &[&str],
    error: &dyn Fn(&str, String) -> DescriptionError,
) -> Result<(), DescriptionError> {
    if !is_name(name, b"-") || name.len() > 32 || name.starts_with('-') {
        return Err(error(
            "",
            format!("{kind} name {name:?}: expected 1 to 32 characters of a-z, 0-9 and `-`"),
        ));
    }
    if reserved.contains(&name) {
        return Err(error(
            "",
            format!("{name:?} is reserved (faultline's own servers and client)"),
        ));
    }
    Ok(())
}

/// One `[containers.NAME]` table.
fn read_container(
    file: &str,
    name: &str,
    mut fields: Fields<'_>,
) -> Result<ContainerServerSpec, DescriptionError> {
    let error = field_error(file, "containers", name);
    let reserved = [RESERVED.as_slice(), &["toxiproxy"]].concat();
    check_table_name("container", name, &reserved, &error)?;
    let image = fields.required_string("image", "a container image such as \"redis:7\"")?;
    check_image(&image).map_err(|reason| error("image", reason))?;
    let port = fields.integer_in("port", 1..=65535)?;
    let listed = fields.integers_in("ports", 1..=65535)?;
    let ports: Vec<u16> = match (port, listed) {
        (Some(port), None) => vec![port as u16],
        (None, Some(ports)) if !ports.is_empty() => ports.into_iter().map(|p| p as u16).collect(),
        (None, Some(_)) => {
            return Err(error(
                "ports",
                "expected at least one container port".into(),
            ))
        }
        (None, None) => {
            return Err(error(
                "port",
                "required (or `ports`): the container port its links lead to".into(),
            ))
        }
        (Some(_), Some(_)) => {
            return Err(error(
                "ports",
                "give `port` or `ports`, not both".into(),
            ))
        }
    };
    if let Some(twice) = ports.iter().enumerate().find(|(i, p)| ports[..*i].contains(p)) {
        return Err(error(
            &format!("ports[{}]", twice.0),
            format!("port {} is listed twice", twice.1),
        ));
    }
    let mut env = Vec::new();
    for (key, value) in read_env(&mut fields, &error)? {
        let template =
            Template::parse(&value).map_err(|reason| error(&format!("env.{key}"), reason))?;
        if template
            .placeholders()
            .any(|p| !matches!(p, Placeholder::Env { .. } | Placeholder::Dir))
        {
            return Err(error(
                &format!("env.{key}"),
                "a container's environment may hold only the placeholders {env:NAME} and {dir}: it starts before the run's addresses are known".into(),
            ));
        }
        env.push((key, template));
    }
    let command = fields.strings("command")?;
    let ready = read_ready(&mut fields, &error)?;
    let ready_timeout = fields
        .duration("ready_timeout")?
        .unwrap_or(Duration::from_secs(60));
    if ready_timeout.is_zero() || ready_timeout > Duration::from_secs(3600) {
        return Err(error(
            "ready_timeout",
            "expected more than 0s and at most 1h".into(),
        ));
    }
    fields.finish()?;
    Ok(ContainerServerSpec {
        name: name.to_string(),
        image,
        ports,
        env,
        command,
        ready,
        ready_timeout,
    })
}

/// Orders services so each comes after its dependencies (ties by name); a cycle is an error
/// naming it.
fn in_start_order(
    file: &str,
    services: Vec<ServiceSpec>,
) -> Result<Vec<ServiceSpec>, DescriptionError> {
    let mut pending: BTreeMap<String, ServiceSpec> =
        services.into_iter().map(|s| (s.name.clone(), s)).collect();
    let mut ordered: Vec<ServiceSpec> = Vec::new();
    while !pending.is_empty() {
        let ready = pending
            .values()
            .find(|s| {
                s.depends_on
                    .iter()
                    .all(|d| ordered.iter().any(|o| &o.name == d))
            })
            .map(|s| s.name.clone());
        match ready {
            Some(name) => ordered.push(pending.remove(&name).expect("found above")),
            None => {
                let cycle = find_cycle(&pending);
                return Err(DescriptionError {
                    file: file.into(),
                    field: format!("services.{}.depends_on", cycle[0]),
                    reason: format!(
                        "dependency cycle {}: services start after what they link to and what they name in depends_on",
                        cycle.join(" -> ")
                    ),
                });
            }
        }
    }
    Ok(ordered)
}

/// A cycle among `pending` services (each has a dependency that is still pending).
fn find_cycle(pending: &BTreeMap<String, ServiceSpec>) -> Vec<String> {
    let mut path: Vec<String> = Vec::new();
    let mut current = pending.keys().next().cloned().unwrap_or_default();
    loop {
        if let Some(at) = path.iter().position(|p| p == &current) {
            let mut cycle = path[at..].to_vec();
            cycle.push(current);
            return cycle;
        }
        path.push(current.clone());
        match pending
            .get(&current)
            .and_then(|s| s.depends_on.iter().find(|d| pending.contains_key(*d)))
        {
            Some(next) => current = next.clone(),
            None => return path,
        }
    }
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
