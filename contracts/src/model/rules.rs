//! Matching rules and generators as they appear in V4 pact files.
//!
//! ```json
//! "matchingRules": {
//!   "body":   { "$.items": { "combine": "AND", "matchers": [{ "match": "type", "min": 1 }] } },
//!   "header": { "Content-Type": { "combine": "AND", "matchers": [{ "match": "regex", "regex": "application/json.*" }] } },
//!   "path":   { "combine": "AND", "matchers": [{ "match": "regex", "regex": "/orders/\\d+" }] },
//!   "status": { "$": { "combine": "AND", "matchers": [{ "match": "statusCode", "status": "success" }] } }
//! }
//! ```
//!
//! Reading validates everything up front (regexes compile, date patterns are supported, rule
//! keys are valid paths) so that a verification never silently skips a rule it cannot apply.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Value};

use super::Scope;
use crate::error::PactError;
use crate::patterns::datetime::DateTimePattern;
use crate::path::{JsonPath, Location};

/// How the matchers of one rule list combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Combine {
    /// Every matcher must pass (the default).
    #[default]
    And,
    /// At least one matcher must pass.
    Or,
}

/// The part of an HTTP exchange or message a rule (or generator) applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// Request/response body or message contents; keys are JSON paths.
    Body,
    /// Headers; keys are header names.
    Header,
    /// Query parameters; keys are parameter names.
    Query,
    /// The request path; a single rule list.
    Path,
    /// The response status; a single rule list.
    Status,
    /// Message metadata; keys are metadata names.
    Metadata,
}

impl Category {
    /// The name used in pact files.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Body => "body",
            Category::Header => "header",
            Category::Query => "query",
            Category::Path => "path",
            Category::Status => "status",
            Category::Metadata => "metadata",
        }
    }

    fn parse(name: &str) -> Option<Category> {
        Some(match name {
            "body" | "content" => Category::Body,
            "header" | "headers" => Category::Header,
            "query" => Category::Query,
            "path" => Category::Path,
            "status" => Category::Status,
            "metadata" => Category::Metadata,
            _ => return None,
        })
    }

    /// Categories holding one rule list rather than a map keyed by path or name.
    fn is_single(self) -> bool {
        matches!(self, Category::Path | Category::Status)
    }
}

/// Response status classes for the `statusCode` matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusClass {
    /// 100–199.
    Information,
    /// 200–299.
    Success,
    /// 300–399.
    Redirect,
    /// 400–499.
    ClientError,
    /// 500–599.
    ServerError,
    /// 100–399.
    NonError,
    /// 400–599.
    Error,
    /// One of the listed codes.
    Codes(Vec<u16>),
}

impl StatusClass {
    /// Whether `status` belongs to this class.
    pub fn contains(&self, status: u16) -> bool {
        match self {
            StatusClass::Information => (100..200).contains(&status),
            StatusClass::Success => (200..300).contains(&status),
            StatusClass::Redirect => (300..400).contains(&status),
            StatusClass::ClientError => (400..500).contains(&status),
            StatusClass::ServerError => (500..600).contains(&status),
            StatusClass::NonError => (100..400).contains(&status),
            StatusClass::Error => (400..600).contains(&status),
            StatusClass::Codes(codes) => codes.contains(&status),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            StatusClass::Information => json!("information"),
            StatusClass::Success => json!("success"),
            StatusClass::Redirect => json!("redirect"),
            StatusClass::ClientError => json!("clientError"),
            StatusClass::ServerError => json!("serverError"),
            StatusClass::NonError => json!("nonError"),
            StatusClass::Error => json!("error"),
            StatusClass::Codes(codes) => json!(codes),
        }
    }
}

