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
    (
        "NOTIFICATION_TEST_MODE",
        "true enables test-mode failpoints (default false)",
    ),
    (
        "NOTIFICATION_TEST_CRASH_AFTER_EFFECT_FOR_CUSTOMER",
        "test mode only: abort the process right after the notification for this customer's \
         OrderCreated is committed and before its offset is, once (a crash between effect and commit)",
    ),
    (
        "NOTIFICATION_SEEDED_BUGS",
        "test mode only: comma-separated seeded bugs to switch on (faultline_kit::seeded; \
         default none)",
    ),
];

/// The service's settings. `Debug` shows the database URL with its password hidden.
#[derive(Clone)]
pub struct NotificationConfig {
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub kafka_bootstrap: String,
    /// Test-mode failpoint: see [`VARIABLES`].
    pub crash_after_effect_for_customer: Option<String>,
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
            .field(
                "crash_after_effect_for_customer",
                &self.crash_after_effect_for_customer,
            )
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
        let test_mode = env.parse_or("TEST_MODE", false, "true or false");
        let crash_customer = env.optional("TEST_CRASH_AFTER_EFFECT_FOR_CUSTOMER");
        if crash_customer.is_some() && !test_mode {
            env.invalid(
                "TEST_CRASH_AFTER_EFFECT_FOR_CUSTOMER",
                "to be unset unless NOTIFICATION_TEST_MODE=true (it is a test failpoint)",
            );
        }
        faultline_kit::seeded::read(&mut env, test_mode);
        env.finish()?;
        Ok(Self {
            http_addr,
            database_url,
            kafka_bootstrap,
            crash_after_effect_for_customer: crash_customer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUIRED: [(&str, &str); 2] = [
        (
            "NOTIFICATION_DATABASE_URL",
            "postgres://u:p@127.0.0.1:5432/notification",
        ),
        ("NOTIFICATION_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
    ];
    const BUG: &str = faultline_kit::seeded::NOTIFICATION_STALLS_ON_DUPLICATE_EVENT;

    fn read(pairs: &[(&str, &str)]) -> Result<NotificationConfig, String> {
        NotificationConfig::from_pairs(REQUIRED.iter().chain(pairs).copied())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn seeded_bugs_are_refused_outside_test_mode() {
        let error = read(&[("NOTIFICATION_SEEDED_BUGS", BUG)]).unwrap_err();
        assert!(
            error.contains("NOTIFICATION_SEEDED_BUGS") && error.contains("test mode"),
            "{error}"
        );
        let error = read(&[
            ("NOTIFICATION_TEST_MODE", "true"),
            ("NOTIFICATION_SEEDED_BUGS", "forgets-customers"),
        ])
        .unwrap_err();
        assert!(error.contains("forgets-customers"), "{error}");
    }

    #[test]
    fn seeded_bugs_are_read_in_test_mode() {
        assert!(read(&[]).is_ok());
        assert!(read(&[
            ("NOTIFICATION_TEST_MODE", "true"),
            ("NOTIFICATION_SEEDED_BUGS", BUG),
        ])
        .is_ok());
    }
}
