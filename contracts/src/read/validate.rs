//! What reading checks once an interaction's fields have their shapes: that the interaction
//! can mean something. A status is a real HTTP status, a method is an HTTP token, a body
//! declared base64 or JSON is that, every matching rule points at something in the example
//! it describes, and the example passes its own regex rules — so a pact that no provider
//! could ever satisfy, or whose rules silently apply to nothing, is refused when it is read
//! rather than discovered (or missed) at verification.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{Body, BodyEncoding, Category, HttpInteraction, Message, RuleList, Scope};
use crate::error::PactError;
use crate::matching::{self, Mismatch, Part};
use crate::path::{JsonPath, Location, PathToken};

/// The checks of one HTTP interaction at `at` (`$.interactions[i]`).
pub(crate) fn http(h: &HttpInteraction, at: &Location, scope: &Scope) -> Result<(), PactError> {
    let (request, response) = (at.field("request"), at.field("response"));
    let method = &h.request.method;
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(scope.invalid(
            &request.field("method"),
            &format!("expected an HTTP method (letters, no spaces), found {method:?}"),
        ));
    }
    let status = h.response.status;
    if !(100..=599).contains(&status) {
        return Err(scope.invalid(
            &response.field("status"),
            &format!("expected an HTTP status code from 100 to 599, found {status}"),
        ));
    }
    let request_body = body(h.request.body.as_ref(), &request.field("body"), scope)?;
    let response_body = body(h.response.body.as_ref(), &response.field("body"), scope)?;
    let rules = &h.request.matching_rules;
    body_rules_present(
        rules.category(Category::Body),
        request_body.as_ref(),
        &request,
        scope,
    )?;
    names_present(
        rules.category(Category::Header),
        &h.request.headers,
        true,
        &request,
        "header",
        scope,
    )?;
    names_present(
        rules.category(Category::Query),
        &h.request.query,
        false,
        &request,
        "query",
        scope,
    )?;
    let rules = &h.response.matching_rules;
    body_rules_present(
        rules.category(Category::Body),
        response_body.as_ref(),
        &response,
        scope,
    )?;
    names_present(
        rules.category(Category::Header),
        &h.response.headers,
        true,
        &response,
        "header",
        scope,
    )?;
    let sent = matching::example_request(&h.request);
    own_regexes(matching::match_request(&h.request, &sent), &request, scope)?;
    let answered = matching::example_response(&h.response);
    own_regexes(
        matching::match_response(&h.response, &answered),
        &response,
        scope,
    )
}

/// The checks of one message interaction at `at`.
pub(crate) fn message(
    m: &Message,
    has_contents: bool,
    at: &Location,
    scope: &Scope,
) -> Result<(), PactError> {
    if !has_contents {
        return Err(scope.invalid(
            &at.field("contents"),
            "a message needs contents: {\"content\": ..., \"contentType\": ...}",
        ));
    }
    let contents = body(Some(&m.contents), &at.field("contents"), scope)?;
    let rules = &m.matching_rules;
    body_rules_present(rules.category(Category::Body), contents.as_ref(), at, scope)?;
    for key in rules.category(Category::Metadata).keys() {
        let name = key.strip_prefix("$.").unwrap_or(key);
        if !m.metadata.contains_key(name) {
            return Err(absent(at, "metadata", key, "metadata", scope));
        }
    }
    let Some(contents) = contents else {
        return Ok(());
    };
    own_regexes(
        matching::match_message(m, &contents, &m.metadata),
        at,
        scope,
    )
}

