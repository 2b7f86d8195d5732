//! Configuration from environment variables, with every bad variable reported at once.
//!
//! A service reads its variables through an [`EnvReader`] with the service's prefix. Each getter
//! returns a value straight away (a placeholder when the variable is bad) and remembers what was
//! wrong; [`EnvReader::finish`] then fails with *all* problems, each naming its variable and what
//! was expected, so one start-up attempt shows everything to fix:
//!
//! ```
//! use faultline_kit::config::EnvReader;
//!
//! struct OrderConfig { database_url: String, http_port: u16 }
//!
//! let mut env = EnvReader::from_pairs("ORDER", [("ORDER_HTTP_PORT", "abc")]);
//! let config = OrderConfig {
//!     database_url: env.postgres_url("DATABASE_URL"),
//!     http_port: env.port_or("HTTP_PORT", 8080),
//! };
//! let errors = env.finish().unwrap_err();
//! assert_eq!(errors.to_string(), "\
//! ORDER_DATABASE_URL: required, a postgres:// URL
//! ORDER_HTTP_PORT=abc: expected a port number 1-65535");
//! # let _ = config.database_url; let _ = config.http_port;
//! ```
//!
//! Services use [`EnvReader::from_env`]. Values are never echoed when they may be secret:
//! variables whose name contains `PASSWORD`, `SECRET`, `TOKEN` or `KEY` show as `<redacted>`,
//! and a password inside a URL shows as `***` (see [`redact`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One bad variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The full variable name, e.g. `ORDER_HTTP_PORT`.
    pub variable: String,
    /// The value as it may be shown (redacted when secret); `None` when the variable was unset.
    pub shown_value: Option<String>,
    /// What a good value looks like.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shown_value {
            None => write!(f, "{}: required, {}", self.variable, self.expected),
            Some(value) => write!(f, "{}={value}: expected {}", self.variable, self.expected),
        }
    }
}

/// Every bad variable of one start-up, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Reads `<PREFIX>_<NAME>` variables and collects what is wrong with them.
#[derive(Debug)]
pub struct EnvReader {
    prefix: String,
    values: BTreeMap<String, String>,
    errors: Vec<ConfigError>,
}

impl EnvReader {
    /// Reads the process environment. `prefix` is the service's, e.g. `ORDER`.
    pub fn from_env(prefix: &str) -> Self {
        Self::from_pairs(prefix, std::env::vars())
    }

    /// Reads the given pairs instead of the process environment (tests, `--help` output).
    pub fn from_pairs<I, K, V>(prefix: &str, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            prefix: prefix.to_string(),
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            errors: Vec::new(),
        }
    }

    /// The full name of variable `name`: `ORDER` + `HTTP_PORT` → `ORDER_HTTP_PORT`.
    pub fn variable(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}_{name}", self.prefix)
        }
    }

    fn raw(&self, name: &str) -> (String, Option<String>) {
        let variable = self.variable(name);
        let value = self
            .values
            .get(&variable)
            .filter(|v| !v.trim().is_empty())
            .cloned();
        (variable, value)
    }

    fn reject(&mut self, variable: String, value: Option<&str>, expected: &str) {
        let shown_value = value.map(|v| redact(&variable, v));
        self.errors.push(ConfigError {
            variable,
            shown_value,
            expected: expected.to_string(),
        });
    }

    /// A required value, described by `expected` (e.g. "a comma-separated host:port list").
    pub fn required(&mut self, name: &str, expected: &str) -> String {
        let (variable, value) = self.raw(name);
        value.unwrap_or_else(|| {
            self.reject(variable, None, expected);
            String::new()
        })
    }

    /// An optional value.
    pub fn optional(&mut self, name: &str) -> Option<String> {
        self.raw(name).1
    }

    /// A value with a default.
    pub fn string_or(&mut self, name: &str, default: &str) -> String {
        self.raw(name).1.unwrap_or_else(|| default.to_string())
    }

    /// A required `postgres://` (or `postgresql://`) URL.
    pub fn postgres_url(&mut self, name: &str) -> String {
        const EXPECTED: &str = "a postgres:// URL";
        let (variable, value) = self.raw(name);
        match value {
            None => {
                self.reject(variable, None, EXPECTED);
                String::new()
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => url,
            Some(other) => {
                self.reject(variable, Some(&other), EXPECTED);
                String::new()
            }
        }
    }

    /// A TCP port, 1-65535, with a default.
    pub fn port_or(&mut self, name: &str, default: u16) -> u16 {
        let port: u16 = self.parse_or(name, default, "a port number 1-65535");
        if port == 0 {
            let (variable, value) = self.raw(name);
            self.reject(variable, value.as_deref(), "a port number 1-65535");
            return default;
        }
        port
    }

    /// A duration in milliseconds, with a default.
    pub fn millis_or(&mut self, name: &str, default: Duration) -> Duration {
        let millis = self.parse_or(
            name,
            default.as_millis() as u64,
            "a whole number of milliseconds",
        );
        Duration::from_millis(millis)
    }

    /// Any [`FromStr`] value with a default; `expected` describes a good value.
    pub fn parse_or<T: FromStr>(&mut self, name: &str, default: T, expected: &str) -> T {
        let (variable, value) = self.raw(name);
        match value {
            None => default,
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                self.reject(variable, Some(&text), expected);
                default
            }),
        }
    }

    /// Any required [`FromStr`] value; `expected` describes a good value.
    pub fn parse<T: FromStr + Default>(&mut self, name: &str, expected: &str) -> T {
        let (variable, value) = self.raw(name);
        match value {
            None => {
                self.reject(variable, None, expected);
                T::default()
            }
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                self.reject(variable, Some(&text), expected);
                T::default()
            }),
        }
    }

    /// Records a problem found by the service's own validation (e.g. two values that conflict).
    pub fn invalid(&mut self, name: &str, expected: &str) {
        let (variable, value) = self.raw(name);
        self.reject(variable, value.as_deref(), expected);
    }

    /// `Ok` when every variable read so far was good, else every problem at once.
    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

