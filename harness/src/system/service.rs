//! Reading one `[services.NAME]` table: its command or image, environment and placeholders,
//! readiness, stop signal, give-up and circuit declarations.

use std::path::Path;
use std::time::Duration;

use faultline_chaos::scenario::fields::Fields;

use super::fields::{check_image, check_table_name, field_error, read_env, read_mount, read_ready};
use super::{
    normal_state, CircuitMetric, ContainerServerSpec, DescriptionError, GiveUp, Placeholder,
    PostgresSpec, Readiness, ServiceSpec, Signal, Template, RESERVED, SIGNALS,
};

/// What else the description has, for checking what a service's placeholders connect to.
pub(super) struct Known<'a> {
    pub(super) services: &'a [String],
    pub(super) containers: &'a [ContainerServerSpec],
    pub(super) postgres: Option<&'a PostgresSpec>,
    pub(super) kafka: bool,
}

pub(super) fn read_service(
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
    // The migration step: run to its end before each start on fresh databases.
    let mut before = Vec::new();
    if let Some(argv) = fields.strings("before")? {
        if argv.is_empty() || argv[0].trim().is_empty() {
            return Err(error(
                "before",
                "expected the program first, then its arguments, e.g. [\"alembic\", \"upgrade\", \"head\"]".into(),
            ));
        }
        for (i, arg) in argv.iter().enumerate() {
            before.push(Template::parse(arg).map_err(|e| error(&format!("before[{i}]"), e))?);
        }
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
    let mut hands_over: Vec<(String, String)> = Vec::new();
    let mut listens = false;
    let located = command
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("command[{i}]"), t))
        .chain(before.iter().enumerate().map(|(i, t)| (format!("before[{i}]"), t)))
        .chain(env.iter().map(|(k, t)| (format!("env.{k}"), t)));
    for (field, template) in located {
        for placeholder in template.placeholders() {
            match placeholder {
                Placeholder::Port => listens = true,
                Placeholder::PostgresUrl(database)
                | Placeholder::PostgresqlUrl(database)
                | Placeholder::PostgresJdbc(database) => {
                    match postgres {
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
                    }
                }
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
                        // An address this service hands to another caller, which calls it:
                        // the link is that caller's (its faults and kills act there).
                        if !services.contains(client) || client == server {
                            return Err(error(
                                &field,
                                format!(
                                    "{{{head}:{client}->{server}}}: a link starts at the service that calls through it — this one ({{{head}:{service}->{server}}}) or another described service it hands the address to; {client:?} is {}",
                                    if client == server { "the called service itself".to_string() } else { format!("not a described service; services: {}", services.join(", ")) }
                                ),
                            ));
                        }
                        let pair = (client.clone(), server.clone());
                        if !hands_over.contains(&pair) {
                            hands_over.push(pair);
                        }
                    }
                    let container = containers.iter().find(|c| &c.name == server);
                    let known =
                        (services.contains(server) && server != service) || container.is_some();
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
                                    ports
                                        .iter()
                                        .map(u16::to_string)
                                        .collect::<Vec<_>>()
                                        .join(", ")
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
            let handed = matches!(placeholder, Placeholder::Link { client, .. } if client != service);
            if let (Some(server), false) = (placeholder.server(), handed) {
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
    let before_timeout = match fields.duration("before_timeout")? {
        Some(_) if before.is_empty() => {
            return Err(error(
                "before_timeout",
                "bounds the `before` command, which this service does not have".into(),
            ))
        }
        given => given.unwrap_or(Duration::from_secs(120)),
    };
    for (field, value) in [
        ("ready_timeout", ready_timeout),
        ("stop_grace", stop_grace),
        ("before_timeout", before_timeout),
    ] {
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
        Some(header) => Some(
            hyper::header::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                error(
                    "idempotency_key",
                    format!("{header:?} is not a header name (letters, digits and - _ only)"),
                )
            })?,
        ),
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
            timeouts.push((
                callee.clone(),
                call_duration(&error, "timeouts", &callee, &text)?,
            ));
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
        before,
        before_timeout,
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
        hands_over,
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
pub(super) fn call_duration(
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
pub(super) fn read_circuits(
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
    if !fields
        .raw()
        .get("circuits")
        .is_some_and(toml::Value::is_table)
    {
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
    let path = table.required_string(
        "metrics",
        "the HTTP path of the Prometheus exposition, such as \"/metrics\"",
    )?;
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
    let states = table
        .strings("states")?
        .unwrap_or_else(|| ["CLOSED", "OPEN", "HALF_OPEN"].map(String::from).to_vec());
    if states.is_empty() || states.iter().any(|s| s.trim().is_empty()) {
        return Err(error(
            "circuits.states",
            "expected state names, the one valued 0 first".into(),
        ));
    }
    if state_label.is_some() && has_states {
        return Err(error(
            "circuits.states",
            "with state_label the label names the states; states is for a gauge valued by state"
                .into(),
        ));
    }
    let every = table
        .duration("every")?
        .unwrap_or(Duration::from_millis(250));
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

pub(super) fn is_metric_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}
