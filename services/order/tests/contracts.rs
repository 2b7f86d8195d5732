//! Order's consumer contracts with payment and inventory: the saga's real HTTP clients
//! (`HttpPayments`, `HttpInventory` over the kit's resilient client) run against mock
//! providers made from the interactions, then the pacts are snapshot-checked (insta) and
//! written to `contracts/pacts/order-payment.json` and `order-inventory.json`.
//!
//! A changed interaction fails here first, as a reviewable snapshot diff
//! (`cargo insta review`); once accepted, the test rewrites the pact file.

use std::time::Duration;

use faultline_contracts::consumer::matchers::{from_state, integer, like, term, uuid};
use faultline_contracts::consumer::{pacts_dir, write_pact, PactBuilder};
use faultline_kit::http_client::ResilientClient;
use faultline_kit::resilience::RetryPolicy;
use faultline_order::clients::{
    Charge, HttpInventory, HttpPayments, Inventory, OrderLine, Payments, Reservation,
};
use serde_json::json;
use uuid::Uuid;

const ORDER_ID: &str = "6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11";
const OTHER_ORDER_ID: &str = "0b1a2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const CHARGE_ID: &str = "3e2f9a10-7c1b-4d5e-8f60-1a2b3c4d5e6f";
const RESERVATION_ID: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
const DECLINING_CARD: &str = "4000000000000002";

fn client(dependency: &str, base_url: &str) -> ResilientClient {
    ResilientClient::builder(dependency, base_url)
        .timeout(Duration::from_secs(5))
        .retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
        .build()
        .expect("a client")
}

fn line(order_id: &str, sku: &str, card: &str) -> OrderLine {
    OrderLine {
        order_id: Uuid::parse_str(order_id).unwrap(),
        sku: sku.into(),
        quantity: 2,
        amount_cents: 1200,
        card: card.into(),
    }
}

fn idempotency_key(prefix: &str, example_order: &str) -> serde_json::Value {
    from_state(
        &format!("{prefix}-${{order_id}}"),
        term(
            &format!(
                "^{prefix}-[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$"
            ),
            &format!("{prefix}-{example_order}"),
        ),
    )
}

#[tokio::test]
async fn order_charges_declines_and_refunds_through_payment_as_the_pact_says() {
    let mut pact = PactBuilder::new("order", "payment");
    pact.interaction("a charge of an order", |i| {
        i.given("no charge exists for an order")
            .post("/payments/charges")
            .header("Idempotency-Key", idempotency_key("charge", ORDER_ID))
            .json_body(json!({
                "order_id": from_state("${order_id}", uuid(ORDER_ID)),
                "amount_cents": integer(1200),
                "card": like(json!("4242424242424242")),
            }))
            .will_respond_with(201)
            .response_json(json!({
                "charge_id": uuid(CHARGE_ID),
                "order_id": uuid(ORDER_ID),
                "amount_cents": integer(1200),
                "status": "CHARGED",
            }))
    })
    .interaction("a charge with a card that declines", |i| {
        i.given("no charge exists for an order")
            .post("/payments/charges")
            .header("Idempotency-Key", idempotency_key("charge", ORDER_ID))
            .json_body(json!({
                "order_id": from_state("${order_id}", uuid(ORDER_ID)),
                "amount_cents": integer(1200),
                "card": DECLINING_CARD,
            }))
            .will_respond_with(402)
            .response_json(json!({"error": "card_declined", "status": "DECLINED"}))
    })
    .interaction("a refund of a charged order", |i| {
        i.given_with("an order has been charged", json!({"amount_cents": 1200}))
            .post("/payments/refunds")
            .header("Idempotency-Key", idempotency_key("refund", ORDER_ID))
            .json_body(json!({"order_id": from_state("${order_id}", uuid(ORDER_ID))}))
            .will_respond_with(201)
            .response_json(json!({
                "order_id": uuid(ORDER_ID),
                "refunded_cents": integer(1200),
                "status": "REFUNDED",
            }))
    });

    let mock = pact.start_mock_server_for(&["a charge of an order"]).await;
    let payments = HttpPayments::new(client("payment", &mock.uri()));
    let charged = payments
        .charge(&line(ORDER_ID, "sku-1", "4242424242424242"))
        .await;
    assert_eq!(charged, Ok(Charge::Charged));
    mock.verify().await.unwrap();

    let mock = pact
        .start_mock_server_for(&["a charge with a card that declines"])
        .await;
    let payments = HttpPayments::new(client("payment", &mock.uri()));
    let declined = payments
        .charge(&line(ORDER_ID, "sku-1", DECLINING_CARD))
        .await;
    assert_eq!(declined, Ok(Charge::Declined));
    mock.verify().await.unwrap();

    let mock = pact
        .start_mock_server_for(&["a refund of a charged order"])
        .await;
    let payments = HttpPayments::new(client("payment", &mock.uri()));
    let refunded = payments.refund(Uuid::parse_str(ORDER_ID).unwrap()).await;
    assert_eq!(refunded, Ok(()));
    mock.verify().await.unwrap();

    let pact = pact.finish().unwrap();
    insta::assert_snapshot!("order-payment", pact.to_json_string());
    write_pact(&pact, &pacts_dir()).unwrap();
}

