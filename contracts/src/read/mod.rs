//! Reading a pact: from JSON into the [model](crate::model), checked. Each field's shape is
//! the model's to read; what only makes sense of a whole interaction — a real status, rules
//! that point at something, examples that pass their own rules ([`validate`]) — is checked
//! here, with the matchers of [`matching`](crate::matching), so a pact no provider could
//! satisfy is refused when it is read. Above both in the crate: imports the model, the
//! matchers, paths and errors.

mod validate;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::PactError;
use crate::model::{
    check_keys, http_request, http_response, interaction_info, pacticipant, rules_and_generators,
    value_map, Body, BodyEncoding, HttpInteraction, Interaction, Message, Pact, Scope, COMMON_KEYS,
    IGNORABLE_WHEN_EMPTY, SPEC_VERSION,
};
use crate::path::Location;

impl Pact {
    /// Reads a V4 pact from JSON text. Malformed JSON reports line and column.
    pub fn from_json_str(text: &str) -> Result<Pact, PactError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PactError::MalformedJson {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Pact::from_json(&value)
    }

    /// Reads a V4 pact from a parsed JSON document.
    pub fn from_json(value: &Value) -> Result<Pact, PactError> {
        let scope = Scope::default();
        let root = Location::root();
        let obj = value
            .as_object()
            .ok_or_else(|| scope.invalid(&root, "a pact file is a JSON object"))?;
        let mut metadata: BTreeMap<String, Value> =
            match obj.get("metadata").or_else(|| obj.get("metaData")) {
                Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                _ => return Err(PactError::MissingSpecVersion),
            };
        let version = metadata
            .remove("pactSpecification")
            .and_then(|s| s.get("version").cloned())
            .ok_or(PactError::MissingSpecVersion)?;
        match version.as_str() {
            Some(SPEC_VERSION) => {}
            None if version.is_number() => {
                return Err(PactError::SpecVersionNotString {
                    found: version.to_string(),
                })
            }
            _ => {
                let found = version
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| version.to_string());
                return Err(PactError::UnsupportedSpecVersion { found });
            }
        }
        match metadata.get("plugins") {
            None => {}
            Some(Value::Array(p)) if p.is_empty() => {}
            Some(_) => {
                return Err(scope.unsupported(
                    &root.field("metadata").field("plugins"),
                    "Pact plugins (plugin-defined content and transports are not supported)",
                ))
            }
        }
        let consumer = pacticipant(obj.get("consumer"), &root.field("consumer"), &scope)?;
        let provider = pacticipant(obj.get("provider"), &root.field("provider"), &scope)?;
        let at_i = root.field("interactions");
        let list = match obj.get("interactions") {
            None => &Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(scope.invalid(&at_i, "expected an array of interactions")),
        };
        let interactions: Vec<Interaction> = list
            .iter()
            .enumerate()
            .map(|(i, v)| interaction(v, &at_i.index(i)))
            .collect::<Result<_, _>>()?;
        // Descriptions identify interactions: in verification results, in the broker's
        // records and when two versions of a pact are compared.
        let mut seen = BTreeMap::new();
        for (i, one) in interactions.iter().enumerate() {
            if let Some(first) = seen.insert(one.description(), i) {
                return Err(PactError::Invalid {
                    interaction: Some(one.description().to_string()),
                    path: at_i.index(i).field("description").to_string(),
                    problem: format!(
                        "the description is also that of $.interactions[{first}]; each interaction \
                         of a pact needs its own description"
                    ),
                });
            }
        }
        Ok(Pact {
            consumer,
            provider,
            interactions,
            metadata,
        })
    }
}

fn interaction(value: &Value, at: &Location) -> Result<Interaction, PactError> {
    let anonymous = Scope::default();
    let obj = value
        .as_object()
        .ok_or_else(|| anonymous.invalid(at, "expected an interaction object"))?;
    let description = obj
        .get("description")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            anonymous.invalid(
                &at.field("description"),
                "every interaction needs a description",
            )
        })?;
    let scope = Scope {
        interaction: Some(description.to_string()),
    };
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| scope.invalid(&at.field("type"), "V4 interactions need a \"type\""))?;
    for key in IGNORABLE_WHEN_EMPTY {
        match obj.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.is_empty() => {}
            Some(Value::String(s)) if *key == "transport" && (s == "http" || s == "https") => {}
            Some(_) => {
                return Err(scope.unsupported(
                    &at.field(key),
                    &format!("{key} (plugin or transport configuration)"),
                ))
            }
        }
    }
    let info = interaction_info(obj, at, &scope)?;
    let allowed = |extra: &[&'static str]| -> Vec<&'static str> {
        COMMON_KEYS
            .iter()
            .chain(IGNORABLE_WHEN_EMPTY)
            .chain(extra)
            .copied()
            .collect()
    };
    match kind {
        "Synchronous/HTTP" => {
            check_keys(obj, &allowed(&["request", "response"]), at, &scope)?;
            let request = http_request(obj.get("request"), &at.field("request"), &scope)?;
            let response = http_response(obj.get("response"), &at.field("response"), &scope)?;
            let http = HttpInteraction {
                info,
                request,
                response,
            };
            validate::http(&http, at, &scope)?;
            Ok(Interaction::Http(http))
        }
        "Asynchronous/Messages" => {
            check_keys(
                obj,
                &allowed(&["contents", "metadata", "matchingRules", "generators"]),
                at,
                &scope,
            )?;
            let contents = match obj.get("contents") {
                None => None,
                Some(v) => Body::from_json(v, &at.field("contents"), &scope)?,
            };
            let has_contents = contents.is_some();
            let contents = contents.unwrap_or(Body {
                content: Value::Null,
                content_type: None,
                encoding: BodyEncoding::None,
            });
            let metadata = value_map(obj, "metadata", at, &scope)?;
            let (matching_rules, generators) = rules_and_generators(obj, at, &scope)?;
            let message = Message {
                info,
                contents,
                metadata,
                matching_rules,
                generators,
            };
            validate::message(&message, has_contents, at, &scope)?;
            Ok(Interaction::Message(message))
        }
        other => Err(PactError::UnsupportedInteractionType {
            interaction: description.into(),
            path: at.field("type").to_string(),
            kind: other.into(),
        }),
    }
}
