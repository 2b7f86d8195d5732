//! The Pact Specification V4 file model: a [`Pact`] between a consumer and a provider holds
//! [`Interaction`]s, each either a synchronous HTTP request/response or an asynchronous
//! message.
//!
//! Reading is strict: the file must declare `metadata.pactSpecification.version` `"4.0"`,
//! every interaction type, matcher, rule category and interaction field must be one faultline
//! understands, and anything else is a [`PactError`] naming the interaction and the JSON path.
//! Writing is deterministic (object keys sorted, two-space indentation) so pact files can be
//! snapshot-tested and diffed.
//!
//! ```
//! use faultline_contracts::model::Pact;
//!
//! let text = r#"{
//!   "consumer": {"name": "gateway"}, "provider": {"name": "order"},
//!   "interactions": [{
//!     "type": "Synchronous/HTTP", "description": "get an order",
//!     "request": {"method": "GET", "path": "/orders/1"},
//!     "response": {"status": 200}
//!   }],
//!   "metadata": {"pactSpecification": {"version": "4.0"}}
//! }"#;
//! let pact = Pact::from_json_str(text).unwrap();
//! assert_eq!(pact.interactions[0].description(), "get an order");
//! let again = Pact::from_json_str(&pact.to_json_string()).unwrap();
//! assert_eq!(pact, again);
//! ```

pub mod rules;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::PactError;
use crate::path::Location;
pub use rules::{
    ArrayContainsVariant, Category, Combine, EachRule, Generator, Generators, Matcher,
    MatchingRules, RuleList, StatusClass,
};

/// The only specification version faultline reads and writes.
pub const SPEC_VERSION: &str = "4.0";

/// Carries the interaction description into errors raised while reading it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub(crate) interaction: Option<String>,
}

impl Scope {
    pub(crate) fn invalid(&self, at: &Location, problem: &str) -> PactError {
        PactError::Invalid {
            interaction: self.interaction.clone(),
            path: at.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn unsupported(&self, at: &Location, feature: &str) -> PactError {
        PactError::UnsupportedFeature {
            interaction: self.interaction.clone(),
            path: at.to_string(),
            feature: feature.into(),
        }
    }
}

/// A named participant (consumer or provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacticipant {
    /// Its name, e.g. `order-service`.
    pub name: String,
}

/// A pact file: what `consumer` expects of `provider`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pact {
    /// The consuming service.
    pub consumer: Pacticipant,
    /// The providing service.
    pub provider: Pacticipant,
    /// The interactions, in file order.
    pub interactions: Vec<Interaction>,
    /// File metadata other than `pactSpecification` (e.g. the writing library's version).
    pub metadata: BTreeMap<String, Value>,
}

/// A provider state the provider must be put in before the interaction is replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderState {
    /// The state's name, e.g. `an order with id exists`.
    pub name: String,
    /// Parameters, e.g. `{"id": 42}`.
    pub params: BTreeMap<String, Value>,
}

/// Fields every V4 interaction has.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InteractionInfo {
    /// Human description; unique within a pact.
    pub description: String,
    /// Optional unique key.
    pub key: Option<String>,
    /// A pending interaction's failure does not fail verification.
    pub pending: bool,
    /// States to set up first.
    pub provider_states: Vec<ProviderState>,
    /// Free-form comments (`text`, `testname`, ...).
    pub comments: BTreeMap<String, Value>,
}

/// A V4 body: `{"content": ..., "contentType": ..., "encoded": false}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// The content: any JSON value for JSON bodies, a string for text or encoded bodies.
    pub content: Value,
    /// Its media type, e.g. `application/json`.
    pub content_type: Option<String>,
    /// How `content` is encoded.
    pub encoding: BodyEncoding,
}

/// How a [`Body`]'s content is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyEncoding {
    /// Stored as is (`"encoded": false`).
    #[default]
    None,
    /// A base64 string of the raw bytes (`"encoded": "base64"`).
    Base64,
    /// A JSON document stored as a string (`"encoded": "json"`).
    Json,
}

impl Body {
    /// A JSON body with content type `application/json`.
    pub fn json(content: Value) -> Self {
        Body {
            content,
            content_type: Some("application/json".into()),
            encoding: BodyEncoding::None,
        }
    }