impl fmt::Display for StatusClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusClass::Information => f.write_str("an informational status (100-199)"),
            StatusClass::Success => f.write_str("a success status (200-299)"),
            StatusClass::Redirect => f.write_str("a redirect status (300-399)"),
            StatusClass::ClientError => f.write_str("a client error status (400-499)"),
            StatusClass::ServerError => f.write_str("a server error status (500-599)"),
            StatusClass::NonError => f.write_str("a non-error status (100-399)"),
            StatusClass::Error => f.write_str("an error status (400-599)"),
            StatusClass::Codes(codes) => {
                let list: Vec<String> = codes.iter().map(u16::to_string).collect();
                write!(f, "one of the statuses {}", list.join(", "))
            }
        }
    }
}

/// One variant of an `arrayContains` matcher: the example at `index` of the expected array,
/// matched with its own body rules (keys relative to the element, rooted at `$`).
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayContainsVariant {
    /// Index of the example element in the expected array.
    pub index: usize,
    /// Rules applied inside the element, keyed by JSON path relative to it.
    pub rules: BTreeMap<String, RuleList>,
    /// Generators for the element, kept as data.
    pub generators: Option<Value>,
}

/// The inner definition of `eachKey` / `eachValue`.
#[derive(Debug, Clone, PartialEq)]
pub struct EachRule {
    /// Matchers applied to each key or value.
    pub rules: Vec<Matcher>,
    /// Example value, kept as data.
    pub value: Option<Value>,
}

/// One matcher of a rule list. See the crate docs for the matching semantics of each.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// Equal to the example (resets cascading type matching).
    Equality,
    /// The whole value matches the regular expression.
    Regex(String),
    /// Same JSON type as the example; for arrays optionally a minimum/maximum length.
    Type {
        /// Minimum array length.
        min: Option<usize>,
        /// Maximum array length.
        max: Option<usize>,
    },
    /// An integer number.
    Integer,
    /// A number with a fractional part.
    Decimal,
    /// Any number.
    Number,
    /// A boolean (or the strings `true` / `false`).
    Boolean,
    /// JSON null.
    Null,
    /// A string containing the given text.
    Include(String),
    /// A date in the given Java-style pattern (ISO-8601 `yyyy-MM-dd` when absent).
    Date(Option<String>),
    /// A time in the given pattern (ISO-8601 when absent).
    Time(Option<String>),
    /// A date-time in the given pattern (ISO-8601 when absent).
    Timestamp(Option<String>),
    /// Same type as the example and not empty.
    NotEmpty,
    /// A semantic version `MAJOR.MINOR.PATCH[-pre][+build]`.
    Semver,
    /// Map values matched against the example's values, keys ignored (V3 `values`).
    Values,
    /// Response status within a class or list.
    StatusCode(StatusClass),
    /// Each variant is matched by at least one element of the actual array.
    ArrayContains(Vec<ArrayContainsVariant>),
    /// Every key of the actual object passes the inner rules.
    EachKey(EachRule),
    /// Every value of the actual object or array passes the inner rules.
    EachValue(EachRule),
}

impl Matcher {
    /// Whether this matcher also applies below the path it is declared at.
    pub fn cascades(&self) -> bool {
        !matches!(
            self,
            Matcher::Values
                | Matcher::EachKey(_)
                | Matcher::EachValue(_)
                | Matcher::ArrayContains(_)
        )
    }

