//! The provider side: replay every interaction of a pact against the real provider and judge
//! what comes back.
//!
//! For each interaction, in file order:
//! 1. every provider state is set up by `POST`ing `{"state", "params", "action": "setup"}` to
//!    the provider's state-change URL (the endpoint the reference services serve in test
//!    mode, and the request `pact_verifier_cli --state-change-url` sends); the JSON object it
//!    answers holds the values the state made;
//! 2. `ProviderState` generators fill those values into the request (path, query, headers,
//!    body) — or, for a message, into the metadata (its `key`);
//! 3. HTTP: the request is sent to the provider and the response matched with
//!    [`match_response`]. Message: the provider is not asked for the message — the state
//!    setup made the real producer publish it — so the verifier reads the Kafka topic named
//!    by the message's `topic` metadata, from where it stood before the setup, until a record
//!    (with the expected `key`, when the pact names one) matches, or the wait runs out;
//! 4. the verdict, with its mismatches (JSON path, expected, actual) and timings, goes into
//!    the [`report::Report`] (JSON and JUnit).
//!
//! A *pending* interaction's failure is reported but does not fail the verification.

pub mod report;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::matching::{match_message, match_response, ActualResponse, Mismatch, Part};
use crate::model::{
    Body, BodyEncoding, Category, Generator, Generators, HttpInteraction, HttpRequest, Interaction,
    Message, ProviderState,
};
use crate::path::{JsonPath, PathToken};
use crate::Pact;
pub use report::{InteractionResult, Outcome, PactResult, Report};

/// A boxed future, for the object-safe [`MessageSource`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message as read from the provider's topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualMessage {
    /// The payload, as JSON when it parses, else as a string.
    pub contents: Value,
    /// `topic`, `key`, and every record header (as strings).
    pub metadata: BTreeMap<String, Value>,
}

/// How long one look at a [`MessageSource`] may wait for a message to come.
const LOOK: Duration = Duration::from_millis(25);

/// Where a provider's published messages can be read (the harness reads real Kafka topics).
pub trait MessageSource: Send + Sync {
    /// The current end of `topic`, as an opaque position, taken before a provider state runs.
    fn mark<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<Value, String>>;
    /// The messages appended to `topic` since `mark`, up to now; only those with record key
    /// `key` when one is given. When none has come since the last look, a source may wait up
    /// to `wait` for one and answer as soon as it comes; one that cannot wait answers at once
    /// (the verifier looks again after `wait`).
    fn since<'a>(
        &'a self,
        topic: &'a str,
        mark: &'a Value,
        key: Option<&'a str>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Vec<ActualMessage>, String>>;
}

/// The provider a pact is verified against.
#[derive(Clone)]
pub struct ProviderTarget {
    /// Its name (must equal the pact's provider).
    pub name: String,
    /// Base URL of its HTTP API.
    pub base_url: String,
    /// Where provider states are set up; `None`: interactions with states are errors.
    pub state_change_url: Option<String>,
    /// Where its messages are read; `None`: message interactions are errors.
    pub messages: Option<Arc<dyn MessageSource>>,
    /// How long to wait for a matching message.
    pub message_wait: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl ProviderTarget {
    /// An HTTP provider at `base_url`, its states at `<base_url>/admin/provider-states`.
    pub fn http(name: &str, base_url: &str) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        Self {
            name: name.into(),
            state_change_url: Some(format!("{base_url}/admin/provider-states")),
            base_url,
            messages: None,
            message_wait: Duration::from_secs(15),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// Reads message interactions from `source`.
    pub fn with_messages(mut self, source: Arc<dyn MessageSource>) -> Self {
        self.messages = Some(source);
        self
    }
}

impl std::fmt::Debug for ProviderTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTarget")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("state_change_url", &self.state_change_url)
            .field("messages", &self.messages.is_some())
            .finish()
    }
}

/// Replays pacts against providers; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    http: reqwest::Client,
}

/// Why an interaction could not be judged (as opposed to judged and failed).
#[derive(Debug)]
struct Broken(String);

impl<E: std::fmt::Display> From<E> for Broken {
    fn from(e: E) -> Self {
        Broken(e.to_string())
    }
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies every interaction of `pact` (read from `source`, a file name for reports)
    /// against `target`.
    pub async fn verify_pact(
        &self,
        pact: &Pact,
        source: &str,
        target: &ProviderTarget,
    ) -> PactResult {
        let started = Instant::now();
        let mut interactions = Vec::new();
        for interaction in &pact.interactions {
            let info = interaction.info();
            let began = Instant::now();
            let outcome = if pact.provider.name != target.name {
                Outcome::Error(format!(
                    "the pact's provider is {:?}, verified against {:?}",
                    pact.provider.name, target.name
                ))
            } else {
                let judged = match interaction {
                    Interaction::Http(http) => self.verify_http(http, target).await,
                    Interaction::Message(message) => self.verify_message(message, target).await,
                };
                match judged {
                    Ok(m) if m.is_empty() => Outcome::Passed,
                    Ok(m) => Outcome::Failed(m),
                    Err(Broken(why)) => Outcome::Error(why),
                }
            };
            interactions.push(InteractionResult {
                description: info.description.clone(),
                kind: interaction.kind().to_string(),
                provider_states: info
                    .provider_states
                    .iter()
                    .map(|s| s.name.clone())
                    .collect(),
                pending: info.pending,
                outcome,
                duration: began.elapsed(),
            });
        }
        PactResult {
            source: source.to_string(),
            consumer: pact.consumer.name.clone(),
            provider: pact.provider.name.clone(),
            interactions,
            duration: started.elapsed(),
        }
    }

