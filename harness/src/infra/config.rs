//! What a run's infrastructure is made of: the images (and the variables that override them),
//! and the configuration a description gives ([`InfraConfig`]), with the servers' environment.

use std::collections::BTreeMap;
use std::time::Duration;

use faultline_chaos::toxiproxy::ToxiproxyClient;
use serde::Serialize;

use super::docker::ContainerSpec;
use super::{InfraError, Mode, DEFAULT_KAFKA_IMAGE, DEFAULT_POSTGRES_IMAGE, DEFAULT_TOXIPROXY_IMAGE, PROXY_PORTS};
use crate::system::HARNESS_CLIENT;

/// An image name and the environment variable it can be overridden with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub name: String,
    pub variable: &'static str,
}

impl Image {
    pub(super) fn from_env(variable: &'static str, default: &str, built: &BTreeMap<String, String>) -> Self {
        let name = std::env::var(variable)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| built.get(variable).cloned())
            .unwrap_or_else(|| default.to_string());
        Self { name, variable }
    }
}

/// The image names `ci/setup` wrote to `.faultline/images.env`, found in the current folder or
/// one above it, or above the running executable (a test binary in `target/debug/deps`): so a
/// plain `cargo test` after `ci/setup` uses the locally built images without anyone having to
/// `source` the file first. Lines are `export NAME=value`; anything else is ignored.
pub(super) fn images_built_by_setup() -> BTreeMap<String, String> {
    let mut starts: Vec<std::path::PathBuf> = Vec::new();
    starts.extend(std::env::current_dir().ok());
    starts.extend(std::env::current_exe().ok());
    for start in starts {
        for dir in start.ancestors() {
            let file = dir.join(".faultline").join("images.env");
            if let Ok(text) = std::fs::read_to_string(&file) {
                return parse_images_env(&text);
            }
        }
    }
    BTreeMap::new()
}

pub(super) fn parse_images_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .filter(|(name, value)| name.starts_with("FAULTLINE_") && !value.is_empty())
        .collect()
}

/// The three images of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Images {
    pub postgres: Image,
    pub kafka: Image,
    pub toxiproxy: Image,
}

impl Images {
    /// Reads `FAULTLINE_{POSTGRES,KAFKA,TOXIPROXY}_IMAGE`; where one is unset, the image
    /// `ci/setup` built (its `.faultline/images.env`), else the official image.
    pub fn from_env() -> Self {
        let built = images_built_by_setup();
        Self {
            postgres: Image::from_env("FAULTLINE_POSTGRES_IMAGE", DEFAULT_POSTGRES_IMAGE, &built),
            kafka: Image::from_env("FAULTLINE_KAFKA_IMAGE", DEFAULT_KAFKA_IMAGE, &built),
            toxiproxy: Image::from_env(
                "FAULTLINE_TOXIPROXY_IMAGE",
                DEFAULT_TOXIPROXY_IMAGE,
                &built,
            ),
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct InfraConfig {
    /// Start Postgres (and a `<client>-postgres` proxy per client).
    pub postgres: bool,
    /// Start Kafka (and a `<client>-kafka` proxy and broker listener per client).
    pub kafka: bool,
    /// Named clients, one per service. [`HARNESS_CLIENT`] is always added.
    pub clients: Vec<String>,
    /// When set, only these `(client, server)` pairs get a link (a system description says
    /// which service uses which server); when `None`, every client gets one to each server.
    /// The harness's own client always has both.
    pub only_links: Option<std::collections::BTreeSet<(String, String)>>,
    pub images: Images,
    /// How long each server may take to become ready.
    pub ready_timeout: Duration,
    /// Further servers, each a container of an image a system description names; clients
    /// reach one through a proxy when `only_links` lists the pair (container mode only).
    pub servers: Vec<ServerContainer>,
    /// Images the system's services run from, as `(service, image)`: checked (and pulled when
    /// missing and pullable) before anything starts, so a wrong name costs nothing.
    pub service_images: Vec<(String, String)>,
    /// Input the user must fix that was found while this configuration was made (a variable
    /// a container's environment names is unset): [`InfraConfig::check_environment`] and
    /// [`Infra::start`] refuse it before anything starts.
    pub problems: Vec<String>,
}

/// A further server: a container of any image, reached through a proxy per client.
#[derive(Debug, Clone)]
pub struct ServerContainer {
    /// Its name (a link's server), image, environment and command; `ports` is ignored.
    pub spec: ContainerSpec,
    /// The container ports links lead to, a proxy per client and port; the first is the
    /// link's [`Link::address`], the others its [`Link::more`].
    pub ports: Vec<u16>,
    /// Checked through its published port (TCP: the connection must stay open, since the
    /// engine's port forwarder accepts before anything listens behind it), or in its output.
    pub ready: crate::system::Readiness,
    pub ready_timeout: Duration,
}


impl InfraConfig {
    /// The infrastructure `system` needs: Postgres and Kafka if described, a client per
    /// service that uses either, a proxy for each of those links only, and its other shared
    /// server containers (problems resolving their environment go to [`InfraConfig::problems`]).
    pub fn for_system(system: &crate::system::System) -> Self {
        let server_links = system.server_links();
        let mut config = Self::with_clients(
            system
                .services
                .iter()
                .filter(|s| server_links.iter().any(|(client, _)| client == &s.name))
                .map(|s| s.name.clone()),
        );
        config.postgres = system.postgres.is_some();
        config.kafka = system.kafka.is_some();
        config.only_links = Some(server_links);
        config.service_images = system
            .services
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.image.clone()?)))
            .collect();
        let mut problems = Vec::new();
        config.servers = system
            .containers
            .iter()
            .map(|c| ServerContainer {
                spec: ContainerSpec {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    env: system.container_env(c, &mut problems),
                    cmd: c.command.clone(),
                    ..Default::default()
                },
                ports: c.ports.clone(),
                ready: c.ready.clone(),
                ready_timeout: c.ready_timeout,
            })
            .collect();
        config.problems = problems;
        config
    }

