//! The consumer side: state what a consumer needs as interactions, run the consumer's real
//! client code against a mock provider made from them, and write the pact file.
//!
//! - [`PactBuilder`] collects HTTP interactions ([`PactBuilder::interaction`]) and message
//!   interactions ([`PactBuilder::message`]); example values may carry matching rules and
//!   provider-state generators ([`matchers`]).
//! - [`PactBuilder::start_mock_server`] serves the HTTP interactions from a `wiremock` server:
//!   a request is answered by the first interaction whose request it matches under the pact's
//!   rules; anything else is recorded as unexpected and fails [`MockProvider::verify`] with the
//!   closest interaction's mismatches.
//! - [`PactBuilder::consume_messages`] hands each message's example to the consumer's real
//!   handler.
//! - [`PactBuilder::finish`] fails unless every interaction was exercised, and returns the
//!   [`Pact`]; [`write_pact`] writes it as `<consumer>-<provider>.json` (deterministic text).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use faultline_contracts::consumer::{matchers::integer, PactBuilder};
//! use serde_json::json;
//!
//! let mut pact = PactBuilder::new("shop", "stock");
//! pact.interaction("a stock level", |i| {
//!     i.given("a SKU has units available")
//!         .get("/stock/sku-1")
//!         .will_respond_with(200)
//!         .response_json(json!({"sku": "sku-1", "available": integer(3)}))
//! });
//! let mock = pact.start_mock_server().await;
//! let body: serde_json::Value = reqwest::get(format!("{}/stock/sku-1", mock.uri()))
//!     .await.unwrap().json().await.unwrap();
//! assert_eq!(body["available"], 3);
//! mock.verify().await.unwrap();
//! let pact = pact.finish().unwrap();
//! assert_eq!(pact.interactions.len(), 1);
//! # }
//! ```

pub mod matchers;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::matching::{match_request, ActualRequest, Mismatch};
use crate::model::{
    Body, Category, Generators, HttpInteraction, HttpRequest, HttpResponse, Interaction,
    InteractionInfo, MatchingRules, Message, Pacticipant, ProviderState,
};
use crate::Pact;

