use serde_json::{json, Value};

use super::*;

fn schema(name: &str, value: Value) -> Schema {
    Schema::from_value(name, value).unwrap()
}

fn order(properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

fn v1() -> Schema {
    schema(
        "v1.json",
        order(
            json!({
                "order_id": {"type": "string", "format": "uuid"},
                "quantity": {"type": ["integer", "string"], "minimum": 1},
                "note": {"type": "string"}
            }),
            &["order_id", "quantity", "note"],
        ),
    )
}

/// Every reported counterexample must really separate the two schemas.
fn assert_honest(report: &Report, writer: &Schema, reader: &Schema) {
    assert!(
        report.unverified.is_empty(),
        "unverified: {:?}",
        report.unverified
    );
    for change in &report.breaking {
        assert!(writer.is_valid(&change.counterexample), "{change}");
        assert!(!reader.is_valid(&change.counterexample), "{change}");
    }
}

#[test]
fn removing_a_required_field_breaks_forward_with_a_payload_lacking_it() {
    let old = v1();
    let new = schema(
        "v2.json",
        order(
            json!({
                "order_id": {"type": "string", "format": "uuid"},
                "quantity": {"type": ["integer", "string"], "minimum": 1}
            }),
            &["order_id", "quantity"],
        ),
    );
    let forward = check(&old, &new, Mode::Forward);
    assert_honest(&forward, &new, &old);
    assert_eq!(forward.breaking.len(), 1, "{:?}", forward.breaking);
    let change = &forward.breaking[0];
    assert_eq!(change.direction, Direction::Forward);
    assert_eq!(change.path, "$.note");
    assert!(
        change.change.contains("required by the reader"),
        "{}",
        change.change
    );
    assert!(change.counterexample.get("note").is_none());
    assert!(check(&old, &new, Mode::Backward).is_compatible());
    assert!(!check(&old, &new, Mode::Full).is_compatible());
}

#[test]
fn narrowing_a_type_breaks_backward_with_a_value_of_the_dropped_type() {
    let old = v1();
    let new = schema(
        "v2.json",
        order(
            json!({
                "order_id": {"type": "string", "format": "uuid"},
                "quantity": {"type": "integer", "minimum": 1},
                "note": {"type": "string"}
            }),
            &["order_id", "quantity", "note"],
        ),
    );
    let backward = check(&old, &new, Mode::Backward);
    assert_honest(&backward, &old, &new);
    assert_eq!(backward.breaking.len(), 1, "{:?}", backward.breaking);
    let change = &backward.breaking[0];
    assert_eq!(change.path, "$.quantity");
    assert!(change.change.contains("type narrowed"), "{}", change.change);
    assert!(change.counterexample["quantity"].is_string());
    assert!(check(&old, &new, Mode::Forward).is_compatible());
}

#[test]
fn adding_a_required_field_breaks_backward_because_old_data_lacks_it() {
    let old = v1();
    let mut value = v1().value().clone();
    value["properties"]["currency"] = json!({"type": "string", "enum": ["EUR", "USD"]});
    value["required"]
        .as_array_mut()
        .unwrap()
        .push(json!("currency"));
    let new = schema("v2.json", value);
    let backward = check(&old, &new, Mode::Backward);
    assert_honest(&backward, &old, &new);
    assert_eq!(backward.breaking.len(), 1, "{:?}", backward.breaking);
    assert_eq!(backward.breaking[0].path, "$.currency");
    assert!(backward.breaking[0]
        .counterexample
        .get("currency")
        .is_none());
    // Old readers are open: the new field does not bother them.
    assert!(check(&old, &new, Mode::Forward).is_compatible());
}

#[test]
fn adding_an_optional_field_to_an_open_schema_passes_full() {
    let old = v1();
    let mut value = v1().value().clone();
    value["properties"]["gift"] = json!({"type": "boolean"});
    let new = schema("v2.json", value);
    let full = check(&old, &new, Mode::Full);
    assert!(full.is_compatible(), "{:?}", full);
}

#[test]
fn a_closed_old_reader_rejects_a_new_optional_field_forward() {
    let mut closed = v1().value().clone();
    closed["additionalProperties"] = json!(false);
    let old = schema("v1.json", closed.clone());
    closed["properties"]["gift"] = json!({"type": "boolean"});
    closed["required"]
        .as_array_mut()
        .unwrap()
        .push(json!("gift"));
    let new = schema("v2.json", closed);
    let forward = check(&old, &new, Mode::Forward);
    assert_honest(&forward, &new, &old);
    assert_eq!(forward.breaking.len(), 1, "{:?}", forward.breaking);
    assert_eq!(forward.breaking[0].path, "$.gift");
    assert_eq!(forward.breaking[0].counterexample["gift"], json!(false));
}

#[test]
fn narrowed_enum_const_format_bounds_and_lengths_are_each_caught_with_a_counterexample() {
    let old = schema(
        "old.json",
        order(
            json!({
                "reason": {"type": ["string", "null"], "enum": ["a", "b", null]},
                "kind": {"type": "string"},
                "id": {"type": "string"},
                "n": {"type": "integer", "minimum": 1},
                "m": {"type": "number", "maximum": 10},
                "name": {"type": "string", "maxLength": 10},
                "tags": {"type": "array", "items": {"type": ["string", "integer"]}}
            }),
            &["reason", "kind", "id", "n", "m", "name", "tags"],
        ),
    );
    let new = schema(
        "new.json",
        order(
            json!({
                "reason": {"type": ["string", "null"], "enum": ["a", null]},
                "kind": {"const": "OrderCreated"},
                "id": {"type": "string", "format": "uuid"},
                "n": {"type": "integer", "minimum": 5},
                "m": {"type": "integer", "maximum": 10},
                "name": {"type": "string", "minLength": 2, "maxLength": 5},
                "tags": {"type": "array", "items": {"type": "string"}}
            }),
            &["reason", "kind", "id", "n", "m", "name", "tags"],
        ),
    );
    let backward = check(&old, &new, Mode::Backward);
    assert_honest(&backward, &old, &new);
    let paths: Vec<&str> = backward.breaking.iter().map(|c| c.path.as_str()).collect();
    for path in [
        "$.reason",
        "$.kind",
        "$.id",
        "$.n",
        "$.m",
        "$.name",
        "$.tags[0]",
    ] {
        assert!(paths.contains(&path), "{path} not reported: {paths:?}");
    }
    let reason = backward
        .breaking
        .iter()
        .find(|c| c.path == "$.reason")
        .unwrap();
    assert_eq!(reason.counterexample["reason"], json!("b"));
    // Every narrowing the other way is a widening: forward holds.
    let forward = check(&old, &new, Mode::Forward);
    assert!(forward.is_compatible(), "{:#?}", forward);
}

#[test]
fn transitive_checks_catch_a_field_re_added_with_another_type() {
    let with_note = v1();
    let without = schema(
        "v2.json",
        order(
            json!({
                "order_id": {"type": "string", "format": "uuid"},
                "quantity": {"type": ["integer", "string"], "minimum": 1}
            }),
            &["order_id", "quantity"],
        ),
    );
    let mut value = without.value().clone();
    value["properties"]["note"] = json!({"type": "integer"});
    let re_added = schema("v3.json", value);
    // Pairwise, each step looks fine backward...
    assert!(check(&with_note, &without, Mode::Backward).is_compatible());
    assert!(check(&without, &re_added, Mode::Backward).is_compatible());
    // ...but v1's data still carries a string `note`.
    let history = [with_note, without, re_added];
    let report = check_transitive(&history, Mode::Backward);
    assert_eq!(report.breaking.len(), 1, "{:?}", report.breaking);
    assert_eq!(report.breaking[0].writer, "v1.json");
    assert_eq!(report.breaking[0].reader, "v3.json");
    assert_eq!(report.breaking[0].path, "$.note");
    assert!(report.breaking[0].counterexample["note"].is_string());
}

/// The reference system's event schemas (`contracts/schemas/`), as real-world inputs.
const REFERENCE_SCHEMAS: [(&str, &str); 3] = [
    (
        "order-created.json",
        include_str!("../../schemas/order-created.json"),
    ),
    (
        "order-confirmed.json",
        include_str!("../../schemas/order-confirmed.json"),
    ),
    (
        "order-cancelled.json",
        include_str!("../../schemas/order-cancelled.json"),
    ),
];

#[test]
fn the_reference_schemas_are_compatible_with_themselves_in_full() {
    for (file, text) in REFERENCE_SCHEMAS {
        let a = Schema::from_json_str(file, text).unwrap();
        let b = Schema::from_json_str(file, text).unwrap();
        let report = check(&a, &b, Mode::Full);
        assert!(report.is_compatible(), "{file}: {report:?}");
    }
}

#[test]
fn an_unsupported_keyword_is_an_error_naming_file_and_path() {
    let error = Schema::from_value(
        "bad.json",
        json!({"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}]}}}),
    )
    .unwrap_err();
    assert!(
        matches!(error, SchemaError::Unsupported { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("bad.json"), "{text}");
    assert!(text.contains("$.properties.a.oneOf"), "{text}");
}

#[test]
fn malformed_json_names_line_and_column() {
    let error = Schema::from_json_str("broken.json", "{\n  \"type\": \n}").unwrap_err();
    match error {
        SchemaError::MalformedJson { file, line, .. } => {
            assert_eq!(file, "broken.json");
            assert_eq!(line, 3);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_shape_error_names_the_keyword_path() {
    let error = Schema::from_value("bad.json", json!({"properties": {"q": {"type": "integr"}}}))
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("$.properties.q.type"), "{text}");
    assert!(text.contains("integr"), "{text}");
}

#[test]
fn a_new_cancel_reason_breaks_forward_only() {
    let (file, text) = REFERENCE_SCHEMAS[2];
    let old = Schema::from_json_str(file, text).unwrap();
    let mut value = old.value().clone();
    value["properties"]["reason"]["enum"]
        .as_array_mut()
        .unwrap()
        .push(json!("fraud_suspected"));
    let new = schema("order-cancelled.next.json", value);
    assert!(check(&old, &new, Mode::Backward).is_compatible());
    let forward = check(&old, &new, Mode::Forward);
    assert_honest(&forward, &new, &old);
    assert_eq!(forward.breaking.len(), 1, "{:?}", forward.breaking);
    assert_eq!(forward.breaking[0].path, "$.reason");
    assert_eq!(
        forward.breaking[0].counterexample["reason"],
        json!("fraud_suspected")
    );
    assert_eq!(
        forward.breaking[0].counterexample["type"],
        json!("OrderCancelled")
    );
}

#[test]
fn a_huge_length_bound_does_not_allocate_a_huge_counterexample() {
    let old = schema("old.json", order(json!({"s": {"type": "string"}}), &["s"]));
    let new = schema(
        "new.json",
        order(
            json!({"s": {"type": "string", "minLength": 1_000_000_000_000u64}}),
            &["s"],
        ),
    );
    let report = check(&old, &new, Mode::Backward);
    assert_honest(&report, &old, &new);
    assert_eq!(report.breaking.len(), 1);
    assert_eq!(report.breaking[0].counterexample["s"], json!("x"));
}

#[test]
fn a_writer_without_type_can_write_any_type() {
    let old = schema("old.json", json!({"properties": {"a": {"type": "string"}}}));
    let new = schema(
        "new.json",
        json!({"type": "object", "properties": {"a": {"type": "string"}}}),
    );
    let report = check(&old, &new, Mode::Backward);
    assert_honest(&report, &old, &new);
    assert!(!report.breaking.is_empty());
    assert!(report
        .breaking
        .iter()
        .all(|c| c.path == "$" && !c.counterexample.is_object()));
    assert!(check(&old, &new, Mode::Forward).is_compatible());
}

#[test]
fn the_false_schema_is_reported_unsupported() {
    let error = Schema::from_value("f.json", json!({"properties": {"a": false}})).unwrap_err();
    assert!(error.to_string().contains("$.properties.a"), "{error}");
}

#[test]
fn schemas_that_say_nothing_of_array_elements_compare_without_end() {
    // `{}` admits arrays of anything on both sides: once a stack overflow.
    let report = check(
        &schema("a.json", json!({})),
        &schema("b.json", json!({})),
        Mode::Full,
    );
    assert!(report.is_compatible(), "{report:?}");
}

#[test]
fn an_empty_enum_or_type_list_is_refused_naming_the_path() {
    for (keyword, value) in [("enum", json!([])), ("type", json!([]))] {
        let doc = json!({"type": "object", "properties": {"state": {keyword: value}}});
        let err = Schema::from_value("s.json", doc).unwrap_err();
        assert!(
            matches!(&err, SchemaError::Invalid { path, .. } if path.ends_with(&format!("state.{keyword}"))),
            "{err}"
        );
        assert!(err.to_string().contains("admits no value"), "{err}");
    }
}
