//! Matcher-by-matcher tests: each proves a rule both accepts and rejects, and that the report
//! names the right path, expected and actual values.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::model::{ArrayContainsVariant, EachRule, Matcher, MatchingRules, StatusClass};

fn rules(entries: &[(&str, Vec<Matcher>)]) -> BTreeMap<String, RuleList> {
    entries
        .iter()
        .map(|(k, m)| {
            (
                k.to_string(),
                RuleList {
                    combine: Combine::And,
                    matchers: m.clone(),
                },
            )
        })
        .collect()
}

fn check_one(rule: Matcher, expected: Value, actual: Value) -> Vec<Mismatch> {
    match_json(
        &json!({ "v": expected }),
        &json!({ "v": actual }),
        &rules(&[("$.v", vec![rule])]),
        UnexpectedKeys::Allowed,
    )
}

fn assert_single(found: &[Mismatch], path: &str, expected: &str, actual: &str) {
    assert_eq!(found.len(), 1, "expected one mismatch, got {found:#?}");
    assert_eq!(found[0].path, path);
    assert_eq!(found[0].expected, expected);
    assert_eq!(found[0].actual, actual);
}

#[test]
fn equality_without_rules_reports_path_and_values() {
    let found = match_json(
        &json!({"a": {"b": [1, 2]}}),
        &json!({"a": {"b": [1, 3]}}),
        &BTreeMap::new(),
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$.a.b[1]", "2", "3");
    assert_eq!(found[0].rule, "equality");
}

#[test]
fn equality_rule_resets_a_cascading_type_rule() {
    let r = rules(&[
        (
            "$",
            vec![Matcher::Type {
                min: None,
                max: None,
            }],
        ),
        ("$.status", vec![Matcher::Equality]),
    ]);
    assert!(match_json(
        &json!({"id": 1, "status": "OK"}),
        &json!({"id": 9, "status": "OK"}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    let found = match_json(
        &json!({"id": 1, "status": "OK"}),
        &json!({"id": 9, "status": "BAD"}),
        &r,
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$.status", "\"OK\"", "\"BAD\"");
}

#[test]
fn type_accepts_same_type_and_rejects_other() {
    assert!(check_one(
        Matcher::Type {
            min: None,
            max: None
        },
        json!("a"),
        json!("zzz")
    )
    .is_empty());
    let found = check_one(
        Matcher::Type {
            min: None,
            max: None,
        },
        json!("a"),
        json!(5),
    );
    assert_single(&found, "$.v", "\"a\"", "5");
    assert_eq!(found[0].rule, "type");
}

#[test]
fn regex_must_match_the_whole_value() {
    assert!(check_one(Matcher::Regex("\\d+".into()), json!("1"), json!("123")).is_empty());
    assert_single(
        &check_one(Matcher::Regex("\\d+".into()), json!("1"), json!("12a")),
        "$.v",
        "\"1\"",
        "\"12a\"",
    );
}

#[test]
fn integer_decimal_number_boolean_null() {
    assert!(check_one(Matcher::Integer, json!(1), json!(-7)).is_empty());
    assert_single(
        &check_one(Matcher::Integer, json!(1), json!(1.5)),
        "$.v",
        "1",
        "1.5",
    );
    assert_single(
        &check_one(Matcher::Integer, json!(1), json!("1")),
        "$.v",
        "1",
        "\"1\"",
    );
    assert!(check_one(Matcher::Decimal, json!(1.5), json!(2.25)).is_empty());
    assert_single(
        &check_one(Matcher::Decimal, json!(1.5), json!(2)),
        "$.v",
        "1.5",
        "2",
    );
    assert!(check_one(Matcher::Number, json!(1), json!(2.5)).is_empty());
    assert_single(
        &check_one(Matcher::Number, json!(1), json!("2")),
        "$.v",
        "1",
        "\"2\"",
    );
    assert!(check_one(Matcher::Boolean, json!(true), json!(false)).is_empty());
    assert!(check_one(Matcher::Boolean, json!(true), json!("false")).is_empty());
    assert_single(
        &check_one(Matcher::Boolean, json!(true), json!(0)),
        "$.v",
        "true",
        "0",
    );
    assert!(check_one(Matcher::Null, json!(null), json!(null)).is_empty());
    assert_single(
        &check_one(Matcher::Null, json!(null), json!("x")),
        "$.v",
        "null",
        "\"x\"",
    );
}

#[test]
fn include_checks_substring() {
    assert!(check_one(
        Matcher::Include("ell".into()),
        json!("hello"),
        json!("yellow")
    )
    .is_empty());
    assert_single(
        &check_one(
            Matcher::Include("ell".into()),
            json!("hello"),
            json!("world"),
        ),
        "$.v",
        "\"hello\"",
        "\"world\"",
    );
}

#[test]
fn date_time_and_timestamp_formats() {
    assert!(check_one(
        Matcher::Date(Some("yyyy-MM-dd".into())),
        json!("2024-01-01"),
        json!("2024-02-29")
    )
    .is_empty());
    assert_single(
        &check_one(
            Matcher::Date(Some("yyyy-MM-dd".into())),
            json!("2024-01-01"),
            json!("2023-02-29"),
        ),
        "$.v",
        "\"2024-01-01\"",
        "\"2023-02-29\"",
    );
    assert!(check_one(
        Matcher::Time(Some("HH:mm:ss".into())),
        json!("10:00:00"),
        json!("23:15:00")
    )
    .is_empty());
    assert_eq!(
        check_one(
            Matcher::Time(Some("HH:mm:ss".into())),
            json!("10:00:00"),
            json!("25:00:00")
        )
        .len(),
        1
    );
    let ts = Matcher::Timestamp(Some("yyyy-MM-dd'T'HH:mm:ss.SSSX".into()));
    assert!(check_one(
        ts.clone(),
        json!("2024-01-01T00:00:00.000Z"),
        json!("2024-06-30T12:34:56.789+02")
    )
    .is_empty());
    assert_eq!(
        check_one(
            ts,
            json!("2024-01-01T00:00:00.000Z"),
            json!("2024-06-30 12:34:56")
        )
        .len(),
        1
    );
    assert!(check_one(
        Matcher::Timestamp(None),
        json!("2024-01-01T00:00:00Z"),
        json!("2024-06-30T12:34:56.5+01:00")
    )
    .is_empty());
    assert_eq!(
        check_one(
            Matcher::Date(None),
            json!("2024-01-01"),
            json!("01/02/2024")
        )
        .len(),
        1
    );
}

#[test]
fn not_empty_and_semver() {
    assert!(check_one(Matcher::NotEmpty, json!("a"), json!("b")).is_empty());
    assert_single(
        &check_one(Matcher::NotEmpty, json!("a"), json!("")),
        "$.v",
        "\"a\"",
        "\"\"",
    );
    assert_eq!(check_one(Matcher::NotEmpty, json!([1]), json!([])).len(), 1);
    assert!(check_one(Matcher::Semver, json!("1.0.0"), json!("2.10.3-rc.1")).is_empty());
    assert_eq!(
        check_one(Matcher::Semver, json!("1.0.0"), json!("2.10")).len(),
        1
    );
}

#[test]
fn min_max_on_arrays_check_length_and_each_element_against_the_first_example() {
    let r = rules(&[(
        "$.items",
        vec![Matcher::Type {
            min: Some(1),
            max: Some(2),
        }],
    )]);
    let expected = json!({"items": [{"id": 1, "name": "a"}]});
    assert!(match_json(
        &expected,
        &json!({"items": [{"id": 5, "name": "x"}, {"id": 6, "name": "y"}]}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    let found = match_json(
        &expected,
        &json!({"items": []}),
        &r,
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$.items", "[{\"id\":1,\"name\":\"a\"}]", "[]");
    let found = match_json(
        &expected,
        &json!({"items": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]}),
        &r,
        UnexpectedKeys::Allowed,
    );
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains("at most 2"));
    let found = match_json(
        &expected,
        &json!({"items": [{"id": 5, "name": "x"}, {"id": "6", "name": "y"}]}),
        &r,
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$.items[1].id", "1", "\"6\"");
}

#[test]
fn more_specific_wildcard_rule_beats_cascading_parent() {
    let r = rules(&[
        (
            "$.items",
            vec![Matcher::Type {
                min: Some(1),
                max: None,
            }],
        ),
        ("$.items[*].id", vec![Matcher::Regex("\\d{3}".into())]),
    ]);
    let expected = json!({"items": [{"id": "100"}]});
    assert!(match_json(
        &expected,
        &json!({"items": [{"id": "123"}, {"id": "456"}]}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    let found = match_json(
        &expected,
        &json!({"items": [{"id": "123"}, {"id": "45"}]}),
        &r,
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$.items[1].id", "\"100\"", "\"45\"");
    assert!(found[0].rule.starts_with("regex"));
}

#[test]
fn root_star_rule_applies_to_every_field() {
    let r = rules(&[(
        "$.*",
        vec![Matcher::Type {
            min: None,
            max: None,
        }],
    )]);
    assert!(match_json(
        &json!({"a": 1, "b": "x"}),
        &json!({"a": 2, "b": "y"}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    assert_eq!(
        match_json(
            &json!({"a": 1}),
            &json!({"a": "2"}),
            &r,
            UnexpectedKeys::Allowed
        )[0]
        .path,
        "$.a"
    );
}

#[test]
fn bracket_notation_keys_select_fields_with_dashes() {
    let r = rules(&[("$['x-y']", vec![Matcher::Integer])]);
    assert!(match_json(
        &json!({"x-y": 1}),
        &json!({"x-y": 2}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    assert_eq!(
        match_json(
            &json!({"x-y": 1}),
            &json!({"x-y": "a"}),
            &r,
            UnexpectedKeys::Allowed
        )[0]
        .path,
        "$['x-y']"
    );
}

#[test]
fn objects_missing_keys_always_and_unexpected_keys_only_for_requests() {
    let found = match_json(
        &json!({"a": 1, "b": 2}),
        &json!({"a": 1, "c": 3}),
        &BTreeMap::new(),
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$.b", "2", MISSING);
    let found = match_json(
        &json!({"a": 1}),
        &json!({"a": 1, "c": 3}),
        &BTreeMap::new(),
        UnexpectedKeys::Forbidden,
    );
    assert_single(&found, "$.c", MISSING, "3");
}

#[test]
fn arrays_without_rules_must_have_the_same_length() {
    let found = match_json(
        &json!([1, 2]),
        &json!([1, 2, 3]),
        &BTreeMap::new(),
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$", "[1,2]", "[1,2,3]");
}

#[test]
fn each_key_and_each_value() {
    let each_key = Matcher::EachKey(EachRule {
        rules: vec![Matcher::Regex("[a-z]+".into())],
        value: None,
    });
    let each_value = Matcher::EachValue(EachRule {
        rules: vec![Matcher::Type {
            min: None,
            max: None,
        }],
        value: None,
    });
    let r = rules(&[("$.m", vec![each_key, each_value])]);
    let expected = json!({"m": {"a": 1}});
    assert!(match_json(
        &expected,
        &json!({"m": {"x": 5, "y": 6}}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    let found = match_json(
        &expected,
        &json!({"m": {"x": 5, "Y1": 6}}),
        &r,
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$.m.Y1", "\"regex /[a-z]+/\"", "\"Y1\"");
    let found = match_json(
        &expected,
        &json!({"m": {"x": "5"}}),
        &r,
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$.m.x", "1", "\"5\"");
}

#[test]
fn each_value_on_arrays_applies_inner_rules_to_every_element() {
    let r = rules(&[(
        "$.tags",
        vec![Matcher::EachValue(EachRule {
            rules: vec![Matcher::Regex("[a-z]+".into())],
            value: None,
        })],
    )]);
    let expected = json!({"tags": ["a"]});
    assert!(match_json(
        &expected,
        &json!({"tags": ["x", "yz"]}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    assert_eq!(
        match_json(
            &expected,
            &json!({"tags": ["x", "Q"]}),
            &r,
            UnexpectedKeys::Allowed
        )[0]
        .path,
        "$.tags[1]"
    );
}

#[test]
fn values_matcher_ignores_keys() {
    let r = rules(&[
        ("$.m", vec![Matcher::Values]),
        (
            "$.m.*",
            vec![Matcher::Type {
                min: None,
                max: None,
            }],
        ),
    ]);
    let expected = json!({"m": {"a": {"n": 1}}});
    assert!(match_json(
        &expected,
        &json!({"m": {"q": {"n": 2}, "r": {"n": 3}}}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    assert_eq!(
        match_json(
            &expected,
            &json!({"m": {"q": {"n": "2"}}}),
            &r,
            UnexpectedKeys::Allowed
        )[0]
        .path,
        "$.m.q.n"
    );
}

#[test]
fn array_contains_needs_every_variant_somewhere() {
    let variant = |index, rules: BTreeMap<String, RuleList>| ArrayContainsVariant {
        index,
        rules,
        generators: None,
    };
    let r = rules(&[(
        "$.events",
        vec![Matcher::ArrayContains(vec![
            variant(0, rules(&[("$.id", vec![Matcher::Integer])])),
            variant(1, BTreeMap::new()),
        ])],
    )]);
    let expected = json!({"events": [{"kind": "created", "id": 1}, {"kind": "paid"}]});
    let actual =
        json!({"events": [{"kind": "paid"}, {"kind": "shipped"}, {"kind": "created", "id": 77}]});
    assert!(match_json(&expected, &actual, &r, UnexpectedKeys::Allowed).is_empty());
    let found = match_json(
        &expected,
        &json!({"events": [{"kind": "created", "id": 2}]}),
        &r,
        UnexpectedKeys::Allowed,
    );
    assert_single(
        &found,
        "$.events",
        "{\"kind\":\"paid\"}",
        "[{\"id\":2,\"kind\":\"created\"}]",
    );
}

#[test]
fn combine_or_passes_when_any_matcher_passes() {
    let list = RuleList {
        combine: Combine::Or,
        matchers: vec![Matcher::Null, Matcher::Integer],
    };
    let r = BTreeMap::from([("$.v".to_string(), list)]);
    assert!(match_json(
        &json!({"v": 1}),
        &json!({"v": null}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    assert!(match_json(
        &json!({"v": 1}),
        &json!({"v": 4}),
        &r,
        UnexpectedKeys::Allowed
    )
    .is_empty());
    let found = match_json(
        &json!({"v": 1}),
        &json!({"v": "x"}),
        &r,
        UnexpectedKeys::Allowed,
    );
    assert_single(&found, "$.v", "1", "\"x\"");
    assert_eq!(found[0].rule, "null or integer");
}

#[test]
fn combine_and_reports_each_failing_matcher() {
    let list = RuleList {
        combine: Combine::And,
        matchers: vec![Matcher::Regex("a.*".into()), Matcher::Include("z".into())],
    };
    let r = BTreeMap::from([("$.v".to_string(), list)]);
    assert_eq!(
        match_json(
            &json!({"v": "az"}),
            &json!({"v": "bb"}),
            &r,
            UnexpectedKeys::Allowed
        )
        .len(),
        2
    );
}

fn response(status: u16, rules: MatchingRules) -> HttpResponse {
    HttpResponse {
        status,
        headers: BTreeMap::from([
            (
                "Content-Type".into(),
                vec!["application/json; charset=UTF-8".into()],
            ),
            ("X-Tags".into(), vec!["a, b".into()]),
        ]),
        body: Some(Body::json(json!({"id": 1}))),
        matching_rules: rules,
        ..Default::default()
    }
}

fn actual(status: u16, headers: &[(&str, &str)], body: &str) -> ActualResponse {
    ActualResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn status_equality_and_status_code_classes() {
    let ok_headers = [
        ("content-type", "application/json;charset=utf-8"),
        ("x-tags", "a,b"),
    ];
    assert!(match_response(
        &response(200, MatchingRules::default()),
        &actual(200, &ok_headers, r#"{"id":1,"extra":true}"#)
    )
    .is_empty());
    let found = match_response(
        &response(200, MatchingRules::default()),
        &actual(201, &ok_headers, r#"{"id":1}"#),
    );
    assert_eq!(
        (
            found[0].part,
            found[0].expected.as_str(),
            found[0].actual.as_str()
        ),
        (Part::Status, "200", "201")
    );
    let mut rules = MatchingRules::default();
    rules.insert(
        Category::Status,
        "$",
        RuleList::single(Matcher::StatusCode(StatusClass::Success)),
    );
    assert!(match_response(
        &response(200, rules.clone()),
        &actual(204, &ok_headers, r#"{"id":1}"#)
    )
    .is_empty());
    let found = match_response(
        &response(200, rules),
        &actual(404, &ok_headers, r#"{"id":1}"#),
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].part, Part::Status);
    for (class, inside, outside) in [
        (StatusClass::Information, 101, 200),
        (StatusClass::Redirect, 302, 200),
        (StatusClass::ClientError, 404, 500),
        (StatusClass::ServerError, 503, 404),
        (StatusClass::NonError, 302, 400),
        (StatusClass::Error, 400, 399),
        (StatusClass::Codes(vec![200, 202]), 202, 201),
    ] {
        assert!(
            class.contains(inside) && !class.contains(outside),
            "{class:?}"
        );
    }
}

#[test]
fn headers_are_case_insensitive_and_comma_split_but_order_sensitive() {
    let e = response(200, MatchingRules::default());
    let found = match_response(
        &e,
        &actual(
            200,
            &[("content-type", "application/json"), ("X-TAGS", "b, a")],
            r#"{"id":1}"#,
        ),
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].path, "Content-Type");
    assert_eq!(found[1].path, "X-Tags");
    let found = match_response(
        &e,
        &actual(
            200,
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"id":1}"#,
        ),
    );
    assert_eq!(
        (found[0].path.as_str(), found[0].actual.as_str()),
        ("X-Tags", MISSING)
    );
}

#[test]
fn header_rules_apply_to_the_whole_value() {
    let mut rules = MatchingRules::default();
    rules.insert(
        Category::Header,
        "x-tags",
        RuleList::single(Matcher::Regex("[a-z, ]+".into())),
    );
    let e = response(200, rules);
    assert!(match_response(
        &e,
        &actual(
            200,
            &[
                ("content-type", "application/json;charset=UTF-8"),
                ("X-Tags", "q, r, s")
            ],
            r#"{"id":1}"#
        )
    )
    .is_empty());
}

#[test]
fn unparseable_or_missing_response_body_is_a_body_mismatch() {
    let e = response(200, MatchingRules::default());
    let h = [
        ("content-type", "application/json;charset=UTF-8"),
        ("x-tags", "a,b"),
    ];
    let found = match_response(&e, &actual(200, &h, "not json"));
    assert_eq!((found[0].part, found[0].path.as_str()), (Part::Body, "$"));
    let found = match_response(&e, &actual(200, &h, ""));
    assert_eq!(found[0].actual, MISSING);
}

#[test]
fn request_matching_checks_method_path_query_headers_and_strict_body() {
    let mut rules = MatchingRules::default();
    rules.insert(
        Category::Path,
        "$",
        RuleList::single(Matcher::Regex("/orders/\\d+".into())),
    );
    rules.insert(Category::Query, "page", RuleList::single(Matcher::Integer));
    let expected = HttpRequest {
        method: "POST".into(),
        path: "/orders/1".into(),
        query: BTreeMap::from([("page".into(), vec!["1".into()])]),
        headers: BTreeMap::from([("Accept".into(), vec!["application/json".into()])]),
        body: Some(Body::json(json!({"qty": 1}))),
        matching_rules: rules,
        ..Default::default()
    };
    let good = ActualRequest {
        method: "post".into(),
        path: "/orders/42".into(),
        query: vec![("page".into(), "7".into())],
        headers: vec![
            ("accept".into(), "application/json".into()),
            ("user-agent".into(), "x".into()),
        ],
        body: br#"{"qty": 1}"#.to_vec(),
    };
    assert!(match_request(&expected, &good).is_empty());
    let bad = ActualRequest {
        method: "PUT".into(),
        path: "/orders/abc".into(),
        query: vec![("page".into(), "x".into()), ("debug".into(), "1".into())],
        headers: vec![],
        body: br#"{"qty": 1, "secret": true}"#.to_vec(),
    };
    let parts: Vec<(Part, String)> = match_request(&expected, &bad)
        .into_iter()
        .map(|m| (m.part, m.path))
        .collect();
    assert_eq!(
        parts,
        vec![
            (Part::Method, "$".into()),
            (Part::Path, "$".into()),
            (Part::Query, "page".into()),
            (Part::Query, "debug".into()),
            (Part::Header, "Accept".into()),
            (Part::Body, "$.secret".into()),
        ]
    );
}

#[test]
fn message_contents_and_metadata() {
    let mut rules = MatchingRules::default();
    rules.insert(
        Category::Body,
        "$.orderId",
        RuleList::single(Matcher::Integer),
    );
    rules.insert(
        Category::Metadata,
        "key",
        RuleList::single(Matcher::Regex("order-\\d+".into())),
    );
    let message = Message {
        info: Default::default(),
        contents: Body::json(json!({"orderId": 1, "state": "PAID"})),
        metadata: BTreeMap::from([
            ("key".into(), json!("order-1")),
            ("topic".into(), json!("orders")),
        ]),
        matching_rules: rules,
        generators: Default::default(),
    };
    let meta = BTreeMap::from([
        ("key".into(), json!("order-99")),
        ("topic".into(), json!("orders")),
    ]);
    assert!(match_message(
        &message,
        &json!({"orderId": 99, "state": "PAID", "x": 1}),
        &meta
    )
    .is_empty());
    let meta = BTreeMap::from([("key".into(), json!("nope"))]);
    let found = match_message(&message, &json!({"orderId": "99", "state": "PAID"}), &meta);
    let summary: Vec<(Part, &str, &str)> = found
        .iter()
        .map(|m| (m.part, m.path.as_str(), m.actual.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Part::Body, "$.orderId", "\"99\""),
            (Part::Metadata, "key", "nope"),
            (Part::Metadata, "topic", MISSING)
        ]
    );
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z]{0,8}".prop_map(Value::String),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4).prop_map(|m| json!(m)),
        ]
    })
}

proptest! {
    #[test]
    fn type_matcher_accepts_any_scalar_of_the_same_json_type(a in scalar(), b in scalar()) {
        let found = check_one(Matcher::Type { min: None, max: None }, a.clone(), b.clone());
        prop_assert_eq!(found.is_empty(), std::mem::discriminant(&a) == std::mem::discriminant(&b));
    }

    #[test]
    fn equality_without_rules_accepts_only_equal_documents_under_strict_keys(a in any_json(), b in any_json()) {
        let found = match_json(&a, &b, &BTreeMap::new(), UnexpectedKeys::Forbidden);
        prop_assert_eq!(found.is_empty(), a == b);
    }

    #[test]
    fn a_document_always_matches_itself(a in any_json()) {
        prop_assert!(match_json(&a, &a, &BTreeMap::new(), UnexpectedKeys::Allowed).is_empty());
    }

    #[test]
    fn root_type_rule_accepts_any_document_of_the_same_shape_with_other_scalars(a in any_json()) {
        fn scramble(v: &Value) -> Value {
            match v {
                Value::String(s) => Value::String(format!("{s}x")),
                Value::Number(n) => json!(n.as_i64().unwrap_or(0).wrapping_add(1)),
                Value::Bool(b) => Value::Bool(!b),
                Value::Array(items) => Value::Array(items.iter().map(scramble).collect()),
                Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), scramble(v))).collect()),
                Value::Null => Value::Null,
            }
        }
        // Arrays are compared element-wise against their first element, so use homogeneous data.
        let r = rules(&[("$", vec![Matcher::Type { min: None, max: None }])]);
        let homogeneous = match &a { Value::Array(items) => Value::Array(items.iter().take(1).cloned().collect()), other => other.clone() };
        prop_assume!(!contains_heterogeneous_array(&homogeneous));
        prop_assert!(match_json(&homogeneous, &scramble(&homogeneous), &r, UnexpectedKeys::Allowed).is_empty());
    }
}

fn contains_heterogeneous_array(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.len() > 1 || items.iter().any(contains_heterogeneous_array),
        Value::Object(m) => m.values().any(contains_heterogeneous_array),
        _ => false,
    }
}
