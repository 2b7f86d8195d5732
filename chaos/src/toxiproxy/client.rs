//! The HTTP client itself: one method per Toxiproxy endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::proxy::null_as_empty;
use super::toxic::validate_toxicity;
use super::{NewProxy, Proxy, ProxyUpdate, Toxic, ToxicUpdate, ToxiproxyError};

/// An async client for one Toxiproxy server's HTTP API (Toxiproxy 2.6 or later; built
/// against 2.12).
///
/// Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct ToxiproxyClient {
    http: reqwest::Client,
    base: Url,
}

/// A request with no body.
const NO_BODY: Option<&()> = None;

impl ToxiproxyClient {
    /// How long one request may take, connection included, unless
    /// [`with_timeout`](Self::with_timeout) says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A client for the server at `base_url` (e.g. `"http://127.0.0.1:8474"`), with
    /// [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT) per request.
    ///
    /// Only checks the URL; nothing is sent until the first call.
    pub fn new(base_url: impl AsRef<str>) -> Result<Self, ToxiproxyError> {
        Self::with_timeout(base_url, Self::DEFAULT_TIMEOUT)
    }

    /// A client for the server at `base_url` whose requests each give up after `timeout`
    /// with a [`Transport`](ToxiproxyError::Transport) error.
    pub fn with_timeout(
        base_url: impl AsRef<str>,
        timeout: Duration,
    ) -> Result<Self, ToxiproxyError> {
        let base = parse_base_url(base_url.as_ref())?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // Toxiproxy answers 403 to any user agent starting with "Mozilla/".
            .user_agent(concat!("faultline-chaos/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ToxiproxyError::Client)?;
        Ok(ToxiproxyClient { http, base })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The server's version (`GET /version`), e.g. `"2.12.0"`.
    pub async fn version(&self) -> Result<String, ToxiproxyError> {
        #[derive(Deserialize)]
        struct Version {
            version: String,
        }
        let answer = self.call(Method::GET, &["version"], NO_BODY).await?;
        // Servers before 2.6 answered plain text rather than `{"version": "..."}`.
        if !answer.body.trim_start().starts_with('{') && !answer.body.trim().is_empty() {
            return Ok(answer.body.trim().to_owned());
        }
        Ok(answer.decode::<Version>()?.version)
    }

    /// Enables every proxy and removes every toxic (`POST /reset`). Proxies are not deleted.
    pub async fn reset(&self) -> Result<(), ToxiproxyError> {
        self.call(Method::POST, &["reset"], NO_BODY).await?;
        Ok(())
    }

    /// Every proxy, by name (`GET /proxies`).
    pub async fn proxies(&self) -> Result<BTreeMap<String, Proxy>, ToxiproxyError> {
        self.call(Method::GET, &["proxies"], NO_BODY)
            .await?
            .decode()
    }

    /// One proxy (`GET /proxies/{name}`); a 404 [`Status`](ToxiproxyError::Status) error if
    /// there is none of that name.
    pub async fn proxy(&self, name: &str) -> Result<Proxy, ToxiproxyError> {
        self.call(Method::GET, &["proxies", name], NO_BODY)
            .await?
            .decode()
    }

    /// Creates a proxy (`POST /proxies`); a 409 [`Status`](ToxiproxyError::Status) error if
    /// one of that name exists, a 500 if its listen address cannot be bound.
    pub async fn create_proxy(&self, proxy: &NewProxy) -> Result<Proxy, ToxiproxyError> {
        self.call(Method::POST, &["proxies"], Some(proxy))
            .await?
            .decode()
    }

    /// Creates or replaces several proxies at once (`POST /populate`) and returns them.
    ///
    /// Proxies whose name exists are replaced only if their listen or upstream address
    /// differs. Toxiproxy stops at the first one that fails and reports an error status; the
    /// ones before it stay created.
    pub async fn populate(&self, proxies: &[NewProxy]) -> Result<Vec<Proxy>, ToxiproxyError> {
        #[derive(Deserialize)]
        struct Populated {
            #[serde(deserialize_with = "null_as_empty")]
            proxies: Vec<Proxy>,
        }
        let answer = self
            .call(Method::POST, &["populate"], Some(proxies))
            .await?;
        Ok(answer.decode::<Populated>()?.proxies)
    }

    /// Changes a proxy's listen address, upstream or enabled state
    /// (`PATCH /proxies/{name}`); fields left `None` keep their value.
    pub async fn update_proxy(
        &self,
        name: &str,
        update: &ProxyUpdate,
    ) -> Result<Proxy, ToxiproxyError> {
        // PATCH rather than POST: Toxiproxy 2.6+ logs POST updates as deprecated.
        self.call(Method::PATCH, &["proxies", name], Some(update))
            .await?
            .decode()
    }

    /// Enables a proxy: it accepts connections again.
    pub async fn enable(&self, name: &str) -> Result<Proxy, ToxiproxyError> {
        let update = ProxyUpdate {
            enabled: Some(true),
            ..ProxyUpdate::default()
        };
        self.update_proxy(name, &update).await
    }

    /// Disables a proxy: its open connections are closed and new ones refused, a network
    /// partition between its clients and its upstream.
    pub async fn disable(&self, name: &str) -> Result<Proxy, ToxiproxyError> {
        let update = ProxyUpdate {
            enabled: Some(false),
            ..ProxyUpdate::default()
        };
        self.update_proxy(name, &update).await
    }

    /// Deletes a proxy and its toxics (`DELETE /proxies/{name}`).
    pub async fn delete_proxy(&self, name: &str) -> Result<(), ToxiproxyError> {
        self.call(Method::DELETE, &["proxies", name], NO_BODY)
            .await?;
        Ok(())
    }

    /// The toxics on a proxy (`GET /proxies/{proxy}/toxics`), upstream ones first.
    pub async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, ToxiproxyError> {
        let answer = self
            .call(Method::GET, &["proxies", proxy, "toxics"], NO_BODY)
            .await?;
        // Go encodes an empty slice it never allocated as `null`.
        Ok(answer.decode::<Option<Vec<Toxic>>>()?.unwrap_or_default())
    }

    /// One toxic (`GET /proxies/{proxy}/toxics/{name}`); a 404 if the proxy or the toxic
    /// does not exist.
    pub async fn toxic(&self, proxy: &str, name: &str) -> Result<Toxic, ToxiproxyError> {
        self.call(Method::GET, &["proxies", proxy, "toxics", name], NO_BODY)
            .await?
            .decode()
    }

    /// Adds a toxic to a proxy (`POST /proxies/{proxy}/toxics`) and returns it as the server
    /// stored it; a 409 if the proxy has a toxic of that name.
    ///
    /// An out-of-range toxicity is an [`InvalidToxicity`](ToxiproxyError::InvalidToxicity)
    /// error and nothing is sent.
    pub async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, ToxiproxyError> {
        validate_toxicity(toxic.toxicity)?;
        self.call(Method::POST, &["proxies", proxy, "toxics"], Some(toxic))
            .await?
            .decode()
    }

    /// Replaces a toxic's attributes and optionally its toxicity
    /// (`PATCH /proxies/{proxy}/toxics/{name}`), returning it as the server now has it.
    ///
    /// An out-of-range toxicity is rejected before sending. If `update.kind` is not the
    /// toxic's kind, the server changes nothing but the toxicity, and this returns
    /// [`KindMismatch`](ToxiproxyError::KindMismatch).
    pub async fn update_toxic(
        &self,
        proxy: &str,
        name: &str,
        update: &ToxicUpdate,
    ) -> Result<Toxic, ToxiproxyError> {
        if let Some(toxicity) = update.toxicity {
            validate_toxicity(toxicity)?;
        }
        let updated: Toxic = self
            .call(
                Method::PATCH,
                &["proxies", proxy, "toxics", name],
                Some(update),
            )
            .await?
            .decode()?;
        if updated.kind.type_name() != update.kind.type_name() {
            return Err(ToxiproxyError::KindMismatch {
                proxy: proxy.to_owned(),
                toxic: name.to_owned(),
                sent: update.kind.type_name().to_owned(),
                actual: updated.kind.type_name().to_owned(),
            });
        }
        Ok(updated)
    }

    /// Removes a toxic from a proxy (`DELETE /proxies/{proxy}/toxics/{name}`).
    pub async fn remove_toxic(&self, proxy: &str, name: &str) -> Result<(), ToxiproxyError> {
        self.call(Method::DELETE, &["proxies", proxy, "toxics", name], NO_BODY)
            .await?;
        Ok(())
    }

    /// `base` + path segments, each percent-encoded, so a name cannot escape its segment.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Cannot fail: parse_base_url only accepts http URLs, which can be a base.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends one request and returns the body of a success answer; every other outcome is
    /// an error.
    async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<Answer, ToxiproxyError> {
        let url = self.url(segments);
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|source| ToxiproxyError::Encode {
                method: method.clone(),
                url: url.to_string(),
                source,
            })?;
            request = request.header(CONTENT_TYPE, "application/json").body(bytes);
        }
        let transport = |source| ToxiproxyError::Transport {
            method: method.clone(),
            url: url.to_string(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(ToxiproxyError::Status {
                method,
                url: url.to_string(),
                status,
                body: body.trim().to_owned(),
            });
        }
        Ok(Answer { method, url, body })
    }
}

/// The body of a success answer, with what is needed to report a decoding failure.
struct Answer {
    method: Method,
    url: Url,
    body: String,
}

impl Answer {
    fn decode<T: DeserializeOwned>(self) -> Result<T, ToxiproxyError> {
        serde_json::from_str(&self.body).map_err(|source| ToxiproxyError::Decode {
            method: self.method,
            url: self.url.to_string(),
            body: self.body.clone(),
            source,
        })
    }
}

fn parse_base_url(raw: &str) -> Result<Url, ToxiproxyError> {
    let invalid = |reason: String| ToxiproxyError::InvalidBaseUrl {
        url: raw.to_owned(),
        reason,
    };
    let url = Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(invalid(format!(
            "scheme {:?} is not http (Toxiproxy's API is plain HTTP)",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(invalid("it has no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it has a query or fragment".to_owned()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxiproxy::{Stream, ToxicKind};
    use reqwest::StatusCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    /// The request a [`serve_once`] server received.
    #[derive(Debug)]
    struct Received {
        /// e.g. `"PATCH /proxies/api HTTP/1.1"`.
        request_line: String,
        body: String,
    }

    /// Answers exactly one HTTP request on a free 127.0.0.1 port with `status` and `body`,
    /// and hands back what it received. Stands in for Toxiproxy where only the client's
    /// handling of an answer is under test.
    async fn serve_once(
        status: &'static str,
        body: &'static str,
    ) -> (String, JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = Vec::new();
            let header_end = loop {
                let mut chunk = [0u8; 1024];
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client closed before sending a full request");
                buffer.extend_from_slice(&chunk[..n]);
                if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
            let content_length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .map(|(_, value)| value.trim().parse::<usize>().unwrap())
                .unwrap_or(0);
            while buffer.len() < header_end + content_length {
                let mut chunk = [0u8; 1024];
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client closed before sending its body");
                buffer.extend_from_slice(&chunk[..n]);
            }
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
            Received {
                request_line: head.lines().next().unwrap_or_default().to_owned(),
                body: String::from_utf8_lossy(&buffer[header_end..]).to_string(),
            }
        });
        (base, server)
    }

    /// A base URL on which nothing listens: a port the OS just handed out and took back.
    fn closed_port_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    const LATENCY_TOXIC: &str = r#"{"attributes":{"latency":300,"jitter":0},"name":"slow","type":"latency","stream":"downstream","toxicity":1}"#;

    #[tokio::test]
    async fn closed_port_is_a_transport_error() {
        let client = ToxiproxyClient::new(closed_port_url()).unwrap();
        let err = client.proxies().await.unwrap_err();
        assert!(
            matches!(&err, ToxiproxyError::Transport { method, url, .. }
                if *method == Method::GET && url.ends_with("/proxies")),
            "{err:?}"
        );
        assert!(err.is_transport() && !err.is_timeout());
        assert_eq!(err.status(), None);
    }

    #[tokio::test]
    async fn server_that_never_answers_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // Accept and hold the connection without ever answering.
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let client = ToxiproxyClient::with_timeout(base, Duration::from_millis(200)).unwrap();
        let err = client.version().await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(err.is_transport());
        server.abort();
    }

    #[tokio::test]
    async fn not_found_status_carries_the_server_body() {
        let (base, server) = serve_once(
            "404 Not Found",
            "{\"error\":\"proxy not found\",\"status\":404}\n",
        )
        .await;
        let err = ToxiproxyClient::new(&base)
            .unwrap()
            .proxy("nope")
            .await
            .unwrap_err();
        match &err {
            ToxiproxyError::Status {
                method,
                url,
                status,
                body,
            } => {
                assert_eq!(*method, Method::GET);
                assert_eq!(*url, format!("{base}/proxies/nope"));
                assert_eq!(*status, StatusCode::NOT_FOUND);
                assert_eq!(body, r#"{"error":"proxy not found","status":404}"#);
            }
            other => panic!("expected Status, got {other:?}"),
        }
        assert!(err.is_not_found());
        assert_eq!(err.server_message().as_deref(), Some("proxy not found"));
        assert_eq!(
            server.await.unwrap().request_line,
            "GET /proxies/nope HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn create_sends_the_proxy_and_a_conflict_is_an_error() {
        let (base, server) = serve_once(
            "409 Conflict",
            r#"{"error":"proxy already exists","status":409}"#,
        )
        .await;
        let client = ToxiproxyClient::new(&base).unwrap();
        let err = client
            .create_proxy(&NewProxy::new("api", "0.0.0.0:20000", "127.0.0.1:8474"))
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
        let received = server.await.unwrap();
        assert_eq!(received.request_line, "POST /proxies HTTP/1.1");
        assert_eq!(
            received.body,
            r#"{"name":"api","listen":"0.0.0.0:20000","upstream":"127.0.0.1:8474","enabled":true}"#
        );
    }

    #[tokio::test]
    async fn success_with_an_unreadable_body_is_a_decode_error() {
        let (base, server) = serve_once("200 OK", "<html>not toxiproxy</html>").await;
        let err = ToxiproxyClient::new(&base)
            .unwrap()
            .proxies()
            .await
            .unwrap_err();
        match &err {
            ToxiproxyError::Decode { body, .. } => assert_eq!(body, "<html>not toxiproxy</html>"),
            other => panic!("expected Decode, got {other:?}"),
        }
        server.await.unwrap();
    }

    #[tokio::test]
    async fn disable_patches_enabled_false() {
        let (base, server) = serve_once(
            "200 OK",
            r#"{"name":"api","listen":"127.0.0.1:20000","upstream":"127.0.0.1:8474","enabled":false,"toxics":[]}"#,
        )
        .await;
        let proxy = ToxiproxyClient::new(&base)
            .unwrap()
            .disable("api")
            .await
            .unwrap();
        assert!(!proxy.enabled);
        let received = server.await.unwrap();
        assert_eq!(received.request_line, "PATCH /proxies/api HTTP/1.1");
        assert_eq!(received.body, r#"{"enabled":false}"#);
    }

    #[tokio::test]
    async fn add_toxic_posts_the_toxic_and_decodes_the_answer() {
        let (base, server) = serve_once("200 OK", LATENCY_TOXIC).await;
        let toxic = Toxic::new(
            "slow",
            ToxicKind::Latency {
                latency_ms: 300,
                jitter_ms: 0,
            },
        );
        let added = ToxiproxyClient::new(&base)
            .unwrap()
            .add_toxic("api", &toxic)
            .await
            .unwrap();
        assert_eq!(added, toxic);
        let received = server.await.unwrap();
        assert_eq!(received.request_line, "POST /proxies/api/toxics HTTP/1.1");
        assert_eq!(
            received.body,
            r#"{"name":"slow","type":"latency","stream":"downstream","toxicity":1.0,"attributes":{"latency":300,"jitter":0}}"#
        );
    }

    #[tokio::test]
    async fn invalid_toxicity_is_rejected_before_any_request() {
        // Nothing listens there: had a request been sent, this would be a Transport error.
        let client = ToxiproxyClient::new(closed_port_url()).unwrap();
        let toxic = Toxic::new("rst", ToxicKind::ResetPeer { timeout_ms: 0 }).with_toxicity(1.5);
        let err = client.add_toxic("api", &toxic).await.unwrap_err();
        assert!(
            matches!(err, ToxiproxyError::InvalidToxicity(t) if t == 1.5),
            "{err:?}"
        );

        let update = ToxicUpdate::new(ToxicKind::ResetPeer { timeout_ms: 0 }).with_toxicity(-0.1);
        let err = client
            .update_toxic("api", "rst", &update)
            .await
            .unwrap_err();
        assert!(matches!(err, ToxiproxyError::InvalidToxicity(_)), "{err:?}");
    }

    #[tokio::test]
    async fn update_with_another_kind_is_a_kind_mismatch() {
        // The server keeps the toxic a latency toxic whatever attributes it is sent.
        let (base, server) = serve_once("200 OK", LATENCY_TOXIC).await;
        let update = ToxicUpdate::new(ToxicKind::Bandwidth {
            kilobytes_per_second: 1,
        });
        let err = ToxiproxyClient::new(&base)
            .unwrap()
            .update_toxic("api", "slow", &update)
            .await
            .unwrap_err();
        match &err {
            ToxiproxyError::KindMismatch { sent, actual, .. } => {
                assert_eq!((sent.as_str(), actual.as_str()), ("bandwidth", "latency"));
            }
            other => panic!("expected KindMismatch, got {other:?}"),
        }
        let received = server.await.unwrap();
        assert_eq!(
            received.request_line,
            "PATCH /proxies/api/toxics/slow HTTP/1.1"
        );
        assert_eq!(received.body, r#"{"attributes":{"rate":1}}"#);
    }

    #[tokio::test]
    async fn names_are_percent_encoded_into_one_path_segment() {
        let (base, server) = serve_once("204 No Content", "").await;
        ToxiproxyClient::new(&base)
            .unwrap()
            .remove_toxic("a/b", "x y")
            .await
            .unwrap();
        assert_eq!(
            server.await.unwrap().request_line,
            "DELETE /proxies/a%2Fb/toxics/x%20y HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn version_reads_the_json_answer() {
        let (base, server) = serve_once("200 OK", "{\"version\": \"2.12.0\"}\n").await;
        let version = ToxiproxyClient::new(&base)
            .unwrap()
            .version()
            .await
            .unwrap();
        assert_eq!(version, "2.12.0");
        assert_eq!(server.await.unwrap().request_line, "GET /version HTTP/1.1");
    }

    #[tokio::test]
    async fn populate_with_null_proxies_is_empty() {
        let (base, server) = serve_once("201 Created", r#"{"proxies":null}"#).await;
        let proxies = ToxiproxyClient::new(&base)
            .unwrap()
            .populate(&[])
            .await
            .unwrap();
        assert!(proxies.is_empty());
        let received = server.await.unwrap();
        assert_eq!(received.request_line, "POST /populate HTTP/1.1");
        assert_eq!(received.body, "[]");
    }

    #[tokio::test]
    async fn toxics_lists_an_upstream_and_a_downstream_toxic() {
        let (base, server) = serve_once(
            "200 OK",
            r#"[{"attributes":{"rate":10},"name":"up","type":"bandwidth","stream":"upstream","toxicity":0.5},{"attributes":{"bytes":1},"name":"down","type":"limit_data","stream":"downstream","toxicity":1}]"#,
        )
        .await;
        let toxics = ToxiproxyClient::new(&base)
            .unwrap()
            .toxics("api")
            .await
            .unwrap();
        assert_eq!(toxics.len(), 2);
        assert_eq!(toxics[0].stream, Stream::Upstream);
        assert_eq!(toxics[0].toxicity, 0.5);
        assert_eq!(toxics[1].kind, ToxicKind::LimitData { bytes: 1 });
        assert_eq!(
            server.await.unwrap().request_line,
            "GET /proxies/api/toxics HTTP/1.1"
        );
    }

    #[test]
    fn base_url_must_be_an_http_url_with_a_host() {
        for bad in [
            "127.0.0.1:8474",
            "localhost:8474",
            "ftp://x",
            "https://x",
            "http://x/?q=1",
            "",
        ] {
            let err = ToxiproxyClient::new(bad).unwrap_err();
            assert!(
                matches!(&err, ToxiproxyError::InvalidBaseUrl { url, .. } if url == bad),
                "{bad}: {err:?}"
            );
        }
        assert!(ToxiproxyClient::new("http://127.0.0.1:8474").is_ok());
        assert!(ToxiproxyClient::new("http://toxiproxy:8474/").is_ok());
    }

    #[test]
    fn paths_extend_a_base_url_with_a_prefix() {
        let client = ToxiproxyClient::new("http://h:1/chaos/").unwrap();
        assert_eq!(
            client.url(&["proxies", "api"]).as_str(),
            "http://h:1/chaos/proxies/api"
        );
        let client = ToxiproxyClient::new("http://h:1").unwrap();
        assert_eq!(client.url(&["reset"]).as_str(), "http://h:1/reset");
    }
}
