//! Proxies: a listening address on Toxiproxy that forwards to an upstream service.

use serde::{Deserialize, Deserializer, Serialize};

use super::Toxic;

/// A proxy as Toxiproxy reports it, with the toxics currently on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proxy {
    /// Unique name of the proxy.
    pub name: String,
    /// The address it listens on, as resolved by the server (`"127.0.0.1:0"` comes back
    /// with the port actually chosen).
    pub listen: String,
    /// The `host:port` it forwards to.
    pub upstream: String,
    /// Whether it accepts connections; a disabled proxy refuses new ones and has closed
    /// the existing ones (a partition).
    pub enabled: bool,
    /// The toxics on it, upstream ones first.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub toxics: Vec<Toxic>,
}

/// What [`create_proxy`](super::ToxiproxyClient::create_proxy) and
/// [`populate`](super::ToxiproxyClient::populate) send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProxy {
    /// Unique name of the proxy.
    pub name: String,
    /// `host:port` to listen on, inside the Toxiproxy server's network namespace
    /// (`"0.0.0.0:20000"` in a container, `"127.0.0.1:0"` for any free port).
    pub listen: String,
    /// The `host:port` to forward to, as seen from the Toxiproxy server.
    pub upstream: String,
    /// Whether the proxy starts accepting connections at once.
    pub enabled: bool,
}

impl NewProxy {
    /// An enabled proxy from `listen` to `upstream`.
    pub fn new(
        name: impl Into<String>,
        listen: impl Into<String>,
        upstream: impl Into<String>,
    ) -> Self {
        NewProxy {
            name: name.into(),
            listen: listen.into(),
            upstream: upstream.into(),
            enabled: true,
        }
    }

    /// The same proxy, created disabled.
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

/// A change to an existing proxy: [`update_proxy`](super::ToxiproxyClient::update_proxy).
/// Fields left `None` keep their current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyUpdate {
    /// New listen address (the proxy is restarted on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// New upstream address (existing connections are closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Enable or disable the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Go encodes an empty slice it never allocated as `null`.
pub(crate) fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxiproxy::ToxicKind;

    #[test]
    fn new_proxy_matches_toxiproxy_json() {
        let proxy = NewProxy::new("api", "0.0.0.0:20000", "127.0.0.1:8474");
        assert_eq!(
            serde_json::to_string(&proxy).unwrap(),
            r#"{"name":"api","listen":"0.0.0.0:20000","upstream":"127.0.0.1:8474","enabled":true}"#
        );
        assert_eq!(
            serde_json::to_string(&proxy.disabled()).unwrap(),
            r#"{"name":"api","listen":"0.0.0.0:20000","upstream":"127.0.0.1:8474","enabled":false}"#
        );
    }

    #[test]
    fn proxy_update_sends_only_the_fields_that_change() {
        assert_eq!(
            serde_json::to_string(&ProxyUpdate::default()).unwrap(),
            "{}"
        );
        let partition = ProxyUpdate {
            enabled: Some(false),
            ..ProxyUpdate::default()
        };
        assert_eq!(
            serde_json::to_string(&partition).unwrap(),
            r#"{"enabled":false}"#
        );
        let moved = ProxyUpdate {
            listen: Some("0.0.0.0:20001".into()),
            upstream: Some("db:5432".into()),
            enabled: Some(true),
        };
        assert_eq!(
            serde_json::to_string(&moved).unwrap(),
            r#"{"listen":"0.0.0.0:20001","upstream":"db:5432","enabled":true}"#
        );
    }

    #[test]
    fn proxy_decodes_with_its_toxics() {
        let from_server = r#"{"name":"api","listen":"[::]:20000","upstream":"127.0.0.1:8474","enabled":true,"toxics":[{"attributes":{"latency":300,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}]}"#;
        let proxy: Proxy = serde_json::from_str(from_server).unwrap();
        assert_eq!(proxy.name, "api");
        assert_eq!(proxy.listen, "[::]:20000");
        assert!(proxy.enabled);
        assert_eq!(proxy.toxics.len(), 1);
        assert_eq!(
            proxy.toxics[0].kind,
            ToxicKind::Latency {
                latency_ms: 300,
                jitter_ms: 0
            }
        );
    }

    #[test]
    fn proxy_with_null_toxics_decodes_as_empty() {
        let from_server =
            r#"{"name":"a","listen":"127.0.0.1:1","upstream":"b:2","enabled":false,"toxics":null}"#;
        let proxy: Proxy = serde_json::from_str(from_server).unwrap();
        assert!(proxy.toxics.is_empty());
        assert!(!proxy.enabled);
    }
}