    /// A short description for mismatch reports, e.g. `regex /^\d+$/`.
    pub fn describe(&self) -> String {
        match self {
            Matcher::Equality => "equality".into(),
            Matcher::Regex(r) => format!("regex /{r}/"),
            Matcher::Type {
                min: None,
                max: None,
            } => "type".into(),
            Matcher::Type { min, max } => {
                let mut s = "type".to_string();
                if let Some(min) = min {
                    s.push_str(&format!(" min {min}"));
                }
                if let Some(max) = max {
                    s.push_str(&format!(" max {max}"));
                }
                s
            }
            Matcher::Integer => "integer".into(),
            Matcher::Decimal => "decimal".into(),
            Matcher::Number => "number".into(),
            Matcher::Boolean => "boolean".into(),
            Matcher::Null => "null".into(),
            Matcher::Include(s) => format!("include {s:?}"),
            Matcher::Date(f) => format!("date {:?}", f.as_deref().unwrap_or("ISO-8601")),
            Matcher::Time(f) => format!("time {:?}", f.as_deref().unwrap_or("ISO-8601")),
            Matcher::Timestamp(f) => format!("datetime {:?}", f.as_deref().unwrap_or("ISO-8601")),
            Matcher::NotEmpty => "notEmpty".into(),
            Matcher::Semver => "semver".into(),
            Matcher::Values => "values".into(),
            Matcher::StatusCode(c) => format!("statusCode {}", c.to_json()),
            Matcher::ArrayContains(v) => format!("arrayContains ({} variants)", v.len()),
            Matcher::EachKey(e) => format!("eachKey [{}]", describe_all(&e.rules)),
            Matcher::EachValue(e) => format!("eachValue [{}]", describe_all(&e.rules)),
        }
    }