/// Why a consumer test's contract does not hold.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// An example value is not a valid matcher.
    #[error("interaction {interaction:?} at {path}: {problem}")]
    Builder {
        interaction: String,
        path: String,
        problem: String,
    },
    /// The consumer sent requests no interaction expects.
    #[error("the mock provider received {} unexpected request(s):\n{}", .0.len(), .0.join("\n"))]
    UnexpectedRequests(Vec<String>),
    /// Interactions the consumer never exercised.
    #[error("interaction(s) never exercised by the consumer: {}", .0.join("; "))]
    NotExercised(Vec<String>),
    /// The consumer's handler refused a message example.
    #[error("message {description:?}: the consumer's handler failed: {message}")]
    HandlerFailed {
        description: String,
        message: String,
    },
    /// Writing the pact file failed.
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where pact files live: `$FAULTLINE_PACT_DIR`, or the workspace's `contracts/pacts/`.
pub fn pacts_dir() -> PathBuf {
    std::env::var_os("FAULTLINE_PACT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("pacts"))
}

/// The file name of a pact: `<consumer>-<provider>.json`.
pub fn pact_file_name(pact: &Pact) -> String {
    format!("{}-{}.json", pact.consumer.name, pact.provider.name)
}

/// Writes `pact` into `dir` as `<consumer>-<provider>.json`, atomically (temporary file, then
/// rename), so a reader never sees half a file. Returns the path.
pub fn write_pact(pact: &Pact, dir: &Path) -> Result<PathBuf, ConsumerError> {
    let path = dir.join(pact_file_name(pact));
    let io = |source| ConsumerError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let temporary = dir.join(format!(
        ".{}.tmp-{}",
        pact_file_name(pact),
        std::process::id()
    ));
    std::fs::write(&temporary, pact.to_json_string()).map_err(io)?;
    std::fs::rename(&temporary, &path).map_err(io)?;
    Ok(path)
}

/// Turns example values with matchers into examples plus rules and generators.
#[derive(Default)]
struct Extracted {
    rules: MatchingRules,
    generators: Generators,
}

impl Extracted {
    /// Records a marker's rules and generator under `key`; its example.
    fn take(&mut self, category: Category, key: &str, marked: matchers::Marked) -> Value {
        if let Some(rules) = marked.rules {
            self.rules.insert(category, key, rules);
        }
        if let Some(generator) = marked.generator {
            self.generators
                .categories
                .entry(category)
                .or_default()
                .insert(key.to_string(), generator);
        }
        marked.example
    }

    /// A body: rules keyed by JSON path.
    fn body(&mut self, category: Category, value: &Value, at: &str) -> Result<Value, String> {
        if let Some(marked) = matchers::unmark(value)? {
            // An array example under a matcher: rules inside apply to every element.
            return match self.take(category, at, marked) {
                Value::Array(items) => items
                    .iter()
                    .map(|item| self.body(category, item, &format!("{at}[*]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                other => self.body(category, &other, at),
            };
        }
        Ok(match value {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    out.insert(k.clone(), self.body(category, v, &field_path(at, k))?);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.body(category, v, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            plain => plain.clone(),
        })
    }

    /// A single string (path, header value, query value): rules keyed by `key`.
    fn string(&mut self, category: Category, value: &Value, key: &str) -> Result<String, String> {
        let example = match matchers::unmark(value)? {
            Some(marked) => self.take(category, key, marked),
            None => value.clone(),
        };
        match example {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!("expected a string example, got {other}")),
        }
    }
}

fn provider_state(name: &str, params: Value) -> ProviderState {
    ProviderState {
        name: name.into(),
        params: match params {
            Value::Object(m) => m.into_iter().collect(),
            _ => BTreeMap::new(),
        },
    }
}

fn field_path(at: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if simple {
        format!("{at}.{key}")
    } else {
        format!("{at}['{}']", key.replace('\'', "\\'"))
    }
}

/// One HTTP interaction being described; see [`PactBuilder::interaction`].
#[derive(Debug, Clone)]
pub struct HttpInteractionBuilder {
    description: String,
    states: Vec<ProviderState>,
    method: String,
    path: Value,
    query: Vec<(String, Value)>,
    headers: Vec<(String, Value)>,
    body: Option<Value>,
    status: u16,
    response_headers: Vec<(String, Value)>,
    response_body: Option<Value>,
}

impl HttpInteractionBuilder {
    fn new(description: &str) -> Self {
        Self {
            description: description.into(),
            states: Vec::new(),
            method: "GET".into(),
            path: Value::String("/".into()),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            status: 200,
            response_headers: Vec::new(),
            response_body: None,
        }
    }

    /// A provider state without parameters.
    pub fn given(self, state: &str) -> Self {
        self.given_with(state, Value::Object(Map::new()))
    }

    /// A provider state with parameters (a JSON object).
    pub fn given_with(mut self, state: &str, params: Value) -> Self {
        self.states.push(provider_state(state, params));
        self
    }

    /// The request's method and path (a string, or a matcher such as
    /// [`matchers::from_state`]).
    pub fn request(mut self, method: &str, path: impl Into<Value>) -> Self {
        self.method = method.to_ascii_uppercase();
        self.path = path.into();
        self
    }

    /// `GET path`.
    pub fn get(self, path: impl Into<Value>) -> Self {
        self.request("GET", path)
    }

    /// `POST path`.
    pub fn post(self, path: impl Into<Value>) -> Self {
        self.request("POST", path)
    }

    /// A query parameter.
    pub fn query(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// A request header (value: a string or a matcher).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A JSON request body (sets `Content-Type: application/json`).
    pub fn json_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The response status.
    pub fn will_respond_with(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// A response header.
    pub fn response_header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.response_headers.push((name.into(), value.into()));
        self
    }

    /// A JSON response body.
    pub fn response_json(mut self, body: Value) -> Self {
        self.response_body = Some(body);
        self
    }

    fn build(self) -> Result<HttpInteraction, (String, String)> {
        let mut request = Extracted::default();
        let path = request
            .string(Category::Path, &self.path, "$")
            .map_err(|e| ("$.request.path".to_string(), e))?;
        let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in &self.query {
            let v = request
                .string(Category::Query, value, name)
                .map_err(|e| (format!("$.request.query.{name}"), e))?;
            query.entry(name.clone()).or_default().push(v);
        }
        let mut headers = headers_of(&mut request, &self.headers, "request")?;
        let body = match &self.body {
            None => None,
            Some(b) => {
                headers
                    .entry("Content-Type".into())
                    .or_insert_with(|| vec!["application/json".into()]);
                Some(Body::json(
                    request
                        .body(Category::Body, b, "$")
                        .map_err(|e| ("$.request.body".to_string(), e))?,
                ))
            }
        };
        let mut response = Extracted::default();
        let mut response_headers = headers_of(&mut response, &self.response_headers, "response")?;
        let response_body = match &self.response_body {
            None => None,
            Some(b) => {
                response_headers
                    .entry("Content-Type".into())
                    .or_insert_with(|| vec!["application/json".into()]);
                Some(Body::json(
                    response
                        .body(Category::Body, b, "$")
                        .map_err(|e| ("$.response.body".to_string(), e))?,
                ))
            }
        };
        Ok(HttpInteraction {
            info: InteractionInfo {
                description: self.description,
                provider_states: self.states,
                ..InteractionInfo::default()
            },
            request: HttpRequest {
                method: self.method,
                path,
                query,
                headers,
                body,
                matching_rules: request.rules,
                generators: request.generators,
            },
            response: HttpResponse {
                status: self.status,
                headers: response_headers,
                body: response_body,
                matching_rules: response.rules,
                generators: response.generators,
            },
        })
    }
}

fn headers_of(
    extracted: &mut Extracted,
    headers: &[(String, Value)],
    part: &str,
) -> Result<BTreeMap<String, Vec<String>>, (String, String)> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        let v = extracted
            .string(Category::Header, value, name)
            .map_err(|e| (format!("$.{part}.headers.{name}"), e))?;
        out.entry(name.clone()).or_default().push(v);
    }
    Ok(out)
}

/// One message interaction being described; see [`PactBuilder::message`].
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    description: String,
    states: Vec<ProviderState>,
    contents: Value,
    metadata: Vec<(String, Value)>,
}

impl MessageBuilder {
    /// A provider state without parameters.
    pub fn given(self, state: &str) -> Self {
        self.given_with(state, Value::Object(Map::new()))
    }

    /// A provider state with parameters (a JSON object).
    pub fn given_with(mut self, state: &str, params: Value) -> Self {
        self.states.push(provider_state(state, params));
        self
    }

    /// The JSON payload (with matchers).
    pub fn json_contents(mut self, contents: Value) -> Self {
        self.contents = contents;
        self
    }

    /// A metadata entry (e.g. the Kafka topic, or a header the consumer needs).
    pub fn metadata(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    fn build(self) -> Result<Message, (String, String)> {
        let mut extracted = Extracted::default();
        let contents = extracted
            .body(Category::Body, &self.contents, "$")
            .map_err(|e| ("$.contents".to_string(), e))?;
        let mut metadata = BTreeMap::new();
        for (key, value) in &self.metadata {
            let example =
                match matchers::unmark(value).map_err(|e| (format!("$.metadata.{key}"), e))? {
                    Some(marked) => extracted.take(Category::Metadata, key, marked),
                    None => value.clone(),
                };
            metadata.insert(key.clone(), example);
        }
        Ok(Message {
            info: InteractionInfo {
                description: self.description,
                provider_states: self.states,
                ..InteractionInfo::default()
            },
            contents: Body::json(contents),
            metadata,
            matching_rules: extracted.rules,
            generators: extracted.generators,
        })
    }
}

/// A message example handed to the consumer's handler.
#[derive(Debug, Clone)]
pub struct ConsumedMessage {
    /// The interaction's description.
    pub description: String,
    /// The payload as JSON.
    pub contents: Value,
    /// The payload as bytes (what a Kafka record would carry).
    pub bytes: Vec<u8>,
    /// Metadata (topic, headers).
    pub metadata: BTreeMap<String, Value>,
}

/// Builds a pact from a consumer's tests; see the module docs.
#[derive(Debug, Default)]
pub struct PactBuilder {
    consumer: String,
    provider: String,
    interactions: Vec<Interaction>,
    errors: Vec<ConsumerError>,
    exercised: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl PactBuilder {
    /// A pact between `consumer` and `provider`.
    pub fn new(consumer: &str, provider: &str) -> Self {
        Self {
            consumer: consumer.into(),
            provider: provider.into(),
            ..Self::default()
        }
    }

    fn record_error(&mut self, description: &str, (path, problem): (String, String)) {
        self.errors.push(ConsumerError::Builder {
            interaction: description.into(),
            path,
            problem,
        });
    }

    /// Adds an HTTP interaction described by `build`.
    pub fn interaction(
        &mut self,
        description: &str,
        build: impl FnOnce(HttpInteractionBuilder) -> HttpInteractionBuilder,
    ) -> &mut Self {
        match build(HttpInteractionBuilder::new(description)).build() {
            Ok(interaction) => self.interactions.push(Interaction::Http(interaction)),
            Err(e) => self.record_error(description, e),
        }
        self
    }

    /// Adds a message interaction described by `build`.
    pub fn message(
        &mut self,
        description: &str,
        build: impl FnOnce(MessageBuilder) -> MessageBuilder,
    ) -> &mut Self {
        let start = MessageBuilder {
            description: description.into(),
            states: Vec::new(),
            contents: Value::Null,
            metadata: Vec::new(),
        };
        match build(start).build() {
            Ok(message) => self.interactions.push(Interaction::Message(message)),
            Err(e) => self.record_error(description, e),
        }
        self
    }

    /// The pact as built so far.
    pub fn pact(&self) -> Pact {
        Pact {
            consumer: Pacticipant {
                name: self.consumer.clone(),
            },
            provider: Pacticipant {
                name: self.provider.clone(),
            },
            interactions: self.interactions.clone(),
            metadata: BTreeMap::new(),
        }
    }

    /// A mock provider serving every HTTP interaction.
    pub async fn start_mock_server(&self) -> MockProvider {
        self.start_mock_server_for(&[]).await
    }

    /// A mock provider serving only the named HTTP interactions (all when `only` is empty):
    /// for interactions whose requests look alike but whose provider states differ.
    pub async fn start_mock_server_for(&self, only: &[&str]) -> MockProvider {
        let server = MockServer::start().await;
        let mut served = Vec::new();
        for interaction in &self.interactions {
            let Interaction::Http(http) = interaction else {
                continue;
            };
            if !only.is_empty() && !only.contains(&http.info.description.as_str()) {
                continue;
            }
            Mock::given(RequestMatches(http.request.clone()))
                .respond_with(Answer {
                    interaction: http.clone(),
                    exercised: self.exercised.clone(),
                })
                .mount(&server)
                .await;
            served.push(http.clone());
        }
        MockProvider { server, served }
    }

    /// Hands every message interaction's example to `handler` (the consumer's real message
    /// handling), marking it exercised when the handler succeeds.
    pub async fn consume_messages<F, Fut>(&self, mut handler: F) -> Result<(), ConsumerError>
    where
        F: FnMut(ConsumedMessage) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        for interaction in &self.interactions {
            let Interaction::Message(message) = interaction else {
                continue;
            };
            let consumed = ConsumedMessage {
                description: message.info.description.clone(),
                bytes: serde_json::to_vec(&message.contents.content)
                    .expect("JSON always serialises"),
                contents: message.contents.content.clone(),
                metadata: message.metadata.clone(),
            };
            handler(consumed)
                .await
                .map_err(|message_text| ConsumerError::HandlerFailed {
                    description: message.info.description.clone(),
                    message: message_text,
                })?;
            *self
                .exercised
                .lock()
                .expect("exercise counts")
                .entry(message.info.description.clone())
                .or_default() += 1;
        }
        Ok(())
    }

    /// The pact, when it was built without errors and every interaction was exercised.
    pub fn finish(&mut self) -> Result<Pact, ConsumerError> {
        if !self.errors.is_empty() {
            return Err(self.errors.remove(0));
        }
        let exercised = self.exercised.lock().expect("exercise counts");
        let missing: Vec<String> = self
            .interactions
            .iter()
            .map(|i| i.description().to_string())
            .filter(|d| exercised.get(d).copied().unwrap_or(0) == 0)
            .collect();
        if !missing.is_empty() {
            return Err(ConsumerError::NotExercised(missing));
        }
        Ok(self.pact())
    }
}

/// A running mock provider; see [`PactBuilder::start_mock_server`].
pub struct MockProvider {
    server: MockServer,
    served: Vec<HttpInteraction>,
}

impl MockProvider {
    /// The base URL to point the consumer at.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Fails when the consumer sent a request no interaction expects, naming it and the
    /// closest interaction's mismatches.
    pub async fn verify(&self) -> Result<(), ConsumerError> {
        let received = self.server.received_requests().await.unwrap_or_default();
        let mut unexpected = Vec::new();
        for request in &received {
            let actual = actual_request(request);
            let closest = self
                .served
                .iter()
                .map(|i| (i, match_request(&i.request, &actual)))
                .min_by_key(|(_, m)| m.len());
            match closest {
                Some((_, m)) if m.is_empty() => {}
                Some((interaction, mismatches)) => unexpected.push(format!(
                    "{} {}: closest interaction {:?}: {}",
                    actual.method,
                    actual.path,
                    interaction.info.description,
                    mismatches
                        .iter()
                        .map(Mismatch::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
                None => unexpected.push(format!(
                    "{} {}: no interaction is served",
                    actual.method, actual.path
                )),
            }
        }
        if unexpected.is_empty() {
            Ok(())
        } else {
            Err(ConsumerError::UnexpectedRequests(unexpected))
        }
    }
}

fn actual_request(request: &Request) -> ActualRequest {
    ActualRequest {
        method: request.method.as_str().to_string(),
        path: request.url.path().to_string(),
        query: request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        headers: request
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: request.body.clone(),
    }
}

struct RequestMatches(HttpRequest);

impl wiremock::Match for RequestMatches {
    fn matches(&self, request: &Request) -> bool {
        match_request(&self.0, &actual_request(request)).is_empty()
    }
}

struct Answer {
    interaction: HttpInteraction,
    exercised: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Respond for Answer {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        *self
            .exercised
            .lock()
            .expect("exercise counts")
            .entry(self.interaction.info.description.clone())
            .or_default() += 1;
        let response = &self.interaction.response;
        let mut template = ResponseTemplate::new(response.status);
        for (name, values) in &response.headers {
            if !name.eq_ignore_ascii_case("content-type") {
                template = template.insert_header(name.as_str(), values.join(", ").as_str());
            }
        }
        if let Some(body) = &response.body {
            let content_type = body
                .content_type
                .clone()
                .unwrap_or_else(|| "application/json".into());
            let bytes = match &body.content {
                Value::String(s) if !body.is_json() => s.clone().into_bytes(),
                other => serde_json::to_vec(other).expect("JSON always serialises"),
            };
            template = template.set_body_raw(bytes, &content_type);
        }
        template
    }
}

#[cfg(test)]
mod tests;
