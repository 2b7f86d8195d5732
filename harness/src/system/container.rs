//! Reading one `[containers.NAME]` table: a shared server run from an image.

use std::time::Duration;

use faultline_chaos::scenario::fields::Fields;

use super::fields::{check_image, check_table_name, field_error, read_env, read_ready};
use super::{ContainerServerSpec, DescriptionError, Placeholder, Template, RESERVED};

/// One `[containers.NAME]` table.
pub(super) fn read_container(
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
            return Err(error("ports", "give `port` or `ports`, not both".into()))
        }
    };
    if let Some(twice) = ports
        .iter()
        .enumerate()
        .find(|(i, p)| ports[..*i].contains(p))
    {
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