    /// The matcher in pact-file JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Matcher::Equality => json!({"match": "equality"}),
            Matcher::Regex(r) => json!({"match": "regex", "regex": r}),
            Matcher::Type { min, max } => {
                let mut m = Map::new();
                m.insert("match".into(), json!("type"));
                if let Some(min) = min {
                    m.insert("min".into(), json!(min));
                }
                if let Some(max) = max {
                    m.insert("max".into(), json!(max));
                }
                Value::Object(m)
            }
            Matcher::Integer => json!({"match": "integer"}),
            Matcher::Decimal => json!({"match": "decimal"}),
            Matcher::Number => json!({"match": "number"}),
            Matcher::Boolean => json!({"match": "boolean"}),
            Matcher::Null => json!({"match": "null"}),
            Matcher::Include(s) => json!({"match": "include", "value": s}),
            Matcher::Date(f) => with_format("date", f),
            Matcher::Time(f) => with_format("time", f),
            Matcher::Timestamp(f) => with_format("datetime", f),
            Matcher::NotEmpty => json!({"match": "notEmpty"}),
            Matcher::Semver => json!({"match": "semver"}),
            Matcher::Values => json!({"match": "values"}),
            Matcher::StatusCode(c) => json!({"match": "statusCode", "status": c.to_json()}),
            Matcher::ArrayContains(variants) => {
                let variants: Vec<Value> = variants
                    .iter()
                    .map(|v| {
                        let mut m = Map::new();
                        m.insert("index".into(), json!(v.index));
                        m.insert("rules".into(), rule_map_to_json(&v.rules));
                        if let Some(g) = &v.generators {
                            m.insert("generators".into(), g.clone());
                        }
                        Value::Object(m)
                    })
                    .collect();
                json!({"match": "arrayContains", "variants": variants})
            }
            Matcher::EachKey(e) => each_to_json("eachKey", e),
            Matcher::EachValue(e) => each_to_json("eachValue", e),
        }
    }

    /// Reads one matcher object, validating its parameters.
    pub(crate) fn from_json(
        value: &Value,
        at: &Location,
        scope: &Scope,
    ) -> Result<Matcher, PactError> {
        let obj = value
            .as_object()
            .ok_or_else(|| scope.invalid(at, "expected a matcher object"))?;
        let kind = match obj.get("match") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(scope.invalid(at, "matcher has no \"match\" string")),
        };
        let text = |key: &str| -> Result<String, PactError> {
            match obj.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(scope.invalid(
                    &at.field(key),
                    &format!("{kind} matcher needs a string {key:?}"),
                )),
            }
        };
        let count = |key: &str| -> Result<Option<usize>, PactError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                    scope.invalid(&at.field(key), "expected a non-negative integer")
                }),
            }
        };
        let format = |key: &str| -> Result<Option<String>, PactError> {
            let f = match obj.get("format").or_else(|| obj.get(key)) {
                None | Some(Value::Null) => return Ok(None),
                Some(Value::String(s)) if s.is_empty() => return Ok(None),
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    return Err(scope.invalid(&at.field("format"), "expected a string format"))
                }
            };
            DateTimePattern::compile(&f).map_err(|problem| PactError::UnsupportedMatcher {
                interaction: scope.interaction.clone(),
                path: at.field("format").to_string(),
                matcher: format!("{kind} {f:?}"),
                hint: problem,
            })?;
            Ok(Some(f))
        };
        Ok(match kind {
            "equality" => Matcher::Equality,
            "regex" => {
                let r = text("regex")?;
                // Compiled alone first: a pattern such as `a)|(b` only compiles inside the
                // `^(?:…)$` the matcher wraps it in, and would then mean something else.
                regex::Regex::new(&r)
                    .and_then(|_| crate::patterns::compile_regex(&r))
                    .map_err(|e| PactError::UnsupportedMatcher {
                        interaction: scope.interaction.clone(),
                        path: at.field("regex").to_string(),
                        matcher: format!("regex /{r}/"),
                        hint: format!("the pattern does not compile with the Rust regex crate: {e}"),
                    })?;
                Matcher::Regex(r)
            }
            "type" => {
                let (min, max) = (count("min")?, count("max")?);
                if let (Some(min), Some(max)) = (min, max) {
                    if min > max {
                        return Err(scope.invalid(
                            &at.field("min"),
                            &format!("type matcher with min {min} above max {max}: no array has such a length"),
                        ));
                    }
                }
                Matcher::Type { min, max }
            }
            "integer" => Matcher::Integer,
            "decimal" | "real" => Matcher::Decimal,
            "number" => Matcher::Number,
            "boolean" => Matcher::Boolean,
            "null" => Matcher::Null,
            "include" => Matcher::Include(text("value")?),
            "date" => Matcher::Date(format("date")?),
            "time" => Matcher::Time(format("time")?),
            "datetime" | "timestamp" => Matcher::Timestamp(format("timestamp")?),
            "notEmpty" => Matcher::NotEmpty,
            "semver" => Matcher::Semver,
            "values" => Matcher::Values,
            "statusCode" => Matcher::StatusCode(status_class(obj.get("status"), &at.field("status"), scope)?),
            "arrayContains" => {
                let at_variants = at.field("variants");
                let variants = obj
                    .get("variants")
                    .and_then(Value::as_array)
                    .ok_or_else(|| scope.invalid(&at_variants, "arrayContains needs a \"variants\" array"))?;
                let mut out = Vec::new();
                for (i, v) in variants.iter().enumerate() {
                    let at_v = at_variants.index(i);
                    let index = v
                        .get("index")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| scope.invalid(&at_v.field("index"), "expected a non-negative integer"))?
                        as usize;
                    let rules = match v.get("rules") {
                        None => BTreeMap::new(),
                        Some(r) => rule_map_from_json(r, &at_v.field("rules"), scope)?,
                    };
                    out.push(ArrayContainsVariant { index, rules, generators: v.get("generators").cloned() });
                }
                Matcher::ArrayContains(out)
            }
            "eachKey" | "eachValue" => {
                let at_rules = at.field("rules");
                let rules = match obj.get("rules") {
                    None => Vec::new(),
                    Some(Value::Array(rules)) => rules
                        .iter()
                        .enumerate()
                        .map(|(i, r)| Matcher::from_json(r, &at_rules.index(i), scope))
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err(scope.invalid(&at_rules, "expected an array of matchers")),
                };
                let each = EachRule { rules, value: obj.get("value").cloned() };
                if kind == "eachKey" {
                    Matcher::EachKey(each)
                } else {
                    Matcher::EachValue(each)
                }
            }
            "contentType" => {
                return Err(PactError::UnsupportedMatcher {
                    interaction: scope.interaction.clone(),
                    path: at.to_string(),
                    matcher: kind.into(),
                    hint: "binary content-type sniffing is not implemented; match the Content-Type header instead"
                        .into(),
                })
            }
            other => {
                return Err(PactError::UnsupportedMatcher {
                    interaction: scope.interaction.clone(),
                    path: at.to_string(),
                    matcher: other.into(),
                    hint: SUPPORTED_MATCHERS.into(),
                })
            }
        })
    }
}