/// RFC 9110 `tchar`: what a method name may be made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The body's content as JSON when it is a JSON body (`None` for text, binary and absent
/// bodies); an error when it is declared base64 or JSON and is not.
fn body(body: Option<&Body>, at: &Location, scope: &Scope) -> Result<Option<Value>, PactError> {
    let Some(body) = body else {
        return Ok(None);
    };
    let at = at.field("content");
    match (body.encoding, &body.content) {
        (BodyEncoding::Base64, Value::String(text)) => {
            let bytes = matching::base64_decode(text).ok_or_else(|| {
                scope.invalid(
                    &at,
                    "the body is declared base64 (\"encoded\") but is not base64",
                )
            })?;
            if !body.is_json() {
                return Ok(None);
            }
            serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                scope.invalid(
                    &at,
                    &format!(
                        "the body is declared JSON (contentType) but its bytes are not JSON: {e}"
                    ),
                )
            })
        }
        (BodyEncoding::Base64, _) => Err(scope.invalid(
            &at,
            "the body is declared base64 (\"encoded\"); expected its content as a string",
        )),
        (BodyEncoding::Json, Value::String(text)) => {
            serde_json::from_str(text).map(Some).map_err(|e| {
                scope.invalid(
                    &at,
                    &format!(
                        "the body is declared JSON (\"encoded\": \"json\") but is not JSON: {e}"
                    ),
                )
            })
        }
        (BodyEncoding::Json, other) => Ok(Some(other.clone())),
        (BodyEncoding::None, content) if body.is_json() => Ok(Some(content.clone())),
        (BodyEncoding::None, _) => Ok(None),
    }
}

/// Every body rule's path reaches something in the JSON example.
fn body_rules_present(
    rules: &BTreeMap<String, RuleList>,
    example: Option<&Value>,
    at: &Location,
    scope: &Scope,
) -> Result<(), PactError> {
    for key in rules.keys() {
        let Ok(path) = JsonPath::parse(key) else {
            continue; // reading the rules already refused it
        };
        let present = match example {
            Some(example) => reaches(&path.tokens()[1..], example),
            // A text or binary body has no structure for a path to reach below `$`.
            None => path.tokens().len() == 1,
        };
        if !present {
            return Err(absent(at, "body", key, "body", scope));
        }
    }
    Ok(())
}

/// Whether following `tokens` from `value` reaches at least one value.
fn reaches(tokens: &[PathToken], value: &Value) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return true;
    };
    match (token, value) {
        (PathToken::Field(name), Value::Object(map)) => {
            map.get(name).is_some_and(|v| reaches(rest, v))
        }
        (PathToken::Index(i), Value::Array(items)) => {
            items.get(*i).is_some_and(|v| reaches(rest, v))
        }
        (PathToken::AnyField, Value::Object(map)) => map.values().any(|v| reaches(rest, v)),
        (PathToken::AnyField | PathToken::AnyIndex, Value::Array(items)) => {
            items.iter().any(|v| reaches(rest, v))
        }
        _ => false,
    }
}

/// Every header (case-insensitive) or query rule names something the example has.
fn names_present(
    rules: &BTreeMap<String, RuleList>,
    example: &BTreeMap<String, Vec<String>>,
    ignore_case: bool,
    at: &Location,
    category: &str,
    scope: &Scope,
) -> Result<(), PactError> {
    for key in rules.keys() {
        let name = key.strip_prefix("$.").unwrap_or(key);
        let found = example
            .keys()
            .any(|have| have == name || (ignore_case && have.eq_ignore_ascii_case(name)));
        if !found {
            let part = if category == "header" {
                "headers"
            } else {
                "query"
            };
            return Err(absent(at, category, key, part, scope));
        }
    }
    Ok(())
}

fn absent(at: &Location, category: &str, key: &str, part: &str, scope: &Scope) -> PactError {
    scope.invalid(
        &at.field("matchingRules").field(category).field(key),
        &format!(
            "a matching rule for {key:?}, which the example's {part} does not have; \
             a rule describes a value of the example"
        ),
    )
}

/// The example's own regex rules must accept it: a rule its example breaks would fail every
/// verification, or be a typo that matches nothing.
fn own_regexes(mismatches: Vec<Mismatch>, at: &Location, scope: &Scope) -> Result<(), PactError> {
    let Some(m) = mismatches.iter().find(|m| m.rule.contains("regex /")) else {
        return Ok(());
    };
    let (category, what) = match m.part {
        Part::Body => ("body", format!("the example at {}", m.path)),
        Part::Header => ("header", format!("the example header {:?}", m.path)),
        Part::Query => ("query", format!("the example query parameter {:?}", m.path)),
        Part::Metadata => ("metadata", format!("the example metadata {:?}", m.path)),
        Part::Path => ("path", "the example path".to_string()),
        Part::Method | Part::Status => ("status", "the example".to_string()),
    };
    Err(scope.invalid(
        &at.field("matchingRules").field(category),
        &format!(
            "{what}, {}, does not match its own rule {}",
            m.expected, m.rule
        ),
    ))
}
