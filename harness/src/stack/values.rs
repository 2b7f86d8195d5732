//! What a service's placeholders resolve to (`{port}`, `{link:…}`, `{postgres.url:…}`, …) and
//! how its command and environment are rendered from them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::infra::{ContainerSpec, Infra};
use crate::system::{Placeholder, ServiceSpec, System};
use super::StackError;
use super::process::Launch;

/// What one service's placeholders resolve to. Before the infrastructure runs (`infra` is
/// `None`) only the placeholders that need none resolve; the others render as themselves,
/// which is enough to find programs and unset variables before anything starts.
pub(super) struct Values<'a> {
    pub(super) system: &'a System,
    pub(super) service: &'a ServiceSpec,
    pub(super) bin_dir: &'a Path,
    pub(super) ports: &'a BTreeMap<String, u16>,
    pub(super) link_ports: &'a BTreeMap<String, u16>,
    pub(super) infra: Option<&'a Infra>,
    /// Where each service's link to Postgres is reached when a statement proxy fronts it.
    pub(super) statement_proxies: Option<&'a BTreeMap<String, String>>,
    /// Postgres and service links resolve to their servers' own addresses.
    pub(super) direct_links: bool,
}

impl<'a> Values<'a> {
    pub(super) fn preflight(
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
            Placeholder::Dir | Placeholder::Env { .. } => {
                self.system.described_value(placeholder).expect("decided by the description")
            }
            Placeholder::Bin(binary) => Ok(self.bin_dir.join(binary).display().to_string()),
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
pub(super) fn resolve_env(
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
pub(super) fn resolve_launch(
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