    async fn set_up_states(
        &self,
        states: &[ProviderState],
        target: &ProviderTarget,
    ) -> Result<Map<String, Value>, Broken> {
        let mut values = Map::new();
        if states.is_empty() {
            return Ok(values);
        }
        let Some(url) = &target.state_change_url else {
            return Err(Broken(format!(
                "provider state {:?} needs a state-change URL for {}",
                states[0].name, target.name
            )));
        };
        for state in states {
            let params: Map<String, Value> = state.params.clone().into_iter().collect();
            let answer = self
                .http
                .post(url)
                .timeout(target.request_timeout)
                .json(&json!({"state": state.name, "params": params, "action": "setup"}))
                .send()
                .await
                .map_err(|e| Broken(format!("setting up provider state {:?}: {e}", state.name)))?;
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            if !status.is_success() {
                return Err(Broken(format!(
                    "setting up provider state {:?}: {url} answered {status}: {text}",
                    state.name
                )));
            }
            if let Ok(Value::Object(made)) = serde_json::from_str::<Value>(&text) {
                values.extend(made);
            }
        }
        Ok(values)
    }

    async fn verify_http(
        &self,
        interaction: &HttpInteraction,
        target: &ProviderTarget,
    ) -> Result<Vec<Mismatch>, Broken> {
        let values = self
            .set_up_states(&interaction.info.provider_states, target)
            .await?;
        let request = generate_request(&interaction.request, &values)?;
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Broken(format!("invalid method {:?}", request.method)))?;
        let mut url = reqwest::Url::parse(&format!("{}{}", target.base_url, request.path))
            .map_err(|e| Broken(format!("{}{}: {e}", target.base_url, request.path)))?;
        if !request.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, values) in &request.query {
                for value in values {
                    pairs.append_pair(name, value);
                }
            }
        }
        let mut call = self
            .http
            .request(method, url)
            .timeout(target.request_timeout);
        for (name, values) in &request.headers {
            call = call.header(name.as_str(), values.join(", "));
        }
        if let Some(body) = &request.body {
            call = call.body(body_bytes(body)?);
        }
        let response = call
            .send()
            .await
            .map_err(|e| Broken(format!("{} {}: {e}", request.method, request.path)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.bytes().await?.to_vec();
        Ok(match_response(
            &interaction.response,
            &ActualResponse {
                status,
                headers,
                body,
            },
        ))
    }

    async fn verify_message(
        &self,
        message: &Message,
        target: &ProviderTarget,
    ) -> Result<Vec<Mismatch>, Broken> {
        let Some(source) = &target.messages else {
            return Err(Broken(format!(
                "message interactions of {} need a message source (Kafka)",
                target.name
            )));
        };
        let Some(topic) = message.metadata.get("topic").and_then(Value::as_str) else {
            return Err(Broken(
                "the message has no `topic` metadata naming the topic it is published to".into(),
            ));
        };
        let mark = source.mark(topic).await.map_err(Broken)?;
        let values = self
            .set_up_states(&message.info.provider_states, target)
            .await?;
        let expected = expected_message(message, &values).map_err(Broken)?;
        let key = expected
            .metadata
            .get("key")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut closest: Option<Vec<Mismatch>> = None;
        let mut matched = false;
        look_for(source.as_ref(), topic, &mark, key.as_deref(), target.message_wait, |found| {
            for actual in found {
                let mismatches = match_message(&expected, &actual.contents, &actual.metadata);
                if mismatches.is_empty() {
                    matched = true;
                    return true;
                }
                if closest.as_ref().is_none_or(|c| mismatches.len() < c.len()) {
                    closest = Some(mismatches);
                }
            }
            false
        })
        .await
        .map_err(Broken)?;
        if matched {
            return Ok(Vec::new());
        }
        Ok(closest.unwrap_or_else(|| {
            vec![Mismatch {
                part: Part::Metadata,
                path: "key".into(),
                expected: key.clone().unwrap_or_else(|| "any".into()),
                actual: crate::matching::MISSING.into(),
                rule: "published".into(),
                message: format!(
                    "no message{} was published to topic {topic:?} within {:?} of the provider state",
                    key.as_deref().map(|k| format!(" with key {k:?}")).unwrap_or_default(),
                    target.message_wait
                ),
            }]
        }))
    }
}

