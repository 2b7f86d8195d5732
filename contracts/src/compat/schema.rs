//! The JSON Schema subset the compatibility checker reasons about, read strictly, and the
//! minimal example payloads it builds counterexamples from.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};

use super::SchemaError;

/// The dialect faultline's schemas are written in; `$schema` may be absent or this.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Keywords that only annotate: accepted anywhere, ignored by the checker.
const ANNOTATIONS: &[&str] = &[
    "$id",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];
/// Keywords the checker understands.
const SUPPORTED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "items",
];
/// Formats for which the checker can write a valid example (and the validator asserts).
pub(crate) const FORMATS: &[&str] = &["uuid", "date-time", "date", "time", "email", "uri"];

/// The longest string the checker writes; a schema demanding longer ones gets unverified
/// candidates rather than a huge allocation.
pub(crate) const MAX_GENERATED_LENGTH: u64 = 65_536;

/// A JSON type name as in the `type` keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ty {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Ty {
    pub(crate) const ALL: [Ty; 7] = [
        Ty::Null,
        Ty::Boolean,
        Ty::Integer,
        Ty::Number,
        Ty::String,
        Ty::Array,
        Ty::Object,
    ];

    fn parse(name: &str) -> Option<Ty> {
        Some(match name {
            "null" => Ty::Null,
            "boolean" => Ty::Boolean,
            "integer" => Ty::Integer,
            "number" => Ty::Number,
            "string" => Ty::String,
            "array" => Ty::Array,
            "object" => Ty::Object,
            _ => return None,
        })
    }

    fn of(value: &Value) -> Ty {
        match value {
            Value::Null => Ty::Null,
            Value::Bool(_) => Ty::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => Ty::Integer,
            Value::Number(_) => Ty::Number,
            Value::String(_) => Ty::String,
            Value::Array(_) => Ty::Array,
            Value::Object(_) => Ty::Object,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::Null => "null",
            Ty::Boolean => "boolean",
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::String => "string",
            Ty::Array => "array",
            Ty::Object => "object",
        })
    }
}

/// One (sub)schema of the supported subset.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The subschema as written, for local validation.
    pub raw: Value,
    pub types: Option<Vec<Ty>>,
    pub properties: BTreeMap<String, Node>,
    pub required: Vec<String>,
    /// `additionalProperties`; absent means `true`.
    pub additional: bool,
    pub enum_values: Option<Vec<Value>>,
    pub const_value: Option<Value>,
    pub format: Option<String>,
    pub minimum: Option<Number>,
    pub maximum: Option<Number>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub items: Option<Box<Node>>,
}

