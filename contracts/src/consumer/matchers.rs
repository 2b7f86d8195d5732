//! Example values that carry their matching rules, for the consumer builder.
//!
//! Each function returns a JSON value in Pact's "integration JSON" form — an object with
//! `pact:matcher:type` (and, for values made by a provider state, `pact:generator:type`) and
//! the example under `value` — which the builder turns into the example plus a matching rule
//! (and generator) at that value's path. Plain JSON values match by equality.
//!
//! ```
//! use faultline_contracts::consumer::matchers::{from_state, integer, like, term, uuid};
//! use serde_json::json;
//!
//! let body = json!({
//!     "order_id": from_state("${order_id}", uuid("6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11")),
//!     "amount_cents": integer(1200),
//!     "card": like(json!("4242424242424242")),
//!     "status": term("PENDING|CONFIRMED", "PENDING"),
//! });
//! assert_eq!(body["amount_cents"]["pact:matcher:type"], "integer");
//! ```

use serde_json::{json, Map, Value};

use crate::model::{Generator, Matcher, RuleList};

/// The regular expression of a lowercase hyphenated UUID.
pub const UUID_REGEX: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

const MATCHER_KEY: &str = "pact:matcher:type";
const GENERATOR_KEY: &str = "pact:generator:type";

fn marker(kind: &str, value: Value, extra: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    m.insert(MATCHER_KEY.into(), json!(kind));
    m.insert("value".into(), value);
    for (k, v) in extra {
        m.insert((*k).into(), v.clone());
    }
    Value::Object(m)
}

/// Any value of the same JSON type as `example` (cascades into objects and arrays).
pub fn like(example: Value) -> Value {
    marker("type", example, &[])
}

/// An array of at least `min` elements, each like `example`.
pub fn each_like(example: Value, min: usize) -> Value {
    marker("type", json!([example]), &[("min", json!(min))])
}

/// A string matching `regex` as a whole.
pub fn term(regex: &str, example: &str) -> Value {
    marker("regex", json!(example), &[("regex", json!(regex))])
}

/// A lowercase hyphenated UUID.
pub fn uuid(example: &str) -> Value {
    term(UUID_REGEX, example)
}

/// An integer.
pub fn integer(example: i64) -> Value {
    marker("integer", json!(example), &[])
}

/// A number with a fractional part.
pub fn decimal(example: f64) -> Value {
    marker("decimal", json!(example), &[])
}

/// A boolean.
pub fn boolean(example: bool) -> Value {
    marker("boolean", json!(example), &[])
}

/// A string containing `text`.
pub fn include(text: &str) -> Value {
    marker("include", json!(text), &[("value", json!(text))])
}

/// A date-time in the Java-style `format` (e.g. `yyyy-MM-dd'T'HH:mm:ssXXX`); ISO-8601 when `None`.
pub fn timestamp(format: Option<&str>, example: &str) -> Value {
    match format {
        Some(f) => marker("timestamp", json!(example), &[("format", json!(f))]),
        None => marker("timestamp", json!(example), &[]),
    }
}

/// `null`, or a value like `example` (a nullable field): either rule may pass.
pub fn null_or_like(example: Value) -> Value {
    marker("null-or-type", example, &[])
}

/// Exactly `example` (stops a cascading `like` above it).
pub fn equal(example: Value) -> Value {
    marker("equality", example, &[])
}

/// A value the provider state makes: at verification, `expression` (e.g. `${order_id}` or
/// `/orders/${order_id}`) is filled in from the values the state setup returned. `example` is
/// a plain value or a matcher from this module.
pub fn from_state(expression: &str, example: Value) -> Value {
    let mut m = match example {
        Value::Object(m) if m.contains_key(MATCHER_KEY) => m,
        plain => {
            let mut m = Map::new();
            m.insert("value".into(), plain);
            m
        }
    };
    m.insert(GENERATOR_KEY.into(), json!("ProviderState"));
    m.insert("expression".into(), json!(expression));
    Value::Object(m)
}

/// What one marker says: the example, its rules, its generator.
pub struct Marked {
    pub example: Value,
    pub rules: Option<RuleList>,
    pub generator: Option<Generator>,
}

/// A matcher value taken apart; `None` when `value` is plain JSON. `Err` names what is wrong.
pub(crate) fn unmark(value: &Value) -> Result<Option<Marked>, String> {
    let Value::Object(m) = value else {
        return Ok(None);
    };
    if !m.contains_key(MATCHER_KEY) && !m.contains_key(GENERATOR_KEY) {
        return Ok(None);
    }
    let example = m
        .get("value")
        .cloned()
        .ok_or_else(|| "a matcher needs a `value` example".to_string())?;
    let rules = match m.get(MATCHER_KEY).map(|k| k.as_str()) {
        None => None,
        Some(Some(kind)) => Some(rule_list(kind, m)?),
        Some(None) => return Err(format!("{MATCHER_KEY} must be a string")),
    };
    let generator = match m.get(GENERATOR_KEY).and_then(Value::as_str) {
        None => None,
        Some("ProviderState") => Some(Generator::ProviderState {
            expression: m
                .get("expression")
                .and_then(Value::as_str)
                .ok_or_else(|| "a ProviderState generator needs an `expression`".to_string())?
                .to_string(),
            data_type: None,
        }),
        Some(other) => return Err(format!("unsupported generator {other:?}")),
    };
    Ok(Some(Marked {
        example,
        rules,
        generator,
    }))
}

fn rule_list(kind: &str, m: &Map<String, Value>) -> Result<RuleList, String> {
    let text = |key: &str| {
        m.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("matcher {kind:?} needs a string `{key}`"))
    };
    let size = |key: &str| m.get(key).and_then(Value::as_u64).map(|n| n as usize);
    let matcher = match kind {
        "type" => Matcher::Type {
            min: size("min"),
            max: size("max"),
        },
        "regex" => Matcher::Regex(text("regex")?),
        "integer" => Matcher::Integer,
        "decimal" => Matcher::Decimal,
        "number" => Matcher::Number,
        "boolean" => Matcher::Boolean,
        "include" => Matcher::Include(text("value")?),
        "timestamp" => Matcher::Timestamp(m.get("format").and_then(Value::as_str).map(Into::into)),
        "date" => Matcher::Date(m.get("format").and_then(Value::as_str).map(Into::into)),
        "time" => Matcher::Time(m.get("format").and_then(Value::as_str).map(Into::into)),
        "equality" => Matcher::Equality,
        "notEmpty" => Matcher::NotEmpty,
        "null-or-type" => {
            return Ok(RuleList {
                combine: crate::model::Combine::Or,
                matchers: vec![
                    Matcher::Null,
                    Matcher::Type {
                        min: None,
                        max: None,
                    },
                ],
            })
        }
        other => return Err(format!("unsupported matcher {other:?}")),
    };
    Ok(RuleList::single(matcher))
}
