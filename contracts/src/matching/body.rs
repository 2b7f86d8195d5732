//! Structural comparison of an expected JSON example with an actual JSON document under body
//! matching rules.
//!
//! The walk follows Pact: at every location the most specific applicable rule list is chosen
//! ([`crate::path::JsonPath::weight`]); rules declared on an ancestor cascade down (except
//! `values`, `eachKey`, `eachValue` and `arrayContains`, which act on the collection they are
//! declared on). Without a rule: objects must contain every expected key (and, for requests,
//! no other), arrays must have the same length and are compared pairwise, and values must be
//! equal. A type-like rule on an array (`type`, `min`/`max`, `notEmpty`, `values`) compares every
//! actual element against the first expected element.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::value::{check, type_name};
use super::{apply_rule_list, Mismatch, Part, UnexpectedKeys};
use crate::model::{Combine, Matcher, RuleList};
use crate::path::{JsonPath, Location, PathToken};

/// Compares JSON documents under one category of body rules.
#[derive(Debug, Clone)]
pub(crate) struct BodyComparison {
    rules: Vec<(JsonPath, RuleList)>,
    unexpected_keys: UnexpectedKeys,
    part: Part,
}

impl BodyComparison {
    pub(crate) fn new(
        rules: &BTreeMap<String, RuleList>,
        unexpected_keys: UnexpectedKeys,
        part: Part,
    ) -> Self {
        let rules = rules
            .iter()
            // Keys were validated when the pact was read; a hand-built bad key cannot apply.
            .filter_map(|(k, v)| JsonPath::parse(k).ok().map(|p| (p, v.clone())))
            .collect();
        BodyComparison {
            rules,
            unexpected_keys,
            part,
        }
    }

    /// A copy with an extra rule list at `at` followed by `tail` (used to push the inner rules
    /// of `eachValue` onto every element).
    fn with_rule(&self, at: &Location, tail: PathToken, rules: RuleList) -> Self {
        let mut text = at.to_string();
        text.push_str(match tail {
            PathToken::AnyIndex => "[*]",
            _ => ".*",
        });
        let mut copy = self.clone();
        if let Ok(path) = JsonPath::parse(&text) {
            copy.rules.push((path, rules));
        }
        copy
    }

    /// The most specific rule list applying at `at`, and whether it cascaded from an ancestor.
    fn select(&self, at: &Location) -> Option<(RuleList, bool)> {
        let mut best: Option<(usize, RuleList, bool)> = None;
        for (path, list) in &self.rules {
            let Some(weight) = path.weight(at) else {
                continue;
            };
            let list = if weight.cascaded {
                let matchers: Vec<Matcher> = list
                    .matchers
                    .iter()
                    .filter(|m| m.cascades())
                    .cloned()
                    .collect();
                RuleList {
                    combine: list.combine,
                    matchers,
                }
            } else {
                list.clone()
            };
            if list.matchers.is_empty() {
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|(score, _, _)| weight.score > *score)
            {
                best = Some((weight.score, list, weight.cascaded));
            }
        }
        best.map(|(_, list, cascaded)| (list, cascaded))
    }

    pub(crate) fn compare(
        &self,
        at: &Location,
        expected: &Value,
        actual: &Value,
        out: &mut Vec<Mismatch>,
    ) {
        let selected = self.select(at);
        match (expected, actual, selected) {
            (Value::Object(e), Value::Object(a), selected) => {
                self.compare_objects(at, e, a, selected, out)
            }
            (Value::Array(e), Value::Array(a), selected) => {
                self.compare_arrays(at, e, a, selected, out)
            }
            (_, _, Some((rules, cascaded))) => out.extend(apply_rule_list(
                self.part,
                at.to_string(),
                &rules,
                expected,
                actual,
                cascaded,
                false,
            )),
            (Value::Object(_) | Value::Array(_), _, None)
            | (_, Value::Object(_) | Value::Array(_), None) => out.push(self.mismatch(
                at,
                expected,
                actual,
                "type",
                format!(
                    "expected a {} but got a {}",
                    type_name(expected),
                    type_name(actual)
                ),
            )),
            (_, _, None) => {
                if expected != actual {
                    out.push(self.mismatch(
                        at,
                        expected,
                        actual,
                        "equality",
                        format!("expected {expected} but got {actual}"),
                    ));
                }
            }
        }
    }