impl Node {
    /// Reads `value` (found at `path` inside the schema file `file`) strictly.
    pub(crate) fn parse(file: &str, path: &str, value: &Value) -> Result<Node, SchemaError> {
        let invalid = |at: String, problem: String| SchemaError::Invalid {
            file: file.to_string(),
            path: at,
            problem,
        };
        let object = match value {
            Value::Bool(true) => &Map::new(),
            Value::Object(object) => object,
            Value::Bool(false) => {
                return Err(SchemaError::Unsupported {
                    file: file.to_string(),
                    path: path.to_string(),
                    feature: "the `false` schema".into(),
                    hint: "leave the property out and set additionalProperties: false".into(),
                })
            }
            _ => {
                return Err(invalid(
                    path.to_string(),
                    "expected a schema object (or `true`)".to_string(),
                ))
            }
        };
        let mut node = Node {
            raw: value.clone(),
            types: None,
            properties: BTreeMap::new(),
            required: Vec::new(),
            additional: true,
            enum_values: None,
            const_value: None,
            format: None,
            minimum: None,
            maximum: None,
            min_length: None,
            max_length: None,
            items: None,
        };
        for (keyword, v) in object {
            let at = format!("{path}.{keyword}");
            match keyword.as_str() {
                "$schema" if path == "$" => {
                    if v.as_str() != Some(DRAFT_2020_12) {
                        return Err(SchemaError::Unsupported {
                            file: file.to_string(),
                            path: at,
                            feature: format!("dialect {v}"),
                            hint: format!("write the schema in draft 2020-12 (\"$schema\": \"{DRAFT_2020_12}\")"),
                        });
                    }
                }
                k if ANNOTATIONS.contains(&k) => {}
                "type" => {
                    let names: Vec<&Value> = match v {
                        Value::Array(names) => names.iter().collect(),
                        single => vec![single],
                    };
                    let mut types = Vec::new();
                    for name in names {
                        let ty = name.as_str().and_then(Ty::parse).ok_or_else(|| {
                            invalid(at.clone(), format!("{name} is not a JSON type name (null, boolean, integer, number, string, array, object)"))
                        })?;
                        types.push(ty);
                    }
                    if types.is_empty() {
                        return Err(invalid(
                            at,
                            "expected at least one type name: `type: []` admits no value".into(),
                        ));
                    }
                    node.types = Some(types);
                }
                "properties" => {
                    let props = v
                        .as_object()
                        .ok_or_else(|| invalid(at.clone(), "expected an object of schemas".into()))?;
                    for (name, sub) in props {
                        let sub_path = format!("{at}{}", key_segment(name));
                        node.properties
                            .insert(name.clone(), Node::parse(file, &sub_path, sub)?);
                    }
                }
                "required" => {
                    let names = v.as_array().ok_or_else(|| {
                        invalid(at.clone(), "expected an array of property names".into())
                    })?;
                    for name in names {
                        let name = name.as_str().ok_or_else(|| {
                            invalid(at.clone(), format!("{name} is not a property name"))
                        })?;
                        node.required.push(name.to_string());
                    }
                }
                "additionalProperties" => {
                    node.additional = v.as_bool().ok_or_else(|| SchemaError::Unsupported {
                        file: file.to_string(),
                        path: at.clone(),
                        feature: "additionalProperties as a schema".into(),
                        hint: "use `true` or `false`".into(),
                    })?;
                }
                "enum" => {
                    let values = v
                        .as_array()
                        .ok_or_else(|| invalid(at.clone(), "expected an array".into()))?;
                    if values.is_empty() {
                        return Err(invalid(
                            at,
                            "expected at least one value: `enum: []` admits no value, so no \
                             event could ever be written under it"
                                .into(),
                        ));
                    }
                    node.enum_values = Some(values.clone());
                }
                "const" => node.const_value = Some(v.clone()),
                "format" => {
                    let format = v
                        .as_str()
                        .ok_or_else(|| invalid(at.clone(), "expected a string".into()))?;
                    if !FORMATS.contains(&format) {
                        return Err(SchemaError::Unsupported {
                            file: file.to_string(),
                            path: at,
                            feature: format!("format {format:?}"),
                            hint: format!("supported formats: {}", FORMATS.join(", ")),
                        });
                    }
                    node.format = Some(format.to_string());
                }
                "minimum" | "maximum" => {
                    let n = match v {
                        Value::Number(n) => n.clone(),
                        _ => return Err(invalid(at, "expected a number".into())),
                    };
                    if keyword == "minimum" {
                        node.minimum = Some(n);
                    } else {
                        node.maximum = Some(n);
                    }
                }
                "minLength" | "maxLength" => {
                    let n = v.as_u64().ok_or_else(|| {
                        invalid(at.clone(), "expected a non-negative integer".into())
                    })?;
                    if keyword == "minLength" {
                        node.min_length = Some(n);
                    } else {
                        node.max_length = Some(n);
                    }
                }
                "items" => node.items = Some(Box::new(Node::parse(file, &at, v)?)),
                other => {
                    return Err(SchemaError::Unsupported {
                        file: file.to_string(),
                        path: at,
                        feature: format!("keyword {other:?}"),
                        hint: format!(
                            "the compatibility checker understands {} (and annotations such as title, description)",
                            SUPPORTED.join(", ")
                        ),
                    })
                }
            }
        }
        Ok(node)
    }

