//! Reading and writing V4 pact files: a realistic pact round-trips exactly, and every
//! unsupported thing is an error that names the interaction and the JSON path.

use serde_json::json;

use super::*;

fn realistic() -> Value {
    json!({
        "consumer": {"name": "gateway"},
        "provider": {"name": "order"},
        "interactions": [
            {
                "type": "Synchronous/HTTP",
                "description": "create an order",
                "key": "a1b2",
                "pending": false,
                "providerStates": [{"name": "a customer exists", "params": {"customerId": 7}}],
                "comments": {"testname": "creates_order"},
                "request": {
                    "method": "POST",
                    "path": "/orders/7",
                    "query": {"dryRun": ["false"]},
                    "headers": {"Content-Type": "application/json", "Accept": ["application/json"]},
                    "body": {"content": {"sku": "X-1", "qty": 2}, "contentType": "application/json", "encoded": false},
                    "matchingRules": {
                        "path": {"combine": "AND", "matchers": [{"match": "regex", "regex": "/orders/\\d+"}]},
                        "body": {"$.qty": {"combine": "AND", "matchers": [{"match": "integer"}]}},
                        "query": {"dryRun": {"combine": "AND", "matchers": [{"match": "boolean"}]}}
                    },
                    "generators": {"path": {"type": "ProviderState", "expression": "/orders/${customerId}", "dataType": "STRING"}}
                },
                "response": {
                    "status": 201,
                    "headers": {"Content-Type": ["application/json"]},
                    "body": {"content": {"id": 42, "items": [{"sku": "X-1", "at": "2024-05-01T10:00:00Z"}], "tags": {"k": "v"}}, "contentType": "application/json", "encoded": false},
                    "matchingRules": {
                        "status": {"$": {"combine": "AND", "matchers": [{"match": "statusCode", "status": "success"}]}},
                        "body": {
                            "$.id": {"combine": "AND", "matchers": [{"match": "integer"}]},
                            "$.items": {"combine": "AND", "matchers": [{"match": "type", "min": 1}]},
                            "$.items[*].at": {"combine": "OR", "matchers": [{"match": "datetime", "format": "yyyy-MM-dd'T'HH:mm:ssX"}, {"match": "null"}]},
                            "$.tags": {"combine": "AND", "matchers": [{"match": "eachKey", "rules": [{"match": "regex", "regex": "[a-z]+"}], "value": "k"}]}
                        }
                    },
                    "generators": {"body": {"$.id": {"type": "ProviderState", "expression": "${orderId}", "dataType": "INTEGER"}, "$.token": {"type": "Uuid", "format": "simple"}}}
                },
                "transport": "http"
            },
            {
                "type": "Asynchronous/Messages",
                "description": "order paid event",
                "providerStates": [{"name": "order 42 is paid"}],
                "contents": {"content": {"orderId": 42, "amount": 12.5}, "contentType": "application/json", "encoded": false},
                "metadata": {"topic": "orders.paid", "key": "42"},
                "matchingRules": {
                    "body": {"$.amount": {"combine": "AND", "matchers": [{"match": "decimal"}]}},
                    "metadata": {"key": {"combine": "AND", "matchers": [{"match": "regex", "regex": "\\d+"}]}}
                }
            }
        ],
        "metadata": {"pactSpecification": {"version": "4.0"}, "faultline": {"version": "0.1.0"}}
    })
}

#[test]
fn realistic_pact_with_both_interaction_kinds_reads_every_field() {
    let pact = Pact::from_json(&realistic()).unwrap();
    assert_eq!(
        (pact.consumer.name.as_str(), pact.provider.name.as_str()),
        ("gateway", "order")
    );
    let Interaction::Http(http) = &pact.interactions[0] else {
        panic!("first is HTTP")
    };
    assert_eq!(http.info.key.as_deref(), Some("a1b2"));
    assert_eq!(http.info.provider_states[0].params["customerId"], json!(7));
    assert_eq!(
        http.request.headers["Content-Type"],
        vec!["application/json".to_string()]
    );
    assert_eq!(http.request.query["dryRun"], vec!["false".to_string()]);
    assert_eq!(
        http.request.matching_rules.category(Category::Path)["$"].matchers,
        vec![Matcher::Regex("/orders/\\d+".into())]
    );
    assert_eq!(
        http.response.matching_rules.category(Category::Body)["$.items"].matchers,
        vec![Matcher::Type {
            min: Some(1),
            max: None
        }]
    );
    assert_eq!(
        http.response.matching_rules.category(Category::Body)["$.items[*].at"].combine,
        Combine::Or
    );
    assert_eq!(
        http.response.generators.categories[&Category::Body]["$.id"],
        Generator::ProviderState {
            expression: "${orderId}".into(),
            data_type: Some("INTEGER".into())
        }
    );
    assert!(
        matches!(&http.response.generators.categories[&Category::Body]["$.token"], Generator::Other { kind, .. } if kind == "Uuid")
    );
    let Interaction::Message(msg) = &pact.interactions[1] else {
        panic!("second is a message")
    };
    assert_eq!(msg.metadata["topic"], json!("orders.paid"));
    assert_eq!(msg.contents.content["amount"], json!(12.5));
    assert_eq!(pact.metadata["faultline"], json!({"version": "0.1.0"}));
}

