//! Readers of the fields services and `[containers.*]` servers share: environment tables,
//! readiness, images, mounts, table names, and the error that names a field.

use std::path::Path;

use faultline_chaos::scenario::fields::Fields;

use super::{is_name, DescriptionError, Mount, Readiness};

/// Errors for the fields of `[SECTION.NAME]` (`""` for the table itself).
pub(super) fn field_error<'a>(
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

/// `env = { NAME = "value", … }`: names checked, values as written.
pub(super) fn read_env(
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
pub(super) fn read_ready(
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
pub(super) fn check_image(image: &str) -> Result<(), String> {
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
pub(super) fn read_mount(dir: &Path, text: &str) -> Result<Mount, String> {
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

/// A service's or container's name: short, lower-case, not one faultline uses itself.
pub(super) fn check_table_name(
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
