//! Reading a whole description: the file, the top-level fields, the shared servers, every
//! service and container (each read by its own module), and the start order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use faultline_chaos::scenario::fields::Fields;
use faultline_chaos::topology::Topology;

use super::container::read_container;
use super::service::{read_service, Known};
use super::{
    is_name, is_topic_name, DescriptionError, KafkaSpec, PostgresSpec, ResetMode, ServiceSpec,
    SettleSpec, System, TopicSpec,
};

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
                    .error(
                        "reset",
                        format!("expected \"fresh\" or \"warm\", found {other:?}"),
                    )
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

        // A handed-over address is its caller's link.
        let handed: Vec<(String, String)> =
            services.iter().flat_map(|s| s.hands_over.iter().cloned()).collect();
        for (client, server) in handed {
            let caller = services.iter_mut().find(|s| s.name == client).expect("checked when read");
            if !caller.uses.contains(&server) {
                caller.uses.push(server.clone());
            }
            // It starts after what it calls, as with a link of its own.
            if names.contains(&server) && !caller.depends_on.contains(&server) {
                caller.depends_on.push(server);
            }
        }

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
}

/// Orders services so each comes after its dependencies (ties by name); a cycle is an error
/// naming it.
pub(super) fn in_start_order(
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
pub(super) fn find_cycle(pending: &BTreeMap<String, ServiceSpec>) -> Vec<String> {
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
