//! The matching engine: compares what a pact expects with what actually happened, and reports
//! every difference as a [`Mismatch`] naming the part, the JSON path, the expected and actual
//! values and the rule that failed.
//!
//! Entry points: [`match_response`] (provider verification), [`match_request`] (the consumer
//! side's mock server), [`match_message`] (message verification) and [`match_json`] (a body
//! on its own).
//!
//! Defaults, following the Pact specification (its "be strict in what you send, lenient in
//! what you accept" rule and its V1–V3 test cases):
//! - response and message bodies may carry keys the contract does not mention; request bodies
//!   may not (spec test case `request/body/unexpected key with null value`: no match);
//! - arrays without a rule must have the expected length;
//! - headers: names case-insensitive, values compared item by item after splitting on commas
//!   (whitespace around commas ignored, order significant); `Content-Type` compares the media
//!   type case-insensitively and only the parameters the contract states; extra headers are
//!   always allowed;
//! - query parameters: every expected parameter with the same values in order; unexpected
//!   parameters are mismatches;
//! - method case-insensitive; path and status by equality unless a rule says otherwise.
//!
//! ```
//! use faultline_contracts::matching::{match_json, UnexpectedKeys};
//! use faultline_contracts::model::{Matcher, RuleList};
//! use serde_json::json;
//! use std::collections::BTreeMap;
//!
//! let rules = BTreeMap::from([("$.id".to_string(), RuleList::single(Matcher::Integer))]);
//! let found = match_json(&json!({"id": 1, "name": "a"}), &json!({"id": "x", "name": "a"}), &rules, UnexpectedKeys::Allowed);
//! assert_eq!(found[0].path, "$.id");
//! assert_eq!(found[0].actual, "\"x\"");
//! ```

mod body;
pub use crate::patterns::datetime;
pub(crate) mod value;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::model::{
    Body, BodyEncoding, Category, Combine, HttpRequest, HttpResponse, Message, RuleList,
};
use crate::path::Location;
use body::BodyComparison;

/// Shown as the actual (or expected) side of a mismatch when the value is absent.
pub const MISSING: &str = "<missing>";

/// Which part of the exchange a mismatch is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// Request method.
    Method,
    /// Request path.
    Path,
    /// A query parameter; the mismatch path is its name.
    Query,
    /// A header; the mismatch path is its name.
    Header,
    /// Response status.
    Status,
    /// Body or message contents; the mismatch path is a JSON path.
    Body,
    /// Message metadata; the mismatch path is the metadata key.
    Metadata,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Method => "method",
            Part::Path => "path",
            Part::Query => "query",
            Part::Header => "header",
            Part::Status => "status",
            Part::Body => "body",
            Part::Metadata => "metadata",
        })
    }
}

/// One difference between expectation and reality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Where: body, header, status...
    pub part: Part,
    /// JSON path for bodies (`$.items[1].id`), the name for headers, query and metadata,
    /// `$` for method, path and status.
    pub path: String,
    /// The expected value or example (JSON text for body values).
    pub expected: String,
    /// The actual value (JSON text for body values), or [`MISSING`].
    pub actual: String,
    /// The rule that failed, e.g. `type`, `regex /\d+/`, `equality`, `required key`.
    pub rule: String,
    /// A sentence explaining the failure.
    pub message: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} (rule: {}; expected {}, actual {})",
            self.part, self.path, self.message, self.rule, self.expected, self.actual
        )
    }
}

/// Whether an actual object may have keys the expected example lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnexpectedKeys {
    /// Responses and messages: extra keys are fine.
    Allowed,
    /// Requests: extra keys are mismatches.
    Forbidden,
}

/// A request as received (by the consumer-side mock server).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActualRequest {
    /// Method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Decoded query parameters in order of appearance.
    pub query: Vec<(String, String)>,
    /// Headers in order of appearance (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// Raw body; empty when there is none.
    pub body: Vec<u8>,
}

/// A response as received from the real provider.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActualResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order of appearance (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// Raw body; empty when there is none.
    pub body: Vec<u8>,
}

/// The request exactly as the pact's example describes it: what a consumer following the
/// example sends.
pub(crate) fn example_request(request: &HttpRequest) -> ActualRequest {
    ActualRequest {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request
            .query
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect(),
        headers: header_pairs(&request.headers),
        body: example_bytes(request.body.as_ref()),
    }
}

/// The response exactly as the pact's example describes it.
pub(crate) fn example_response(response: &HttpResponse) -> ActualResponse {
    ActualResponse {
        status: response.status,
        headers: header_pairs(&response.headers),
        body: example_bytes(response.body.as_ref()),
    }
}