    /// True when the body should be compared structurally as JSON.
    pub fn is_json(&self) -> bool {
        match &self.content_type {
            Some(ct) => is_json_content_type(ct),
            None => !self.content.is_string(),
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("content".into(), self.content.clone());
        if let Some(ct) = &self.content_type {
            m.insert("contentType".into(), json!(ct));
        }
        m.insert(
            "encoded".into(),
            match self.encoding {
                BodyEncoding::None => json!(false),
                BodyEncoding::Base64 => json!("base64"),
                BodyEncoding::Json => json!("json"),
            },
        );
        Value::Object(m)
    }

    pub(crate) fn from_json(value: &Value, at: &Location, scope: &Scope) -> Result<Option<Body>, PactError> {
        let obj = match value {
            Value::Null => return Ok(None),
            Value::Object(o) => o,
            _ => {
                return Err(scope.invalid(
                    at,
                    "expected a V4 body object {\"content\", \"contentType\", \"encoded\"}",
                ))
            }
        };
        check_keys(
            obj,
            &["content", "contentType", "encoded", "contentTypeHint"],
            at,
            scope,
        )?;
        let Some(content) = obj.get("content") else {
            return Ok(None);
        };
        let content_type = opt_string(obj, "contentType", at, scope)?;
        let encoding = match obj.get("encoded") {
            None | Some(Value::Bool(false)) | Some(Value::Null) => BodyEncoding::None,
            Some(Value::Bool(true)) => BodyEncoding::Base64,
            Some(Value::String(s)) if s == "base64" => BodyEncoding::Base64,
            Some(Value::String(s)) if s == "json" => BodyEncoding::Json,
            Some(other) => {
                return Err(
                    scope.unsupported(&at.field("encoded"), &format!("body encoding {other}"))
                );
            }
        };
        Ok(Some(Body {
            content: content.clone(),
            content_type,
            encoding,
        }))
    }
}

/// True for `application/json`, `application/*+json` and `text/json` (parameters ignored).
pub fn is_json_content_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

/// The request of an HTTP interaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path, e.g. `/orders/42`.
    pub path: String,
    /// Query parameters: name → values (un-encoded).
    pub query: BTreeMap<String, Vec<String>>,
    /// Headers: name → values.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body, if any.
    pub body: Option<Body>,
    /// Matching rules (categories body, header, query, path).
    pub matching_rules: MatchingRules,
    /// Generators.
    pub generators: Generators,
}

/// The response of an HTTP interaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers: name → values.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body, if any.
    pub body: Option<Body>,
    /// Matching rules (categories body, header, status).
    pub matching_rules: MatchingRules,
    /// Generators.
    pub generators: Generators,
}

/// A `Synchronous/HTTP` interaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpInteraction {
    /// Description, key, states, ...
    pub info: InteractionInfo,
    /// What the consumer sends.
    pub request: HttpRequest,
    /// What the consumer expects back.
    pub response: HttpResponse,
}

/// An `Asynchronous/Messages` interaction: a message the provider publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Description, key, states, ...
    pub info: InteractionInfo,
    /// The message payload.
    pub contents: Body,
    /// Message metadata (e.g. Kafka headers, topic).
    pub metadata: BTreeMap<String, Value>,
    /// Matching rules (categories body, metadata).
    pub matching_rules: MatchingRules,
    /// Generators.
    pub generators: Generators,
}

/// One interaction of a pact.
// A pact holds a handful of long-lived interactions; boxing would only add noise to matches.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Interaction {
    /// `Synchronous/HTTP`.
    Http(HttpInteraction),
    /// `Asynchronous/Messages`.
    Message(Message),
}

impl Interaction {
    /// Fields shared by every interaction type.
    pub fn info(&self) -> &InteractionInfo {
        match self {
            Interaction::Http(h) => &h.info,
            Interaction::Message(m) => &m.info,
        }
    }

    /// The interaction's description.
    pub fn description(&self) -> &str {
        &self.info().description
    }

    /// The V4 `type` string.
    pub fn kind(&self) -> &'static str {
        match self {
            Interaction::Http(_) => "Synchronous/HTTP",
            Interaction::Message(_) => "Asynchronous/Messages",
        }
    }
}

impl Pact {
    /// The pact as a JSON document; objects have sorted keys.
    pub fn to_json(&self) -> Value {
        let mut metadata: Map<String, Value> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        metadata.insert("pactSpecification".into(), json!({"version": SPEC_VERSION}));
        let doc = json!({
            "consumer": {"name": self.consumer.name},
            "provider": {"name": self.provider.name},
            "interactions": self.interactions.iter().map(interaction_to_json).collect::<Vec<_>>(),
            "metadata": metadata,
        });
        canonical(doc)
    }

    /// The pact as pretty-printed JSON text with sorted keys and a trailing newline;
    /// byte-for-byte stable for equal pacts.
    pub fn to_json_string(&self) -> String {
        let mut s =
            serde_json::to_string_pretty(&self.to_json()).expect("a JSON value always serializes");
        s.push('\n');
        s
    }
}