    fn mismatch(
        &self,
        at: &Location,
        expected: &Value,
        actual: &Value,
        rule: &str,
        message: String,
    ) -> Mismatch {
        Mismatch {
            part: self.part,
            path: at.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
            rule: rule.to_string(),
            message,
        }
    }

    fn compare_objects(
        &self,
        at: &Location,
        expected: &Map<String, Value>,
        actual: &Map<String, Value>,
        selected: Option<(RuleList, bool)>,
        out: &mut Vec<Mismatch>,
    ) {
        let (e_value, a_value) = (
            Value::Object(expected.clone()),
            Value::Object(actual.clone()),
        );
        let Some((rules, cascaded)) = selected else {
            self.compare_keys(at, expected, actual, out);
            return;
        };
        let dynamic_keys = rules.matchers.iter().any(|m| {
            matches!(
                m,
                Matcher::Values | Matcher::EachKey(_) | Matcher::EachValue(_)
            )
        });
        let template = expected.values().next();
        let mut per_matcher = Vec::new();
        for m in &rules.matchers {
            let mut found = Vec::new();
            match m {
                Matcher::EachKey(each) => {
                    for key in actual.keys() {
                        let key_value = Value::String(key.clone());
                        for inner in &each.rules {
                            if let Err(why) = check(inner, &key_value, &key_value, false, true) {
                                found.push(self.mismatch(
                                    &at.field(key),
                                    &Value::String(inner.describe()),
                                    &key_value,
                                    &m.describe(),
                                    format!("key {key:?}: {why}"),
                                ));
                            }
                        }
                    }
                }
                Matcher::EachValue(each) => {
                    let inner = RuleList {
                        combine: Combine::And,
                        matchers: each.rules.clone(),
                    };
                    let with_inner = self.with_rule(at, PathToken::AnyField, inner);
                    for (key, value) in actual {
                        let example = expected.get(key).or(template).unwrap_or(value);
                        with_inner.compare(&at.field(key), example, value, &mut found);
                    }
                }
                Matcher::Values => {
                    for (key, value) in actual {
                        let example = expected.get(key).or(template).unwrap_or(value);
                        self.compare(&at.field(key), example, value, &mut found);
                    }
                }
                other => {
                    if let Err(why) = check(other, &e_value, &a_value, cascaded, false) {
                        found.push(self.mismatch(at, &e_value, &a_value, &other.describe(), why));
                    }
                }
            }
            per_matcher.push(found);
        }
        out.extend(combine(rules.combine, per_matcher));
        if !dynamic_keys {
            self.compare_keys(at, expected, actual, out);
        }
    }

    /// Default object comparison: every expected key present and matching; unexpected keys
    /// are mismatches only when the comparison forbids them (requests).
    fn compare_keys(
        &self,
        at: &Location,
        expected: &Map<String, Value>,
        actual: &Map<String, Value>,
        out: &mut Vec<Mismatch>,
    ) {
        for (key, e) in expected {
            match actual.get(key) {
                Some(a) => self.compare(&at.field(key), e, a, out),
                None => out.push(Mismatch {
                    part: self.part,
                    path: at.field(key).to_string(),
                    expected: e.to_string(),
                    actual: super::MISSING.into(),
                    rule: "required key".into(),
                    message: format!("expected key {key:?} is missing"),
                }),
            }
        }
        if self.unexpected_keys == UnexpectedKeys::Forbidden {
            for (key, a) in actual.iter().filter(|(k, _)| !expected.contains_key(*k)) {
                out.push(Mismatch {
                    part: self.part,
                    path: at.field(key).to_string(),
                    expected: super::MISSING.into(),
                    actual: a.to_string(),
                    rule: "no unexpected keys".into(),
                    message: format!("unexpected key {key:?} (requests may not carry keys the contract does not state)"),
                });
            }
        }
    }