fn header_pairs(map: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    map.iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
        .collect()
}

/// The bytes of an example body on the wire.
fn example_bytes(body: Option<&Body>) -> Vec<u8> {
    match body {
        None => Vec::new(),
        Some(b) => match (&b.content, b.encoding) {
            (Value::String(s), BodyEncoding::Json) => s.clone().into_bytes(),
            (Value::String(s), BodyEncoding::Base64) => base64_decode(s).unwrap_or_default(),
            (Value::String(s), BodyEncoding::None) if !b.is_json() => s.clone().into_bytes(),
            (other, _) => serde_json::to_vec(other).unwrap_or_default(),
        },
    }
}

/// Compares a response from the provider with the pact's expected response.
pub fn match_response(expected: &HttpResponse, actual: &ActualResponse) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let status_rules = expected
        .matching_rules
        .category(Category::Status)
        .values()
        .next();
    let (e, a) = (Value::from(expected.status), Value::from(actual.status));
    match status_rules {
        Some(rules) => out.extend(apply_rule_list(
            Part::Status,
            "$".into(),
            rules,
            &e,
            &a,
            false,
            false,
        )),
        None if e != a => out.push(Mismatch {
            part: Part::Status,
            path: "$".into(),
            expected: e.to_string(),
            actual: a.to_string(),
            rule: "equality".into(),
            message: format!("expected status {e} but got {a}"),
        }),
        None => {}
    }
    out.extend(match_headers(
        &expected.headers,
        &actual.headers,
        expected.matching_rules.category(Category::Header),
    ));
    out.extend(match_body(
        expected.body.as_ref(),
        &actual.body,
        expected.matching_rules.category(Category::Body),
        UnexpectedKeys::Allowed,
    ));
    out
}

/// Compares a request received by the mock server with the pact's expected request.
pub fn match_request(expected: &HttpRequest, actual: &ActualRequest) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if !expected.method.eq_ignore_ascii_case(&actual.method) {
        out.push(Mismatch {
            part: Part::Method,
            path: "$".into(),
            expected: expected.method.clone(),
            actual: actual.method.clone(),
            rule: "equality".into(),
            message: format!(
                "expected method {} but got {}",
                expected.method, actual.method
            ),
        });
    }
    let rules = &expected.matching_rules;
    let (e, a) = (
        Value::String(expected.path.clone()),
        Value::String(actual.path.clone()),
    );
    match rules.category(Category::Path).values().next() {
        Some(list) => out.extend(apply_rule_list(
            Part::Path,
            "$".into(),
            list,
            &e,
            &a,
            false,
            true,
        )),
        None if e != a => out.push(Mismatch {
            part: Part::Path,
            path: "$".into(),
            expected: expected.path.clone(),
            actual: actual.path.clone(),
            rule: "equality".into(),
            message: format!("expected path {} but got {}", expected.path, actual.path),
        }),
        None => {}
    }
    out.extend(match_query(
        &expected.query,
        &actual.query,
        rules.category(Category::Query),
    ));
    out.extend(match_headers(
        &expected.headers,
        &actual.headers,
        rules.category(Category::Header),
    ));
    out.extend(match_body(
        expected.body.as_ref(),
        &actual.body,
        rules.category(Category::Body),
        UnexpectedKeys::Forbidden,
    ));
    out
}

/// Compares a message produced by the provider with the pact's expected message.
pub fn match_message(
    expected: &Message,
    actual_contents: &Value,
    actual_metadata: &BTreeMap<String, Value>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let body_rules = expected.matching_rules.category(Category::Body);
    let contents = decoded_content(&expected.contents);
    match contents {
        Ok(e) => out.extend(match_json(
            &e,
            actual_contents,
            body_rules,
            UnexpectedKeys::Allowed,
        )),
        Err(why) => out.push(body_error(&expected.contents.content, actual_contents, why)),
    }
    let meta_rules = expected.matching_rules.category(Category::Metadata);
    for (key, e) in &expected.metadata {
        let Some(a) = actual_metadata.get(key) else {
            out.push(Mismatch {
                part: Part::Metadata,
                path: key.clone(),
                expected: e.to_string(),
                actual: MISSING.into(),
                rule: "required key".into(),
                message: format!("expected metadata {key:?} is missing"),
            });
            continue;
        };
        let rules = meta_rules
            .get(key)
            .or_else(|| meta_rules.get(&format!("$.{key}")));
        match rules {
            Some(list) => out.extend(apply_rule_list(
                Part::Metadata,
                key.clone(),
                list,
                e,
                a,
                false,
                a.is_string(),
            )),
            None if e != a => out.push(Mismatch {
                part: Part::Metadata,
                path: key.clone(),
                expected: e.to_string(),
                actual: a.to_string(),
                rule: "equality".into(),
                message: format!("metadata {key:?}: expected {e} but got {a}"),
            }),
            None => {}
        }
    }
    out
}