    /// Postgres, Kafka and Toxiproxy, with links for each named client.
    pub fn with_clients<I, S>(clients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            postgres: true,
            kafka: true,
            clients: clients.into_iter().map(Into::into).collect(),
            only_links: None,
            images: Images::from_env(),
            ready_timeout: Duration::from_secs(120),
            servers: Vec::new(),
            service_images: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Only Toxiproxy: for tests of the proxy client itself.
    pub fn toxiproxy_only() -> Self {
        Self {
            postgres: false,
            kafka: false,
            ..Self::with_clients(Vec::<String>::new())
        }
    }

    pub(super) fn all_clients(&self) -> Vec<String> {
        let mut clients = vec![HARNESS_CLIENT.to_string()];
        for client in &self.clients {
            if !clients.contains(client) {
                clients.push(client.clone());
            }
        }
        clients
    }

    /// The servers links can lead to: Postgres and Kafka when started, then the others.
    pub(super) fn server_names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        if self.postgres {
            names.push("postgres");
        }
        if self.kafka {
            names.push("kafka");
        }
        names.extend(self.servers.iter().map(|s| s.spec.name.as_str()));
        names
    }

    /// The container ports of a further server (empty for Postgres and Kafka).
    pub(super) fn ports_of(&self, server: &str) -> &[u16] {
        self.servers
            .iter()
            .find(|s| s.spec.name == server)
            .map_or(&[], |s| s.ports.as_slice())
    }

    /// Whether `client` gets a link to `server` (`"postgres"`, `"kafka"`, or one of
    /// [`InfraConfig::servers`], which the harness's own client never links to).
    pub(super) fn wants(&self, client: &str, server: &str) -> bool {
        let enabled = match server {
            "postgres" => self.postgres,
            "kafka" => self.kafka,
            other => client != HARNESS_CLIENT && self.servers.iter().any(|s| s.spec.name == other),
        };
        enabled
            && (client == HARNESS_CLIENT
                || self
                    .only_links
                    .as_ref()
                    .is_none_or(|only| only.contains(&(client.to_string(), server.to_string()))))
    }

    /// Checks the environment this infrastructure would be started from — `FAULTLINE_INFRA`
    /// and, in external mode, the addresses of the servers it asks for — without starting
    /// anything, so a command can refuse a bad setting before it begins. [`Infra::start`]
    /// makes the same check.
    pub fn check_environment(&self) -> Result<(), InfraError> {
        self.refuse_problems()?;
        environment_mode(self.postgres, self.kafka).map(|_| ())
    }

    /// The first of [`InfraConfig::problems`], as the error it is.
    pub(super) fn refuse_problems(&self) -> Result<(), InfraError> {
        match self.problems.first() {
            Some(problem) => Err(InfraError::Input(problem.clone())),
            None => Ok(()),
        }
    }

    pub(super) fn validate(&self) -> Result<(), InfraError> {
        for client in &self.clients {
            let valid = !client.is_empty()
                && client.len() <= 32
                && client
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !client.starts_with('-');
            if !valid {
                return Err(InfraError::Config(format!(
                    "client name `{client}`: expected 1 to 32 characters of a-z, 0-9 and `-`, not starting with `-`"
                )));
            }
        }
        let needed = self
            .all_clients()
            .iter()
            .map(|c| {
                self.server_names()
                    .iter()
                    .filter(|server| self.wants(c, server))
                    .map(|server| self.ports_of(server).len().max(1))
                    .sum::<usize>()
            })
            .sum::<usize>();
        let available = PROXY_PORTS.len();
        if needed > available {
            return Err(InfraError::Config(format!(
                "{} clients need {needed} proxies, but Toxiproxy publishes only {available} proxy ports",
                self.all_clients().len()
            )));
        }
        Ok(())
    }
}

pub(super) fn required_env(name: &'static str) -> Result<String, InfraError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| InfraError::Environment {
            variable: name,
            problem: "is required with FAULTLINE_INFRA=external".into(),
        })
}

/// The mode `FAULTLINE_INFRA` selects, with the variables that mode needs checked.
pub(super) fn environment_mode(postgres: bool, kafka: bool) -> Result<Mode, InfraError> {
    let mode = match std::env::var("FAULTLINE_INFRA").as_deref() {
        Ok("external") => Mode::External,
        Ok("containers") | Ok("") | Err(std::env::VarError::NotPresent) => Mode::Containers,
        Ok(other) => {
            return Err(InfraError::Environment {
                variable: "FAULTLINE_INFRA",
                problem: format!("`{other}`: expected `containers` (default) or `external`"),
            })
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(InfraError::Environment {
                variable: "FAULTLINE_INFRA",
                problem: "is not valid UTF-8: expected `containers` (default) or `external`".into(),
            })
        }
    };
    if mode == Mode::External {
        let url = required_env("FAULTLINE_TOXIPROXY_URL")?;
        let host = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split([':', '/']).next())
            .filter(|h| !h.is_empty());
        if host.is_none() || ToxiproxyClient::new(&url).is_err() {
            return Err(InfraError::Environment {
                variable: "FAULTLINE_TOXIPROXY_URL",
                problem: format!("`{url}`: expected http://HOST:PORT"),
            });
        }
        if postgres {
            required_env("FAULTLINE_POSTGRES_ADDR")?;
        }
        if kafka {
            required_env("FAULTLINE_KAFKA_BOOTSTRAP")?;
        }
    }
    Ok(mode)
}
