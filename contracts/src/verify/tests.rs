use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::*;
use crate::consumer::matchers::{from_state, integer, uuid};
use crate::consumer::PactBuilder;

const ID: &str = "6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11";
const MADE: &str = "0b1a2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn values() -> Map<String, Value> {
    json!({"order_id": MADE, "n": 7})
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn provider_state_values_fill_path_header_and_body() {
    let mut pact = PactBuilder::new("c", "p");
    pact.interaction("get", |i| {
        i.given("an order exists")
            .post(from_state("/orders/${order_id}/commit", json!(format!("/orders/{ID}/commit"))))
            .header("Idempotency-Key", from_state("k-${order_id}", json!("k-1")))
            .json_body(json!({"order_id": from_state("${order_id}", uuid(ID)), "n": from_state("${n}", integer(1))}))
    });
    let Interaction::Http(http) = &pact.pact().interactions[0] else {
        unreachable!()
    };
    let generated = generate_request(&http.request, &values()).unwrap();
    assert_eq!(generated.path, format!("/orders/{MADE}/commit"));
    assert_eq!(
        generated.headers["Idempotency-Key"],
        vec![format!("k-{MADE}")]
    );
    assert_eq!(
        generated.body.unwrap().content,
        json!({"order_id": MADE, "n": 7})
    );
    let missing = generate_request(&http.request, &Map::new()).unwrap_err();
    assert!(missing.contains("returned no value"), "{missing}");
}

async fn provider(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn order_pact() -> Pact {
    let mut pact = PactBuilder::new("gateway", "order");
    pact.interaction("an existing order", |i| {
        i.given("an order exists")
            .get(from_state(
                "/orders/${order_id}",
                json!(format!("/orders/{ID}")),
            ))
            .will_respond_with(200)
            .response_json(json!({"order_id": uuid(ID), "quantity": integer(1)}))
    });
    pact.pact()
}

#[tokio::test]
async fn a_provider_that_keeps_the_contract_passes_and_one_that_renames_a_field_fails() {
    let states = post(|| async { Json(json!({"order_id": MADE})) });
    let good = provider(
        Router::new()
            .route("/admin/provider-states", states.clone())
            .route(
                "/orders/{id}",
                get(|| async { Json(json!({"order_id": MADE, "quantity": 3})) }),
            ),
    )
    .await;
    let bad = provider(Router::new().route("/admin/provider-states", states).route(
        "/orders/{id}",
        get(|| async { Json(json!({"order_id": MADE, "qty": 3})) }),
    ))
    .await;
    let verifier = Verifier::new();
    let pact = order_pact();
    let passed = verifier
        .verify_pact(&pact, "x.json", &ProviderTarget::http("order", &good))
        .await;
    assert!(passed.holds(), "{:?}", passed.interactions[0].outcome);
    let failed = verifier
        .verify_pact(&pact, "x.json", &ProviderTarget::http("order", &bad))
        .await;
    assert!(!failed.holds());
    let problems = failed.interactions[0].problems().join("\n");
    assert!(
        problems.contains("\"an existing order\"") && problems.contains("$.quantity"),
        "{problems}"
    );
    let report = Report {
        pacts: vec![passed, failed],
        duration: Duration::from_millis(20),
    };
    assert!(!report.holds());
    assert_eq!(report.to_json()["summary"]["failed"], 1);
    let junit = report.to_junit();
    assert!(
        junit.contains("<failure") && junit.contains("$.quantity"),
        "{junit}"
    );
}

#[tokio::test]
async fn a_failing_state_setup_is_an_error_and_a_pending_failure_does_not_count() {
    let app = Router::new().route(
        "/admin/provider-states",
        post(|| async { (axum::http::StatusCode::BAD_REQUEST, "unknown state") }),
    );
    let base = provider(app).await;
    let mut pact = order_pact();
    let result = Verifier::new()
        .verify_pact(&pact, "x", &ProviderTarget::http("order", &base))
        .await;
    assert!(
        matches!(&result.interactions[0].outcome, Outcome::Error(e) if e.contains("unknown state"))
    );
    if let Interaction::Http(http) = &mut pact.interactions[0] {
        http.info.pending = true;
    }
    let result = Verifier::new()
        .verify_pact(&pact, "x", &ProviderTarget::http("order", &base))
        .await;
    assert!(result.holds());
    let wrong = Verifier::new()
        .verify_pact(&pact, "x", &ProviderTarget::http("payment", &base))
        .await;
    assert!(matches!(&wrong.interactions[0].outcome, Outcome::Error(e) if e.contains("payment")));
}