/// Compares two JSON documents under body rules keyed by JSON path.
pub fn match_json(
    expected: &Value,
    actual: &Value,
    rules: &BTreeMap<String, RuleList>,
    unexpected_keys: UnexpectedKeys,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    BodyComparison::new(rules, unexpected_keys, Part::Body).compare(
        &Location::root(),
        expected,
        actual,
        &mut out,
    );
    out
}

/// Applies a rule list to one value, combining AND/OR, and reports failures at `path`.
pub(crate) fn apply_rule_list(
    part: Part,
    path: String,
    rules: &RuleList,
    expected: &Value,
    actual: &Value,
    cascaded: bool,
    text: bool,
) -> Vec<Mismatch> {
    let failures: Vec<(String, String)> = rules
        .matchers
        .iter()
        .filter_map(|m| {
            value::check(m, expected, actual, cascaded, text)
                .err()
                .map(|why| (m.describe(), why))
        })
        .collect();
    let show = |v: &Value| {
        if text {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        } else {
            v.to_string()
        }
    };
    let mismatch = |rule: String, message: String| Mismatch {
        part,
        path: path.clone(),
        expected: show(expected),
        actual: show(actual),
        rule,
        message,
    };
    match rules.combine {
        Combine::And => failures
            .into_iter()
            .map(|(rule, why)| mismatch(rule, why))
            .collect(),
        Combine::Or if !failures.is_empty() && failures.len() == rules.matchers.len() => {
            let why: Vec<String> = failures.into_iter().map(|(_, w)| w).collect();
            vec![mismatch(
                rules.describe(),
                format!("none of the alternatives matched: {}", why.join("; ")),
            )]
        }
        Combine::Or => Vec::new(),
    }
}

fn body_error(expected: &Value, actual: &Value, why: String) -> Mismatch {
    Mismatch {
        part: Part::Body,
        path: "$".into(),
        expected: expected.to_string(),
        actual: actual.to_string(),
        rule: "body".into(),
        message: why,
    }
}

/// The expected body's content as a JSON value (decoding `"encoded": "json"`).
fn decoded_content(body: &Body) -> Result<Value, String> {
    match (body.encoding, &body.content) {
        (BodyEncoding::Json, Value::String(s)) => serde_json::from_str(s)
            .map_err(|e| format!("the contract's JSON-encoded body does not parse: {e}")),
        _ => Ok(body.content.clone()),
    }
}

fn match_body(
    expected: Option<&Body>,
    actual: &[u8],
    rules: &BTreeMap<String, RuleList>,
    keys: UnexpectedKeys,
) -> Vec<Mismatch> {
    let Some(body) = expected else {
        return Vec::new();
    };
    let expected_content = match decoded_content(body) {
        Ok(v) => v,
        Err(why) => return vec![body_error(&body.content, &Value::Null, why)],
    };
    if actual.is_empty() && !expected_content.is_null() {
        return vec![Mismatch {
            part: Part::Body,
            path: "$".into(),
            expected: expected_content.to_string(),
            actual: MISSING.into(),
            rule: "body".into(),
            message: "expected a body but there was none".into(),
        }];
    }
    if body.encoding == BodyEncoding::Base64 {
        let wanted = body.content.as_str().and_then(base64_decode);
        return match wanted {
            Some(bytes) if bytes == actual => Vec::new(),
            Some(_) => vec![body_error(
                &body.content,
                &Value::String(format!("{} bytes", actual.len())),
                "binary body differs".into(),
            )],
            None => vec![body_error(
                &body.content,
                &Value::Null,
                "the contract's base64 body does not decode".into(),
            )],
        };
    }
    if body.is_json() || body.encoding == BodyEncoding::Json {
        match serde_json::from_slice::<Value>(actual) {
            Ok(a) => match_json(&expected_content, &a, rules, keys),
            Err(e) => vec![body_error(
                &expected_content,
                &Value::String(String::from_utf8_lossy(actual).into_owned()),
                format!("the actual body is not JSON: {e}"),
            )],
        }
    } else {
        let a = Value::String(String::from_utf8_lossy(actual).into_owned());
        match rules.get("$") {
            Some(list) => apply_rule_list(
                Part::Body,
                "$".into(),
                list,
                &expected_content,
                &a,
                false,
                true,
            ),
            None if expected_content != a => vec![body_error(
                &expected_content,
                &a,
                "text body differs".into(),
            )],
            None => Vec::new(),
        }
    }
}

