//! The notification service's configuration, read from `NOTIFICATION_*` environment variables;
//! every bad variable is reported at once.
//!
//! ```
//! use faultline_notification::config::NotificationConfig;
//! let errors = NotificationConfig::from_pairs([("NOTIFICATION_HTTP_ADDR", "nowhere")]).unwrap_err();
//! assert_eq!(errors.0.len(), 3); // the address, and the two required variables
//! ```

use std::net::SocketAddr;

use faultline_kit::config::{ConfigErrors, EnvReader};

/// The variable prefix.
pub const PREFIX: &str = "NOTIFICATION";

/// Every variable the service reads, with its meaning and default (for `--help`).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "NOTIFICATION_HTTP_ADDR",
        "listen address (default 127.0.0.1:0, any free port)",
    ),
    (
        "NOTIFICATION_DATABASE_URL",
        "postgres:// URL of the notification database (required)",
    ),
    (
        "NOTIFICATION_KAFKA_BOOTSTRAP",
        "Kafka bootstrap servers, host:port[,host:port] (required)",
    ),
];

/// The service's settings. `Debug` shows the database URL with its password hidden.
#[derive(Clone)]
pub struct NotificationConfig {
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub kafka_bootstrap: String,
}

impl std::fmt::Debug for NotificationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationConfig")
            .field("http_addr", &self.http_addr)
            .field(
                "database_url",
                &faultline_kit::config::redact_url(&self.database_url),
            )
            .field("kafka_bootstrap", &self.kafka_bootstrap)
            .finish()
    }
}

impl NotificationConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::read(EnvReader::from_env(PREFIX))
    }

    /// Reads the given pairs instead of the environment (tests).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, ConfigErrors>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::read(EnvReader::from_pairs(PREFIX, pairs))
    }

    fn read(mut env: EnvReader) -> Result<Self, ConfigErrors> {
        let http_addr = env.parse_or(
            "HTTP_ADDR",
            SocketAddr::from(([127, 0, 0, 1], 0)),
            "a socket address like 127.0.0.1:8080",
        );
        let database_url = env.postgres_url("DATABASE_URL");
        let kafka_bootstrap = env.required("KAFKA_BOOTSTRAP", "a comma-separated host:port list");
        env.finish()?;
        Ok(Self {
            http_addr,
            database_url,
            kafka_bootstrap,
        })
    }
}
