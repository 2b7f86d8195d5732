//! The gateway's consumer contract with order: the gateway's real routes (token check, rate
//! limit, forwarding through the kit's resilient client) run against a mock order made from
//! the interactions; the pact is snapshot-checked (insta) and written to
//! `contracts/pacts/gateway-order.json`.

use std::time::Duration;

use faultline_contracts::consumer::matchers::{from_state, integer, like, term, uuid};
use faultline_contracts::consumer::{pacts_dir, write_pact, PactBuilder};
use faultline_gateway::{mint_token, Gateway, GatewayConfig};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "contract-secret-0123456789";
const ORDER_ID: &str = "6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11";
const UNKNOWN_ORDER_ID: &str = "00000000-0000-4000-8000-000000000000";

fn order_body(quantity: Value) -> Value {
    json!({
        "customer_id": like(json!("c-1")),
        "sku": like(json!("sku-1")),
        "quantity": quantity,
        "amount_cents": integer(1200),
        "card": like(json!("4242424242424242")),
    })
}

/// Starts a gateway forwarding to `order_url`; its base URL and how to stop it.
async fn gateway(order_url: &str) -> (String, CancellationToken) {
    let config = GatewayConfig::from_pairs([
        ("GATEWAY_ORDER_URL", order_url),
        ("GATEWAY_JWT_SECRET", SECRET),
        ("GATEWAY_ORDER_TIMEOUT_MS", "5000"),
    ])
    .expect("a valid configuration");
    let gateway = Gateway::start(&config).await.expect("the gateway starts");
    let base = format!("http://{}", gateway.local_addr());
    let stop = CancellationToken::new();
    tokio::spawn(gateway.run(stop.clone()));
    (base, stop)
}

fn token() -> String {
    mint_token(
        SECRET,
        "contract-client",
        &["orders:write", "orders:read"],
        "faultline",
        Duration::from_secs(300),
    )
}

async fn post_order(base: &str, body: Value) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{base}/api/orders"))
        .bearer_auth(token())
        .header("Idempotency-Key", "key-1")
        .json(&body)
        .send()
        .await
        .expect("the gateway answers");
    (
        answer.status().as_u16(),
        answer.json().await.unwrap_or(Value::Null),
    )
}

async fn get_order(base: &str, order_id: &str) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .get(format!("{base}/api/orders/{order_id}"))
        .bearer_auth(token())
        .send()
        .await
        .expect("the gateway answers");
    (
        answer.status().as_u16(),
        answer.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_gateway_forwards_orders_as_the_pact_with_order_says() {
    let mut pact = PactBuilder::new("gateway", "order");
    pact.interaction("a request to place an order", |i| {
        i.post("/orders")
            .header("Idempotency-Key", like(json!("key-1")))
            .json_body(order_body(integer(2)))
            .will_respond_with(202)
            .response_json(json!({"order_id": uuid(ORDER_ID), "status": "PENDING"}))
    })
    .interaction("a request to place an order with no units", |i| {
        i.post("/orders")
            .header("Idempotency-Key", like(json!("key-1")))
            .json_body(order_body(json!(0)))
            .will_respond_with(400)
            .response_json(
                json!({"error": "invalid_request", "message": like(json!("quantity must be > 0"))}),
            )
    })
    .interaction("a request for an existing order", |i| {
        i.given_with(
            "an order exists",
            json!({"customer_id": "c-1", "sku": "sku-1", "quantity": 2, "amount_cents": 1200}),
        )
        .get(from_state(
            "/orders/${order_id}",
            json!(format!("/orders/{ORDER_ID}")),
        ))
        .will_respond_with(200)
        .response_json(json!({
            "order_id": uuid(ORDER_ID),
            "status": term("^(PENDING|CONFIRMED|CANCELLED)$", "PENDING"),
            "customer_id": like(json!("c-1")),
            "sku": like(json!("sku-1")),
            "quantity": integer(2),
            "amount_cents": integer(1200),
        }))
    })
    .interaction("a request for an order that does not exist", |i| {
        i.get(format!("/orders/{UNKNOWN_ORDER_ID}"))
            .will_respond_with(404)
            .response_json(json!({"error": "order_not_found"}))
    });

    let placed = json!({"customer_id": "c-9", "sku": "sku-3", "quantity": 2, "amount_cents": 999, "card": "4242"});
    let mock = pact
        .start_mock_server_for(&["a request to place an order"])
        .await;
    let (base, stop) = gateway(&mock.uri()).await;
    let (status, body) = post_order(&base, placed.clone()).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("PENDING")));
    mock.verify().await.unwrap();
    stop.cancel();

    let mock = pact
        .start_mock_server_for(&["a request to place an order with no units"])
        .await;
    let (base, stop) = gateway(&mock.uri()).await;
    let mut empty = placed;
    empty["quantity"] = json!(0);
    let (status, body) = post_order(&base, empty).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    mock.verify().await.unwrap();
    stop.cancel();

    let mock = pact
        .start_mock_server_for(&[
            "a request for an existing order",
            "a request for an order that does not exist",
        ])
        .await;
    let (base, stop) = gateway(&mock.uri()).await;
    let (status, body) = get_order(&base, ORDER_ID).await;
    assert_eq!((status, body["order_id"].as_str()), (200, Some(ORDER_ID)));
    let (status, body) = get_order(&base, UNKNOWN_ORDER_ID).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("order_not_found"))
    );
    mock.verify().await.unwrap();
    stop.cancel();

    let pact = pact.finish().unwrap();
    insta::assert_snapshot!("gateway-order", pact.to_json_string());
    write_pact(&pact, &pacts_dir()).unwrap();
}
