use serde_json::json;

use super::matchers::{each_like, from_state, integer, like, null_or_like, term, uuid};
use super::*;
use crate::model::{Matcher, RuleList};

const ID: &str = "6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11";

fn charge_pact() -> PactBuilder {
    let mut pact = PactBuilder::new("order", "payment");
    pact.interaction("a charge", |i| {
        i.given_with("no charge exists for an order", json!({"n": 1}))
            .post("/payments/charges")
            .header(
                "Idempotency-Key",
                term("^charge-.+$", &format!("charge-{ID}")),
            )
            .json_body(json!({
                "order_id": from_state("${order_id}", uuid(ID)),
                "amount_cents": integer(1200),
                "items": each_like(json!({"sku": like(json!("sku-1"))}), 1),
            }))
            .will_respond_with(201)
            .response_json(json!({"status": "CHARGED", "reason": null_or_like(json!("x"))}))
    });
    pact
}

#[test]
fn matchers_become_rules_and_generators_at_their_paths() {
    let pact = charge_pact().pact();
    let Interaction::Http(http) = &pact.interactions[0] else {
        panic!("an HTTP interaction")
    };
    let body = http.request.matching_rules.category(Category::Body);
    assert_eq!(
        body["$.order_id"],
        RuleList::single(Matcher::Regex(matchers::UUID_REGEX.into()))
    );
    assert_eq!(body["$.amount_cents"], RuleList::single(Matcher::Integer));
    assert_eq!(
        body["$.items"],
        RuleList::single(Matcher::Type {
            min: Some(1),
            max: None
        })
    );
    assert!(body.contains_key("$.items[*].sku"), "{body:?}");
    assert_eq!(
        http.request.body.as_ref().unwrap().content,
        json!({"order_id": ID, "amount_cents": 1200, "items": [{"sku": "sku-1"}]})
    );
    assert!(http.request.generators.categories[&Category::Body].contains_key("$.order_id"));
    assert!(http
        .request
        .matching_rules
        .category(Category::Header)
        .contains_key("Idempotency-Key"));
    assert_eq!(http.info.provider_states[0].params["n"], json!(1));
    // The written file reads back as the same pact.
    let again = Pact::from_json_str(&pact.to_json_string()).unwrap();
    assert_eq!(again, pact);
}

#[tokio::test]
async fn the_mock_answers_matching_requests_and_counts_them_exercised() {
    let mut pact = charge_pact();
    let mock = pact.start_mock_server().await;
    let answer = reqwest::Client::new()
        .post(format!("{}/payments/charges", mock.uri()))
        .header("Idempotency-Key", format!("charge-{ID}"))
        .json(&json!({"order_id": uuid::Uuid::new_v4(), "amount_cents": 5, "items": [{"sku": "b"}, {"sku": "c"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    assert_eq!(answer.json::<Value>().await.unwrap()["status"], "CHARGED");
    mock.verify().await.unwrap();
    pact.finish().unwrap();
}

#[tokio::test]
async fn an_unexpected_request_fails_verify_with_the_closest_mismatch() {
    let mut pact = charge_pact();
    let mock = pact.start_mock_server().await;
    let answer = reqwest::Client::new()
        .post(format!("{}/payments/charges", mock.uri()))
        .header("Idempotency-Key", format!("charge-{ID}"))
        .json(&json!({"order_id": ID, "amount_cents": "12", "items": [{"sku": "b"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    let error = mock.verify().await.unwrap_err().to_string();
    assert!(error.contains("$.amount_cents"), "{error}");
    assert!(error.contains("\"a charge\""), "{error}");
    let ConsumerError::NotExercised(missing) = pact.finish().unwrap_err() else {
        panic!("expected NotExercised")
    };
    assert_eq!(missing, vec!["a charge".to_string()]);
}

#[tokio::test]
async fn messages_go_to_the_handler_and_a_refusal_fails() {
    let mut pact = PactBuilder::new("notification", "order");
    pact.message("an event", |m| {
        m.given("an order was placed")
            .json_contents(json!({"type": "OrderCreated", "quantity": integer(1)}))
            .metadata("topic", "orders")
    });
    let mut seen = Vec::new();
    pact.consume_messages(|m| {
        seen.push(m.contents.clone());
        async { Ok(()) }
    })
    .await
    .unwrap();
    assert_eq!(seen, vec![json!({"type": "OrderCreated", "quantity": 1})]);
    let failed = pact
        .consume_messages(|_| async { Err("no".to_string()) })
        .await
        .unwrap_err();
    assert!(matches!(failed, ConsumerError::HandlerFailed { .. }));
    let built = pact.finish().unwrap();
    assert_eq!(built.interactions[0].kind(), "Asynchronous/Messages");
}

#[test]
fn a_bad_matcher_is_an_error_naming_interaction_and_path() {
    let mut pact = PactBuilder::new("a", "b");
    pact.interaction("broken", |i| {
        i.post("/x")
            .json_body(json!({"n": {"pact:matcher:type": "telepathy", "value": 1}}))
    });
    let error = pact.finish().unwrap_err().to_string();
    assert!(
        error.contains("broken") && error.contains("telepathy"),
        "{error}"
    );
}

#[test]
fn write_pact_writes_the_deterministic_text_under_its_name() {
    let pact = charge_pact().pact();
    let dir = std::env::temp_dir().join(format!("faultline-pacts-{}", std::process::id()));
    let path = write_pact(&pact, &dir).unwrap();
    assert_eq!(path.file_name().unwrap(), "order-payment.json");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        pact.to_json_string()
    );
    std::fs::remove_dir_all(dir).unwrap();
}