const SUPPORTED_MATCHERS: &str = "supported matchers: equality, regex, type (min/max), integer, decimal, number, \
     boolean, null, include, date, time, datetime, notEmpty, semver, values, statusCode, arrayContains, eachKey, eachValue";

fn describe_all(rules: &[Matcher]) -> String {
    rules
        .iter()
        .map(Matcher::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

fn with_format(kind: &str, format: &Option<String>) -> Value {
    match format {
        Some(f) => json!({"match": kind, "format": f}),
        None => json!({"match": kind}),
    }
}

fn each_to_json(kind: &str, each: &EachRule) -> Value {
    let mut m = Map::new();
    m.insert("match".into(), json!(kind));
    m.insert(
        "rules".into(),
        Value::Array(each.rules.iter().map(Matcher::to_json).collect()),
    );
    if let Some(v) = &each.value {
        m.insert("value".into(), v.clone());
    }
    Value::Object(m)
}

fn status_class(
    value: Option<&Value>,
    at: &Location,
    scope: &Scope,
) -> Result<StatusClass, PactError> {
    Ok(match value {
        None => StatusClass::Success,
        Some(Value::String(s)) => match s.as_str() {
            "information" => StatusClass::Information,
            "success" => StatusClass::Success,
            "redirect" => StatusClass::Redirect,
            "clientError" => StatusClass::ClientError,
            "serverError" => StatusClass::ServerError,
            "nonError" => StatusClass::NonError,
            "error" => StatusClass::Error,
            other => {
                return Err(scope.invalid(
                    at,
                    &format!(
                        "unknown status class {other:?}; expected information, success, redirect, \
                         clientError, serverError, nonError, error or an array of codes"
                    ),
                ))
            }
        },
        Some(Value::Array(codes)) => StatusClass::Codes(
            codes
                .iter()
                .map(|c| c.as_u64().and_then(|c| u16::try_from(c).ok()))
                .collect::<Option<Vec<u16>>>()
                .ok_or_else(|| scope.invalid(at, "expected an array of status codes"))?,
        ),
        Some(_) => {
            return Err(scope.invalid(at, "expected a status class name or an array of codes"))
        }
    })
}

/// A list of matchers for one path, and how they combine.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleList {
    /// AND (all must pass) or OR (one must pass).
    pub combine: Combine,
    /// The matchers.
    pub matchers: Vec<Matcher>,
}

impl RuleList {
    /// A rule list of one matcher.
    pub fn single(matcher: Matcher) -> Self {
        RuleList {
            combine: Combine::And,
            matchers: vec![matcher],
        }
    }

    /// A short description for mismatch reports.
    pub fn describe(&self) -> String {
        let sep = match self.combine {
            Combine::And => " and ",
            Combine::Or => " or ",
        };
        self.matchers
            .iter()
            .map(Matcher::describe)
            .collect::<Vec<_>>()
            .join(sep)
    }

    fn to_json(&self) -> Value {
        json!({
            "combine": match self.combine { Combine::And => "AND", Combine::Or => "OR" },
            "matchers": self.matchers.iter().map(Matcher::to_json).collect::<Vec<_>>(),
        })
    }

    fn from_json(value: &Value, at: &Location, scope: &Scope) -> Result<RuleList, PactError> {
        let obj = value
            .as_object()
            .ok_or_else(|| scope.invalid(at, "expected {\"combine\", \"matchers\"}"))?;
        let combine = match obj.get("combine") {
            None => Combine::And,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("and") => Combine::And,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("or") => Combine::Or,
            Some(_) => {
                return Err(scope.invalid(&at.field("combine"), "expected \"AND\" or \"OR\""))
            }
        };
        let at_m = at.field("matchers");
        let matchers = obj
            .get("matchers")
            .and_then(Value::as_array)
            .ok_or_else(|| scope.invalid(&at_m, "expected an array of matchers"))?
            .iter()
            .enumerate()
            .map(|(i, m)| Matcher::from_json(m, &at_m.index(i), scope))
            .collect::<Result<_, _>>()?;
        Ok(RuleList { combine, matchers })
    }
}

fn rule_map_to_json(rules: &BTreeMap<String, RuleList>) -> Value {
    Value::Object(
        rules
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

fn rule_map_from_json(
    value: &Value,
    at: &Location,
    scope: &Scope,
) -> Result<BTreeMap<String, RuleList>, PactError> {
    let obj = value
        .as_object()
        .ok_or_else(|| scope.invalid(at, "expected an object of path → rules"))?;
    let mut out = BTreeMap::new();
    for (key, rules) in obj {
        let at_key = at.field(key);
        JsonPath::parse(key).map_err(|e| scope.invalid(&at_key, &e.to_string()))?;
        out.insert(key.clone(), RuleList::from_json(rules, &at_key, scope)?);
    }
    Ok(out)
}

/// All matching rules of a request, response or message, by category.
///
/// Body and metadata keys are JSON paths (`$.items[*].id`); header and query keys are names;
/// path and status hold a single rule list under the key `$`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchingRules {
    /// Rule lists by category, then by key.
    pub categories: BTreeMap<Category, BTreeMap<String, RuleList>>,
}

impl MatchingRules {
    /// True when no category holds a rule.
    pub fn is_empty(&self) -> bool {
        self.categories.values().all(BTreeMap::is_empty)
    }

    /// The rules of one category (empty when absent).
    pub fn category(&self, category: Category) -> &BTreeMap<String, RuleList> {
        static EMPTY: BTreeMap<String, RuleList> = BTreeMap::new();
        self.categories.get(&category).unwrap_or(&EMPTY)
    }

    /// Adds a rule list; for path and status use the key `$`.
    pub fn insert(&mut self, category: Category, key: impl Into<String>, rules: RuleList) {
        self.categories
            .entry(category)
            .or_default()
            .insert(key.into(), rules);
    }

    /// The rules in pact-file JSON form.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (category, rules) in &self.categories {
            if rules.is_empty() {
                continue;
            }
            let value = match (category, rules.get("$")) {
                (Category::Path, Some(list)) if rules.len() == 1 => list.to_json(),
                _ => rule_map_to_json(rules),
            };
            out.insert(category.as_str().into(), value);
        }
        Value::Object(out)
    }

    pub(crate) fn from_json(
        value: &Value,
        at: &Location,
        scope: &Scope,
    ) -> Result<MatchingRules, PactError> {
        let obj = value
            .as_object()
            .ok_or_else(|| scope.invalid(at, "expected an object of categories"))?;
        let mut categories = BTreeMap::new();
        for (name, rules) in obj {
            let at_c = at.field(name);
            let category = Category::parse(name).ok_or_else(|| PactError::UnsupportedFeature {
                interaction: scope.interaction.clone(),
                path: at_c.to_string(),
                feature: format!(
                    "matching rule category {name:?} (expected body, header, query, path, status or metadata)"
                ),
            })?;
            let is_single_list = rules.get("matchers").is_some();
            let map = if category.is_single() && is_single_list {
                BTreeMap::from([("$".to_string(), RuleList::from_json(rules, &at_c, scope)?)])
            } else {
                rule_map_from_json(rules, &at_c, scope)?
            };
            // An empty category says nothing; keeping it would make two equal pacts differ.
            if !map.is_empty() {
                categories
                    .entry(category)
                    .or_insert_with(BTreeMap::new)
                    .extend(map);
            }
        }
        Ok(MatchingRules { categories })
    }
}