#[tokio::test]
async fn order_reserves_commits_and_releases_through_inventory_as_the_pact_says() {
    let mut pact = PactBuilder::new("order", "inventory");
    pact.interaction("a reservation of a SKU with stock", |i| {
        i.given_with(
            "a SKU has units available",
            json!({"sku": "sku-1", "available": 10}),
        )
        .post("/inventory/reservations")
        .header(
            "Idempotency-Key",
            term("^reserve-.+$", &format!("reserve-{ORDER_ID}")),
        )
        .json_body(json!({
            "order_id": uuid(ORDER_ID),
            "sku": "sku-1",
            "quantity": integer(2),
        }))
        .will_respond_with(201)
        .response_json(json!({
            "reservation_id": uuid(RESERVATION_ID),
            "order_id": uuid(ORDER_ID),
            "sku": "sku-1",
            "quantity": integer(2),
            "status": "RESERVED",
        }))
    })
    .interaction("a reservation of a SKU that is out of stock", |i| {
        i.given_with("a SKU is out of stock", json!({"sku": "sku-empty"}))
            .post("/inventory/reservations")
            .header(
                "Idempotency-Key",
                term("^reserve-.+$", &format!("reserve-{OTHER_ORDER_ID}")),
            )
            .json_body(json!({
                "order_id": uuid(OTHER_ORDER_ID),
                "sku": "sku-empty",
                "quantity": integer(2),
            }))
            .will_respond_with(409)
            .response_json(json!({"error": "out_of_stock"}))
    })
    .interaction("a commit of a reservation", |i| {
        i.given_with(
            "an order has a reservation",
            json!({"sku": "sku-1", "quantity": 2}),
        )
        .post(from_state(
            "/inventory/reservations/${order_id}/commit",
            json!(format!("/inventory/reservations/{ORDER_ID}/commit")),
        ))
        .will_respond_with(200)
        .response_json(json!({"order_id": uuid(ORDER_ID), "status": "COMMITTED"}))
    })
    .interaction("a release of a reservation", |i| {
        i.given_with(
            "an order has a reservation",
            json!({"sku": "sku-1", "quantity": 2}),
        )
        .post(from_state(
            "/inventory/reservations/${order_id}/release",
            json!(format!("/inventory/reservations/{ORDER_ID}/release")),
        ))
        .will_respond_with(200)
        .response_json(json!({"order_id": uuid(ORDER_ID), "status": "RELEASED"}))
    });

    let mock = pact.start_mock_server().await;
    let inventory = HttpInventory::new(client("inventory", &mock.uri()));
    let order_id = Uuid::parse_str(ORDER_ID).unwrap();
    assert_eq!(
        inventory.reserve(&line(ORDER_ID, "sku-1", "x")).await,
        Ok(Reservation::Reserved)
    );
    assert_eq!(
        inventory
            .reserve(&line(OTHER_ORDER_ID, "sku-empty", "x"))
            .await,
        Ok(Reservation::OutOfStock)
    );
    assert_eq!(inventory.commit(order_id).await, Ok(()));
    assert_eq!(inventory.release(order_id).await, Ok(()));
    mock.verify().await.unwrap();

    let pact = pact.finish().unwrap();
    insta::assert_snapshot!("order-inventory", pact.to_json_string());
    write_pact(&pact, &pacts_dir()).unwrap();
}
