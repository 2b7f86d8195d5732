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
            Placeholder::PostgresJdbc(database) => postgres(&|server, address| {
                format!(
                    "jdbc:postgresql://{address}/{database}?user={}&password={}",
                    query_value(&server.user),
                    query_value(&server.password)
                )
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
    resolve_program(system, spec, &spec.command, "command", values)
}

/// How `spec`'s migration step (`before`) runs, when it has one: as its command would.
pub(super) fn resolve_before(
    system: &System,
    spec: &ServiceSpec,
    values: &Values<'_>,
) -> Result<Option<Launch>, StackError> {
    if spec.before.is_empty() {
        return Ok(None);
    }
    resolve_program(system, spec, &spec.before, "before", values).map(Some)
}

/// `templates` (the field `field` of `spec`) as a launch: a container of `spec`'s image, or a
/// program found on `PATH` or in the service's workdir.
fn resolve_program(
    system: &System,
    spec: &ServiceSpec,
    templates: &[crate::system::Template],
    field: &str,
    values: &Values<'_>,
) -> Result<Launch, StackError> {
    let mut argv = Vec::new();
    for (i, template) in templates.iter().enumerate() {
        argv.push(
            template
                .render(values)
                .map_err(|message| StackError::Resolve {
                    file: system.file.display().to_string(),
                    service: spec.name.clone(),
                    message: format!("{field}[{i}]: {message}"),
                })?,
        );
    }
    if let Some(image) = &spec.image {
        return Ok(Launch::Container(ContainerSpec {
            name: if field == "command" { spec.name.clone() } else { format!("{}-{field}", spec.name) },
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
    let uses_bin = templates
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
                    "the first element of services.{}.{field} in {} must be a program on PATH or a path relative to the service's workdir",
                    spec.name,
                    system.file.display()
                )
            },
        }),
    }
}

/// `text` as a URL query value: every byte but unreserved ones percent-encoded.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_jdbc_parameter_is_percent_encoded() {
        assert_eq!(super::query_value("faultline"), "faultline");
        assert_eq!(super::query_value("p@ss w&rd=1"), "p%40ss%20w%26rd%3D1");
    }
}