impl serde::Serialize for Pact {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Pact {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Pact::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// Rebuilds every object with its keys in sorted order, whatever map type serde_json uses.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

pub(crate) fn pacticipant(
    value: Option<&Value>,
    at: &Location,
    scope: &Scope,
) -> Result<Pacticipant, PactError> {
    match value.and_then(|v| v.get("name")).and_then(Value::as_str) {
        Some(name) => Ok(Pacticipant { name: name.into() }),
        None => Err(scope.invalid(at, "expected {\"name\": \"...\"}")),
    }
}

pub(crate) fn check_keys(
    obj: &Map<String, Value>,
    allowed: &[&str],
    at: &Location,
    scope: &Scope,
) -> Result<(), PactError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(scope.unsupported(
            &at.field(k),
            &format!("unknown field {k:?} (known fields: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    at: &Location,
    scope: &Scope,
) -> Result<Option<String>, PactError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(scope.invalid(&at.field(key), "expected a string")),
    }
}

fn req_string(
    obj: &Map<String, Value>,
    key: &str,
    at: &Location,
    scope: &Scope,
) -> Result<String, PactError> {
    opt_string(obj, key, at, scope)?
        .ok_or_else(|| scope.invalid(&at.field(key), "required string is missing"))
}

pub(crate) fn value_map(
    obj: &Map<String, Value>,
    key: &str,
    at: &Location,
    scope: &Scope,
) -> Result<BTreeMap<String, Value>, PactError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Some(_) => Err(scope.invalid(&at.field(key), "expected an object")),
    }
}

/// Header and query values: an array of strings, or one string.
fn string_lists(
    obj: &Map<String, Value>,
    key: &str,
    at: &Location,
    scope: &Scope,
) -> Result<BTreeMap<String, Vec<String>>, PactError> {
    let mut out = BTreeMap::new();
    for (name, v) in value_map(obj, key, at, scope)? {
        let at_v = at.field(key).field(&name);
        let values = match v {
            Value::String(s) => vec![s],
            Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    _ => Err(scope.invalid(&at_v, "expected strings")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(scope.invalid(&at_v, "expected a string or an array of strings")),
        };
        out.insert(name, values);
    }
    Ok(out)
}

pub(crate) fn rules_and_generators(
    obj: &Map<String, Value>,
    at: &Location,
    scope: &Scope,
) -> Result<(MatchingRules, Generators), PactError> {
    let rules = match obj.get("matchingRules") {
        None | Some(Value::Null) => MatchingRules::default(),
        Some(v) => MatchingRules::from_json(v, &at.field("matchingRules"), scope)?,
    };
    let generators = match obj.get("generators") {
        None | Some(Value::Null) => Generators::default(),
        Some(v) => Generators::from_json(v, &at.field("generators"), scope)?,
    };
    Ok((rules, generators))
}

pub(crate) const COMMON_KEYS: &[&str] = &[
    "type",
    "description",
    "key",
    "pending",
    "providerStates",
    "comments",
];
/// Fields other libraries write that carry no meaning for faultline when empty.
pub(crate) const IGNORABLE_WHEN_EMPTY: &[&str] = &["pluginConfiguration", "interactionMarkup", "transport"];

pub(crate) fn interaction_info(
    obj: &Map<String, Value>,
    at: &Location,
    scope: &Scope,
) -> Result<InteractionInfo, PactError> {
    let pending = match obj.get("pending") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(scope.invalid(&at.field("pending"), "expected a boolean")),
    };
    let at_s = at.field("providerStates");
    let provider_states = match obj.get("providerStates") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(states)) => states
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let at_one = at_s.index(i);
                let o = s
                    .as_object()
                    .ok_or_else(|| scope.invalid(&at_one, "expected {\"name\", \"params\"}"))?;
                Ok(ProviderState {
                    name: req_string(o, "name", &at_one, scope)?,
                    params: value_map(o, "params", &at_one, scope)?,
                })
            })
            .collect::<Result<_, PactError>>()?,
        Some(_) => return Err(scope.invalid(&at_s, "expected an array of provider states")),
    };
    Ok(InteractionInfo {
        description: req_string(obj, "description", at, scope)?,
        key: opt_string(obj, "key", at, scope)?,
        pending,
        provider_states,
        comments: value_map(obj, "comments", at, scope)?,
    })
}

fn part<'a>(
    value: Option<&'a Value>,
    at: &Location,
    scope: &Scope,
) -> Result<&'a Map<String, Value>, PactError> {
    value
        .and_then(Value::as_object)
        .ok_or_else(|| scope.invalid(at, "required object is missing"))
}