/// A value as it may appear in logs and error messages: `<redacted>` when the variable's name
/// says it is secret, URL passwords replaced by `***`, anything else unchanged.
pub fn redact(variable: &str, value: &str) -> String {
    let upper = variable.to_ascii_uppercase();
    if ["PASSWORD", "SECRET", "TOKEN", "KEY"]
        .iter()
        .any(|word| upper.contains(word))
    {
        return "<redacted>".to_string();
    }
    redact_url(value)
}

/// The settings every HTTP service with a database reads: `<PREFIX>_HTTP_ADDR` (default
/// `127.0.0.1:0`, any free port), `<PREFIX>_DATABASE_URL` (required) and
/// `<PREFIX>_DATABASE_MAX_CONNECTIONS` (default 10, at least 1) and `<PREFIX>_TEST_MODE`
/// (default false: the test-mode `/admin/...` endpoints stay off). `Debug` hides the password.
#[derive(Clone)]
pub struct HttpDatabaseConfig {
    pub http_addr: std::net::SocketAddr,
    /// Contains the password: show it only through [`redact_url`].
    pub database_url: String,
    pub database_max_connections: u32,
    /// Serve the test-mode endpoints (provider states, seeding); never in production.
    pub test_mode: bool,
}

impl HttpDatabaseConfig {
    /// Reads the four variables through `env`, recording every bad one there.
    pub fn read(env: &mut EnvReader) -> Self {
        let config = Self {
            http_addr: env.parse_or(
                "HTTP_ADDR",
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                "a socket address such as 127.0.0.1:8080",
            ),
            database_url: env.postgres_url("DATABASE_URL"),
            database_max_connections: env.parse_or(
                "DATABASE_MAX_CONNECTIONS",
                10,
                "a whole number of connections",
            ),
            test_mode: env.parse_or("TEST_MODE", false, "true or false"),
        };
        if config.database_max_connections == 0 {
            env.invalid("DATABASE_MAX_CONNECTIONS", "at least 1 connection");
        }
        config
    }

    /// Any free port on 127.0.0.1, the default pool, and `database_url`: what tests start with.
    pub fn local(database_url: impl Into<String>) -> Self {
        Self {
            http_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            database_max_connections: 10,
            test_mode: false,
        }
    }
}

impl fmt::Debug for HttpDatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpDatabaseConfig")
            .field("http_addr", &self.http_addr)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("test_mode", &self.test_mode)
            .finish()
    }
}

/// `scheme://user:password@host/...` → `scheme://user:***@host/...`; other text unchanged.
pub fn redact_url(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_string();
    };
    let rest = &value[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return value.to_string();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &value[..scheme_end + 3],
            &userinfo[..colon],
            &value[scheme_end + 3 + at..]
        ),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://order:s3cr3t@db:5432/order?sslmode=disable"),
            "postgres://order:***@db:5432/order?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://order@db/order"),
            "postgres://order@db/order"
        );
        assert_eq!(redact_url("kafka:9092"), "kafka:9092");
    }

    #[test]
    fn secret_names_hide_the_whole_value() {
        for name in ["GATEWAY_JWT_SECRET", "X_API_KEY", "A_TOKEN", "DB_PASSWORD"] {
            assert_eq!(redact(name, "hunter2"), "<redacted>");
        }
        assert_eq!(redact("ORDER_HTTP_PORT", "abc"), "abc");
    }
}
