//! The gateway's configuration, read from `GATEWAY_*` environment variables.
//!
//! Every bad variable is reported at once ([`GatewayConfig::from_env`]); the JWT secret is never
//! echoed, neither in errors nor in `Debug` output.
//!
//! ```
//! use faultline_gateway::config::GatewayConfig;
//! let config = GatewayConfig::from_pairs([
//!     ("GATEWAY_ORDER_URL", "http://127.0.0.1:8081"),
//!     ("GATEWAY_JWT_SECRET", "s3cr3t"),
//! ]).unwrap();
//! assert_eq!(config.jwt_audience, "faultline");
//! assert_eq!(config.rate_limit_per_second, 50);
//! assert!(!format!("{config:?}").contains("s3cr3t"));
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use faultline_kit::config::{ConfigErrors, EnvReader};
use faultline_kit::seeded;

/// The variable prefix.
pub const PREFIX: &str = "GATEWAY";

/// Every variable the gateway reads, with its meaning and default (for `--help`).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "GATEWAY_HTTP_ADDR",
        "listen address (default 127.0.0.1:0, any free port)",
    ),
    (
        "GATEWAY_ORDER_URL",
        "base URL of the order service, e.g. http://127.0.0.1:8081 (required)",
    ),
    (
        "GATEWAY_JWT_SECRET",
        "HS256 secret that signs client tokens (required; never logged)",
    ),
    (
        "GATEWAY_JWT_AUDIENCE",
        "the `aud` every token must carry (default faultline)",
    ),
    (
        "GATEWAY_RATE_LIMIT_PER_SECOND",
        "requests per second per client `sub`, burst equal (default 50)",
    ),
    (
        "GATEWAY_ORDER_TIMEOUT_MS",
        "per-attempt timeout of calls to order (default 2000)",
    ),
    (
        "GATEWAY_CB_OPEN_WAIT_MS",
        "how long the breaker to order stays open before it lets trial calls through (default 5000)",
    ),
    (
        "GATEWAY_TEST_MODE",
        "true allows GATEWAY_SEEDED_BUGS (default false)",
    ),
    (
        "GATEWAY_SEEDED_BUGS",
        "deliberate bugs to switch on, comma-separated, test mode only (faultline_kit::seeded)",
    ),
];

/// The gateway's settings.
#[derive(Clone)]
pub struct GatewayConfig {
    pub http_addr: SocketAddr,
    pub order_url: String,
    /// Secret: kept out of `Debug`.
    pub jwt_secret: String,
    pub jwt_audience: String,
    pub rate_limit_per_second: u32,
    pub order_timeout: Duration,
    /// How long the breaker to order stays open before its trial calls.
    pub breaker_open_wait: Duration,
    /// Whether seeded bugs may be switched on (`GATEWAY_SEEDED_BUGS`).
    pub test_mode: bool,
}

impl fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("http_addr", &self.http_addr)
            .field("order_url", &self.order_url)
            .field("jwt_secret", &"<redacted>")
            .field("jwt_audience", &self.jwt_audience)
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .field("order_timeout", &self.order_timeout)
            .field("breaker_open_wait", &self.breaker_open_wait)
            .field("test_mode", &self.test_mode)
            .finish()
    }
}

impl GatewayConfig {
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
        let order_url = env.required("ORDER_URL", "an http:// URL of the order service");
        let http = order_url.starts_with("http://") || order_url.starts_with("https://");
        if !order_url.is_empty() && !http {
            env.invalid(
                "ORDER_URL",
                "an http:// or https:// URL of the order service",
            );
        }
        let jwt_secret = env.required("JWT_SECRET", "the HS256 secret tokens are signed with");
        let jwt_audience = env.string_or("JWT_AUDIENCE", "faultline");
        let rate_limit_per_second: u32 = env.parse_or(
            "RATE_LIMIT_PER_SECOND",
            50,
            "a whole number of requests per second >= 1",
        );
        if rate_limit_per_second == 0 {
            env.invalid(
                "RATE_LIMIT_PER_SECOND",
                "a whole number of requests per second >= 1",
            );
        }
        let order_timeout = env.millis_or("ORDER_TIMEOUT_MS", Duration::from_secs(2));
        if order_timeout.is_zero() {
            env.invalid(
                "ORDER_TIMEOUT_MS",
                "a positive whole number of milliseconds",
            );
        }
        let breaker_open_wait = env.millis_or("CB_OPEN_WAIT_MS", Duration::from_secs(5));
        if breaker_open_wait.is_zero() {
            env.invalid("CB_OPEN_WAIT_MS", "a positive whole number of milliseconds");
        }
        let test_mode = env.parse_or("TEST_MODE", false, "true or false");
        seeded::read(&mut env, test_mode);
        env.finish()?;
        Ok(Self {
            http_addr,
            order_url,
            jwt_secret,
            jwt_audience,
            rate_limit_per_second,
            order_timeout,
            breaker_open_wait,
            test_mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_variable_is_reported_and_the_secret_is_not_echoed() {
        let errors = GatewayConfig::from_pairs([
            ("GATEWAY_ORDER_URL", "order:8080"),
            ("GATEWAY_RATE_LIMIT_PER_SECOND", "0"),
        ])
        .unwrap_err()
        .to_string();
        assert!(errors.contains("GATEWAY_ORDER_URL=order:8080"), "{errors}");
        assert!(errors.contains("GATEWAY_JWT_SECRET: required"), "{errors}");
        assert!(
            errors.contains("GATEWAY_RATE_LIMIT_PER_SECOND=0"),
            "{errors}"
        );

        let errors = GatewayConfig::from_pairs([
            ("GATEWAY_ORDER_URL", "http://order"),
            ("GATEWAY_JWT_SECRET", "hunter2"),
            ("GATEWAY_ORDER_TIMEOUT_MS", "0"),
            ("GATEWAY_CB_OPEN_WAIT_MS", "soon"),
        ])
        .unwrap_err()
        .to_string();
        assert!(!errors.contains("hunter2"), "{errors}");
        assert!(errors.contains("GATEWAY_CB_OPEN_WAIT_MS=soon"), "{errors}");
    }
}