pub(crate) fn http_request(
    value: Option<&Value>,
    at: &Location,
    scope: &Scope,
) -> Result<HttpRequest, PactError> {
    let obj = part(value, at, scope)?;
    check_keys(
        obj,
        &[
            "method",
            "path",
            "query",
            "headers",
            "body",
            "matchingRules",
            "generators",
        ],
        at,
        scope,
    )?;
    let body = match obj.get("body") {
        None => None,
        Some(v) => Body::from_json(v, &at.field("body"), scope)?,
    };
    let (matching_rules, generators) = rules_and_generators(obj, at, scope)?;
    Ok(HttpRequest {
        method: req_string(obj, "method", at, scope)?.to_ascii_uppercase(),
        path: opt_string(obj, "path", at, scope)?.unwrap_or_else(|| "/".into()),
        query: string_lists(obj, "query", at, scope)?,
        headers: string_lists(obj, "headers", at, scope)?,
        body,
        matching_rules,
        generators,
    })
}

pub(crate) fn http_response(
    value: Option<&Value>,
    at: &Location,
    scope: &Scope,
) -> Result<HttpResponse, PactError> {
    let obj = part(value, at, scope)?;
    check_keys(
        obj,
        &["status", "headers", "body", "matchingRules", "generators"],
        at,
        scope,
    )?;
    let status = obj
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| scope.invalid(&at.field("status"), "expected an HTTP status code"))?;
    let body = match obj.get("body") {
        None => None,
        Some(v) => Body::from_json(v, &at.field("body"), scope)?,
    };
    let (matching_rules, generators) = rules_and_generators(obj, at, scope)?;
    Ok(HttpResponse {
        status,
        headers: string_lists(obj, "headers", at, scope)?,
        body,
        matching_rules,
        generators,
    })
}

fn insert_common(m: &mut Map<String, Value>, info: &InteractionInfo, kind: &str) {
    m.insert("type".into(), json!(kind));
    m.insert("description".into(), json!(info.description));
    if let Some(k) = &info.key {
        m.insert("key".into(), json!(k));
    }
    m.insert("pending".into(), json!(info.pending));
    if !info.provider_states.is_empty() {
        let states: Vec<Value> = info
            .provider_states
            .iter()
            .map(|s| {
                if s.params.is_empty() {
                    json!({"name": s.name})
                } else {
                    json!({"name": s.name, "params": s.params})
                }
            })
            .collect();
        m.insert("providerStates".into(), Value::Array(states));
    }
    if !info.comments.is_empty() {
        m.insert("comments".into(), json!(info.comments));
    }
}

fn insert_parts(
    m: &mut Map<String, Value>,
    headers: &BTreeMap<String, Vec<String>>,
    body: &Option<Body>,
    rules: &MatchingRules,
    generators: &Generators,
) {
    if !headers.is_empty() {
        m.insert("headers".into(), json!(headers));
    }
    if let Some(b) = body {
        m.insert("body".into(), b.to_json());
    }
    if !rules.is_empty() {
        m.insert("matchingRules".into(), rules.to_json());
    }
    if !generators.is_empty() {
        m.insert("generators".into(), generators.to_json());
    }
}

fn interaction_to_json(interaction: &Interaction) -> Value {
    let mut m = Map::new();
    insert_common(&mut m, interaction.info(), interaction.kind());
    match interaction {
        Interaction::Http(h) => {
            let mut req = Map::new();
            req.insert("method".into(), json!(h.request.method));
            req.insert("path".into(), json!(h.request.path));
            if !h.request.query.is_empty() {
                req.insert("query".into(), json!(h.request.query));
            }
            let r = &h.request;
            insert_parts(
                &mut req,
                &r.headers,
                &r.body,
                &r.matching_rules,
                &r.generators,
            );
            let mut res = Map::new();
            res.insert("status".into(), json!(h.response.status));
            let r = &h.response;
            insert_parts(
                &mut res,
                &r.headers,
                &r.body,
                &r.matching_rules,
                &r.generators,
            );
            m.insert("request".into(), Value::Object(req));
            m.insert("response".into(), Value::Object(res));
        }
        Interaction::Message(msg) => {
            m.insert("contents".into(), msg.contents.to_json());
            if !msg.metadata.is_empty() {
                m.insert("metadata".into(), json!(msg.metadata));
            }
            if !msg.matching_rules.is_empty() {
                m.insert("matchingRules".into(), msg.matching_rules.to_json());
            }
            if !msg.generators.is_empty() {
                m.insert("generators".into(), msg.generators.to_json());
            }
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests;