/// A generator: replaces an example value at verification time.
#[derive(Debug, Clone, PartialEq)]
pub enum Generator {
    /// Value taken from the provider-state callback, e.g. expression `${id}`.
    ProviderState {
        /// Template with `${name}` placeholders.
        expression: String,
        /// Optional target type (`STRING`, `INTEGER`, ...).
        data_type: Option<String>,
    },
    /// Any other generator, kept as data (not applied yet).
    Other {
        /// The generator `type`.
        kind: String,
        /// Its other attributes.
        attributes: BTreeMap<String, Value>,
    },
}

impl Generator {
    fn to_json(&self) -> Value {
        match self {
            Generator::ProviderState {
                expression,
                data_type,
            } => {
                let mut m = Map::new();
                m.insert("type".into(), json!("ProviderState"));
                m.insert("expression".into(), json!(expression));
                if let Some(t) = data_type {
                    m.insert("dataType".into(), json!(t));
                }
                Value::Object(m)
            }
            Generator::Other { kind, attributes } => {
                let mut m: Map<String, Value> = attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                m.insert("type".into(), json!(kind));
                Value::Object(m)
            }
        }
    }

    fn from_json(value: &Value, at: &Location, scope: &Scope) -> Result<Generator, PactError> {
        let obj = value
            .as_object()
            .ok_or_else(|| scope.invalid(at, "expected a generator object"))?;
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| scope.invalid(at, "generator has no \"type\" string"))?;
        if kind == "ProviderState" {
            let expression = obj
                .get("expression")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    scope.invalid(
                        &at.field("expression"),
                        "ProviderState generator needs a string",
                    )
                })?;
            let data_type = match obj.get("dataType") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(scope.invalid(&at.field("dataType"), "expected a string")),
            };
            Ok(Generator::ProviderState {
                expression: expression.into(),
                data_type,
            })
        } else {
            let attributes = obj
                .iter()
                .filter(|(k, _)| *k != "type")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok(Generator::Other {
                kind: kind.into(),
                attributes,
            })
        }
    }
}