#[test]
fn parse_serialize_parse_round_trips_and_output_is_stable() {
    let pact = Pact::from_json(&realistic()).unwrap();
    let text = pact.to_json_string();
    let again = Pact::from_json_str(&text).unwrap();
    assert_eq!(pact, again);
    assert_eq!(text, again.to_json_string());
    // Keys come out sorted at every level.
    let consumer_at = text.find("\"consumer\"").unwrap();
    let interactions_at = text.find("\"interactions\"").unwrap();
    let metadata_at = text.rfind("\"metadata\": {\n    \"faultline\"").unwrap();
    assert!(consumer_at < interactions_at && interactions_at < metadata_at);
    assert!(text.contains("\"version\": \"4.0\""));
}

#[test]
fn serde_traits_delegate_to_the_strict_reader_and_writer() {
    let pact: Pact = serde_json::from_value(realistic()).unwrap();
    let value = serde_json::to_value(&pact).unwrap();
    assert_eq!(value, pact.to_json());
    let err = serde_json::from_value::<Pact>(
        json!({"metadata": {"pactSpecification": {"version": "3.0.0"}}}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("3.0.0"));
}

#[test]
fn unsupported_matcher_names_interaction_and_path() {
    let mut doc = realistic();
    doc["interactions"][0]["response"]["matchingRules"]["body"]["$.id"]["matchers"][0] =
        json!({"match": "fuzzy"});
    let err = Pact::from_json(&doc).unwrap_err();
    assert_eq!(
        err,
        PactError::UnsupportedMatcher {
            interaction: Some("create an order".into()),
            path: "$.interactions[0].response.matchingRules.body['$.id'].matchers[0]".into(),
            matcher: "fuzzy".into(),
            hint: err_hint(&err),
        }
    );
    assert!(err.to_string().contains("create an order"));
}

fn err_hint(err: &PactError) -> String {
    match err {
        PactError::UnsupportedMatcher { hint, .. } => hint.clone(),
        _ => String::new(),
    }
}

#[test]
fn unsupported_date_pattern_and_bad_regex_are_rejected_when_read() {
    let mut doc = realistic();
    doc["interactions"][0]["response"]["matchingRules"]["body"]["$.id"]["matchers"][0] =
        json!({"match": "date", "format": "yyyy-MM-dd G"});
    let err = Pact::from_json(&doc).unwrap_err();
    assert_eq!(
        err.json_path(),
        Some("$.interactions[0].response.matchingRules.body['$.id'].matchers[0].format")
    );
    let mut doc = realistic();
    doc["interactions"][1]["matchingRules"]["body"]["$.amount"]["matchers"][0] =
        json!({"match": "regex", "regex": "(?<=a)b"});
    let err = Pact::from_json(&doc).unwrap_err();
    assert!(
        matches!(err, PactError::UnsupportedMatcher { ref interaction, .. } if interaction.as_deref() == Some("order paid event"))
    );
}

#[test]
fn v3_pact_is_rejected_with_the_spec_version() {
    let doc = json!({
        "consumer": {"name": "c"}, "provider": {"name": "p"},
        "interactions": [{"description": "x", "request": {"method": "GET", "path": "/"}, "response": {"status": 200}}],
        "metadata": {"pactSpecification": {"version": "3.0.0"}}
    });
    let err = Pact::from_json(&doc).unwrap_err();
    assert_eq!(
        err,
        PactError::UnsupportedSpecVersion {
            found: "3.0.0".into()
        }
    );
    assert!(err.to_string().contains("V4"));
    assert_eq!(
        Pact::from_json(&json!({"consumer": {"name": "c"}})).unwrap_err(),
        PactError::MissingSpecVersion
    );
}

#[test]
fn unknown_and_unsupported_interaction_types_are_errors() {
    for kind in ["Synchronous/Messages", "Carrier/Pigeon"] {
        let mut doc = realistic();
        doc["interactions"][1]["type"] = json!(kind);
        let err = Pact::from_json(&doc).unwrap_err();
        assert_eq!(
            err,
            PactError::UnsupportedInteractionType {
                interaction: "order paid event".into(),
                path: "$.interactions[1].type".into(),
                kind: kind.into()
            }
        );
    }
}

#[test]
fn plugin_configuration_and_unknown_fields_are_errors() {
    let mut doc = realistic();
    doc["interactions"][0]["pluginConfiguration"] = json!({"protobuf": {"descriptorKey": "x"}});
    assert_eq!(
        Pact::from_json(&doc).unwrap_err().json_path(),
        Some("$.interactions[0].pluginConfiguration")
    );
    let mut doc = realistic();
    doc["metadata"]["plugins"] = json!([{"name": "protobuf"}]);
    assert_eq!(
        Pact::from_json(&doc).unwrap_err().json_path(),
        Some("$.metadata.plugins")
    );
    let mut doc = realistic();
    doc["interactions"][0]["response"]["bodyy"] = json!({});
    assert_eq!(
        Pact::from_json(&doc).unwrap_err().json_path(),
        Some("$.interactions[0].response.bodyy")
    );
    let mut doc = realistic();
    doc["interactions"][0]["request"]["matchingRules"]["cookies"] = json!({});
    assert_eq!(
        Pact::from_json(&doc).unwrap_err().json_path(),
        Some("$.interactions[0].request.matchingRules.cookies")
    );
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = Pact::from_json_str("{\n  \"consumer\": {\"name\": \"c\"},\n  oops\n}").unwrap_err();
    assert!(
        matches!(
            err,
            PactError::MalformedJson {
                line: 3,
                column: 3,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bad_rule_key_is_reported_at_the_key() {
    let mut doc = realistic();
    doc["interactions"][0]["response"]["matchingRules"]["body"]["$.items[x"] =
        json!({"matchers": [{"match": "type"}]});
    let err = Pact::from_json(&doc).unwrap_err();
    assert_eq!(
        err.json_path(),
        Some("$.interactions[0].response.matchingRules.body['$.items[x']")
    );
}

/// The problem of `realistic()` after `change`: (JSON path, message).
fn refused(change: impl FnOnce(&mut Value)) -> (String, String) {
    let mut doc = realistic();
    change(&mut doc);
    let err = Pact::from_json(&doc).expect_err("must be refused");
    (
        err.json_path().unwrap_or_default().to_string(),
        err.to_string(),
    )
}

#[test]
fn a_status_outside_100_to_599_is_refused() {
    for status in [0, 99, 600, 999] {
        let (path, message) =
            refused(|doc| doc["interactions"][0]["response"]["status"] = json!(status));
        assert_eq!(path, "$.interactions[0].response.status");
        assert!(
            message.contains("from 100 to 599") && message.contains(&status.to_string()),
            "{message}"
        );
        assert!(message.contains("create an order"), "{message}");
    }
}

#[test]
fn a_method_that_is_not_an_http_token_is_refused() {
    for method in ["GET STUFF", "", "PO\u{0}ST", "GET\n"] {
        let (path, message) =
            refused(|doc| doc["interactions"][0]["request"]["method"] = json!(method));
        assert_eq!(
            path, "$.interactions[0].request.method",
            "{method:?}: {message}"
        );
    }
}

#[test]
fn two_interactions_with_one_description_are_refused() {
    let (path, message) = refused(|doc| {
        doc["interactions"][1]["description"] = json!("create an order");
    });
    assert_eq!(path, "$.interactions[1].description");
    assert!(message.contains("$.interactions[0]"), "{message}");
}

#[test]
fn a_message_without_contents_is_refused() {
    let (path, message) = refused(|doc| {
        let message = doc["interactions"][1].as_object_mut().unwrap();
        message.remove("contents");
        message.remove("matchingRules");
    });
    assert_eq!(path, "$.interactions[1].contents");
    assert!(message.contains("order paid event"), "{message}");
}

#[test]
fn a_regex_its_own_example_does_not_match_is_refused() {
    let (path, message) = refused(|doc| {
        doc["interactions"][0]["response"]["matchingRules"]["body"]["$.id"]["matchers"][0] =
            json!({"match": "regex", "regex": "[a-z]+"});
    });
    assert_eq!(path, "$.interactions[0].response.matchingRules.body");
    assert!(
        message.contains("$.id") && message.contains("regex /[a-z]+/"),
        "{message}"
    );
    let (path, _) = refused(|doc| {
        doc["interactions"][1]["matchingRules"]["metadata"]["key"]["matchers"][0] =
            json!({"match": "regex", "regex": "[a-z]+"});
    });
    assert_eq!(path, "$.interactions[1].matchingRules.metadata");
    let (path, _) = refused(|doc| {
        doc["interactions"][0]["request"]["matchingRules"]["path"]["matchers"][0] =
            json!({"match": "regex", "regex": "/carts/\\d+"});
    });
    assert_eq!(path, "$.interactions[0].request.matchingRules.path");
}

#[test]
fn a_regex_valid_only_inside_the_anchors_it_is_wrapped_in_is_refused() {
    // `^(?:7)|(8)$` compiles; `7)|(8` alone does not.
    let (path, message) = refused(|doc| {
        doc["interactions"][0]["response"]["matchingRules"]["body"]["$.id"]["matchers"][0] =
            json!({"match": "regex", "regex": "42)|(43"});
    });
    assert_eq!(
        path,
        "$.interactions[0].response.matchingRules.body['$.id'].matchers[0].regex"
    );
    assert!(message.contains("does not compile"), "{message}");
}

#[test]
fn rules_on_paths_the_example_lacks_are_refused() {
    let (path, message) = refused(|doc| {
        doc["interactions"][0]["response"]["matchingRules"]["body"]["$.nope"] =
            json!({"matchers": [{"match": "type"}]});
    });
    assert_eq!(
        path,
        "$.interactions[0].response.matchingRules.body['$.nope']"
    );
    assert!(message.contains("does not have"), "{message}");
    let (path, _) = refused(|doc| {
        doc["interactions"][0]["response"]["matchingRules"]["body"]["$.items[3].sku"] =
            json!({"matchers": [{"match": "type"}]});
    });
    assert_eq!(
        path,
        "$.interactions[0].response.matchingRules.body['$.items[3].sku']"
    );
    let (path, _) = refused(|doc| {
        doc["interactions"][0]["request"]["matchingRules"]["header"] =
            json!({"X-Missing": {"matchers": [{"match": "type"}]}});
    });
    assert_eq!(
        path,
        "$.interactions[0].request.matchingRules.header['X-Missing']"
    );
    let (path, _) = refused(|doc| {
        doc["interactions"][1]["matchingRules"]["metadata"]["partition"] =
            json!({"matchers": [{"match": "type"}]});
    });
    assert_eq!(path, "$.interactions[1].matchingRules.metadata.partition");
    // Wildcards reach what the example has; header names ignore case.
    let mut doc = realistic();
    doc["interactions"][0]["response"]["matchingRules"]["body"]["$.items[*].sku"] =
        json!({"matchers": [{"match": "type"}]});
    doc["interactions"][0]["response"]["matchingRules"]["header"] =
        json!({"content-type": {"matchers": [{"match": "type"}]}});
    Pact::from_json(&doc).unwrap();
}

#[test]
fn a_type_matcher_with_min_above_max_is_refused() {
    let (path, message) = refused(|doc| {
        doc["interactions"][0]["response"]["matchingRules"]["body"]["$.items"]["matchers"][0] =
            json!({"match": "type", "min": 3, "max": 1});
    });
    assert_eq!(
        path,
        "$.interactions[0].response.matchingRules.body['$.items'].matchers[0].min"
    );
    assert!(message.contains("min 3 above max 1"), "{message}");
}

#[test]
fn bodies_declared_base64_or_json_must_be_so() {
    let (path, message) = refused(|doc| {
        doc["interactions"][0]["response"]["body"] = json!({"content": "not base64!", "contentType": "application/octet-stream", "encoded": "base64"});
        doc["interactions"][0]["response"]["matchingRules"] = json!({});
        doc["interactions"][0]["response"]["generators"] = json!({});
    });
    assert_eq!(path, "$.interactions[0].response.body.content");
    assert!(message.contains("not base64"), "{message}");
    let (path, message) = refused(|doc| {
        doc["interactions"][0]["request"]["body"] =
            json!({"content": "{\"sku\": ", "contentType": "application/json", "encoded": "json"});
    });
    assert_eq!(path, "$.interactions[0].request.body.content");
    assert!(message.contains("not JSON"), "{message}");
    let (path, message) = refused(|doc| {
        // "hello" in base64, declared JSON.
        doc["interactions"][0]["request"]["body"] =
            json!({"content": "aGVsbG8=", "contentType": "application/json", "encoded": "base64"});
        doc["interactions"][0]["request"]["matchingRules"]["body"] = json!({});
    });
    assert_eq!(path, "$.interactions[0].request.body.content");
    assert!(message.contains("not JSON"), "{message}");
}

#[test]
fn a_spec_version_written_as_a_number_says_it_must_be_a_string() {
    let (path, message) =
        refused(|doc| doc["metadata"]["pactSpecification"]["version"] = json!(4.0));
    assert_eq!(path, "$.metadata.pactSpecification.version");
    assert!(message.contains("must be a string"), "{message}");
}

#[test]
fn the_committed_pacts_pass_every_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pacts");
    let pacts = crate::files::read_pacts(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(pacts.len() >= 4);
}