    fn compare_arrays(
        &self,
        at: &Location,
        expected: &[Value],
        actual: &[Value],
        selected: Option<(RuleList, bool)>,
        out: &mut Vec<Mismatch>,
    ) {
        let (e_value, a_value) = (
            Value::Array(expected.to_vec()),
            Value::Array(actual.to_vec()),
        );
        let Some((rules, cascaded)) = selected else {
            if expected.len() != actual.len() {
                out.push(self.mismatch(
                    at,
                    &e_value,
                    &a_value,
                    "array length",
                    format!(
                        "expected an array of {} element(s) but got {}",
                        expected.len(),
                        actual.len()
                    ),
                ));
            }
            for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
                self.compare(&at.index(i), e, a, out);
            }
            return;
        };
        // Every actual element against the first example element (computed once; shared by the
        // type-like matchers of the list).
        let mut by_template = Vec::new();
        if let Some(template) = expected.first() {
            for (i, a) in actual.iter().enumerate() {
                self.compare(&at.index(i), template, a, &mut by_template);
            }
        }
        let mut per_matcher = Vec::new();
        for m in &rules.matchers {
            let mut found = Vec::new();
            match m {
                Matcher::Type { .. } | Matcher::NotEmpty | Matcher::Values => {
                    if let Err(why) = check(m, &e_value, &a_value, cascaded, false) {
                        found.push(self.mismatch(at, &e_value, &a_value, &m.describe(), why));
                    }
                    found.extend(by_template.iter().cloned());
                }
                Matcher::EachValue(each) => {
                    let inner = RuleList {
                        combine: Combine::And,
                        matchers: each.rules.clone(),
                    };
                    let with_inner = self.with_rule(at, PathToken::AnyIndex, inner);
                    for (i, a) in actual.iter().enumerate() {
                        with_inner.compare(
                            &at.index(i),
                            expected.first().unwrap_or(a),
                            a,
                            &mut found,
                        );
                    }
                }
                Matcher::ArrayContains(variants) => {
                    for (n, variant) in variants.iter().enumerate() {
                        let Some(example) = expected.get(variant.index) else {
                            found.push(self.mismatch(
                                at,
                                &e_value,
                                &a_value,
                                &m.describe(),
                                format!(
                                    "variant {n} refers to index {} outside the expected array",
                                    variant.index
                                ),
                            ));
                            continue;
                        };
                        let variant_rules =
                            BodyComparison::new(&variant.rules, self.unexpected_keys, self.part);
                        let matched = actual.iter().any(|a| {
                            let mut probe = Vec::new();
                            variant_rules.compare(&Location::root(), example, a, &mut probe);
                            probe.is_empty()
                        });
                        if !matched {
                            found.push(self.mismatch(
                                at,
                                example,
                                &a_value,
                                &m.describe(),
                                format!("no element matches variant {n} ({example})"),
                            ));
                        }
                    }
                }
                other => {
                    if let Err(why) = check(other, &e_value, &a_value, cascaded, false) {
                        found.push(self.mismatch(at, &e_value, &a_value, &other.describe(), why));
                    }
                }
            }
            per_matcher.push(found);
        }
        out.extend(combine(rules.combine, per_matcher));
    }
}

/// Merges per-matcher results: AND keeps every mismatch; OR passes when one matcher passed.
fn combine(logic: Combine, per_matcher: Vec<Vec<Mismatch>>) -> Vec<Mismatch> {
    if logic == Combine::Or && per_matcher.iter().any(Vec::is_empty) {
        return Vec::new();
    }
    let mut out: Vec<Mismatch> = Vec::new();
    for m in per_matcher.into_iter().flatten() {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}