/// Looks at what `source` has from `mark` on (only records with key `key`, when given) until
/// `done` accepts what was found, or `wait` has passed. Every verifier of messages looks the
/// same way: a look answers as soon as a record comes (a source that can wait) or after
/// [`LOOK`]; a look that brought something new (not what `done` wants) is followed at once by
/// the next, which waits for more.
pub async fn look_for(
    source: &dyn MessageSource,
    topic: &str,
    mark: &Value,
    key: Option<&str>,
    wait: Duration,
    mut done: impl FnMut(&[ActualMessage]) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    let mut looked_at = 0;
    loop {
        let look = Instant::now();
        let found = source.since(topic, mark, key, LOOK).await?;
        if done(&found) || Instant::now() >= deadline {
            return Ok(());
        }
        // After a look that brought nothing, a source that could not wait is looked at again
        // after `LOOK` (one that waited has nothing to add).
        if found.len() == looked_at {
            tokio::time::sleep_until((look + LOOK).into()).await;
        }
        looked_at = found.len();
    }
}

/// The message with its metadata `ProviderState` generators filled in from `values` (e.g. the
/// record `key` a provider state made): what the provider is expected to publish.
pub fn expected_message(message: &Message, values: &Map<String, Value>) -> Result<Message, String> {
    let mut expected = message.clone();
    if let Some(generators) = message.generators.categories.get(&Category::Metadata) {
        for (key, generator) in generators {
            let name = key.trim_start_matches("$.");
            if let Some(v) = generate(generator, values).map_err(|Broken(why)| why)? {
                expected.metadata.insert(name.to_string(), v);
            }
        }
    }
    Ok(expected)
}

fn body_bytes(body: &Body) -> Result<Vec<u8>, Broken> {
    Ok(match (&body.content, body.encoding) {
        (Value::String(s), BodyEncoding::Json) => s.clone().into_bytes(),
        (Value::String(s), BodyEncoding::Base64) => {
            return Err(Broken(format!(
                "base64-encoded request bodies are not supported ({} characters)",
                s.len()
            )))
        }
        (Value::String(s), BodyEncoding::None) if !body.is_json() => s.clone().into_bytes(),
        (other, _) => serde_json::to_vec(other)?,
    })
}

/// The request with every `ProviderState` generator filled in from `values`.
pub fn generate_request(
    request: &HttpRequest,
    values: &Map<String, Value>,
) -> Result<HttpRequest, String> {
    generate_request_inner(request, values).map_err(|Broken(why)| why)
}

fn generate_request_inner(
    request: &HttpRequest,
    values: &Map<String, Value>,
) -> Result<HttpRequest, Broken> {
    let mut out = request.clone();
    let Generators { categories } = &request.generators;
    for (category, generators) in categories {
        for (key, generator) in generators {
            let Some(value) = generate(generator, values)? else {
                continue;
            };
            match category {
                Category::Path => out.path = as_text(&value),
                Category::Header => {
                    out.headers.insert(key.clone(), vec![as_text(&value)]);
                }
                Category::Query => {
                    out.query.insert(key.clone(), vec![as_text(&value)]);
                }
                Category::Body => {
                    if let Some(body) = &mut out.body {
                        set_at(&mut body.content, key, value)?;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The generated value, `None` for generators that are not applied (kept as data).
fn generate(generator: &Generator, values: &Map<String, Value>) -> Result<Option<Value>, Broken> {
    let Generator::ProviderState { expression, .. } = generator else {
        return Ok(None);
    };
    // `${name}` alone keeps the value's JSON type; anything else is text.
    if let Some(name) = expression
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| !name.contains("${") && !name.contains('}'))
    {
        return values.get(name).cloned().map(Some).ok_or_else(|| {
            Broken(format!(
                "the provider state returned no value {name:?} for expression {expression:?} (it returned: {})",
                Value::Object(values.clone())
            ))
        });
    }
    let mut text = String::new();
    let mut rest = expression.as_str();
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| Broken(format!("unterminated `${{` in expression {expression:?}")))?;
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| {
            Broken(format!(
                "the provider state returned no value {name:?} for expression {expression:?}"
            ))
        })?;
        text.push_str(&as_text(value));
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    Ok(Some(Value::String(text)))
}

fn set_at(document: &mut Value, key: &str, value: Value) -> Result<(), Broken> {
    let path = JsonPath::parse(key)?;
    let mut at = document;
    for token in path.tokens() {
        at = match token {
            PathToken::Root => at,
            PathToken::Field(name) => match at {
                Value::Object(m) => m.entry(name.clone()).or_insert(Value::Null),
                _ => {
                    return Err(Broken(format!(
                        "generator path {key}: {name:?} is not in an object"
                    )))
                }
            },
            PathToken::Index(i) => match at {
                Value::Array(items) if *i < items.len() => &mut items[*i],
                _ => return Err(Broken(format!("generator path {key}: no element [{i}]"))),
            },
            PathToken::AnyField | PathToken::AnyIndex => {
                return Err(Broken(format!(
                    "generator path {key}: wildcards are not supported"
                )))
            }
        };
    }
    *at = value;
    Ok(())
}

#[cfg(test)]
mod tests;