fn header_rules<'r>(rules: &'r BTreeMap<String, RuleList>, name: &str) -> Option<&'r RuleList> {
    rules
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name) || k.eq_ignore_ascii_case(&format!("$.{name}")))
        .map(|(_, v)| v)
}

fn split_items(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Media type equal (case-insensitive) and every stated parameter present with the same value
/// (charset compared case-insensitively).
fn content_types_match(expected: &str, actual: &str) -> bool {
    let parse = |s: &str| {
        let mut parts = s.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_string(),
                )
            })
            .collect();
        (media, params)
    };
    let (em, ep) = parse(expected);
    let (am, ap) = parse(actual);
    em == am
        && ep.iter().all(|(k, v)| {
            ap.iter().any(|(ak, av)| {
                ak == k
                    && if k == "charset" {
                        av.eq_ignore_ascii_case(v)
                    } else {
                        av == v
                    }
            })
        })
}

fn match_headers(
    expected: &BTreeMap<String, Vec<String>>,
    actual: &[(String, String)],
    rules: &BTreeMap<String, RuleList>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for (name, values) in expected {
        let found: Vec<String> = actual
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect();
        let e_text = values.join(", ");
        if found.is_empty() {
            out.push(Mismatch {
                part: Part::Header,
                path: name.clone(),
                expected: e_text,
                actual: MISSING.into(),
                rule: "required header".into(),
                message: format!("expected header {name:?} is missing"),
            });
            continue;
        }
        let a_text = found.join(", ");
        let mismatch = |rule: &str, message: String| Mismatch {
            part: Part::Header,
            path: name.clone(),
            expected: e_text.clone(),
            actual: a_text.clone(),
            rule: rule.into(),
            message,
        };
        if let Some(list) = header_rules(rules, name) {
            out.extend(apply_rule_list(
                Part::Header,
                name.clone(),
                list,
                &Value::String(e_text.clone()),
                &Value::String(a_text.clone()),
                false,
                true,
            ));
        } else if name.eq_ignore_ascii_case("content-type") {
            if !content_types_match(&e_text, &a_text) {
                out.push(mismatch(
                    "content type",
                    format!("expected content type {e_text:?} but got {a_text:?}"),
                ));
            }
        } else if split_items(values) != split_items(&found) {
            out.push(mismatch(
                "equality",
                format!("header {name:?}: expected {e_text:?} but got {a_text:?}"),
            ));
        }
    }
    out
}

fn match_query(
    expected: &BTreeMap<String, Vec<String>>,
    actual: &[(String, String)],
    rules: &BTreeMap<String, RuleList>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for (name, values) in expected {
        let found: Vec<String> = actual
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect();
        let mismatch = |rule: &str, message: String| Mismatch {
            part: Part::Query,
            path: name.clone(),
            expected: values.join("&"),
            actual: if found.is_empty() {
                MISSING.into()
            } else {
                found.join("&")
            },
            rule: rule.into(),
            message,
        };
        if found.is_empty() {
            out.push(mismatch(
                "required parameter",
                format!("expected query parameter {name:?} is missing"),
            ));
            continue;
        }
        match header_rules(rules, name) {
            Some(list) => {
                let example = Value::String(values.first().cloned().unwrap_or_default());
                for a in &found {
                    out.extend(apply_rule_list(
                        Part::Query,
                        name.clone(),
                        list,
                        &example,
                        &Value::String(a.clone()),
                        false,
                        true,
                    ));
                }
            }
            None if *values != found => out.push(mismatch(
                "equality",
                format!("query parameter {name:?}: expected {values:?} but got {found:?}"),
            )),
            None => {}
        }
    }
    let mut seen = Vec::new();
    for (name, value) in actual {
        if !expected.contains_key(name) && !seen.contains(name) {
            seen.push(name.clone());
            out.push(Mismatch {
                part: Part::Query,
                path: name.clone(),
                expected: MISSING.into(),
                actual: value.clone(),
                rule: "no unexpected parameters".into(),
                message: format!("unexpected query parameter {name:?}"),
            });
        }
    }
    out
}

/// Standard base64 (with or without padding); `None` on invalid input.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        buffer = (buffer << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