    /// The types this node's values can have: from `type`, else from `const`/`enum`, else all.
    pub(crate) fn value_types(&self) -> Vec<Ty> {
        if let Some(types) = &self.types {
            return types.clone();
        }
        if let Some(value) = &self.const_value {
            return vec![Ty::of(value)];
        }
        if let Some(values) = &self.enum_values {
            let mut types: Vec<Ty> = values.iter().map(Ty::of).collect();
            types.sort();
            types.dedup();
            return types;
        }
        Ty::ALL.to_vec()
    }

    /// Whether a value of type `ty` passes this node's `type` keyword.
    pub(crate) fn admits_type(&self, ty: Ty) -> bool {
        match &self.types {
            None => true,
            Some(types) => {
                types.contains(&ty) || (ty == Ty::Integer && types.contains(&Ty::Number))
            }
        }
    }

    /// A small value valid under this node, when the checker can write one.
    pub(crate) fn example(&self) -> Value {
        if let Some(value) = &self.const_value {
            return value.clone();
        }
        if let Some(first) = self.enum_values.as_ref().and_then(|values| values.first()) {
            return first.clone();
        }
        // Without `type`, any value passes, but an object is what `properties` describes.
        if self.types.is_none() && (!self.properties.is_empty() || !self.required.is_empty()) {
            return self.example_of(Ty::Object);
        }
        let ty = self.value_types().first().copied().unwrap_or(Ty::Null);
        self.example_of(ty)
    }

    /// A small value of type `ty` valid under this node's keywords for that type.
    pub(crate) fn example_of(&self, ty: Ty) -> Value {
        match ty {
            Ty::Null => Value::Null,
            Ty::Boolean => Value::Bool(false),
            Ty::Integer | Ty::Number => int_value(self.default_int()),
            Ty::String => Value::String(self.example_string()),
            Ty::Array => Value::Array(Vec::new()),
            Ty::Object => {
                let mut object = Map::new();
                for name in &self.required {
                    let value = self
                        .properties
                        .get(name)
                        .map(Node::example)
                        .unwrap_or(Value::Null);
                    object.insert(name.clone(), value);
                }
                Value::Object(object)
            }
        }
    }

    fn default_int(&self) -> i128 {
        let lo = self.minimum.as_ref().map(ceil_int);
        let hi = self.maximum.as_ref().map(floor_int);
        match (lo, hi) {
            (Some(lo), _) => lo,
            (None, Some(hi)) if hi < 0 => hi,
            _ => 0,
        }
    }

    pub(crate) fn example_string(&self) -> String {
        if let Some(format) = &self.format {
            return format_example(format).to_string();
        }
        let len = self.min_length.unwrap_or(1).max(1);
        let len = self.max_length.map_or(len, |max| len.min(max));
        "x".repeat(len.min(MAX_GENERATED_LENGTH) as usize)
    }
}

/// A valid example of each supported format.
pub(crate) fn format_example(format: &str) -> &'static str {
    match format {
        "uuid" => "00000000-0000-4000-8000-000000000000",
        "date-time" => "2025-01-01T00:00:00Z",
        "date" => "2025-01-01",
        "time" => "00:00:00Z",
        "email" => "someone@example.com",
        "uri" => "https://example.com/",
        _ => "x",
    }
}

/// The smallest integer ≥ `n`.
pub(crate) fn ceil_int(n: &Number) -> i128 {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
        .unwrap_or_else(|| n.as_f64().unwrap_or(0.0).ceil() as i128)
}

/// The largest integer ≤ `n`.
pub(crate) fn floor_int(n: &Number) -> i128 {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
        .unwrap_or_else(|| n.as_f64().unwrap_or(0.0).floor() as i128)
}

/// `n` as JSON, clamped to what serde_json can hold as an integer.
pub(crate) fn int_value(n: i128) -> Value {
    if let Ok(n) = i64::try_from(n) {
        Value::from(n)
    } else if let Ok(n) = u64::try_from(n) {
        Value::from(n)
    } else if n < 0 {
        Value::from(i64::MIN)
    } else {
        Value::from(u64::MAX)
    }
}

/// `.name` or `['na.me']`, as in the rest of faultline's JSON paths.
pub(crate) fn key_segment(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        format!(".{name}")
    } else {
        format!("['{}']", name.replace('\'', "\\'"))
    }
}