/// Generators by category, then by key (same keys as [`MatchingRules`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Generators {
    /// Generators by category, then key.
    pub categories: BTreeMap<Category, BTreeMap<String, Generator>>,
}

impl Generators {
    /// True when there is no generator.
    pub fn is_empty(&self) -> bool {
        self.categories.values().all(BTreeMap::is_empty)
    }

    /// The generators in pact-file JSON form.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (category, generators) in &self.categories {
            if generators.is_empty() {
                continue;
            }
            let value = match (category.is_single(), generators.get("$")) {
                (true, Some(g)) if generators.len() == 1 => g.to_json(),
                _ => Value::Object(
                    generators
                        .iter()
                        .map(|(k, g)| (k.clone(), g.to_json()))
                        .collect(),
                ),
            };
            out.insert(category.as_str().into(), value);
        }
        Value::Object(out)
    }

    pub(crate) fn from_json(
        value: &Value,
        at: &Location,
        scope: &Scope,
    ) -> Result<Generators, PactError> {
        let obj = value
            .as_object()
            .ok_or_else(|| scope.invalid(at, "expected an object of categories"))?;
        let mut categories = BTreeMap::new();
        for (name, generators) in obj {
            let at_c = at.field(name);
            let category = Category::parse(name).ok_or_else(|| PactError::UnsupportedFeature {
                interaction: scope.interaction.clone(),
                path: at_c.to_string(),
                feature: format!("generator category {name:?}"),
            })?;
            let mut map = BTreeMap::new();
            if category.is_single() && generators.get("type").is_some() {
                map.insert(
                    "$".to_string(),
                    Generator::from_json(generators, &at_c, scope)?,
                );
            } else {
                let entries = generators
                    .as_object()
                    .ok_or_else(|| scope.invalid(&at_c, "expected an object of generators"))?;
                for (key, g) in entries {
                    map.insert(
                        key.clone(),
                        Generator::from_json(g, &at_c.field(key), scope)?,
                    );
                }
            }
            if !map.is_empty() {
                categories.insert(category, map);
            }
        }
        Ok(Generators { categories })
    }
}
